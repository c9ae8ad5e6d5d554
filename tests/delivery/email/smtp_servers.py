"""A fake SMTP server for the client's tests, and the helpers they share."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from notifier.delivery.email.sender import SmtpSender
from notifier.delivery.email.smtp_config import SmtpConfig
from tests.servers import SmtpServer, _Handler  # the shared fake server's handler, with its fault modes

# ---------------------------------------------------------------------------------------------------------------------
# A server that also counts connections, can refuse MAIL FROM, and can speak TLS and AUTH


class _FaultyHandler(_Handler):
    server: PoolServer

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if self.server.mail_faults:
            fault = self.server.mail_faults.pop(0)
            if fault == "drop":
                assert server.transport is not None
                server.transport.close()
            return fault
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.server.data_started.set()
        if self.server.fault == "drop":
            # closes the connection before any reply (aiosmtpd's Session has no transport; the SMTP protocol does)
            assert server.transport is not None
            server.transport.close()
            return "421 closing"
        return await super().handle_DATA(server, session, envelope)


class _CountingSMTP(SMTP):
    def __init__(self, owner: PoolServer, handler: _FaultyHandler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._owner = owner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        fresh = self.transport is None  # STARTTLS calls this again for the same client
        super().connection_made(transport)
        if fresh:
            self._owner.connections += 1
            self._owner.live.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self._owner.live.discard(self)
        super().connection_lost(error)


class PoolServer(SmtpServer):
    """tests.servers.SmtpServer plus: connection counts, MAIL FROM faults, STARTTLS or implicit TLS, and AUTH."""

    def __init__(self, *, tls: ssl.SSLContext | None = None, implicit_tls: bool = False, **smtp_kwargs: Any) -> None:
        super().__init__()
        self.connections = 0
        self.live: set[SMTP] = set()
        self.mail_faults: list[str] = []  # replies to the next MAIL FROM commands; "drop" closes the connection
        self.data_started = asyncio.Event()
        self.auth_mechanisms: list[str] = []
        self._tls = tls
        self._implicit_tls = implicit_tls
        self._smtp_kwargs = smtp_kwargs

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        handler = _FaultyHandler(self)
        kwargs = dict(self._smtp_kwargs)
        if self._tls is not None and not self._implicit_tls:
            kwargs["tls_context"] = self._tls
        self._server = await loop.create_server(
            lambda: _CountingSMTP(self, handler, hostname="smtp.test", **kwargs),
            "127.0.0.1",
            0,
            ssl=self._tls if self._implicit_tls else None,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def drop_all(self) -> None:
        """Close every client connection the way a server does at its idle timeout."""
        for smtp in list(self.live):
            assert isinstance(smtp.transport, asyncio.Transport)
            smtp.transport.write(b"421 4.4.2 smtp.test idle timeout, closing\r\n")
            smtp.transport.close()

    def authenticator(self, users: dict[str, str]) -> Callable[..., AuthResult]:
        def check(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
            self.auth_mechanisms.append(mechanism)
            ok = isinstance(data, LoginPassword) and users.get(data.login.decode()) == data.password.decode()
            return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535 itself

        return check


async def started(server: PoolServer) -> PoolServer:
    await server.start()
    return server


def make_message(subject: str = "Agenda published", *, to: str = "reader@example.org") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Council alerts <alerts@notifier.test>"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(f"{subject}\n")
    return msg


def sender_for(server: PoolServer, query: str = "timeout=5", **kwargs: Any) -> SmtpSender:
    return SmtpSender(SmtpConfig.from_url(f"{server.url}?{query}"), local_hostname="client.test", **kwargs)


async def eventually(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Wait for something the other end of a socket does after our call has returned."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port
