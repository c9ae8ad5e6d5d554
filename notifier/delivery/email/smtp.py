"""Sending email over SMTP: a small pool of reused connections, a rate limit, and results the outbox can act on.

Error style: `SmtpSender.send` never raises for anything the mail server or the network does. Every outcome comes
back as a `SendResult` that says whether the message was accepted (`ok`), whether trying again later can help
(`permanent`), and whether the recipient address itself is bad and should be suppressed (`address_bad`). Exceptions
are kept for mistakes by the caller: a message with no sender or no recipients, or a sender that cannot be written
on an SMTP command line (`ValueError`), and sending after `close()` (`RuntimeError`).

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
import re
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.utils import getaddresses, make_msgid
from types import TracebackType
from typing import Literal, Self
from urllib.parse import parse_qsl, unquote, urlsplit

import aiosmtplib
from aiosmtplib.email import extract_recipients, extract_sender, flatten_message, parse_address

log = logging.getLogger(__name__)

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


# ---------------------------------------------------------------------------------------------------------------------
# Configuration

_QUERY_KEYS = ("starttls", "timeout", "validate_certs")
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """Where and how to connect: `smtp://user:pass@host:587?starttls=true` or `smtps://host:465`."""

    host: str
    port: int
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    use_tls: bool = False  # implicit TLS from the first byte (smtps, usually port 465)
    starttls: bool = False  # upgrade a plain connection with STARTTLS, and refuse to go on without it
    timeout: float = 60.0  # seconds, for connecting and for each reply
    validate_certs: bool = True

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("SMTP host is empty")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"SMTP port must be between 1 and 65535, got {self.port}")
        if self.use_tls and self.starttls:
            raise ValueError("implicit TLS (smtps://) and STARTTLS cannot both be used")
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ValueError(f"SMTP timeout must be a positive number of seconds, got {self.timeout}")
        if self.password is not None and not self.username:
            raise ValueError("SMTP password given without a user name")

    @classmethod
    def from_url(cls, url: str) -> SmtpConfig:
        """Parse an `smtp://` or `smtps://` URL; user and password are percent-decoded."""
        parts = urlsplit(url.strip())
        shown = _redact(url)
        scheme = parts.scheme.lower()
        if scheme not in ("smtp", "smtps"):
            raise ValueError(f"SMTP URL must start with smtp:// or smtps://, got {shown!r}")
        if not parts.hostname:
            raise ValueError(f"SMTP URL has no host: {shown!r}")
        if parts.path not in ("", "/") or parts.fragment:
            raise ValueError(f"SMTP URL must not have a path or fragment: {shown!r}")
        try:
            port = parts.port
        except ValueError as e:
            raise ValueError(f"SMTP URL has an invalid port: {shown!r}") from e

        options: dict[str, str] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            name = key.lower()
            if name not in _QUERY_KEYS:
                raise ValueError(f"unknown SMTP URL option {key!r} (known: {', '.join(_QUERY_KEYS)})")
            if name in options:
                raise ValueError(f"SMTP URL option {key!r} given twice")
            options[name] = value

        starttls = _parse_bool("starttls", options["starttls"]) if "starttls" in options else None
        validate = _parse_bool("validate_certs", options["validate_certs"]) if "validate_certs" in options else True
        timeout = _parse_timeout(options["timeout"]) if "timeout" in options else 60.0
        use_tls = scheme == "smtps"
        if use_tls and starttls:
            raise ValueError("smtps:// is TLS from the start; starttls=true only makes sense with smtp://")
        if port is None:
            port = 465 if use_tls else 587 if starttls else 25
        if port == 0:
            raise ValueError(f"SMTP URL has an invalid port: {shown!r}")
        if starttls is None:
            starttls = not use_tls and port == 587

        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        if password is not None and not username:
            raise ValueError(f"SMTP URL has a password but no user name: {shown!r}")
        return cls(
            host=parts.hostname,
            port=port,
            username=username,
            password=password,
            use_tls=use_tls,
            starttls=starttls,
            timeout=timeout,
            validate_certs=validate,
        )

    @property
    def display(self) -> str:
        """The server as a URL without the password, for logs and error messages."""
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'smtps' if self.use_tls else 'smtp'}://{user}{host}:{self.port}"


def _redact(url: str) -> str:
    scheme, sep, rest = url.strip().partition("://")
    netloc, slash, tail = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.split(':', 1)[0]}:***@{hostport}"
    return f"{scheme}{sep}{netloc}{slash}{tail}"


def _parse_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"SMTP URL option {name} must be true or false, got {value!r}")


def _parse_timeout(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"SMTP URL option timeout must be a positive number of seconds, got {value!r}")
    return seconds


# ---------------------------------------------------------------------------------------------------------------------
# Results and their classification


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


def _reply_line(code: int, text: str) -> str:
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
    message = _reply_line(code, text)
    if 200 <= code < 300:
        return SendResult(ok=True, permanent=False, address_bad=False, code=code, message=message)
    if 500 <= code < 600 and stage in ("rcpt", "data"):
        return SendResult(ok=False, permanent=True, address_bad=_address_bad(text), code=code, message=message)
    if 500 <= code < 600 and stage == "mail" and _about_the_message(code, text):
        return SendResult(ok=False, permanent=True, address_bad=False, code=code, message=message)
    return SendResult(ok=False, permanent=False, address_bad=False, code=code if code > 0 else None, message=message)


def _temporary(message: str) -> SendResult:
    return SendResult(ok=False, permanent=False, address_bad=False, code=None, message=message)


def _refusal(address: str, result: SendResult) -> RecipientRefused:
    return RecipientRefused(address, result.code, result.message, result.permanent, result.address_bad)


def _all_refused(refusals: Sequence[RecipientRefused]) -> SendResult:
    first = refusals[0]
    message = first.message if len(refusals) == 1 else f"all {len(refusals)} recipients refused; {first.message}"
    return SendResult(
        ok=False,
        permanent=all(r.permanent for r in refusals),
        address_bad=all(r.address_bad for r in refusals),
        code=first.code,
        message=message,
    )


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


@dataclass(frozen=True, slots=True)
class _Envelope:
    message: EmailMessage | bytes
    sender: str
    recipients: tuple[str, ...]
    invalid: tuple[RecipientRefused, ...]
    message_id: str
    add_message_id: bool


@dataclass(eq=False, slots=True)
class _Connection:
    smtp: aiosmtplib.SMTP
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
    """

    def __init__(
        self,
        config: SmtpConfig,
        *,
        connections: int = 4,
        rate_per_second: float | None = None,
        burst: int = 1,
        max_messages_per_connection: int = 100,
        max_idle_seconds: float = 30.0,
        local_hostname: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if connections < 1:
            raise ValueError(f"connections must be at least 1, got {connections}")
        if max_messages_per_connection < 1:
            raise ValueError(f"max_messages_per_connection must be at least 1, got {max_messages_per_connection}")
        if not max_idle_seconds > 0:
            raise ValueError(f"max_idle_seconds must be positive, got {max_idle_seconds}")
        self.config = config
        self.connections = connections
        self.max_messages_per_connection = max_messages_per_connection
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
        envelope = self._envelope(message, sender, recipients, message_id)
        if not envelope.recipients:
            result = _all_refused(envelope.invalid)
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

    # -- the envelope ---------------------------------------------------------------------------------------------

    def _envelope(
        self, message: EmailMessage | bytes, sender: str | None, recipients: list[str] | None, message_id: str | None
    ) -> _Envelope:
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
            domain = mail_from.rpartition("@")[2] or self.config.host
            if not domain.isascii() or not domain.strip("[]"):
                domain = "localhost"
            message_id, add = make_msgid(domain=domain), True
        return _Envelope(message, mail_from, tuple(good), tuple(invalid), message_id, add)

    # -- the pool -------------------------------------------------------------------------------------------------

    def _take_idle(self) -> _Connection | None:
        """The most recently used healthy connection; idle-expired or server-closed ones are dropped on the way."""
        now = self._clock()
        keep: list[_Connection] = []
        for conn in self._idle:
            if conn.smtp.is_connected and now - conn.last_used <= self.max_idle_seconds:
                keep.append(conn)
            else:
                # a connection idle this long may be dead without our knowing: a QUIT could wait a full timeout
                conn.smtp.close()
        self._idle = keep
        return self._idle.pop() if self._idle else None

    async def _release(self, conn: _Connection, *, keep: bool) -> None:
        clean = keep and conn.smtp.is_connected
        if clean and not self._closed and conn.messages < self.max_messages_per_connection:
            conn.last_used = self._clock()
            self._idle.append(conn)
        else:
            await self._discard(conn, polite=clean)

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
            result = _temporary(f"cannot open an SMTP session with {c.display}: {type(e).__name__}: {e}")
            log.warning("%s", result.message)
            return result
        self.opened += 1
        log.debug("SMTP connection %d opened to %s", self.opened, c.display)
        return _Connection(smtp, last_used=self._clock())

    async def _attempt(self, envelope: _Envelope, conn: _Connection | None) -> _Outcome:
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

    async def _transact(self, conn: _Connection, envelope: _Envelope) -> _Outcome:
        smtp = conn.smtp
        prepared = _for_server(smtp, envelope)
        if isinstance(prepared, SendResult):
            return _Outcome(prepared, keep=True, retry=False)
        data, options, encoding = prepared

        stage: Stage = "mail"
        refused: list[RecipientRefused] = []
        response: aiosmtplib.SMTPResponse | None = None
        try:
            # The timeout for each reply is kept by one deadline moved on before each command, not by aiosmtplib's
            # own, which wraps every reply in `asyncio.wait_for`: a future, a timer and an extra turn of the event
            # loop per reply, four times a message. The commands are given timeout=None for that.
            async with asyncio.timeout(None) as deadline:
                reply = _ReplyDeadline(deadline, self.config.timeout)
                reply.start()
                await _mail(smtp, envelope.sender, options, encoding)
                stage = "rcpt"
                for address in envelope.recipients:
                    reply.start()
                    try:
                        await _rcpt(smtp, address, encoding)
                    except aiosmtplib.SMTPRecipientRefused as e:
                        if e.code == 421:
                            raise
                        refused.append(_refusal(address, classify_reply(e.code, e.message, stage="rcpt")))
                if len(refused) < len(envelope.recipients):
                    stage = "data"
                    response = await _data(smtp, data, reply)
        except aiosmtplib.SMTPResponseException as e:
            if e.code == 421:
                # the server is closing the connection and said so: it has not taken the message
                smtp.close()
                return _Outcome(classify_reply(e.code, e.message, stage=stage), keep=False, retry=True)
            result = dataclasses.replace(classify_reply(e.code, e.message, stage=stage), refused=tuple(refused))
            return _Outcome(result, keep=await self._reset(smtp), retry=False)
        except TimeoutError as e:  # the deadline's, or aiosmtplib's (which has already closed the connection)
            smtp.close()
            detail = f": {e}" if str(e) else ""
            return _Outcome(_temporary(f"no reply from {self.config.display} at {stage.upper()} within "
                                       f"{self.config.timeout:g}s{detail}"), keep=False, retry=False)
        except OSError as e:  # SMTPServerDisconnected is a ConnectionError
            smtp.close()
            if stage == "data":
                why = "the message may have reached the server, so it is not sent again at once"
                return _Outcome(_temporary(f"connection lost during DATA ({e}); {why}"), keep=False, retry=False)
            return _Outcome(_temporary(f"connection lost at {stage.upper()}: {e}"), keep=False, retry=True)
        if response is None:  # every recipient refused
            result = _all_refused([*refused, *envelope.invalid])
            return _Outcome(dataclasses.replace(result, refused=tuple(refused)), await self._reset(smtp), False)
        conn.messages += 1
        result = SendResult(
            ok=True,
            permanent=False,
            address_bad=False,
            code=response.code,
            message=_reply_line(response.code, response.message),
            refused=tuple(refused),
        )
        return _Outcome(result, keep=True, retry=False)

    async def _reset(self, smtp: aiosmtplib.SMTP) -> bool:
        """RSET after a refused transaction; False when the connection is no longer fit for the next message."""
        try:
            await smtp.rset()
        except (aiosmtplib.SMTPException, OSError):
            smtp.close()
            return False
        return smtp.is_connected


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_MAILBOX = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_MESSAGE_ID_HEADER = re.compile(rb"^message-id:[ \t]*([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)", re.IGNORECASE | re.MULTILINE)


def _for_server(smtp: aiosmtplib.SMTP, envelope: _Envelope) -> tuple[bytes, list[str], str] | SendResult:
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


class _ReplyDeadline:
    """The timeout for the reply to each command of a transaction, on one `asyncio.timeout`."""

    __slots__ = ("_deadline", "_loop", "_seconds")

    def __init__(self, deadline: asyncio.Timeout, seconds: float) -> None:
        self._deadline = deadline
        self._loop = asyncio.get_running_loop()
        self._seconds = seconds

    def start(self, replies: int = 1) -> None:
        """A command is about to go: its reply (or its `replies` replies) due within the timeout each from now."""
        self._deadline.reschedule(self._loop.time() + self._seconds * replies)


async def _mail(smtp: aiosmtplib.SMTP, sender: str, options: list[str], encoding: str) -> None:
    """MAIL FROM, as `smtp.mail` sends it. A plain address (or the null sender) goes as it is: aiosmtplib would
    parse it again, a character at a time, which for long VERP return paths costs as much as the rest of the
    transaction."""
    if sender and not _PLAIN_MAILBOX.fullmatch(sender):
        await smtp.mail(sender, options=options, encoding=encoding, timeout=None)
        return
    line = b"FROM:<" + sender.encode(encoding) + b">"
    response = await smtp.execute_command(b"MAIL", line, *(o.encode("ascii") for o in options), timeout=None)
    if response.code != aiosmtplib.SMTPStatus.completed:
        raise aiosmtplib.SMTPSenderRefused(response.code, response.message, sender)


async def _rcpt(smtp: aiosmtplib.SMTP, recipient: str, encoding: str) -> None:
    """RCPT TO, as `smtp.rcpt` sends it; a plain address as it is (see `_mail`)."""
    if not _PLAIN_MAILBOX.fullmatch(recipient):
        await smtp.rcpt(recipient, encoding=encoding, timeout=None)
        return
    response = await smtp.execute_command(b"RCPT", b"TO:<" + recipient.encode(encoding) + b">", timeout=None)
    if response.code not in (aiosmtplib.SMTPStatus.completed, aiosmtplib.SMTPStatus.will_forward):
        raise aiosmtplib.SMTPRecipientRefused(response.code, response.message, recipient)


async def _data(smtp: aiosmtplib.SMTP, data: bytes, reply: _ReplyDeadline) -> aiosmtplib.SMTPResponse:
    """DATA and the message, as `smtp.data` sends them, each reply due within the timeout (see `_transact`).

    `smtp.data` rewrites every message with two regular expressions (line ends to CRLF, a dot doubled at the start
    of a line), which for a message of a few kB costs more CPU than all of our own work on it. A message that
    already has CRLF line ends only, as flattened and merged messages do, needs only its dots doubled, which
    `bytes.replace` does at memory speed; it then goes out through the same protocol object, reply by reply, with
    the same handling of a lost connection. Anything else goes through `smtp.data`.
    """
    wire = _dot_stuffed(data)
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


def _dot_stuffed(data: bytes) -> bytes | None:
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


def _describe(e: aiosmtplib.SMTPResponseException) -> str:
    if isinstance(e, aiosmtplib.SMTPAuthenticationError):
        return "authentication failed: "
    if isinstance(e, aiosmtplib.SMTPConnectResponseError):
        return "refused at greeting: "
    if isinstance(e, aiosmtplib.SMTPHeloError):
        return "EHLO refused: "
    return ""
