"""End to end, as operators run it: a web process and two workers on one PostgreSQL and one Redis, councils that
change and misbehave, a mail server and a partner's receiver that go away, workers that die; residents of the API
and of the pages, a partner's webhook endpoint and a WebSub subscriber, each hearing of what they follow once.

Each scenario prints and asserts: deliveries expected, delivered, lost (always 0) and duplicated (0 outside the
in-flight window of a killed worker), and the time to recover.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg
import feedparser
import pytest
from arq.connections import ArqRedis

from notifier.db import create_pool, migrate
from notifier.embedded import EmbeddedPostgres
from notifier.settings import Settings
from tests.e2e.councils import FakeCouncils
from tests.e2e.stack import Stack, counts, wait_for
from tests.e2e.websub import EVENT_ID, WebSubSubscriber
from tests.e2e.world import (
    World,
    add_residents,
    build_world,
    change,
    expected,
    expected_pushes,
    poll_all,
    report,
    settled,
)
from tests.servers import SmtpServer, WebhookReceiver


@pytest.fixture
async def councils() -> AsyncIterator[FakeCouncils]:
    c = FakeCouncils()
    await c.start()
    yield c
    await c.stop()


@pytest.fixture
async def stack(settings: Settings, pool: asyncpg.Pool, queue: tuple[str, ArqRedis], smtp_server: SmtpServer,
                tmp_path: Path) -> AsyncIterator[Stack]:
    s = Stack(settings, queue[0], smtp_server.url, tmp_path)
    try:
        await s.start(workers=2)
        yield s
        codes = s.stop()
        assert all(code == 0 for code in codes.values()), (codes, s.outputs())
    finally:
        s.kill_all()



@pytest.fixture
async def websub() -> AsyncIterator[WebSubSubscriber]:
    w = WebSubSubscriber()
    await w.start()
    yield w
    await w.stop()


async def feed_events(url: str) -> Counter[int]:
    """How many times a feed (Atom) lists each event."""
    async with aiohttp.ClientSession() as s, s.get(url) as resp:
        assert resp.status == 200, url
        feed = feedparser.parse(await resp.read())
    assert not feed.bozo, url
    return Counter(int(m[1]) for e in feed.entries if (m := EVENT_ID.search(e.id)))


async def check_feeds(pool: asyncpg.Pool, stack: Stack, councils: FakeCouncils, world: World) -> int:
    """Every council's feed, and a resident's own feed, list each of their events exactly once; returns how many
    entries were checked."""
    checked = 0
    for council in councils.councils:
        want = {r["id"] for r in await pool.fetch("select id from events where council = $1", council.slug)}
        got = await feed_events(f"{stack.base_url}/feeds/councils/{council.slug}.atom")
        assert set(got) == want and set(got.values()) == {1}, (council.slug, got, want)
        checked += len(want)
    # cat's own feed follows "wellbeing board" across councils: what the council feeds say of that committee
    want = {r["id"] for r in await pool.fetch(
        "select e.id from events e join items i on i.id = e.item_id where i.committee ilike '%wellbeing board%'")}
    got = await feed_events(world.recipients["cat@example.org"]["feed_url"])  # its Atom form
    assert want and set(got) == want and set(got.values()) == {1}, (got, want)
    return checked + len(want)


@pytest.mark.timeout(300)
async def test_e2e_every_alert_webhook_push_and_feed_entry_arrives_once(
    pool: asyncpg.Pool, councils: FakeCouncils, stack: Stack, queue: tuple[str, ArqRedis],
    smtp_server: SmtpServer, receiver: WebhookReceiver, websub: WebSubSubscriber,
) -> None:
    world = await build_world(pool, councils, stack, queue[1], receiver, websub, smtp_server)
    changed = change(councils)
    await poll_all(world, pool, "after-changes")
    await wait_for("every immediate delivery to be sent", lambda: settled(pool))
    want = expected(councils, world, changed) | await expected_pushes(pool, world)
    total, delivered, duplicated = report("busy moment", want, smtp_server, receiver, websub=websub)
    assert duplicated == 0
    # emails: amy, bob, cat and the two residents of the pages; the partner's endpoint; two WebSub topics
    assert {w for w, m in want.items() if m} == {"amy@example.org", "bob@example.org", "cat@example.org",
                                                 "pat@example.org", "quinn@example.org", "webhook",
                                                 "websub:council", "websub:region"}
    assert total == delivered
    assert not [p for p in websub.pushes if not p.verified]  # every push signed with the callback's own secret
    # daily and weekly subscribers wait for their hour and day
    later = await pool.fetch(
        """
        select s.frequency, d.status, d.next_attempt_at
        from deliveries d join subscriptions s on s.id = d.subscription_id
        where s.frequency <> 'immediate'
        """
    )
    assert {(r["frequency"], r["status"]) for r in later} == {("daily", "pending"), ("weekly", "pending")}
    assert all(r["next_attempt_at"] > datetime.now(UTC) for r in later)
    entries = await check_feeds(pool, stack, councils, world)
    print(f"feeds: {entries} entries checked, each listed once")
    # the moved meeting's entries in its council's feed: scheduled and its agenda (first poll), then moved
    async with aiohttp.ClientSession() as s, s.get(
        f"{stack.base_url}/feeds/councils/{councils.councils[0].slug}.atom"
    ) as resp:
        feed = feedparser.parse(await resp.read())
    about = [e for e in feed.entries if f"MId={changed[0][1]}" in e.link]
    kinds = sorted(next(k for k in ("moved to", "agenda published", "meeting scheduled") if k in e.title)
                   for e in about)
    assert kinds == ["agenda published", "meeting scheduled", "moved to"], [e.title for e in about]


@pytest.mark.timeout(300)
async def test_e2e_worker_killed_mid_batch_recovers(
    pool: asyncpg.Pool, councils: FakeCouncils, stack: Stack, queue: tuple[str, ArqRedis],
    smtp_server: SmtpServer,
) -> None:
    world = await build_world(pool, councils, stack, queue[1])
    # two hundred more residents follow council 0, and the mail server takes its time over each message
    await add_residents(world, councils.councils[0].slug, 200)
    smtp_server.fault = "slow"
    smtp_server.slow_seconds = 0.03
    changed = change(councils)
    await poll_all(world, pool, "after-changes")

    async def under_way() -> bool:
        return len(smtp_server.messages) >= 60

    await wait_for("the first sixty alerts", under_way)
    # both workers die mid-batch (so whichever held the claims is among them), and are started again
    for worker in stack.workers:
        worker.kill()
    killed_at = time.monotonic()
    at_kill = await counts(pool)
    marked = at_kill.get("sent", 0)
    received = len(smtp_server.messages)
    assert at_kill.get("sending", 0) > 0, at_kill  # claims the dead workers left behind
    stack.workers.clear()
    stack.add_worker()
    stack.add_worker()
    await wait_for("every immediate delivery to be sent by the new workers", lambda: settled(pool), timeout=150)
    recovered = time.monotonic() - killed_at
    want = expected(councils, world, changed)
    _, _, duplicated = report("worker SIGKILL mid-batch", want, smtp_server, None, recovered)
    # a repeat can only be a message the mail server had accepted but the dead worker had not yet marked
    assert duplicated <= max(received - marked, 0) + 10


async def move_clock(pool: asyncpg.Pool) -> None:
    """Retries fall due now, as if their back-off had passed (emails wait a minute and more between tries)."""
    await pool.execute("update deliveries set next_attempt_at = now() where status = 'pending' "
                       "and subscription_id in (select id from subscriptions where frequency = 'immediate')")


async def retried_until_settled(pool: asyncpg.Pool, stack: Stack, redis: ArqRedis, *, timeout: float = 150) -> float:
    """Move the clock and wake the senders until every immediate delivery is sent; returns the seconds it took."""
    start = time.monotonic()

    async def done() -> bool:
        if await settled(pool):
            return True
        await move_clock(pool)
        stamp = f"{time.monotonic():.1f}"
        await redis.enqueue_job("send_emails", _job_id=f"send:e2e:{stamp}")
        await redis.enqueue_job("deliver_webhooks", _job_id=f"webhooks:e2e:{stamp}")
        return False

    await wait_for("every immediate delivery to be sent", done, timeout=timeout)
    return time.monotonic() - start


@pytest.mark.timeout(300)
async def test_e2e_mail_server_away_then_refusing_then_back(
    pool: asyncpg.Pool, councils: FakeCouncils, stack: Stack, queue: tuple[str, ArqRedis], smtp_server: SmtpServer,
) -> None:
    world = await build_world(pool, councils, stack, queue[1])
    await smtp_server.stop()  # connections refused
    changed = change(councils)
    await poll_all(world, pool, "after-changes")

    async def tried() -> bool:
        return (await counts(pool, "s.frequency = 'immediate' and d.attempts > 0")).get("pending", 0) > 0

    await wait_for("the first tries to fail", tried)
    await smtp_server.start()
    smtp_server.fault = "451 4.3.0 Mailbox busy, try again later"
    await move_clock(pool)
    await wait_for("tries answered 451", lambda: _attempted(pool, 2))
    smtp_server.fault = None
    recovered = await retried_until_settled(pool, stack, queue[1])
    _, _, duplicated = report("SMTP away, then 4xx, then back", expected(councils, world, changed), smtp_server,
                              None, recovered)
    assert duplicated == 0


async def _attempted(pool: asyncpg.Pool, attempts: int) -> bool:
    return bool(await pool.fetchval("select count(*) from deliveries where attempts >= $1", attempts))


@pytest.mark.timeout(300)
async def test_e2e_webhook_receiver_failing_then_timing_out_then_back(
    pool: asyncpg.Pool, councils: FakeCouncils, stack: Stack, queue: tuple[str, ArqRedis],
    smtp_server: SmtpServer, receiver: WebhookReceiver,
) -> None:
    world = await build_world(pool, councils, stack, queue[1], receiver)
    receiver.plans["news"] = [500, 500, ("sleep", 20.0), ("sleep", 20.0)]
    changed = change(councils)
    await poll_all(world, pool, "after-changes")
    await wait_for("the receiver's failures", lambda: _attempted(pool, 2), timeout=120)
    recovered = await retried_until_settled(pool, stack, queue[1])
    _, _, duplicated = report("webhook receiver 500s and timeouts, then back", expected(councils, world, changed),
                              smtp_server, receiver, recovered)
    assert duplicated == 0
    statuses = {r.status for r in receiver.received}
    assert {500, 204} <= statuses


@pytest.mark.timeout(300)
async def test_e2e_councils_answering_badly_lose_nothing(
    pool: asyncpg.Pool, councils: FakeCouncils, stack: Stack, queue: tuple[str, ArqRedis], smtp_server: SmtpServer,
) -> None:
    world = await build_world(pool, councils, stack, queue[1])
    items_before = await pool.fetchval("select count(*) from items")
    changed = change(councils)
    for fault in ("html", "truncated", "huge"):
        councils.faults = {0: fault, 1: fault, 2: fault}
        await poll_all(world, pool, f"bad-{fault}")
        errors = await pool.fetch("select error from poll_runs where error is not null order by id desc limit 3")
        assert len(errors) == 3 and all(r["error"] for r in errors), fault
        assert await pool.fetchval("select count(*) from items") == items_before  # nothing half-written
        assert await counts(pool, "true") == {}
    councils.faults = {}
    started = time.monotonic()
    await poll_all(world, pool, "recovered")
    await wait_for("every immediate delivery to be sent", lambda: settled(pool))
    _, _, duplicated = report("councils: HTML 200, truncated XML, huge; then well", expected(councils, world, changed),
                              smtp_server, None, time.monotonic() - started)
    assert duplicated == 0
    health = await pool.fetch("select consecutive_failures from sources")
    assert {r["consecutive_failures"] for r in health} == {0}


@pytest.mark.timeout(300)
async def test_e2e_redis_flushed_sweeper_recovers_pending_work(
    pool: asyncpg.Pool, councils: FakeCouncils, stack: Stack, queue: tuple[str, ArqRedis], smtp_server: SmtpServer,
) -> None:
    world = await build_world(pool, councils, stack, queue[1])
    smtp_server.fault = "slow"
    smtp_server.slow_seconds = 0.5
    changed = change(councils)
    await poll_all(world, pool, "after-changes")
    await wait_for("deliveries to be written", lambda: _any_deliveries(pool))
    await queue[1].flushdb()  # every queued job lost
    flushed_at = time.monotonic()
    smtp_server.fault = None
    await wait_for("the sweeper and the cron passes to send what was pending", lambda: settled(pool), timeout=150)
    _, _, duplicated = report("Redis flushed", expected(councils, world, changed), smtp_server, None,
                              time.monotonic() - flushed_at)
    assert duplicated == 0


async def _any_deliveries(pool: asyncpg.Pool) -> bool:
    return bool(await pool.fetchval("select count(*) from deliveries"))


@pytest.fixture
async def own_postgres(tmp_path: Path, settings: Settings) -> AsyncIterator[tuple[EmbeddedPostgres, Settings]]:
    """A PostgreSQL server of the scenario's own (the embedded one), so that it can be restarted under load without
    disturbing anything else."""
    server = EmbeddedPostgres(tmp_path / "pg")
    url = await asyncio.to_thread(server.start)
    await migrate(url)
    try:
        yield server, settings.model_copy(update={"database_url": url})
    finally:
        await asyncio.to_thread(server.stop)


@pytest.mark.timeout(300)
async def test_e2e_postgres_restarted_under_load_pools_recover(
    own_postgres: tuple[EmbeddedPostgres, Settings], councils: FakeCouncils, queue: tuple[str, ArqRedis],
    smtp_server: SmtpServer, tmp_path: Path,
) -> None:
    server, settings = own_postgres
    pool = await create_pool(settings.database_url, min_size=1, max_size=4)
    stack = Stack(settings, queue[0], smtp_server.url, tmp_path)
    try:
        await stack.start(workers=2)
        world = await build_world(pool, councils, stack, queue[1])
        await add_residents(world, councils.councils[0].slug, 100)
        smtp_server.fault = "slow"
        smtp_server.slow_seconds = 0.05
        changed = change(councils)
        await poll_all(world, pool, "after-changes")
        await wait_for("the first alerts", lambda: _received(smtp_server, 20))
        marked = (await counts(pool)).get("sent", 0)
        await asyncio.to_thread(server.stop)  # every connection drops
        await asyncio.to_thread(server.start)
        restarted_at = time.monotonic()
        # the messages accepted but not marked before the stop, or accepted while the database was away
        unmarked = len(smtp_server.messages) - marked
        smtp_server.fault = None
        recovered = await retried_until_settled(pool, stack, queue[1])
        assert await stack.ready()  # the web process answers again without a restart
        _, _, duplicated = report("PostgreSQL restarted under load", expected(councils, world, changed), smtp_server,
                                  None, time.monotonic() - restarted_at)
        assert recovered > 0
        # a repeat can only be a message accepted while its mark could not be written
        assert duplicated <= unmarked, (duplicated, unmarked)
        codes = stack.stop()
        assert all(code == 0 for code in codes.values()), (codes, stack.outputs())
    finally:
        stack.kill_all()
        await pool.close()


async def _received(smtp: SmtpServer, n: int) -> bool:
    return len(smtp.messages) >= n


@pytest.mark.timeout(300)
async def test_e2e_web_restarted_under_a_stream_of_requests_drops_none(
    pool: asyncpg.Pool, councils: FakeCouncils, stack: Stack, queue: tuple[str, ArqRedis],
) -> None:
    world = await build_world(pool, councils, stack, queue[1])
    outcomes: Counter[str] = Counter()
    stop = asyncio.Event()

    acknowledged: set[str] = set()

    async def one(s: aiohttp.ClientSession, n: int, i: int) -> None:
        """One request, tried again (as a load balancer would) while the connection is refused or reset before an
        answer: a request that got an answer is never sent twice."""
        email = f"stream{n}-{i}@example.org"
        while True:
            try:
                if i % 3:
                    async with s.get(f"{stack.base_url}/api/v1/councils", headers={"Connection": "close"}) as r:
                        await r.read()
                else:
                    async with s.post(f"{stack.base_url}/api/v1/subscribers", headers={"Connection": "close"},
                                      json={"email": email, "consent": "vouched"}) as r:
                        await r.read()
                    acknowledged.add(email)
                outcomes["answered" if r.status < 500 else f"status {r.status}"] += 1
                return
            except aiohttp.ClientConnectorError:
                outcomes["refused, tried again"] += 1
            except aiohttp.ClientOSError:
                outcomes["reset before an answer, tried again"] += 1
            except aiohttp.ClientError as e:
                outcomes[f"dropped: {type(e).__name__}"] += 1
                return
            await asyncio.sleep(0.02)

    async def client(n: int) -> None:
        async with aiohttp.ClientSession(headers=world.api.headers) as s:
            i = 0
            while not stop.is_set():
                i += 1
                await one(s, n, i)

    clients = [asyncio.create_task(client(n)) for n in range(4)]
    await asyncio.sleep(1.0)  # requests flowing
    assert stack.web is not None
    old = stack.web
    old.proc.terminate()  # SIGTERM: finish what is in flight, then stop
    # it stops once what it was serving is done, at worst when its shutdown grace period (30 s) is over
    assert await asyncio.to_thread(old.proc.wait, 60) == 0, old.output()
    stopped_at = time.monotonic()
    stack.web = type(old)(["web", "--host", "127.0.0.1", "--port", str(stack.port)], stack.env, stack.cwd, "web2")
    await wait_for("the new web process", stack.ready, timeout=60)
    back = time.monotonic() - stopped_at
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.gather(*clients)
    print(f"\nweb restarted under load: {dict(outcomes)}; back in {back:.1f} s")
    assert outcomes["answered"] > 0 and outcomes["refused, tried again"] > 0
    assert [k for k in outcomes if k.startswith(("dropped", "status"))] == []
    # every subscriber the stream was told was made exists, once; none was made without an answer
    made = {r["email"] for r in await pool.fetch("select email from subscribers where email like 'stream%'")}
    assert made == acknowledged
