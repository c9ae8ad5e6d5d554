"""A transaction driven by the replies (`transaction`) against a server whose replies are written byte by byte as a
test wants them: split across packets, several lines long, malformed or endless. Each dialogue goes on both roads
(the `road` fixture), and both must come to the same result."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiosmtplib
import pytest

from notifier.delivery.email import transaction
from notifier.delivery.email.replies import SendResult
from notifier.delivery.email.sender import SmtpSender
from notifier.delivery.email.smtp import Progress, for_server, make_envelope
from notifier.delivery.email.smtp_config import SmtpConfig
from tests.delivery.email.smtp_servers import PoolServer, eventually, sender_for

# each dialogue on both roads of a transaction (see the `road` fixture), but for what only the road of replies has
both_roads = pytest.mark.usefixtures("road")

MESSAGE = b"From: alerts@notifier.test\r\nTo: reader@example.org\r\nSubject: s\r\n\r\n.dot\r\nbody\r\n"
EHLO = b"250-smtp.test\r\n250-SIZE 1000000\r\n250 8BITMIME\r\n"
DEFAULTS = {"MAIL": [b"250 OK\r\n"], "RCPT": [b"250 OK\r\n"], "DATA": [b"354 go ahead\r\n"],
            "message": [b"250 queued\r\n"], "RSET": [b"250 OK\r\n"], "QUIT": [b"221 bye\r\n"]}


class Scripted:
    """An SMTP server that answers each command with the chunks its script gives, each written on its own after a
    pause (so that each arrives in a packet of its own); it records the lines and the message it reads."""

    def __init__(self, **script: list[bytes]) -> None:
        self.script = {**DEFAULTS, **script}
        self.lines: list[bytes] = []
        self.messages: list[bytes] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 smtp.test ESMTP\r\n")
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while line := await reader.readline():
                self.lines.append(line)
                verb = line[:4].decode().upper()
                if verb == "EHLO":
                    await self._answer(writer, [EHLO])
                    continue
                await self._answer(writer, self.script.get(verb, [b"502 no\r\n"]))
                if verb == "DATA" and self.script["DATA"][0].startswith(b"354"):
                    self.messages.append(await reader.readuntil(b"\r\n.\r\n"))
                    await self._answer(writer, self.script["message"])
                if verb == "QUIT":
                    break
        writer.close()

    @staticmethod
    async def _answer(writer: asyncio.StreamWriter, chunks: list[bytes]) -> None:
        for chunk in chunks:
            if chunk == b"<close>":
                writer.close()
                return
            if chunk == b"<pause>":
                await asyncio.sleep(0.2)
                continue
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def scripted_sender(server: Scripted, timeout: float = 5.0) -> AsyncIterator[SmtpSender]:
    listening = await asyncio.start_server(server.serve, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    try:
        async with SmtpSender(SmtpConfig.from_url(f"smtp://127.0.0.1:{port}?timeout={timeout}"),
                              local_hostname="client.test") as sender:
            yield sender
    finally:
        listening.close()


async def send(server: Scripted, recipients: list[str] | None = None) -> SendResult:
    async with scripted_sender(server) as sender:
        return await sender.send(MESSAGE, sender="bounces@notifier.test",
                                 recipients=recipients or ["reader@example.org"], message_id="<m@notifier.test>")


@both_roads
async def test_replies_split_across_packets_and_over_several_lines() -> None:
    server = Scripted(
        MAIL=[b"25", b"0 OK\r", b"\n"],
        RCPT=[b"250-first line\r\n", b"250-", b"second\r\n250 last\r\n"],
        message=[b"250-queued\r\n250 as ", b"A1B2\r\n"],
    )
    result = await send(server)
    assert (result.ok, result.code, result.message) == (True, 250, "250 queued as A1B2")
    assert server.lines[1:4] == [b"MAIL FROM:<bounces@notifier.test> SIZE=78 BODY=8BITMIME\r\n",
                                 b"RCPT TO:<reader@example.org>\r\n", b"DATA\r\n"]
    assert server.messages == [MESSAGE.replace(b"\n.dot", b"\n..dot") + b".\r\n"]


@both_roads
@pytest.mark.parametrize(
    ("script", "code", "permanent", "words", "sent"),
    [
        ({"MAIL": [b"550 5.7.1 sender not allowed\r\n"]}, 550, False, "sender not allowed", 0),
        ({"DATA": [b"554 5.3.0 no DATA now\r\n"]}, 554, True, "no DATA now", 0),
        ({"message": [b"552 5.3.4 too big\r\n"]}, 552, True, "too big", 1),
    ],
)
async def test_refusals_end_the_transaction_and_the_connection_goes_on(
    script: dict[str, list[bytes]], code: int, permanent: bool, words: str, sent: int
) -> None:
    server = Scripted(**script)
    async with scripted_sender(server) as sender:
        result = await sender.send(MESSAGE, sender="bounces@notifier.test", recipients=["reader@example.org"])
        kept = len(sender._idle)
    assert (result.ok, result.code, result.permanent) == (False, code, permanent)
    assert words in result.message, result.message
    assert len(server.messages) == sent
    assert kept == 1  # reset, and ready for the next message


@both_roads
@pytest.mark.parametrize(
    ("script", "words"),
    [
        ({"RCPT": [b"25O OK\r\n"]}, "at RCPT: Malformed SMTP response line: 25O OK"),
        ({"MAIL": [b"250-" + b"x" * 9000 + b"\r\n"]}, "at MAIL: Response too long"),
        ({"RCPT": [b"250-endless" + b"y" * 8000, b"z" * 8000, b"z" * 8000, b"z" * 8000, b"z" * 8000]},
         "at RCPT: Response too long"),
        ({"MAIL": [b"".join(b"250-%05d a long line of a long reply\r\n" % i for i in range(1000)) + b"250 end\r\n"]},
         "at MAIL: Response too long"),  # whole, but more than aiosmtplib reads as one reply
        ({"RCPT": [b"250-a\r\n", b"XYZ\r\n", b"250 last\r\n"]}, "at RCPT: Malformed SMTP response line: XYZ"),
        ({"DATA": [b"250 OK\r\n"]}, "at DATA: 250 OK"),  # a success code, but not the 354 the message waits for
        ({"MAIL": [b"251 OK\r\n"]}, "at MAIL: 251 OK"),
    ],
)
async def test_a_reply_out_of_step_closes_the_connection_and_the_next_message_goes_on_a_new_one(
    script: dict[str, list[bytes]], words: str
) -> None:
    """Whatever the rest of the server's answer holds, it cannot be matched to the commands any more."""
    server = Scripted(**script)
    async with scripted_sender(server) as sender:
        result = await sender.send(MESSAGE, sender="bounces@notifier.test", recipients=["reader@example.org"])
        kept = len(sender._idle)
        server.script = {**DEFAULTS}
        then = await sender.send(MESSAGE, sender="bounces@notifier.test", recipients=["reader@example.org"])
        opened = sender.opened
    assert (result.ok, result.code, result.permanent) == (False, None, False)
    assert words in result.message, result.message
    assert kept == 0
    assert then.ok and opened == 2
    assert len(server.messages) == 1


