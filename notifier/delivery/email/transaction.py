"""One SMTP transaction driven by the server's replies: each command written from the protocol's callback the moment
the reply before it is read, and one future for the whole transaction.

`smtp.exchange` sends a transaction command by command, each awaited in the sending task: a reply completes a future,
the future wakes the task, the task writes the next command, a turn of the event loop for each, four times a message.
For the usual message (plain addresses, CRLF line ends) `start` does the same on the connection aiosmtplib opened for
half the CPU (`bench/results/email_send.md`), and a reply no longer waits behind whatever else the loop has ready
before the next command goes. It stands in for aiosmtplib's protocol on the transport for the length of the
transaction and hands the transport back after the last reply. What aiosmtplib's protocol must know meanwhile (the
connection lost, an end of file, writing paused and resumed) is passed on to it, so that afterwards it is in the
state it would be in had it read the replies itself.

The same bytes go on the wire, and the same errors come out, as from `smtp.exchange`: a refusal at MAIL FROM is
SMTPSenderRefused, a 421 at RCPT TO is SMTPRecipientRefused, another refused recipient is recorded in `progress` and
the others go on, a refusal of DATA or of the message is SMTPDataError, a malformed or endless reply
SMTPResponseException, a lost connection SMTPServerDisconnected, and a reply later than the timeout TimeoutError.
"""

from __future__ import annotations

import asyncio
from typing import cast

import aiosmtplib
from aiosmtplib.protocol import SMTPProtocol

from notifier.delivery.email.replies import classify_reply, refusal
from notifier.delivery.email.smtp import Envelope, Progress, ReplyDeadline, dot_stuffed, plain_mailbox

# As aiosmtplib reads replies: a line no longer than this, a whole reply (continuation lines and all) no longer than
# four of them, so that a server streaming without line ends cannot fill memory.
_MAX_LINE = 8192
_MAX_REPLY = 4 * _MAX_LINE

Reply = aiosmtplib.SMTPResponse
_INVALID = aiosmtplib.SMTPStatus.invalid_response.value


def start(
    smtp: aiosmtplib.SMTP, envelope: Envelope, prepared: tuple[bytes, list[str], str], timeout: float,
    progress: Progress,
) -> asyncio.Future[Reply | None] | None:
    """Start the transaction for `envelope` (`prepared` by `smtp.for_server`) and return the future of its last
    reply, as `exchange` returns it (None when every recipient was refused); or None, and nothing sent, when this
    message or connection needs `exchange`: an address that aiosmtplib must quote, a message without CRLF line ends,
    a connection not on aiosmtplib's own protocol."""
    data, options, encoding = prepared
    protocol = smtp.protocol
    if not isinstance(protocol, SMTPProtocol) or protocol.transport is None or protocol.transport.is_closing():
        return None
    if envelope.sender and not plain_mailbox(envelope.sender):
        return None
    if not all(plain_mailbox(r) for r in envelope.recipients):
        return None
    wire = dot_stuffed(data)
    if wire is None:
        return None
    mail = b" ".join([b"MAIL FROM:<" + envelope.sender.encode(encoding) + b">", *(o.encode("ascii") for o in options)])
    rcpts = [b"RCPT TO:<" + r.encode(encoding) + b">\r\n" for r in envelope.recipients]
    transaction = _Transaction(protocol, cast(asyncio.Transport, protocol.transport), envelope, rcpts, wire, timeout,
                               progress)
    transaction.begin(mail + b"\r\n")
    return transaction.done


