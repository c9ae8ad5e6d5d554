"""One SMTP transaction, command by command, on a connection aiosmtplib has opened: the envelope of a message,
the message as this server takes it, MAIL FROM, RCPT TO and DATA each with its own reply timeout, and RSET.

Where aiosmtplib would do more work than a plain message needs (parsing a plain address again, rewriting every line
of a message that already has CRLF line ends), the command goes out by a shorter road with the same bytes on the
wire and the same errors; anything else goes through aiosmtplib's own commands.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses, make_msgid

import aiosmtplib
from aiosmtplib.email import extract_recipients, extract_sender, flatten_message, parse_address

from notifier.delivery.email.replies import RecipientRefused, SendResult, Stage, classify_reply, refusal

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_MAILBOX = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_MESSAGE_ID_HEADER = re.compile(rb"^message-id:[ \t]*([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Envelope:
    """A message and where it goes: the MAIL FROM address, the usable recipients (and those refused for their
    syntax alone), and its Message-ID, which `add_message_id` says must be written in front of the message."""

    message: EmailMessage | bytes
    sender: str
    recipients: tuple[str, ...]
    invalid: tuple[RecipientRefused, ...]
    message_id: str
    add_message_id: bool


@dataclass(slots=True)
class Progress:
    """How far a transaction got: the command in flight, and the recipients refused so far."""

    stage: Stage = "mail"
    refused: list[RecipientRefused] = field(default_factory=list)


def make_envelope(
    message: EmailMessage | bytes, sender: str | None, recipients: list[str] | None, message_id: str | None, *,
    host: str,
) -> Envelope:
    """The envelope for `SmtpSender.send`'s arguments (see there); `host`, the server's, names a Message-ID made
    for a sender without a domain. Raises ValueError for the caller's mistakes."""
    if message_id is not None and not isinstance(message, bytes):
        raise ValueError("message_id is for a message given as bytes; a message object has its own header")
    if isinstance(message, bytes):
        if sender is None or recipients is None:
            raise ValueError("a message given as bytes needs its sender and recipients")
        raw_from: str | None = sender
        wanted: list[str] = recipients
    else:
        raw_from = sender if sender is not None else extract_sender(message)
        wanted = recipients if recipients is not None else extract_recipients(message)
    if raw_from is None:
        raise ValueError("the message has no From or Sender header and no sender was given")
    mail_from = "" if raw_from == "" else _mailbox(raw_from)  # "" is the null sender, <>
    if mail_from is None:
        raise ValueError(f"sender address {raw_from!r} cannot be used in SMTP")

    if not wanted:
        raise ValueError("the message has no recipients (no To, Cc or Bcc header and no recipients given)")
    good: dict[str, None] = {}  # ordered, and the same address twice would be delivered twice
    invalid: list[RecipientRefused] = []
    for raw in wanted:
        address = _mailbox(raw)
        if address is None:
            invalid.append(RecipientRefused(raw, None, f"invalid recipient address {raw!r}", True, True))
        else:
            good[address] = None

    if message_id is not None:
        existing: object = message_id
    else:
        existing = _message_id_of(message) if isinstance(message, bytes) else message.get("Message-ID")
    if existing is not None and str(existing).strip():
        message_id, add = str(existing).strip(), False
    else:
        domain = mail_from.rpartition("@")[2] or host
        if not domain.isascii() or not domain.strip("[]"):
            domain = "localhost"
        message_id, add = make_msgid(domain=domain), True
    return Envelope(message, mail_from, tuple(good), tuple(invalid), message_id, add)


def for_server(smtp: aiosmtplib.SMTP, envelope: Envelope) -> tuple[bytes, list[str], str] | SendResult:
    """What goes to this server for the envelope: the message after DATA, the MAIL FROM options and the encoding of
    the addresses; or why it cannot go at all."""
    utf8 = not (envelope.sender.isascii() and all(r.isascii() for r in envelope.recipients))
    if utf8 and not smtp.supports_extension("smtputf8"):
        message = "the server does not support SMTPUTF8, which non-ASCII addresses need"
        return SendResult(False, True, False, None, message)
    eight_bit = smtp.supports_extension("8bitmime")
    data = _wire(envelope.message, utf8=utf8, eight_bit=eight_bit)
    if envelope.add_message_id:
        data = b"Message-ID: " + envelope.message_id.encode("ascii") + b"\r\n" + data
    options: list[str] = []
    if smtp.supports_extension("size"):
        options.append(f"SIZE={len(data)}")
    if eight_bit:
        options.append("BODY=8BITMIME")
    if utf8:
        options.append("SMTPUTF8")
    return data, options, "utf-8" if utf8 else "ascii"


