"""The MIME message of a rendered email: multipart/alternative (text, then HTML, both UTF-8) with the list headers.

Every message but `confirm` carries unsubscribe links, as RFC 2369 `List-Unsubscribe` with the RFC 8058 one-click
`List-Unsubscribe-Post`; a message without them is refused. Pure: no network, no database.
"""

from __future__ import annotations

import email.policy
import re
import uuid
from datetime import UTC, datetime
from email.headerregistry import BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import Policy
from email.utils import format_datetime

from aiosmtplib.email import flatten_message

from notifier.delivery.email.views import NOT_LIST_MAIL, Links, Rendered
from notifier.delivery.email.words import check_aware, one_line

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"(?=.{{1,253}}\Z){_LABEL}(?:\.{_LABEL})*")


class _VerbatimHeader(UnstructuredHeader, BaseHeader):
    """Written as it is: folding a long URL would turn it into RFC 2047 encoded words, which break the link."""

    def fold(self, *, policy: Policy) -> str:
        return f"{self.name}: {self}{policy.linesep}"


class _SubjectHeader(UnstructuredHeader, BaseHeader):
    """An ASCII subject folded at its spaces. The standard folder may break right after "Subject:", and some
    clients then show the subject with a leading space; non-ASCII subjects still get RFC 2047 encoded words."""

    def fold(self, *, policy: Policy) -> str:
        value = str(self)
        if not value.isascii() or "  " in value or "\t" in value:
            return super().fold(policy=policy)
        width = policy.max_line_length or 998
        lines = [f"{self.name}:"]
        for word in value.split(" "):
            if len(lines[-1]) + 1 + len(word) > width and lines[-1] != f"{self.name}:":
                lines.append("")
            lines[-1] += f" {word}"
        return policy.linesep.join(lines) + policy.linesep


def _message_policy() -> email.policy.EmailPolicy[EmailMessage]:
    registry = HeaderRegistry()
    registry.map_to_type("list-unsubscribe", _VerbatimHeader)
    registry.map_to_type("subject", _SubjectHeader)
    return email.policy.default.clone(header_factory=registry)


def _single_line(value: str, name: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError(f"{name} must be one line")
    return value.strip()


def _list_id(value: str) -> str:
    """RFC 2919: `Description <label.domain>`, or just `label.domain` which gets its angle brackets."""
    value = _single_line(value, "list_id")
    label = value[value.find("<") + 1 : value.rfind(">")] if "<" in value else value
    if not _DOMAIN.fullmatch(label):
        raise ValueError(f"list_id must be a dotted name such as alerts.example.org, got {value!r}")
    return value if "<" in value else f"<{value}>"


def build_message(
    rendered: Rendered,
    *,
    to: str,
    mail_from: str,
    links: Links | None,
    list_id: str,
    message_id_domain: str,
    return_path: str | None = None,
    now: datetime | None = None,
) -> EmailMessage:
    """The MIME message: multipart/alternative (text, then HTML, both UTF-8) with the list headers.

    Refuses (ValueError) a list message (anything but a confirmation or a notice to a partner) without unsubscribe
    links. `return_path` (a VERP
    address, see `notifier.delivery.email.bounces.verp_address`) is written as `Return-Path` so the sender can read it
    back; it must also be given to SMTP as the envelope sender (MAIL FROM), which is what bounces go to.
    """
    if rendered.kind not in NOT_LIST_MAIL and links is None:
        raise ValueError("only a confirmation or a notice may be sent without unsubscribe links")
    to = _single_line(to, "to")
    if "@" not in to:
        raise ValueError(f"not an email address: {to!r}")
    if not _DOMAIN.fullmatch(message_id_domain):
        raise ValueError(f"message_id_domain must be a domain name, got {message_id_domain!r}")
    when = now or datetime.now(UTC)
    check_aware(when, "now")

    msg = EmailMessage(policy=_message_policy())
    msg["From"] = _single_line(mail_from, "mail_from")
    msg["To"] = to
    msg["Subject"] = one_line(rendered.subject)
    msg["Date"] = format_datetime(when.astimezone(UTC))
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@{message_id_domain}>"
    msg["List-Id"] = _list_id(list_id)
    if links is not None:
        msg["List-Unsubscribe"] = f"<{links.list_unsubscribe}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["Auto-Submitted"] = "auto-generated"
    # Exchange and Outlook: no out-of-office or auto-replies to automatic mail (delivery reports still come).
    msg["X-Auto-Response-Suppress"] = "OOF, AutoReply"
    if return_path:
        address = _single_line(return_path, "return_path").strip("<>")
        if "@" not in address:
            raise ValueError(f"return_path must be an email address, got {return_path!r}")
        msg["Return-Path"] = f"<{address}>"
    # Quoted-printable: safe through any relay (no 8BITMIME needed, no line over 76) and still readable raw.
    msg.set_content(rendered.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return msg


def subject_line(subject: str) -> bytes:
    """The Subject header line of `build_message`'s message for `subject`, as that message flattened for the wire
    (ASCII: RFC 2047 encoded words where needed) writes it, folded lines and CRLF included. The generator folds each
    header on its own, so this is that line whatever the other headers are; it costs a small part of building and
    flattening the whole message."""
    msg = EmailMessage(policy=_message_policy())
    msg["Subject"] = one_line(subject)
    head, blank, _ = flatten_message(msg, cte_type="7bit").partition(b"\r\n\r\n")
    if not blank:
        raise RuntimeError("a message of one header flattened without the end of its header section")
    return head + b"\r\n"
