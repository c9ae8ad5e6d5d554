"""A worker process killed (SIGKILL) in the middle of a few hundred webhook deliveries loses none, and repeats only
what was in flight, under the same webhook-id, which is what receivers deduplicate by.

The worker is the real one (`python -m notifier.cli worker`) sending to a receiver in this process that takes a
while over each request. It is killed once some but not all deliveries have arrived; then either it is started again
at once, or a second worker has been running beside it. Once the dead worker's heartbeat stops, the live worker hands
its claims back and sends them; the time from the kill until then (the time to recover) is printed.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from arq.connections import ArqRedis

from notifier.delivery.webhooks.endpoints import create as create_endpoint
from notifier.matching.matcher import SubscriptionIndex, match_events
from notifier.models import FilterModel
from notifier.partners import create_partner
from notifier.settings import Settings
from tests.delivery.test_kill import Worker, busiest_holder, counts, holder_of, time_to_recover, wait_for
from tests.factories import Factory
from tests.servers import WebhookReceiver

ENDPOINTS = 3
EVENTS = 100  # each endpoint hears of every event: 300 deliveries
KILL_AFTER = 100
# A lease far longer than the test: the dead worker's claims can only come back because its heartbeat stopped.
LEASE_SECONDS = 600


class SlowReceiver(WebhookReceiver):
    """Takes 20 ms over each request, and counts the requests it is still working on."""

    def __init__(self) -> None:
        super().__init__()
        self.open = 0

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.open += 1
        try:
            await asyncio.sleep(0.02)
            return await super()._handle(request)
        finally:
            self.open -= 1


@pytest.fixture
async def receiver() -> AsyncIterator[SlowReceiver]:
    r = SlowReceiver()
    await r.start()
    yield r
    await r.stop()



@pytest.mark.parametrize("beside", [False, True], ids=["restarted-alone", "beside-a-second-worker"])
async def test_worker_killed_mid_batch_delivers_every_webhook_repeating_only_in_flight_ones(
    pool: asyncpg.Pool, factory: Factory, settings: Settings, receiver: SlowReceiver,
    queue: tuple[str, ArqRedis], tmp_path: Path, beside: bool,
) -> None:
    redis_url, redis = queue
    council = await factory.council()
    partner_id, _ = await create_partner(pool, "Newsroom")
    for n in range(ENDPOINTS):
        _, secret = await create_endpoint(pool, partner_id, receiver.endpoint(f"e{n}"),
                                          FilterModel(councils=[council]), None)
        receiver.secrets[f"e{n}"] = [secret]
    for n in range(EVENTS):
        await factory.event(title=f"Meeting {n}")
    assert (await match_events(pool, SubscriptionIndex(), settings)).deliveries == ENDPOINTS * EVENTS

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")},
        "NOTIFIER_DATABASE_URL": settings.database_url,
        "NOTIFIER_REDIS_URL": redis_url,
        "NOTIFIER_SMTP_URL": "smtp://127.0.0.1:1",
        "NOTIFIER_DATA_DIR": str(tmp_path),
        "NOTIFIER_SECRET_KEY": settings.secret_key,
        "NOTIFIER_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "NOTIFIER_WEBHOOK_LEASE_SECONDS": str(LEASE_SECONDS),
        "NOTIFIER_WEBHOOK_ENDPOINT_CONCURRENCY": "4",
    }
    first = Worker(env, tmp_path, "first")
    second: Worker | None = Worker(env, tmp_path, "second") if beside else None
    try:
        holders = {await holder_of(pool, w): w for w in (first, second) if w is not None}
        await redis.enqueue_job("deliver_webhooks", _job_id="webhooks:before-the-kill")

        async def under_way() -> bool:
            return len(receiver.ok()) >= KILL_AFTER and receiver.open > 0

        await wait_for(f"{KILL_AFTER} deliveries and more under way", under_way)
        holder = await busiest_holder(pool, holders)
        first, second = holders[holder], next((w for h, w in holders.items() if h != holder), None)
        first.kill()
        killed_at = time.monotonic()
        answered_at_kill = {r.webhook_id for r in receiver.ok()}
        open_at_kill = receiver.open
        marked = {f"msg_{r['id']}" for r in await pool.fetch("select id from deliveries where status = 'sent'")}
        answered_unmarked = len(answered_at_kill - marked)
        held_at_kill = await pool.fetchval(
            "select count(*) from deliveries where status = 'sending' and lease_holder = $1", holder)
        assert KILL_AFTER <= len(answered_at_kill) < ENDPOINTS * EVENTS, first.output()
        assert held_at_kill > 0  # claims the dead worker left behind

        if not beside:
            second = Worker(env, tmp_path, "second")  # started at once, in the dead one's place
        recovered = await time_to_recover(pool, holder, killed_at)

        async def all_sent() -> bool:
            return (await counts(pool)).get("sent", 0) == ENDPOINTS * EVENTS

        await wait_for("every delivery to be sent", all_sent, timeout=180)
        all_sent_after = time.monotonic() - killed_at
        assert second is not None and second.stop() == 0, second.output() if second else ""
    finally:
        for worker in (first, second):
            if worker is not None and worker.proc.poll() is None:
                worker.kill()

    ok = receiver.ok()
    copies = Counter(r.webhook_id for r in ok)
    duplicates = sum(n - 1 for n in copies.values())
    print(f"\n{'beside a second worker' if beside else 'restarted alone'}: killed after {len(answered_at_kill)} of "
          f"{ENDPOINTS * EVENTS} deliveries holding {held_at_kill} claims; time to recover {recovered:.1f} s (every "
          f"delivery sent {all_sent_after:.1f} s after the kill); in flight at the kill: {answered_unmarked} answered "
          f"but not marked, {open_at_kill} open; duplicates: {duplicates}")
    assert len(copies) == ENDPOINTS * EVENTS  # every delivery arrived
    # a repeat is the same delivery: same webhook-id, same endpoint, same event
    same = {(r.webhook_id, r.name, r.json()["data"]["event"]["id"]) for r in ok}
    assert len(same) == len(copies)
    assert all(r.verified_by for r in ok)
    assert duplicates <= answered_unmarked + open_at_kill
    assert await counts(pool) == {"sent": ENDPOINTS * EVENTS}


async def test_a_slow_endpoint_does_not_hold_up_the_others(
    pool: asyncpg.Pool, factory: Factory, settings: Settings,
) -> None:
    from notifier.delivery.webhooks.sender import WebhookSender

    slow, fast = WebhookReceiver(), WebhookReceiver()
    await slow.start()
    await fast.start()
    council = await factory.council()
    partner_id, _ = await create_partner(pool, "Newsroom")
    for name, r in (("slow", slow), ("fast", fast)):
        _, secret = await create_endpoint(pool, partner_id, r.endpoint(name), FilterModel(councils=[council]), None)
        r.secrets[name] = [secret]
    slow.plans["slow"] = [("sleep", 0.3)] * 12
    for n in range(12):
        await factory.event(title=f"Meeting {n}")
    await match_events(pool, SubscriptionIndex(), settings)
    per_endpoint = 2
    sender = WebhookSender.create(settings.model_copy(update={"webhook_endpoint_concurrency": per_endpoint}), pool)
    finished: dict[str, float] = {}

    async def watch(name: str, r: WebhookReceiver) -> None:
        while len(r.ok(name)) < 12:
            await asyncio.sleep(0.01)
        finished[name] = time.monotonic()

    try:
        watchers = [asyncio.create_task(watch("slow", slow)), asyncio.create_task(watch("fast", fast))]
        result = await sender.send_due()
        await asyncio.gather(*watchers)
    finally:
        await sender.close()
        await slow.stop()
        await fast.stop()
    assert result.sent == 24
    # the fast partner had all twelve while the slow one, two at a time, was still working through its own
    assert finished["fast"] < finished["slow"]
    assert 1 <= slow.peak_in_flight["slow"] <= per_endpoint  # never more requests open at the slow one than allowed
