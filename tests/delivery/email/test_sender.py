"""The SMTP client against a real SMTP server (aiosmtpd): delivery, reuse, failures, TLS, AUTH and the rate limit."""

from __future__ import annotations

import asyncio
import ssl
from collections import Counter
from email.message import EmailMessage
from typing import Any

import pytest

from notifier.delivery.email.replies import SendResult
from notifier.delivery.email.sender import SmtpSender, TokenBucket
from notifier.delivery.email.smtp_config import SmtpConfig
from tests.delivery.email.smtp_servers import PoolServer, closed_port, eventually, make_message, sender_for, started

# every test on both roads of a transaction (see the `road` fixture)
pytestmark = pytest.mark.usefixtures("road")

# ---------------------------------------------------------------------------------------------------------------------
# Delivery


async def test_send_delivers_message_with_headers_intact(server: PoolServer) -> None:
    msg = EmailMessage()
    msg["From"] = "Council alerts <alerts@notifier.test>"
    msg["To"] = "Reader <reader@example.org>"
    msg["Subject"] = "Health and Wellbeing Board: agenda published — Café"
    msg["Date"] = "Thu, 04 Dec 2025 14:00:00 +0000"
    msg["Message-ID"] = "<alert-1@notifier.test>"
    msg["List-Unsubscribe"] = "<https://notifier.test/unsubscribe/tok123>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content("Agenda for 4 December: Café société\n")
    msg.add_alternative("<p>Agenda for 4 December: Café société</p>\n", subtype="html")

    async with sender_for(server) as sender:
        result = await sender.send(msg)

    assert result == SendResult(
        ok=True, permanent=False, address_bad=False, code=250, message="250 Message accepted",
        message_id="<alert-1@notifier.test>",
    )
    [got] = server.messages
    assert got.mail_from == "alerts@notifier.test"
    assert got.rcpt_tos == ["reader@example.org"]
    for header in ("From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post"):
        assert str(got.message[header]) == str(msg[header]), header
    # bodies travel with CRLF line ends
    plain, html = got.message.get_body(("plain",)), got.message.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content() == "Agenda for 4 December: Café société\r\n"
    assert html.get_content() == "<p>Agenda for 4 December: Café société</p>\r\n"


async def test_send_adds_message_id_on_the_wire_only(server: PoolServer) -> None:
    msg = make_message()
    async with sender_for(server) as sender:
        result = await sender.send(msg)
    assert result.ok
    assert result.message_id is not None
    assert result.message_id.startswith("<") and result.message_id.endswith("@notifier.test>")
    assert server.messages[0].message.get_all("Message-ID") == [result.message_id]
    assert "Message-ID" not in msg


async def test_send_envelope_arguments_override_headers_and_bcc_is_not_sent(server: PoolServer) -> None:
    msg = make_message()
    msg["Bcc"] = "hidden@example.org"
    async with sender_for(server) as sender:
        result = await sender.send(
            msg, sender="bounces+42@notifier.test", recipients=["one@example.org", "two@example.org", "one@example.org"]
        )
    assert result.ok
    [got] = server.messages
    assert got.mail_from == "bounces+42@notifier.test"
    assert got.rcpt_tos == ["one@example.org", "two@example.org"]  # the duplicate would be delivered twice
    assert "Bcc" not in got.message
    assert b"hidden@example.org" not in got.raw