class ReplyDeadline:
    """The timeout for the reply to each command of a transaction, on one timer: `on_late` is called when a reply is
    due and has not come.

    Each command moves the reply's due time on; the timer, armed at the earliest due time, looks at it when it fires
    and, if it was moved on meanwhile, arms itself for the new one. Rescheduling a timeout for each command instead
    cancels a timer and pushes a new one on the loop's heap four times a message. `stop()` must be called when the
    transaction is over."""

    __slots__ = ("_armed_for", "_due", "_loop", "_on_late", "_seconds", "_timer")

    def __init__(self, on_late: Callable[[], None], seconds: float) -> None:
        self._on_late = on_late
        self._loop = asyncio.get_running_loop()
        self._seconds = seconds
        self._due = self._armed_for = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def start(self, replies: int = 1) -> None:
        """A command is about to go: its reply (or its `replies` replies) due within the timeout each from now."""
        self._due = due = self._loop.time() + self._seconds * replies
        if self._timer is None or due < self._armed_for:
            self._arm(due)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, due: float) -> None:
        self.stop()
        self._armed_for = due
        self._timer = self._loop.call_at(due, self._fired)

    def _fired(self) -> None:
        self._timer = None
        if self._due > self._armed_for:
            self._arm(self._due)
        else:
            self._on_late()


async def exchange(
    smtp: aiosmtplib.SMTP, envelope: Envelope, prepared: tuple[bytes, list[str], str], timeout: float,
    progress: Progress,
) -> aiosmtplib.SMTPResponse | None:
    """MAIL FROM, RCPT TO for each recipient, then DATA unless every recipient was refused (None then). A reply
    that refuses the message, a lost connection or a timeout is raised, with `progress` saying where it came.

    The timeout for each reply is kept by one deadline moved on before each command, not by aiosmtplib's own, which
    wraps every reply in `asyncio.wait_for`: a future, a timer and an extra turn of the event loop per reply, four
    times a message. The commands are given timeout=None for that.
    """
    data, options, encoding = prepared
    async with asyncio.timeout(None) as deadline:
        # when a reply is late, the `asyncio.timeout` expires at once: a TimeoutError out of here, as its own timer
        # would raise it
        loop = asyncio.get_running_loop()
        reply = ReplyDeadline(lambda: deadline.reschedule(loop.time()), timeout)
        try:
            reply.start()
            await _mail(smtp, envelope.sender, options, encoding)
            progress.stage = "rcpt"
            for address in envelope.recipients:
                reply.start()
                try:
                    await _rcpt(smtp, address, encoding)
                except aiosmtplib.SMTPRecipientRefused as e:
                    if e.code == 421:
                        raise
                    progress.refused.append(refusal(address, classify_reply(e.code, e.message, stage="rcpt")))
            if len(progress.refused) < len(envelope.recipients):
                progress.stage = "data"
                return await _data(smtp, data, reply)
        finally:
            reply.stop()
    return None


async def reset(smtp: aiosmtplib.SMTP) -> bool:
    """RSET after a refused transaction; False when the connection is no longer fit for the next message."""
    try:
        await smtp.rset()
    except (aiosmtplib.SMTPException, OSError):
        smtp.close()
        return False
    return smtp.is_connected


async def _mail(smtp: aiosmtplib.SMTP, sender: str, options: list[str], encoding: str) -> None:
    """MAIL FROM, as `smtp.mail` sends it. A plain address (or the null sender) goes as it is: aiosmtplib would
    parse it again, a character at a time, which for long VERP return paths costs as much as the rest of the
    transaction."""
    if sender and not plain_mailbox(sender):
        await smtp.mail(sender, options=options, encoding=encoding, timeout=None)
        return
    line = b"FROM:<" + sender.encode(encoding) + b">"
    response = await smtp.execute_command(b"MAIL", line, *(o.encode("ascii") for o in options), timeout=None)
    if response.code != aiosmtplib.SMTPStatus.completed:
        raise aiosmtplib.SMTPSenderRefused(response.code, response.message, sender)


