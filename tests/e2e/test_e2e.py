"""End to end, as operators run it: a web process and two workers on one PostgreSQL and one Redis, councils that
change and misbehave, a mail server and a partner's receiver that go away, workers that die.

Each scenario prints and asserts: deliveries expected, delivered, lost (always 0) and duplicated (0 outside the
in-flight window of a killed worker), and the time to recover.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import feedparser
import pytest
from arq.connections import ArqRedis

from notifier.councils import add_council, add_source
from notifier.db import create_pool, migrate
from notifier.embedded import EmbeddedPostgres
from notifier.partners import create_partner
from notifier.settings import Settings
from tests.e2e.councils import FakeCouncils
from tests.e2e.stack import Api, Stack, counts, wait_for
from tests.servers import SmtpServer, WebhookReceiver


@pytest.fixture
async def councils() -> AsyncIterator[FakeCouncils]:
    c = FakeCouncils()
    await c.start()
    yield c
    await c.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    r = WebhookReceiver()
    await r.start()
    yield r
    await r.stop()


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


@dataclass
class World:
    """What a scenario set up: the councils' sources, the partner's API, who follows what."""

    sources: list[int]
    api: Api
    redis: ArqRedis
    recipients: dict[str, dict[str, Any]] = field(default_factory=dict)  # email → {"filter", "frequency"}
    endpoint: dict[str, Any] | None = None


async def poll_all(world: World, pool: asyncpg.Pool, tag: str) -> None:
    """Every council polled now (as the scheduler would), and every poll finished."""
    before = await pool.fetchval("select count(*) from poll_runs")
    for source_id in world.sources:
        await world.redis.enqueue_job("poll_source", source_id, _job_id=f"poll:{source_id}:{tag}")

    async def done() -> bool:
        return await pool.fetchval("select count(*) from poll_runs") >= before + len(world.sources)

    await wait_for(f"the {tag} polls", done)


async def build_world(pool: asyncpg.Pool, councils: FakeCouncils, stack: Stack, redis: ArqRedis,
                      receiver: WebhookReceiver | None = None) -> World:
    sources = []
    for n, council in enumerate(councils.councils):
        await add_council(pool, council.slug, council.name, region=council.region, nation=council.nation)
        sources.append(await add_source(pool, council.slug, "moderngov", councils.base(n), interval_minutes=1440))
    # the scheduler leaves them to the test: each poll is asked for
    await pool.execute("update sources set next_poll_at = now() + interval '1 day'")
    _, key = await create_partner(pool, "Local newsroom", contact_email="tech@news.example",
                                  rate_limit_per_minute=100_000)
    world = World(sources, Api(stack.base_url, key), redis)
    await poll_all(world, pool, "first")
    assert await pool.fetchval("select count(*) from poll_runs where error is not null") == 0
    c0, c1, c2 = (c.slug for c in councils.councils)
    follows = {
        "amy@example.org": ({"councils": [c0]}, "immediate"),
        "bob@example.org": ({"regions": ["East Midlands"]}, "immediate"),
        "cat@example.org": ({"query": '"wellbeing board"'}, "immediate"),
        "dan@example.org": ({"councils": [c1]}, "daily"),
        "eve@example.org": ({"councils": [c2]}, "weekly"),
    }
    for email, (f, frequency) in follows.items():
        subscriber = await world.api.call("POST", "/api/v1/subscribers", {"email": email, "consent": "vouched"},
                                          expect=201)
        await world.api.call("POST", "/api/v1/subscriptions",
                             {"subscriber_id": subscriber["id"], "filter": f, "frequency": frequency}, expect=201)
        world.recipients[email] = {"filter": f, "frequency": frequency}
    if receiver is not None:
        world.endpoint = await world.api.call(
            "POST", "/api/v1/webhooks", {"url": receiver.endpoint("news"), "filter": {"councils": [c0, c1]}},
            expect=201,
        )
        receiver.secrets["news"] = [world.endpoint["secret"]]
    return world


async def add_residents(world: World, slug: str, n: int) -> None:
    """`n` more residents, each with an immediate alert for one council, made through the API."""
    for k in range(n):
        email = f"resident{k}@example.org"
        subscriber = await world.api.call("POST", "/api/v1/subscribers", {"email": email, "consent": "vouched"},
                                          expect=201)
        await world.api.call("POST", "/api/v1/subscriptions",
                             {"subscriber_id": subscriber["id"], "filter": {"councils": [slug]}}, expect=201)
        world.recipients[email] = {"filter": {"councils": [slug]}, "frequency": "immediate"}


def _follows(f: dict[str, Any], council: Any, committee: str) -> bool:
    if "councils" in f:
        return council.slug in f["councils"]
    if "regions" in f:
        return council.region in f["regions"]
    return "wellbeing board" in committee.lower()


def expected(councils: FakeCouncils, world: World, changed: list[tuple[int, int]]) -> dict[str, set[int]]:
    """Which meetings (ids) each immediate recipient, and the webhook endpoint, should hear of."""
    out: dict[str, set[int]] = {}
    for email, follow in world.recipients.items():
        if follow["frequency"] != "immediate":
            continue
        out[email] = set()
        for n, meeting_id in changed:
            council = councils.councils[n]
            meeting = council.meeting(meeting_id)
            assert meeting is not None
            committee = next(c.title for c in council.committees if c.id == meeting.committee_id)
            if _follows(follow["filter"], council, committee):
                out[email].add(meeting_id)
    if world.endpoint is not None:
        out["webhook"] = {m for n, m in changed if n in (0, 1)}
    return out


def mentions(smtp: SmtpServer, email: str) -> Counter[int]:
    """How many messages to `email` mention each meeting (by its ModernGov id in the council's page link)."""
    found: Counter[int] = Counter()
    for m in smtp.messages:
        if m.rcpt_tos != [email]:
            continue
        text = m.raw.decode(errors="replace").replace("=\r\n", "").replace("=\n", "").replace("=3D", "=")
        for meeting_id in {int(x) for x in re.findall(r"MId=(\d+)", text)}:
            found[meeting_id] += 1
    return found


def report(name: str, want: dict[str, set[int]], smtp: SmtpServer, receiver: WebhookReceiver | None,
           recovered_s: float | None = None) -> tuple[int, int, int]:
    """Print and return (expected, delivered, duplicated); every expected delivery must have arrived."""
    total = delivered = duplicated = 0
    lost: list[tuple[str, int]] = []
    for who, meetings in want.items():
        if who == "webhook":
            assert receiver is not None
            got: Counter[int] = Counter(r.json()["data"]["item"]["external_id"] for r in receiver.ok("news"))
            got = Counter({int(k): v for k, v in got.items()})
            ids = Counter(r.webhook_id for r in receiver.ok("news"))
            duplicated += sum(n - 1 for n in ids.values())
        else:
            got = mentions(smtp, who)
            duplicated += sum(max(got[m] - 1, 0) for m in meetings)
        total += len(meetings)
        delivered += sum(1 for m in meetings if got[m] >= 1)
        lost += [(who, m) for m in meetings if got[m] == 0]
        assert set(got) <= meetings, (who, set(got) - meetings)  # nothing that was not theirs
    recovery = f", recovered in {recovered_s:.1f} s" if recovered_s is not None else ""
    print(f"\n{name}: expected {total}, delivered {delivered}, lost {len(lost)}, duplicated {duplicated}{recovery}")
    assert lost == []
    return total, delivered, duplicated


def change(councils: FakeCouncils) -> list[tuple[int, int]]:
    """A busy moment: a meeting moved in council 0, one cancelled in council 1, one added in council 2."""
    hwb0 = next(m for m in councils.meetings(0) if m.committee_id == 101)
    cabinet1 = next(m for m in councils.meetings(1) if m.committee_id == 100)
    councils.reschedule(0, hwb0.id, 7)
    councils.cancel(1, cabinet1.id)
    added = councils.add_meeting(2, 1, 30)
    return [(0, hwb0.id), (1, cabinet1.id), (2, added.id)]


async def settled(pool: asyncpg.Pool) -> bool:
    """Every immediate delivery (email and webhook) is sent."""
    c = await counts(pool, "s.frequency = 'immediate'")
    return set(c) == {"sent"}


@pytest.mark.timeout(300)
async def test_e2e_every_alert_webhook_and_feed_entry_arrives_once(
    pool: asyncpg.Pool, councils: FakeCouncils, stack: Stack, queue: tuple[str, ArqRedis],
    smtp_server: SmtpServer, receiver: WebhookReceiver,
) -> None:
    world = await build_world(pool, councils, stack, queue[1], receiver)
    changed = change(councils)
    await poll_all(world, pool, "after-changes")
    await wait_for("every immediate delivery to be sent", lambda: settled(pool))
    want = expected(councils, world, changed)
    total, delivered, duplicated = report("busy moment", want, smtp_server, receiver)
    assert duplicated == 0
    assert total == delivered == 7
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
    # the council's feed lists each of the meeting's events once: scheduled and its agenda (first poll), then moved
    async with aiohttp.ClientSession() as s, s.get(
        f"{stack.base_url}/feeds/councils/{councils.councils[0].slug}.atom"
    ) as resp:
        feed = feedparser.parse(await resp.read())
    assert not feed.bozo
    ids = [e.id for e in feed.entries]
    assert len(ids) == len(set(ids))
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