async def test_send_recipients_from_headers_include_bcc(server: PoolServer) -> None:
    msg = make_message(to="a@example.org")
    msg["Cc"] = "b@example.org"
    msg["Bcc"] = "c@example.org"
    async with sender_for(server) as sender:
        assert (await sender.send(msg)).ok
    assert server.messages[0].rcpt_tos == ["a@example.org", "b@example.org", "c@example.org"]
    assert "Bcc" not in server.messages[0].message


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"sender": None, "recipients": ["a@example.org"], "drop_from": True}, "no From or Sender"),
        ({"sender": "x@example.org", "recipients": [], "drop_from": False}, "no recipients"),
        ({"sender": "x@example.org>\r\nRCPT TO:<y@example.org", "recipients": None, "drop_from": False},
         "cannot be used in SMTP"),
        ({"sender": "a@example.org, b@example.org", "recipients": None, "drop_from": False}, "cannot be used in SMTP"),
        ({"sender": "not an address", "recipients": None, "drop_from": False}, "cannot be used in SMTP"),
    ],
)
async def test_send_caller_mistakes_raise(server: PoolServer, kwargs: dict[str, Any], error: str) -> None:
    msg = make_message()
    if kwargs["drop_from"]:
        del msg["From"]
    async with sender_for(server) as sender:
        with pytest.raises(ValueError, match=error):
            await sender.send(msg, sender=kwargs["sender"], recipients=kwargs["recipients"])
    assert server.connections == 0


@pytest.mark.parametrize(
    "address", ["not an address", "a@example.org, b@example.org", "x@example.org>\r\nDATA", "a b@example.org", "x@"]
)
async def test_send_invalid_recipient_is_permanent_and_bad_without_contacting_the_server(
    server: PoolServer, address: str
) -> None:
    async with sender_for(server) as sender:
        result = await sender.send(make_message(), recipients=[address])
    assert (result.ok, result.permanent, result.address_bad, result.code) == (False, True, True, None)
    assert result.message == f"invalid recipient address {address!r}"
    assert [r.address for r in result.refused] == [address]
    assert server.connections == 0


async def test_send_after_close_raises_and_close_quits_connections(server: PoolServer) -> None:
    sender = sender_for(server)
    await asyncio.gather(*(sender.send(make_message(f"m{i}")) for i in range(3)))
    assert len(server.live) >= 1
    await sender.close()
    await sender.close()  # twice is fine
    await eventually(lambda: not server.live)
    with pytest.raises(RuntimeError, match="closed"):
        await sender.send(make_message())


@pytest.mark.parametrize("smtputf8", [True, False])
async def test_send_non_ascii_address_needs_smtputf8(smtputf8: bool) -> None:
    server = await started(PoolServer(enable_SMTPUTF8=smtputf8))
    try:
        async with sender_for(server) as sender:
            result = await sender.send(make_message(to="rëader@exämple.org"))
    finally:
        await server.stop()
    if smtputf8:
        assert result.ok
        assert server.messages[0].rcpt_tos == ["rëader@exämple.org"]
    else:
        assert (result.ok, result.permanent, result.address_bad, result.code) == (False, True, False, None)
        assert result.message == "the server does not support SMTPUTF8, which non-ASCII addresses need"
        assert server.messages == []


# ---------------------------------------------------------------------------------------------------------------------
# The pool


async def test_send_reuses_one_connection_for_sequential_messages(server: PoolServer) -> None:
    async with sender_for(server) as sender:
        results = [await sender.send(make_message(f"message {i}")) for i in range(10)]
    assert [r.ok for r in results] == [True] * 10
    assert len(server.messages) == 10
    assert server.connections == 1
    assert sender.opened == 1


async def test_send_fifty_concurrent_tasks_each_delivered_once_over_few_connections(server: PoolServer) -> None:
    subjects = [f"alert {i}" for i in range(50)]
    async with sender_for(server, connections=4) as sender:
        results = await asyncio.gather(*(sender.send(make_message(s)) for s in subjects))
    assert [r.ok for r in results] == [True] * 50
    assert Counter(str(m.message["Subject"]) for m in server.messages) == Counter(subjects)
    assert len({r.message_id for r in results}) == 50
    assert 1 <= server.connections <= 4
    assert sender.opened == server.connections


async def test_send_opens_a_new_connection_after_max_messages(server: PoolServer) -> None:
    async with sender_for(server, max_messages_per_connection=2) as sender:
        for i in range(5):
            assert (await sender.send(make_message(f"m{i}"))).ok
        await eventually(lambda: len(server.live) == 1)  # the two full ones were closed with QUIT
    assert server.connections == 3


