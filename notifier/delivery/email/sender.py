"""Sending email over SMTP: a small pool of reused connections, a rate limit, and results the outbox can act on.

Error style: `SmtpSender.send` never raises for anything the mail server or the network does. Every outcome comes
back as a `SendResult` that says whether the message was accepted (`ok`), whether trying again later can help
(`permanent`), and whether the recipient address itself is bad and should be suppressed (`address_bad`). Exceptions
are kept for mistakes by the caller: a message with no sender or no recipients, or a sender that cannot be written
on an SMTP command line (`ValueError`), and sending after `close()` (`RuntimeError`).

The one immediate retry, and why it can never send a message twice: when the server closes a connection (a 421
reply, an idle timeout, a dropped socket) at a point where it cannot have accepted the message, the message is tried
once more on a freshly opened connection. "Cannot have accepted" means the failure came while opening the session,
during MAIL FROM or RCPT TO, or as an explicit 421 reply at any stage (an explicit non-2xx reply to the end of DATA
means the server did not take the message). A connection lost or a timeout during DATA, once the content may have
reached the server, is never retried here: the server may have queued the message and lost only its reply, so the
result is temporary and the outbox decides, later, with its own schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from types import TracebackType
from typing import Self

import aiosmtplib

from notifier.delivery.email import transaction
from notifier.delivery.email.replies import SendResult, all_refused, classify_reply, reply_line, temporary_failure
from notifier.delivery.email.smtp import Envelope, Progress, exchange, for_server, make_envelope, reset
from notifier.delivery.email.smtp_config import SmtpConfig

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------------------------
# Rate limit


class TokenBucket:
    """Spaces events to `rate` a second on average, with bursts of up to `burst`.

    Each `reserve` takes a token at once, even one that will only exist in the future, and answers how long to wait
    for it; so concurrent callers queue up without a lock and are spaced evenly.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a positive number per second, got {rate}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        self.rate = rate
        self.burst = burst
        self.granted = 0
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = clock()

    def reserve(self) -> float:
        """Take one token and return the seconds to wait before using it (0.0 when one is available now)."""
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        self._tokens -= 1.0
        self.granted += 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    async def acquire(self) -> float:
        """Wait for a token; returns the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            await self._sleep(wait)
        return wait


# ---------------------------------------------------------------------------------------------------------------------
# The sender


@dataclass(eq=False, slots=True)
class _Connection:
    smtp: aiosmtplib.SMTP
    opened_at: float
    last_used: float
    messages: int = 0


@dataclass(frozen=True, slots=True)
class _Outcome:
    result: SendResult
    keep: bool  # the connection is clean and may carry the next message
    retry: bool  # the server closed the connection before it could have accepted the message

class SmtpSender:
    """Sends messages over a small pool of reused SMTP connections, opened lazily, with an optional rate limit.

    Safe to share between tasks: each connection carries one transaction at a time, and at most `connections` are
    open. Use it as an async context manager, or call `close()` when done.

    A connection is reused until it has carried `max_messages_per_connection` messages or is `max_connection_seconds`
    old, as Postfix's client reuses its connections (a limit of time, 300 s), with a limit of count that stays
    within the 1,000 that Exim, for one, takes on a connection by default. Opening a connection costs both sides
    far more than a message does, a TLS handshake most of all: at the former limit of 100, the openings cost the
    benchmark's server about a tenth of its CPU a message. A server that takes fewer closes the connection with a
    421 reply, and the message is tried again on a new one (see the module's docstring).
    """

    def __init__(
        self,
        config: SmtpConfig,
        *,
        connections: int = 4,
        rate_per_second: float | None = None,
        burst: int = 1,
        max_messages_per_connection: int = 1000,
        max_connection_seconds: float = 300.0,
        max_idle_seconds: float = 30.0,
        local_hostname: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if connections < 1:
            raise ValueError(f"connections must be at least 1, got {connections}")
        if max_messages_per_connection < 1:
            raise ValueError(f"max_messages_per_connection must be at least 1, got {max_messages_per_connection}")
        if not max_connection_seconds > 0:
            raise ValueError(f"max_connection_seconds must be positive, got {max_connection_seconds}")
        if not max_idle_seconds > 0:
            raise ValueError(f"max_idle_seconds must be positive, got {max_idle_seconds}")
        self.config = config
        self.connections = connections
        self.max_messages_per_connection = max_messages_per_connection
        self.max_connection_seconds = max_connection_seconds
        self.max_idle_seconds = max_idle_seconds
        self.rate_limit = (
            TokenBucket(rate_per_second, burst=burst, clock=clock, sleep=sleep) if rate_per_second is not None else None
        )
        self.opened = 0  # connections opened so far
        self._local_hostname = local_hostname
        self._clock = clock
        self._slots = asyncio.Semaphore(connections)
        self._idle: list[_Connection] = []
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    async def send(
        self,
        message: EmailMessage | bytes,
        *,
        sender: str | None = None,
        recipients: list[str] | None = None,
        message_id: str | None = None,
    ) -> SendResult:
        """Send one message; the envelope comes from `sender`/`recipients` or else from its headers (Bcc is not sent).

        A message without a Message-ID gets one on the wire (the message object is left as it is); the result
        carries it either way. `message` may also be given already flattened, as the bytes to send after DATA (CRLF
        line ends, ASCII unless the server takes 8BITMIME), for a caller that builds many similar messages itself;
        then `sender` and `recipients` are required, and `message_id` may say what its Message-ID header holds, so
        that the bytes are not searched for it.
        """
        if self._closed:
            raise RuntimeError("this SmtpSender is closed")
        envelope = make_envelope(message, sender, recipients, message_id, host=self.config.host)
        if not envelope.recipients:
            result = all_refused(envelope.invalid)
            return dataclasses.replace(result, message_id=envelope.message_id, refused=envelope.invalid)
        if self.rate_limit is not None:
            await self.rate_limit.acquire()
        async with self._slots:
            first = await self._attempt(envelope, self._take_idle())
            outcome = first
            if first.retry:
                log.info("SMTP server closed the connection before taking the message (%s); trying once more on a "
                         "new connection", first.result.message)
                outcome = await self._attempt(envelope, None)
        result = outcome.result
        if result.message_id == envelope.message_id and not envelope.invalid:
            return result  # as sent: `_transact` names the message already
        return dataclasses.replace(result, message_id=envelope.message_id, refused=result.refused + envelope.invalid)

    async def close(self) -> None:
        """Wait for sends in progress, then say QUIT on every open connection. Safe to call twice."""
        self._closed = True
        for _ in range(self.connections):
            await self._slots.acquire()
        try:
            idle, self._idle = self._idle, []
            await asyncio.gather(*(self._discard(conn, polite=True) for conn in idle))
        finally:
            for _ in range(self.connections):
                self._slots.release()

    # -- the pool -------------------------------------------------------------------------------------------------

    def _take_idle(self) -> _Connection | None:
        """The most recently used healthy connection; those idle too long, too old or closed by the server are
        dropped on the way."""
        now = self._clock()
        keep: list[_Connection] = []
        for conn in self._idle:
            if conn.smtp.is_connected and now - conn.last_used <= self.max_idle_seconds and self._young(conn, now):
                keep.append(conn)
            else:
                # a connection idle this long may be dead without our knowing: a QUIT could wait a full timeout
                conn.smtp.close()
        self._idle = keep
        return self._idle.pop() if self._idle else None

    async def _release(self, conn: _Connection, *, keep: bool) -> None:
        clean = keep and conn.smtp.is_connected
        now = self._clock()
        if clean and not self._closed and conn.messages < self.max_messages_per_connection and self._young(conn, now):
            conn.last_used = now
            self._idle.append(conn)
        else:
            await self._discard(conn, polite=clean)

    def _young(self, conn: _Connection, now: float) -> bool:
        """Not yet `max_connection_seconds` old: it may carry another message."""
        return now - conn.opened_at < self.max_connection_seconds

    async def _discard(self, conn: _Connection, *, polite: bool) -> None:
        if polite and conn.smtp.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await conn.smtp.quit(timeout=min(self.config.timeout, 5.0))
        conn.smtp.close()

    async def _hostname(self) -> str:
        if self._local_hostname is None:
            # aiosmtplib would look this up for every connection; once is enough
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        return self._local_hostname

    async def _open(self) -> _Connection | SendResult:
        c = self.config
        smtp = aiosmtplib.SMTP(
            hostname=c.host,
            port=c.port,
            username=c.username,
            password=c.password,
            local_hostname=await self._hostname(),
            timeout=c.timeout,
            use_tls=c.use_tls,
            start_tls=c.starttls,
            validate_certs=c.validate_certs,
        )
        try:
            await smtp.connect()
            if smtp.is_ehlo_or_helo_needed:
                try:
                    await smtp.ehlo()
                except aiosmtplib.SMTPHeloError:
                    if not smtp.is_connected:
                        raise
                    await smtp.helo()
        except aiosmtplib.SMTPResponseException as e:
            smtp.close()
            result = classify_reply(e.code, e.message, stage="connect")
            result = dataclasses.replace(result, message=f"cannot open an SMTP session with {c.display}: "
                                         f"{_describe(e)}{result.message}")
            log.warning("%s", result.message)
            return result
        except (aiosmtplib.SMTPException, OSError) as e:  # refused, reset, timed out, TLS failure, no AUTH offered
            smtp.close()
            result = temporary_failure(f"cannot open an SMTP session with {c.display}: {type(e).__name__}: {e}")
            log.warning("%s", result.message)
            return result
        self.opened += 1
        log.debug("SMTP connection %d opened to %s", self.opened, c.display)
        now = self._clock()
        return _Connection(smtp, opened_at=now, last_used=now)

    async def _attempt(self, envelope: Envelope, conn: _Connection | None) -> _Outcome:
        if conn is None:
            opened = await self._open()
            if isinstance(opened, SendResult):
                return _Outcome(opened, keep=False, retry=False)
            conn = opened
        try:
            outcome = await self._transact(conn, envelope)
        except BaseException:
            # cancelled (or a bug) mid-transaction: the connection's state is unknown, so it is not reused
            conn.smtp.close()
            raise
        await self._release(conn, keep=outcome.keep)
        return outcome

    # -- one transaction ------------------------------------------------------------------------------------------

    async def _transact(self, conn: _Connection, envelope: Envelope) -> _Outcome:
        smtp = conn.smtp
        prepared = for_server(smtp, envelope)
        if isinstance(prepared, SendResult):
            return _Outcome(prepared, keep=True, retry=False)
        progress = Progress()
        try:
            started = transaction.start(smtp, envelope, prepared, self.config.timeout, progress)
            if started is not None:
                response = await started
            else:
                response = await exchange(smtp, envelope, prepared, self.config.timeout, progress)
        except (aiosmtplib.SMTPResponseException, OSError) as e:  # OSError: lost connections and timeouts too
            return await self._failed(smtp, e, progress)
        refused = tuple(progress.refused)
        if response is None:  # every recipient refused
            result = all_refused([*refused, *envelope.invalid])
            return _Outcome(dataclasses.replace(result, refused=refused), await reset(smtp), False)
        conn.messages += 1
        result = SendResult(
            ok=True,
            permanent=False,
            address_bad=False,
            code=response.code,
            message=reply_line(response.code, response.message),
            message_id=envelope.message_id,
            refused=refused,
        )
        return _Outcome(result, keep=True, retry=False)

    async def _failed(
        self, smtp: aiosmtplib.SMTP, e: aiosmtplib.SMTPResponseException | OSError, progress: Progress
    ) -> _Outcome:
        """The outcome of a transaction cut short at `progress.stage` by a refusal, a timeout or a lost connection."""
        stage = progress.stage
        if isinstance(e, aiosmtplib.SMTPResponseException):
            if e.code == 421:
                # the server is closing the connection and said so: it has not taken the message
                smtp.close()
                return _Outcome(classify_reply(e.code, e.message, stage=stage), keep=False, retry=True)
            if not 400 <= e.code < 600:
                # No refusal, but a reply the command could not have: unreadable (aiosmtplib's -1), or a code for
                # another command (250 to DATA, where the message waits for 354). The connection is out of step
                # with the server, so it is closed; what the server made of the message is unknown, so it is not
                # sent again at once.
                smtp.close()
                shown = e.message if e.code < 0 else reply_line(e.code, e.message)
                return _Outcome(temporary_failure(f"unexpected reply at {stage.upper()}: {shown}"), keep=False,
                                retry=False)
            result = classify_reply(e.code, e.message, stage=stage)
            result = dataclasses.replace(result, refused=tuple(progress.refused))
            return _Outcome(result, keep=await reset(smtp), retry=False)
        smtp.close()
        if isinstance(e, TimeoutError):  # the deadline's, or aiosmtplib's (which has already closed the connection)
            detail = f": {e}" if str(e) else ""
            return _Outcome(temporary_failure(f"no reply from {self.config.display} at {stage.upper()} within "
                                              f"{self.config.timeout:g}s{detail}"), keep=False, retry=False)
        # a lost connection (SMTPServerDisconnected is a ConnectionError)
        if stage == "data":
            why = "the message may have reached the server, so it is not sent again at once"
            return _Outcome(temporary_failure(f"connection lost during DATA ({e}); {why}"), keep=False, retry=False)
        return _Outcome(temporary_failure(f"connection lost at {stage.upper()}: {e}"), keep=False, retry=True)


def _describe(e: aiosmtplib.SMTPResponseException) -> str:
    if isinstance(e, aiosmtplib.SMTPAuthenticationError):
        return "authentication failed: "
    if isinstance(e, aiosmtplib.SMTPConnectResponseError):
        return "refused at greeting: "
    if isinstance(e, aiosmtplib.SMTPHeloError):
        return "EHLO refused: "
    return ""
