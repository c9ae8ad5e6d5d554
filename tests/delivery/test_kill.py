"""A worker process killed (SIGKILL) in the middle of sending a few hundred emails loses nothing, and sends again only
what was in flight at the moment it died.

The worker is the real one (`python -m notifier.cli worker`) on real PostgreSQL and Redis, sending to an SMTP server
in this process that takes a while over each message. It is killed once some but not all messages have arrived;
then either it is started again at once, or a second worker has been running beside it. The dead worker's heartbeat
stops, the live worker's start-up or sweeper hands its claims back and sends them. The time from the kill until the
claims are back is printed: the time to recover.

Counting: a message the server has accepted but whose delivery the dead worker had not yet marked `sent` is sent
again by the new worker, a duplicate. A message whose DATA the server was still working on when the connection
dropped was not accepted (the server drops it, as Postfix does on a lost connection), so sending it again is its
first copy. Both are "in flight at the kill", and duplicates can only come from the first kind.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from arq.connections import ArqRedis

from notifier.matching.matcher import SubscriptionIndex, match_events
from notifier.settings import Settings
from tests.factories import Factory
from tests.servers import SmtpServer, _Handler

MESSAGES = 300
KILL_AFTER = 100  # messages received before the kill
# A lease far longer than the test: the dead worker's claims can only come back because its heartbeat stopped.
LEASE_SECONDS = 600


class _CountingHandler(_Handler):
    server: SlowServer

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.server.in_data += 1
        try:
            return await super().handle_DATA(server, session, envelope)
        finally:
            self.server.in_data -= 1


class SlowServer(SmtpServer):
    """tests.servers.SmtpServer taking `slow_seconds` over each message, counting the DATA transactions open."""

    def __init__(self) -> None:
        super().__init__()
        self.fault = "slow"
        self.slow_seconds = 0.04
        self.in_data = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        handler = _CountingHandler(self)
        self._server = await loop.create_server(lambda: SMTP(handler, hostname="smtp.test"), "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]


@pytest.fixture
async def slow_server() -> AsyncIterator[SlowServer]:
    server = SlowServer()
    await server.start()
    yield server
    await server.stop()



async def wait_for(what: str, check: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class Worker:
    """`python -m notifier.cli worker` in its own process, with its output kept in a file."""

    def __init__(self, env: dict[str, str], cwd: Path, name: str) -> None:
        self.log = cwd / f"{name}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(  # our own command
                [sys.executable, "-m", "notifier.cli", "worker"], env=env, cwd=cwd, stdout=out, stderr=out
            )

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(40)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


async def counts(pool: asyncpg.Pool) -> dict[str, int]:
    return {r["status"]: r["n"] for r in await pool.fetch("select status, count(*) as n from deliveries group by 1")}


async def holder_of(pool: asyncpg.Pool, worker: Worker) -> str:
    """The worker id a worker process registered under (its claims name it as their holder)."""
    async def registered() -> bool:
        found = await pool.fetchval("select worker_id from worker_heartbeats where pid = $1", worker.proc.pid)
        return found is not None

    await wait_for(f"worker {worker.proc.pid} to beat", registered)
    holder: str = await pool.fetchval("select worker_id from worker_heartbeats where pid = $1", worker.proc.pid)
    return holder


async def busiest_holder(pool: asyncpg.Pool, holders: dict[str, Worker]) -> str:
    """Of the running workers, the one holding the most claims: the one to kill."""
    held: str | None = await pool.fetchval(
        """
        select lease_holder from deliveries where status = 'sending' and lease_holder = any($1::text[])
        group by 1 order by count(*) desc limit 1
        """,
        list(holders),
    )
    assert held is not None, "no worker holds a claim"
    return held


async def time_to_recover(pool: asyncpg.Pool, holder: str, killed_at: float) -> float:
    """Seconds from the kill until none of the dead worker's claims is left `sending`: its work is being sent again."""
    async def released() -> bool:
        n = await pool.fetchval(
            "select count(*) from deliveries where status = 'sending' and lease_holder = $1", holder
        )
        return bool(n == 0)

    await wait_for("the dead worker's claims to be handed back", released, timeout=180)
    return time.monotonic() - killed_at