async def test_send_replaces_a_connection_idle_too_long(server: PoolServer) -> None:
    now = [1000.0]
    async with sender_for(server, max_idle_seconds=30, clock=lambda: now[0]) as sender:
        assert (await sender.send(make_message("first"))).ok
        now[0] += 29
        assert (await sender.send(make_message("second"))).ok
        assert server.connections == 1
        now[0] += 31
        assert (await sender.send(make_message("third"))).ok
    assert server.connections == 2
    assert len(server.messages) == 3


async def test_send_replaces_a_connection_once_it_is_old_however_busy(server: PoolServer) -> None:
    now = [1000.0]
    async with sender_for(server, max_connection_seconds=300, clock=lambda: now[0]) as sender:
        for _ in range(13):  # never idle for long; the twelfth, at 319 s, finds its connection too old to keep
            assert (await sender.send(make_message(f"at {now[0]}"))).ok
            now[0] += 29
        assert server.connections == 2
        await eventually(lambda: len(server.live) == 1)  # the old one was closed with QUIT
    assert len(server.messages) == 13


async def test_send_does_not_take_a_connection_that_grew_old_while_idle(server: PoolServer) -> None:
    now = [1000.0]
    async with sender_for(server, max_connection_seconds=300, clock=lambda: now[0]) as sender:
        assert (await sender.send(make_message("opens it"))).ok
        now[0] += 299
        assert (await sender.send(make_message("at 299 s, kept"))).ok
        now[0] += 2
        assert (await sender.send(make_message("at 301 s, on a new one"))).ok
    assert server.connections == 2


def test_sender_refuses_a_connection_age_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="max_connection_seconds"):
        SmtpSender(SmtpConfig("localhost", 25), max_connection_seconds=0)


async def test_send_reconnects_after_the_server_closes_an_idle_connection(server: PoolServer) -> None:
    async with sender_for(server) as sender:
        assert (await sender.send(make_message("before"))).ok
        server.drop_all()
        await eventually(lambda: not server.live)
        result = await sender.send(make_message("after"))
    assert result.ok
    assert [str(m.message["Subject"]) for m in server.messages] == ["before", "after"]
    assert server.connections == 2


@pytest.mark.parametrize("fault", ["421 4.7.0 smtp.test too many messages on this connection", "drop"])
async def test_send_retries_once_on_a_new_connection_when_closed_before_data(server: PoolServer, fault: str) -> None:
    async with sender_for(server) as sender:
        assert (await sender.send(make_message("first"))).ok
        server.mail_faults.append(fault)
        result = await sender.send(make_message("second"))
    assert result.ok
    assert [str(m.message["Subject"]) for m in server.messages] == ["first", "second"]
    assert server.connections == 2


async def test_send_retries_only_once(server: PoolServer) -> None:
    server.rcpt_faults["reader@example.org"] = "421 4.3.2 smtp.test shutting down"
    async with sender_for(server) as sender:
        result = await sender.send(make_message())
    assert (result.ok, result.permanent, result.address_bad, result.code) == (False, False, False, 421)
    assert result.message == "421 4.3.2 smtp.test shutting down"
    assert server.connections == 2
    assert server.messages == []


# ---------------------------------------------------------------------------------------------------------------------
# Failures and their classification


async def test_send_data_451_is_temporary_and_the_connection_is_kept(server: PoolServer) -> None:
    server.fault, server.fault_count = "451 4.3.0 try later", 1
    async with sender_for(server) as sender:
        failed = await sender.send(make_message("first"))
        again = await sender.send(make_message("second"))
    assert (failed.ok, failed.permanent, failed.address_bad, failed.code) == (False, False, False, 451)
    assert failed.message == "451 4.3.0 try later"
    assert failed.temporary
    assert again.ok
    assert [str(m.message["Subject"]) for m in server.messages] == ["second"]
    assert server.connections == 1