@both_roads
async def test_refused_recipients_are_recorded_and_the_others_get_the_message() -> None:
    server = Scripted(RCPT=[b"550 5.1.1 no such user\r\n"])
    result = await send(server, ["nobody@example.org"])
    assert (result.ok, result.permanent, result.address_bad) == (False, True, True)
    assert [r.address for r in result.refused] == ["nobody@example.org"]
    assert b"DATA\r\n" not in server.lines and b"RSET\r\n" in server.lines  # the transaction was reset


@both_roads
async def test_a_421_at_rcpt_is_tried_again_on_a_new_connection() -> None:
    server = Scripted(RCPT=[b"421 4.3.2 closing\r\n", b"<close>"])
    async with scripted_sender(server) as sender:
        first = await sender.send(MESSAGE, sender="bounces@notifier.test", recipients=["reader@example.org"])
        opened = sender.opened
    assert (first.ok, first.code) == (False, 421)  # both tries met the 421
    assert opened == 2


@both_roads
async def test_the_connection_lost_mid_transaction_is_told_to_aiosmtplib_too() -> None:
    server = Scripted(DATA=[b"<close>"])
    async with scripted_sender(server) as sender:
        result = await sender.send(MESSAGE, sender="bounces@notifier.test", recipients=["reader@example.org"])
        assert not sender._idle  # the connection was not kept
    assert (result.ok, result.permanent) == (False, False)
    assert "connection lost" in result.message, result.message


