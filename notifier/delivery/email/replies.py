"""What a mail server's replies mean for a message: `SendResult`, how replies are classified, and when to try again.

Every outcome of a send is a `SendResult` that says whether the message was accepted (`ok`), whether trying again
later can help (`permanent`), and whether the recipient address itself is bad and should be suppressed
(`address_bad`).

Classification:
- 2xx: accepted.
- 4xx, connection refused / reset / dropped, timeouts: temporary, retry later with `next_retry`.
- 5xx on RCPT or DATA: permanent. `address_bad` when the enhanced status code or the reply text says the recipient
  address is bad (5.1.1, 5.1.2, 5.1.3, 5.1.6, 5.1.10, 5.2.1; "user unknown", "no such user", "mailbox
  unavailable", ...). A full mailbox (552, 5.2.2), a message too big, and 5.7.x policy rejections are permanent but
  not `address_bad`.
- 5xx while opening the session (greeting, EHLO, STARTTLS, AUTH) or on MAIL FROM: temporary, because it says the
  relay is refusing *us* (bad credentials, unverified sender), which an operator can fix, and the messages should
  then go out. The exceptions are replies about this message (too big, bad content), which are permanent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

Stage = Literal["connect", "mail", "rcpt", "data"]

# After the first failed try, wait 1 min; give up after the last delay has been used (about 45 hours in all).
EMAIL_RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(hours=24),
)
EMAIL_MAX_ATTEMPTS = len(EMAIL_RETRY_DELAYS) + 1


def next_retry(attempts: int) -> timedelta | None:
    """The wait before the next try after `attempts` failed tries (1 = the first failed), or None to give up."""
    if attempts < 1:
        raise ValueError(f"attempts counts failed tries and starts at 1, got {attempts}")
    if attempts > len(EMAIL_RETRY_DELAYS):
        return None
    return EMAIL_RETRY_DELAYS[attempts - 1]


@dataclass(frozen=True, slots=True)
class RecipientRefused:
    """One recipient the server (or the address syntax) refused while others may have been accepted."""

    address: str
    code: int | None
    message: str
    permanent: bool
    address_bad: bool


@dataclass(frozen=True, slots=True)
class SendResult:
    """What happened to one message. `refused` lists recipients refused one by one (with several recipients)."""

    ok: bool
    permanent: bool
    address_bad: bool
    code: int | None
    message: str
    message_id: str | None = None
    refused: tuple[RecipientRefused, ...] = ()

    @property
    def temporary(self) -> bool:
        """Not sent, and worth trying again later."""
        return not self.ok and not self.permanent


_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")

# Enhanced status codes (RFC 3463) that say the recipient address is bad.
_BAD_ADDRESS_CODES = frozenset({(1, 1), (1, 2), (1, 3), (1, 6), (1, 10), (2, 1)})
# Subjects whose codes leave the address question open: other address status, other mailbox status, undefined,
# routing (5.4.4 for a domain that does not exist) and protocol (some servers answer "5.5.0 mailbox unavailable").
_TEXT_DECIDES = frozenset({(0, 0), (1, 0), (2, 0)})
_TEXT_DECIDES_SUBJECTS = frozenset({0, 4, 5})

_BAD_ADDRESS_TEXT = re.compile(
    r"user unknown|unknown user|no such (?:user|mailbox|recipient|address|account)|unknown (?:recipient|mailbox)"
    r"|(?:recipient|mailbox|addressee) unknown|mailbox (?:unavailable|not found|disabled|is disabled)"
    r"|(?:user|recipient|address|mailbox|account) not found|(?:does not|doesn't) exist"
    r"|invalid (?:recipient|mailbox|address)|not a valid (?:recipient|mailbox|address)|bad destination mailbox"
    r"|unroute?able address|non-?existent (?:domain|user|address|mailbox)|domain not found"
    r"|account (?:has been |is )?disabled|user doesn't have|no mailbox here",
    re.IGNORECASE,
)
# Words that mean the refusal is about something other than the address existing, whatever else the text says.
_NOT_ADDRESS_TEXT = re.compile(
    r"full|quota|storage|insufficient|too (?:large|big|many)|size|exceed|spam|block|blacklist|reputation|policy"
    r"|relay|rbl|spf|dkim|dmarc|virus|content|rate limit|greylist|temporar",
    re.IGNORECASE,
)


def _enhanced(text: str) -> tuple[int, int, int] | None:
    match = _ENHANCED.match(text)
    if match is None:
        return None
    return int(match[1]), int(match[2]), int(match[3])


def reply_line(code: int, text: str) -> str:
    """A server reply as one line: multi-line replies joined, the enhanced code kept only once."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return str(code)
    first = _ENHANCED.match(lines[0])
    if first is not None:
        prefix = first[0].strip()
        lines[1:] = [line.removeprefix(prefix).strip() for line in lines[1:]]
    return f"{code} " + " ".join(line for line in lines if line)


def _address_bad(text: str) -> bool:
    enhanced = _enhanced(text)
    if enhanced is not None:
        _, subject, detail = enhanced
        if (subject, detail) in _BAD_ADDRESS_CODES:
            return True
        if (subject, detail) not in _TEXT_DECIDES and subject not in _TEXT_DECIDES_SUBJECTS:
            return False
    return bool(_BAD_ADDRESS_TEXT.search(text)) and not _NOT_ADDRESS_TEXT.search(text)


def _about_the_message(code: int, text: str) -> bool:
    """A refusal of this message's size or content, which no retry and no operator can fix."""
    enhanced = _enhanced(text)
    if enhanced is None:
        return code == 552  # RFC 1870: 552 to MAIL FROM ... SIZE= is a size beyond the server's fixed maximum
    _, subject, detail = enhanced
    return (subject, detail) in {(3, 4), (2, 3)} or subject == 6


def classify_reply(code: int, text: str, *, stage: Stage = "rcpt") -> SendResult:
    """Classify a server reply to a command at `stage` (see the module docstring for the rules)."""
    message = reply_line(code, text)
    if 200 <= code < 300:
        return SendResult(ok=True, permanent=False, address_bad=False, code=code, message=message)
    if 500 <= code < 600 and stage in ("rcpt", "data"):
        return SendResult(ok=False, permanent=True, address_bad=_address_bad(text), code=code, message=message)
    if 500 <= code < 600 and stage == "mail" and _about_the_message(code, text):
        return SendResult(ok=False, permanent=True, address_bad=False, code=code, message=message)
    return SendResult(ok=False, permanent=False, address_bad=False, code=code if code > 0 else None, message=message)


def temporary_failure(message: str) -> SendResult:
    """Not sent for a reason no server reply states (a lost connection, a timeout): try again later."""
    return SendResult(ok=False, permanent=False, address_bad=False, code=None, message=message)


def refusal(address: str, result: SendResult) -> RecipientRefused:
    """`result`, a refusal of one recipient, as that recipient's entry in `SendResult.refused`."""
    return RecipientRefused(address, result.code, result.message, result.permanent, result.address_bad)


def all_refused(refusals: Sequence[RecipientRefused]) -> SendResult:
    """The result when every recipient was refused: permanent (or address_bad) only when it is for each of them."""
    first = refusals[0]
    message = first.message if len(refusals) == 1 else f"all {len(refusals)} recipients refused; {first.message}"
    return SendResult(
        ok=False,
        permanent=all(r.permanent for r in refusals),
        address_bad=all(r.address_bad for r in refusals),
        code=first.code,
        message=message,
    )