@pytest.mark.parametrize("beside", [False, True], ids=["restarted-alone", "beside-a-second-worker"])
async def test_worker_killed_mid_send_resends_only_what_was_in_flight(
    pool: asyncpg.Pool, factory: Factory, settings: Settings, slow_server: SlowServer,
    queue: tuple[str, ArqRedis], tmp_path: Path, beside: bool,
) -> None:
    """Alone: the killed worker is started again at once. Beside: another worker is running all along. Either way
    the dead worker's claims come back once its heartbeat stops (its leases would hold them far longer), and are
    sent by the live one."""
    redis_url, redis = queue
    council = await factory.council()
    subscriber_ids = [
        r["id"] for r in await pool.fetch(
            "insert into subscribers (email, status, confirmed_at) "
            "select 'resident' || n || '@example.org', 'active', now() from generate_series(1, $1) n returning id",
            MESSAGES,
        )
    ]
    await pool.executemany(
        "insert into subscriptions (subscriber_id, councils, channel, feed_token, confirmed_at, created_at) "
        "values ($1, $2, 'email', 'feed-' || $1::bigint::text, now(), now() - interval '1 day')",
        [(s, [council]) for s in subscriber_ids],
    )
    await factory.event(title="Cabinet")
    assert (await match_events(pool, SubscriptionIndex(), settings)).deliveries == MESSAGES

    env = {
        **os.environ,
        "NOTIFIER_DATABASE_URL": settings.database_url,
        "NOTIFIER_REDIS_URL": redis_url,
        "NOTIFIER_SMTP_URL": slow_server.url,
        "NOTIFIER_DATA_DIR": str(tmp_path),
        "NOTIFIER_SECRET_KEY": settings.secret_key,
        "NOTIFIER_BASE_URL": settings.base_url,
        "NOTIFIER_MAIL_FROM": settings.mail_from,
        "NOTIFIER_DELIVERY_LEASE_SECONDS": str(LEASE_SECONDS),
        "NOTIFIER_SMTP_RATE_PER_SECOND": "10000",
    }
    first = Worker(env, tmp_path, "first")
    second: Worker | None = Worker(env, tmp_path, "second") if beside else None
    try:
        holders = {await holder_of(pool, w): w for w in (first, second) if w is not None}
        await redis.enqueue_job("send_emails", _job_id="send:before-the-kill")
        # killed in the middle of things: enough received, and messages on their way over open connections
        await wait_for(f"{KILL_AFTER} messages and more under way", _under_way(slow_server, KILL_AFTER))
        holder = await busiest_holder(pool, holders)
        first, second = holders[holder], next((w for h, w in holders.items() if h != holder), None)
        first.kill()
        killed_at = time.monotonic()
        received_at_kill = [m.rcpt_tos[0] for m in slow_server.messages]
        open_at_kill = slow_server.in_data
        if not beside:
            # the dropped connections reach the server: transactions still open are abandoned, not accepted
            await wait_for("the server to see the connections drop", _zero(slow_server))
            assert len(slow_server.messages) == len(received_at_kill)
        marked = {r["email"] for r in await pool.fetch(
            "select b.email from deliveries d join subscriptions s on s.id = d.subscription_id "
            "join subscribers b on b.id = s.subscriber_id where d.status = 'sent'")}
        held_at_kill = await pool.fetchval(
            "select count(*) from deliveries where status = 'sending' and lease_holder = $1", holder)
        accepted_unmarked = len(set(received_at_kill) - marked)
        in_flight = accepted_unmarked + open_at_kill
        assert KILL_AFTER <= len(received_at_kill) < MESSAGES, first.output()
        assert held_at_kill > 0  # claims the dead worker left behind

        if not beside:
            second = Worker(env, tmp_path, "second")  # started at once, in the dead one's place
        recovered = await time_to_recover(pool, holder, killed_at)

        async def all_sent() -> bool:
            return (await counts(pool)).get("sent", 0) == MESSAGES

        await wait_for("every delivery to be sent", all_sent, timeout=180)
        all_sent_after = time.monotonic() - killed_at
        assert second is not None and second.stop() == 0, second.output() if second else ""
    finally:
        for worker in (first, second):
            if worker is not None and worker.proc.poll() is None:
                worker.kill()

    copies = Counter(m.rcpt_tos[0] for m in slow_server.messages)
    duplicates = sum(n - 1 for n in copies.values())
    print(f"\n{'beside a second worker' if beside else 'restarted alone'}: killed after {len(received_at_kill)} of "
          f"{MESSAGES} messages holding {held_at_kill} claims; time to recover {recovered:.1f} s (every message sent "
          f"{all_sent_after:.1f} s after the kill); in flight at the kill: {in_flight} ({accepted_unmarked} accepted "
          f"but not marked sent, {open_at_kill} mid-DATA); duplicates: {duplicates}")
    assert await counts(pool) == {"sent": MESSAGES}
    assert set(copies) == {f"resident{n}@example.org" for n in range(1, MESSAGES + 1)}
    assert max(copies.values()) <= 2
    assert duplicates <= in_flight
    if not beside:  # alone, every message accepted but not marked was the dead worker's
        assert duplicates == accepted_unmarked


def _under_way(server: SlowServer, received: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return len(server.messages) >= received and server.in_data > 0

    return check


def _zero(server: SlowServer) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return server.in_data == 0

    return check