@pytest.mark.parametrize(
    ("reply", "permanent", "address_bad"),
    [
        ("550 5.1.1 no such user", True, True),
        ("553 5.1.3 bad recipient address syntax", True, True),
        ("550 Requested action not taken: mailbox unavailable", True, True),
        ("552 5.2.2 mailbox full", True, False),
        ("550 5.7.1 recipient rejected by policy", True, False),
        ("450 4.2.1 mailbox busy, try later", False, False),
    ],
)
async def test_send_rcpt_refusal_is_classified(
    server: PoolServer, reply: str, permanent: bool, address_bad: bool
) -> None:
    server.rcpt_faults["reader@example.org"] = reply
    async with sender_for(server) as sender:
        result = await sender.send(make_message())
        assert (await sender.send(make_message(to="other@example.org"))).ok  # the connection survives the refusal
    assert (result.ok, result.permanent, result.address_bad) == (False, permanent, address_bad)
    assert result.code == int(reply[:3])
    assert result.message == reply
    assert [m.rcpt_tos for m in server.messages] == [["other@example.org"]]
    assert server.connections == 1


@pytest.mark.parametrize(
    ("reply", "permanent", "address_bad"),
    [
        ("552 5.2.2 mailbox full", True, False),
        ("554 5.7.1 message rejected as spam", True, False),
        ("554 5.6.0 message content rejected", True, False),
        ("550 5.1.1 no such user", True, True),
        ("452 4.3.1 insufficient system storage", False, False),
    ],
)
async def test_send_data_refusal_is_classified(
    server: PoolServer, reply: str, permanent: bool, address_bad: bool
) -> None:
    server.fault = reply
    async with sender_for(server) as sender:
        result = await sender.send(make_message())
    assert (result.ok, result.permanent, result.address_bad) == (False, permanent, address_bad)
    assert (result.code, result.message) == (int(reply[:3]), reply)
    assert server.connections == 1  # an explicit refusal of the content is never retried at once


async def test_send_partial_refusal_delivers_to_the_rest(server: PoolServer) -> None:
    server.rcpt_faults["gone@example.org"] = "550 5.1.1 no such user"
    async with sender_for(server) as sender:
        result = await sender.send(make_message(), recipients=["gone@example.org", "here@example.org", "bad address"])
    assert result.ok
    assert [(r.address, r.code, r.permanent, r.address_bad) for r in result.refused] == [
        ("gone@example.org", 550, True, True),
        ("bad address", None, True, True),
    ]
    assert server.messages[0].rcpt_tos == ["here@example.org"]


async def test_send_dropped_mid_data_is_temporary_not_retried_and_the_next_send_works(server: PoolServer) -> None:
    server.fault = "drop"
    async with sender_for(server) as sender:
        dropped = await sender.send(make_message("dropped"))
        assert server.connections == 1  # not retried: the server might have taken the message
        server.fault = None
        after = await sender.send(make_message("after"))
    assert (dropped.ok, dropped.permanent, dropped.address_bad, dropped.code) == (False, False, False, None)
    assert dropped.message.startswith("connection lost during DATA")
    assert after.ok
    assert [str(m.message["Subject"]) for m in server.messages] == ["after"]
    assert server.connections == 2


async def test_send_connection_refused_is_temporary() -> None:
    async with SmtpSender(SmtpConfig.from_url(f"smtp://127.0.0.1:{closed_port()}?timeout=5")) as sender:
        result = await sender.send(make_message())
    assert (result.ok, result.permanent, result.address_bad, result.code) == (False, False, False, None)
    assert result.message.startswith("cannot open an SMTP session with smtp://127.0.0.1:")
    assert result.message_id is not None
    assert sender.opened == 0


