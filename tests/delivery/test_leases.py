"""Who holds a claim, and handing back the claims of holders that have gone.

A "worker" here is a pool whose sessions carry a worker's id, as the worker's own pool does; its heartbeat is
written with the moment it should have (the clock moved, never slept).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from notifier.db import create_pool
from notifier.delivery import outbox
from notifier.leases import Heartbeat
from notifier.matching.matcher import SubscriptionIndex, match_events
from notifier.settings import Settings
from tests.delivery.test_kill import wait_for
from tests.factories import Factory

HOLDER = "notifier-worker 0123456789abcdef"
STALE = timedelta(seconds=15)
QUIET = timedelta(seconds=10)
LEASE = timedelta(minutes=10)  # far longer than any test: only the holder's going can release a claim


@pytest.fixture
async def holder_pool(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Pool]:
    worker_pool = await create_pool(settings.database_url, min_size=1, max_size=2, application_name=HOLDER)
    yield worker_pool
    await worker_pool.close()


async def claimed(pool: asyncpg.Pool, holder_pool: asyncpg.Pool, factory: Factory, settings: Settings) -> list[int]:
    council = await factory.council()
    for n in range(3):
        await factory.subscription(await factory.subscriber(f"r{n}@example.org"), councils=[council])
    await factory.event(title="Cabinet")
    await match_events(pool, SubscriptionIndex(), settings)
    batches = await outbox.claim_email_batches(holder_pool, now=datetime.now(UTC), lease=LEASE)
    return sorted(i for b in batches for i in b.delivery_ids)


async def beat(pool: asyncpg.Pool, ago: timedelta) -> None:
    await pool.execute(
        """
        insert into worker_heartbeats (worker_id, beat_at) values ($1, now() - $2::interval)
        on conflict (worker_id) do update set beat_at = excluded.beat_at
        """,
        HOLDER,
        ago,
    )


async def _sessions_gone(pool: asyncpg.Pool) -> bool:
    n = await pool.fetchval("select count(*) from pg_stat_activity where application_name = $1", HOLDER)
    return bool(n == 0)


async def release(pool: asyncpg.Pool) -> int:
    return await outbox.release_orphaned_leases(pool, now=datetime.now(UTC), stale_after=STALE, quiet_after=QUIET)


async def test_a_claim_names_its_holder(
    pool: asyncpg.Pool, holder_pool: asyncpg.Pool, factory: Factory, settings: Settings
) -> None:
    ids = await claimed(pool, holder_pool, factory, settings)
    assert len(ids) == 3
    rows = await pool.fetch("select status, lease_holder from deliveries order by id")
    assert {(r["status"], r["lease_holder"]) for r in rows} == {("sending", HOLDER)}


async def test_claims_of_a_live_holder_stay(
    pool: asyncpg.Pool, holder_pool: asyncpg.Pool, factory: Factory, settings: Settings
) -> None:
    await claimed(pool, holder_pool, factory, settings)
    await beat(pool, timedelta(seconds=1))
    assert await release(pool) == 0
    # quiet for a while but still connected: a slow beat is not a death
    await beat(pool, timedelta(seconds=12))
    assert await release(pool) == 0
    assert await outbox.release_expired_leases(pool, now=datetime.now(UTC)) == 0


async def test_claims_of_a_holder_whose_heartbeat_stopped_come_back(
    pool: asyncpg.Pool, holder_pool: asyncpg.Pool, factory: Factory, settings: Settings
) -> None:
    ids = await claimed(pool, holder_pool, factory, settings)
    await beat(pool, timedelta(seconds=16))  # still connected, but silent for three beats
    assert await release(pool) == 3
    rows = await pool.fetch("select id, status, lease_holder, lease_until, last_error from deliveries order by id")
    assert [(r["id"], r["status"], r["lease_holder"], r["lease_until"]) for r in rows] == [
        (i, "pending", None, None) for i in ids
    ]
    assert {r["last_error"] for r in rows} == {f"released: the sender {HOLDER} has gone"}


async def test_claims_of_a_holder_gone_from_the_database_come_back_after_one_quiet_beat(
    pool: asyncpg.Pool, holder_pool: asyncpg.Pool, factory: Factory, settings: Settings
) -> None:
    await claimed(pool, holder_pool, factory, settings)
    await holder_pool.close()  # killed: its sessions end with it
    await wait_for("the holder's sessions to end", lambda: _sessions_gone(pool))
    await beat(pool, timedelta(seconds=2))
    assert await release(pool) == 0  # it beat a moment ago: maybe between connections
    await beat(pool, timedelta(seconds=11))
    assert await release(pool) == 3


async def test_only_the_holder_renews_its_claims(
    pool: asyncpg.Pool, holder_pool: asyncpg.Pool, factory: Factory, settings: Settings
) -> None:
    ids = await claimed(pool, holder_pool, factory, settings)
    assert await outbox.renew_leases(pool, ids, LEASE) == 0
    assert await outbox.renew_leases(holder_pool, ids, LEASE) == 3


async def test_claims_without_a_holder_wait_for_their_lease(
    pool: asyncpg.Pool, factory: Factory, settings: Settings
) -> None:
    council = await factory.council()
    await factory.subscription(await factory.subscriber(), councils=[council])
    await factory.event(title="Cabinet")
    await match_events(pool, SubscriptionIndex(), settings)
    now = datetime.now(UTC)
    await outbox.claim_email_batches(pool, now=now, lease=timedelta(seconds=30))
    assert await pool.fetchval("select lease_holder from deliveries") is None
    assert await release(pool) == 0
    assert await outbox.release_expired_leases(pool, now=now + timedelta(seconds=29)) == 0
    assert await outbox.release_expired_leases(pool, now=now + timedelta(seconds=31)) == 1


async def test_heartbeat_registers_and_leaves(pool: asyncpg.Pool, holder_pool: asyncpg.Pool) -> None:
    heartbeat = Heartbeat(holder_pool, HOLDER, every=5.0)
    assert heartbeat.stale_after == timedelta(seconds=15)
    await heartbeat.start()
    row = await pool.fetchrow("select worker_id, pid from worker_heartbeats")
    assert row is not None and row["worker_id"] == HOLDER and row["pid"] > 0
    await heartbeat.stop()
    assert await pool.fetchval("select count(*) from worker_heartbeats") == 0


async def test_gone_workers_are_forgotten_once_they_hold_nothing(
    pool: asyncpg.Pool, holder_pool: asyncpg.Pool, factory: Factory, settings: Settings
) -> None:
    await claimed(pool, holder_pool, factory, settings)
    await beat(pool, timedelta(days=2))
    assert await outbox.forget_gone_workers(pool, older_than=timedelta(days=1)) == 0  # it still holds claims
    assert await release(pool) == 3
    assert await outbox.forget_gone_workers(pool, older_than=timedelta(days=1)) == 1
