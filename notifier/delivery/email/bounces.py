"""Bounces and complaints: RFC 3464 delivery status notifications, RFC 5965 ARF reports, and VERP addresses.

Pure: it reads messages and never sends. `classify` turns one received message into a `BounceReport` or None:

- a DSN (`multipart/report; report-type=delivery-status`): the first recipient whose Action is `failed` (or else
  `delayed`). `delayed` and 4.x.x are soft. 5.x.x is hard, except the permanent codes that say nothing about the
  address (`SOFT_PERMANENT_STATUSES`: mailbox full, message too big, delivery time expired) and any diagnostic
  that says the mailbox is full or over quota, whatever the code. The recipient is Original-Recipient (the address
  as we sent to it, before forwarding), else Final-Recipient.
- an ARF report (`multipart/report; report-type=feedback-report`) of type abuse or fraud: a complaint. The
  recipient is Original-Rcpt-To, else the first address in the embedded message's To (many providers redact it).
- a non-standard bounce with `X-Failed-Recipients` (Exim's plain-text reports): read like a DSN from its text.

Anyone can send a report naming any address. Bounces should therefore go to a VERP return path
(`verp_address`): the recipient is encoded in the address the report comes back to, with an HMAC, so a report
that reaches us through a valid VERP address is about the address we mailed (`verified=True`), and a forged one
cannot suppress an arbitrary address. Pass the secret to `classify` and act on unverified reports with care.
"""

from __future__ import annotations

import base64
import binascii
import email.policy
import functools
import hmac
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.parser import BytesParser, HeaderParser
from email.utils import getaddresses
from pathlib import Path
from typing import Literal

from notifier.tokens import KeyedHmac

BounceKind = Literal["hard", "soft", "complaint"]

# Permanent (5.x.x) codes about the message or the mailbox's state, not the address: retried later, not suppressed.
SOFT_PERMANENT_STATUSES = frozenset({
    "5.2.2",  # mailbox full
    "5.2.3",  # message length exceeds administrative limit
    "5.3.4",  # message too big for system
    "5.4.7",  # delivery time expired: the destination was unreachable for days, the address may well be fine
})
COMPLAINT_FEEDBACK_TYPES = frozenset({"abuse", "fraud"})
DIAGNOSTIC_LIMIT = 500
VERP_TAG_CHARS = 8

