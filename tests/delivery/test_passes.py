"""One sending pass of a channel at a time in a worker process: wake-ups while a pass runs make it look again
rather than start a second pass beside it (each pass keeps a database connection for its marks, and passes started
by every wake-up of a long backlog would otherwise hold the whole pool between them)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg
from arq.connections import ArqRedis
from arq.jobs import Job

from notifier.matching.matcher import SubscriptionIndex, match_events
from notifier.settings import Settings
from notifier.worker import OnePass
from tests.factories import Factory
from tests.servers import SmtpServer


async def test_a_pass_asked_for_while_one_runs_makes_that_one_look_again() -> None:
    passes = OnePass()
    running = asyncio.Event()
    go_on = asyncio.Event()
    runs: list[int] = []

    async def one_pass() -> int:
        runs.append(len(runs) + 1)
        if len(runs) == 1:
            running.set()
            await go_on.wait()
        return 10

    first = asyncio.create_task(passes.run(one_pass))
    await running.wait()
    # two more wake-ups while the first pass runs: neither starts a pass of its own, and one more pass follows
    assert await passes.run(one_pass) == 0
    assert await passes.run(one_pass) == 0
    go_on.set()
    assert await first == 20
    assert runs == [1, 2]
    assert await passes.run(one_pass) == 10  # nothing running: a pass of its own


async def test_a_pass_that_fails_leaves_the_next_free_to_run() -> None:
    passes = OnePass()

    async def broken() -> int:
        raise ConnectionError("the database went away")

    async def fine() -> int:
        return 3

    with contextlib.suppress(ConnectionError):
        await passes.run(broken)
    assert await passes.run(fine) == 3


async def test_wake_ups_at_once_in_one_worker_send_each_alert_once_on_a_small_pool(
    pool: asyncpg.Pool, factory: Factory, redis: ArqRedis, smtp_server: SmtpServer, run_jobs: Any, settings: Settings
) -> None:
    await factory.council()
    for n in range(40):
        await factory.subscription(await factory.subscriber(f"resident{n}@example.org"))
    await factory.event(title="Cabinet")
    await redis.enqueue_job("match_events", _job_id="match:one")
    await run_jobs(alert_batch_seconds=0)  # matched, and sent by the send job the matcher enqueued
    await factory.event(title="Scrutiny Commission")
    # matched here, so all 40 alerts are due before any wake-up comes
    await match_events(pool, SubscriptionIndex(), settings.model_copy(update={"alert_batch_seconds": 0}))
    # nine wake-ups at once, in a worker with a pool of two connections; a short lease and a low rate make each
    # claim 3 alerts (8/s x 3 s x 0.5 / 4), so a pass goes on claiming while it sends. Without `OnePass` the nine
    # passes run side by side and split the alerts, each keeping a connection for its marks while it runs.
    for n in range(9):
        await redis.enqueue_job("send_emails", _job_id=f"send:at-once:{n}")
    await asyncio.wait_for(run_jobs(alert_batch_seconds=0, db_pool_max=2, worker_max_jobs=12,
                                    smtp_rate_per_second=8, delivery_lease_seconds=3), timeout=120)
    recipients = sorted(r for m in smtp_server.messages for r in m.rcpt_tos)
    assert recipients == sorted([f"resident{n}@example.org" for n in range(40)] * 2)
    assert await pool.fetchval("select count(*) from deliveries where status <> 'sent'") == 0
    sent_by_job = [await Job(f"send:at-once:{n}", redis).result() for n in range(9)]
    assert sorted(sent_by_job) == [0] * 8 + [40]  # one pass sent them all; the other wake-ups made it look again