async def test_send_slow_server_beyond_the_timeout_is_temporary_and_not_retried(server: PoolServer) -> None:
    server.fault, server.slow_seconds = "slow", 30.0
    async with sender_for(server, "timeout=0.2") as sender:
        result = await sender.send(make_message())
    assert (result.ok, result.permanent, result.address_bad, result.code) == (False, False, False, None)
    assert result.message.startswith("no reply from smtp://127.0.0.1:")
    assert "at DATA within 0.2s" in result.message
    assert server.connections == 1


async def test_send_cancelled_mid_transaction_does_not_reuse_the_connection(server: PoolServer) -> None:
    server.fault, server.slow_seconds = "slow", 30.0
    async with sender_for(server) as sender:
        task = asyncio.create_task(sender.send(make_message("cancelled")))
        await server.data_started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        server.fault = None
        result = await sender.send(make_message("next"))
    assert result.ok
    assert [str(m.message["Subject"]) for m in server.messages] == ["next"]
    assert server.connections == 2


# ---------------------------------------------------------------------------------------------------------------------
# TLS and AUTH


async def test_send_starttls_with_a_self_signed_certificate(server_tls: ssl.SSLContext) -> None:
    server = await started(PoolServer(tls=server_tls, require_starttls=True))
    try:
        async with sender_for(server, "starttls=true&validate_certs=false&timeout=5") as sender:
            result = await sender.send(make_message())
    finally:
        await server.stop()
    assert result.ok  # the server refuses MAIL FROM until STARTTLS has been done
    assert len(server.messages) == 1


async def test_send_starttls_refuses_an_unverified_certificate_by_default(server_tls: ssl.SSLContext) -> None:
    server = await started(PoolServer(tls=server_tls, require_starttls=True))
    try:
        async with sender_for(server, "starttls=true&timeout=5") as sender:
            result = await sender.send(make_message())
    finally:
        await server.stop()
    assert (result.ok, result.permanent, result.code) == (False, False, None)
    assert "CERTIFICATE_VERIFY_FAILED" in result.message
    assert server.messages == []


async def test_send_starttls_required_but_not_offered_never_falls_back_to_plain_text(server: PoolServer) -> None:
    async with sender_for(server, "starttls=true&timeout=5") as sender:
        result = await sender.send(make_message())
    assert (result.ok, result.permanent, result.code) == (False, False, None)
    assert "STARTTLS" in result.message
    assert server.messages == []


@pytest.mark.parametrize(("excluded", "used"), [("LOGIN", "PLAIN"), ("PLAIN", "LOGIN")])
async def test_send_auth_over_starttls(server_tls: ssl.SSLContext, excluded: str, used: str) -> None:
    server = PoolServer(tls=server_tls, require_starttls=True, auth_required=True, auth_exclude_mechanism=[excluded])
    server._smtp_kwargs["authenticator"] = server.authenticator({"alerts@notifier.test": "p@ss:w/rd %"})
    await server.start()
    url = f"smtp://alerts%40notifier.test:p%40ss%3Aw%2Frd%20%25@127.0.0.1:{server.port}"
    try:
        async with SmtpSender(SmtpConfig.from_url(f"{url}?starttls=true&validate_certs=false&timeout=5")) as sender:
            result = await sender.send(make_message())
    finally:
        await server.stop()
    assert result.ok
    assert server.auth_mechanisms == [used]
    assert len(server.messages) == 1


async def test_send_auth_with_a_wrong_password_is_temporary(server_tls: ssl.SSLContext) -> None:
    server = PoolServer(tls=server_tls, require_starttls=True, auth_required=True)
    server._smtp_kwargs["authenticator"] = server.authenticator({"alerts": "right"})
    await server.start()
    try:
        url = f"smtp://alerts:wrong@127.0.0.1:{server.port}?starttls=true&validate_certs=false&timeout=5"
        config = SmtpConfig.from_url(url)
        async with SmtpSender(config) as sender:
            result = await sender.send(make_message())
    finally:
        await server.stop()
    assert (result.ok, result.permanent, result.address_bad, result.code) == (False, False, False, 535)
    assert "authentication failed" in result.message
    assert "wrong" not in result.message
    assert server.messages == []