class _Transaction(asyncio.Protocol):
    """The protocol on the transport while one transaction runs (see the module's docstring)."""

    def __init__(
        self, protocol: SMTPProtocol, transport: asyncio.Transport, envelope: Envelope, rcpts: list[bytes],
        wire: bytes, timeout: float, progress: Progress,
    ) -> None:
        self._protocol = protocol
        self._transport = transport
        self._envelope = envelope
        self._rcpts = rcpts
        self._wire = wire
        self._progress = progress
        self._step = "mail"  # the command whose reply is awaited: mail, rcpt, data, then the message
        self._answered = 0  # recipients answered so far
        self._buffer = bytearray()
        self._deadline = ReplyDeadline(self._late, timeout)
        self.done: asyncio.Future[Reply | None] = asyncio.get_running_loop().create_future()

    def begin(self, mail: bytes) -> None:
        self._transport.set_protocol(self)
        self._send(mail)

    # -- the transport's callbacks --------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            if self.done.cancelled():
                self._abandon()
            return
        if not self._buffer and data[3:4] == b" " and data.find(b"\n") == len(data) - 1 and len(data) <= _MAX_LINE:
            # the usual read: one whole reply of one line, read as `_next_reply` reads it, without the buffer
            try:
                code = int(data[:3])
            except ValueError:
                pass  # malformed: `_next_reply` says so
            else:
                self._answer(Reply(code, data[4:].strip(b" \t\r\n").decode("utf-8", "surrogateescape")))
                return
        self._buffer += data
        if len(self._buffer) > _MAX_REPLY:  # as aiosmtplib: too much at once, whole replies or not
            self._fail(aiosmtplib.SMTPResponseException(_INVALID, "Response too long"))
            return
        while not self.done.done():
            try:
                reply = self._next_reply()
            except aiosmtplib.SMTPResponseException as e:
                self._fail(e)
                return
            if reply is None:
                return
            self._answer(reply)

    def eof_received(self) -> bool:
        self._protocol.eof_received()
        self._fail(aiosmtplib.SMTPServerDisconnected("Unexpected EOF received"))
        return False  # the transport closes, and connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._protocol.connection_lost(exc)
        lost = aiosmtplib.SMTPServerDisconnected("Connection lost")
        lost.__cause__ = exc
        self._fail(lost)

    def pause_writing(self) -> None:
        self._protocol.pause_writing()

    def resume_writing(self) -> None:
        self._protocol.resume_writing()

    # -- the transaction ------------------------------------------------------------------------------------------

    def _answer(self, reply: Reply) -> None:
        code, text = reply.code, reply.message
        if self._step == "mail":
            if code != aiosmtplib.SMTPStatus.completed:
                self._fail(aiosmtplib.SMTPSenderRefused(code, text, self._envelope.sender))
                return
            self._step = self._progress.stage = "rcpt"
            self._send(self._rcpts[0])
        elif self._step == "rcpt":
            self._recipient_answered(code, text)
        elif self._step == "data":
            if code != aiosmtplib.SMTPStatus.start_input:
                self._fail(aiosmtplib.SMTPDataError(code, text))
                return
            self._step = "message"
            self._send(self._wire)
        elif code != aiosmtplib.SMTPStatus.completed:
            self._fail(aiosmtplib.SMTPDataError(code, text))
        else:
            self._finish(reply)

    def _recipient_answered(self, code: int, text: str) -> None:
        recipients = self._envelope.recipients
        address = recipients[self._answered]
        self._answered += 1
        if code not in (aiosmtplib.SMTPStatus.completed, aiosmtplib.SMTPStatus.will_forward):
            if code == aiosmtplib.SMTPStatus.domain_unavailable:  # 421: the server is closing the connection
                self._fail(aiosmtplib.SMTPRecipientRefused(code, text, address))
                return
            self._progress.refused.append(refusal(address, classify_reply(code, text, stage="rcpt")))
        if self._answered < len(recipients):
            self._send(self._rcpts[self._answered])
        elif len(self._progress.refused) == len(recipients):
            self._finish(None)
        else:
            self._step = self._progress.stage = "data"
            self._send(b"DATA\r\n")

    def _send(self, line: bytes) -> None:
        self._deadline.start()
        self._transport.write(line)

    def _late(self) -> None:
        if self.done.cancelled():
            self._abandon()
        else:
            self._fail(TimeoutError())

    def _abandon(self) -> None:
        """The awaiting task was cancelled mid-transaction: the server is still answering commands no one will
        read, so the connection cannot carry another, and is closed (as `SmtpSender` closes it anyway)."""
        self._give_back()
        self._transport.close()

    def _finish(self, reply: Reply | None) -> None:
        self._give_back()
        self.done.set_result(reply)

    def _fail(self, error: BaseException) -> None:
        self._give_back()
        if not self.done.done():
            self.done.set_exception(error)
            self.done.exception()  # retrieved, for a sending task cancelled meanwhile that never awaits it

    def _give_back(self) -> None:
        """aiosmtplib's protocol takes the transport back. Bytes read after the last reply, which only a server out
        of step sends, are dropped; aiosmtplib would keep them for the next reply, to the same end: a connection
        whose replies no longer match its commands, closed at the next one that does not fit (see
        `SmtpSender._failed`)."""
        self._deadline.stop()
        if self._transport.get_protocol() is self:
            self._transport.set_protocol(self._protocol)

    def _next_reply(self) -> Reply | None:
        """The first whole reply in the buffer, taken out of it, as aiosmtplib reads it; None until one is whole."""
        buffer = self._buffer
        offset = 0
        lines: list[bytes] = []
        while (end := buffer.find(b"\n", offset)) != -1:
            line = bytes(buffer[offset:end + 1])
            if len(line) > _MAX_LINE:
                raise aiosmtplib.SMTPResponseException(_INVALID, "Response too long")
            try:
                code = int(line[:3])
            except ValueError:
                raise aiosmtplib.SMTPResponseException(
                    _INVALID,
                    f"Malformed SMTP response line: {line.decode('utf-8', errors='ignore')}",
                ) from None
            offset = end + 1
            lines.append(line[4:].strip(b" \t\r\n"))
            if line[3:4] != b"-":
                del buffer[:offset]
                return Reply(code, b"\n".join(lines).decode("utf-8", "surrogateescape"))
        return None  # (the buffer's size is held to `_MAX_REPLY` as data comes in)