# RFC 3463 enhanced status codes ("5.1.1", subjects 0-7), not pieces of IP addresses or versions ("10.4.5.6").
_STATUS = re.compile(r"(?<![\w.])([245])\.([0-7])\.(\d{1,3})(?!\.?\d)")
_SMTP_REPLY = re.compile(r"(?<![\d.])([245])\d\d(?=[\s-])")
_MAILBOX_FULL = re.compile(
    r"mailbox (?:is )?full|over ?quota|quota exceeded|exceeded (?:the )?(?:storage|quota)|"
    r"insufficient (?:system )?storage|mailbox size limit|out of storage|storage (?:space )?(?:is )?full",
    re.IGNORECASE,
)
_RETURNED_COPY = re.compile(r"^-{3,}.*(?:copy of|below this line|original message)", re.IGNORECASE | re.MULTILINE)
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*/=?^_`{|}~.-]+")
# Where a bounce shows the address it was sent to (the VERP return path), most reliable first.
_ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")


@dataclass(frozen=True, slots=True)
class BounceReport:
    """What a bounce or complaint says about one address.

    `status` is the enhanced status code ("5.1.1") or, for a complaint, the feedback type ("abuse"); `diagnostic`
    the remote server's words. `verified` means the recipient came from a valid VERP address, not from the report's
    text. `message_id` is the Message-ID of the message that bounced, angle brackets included, when the report
    returns its headers.
    """

    recipient: str
    kind: BounceKind
    status: str
    diagnostic: str
    verified: bool = False
    message_id: str | None = None


# ---- VERP ------------------------------------------------------------------------------------------------------------


def _tag(secret: bytes, recipient: str) -> str:
    digest = _keyed(secret).digest(b"notifier.verp\0" + recipient.encode("utf-8"))
    return base64.urlsafe_b64encode(digest).decode("ascii")[:VERP_TAG_CHARS]


@functools.lru_cache(maxsize=8)
def _keyed(secret: bytes) -> KeyedHmac:
    """The VERP HMAC for `secret`, its key's hashes begun once (this runs for every message sent)."""
    return KeyedHmac(secret, "sha256")


def verp_address(bounce_local: str, domain: str, recipient: str, secret: bytes) -> str:
    """`bounce_local+<b64url(recipient)>.<hmac8>@domain`, the return path that brings a bounce back with its proof.

    RFC 5321 limits a local part to 64 octets, so long recipient addresses give longer local parts than that;
    common MTAs accept them. The encoding is case-sensitive: the bounce mailbox must keep the local part's case.
    """
    if not secret:
        raise ValueError("a VERP secret is required")
    if not _LOCAL.fullmatch(bounce_local) or "+" in bounce_local:
        raise ValueError(f"bounce_local must be a plain local part without '+', got {bounce_local!r}")
    # `s.split() != [s]`: white space anywhere in s (str.split splits where str.isspace), in C, not a character
    # at a time: this runs for every message sent
    if not domain or "@" in domain or domain.split() != [domain]:
        raise ValueError(f"not a domain: {domain!r}")
    if "@" not in recipient or recipient.split() != [recipient]:
        raise ValueError(f"not an email address: {recipient!r}")
    encoded = base64.urlsafe_b64encode(recipient.encode("utf-8")).rstrip(b"=").decode("ascii")
    return f"{bounce_local}+{encoded}.{_tag(secret, recipient)}@{domain}"


def parse_verp(address: str, secret: bytes) -> str | None:
    """The recipient encoded in a VERP address, or None when it is not one of ours or its HMAC does not match."""
    if not secret:
        raise ValueError("a VERP secret is required")
    address = address.strip().strip("<>").strip()
    local, at, _domain = address.rpartition("@")
    _, plus, payload = local.rpartition("+")
    encoded, dot, tag = payload.rpartition(".")
    if not (at and plus and dot) or len(tag) != VERP_TAG_CHARS or not _B64URL.fullmatch(encoded):
        return None
    try:
        recipient = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    if "@" not in recipient or not hmac.compare_digest(tag, _tag(secret, recipient)):
        return None
    return recipient


# ---- reading reports -------------------------------------------------------------------------------------------------


def _clean(value: object) -> str:
    text = str(value)
    if not text.isascii():
        # Raw UTF-8 in headers (RFC 6533 reports) reaches us as surrogate escapes: turn them back into text.
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return " ".join(text.split())


def _fields(items: Iterable[tuple[str, object]]) -> dict[str, str]:
    """Header fields with lower-case names, first occurrence winning, whitespace (folding) collapsed."""
    out: dict[str, str] = {}
    for name, value in items:
        out.setdefault(name.lower(), _clean(value))
    return out


def _parse_blocks(text: str) -> list[dict[str, str]]:
    parser = HeaderParser(policy=email.policy.compat32)
    blocks = re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n"))
    return [f for f in (_fields(parser.parsestr(block.strip("\n") + "\n").items()) for block in blocks) if f]


def _text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload.decode(part.get_content_charset() or "utf-8", errors="replace")
    raw = part.get_payload()
    return raw if isinstance(raw, str) else ""


def _blocks(part: Message) -> list[dict[str, str]]:
    """The field blocks of a message/delivery-status or message/feedback-report part, however it was parsed."""
    payload = part.get_payload()
    if not isinstance(payload, list):
        return _parse_blocks(_text(part))
    blocks: list[dict[str, str]] = []
    for sub in payload:
        if not isinstance(sub, Message):
            continue
        blocks.append(_fields(sub.items()))
        # A subtype the parser does not know (message/global-delivery-status) arrives as one block and a body.
        body = sub.get_payload(decode=True)  # bytes: raw UTF-8 (RFC 6533) survives, unlike the str payload
        if isinstance(body, bytes) and body.strip():
            blocks.extend(_parse_blocks(body.decode("utf-8", errors="replace")))
    return [b for b in blocks if b]


def _address(value: str) -> str:
    """The address of a DSN recipient field ("rfc822; <jane@example.net>") or of a header ("Jane <jane@…>")."""
    if ";" in value:
        value = value.split(";", 1)[1]
    found = [addr for _, addr in getaddresses([value]) if "@" in addr]
    return found[0].strip() if found else ""


def _original_headers(report: Message) -> Message | None:
    """The headers of the message a report is about: a message/rfc822 part or a text/rfc822-headers part."""
    for part in report.walk():
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        elif kind in ("text/rfc822-headers", "text/global-headers"):
            return HeaderParser(policy=email.policy.compat32).parsestr(_text(part))
    return None


def _first_text(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain" and not part.is_multipart():
            return _text(part)
    return ""


def _status(status_field: str, diagnostic: str, action: str) -> str:
    for source in (status_field, diagnostic):
        m = _STATUS.search(source)
        if m:
            return ".".join(m.groups())
    m = _SMTP_REPLY.search(diagnostic)
    if m:
        return f"{m.group(1)}.0.0"
    return "4.0.0" if action == "delayed" else "5.0.0"


def _bounce_kind(action: str, status: str, diagnostic: str) -> BounceKind:
    if action == "delayed" or not status.startswith("5"):
        return "soft"
    if status in SOFT_PERMANENT_STATUSES or _MAILBOX_FULL.search(diagnostic):
        return "soft"
    return "hard"


def _diagnostic(value: str) -> str:
    # "smtp; 550 5.1.1 ..." → "550 5.1.1 ...": the type prefix is the DSN's, not the server's words.
    kind, semi, rest = value.partition(";")
    text = rest if semi and re.fullmatch(r"[A-Za-z0-9-]+", kind.strip()) else value
    return _clean(text)[:DIAGNOSTIC_LIMIT]


@dataclass(frozen=True, slots=True)
class _Reading:
    recipient: str
    kind: BounceKind
    status: str
    diagnostic: str
    original: Message | None
    envelope_from: str = ""  # the report's own copy of our return path (ARF Original-Mail-From)


def _read_dsn(report: Message) -> _Reading | None:
    status_part = next(
        (p for p in report.walk()
         if p.get_content_type() in ("message/delivery-status", "message/global-delivery-status")),
        None,
    )
    if status_part is None:
        return None
    recipients = [b for b in _blocks(status_part) if "action" in b]
    chosen = next((b for b in recipients if b["action"].lower().startswith("failed")), None) or next(
        (b for b in recipients if b["action"].lower().startswith("delayed")), None
    )
    if chosen is None:
        return None  # delivered, relayed or expanded: a success notice, not a bounce
    action = "delayed" if chosen["action"].lower().startswith("delayed") else "failed"
    diagnostic = _diagnostic(chosen.get("diagnostic-code", ""))
    status = _status(chosen.get("status", ""), diagnostic, action)
    original = _original_headers(report)
    recipient = _address(chosen.get("original-recipient", "")) or _address(chosen.get("final-recipient", ""))
    if not recipient and original is not None:
        recipient = _address(str(original.get("To", "")))
    return _Reading(recipient, _bounce_kind(action, status, diagnostic), status, diagnostic, original)


def _read_arf(report: Message) -> _Reading | None:
    feedback = next((p for p in report.walk() if p.get_content_type() == "message/feedback-report"), None)
    if feedback is None:
        return None
    blocks = _blocks(feedback)
    fields = blocks[0] if blocks else {}
    feedback_type = fields.get("feedback-type", "").lower()
    if feedback_type not in COMPLAINT_FEEDBACK_TYPES:
        return None  # not-spam, auth-failure, virus, other: nothing the subscriber asked us to stop
    original = _original_headers(report)
    recipient = _address(fields.get("original-rcpt-to", ""))
    if not recipient and original is not None:
        recipient = _address(str(original.get("To", "")))
    human = _clean(_first_text(report))[:DIAGNOSTIC_LIMIT]
    return _Reading(
        recipient, "complaint", feedback_type, human or f"feedback report: {feedback_type}", original,
        envelope_from=fields.get("original-mail-from", ""),
    )


def _read_plain_bounce(message: Message) -> _Reading | None:
    """Bounces without a DSN part that name the failed address in X-Failed-Recipients (Exim's default)."""
    failed = message.get("X-Failed-Recipients")
    if not failed:
        return None
    recipient = _address(str(failed).split(",")[0])
    # The server's words come before the copy of the returned message, which must not be read as a diagnosis.
    text = _RETURNED_COPY.split(_first_text(message), maxsplit=1)[0]
    line = next((ln for ln in text.splitlines() if _STATUS.search(ln) or _SMTP_REPLY.search(ln)), "")
    diagnostic = _clean(line)[:DIAGNOSTIC_LIMIT]
    status = _status("", diagnostic, "failed")
    full = bool(_MAILBOX_FULL.search(text))
    kind: BounceKind = "soft" if full else _bounce_kind("failed", status, diagnostic)
    return _Reading(recipient, kind, status, diagnostic, _original_headers(message))


def _read(message: Message) -> _Reading | None:
    for part in message.walk():
        if part.get_content_type() != "multipart/report":
            continue
        report_type = str(part.get_param("report-type", "") or "").lower()
        if report_type in ("delivery-status", "global-delivery-status"):
            return _read_dsn(part)
        if report_type == "feedback-report":
            return _read_arf(part)
    return _read_plain_bounce(message)


def _verp_recipient(message: Message, reading: _Reading, secret: bytes) -> str | None:
    candidates = [str(v) for name in _ENVELOPE_HEADERS for v in message.get_all(name, [])]
    if reading.envelope_from:
        candidates.append(reading.envelope_from)
    if reading.original is not None:
        # The complained-about message, as delivered, carries the return path it was sent with.
        candidates += [str(v) for v in reading.original.get_all("Return-Path", [])]
    for _, address in getaddresses(candidates):
        recipient = parse_verp(address, secret) if address else None
        if recipient is not None:
            return recipient
    return None


def classify(message: Message, *, verp_secret: bytes | None = None) -> BounceReport | None:
    """What a received message says about one of our recipients, or None when it is not a bounce or complaint.

    With `verp_secret`, a valid VERP address names the recipient (`verified=True`), whatever the report's text
    says: in the message's envelope headers (Delivered-To, X-Original-To, To...), in an ARF report's
    Original-Mail-From, or in the returned message's Return-Path. A report naming no recipient at all is None.
    """
    reading = _read(message)
    if reading is None:
        return None
    verified = _verp_recipient(message, reading, verp_secret) if verp_secret else None
    recipient = verified or reading.recipient
    if not recipient:
        return None
    message_id = reading.original.get("Message-ID") if reading.original is not None else None
    return BounceReport(
        recipient=recipient,
        kind=reading.kind,
        status=reading.status,
        diagnostic=reading.diagnostic,
        verified=verified is not None,
        message_id=_clean(message_id) if message_id else None,
    )


# ---- reading mailboxes -----------------------------------------------------------------------------------------------


def _parse_file(path: Path) -> EmailMessage:
    return BytesParser(_class=EmailMessage, policy=email.policy.default).parsebytes(path.read_bytes())


def iter_messages(path: Path) -> Iterator[EmailMessage]:
    """The messages in a single .eml file, a directory of .eml files, or a maildir (new/ then cur/), by name."""
    if path.is_file():
        yield _parse_file(path)
        return
    if not path.is_dir():
        raise FileNotFoundError(f"no such file or directory: {path}")
    if (path / "new").is_dir() or (path / "cur").is_dir():
        files = [
            f for sub in ("new", "cur") if (path / sub).is_dir()
            for f in sorted((path / sub).iterdir()) if f.is_file() and not f.name.startswith(".")
        ]
    else:
        files = sorted(f for f in path.iterdir() if f.is_file() and f.suffix.lower() == ".eml")
    for f in files:
        yield _parse_file(f)