async def _rcpt(smtp: aiosmtplib.SMTP, recipient: str, encoding: str) -> None:
    """RCPT TO, as `smtp.rcpt` sends it; a plain address as it is (see `_mail`)."""
    if not plain_mailbox(recipient):
        await smtp.rcpt(recipient, encoding=encoding, timeout=None)
        return
    response = await smtp.execute_command(b"RCPT", b"TO:<" + recipient.encode(encoding) + b">", timeout=None)
    if response.code not in (aiosmtplib.SMTPStatus.completed, aiosmtplib.SMTPStatus.will_forward):
        raise aiosmtplib.SMTPRecipientRefused(response.code, response.message, recipient)


async def _data(smtp: aiosmtplib.SMTP, data: bytes, reply: ReplyDeadline) -> aiosmtplib.SMTPResponse:
    """DATA and the message, as `smtp.data` sends them, each reply due within the timeout (see `exchange`).

    `smtp.data` rewrites every message with two regular expressions (line ends to CRLF, a dot doubled at the start
    of a line), which for a message of a few kB costs more CPU than all of our own work on it. A message that
    already has CRLF line ends only, as flattened and merged messages do, needs only its dots doubled, which
    `bytes.replace` does at memory speed; it then goes out through the same protocol object, reply by reply, with
    the same handling of a lost connection. Anything else goes through `smtp.data`.
    """
    wire = dot_stuffed(data)
    if wire is None:
        # one deadline for both replies here, twice the timeout: aiosmtplib sends the message as soon as DATA's
        # reply is in
        reply.start(2)
        return await smtp.data(data, timeout=None)
    reply.start()
    start = await smtp.execute_command(b"DATA", timeout=None)
    if start.code != aiosmtplib.SMTPStatus.start_input:
        raise aiosmtplib.SMTPDataError(start.code, start.message)
    protocol = smtp.protocol
    if protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    reply.start()
    try:
        protocol.write(wire)
        response = await protocol.read_response(timeout=None)
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
        smtp.close()  # as smtp.data does: the protocol is out of step with the server
        raise
    if response.code != aiosmtplib.SMTPStatus.completed:
        raise aiosmtplib.SMTPDataError(response.code, response.message)
    return response


def plain_mailbox(address: str) -> bool:
    """Whether `address` is a bare dot-atom address, which goes on a MAIL or RCPT line as it is."""
    return _PLAIN_MAILBOX.fullmatch(address) is not None


def dot_stuffed(data: bytes) -> bytes | None:
    """The message as it goes after DATA (RFC 5321 4.5.2: a line's leading dot doubled, then the lone dot that
    ends it), or None unless every line ends with CRLF, the last one included."""
    crlf = data.count(b"\r\n")
    if not data.endswith(b"\r\n") or data.count(b"\n") != crlf or data.count(b"\r") != crlf:
        return None
    stuffed = data.replace(b"\n.", b"\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + b".\r\n"


def _wire(message: EmailMessage | bytes, *, utf8: bool, eight_bit: bool) -> bytes:
    """The message as sent after DATA: flattened for this server, or as given when it came as bytes."""
    if isinstance(message, bytes):
        return message
    return flatten_message(message, utf8=utf8, cte_type="8bit" if eight_bit else "7bit")


def _message_id_of(data: bytes) -> str | None:
    """The Message-ID header of a flattened message, unfolded; None when its header section has none."""
    head = re.split(rb"\r?\n\r?\n", data, maxsplit=1)[0]
    found = _MESSAGE_ID_HEADER.search(head)
    return " ".join(found[1].decode("ascii", "replace").split()) if found else None


def _mailbox(raw: str) -> str | None:
    """The one address in `raw` ("a@b" or "Name <a@b>"), or None when it holds none, several, or a line break."""
    if _PLAIN_MAILBOX.fullmatch(raw):
        # the usual case, a bare dot-atom address, is its own answer; the email package's parser walks long
        # addresses (VERP return paths) a character at a time
        return raw
    if _CONTROL.search(raw):
        return None
    found = getaddresses([raw])
    if len(found) != 1:
        return None
    address = found[0][1]
    local, at, domain = address.rpartition("@")
    if not (local and at and domain):
        return None
    try:
        parse_address(address)  # refuses what could smuggle parameters onto the MAIL or RCPT line
    except ValueError:
        return None
    return address

