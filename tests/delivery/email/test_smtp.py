"""One SMTP transaction's commands against a real SMTP server: messages given as bytes, DATA without aiosmtplib's
rewriting, the caller's Message-ID, and the timeout for each reply."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from notifier.delivery.email.sender import SmtpSender
from notifier.delivery.email.smtp_config import SmtpConfig
from tests.delivery.email.smtp_servers import PoolServer, make_message, sender_for

# every test on both roads of a transaction (see the `road` fixture)
pytestmark = pytest.mark.usefixtures("road")


@contextlib.asynccontextmanager
async def _server(handler: object) -> AsyncIterator[int]:
    """An aiosmtpd server on a free local port with `handler`'s hooks (slow or stalling replies); yields the port."""
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(handler, hostname="smtp.test"), "127.0.0.1", 0
    )
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


FLAT = (
    b"From: alerts@notifier.test\r\nTo: reader@example.org\r\nSubject: dots\r\nMessage-ID: <flat@notifier.test>\r\n"
    b"\r\n.leading dot\r\n.\r\n..two dots\r\nmiddle . dot\r\n"
)


@pytest.mark.parametrize("data", [
    FLAT,
    b".first line a dot\r\n\r\nbody\r\n",
    FLAT.replace(b"\r\n", b"\n"),  # bare line feeds: through aiosmtplib's own DATA, which rewrites them
    FLAT[:-2],  # no line end at the end
])
async def test_send_bytes_arrive_as_given(server: PoolServer, data: bytes) -> None:
    envelope: dict[str, Any] = {"sender": "bounces@notifier.test", "recipients": ["reader@example.org"],
                                "message_id": "<given@notifier.test>"}  # so that no Message-ID is put in front
    async with sender_for(server) as sender:
        result = await sender.send(data, **envelope)
        again = await sender.send(data, **envelope)
    assert result.ok and again.ok
    expected = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if not expected.endswith(b"\r\n"):
        expected += b"\r\n"
    assert [m.raw.replace(b"\r\n", b"\n") for m in server.messages] == [expected.replace(b"\r\n", b"\n")] * 2
    assert server.connections == 1


@pytest.mark.parametrize("data", [
    b"", b"\r\n", b".\r\n", b"a\r\n.\r\n..b\r\n", b"a\nb\r\n", b"a\r\rb\r\n", b"a\r\nb", b"a\rb\r\n", FLAT,
    b"\r\n".join(b"." * n + b"x" for n in range(5)) + b"\r\n",
])
def test_dot_stuffing_is_aiosmtplibs_for_crlf_messages(data: bytes) -> None:
    from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings

    from notifier.delivery.email.smtp import dot_stuffed

    ours = dot_stuffed(data)
    crlf_only = data.endswith(b"\r\n") and data.count(b"\n") == data.count(b"\r") == data.count(b"\r\n")
    if not crlf_only:
        assert ours is None
    else:
        assert ours == PERIOD_REGEX.sub(b"..", normalize_message_line_endings(data)) + b".\r\n"


async def test_send_bytes_with_the_callers_message_id(server: PoolServer) -> None:
    async with sender_for(server) as sender:
        result = await sender.send(FLAT, sender="bounces@notifier.test", recipients=["reader@example.org"],
                                   message_id="<flat@notifier.test>")
        with pytest.raises(ValueError, match="message_id"):
            await sender.send(make_message(), message_id="<x@notifier.test>")
    assert result.ok and result.message_id == "<flat@notifier.test>"
    assert server.messages[0].message.get_all("Message-ID") == ["<flat@notifier.test>"]


class _Pausing:
    """Takes every message, answering each command after `pause(command)`."""

    async def pause(self, command: str) -> None:
        raise NotImplementedError

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        await self.pause("MAIL")
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        await self.pause("RCPT")
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await self.pause("DATA")
        return "250 taken"


async def test_send_timeout_is_for_each_reply_not_the_whole_transaction() -> None:
    class Slow(_Pausing):
        """Takes a while over every reply: longer in all than the timeout, never that long for one reply."""

        async def pause(self, command: str) -> None:
            await asyncio.sleep(0.25)

    async with _server(Slow()) as port:
        config = SmtpConfig.from_url(f"smtp://127.0.0.1:{port}?timeout=0.6")
        async with SmtpSender(config, local_hostname="client.test") as sender:
            result = await sender.send(FLAT, sender="bounces@notifier.test", recipients=["reader@example.org"])
    assert result.ok, result.message
    assert result.message == "250 taken"


@pytest.mark.parametrize("stage", ["MAIL", "RCPT", "DATA"])
async def test_send_no_reply_within_the_timeout_at_each_command(stage: str) -> None:
    """A reply later than the timeout ends the transaction at its command (the one timer of a transaction, moved on
    command by command, fires for the command in flight, whether later or earlier than the previous one's); the
    next message goes on a new connection, with the timer of its own transaction."""
    stall = asyncio.Event()

    class Stalling(_Pausing):
        async def pause(self, command: str) -> None:
            """Hold the first reply at the chosen command past the client's timeout; MAIL's others a little."""
            if stage == command and not stall.is_set():
                stall.set()
                await asyncio.sleep(5)
            if command == "MAIL":
                await asyncio.sleep(0.05)

    async with _server(Stalling()) as port:
        config = SmtpConfig.from_url(f"smtp://127.0.0.1:{port}?timeout=0.3")
        async with SmtpSender(config, local_hostname="client.test") as sender:
            late = await sender.send(FLAT, sender="bounces@notifier.test", recipients=["reader@example.org"])
            then = await sender.send(FLAT, sender="bounces@notifier.test", recipients=["reader@example.org"])
            opened = sender.opened
    assert (late.ok, late.permanent, late.code) == (False, False, None)
    assert f"at {stage} within 0.3s" in late.message, late.message
    assert then.ok, then.message
    assert opened == 2