async def test_send_implicit_tls(server_tls: ssl.SSLContext) -> None:
    server = await started(PoolServer(tls=server_tls, implicit_tls=True))
    try:
        config = SmtpConfig.from_url(f"smtps://127.0.0.1:{server.port}?validate_certs=false&timeout=5")
        async with SmtpSender(config) as sender:
            results = [await sender.send(make_message(f"m{i}")) for i in range(2)]
    finally:
        await server.stop()
    assert [r.ok for r in results] == [True, True]
    assert len(server.messages) == 2
    assert server.connections == 1


# ---------------------------------------------------------------------------------------------------------------------
# Rate limit


class FakeTime:
    """A clock that moves only when told to, and a sleep that records its waits."""

    def __init__(self, *, sleeping_advances_clock: bool) -> None:
        self.now = 1000.0
        self.waits: list[float] = []
        self._advance = sleeping_advances_clock

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self._advance:
            self.now += seconds
        await asyncio.sleep(0)


@pytest.mark.parametrize(
    ("rate", "burst", "events"),
    [
        (4.0, 1, [(0.0, 0.0), (0.0, 0.25), (0.0, 0.5), (0.0, 0.75)]),
        (4.0, 2, [(0.0, 0.0), (0.0, 0.0), (0.0, 0.25)]),
        (2.0, 1, [(0.0, 0.0), (0.25, 0.25)]),
        (2.0, 1, [(0.0, 0.0), (10.0, 0.0), (10.0, 0.5)]),  # idle time does not bank more than the burst
        (0.5, 3, [(0.0, 0.0), (0.0, 0.0), (0.0, 0.0), (0.0, 2.0), (1.0, 3.0)]),
    ],
)
def test_token_bucket_reserve_waits(rate: float, burst: int, events: list[tuple[float, float]]) -> None:
    now = [0.0]
    bucket = TokenBucket(rate, burst=burst, clock=lambda: now[0])
    waits = []
    for at, _ in events:
        now[0] = at
        waits.append(bucket.reserve())
    assert waits == [wait for _, wait in events]
    assert bucket.granted == len(events)


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (float("inf"), 1), (float("nan"), 1), (1.0, 0)])
def test_token_bucket_invalid(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match=r"rate|burst"):
        TokenBucket(rate, burst=burst)


async def test_send_rate_limit_spaces_sequential_sends(server: PoolServer) -> None:
    fake = FakeTime(sleeping_advances_clock=True)
    async with sender_for(server, rate_per_second=4, clock=fake.clock, sleep=fake.sleep) as sender:
        for i in range(5):
            assert (await sender.send(make_message(f"m{i}"))).ok
    assert fake.waits == [0.25, 0.25, 0.25, 0.25]
    assert sender.rate_limit is not None and sender.rate_limit.granted == 5
    assert len(server.messages) == 5


async def test_send_rate_limit_queues_concurrent_sends(server: PoolServer) -> None:
    fake = FakeTime(sleeping_advances_clock=False)
    async with sender_for(server, rate_per_second=4, burst=2, clock=fake.clock, sleep=fake.sleep) as sender:
        results = await asyncio.gather(*(sender.send(make_message(f"m{i}")) for i in range(6)))
    assert all(r.ok for r in results)
    assert sorted(fake.waits) == [0.25, 0.5, 0.75, 1.0]  # two at once (the burst), then one every quarter second
    assert len(server.messages) == 6


async def test_send_without_rate_limit_never_waits(server: PoolServer) -> None:
    fake = FakeTime(sleeping_advances_clock=True)
    async with sender_for(server, clock=fake.clock, sleep=fake.sleep) as sender:
        await asyncio.gather(*(sender.send(make_message(f"m{i}")) for i in range(5)))
    assert sender.rate_limit is None
    assert fake.waits == []