@both_roads
async def test_a_connection_handed_back_goes_on_with_aiosmtplibs_own_commands() -> None:
    server = Scripted()
    async with scripted_sender(server) as sender:
        for _ in range(3):
            assert (await sender.send(MESSAGE, sender="bounces@notifier.test", recipients=["reader@example.org"])).ok
        [conn] = sender._idle
        assert (await conn.smtp.execute_command(b"NOOP")).code == 502  # aiosmtplib reads its own replies again
    assert server.lines[-1] == b"QUIT\r\n"
    assert len(server.messages) == 3


@pytest.mark.parametrize(
    ("sender", "recipient", "data", "fits"),
    [
        ("bounces@notifier.test", "reader@example.org", MESSAGE, True),
        ("", "reader@example.org", MESSAGE, True),  # the null sender
        ("bounces@notifier.test", '"odd name"@example.org', MESSAGE, False),  # quoted: aiosmtplib writes it
        ('"odd sender"@notifier.test', "reader@example.org", MESSAGE, False),
        ("bounces@notifier.test", "reader@example.org", MESSAGE.replace(b"\r\n", b"\n"), False),  # not CRLF
    ],
)
async def test_only_the_usual_message_takes_the_road_of_replies(
    sender: str, recipient: str, data: bytes, fits: bool
) -> None:
    server = Scripted()
    async with scripted_sender(server) as smtp_sender:
        assert (await smtp_sender.send(MESSAGE, sender="bounces@notifier.test", recipients=["r@example.org"])).ok
        [conn] = smtp_sender._idle
        envelope = make_envelope(data, sender, [recipient], "<m@notifier.test>", host="smtp.test")
        prepared = for_server(conn.smtp, envelope)
        assert not isinstance(prepared, SendResult)
        started = transaction.start(conn.smtp, envelope, prepared, 0.5, Progress())
        assert (started is not None) == fits
        if started is not None:
            reply = await started
            assert isinstance(reply, aiosmtplib.SMTPResponse) and reply.code == 250


@both_roads
async def test_a_message_larger_than_the_transports_buffer(server: PoolServer) -> None:
    """Writing pauses while the server reads a large message; aiosmtplib's protocol is told, and after the
    transaction it carries the next message as usual."""
    body = b"".join(b"line %07d of a long report, with text enough to fill it\r\n" % i for i in range(100_000))
    large = b"From: alerts@notifier.test\r\nTo: reader@example.org\r\nSubject: large\r\n\r\n" + body
    async with sender_for(server) as sender:
        first = await sender.send(large, sender="bounces@notifier.test", recipients=["reader@example.org"])
        second = await sender.send(MESSAGE, sender="bounces@notifier.test", recipients=["reader@example.org"])
        opened = sender.opened
    assert first.ok and second.ok, (first.message, second.message)
    assert opened == 1
    assert [m.message["Subject"] for m in server.messages] == ["large", "s"]
    assert server.messages[0].message.get_payload().encode() == body


@pytest.mark.parametrize("answer", ["late", "never"])
async def test_a_transaction_whose_waiter_is_cancelled_closes_its_connection(answer: str) -> None:
    """Whoever awaits `start`'s future and is cancelled leaves the server answering commands no one will read: the
    connection goes back to aiosmtplib closed, and a command sent on it then fails at once rather than waiting."""
    server = Scripted()
    async with scripted_sender(server) as sender:
        assert (await sender.send(MESSAGE, sender="bounces@notifier.test", recipients=["reader@example.org"])).ok
        [conn] = sender._idle
        server.script["RCPT"] = [b"<pause>", b"250 late\r\n"] if answer == "late" else []
        envelope = make_envelope(MESSAGE, "bounces@notifier.test", ["reader@example.org"], "<m@notifier.test>",
                                 host="smtp.test")
        prepared = for_server(conn.smtp, envelope)
        assert not isinstance(prepared, SendResult)
        started = transaction.start(conn.smtp, envelope, prepared, 0.5, Progress())
        assert started is not None
        await asyncio.sleep(0.1)  # MAIL answered, RCPT TO waiting
        started.cancel()
        await eventually(lambda: not conn.smtp.is_connected)  # at the late answer, or when it is overdue
        with pytest.raises(aiosmtplib.SMTPServerDisconnected):
            await asyncio.wait_for(conn.smtp.execute_command(b"NOOP"), 1.0)
        sender._idle.clear()
