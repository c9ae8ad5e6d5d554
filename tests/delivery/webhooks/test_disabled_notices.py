"""An endpoint that has failed everything for five days is disabled and its partner emailed once: through the
worker's own jobs, when the queued notice is lost, when the worker dies while sending it, and never for a 410."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient
from arq.connections import ArqRedis

from notifier.delivery.email.mailer import Mailer
from notifier.delivery.webhooks.sender import WebhookSender
from notifier.settings import Settings
from notifier.worker import WorkerContext, deliver_webhooks, notice_job_id, notify_endpoint_disabled
from tests.delivery.webhooks.helpers import Send, endpoint, match, move_clock
from tests.factories import Factory
from tests.servers import SmtpServer, WebhookReceiver


async def fail_for_days(
    client: TestClient[Any, Any], key: str, receiver: WebhookReceiver, factory: Factory, pool: asyncpg.Pool,
    settings: Settings, send: Send,
) -> dict[str, Any]:
    """An endpoint whose every delivery has failed, the first five days ago; its next failure disables it."""
    await factory.council()
    made = await endpoint(client, key, receiver)
    await factory.event(title="Cabinet")
    await match(pool, settings)
    receiver.plans["a"] = [500, 500]
    assert (await send()).disabled == []
    assert await pool.fetchval("select failure_streak from webhook_endpoints") == 1
    await pool.execute("update webhook_endpoints set failing_since = now() - interval '5 days 1 minute'")
    await move_clock(pool)
    return made


def assert_told(smtp_server: SmtpServer, receiver: WebhookReceiver) -> None:
    [notice] = smtp_server.messages
    assert notice.rcpt_tos == ["tech@dementia.example"]
    text = notice.raw.decode()
    assert "Your webhook endpoint was disabled" in text and receiver.endpoint("a") in text
    assert "every delivery failed for 5 days" in text and "List-Unsubscribe" not in text


async def test_webhook_endpoint_failing_for_days_is_disabled_and_its_partner_told_once(
    client: TestClient[Any, Any], key: str, receiver: WebhookReceiver, factory: Factory, pool: asyncpg.Pool,
    settings: Settings, send: Send, redis: ArqRedis, run_jobs: Any, smtp_server: SmtpServer,
) -> None:
    await fail_for_days(client, key, receiver, factory, pool, settings, send)
    # the worker's sending pass disables the endpoint and queues the notice, which the worker then sends
    await redis.enqueue_job("deliver_webhooks", _job_id="webhooks:test")
    await run_jobs()
    row = await pool.fetchrow("select status, disabled_by, disabled_reason, failure_streak from webhook_endpoints")
    assert tuple(row) == ("disabled", "failures", "every delivery failed for 5 days", 2)
    assert_told(smtp_server, receiver)
    # told once, however often the sweeper looks afterwards
    for n in range(2):
        await redis.enqueue_job("sweep", _job_id=f"sweep:{n}")
        await run_jobs()
    assert len(smtp_server.messages) == 1


async def test_webhook_disabled_notice_lost_from_the_queue_is_sent_by_the_sweeper(
    client: TestClient[Any, Any], key: str, receiver: WebhookReceiver, factory: Factory, pool: asyncpg.Pool,
    settings: Settings, send: Send, redis: ArqRedis, run_jobs: Any, smtp_server: SmtpServer,
) -> None:
    made = await fail_for_days(client, key, receiver, factory, pool, settings, send)
    sender = WebhookSender.create(settings, pool)
    try:  # the worker's job, run by itself: the notice it queues is left in the queue
        ctx = WorkerContext(pool=pool, redis=redis, webhooks=sender)
        assert (await deliver_webhooks(ctx))["disabled"] == 1
    finally:
        await sender.close()
    disabled_at = await pool.fetchval("select disabled_at from webhook_endpoints")
    queued = [job.job_id for job in await redis.queued_jobs()]
    assert queued == [notice_job_id(made["id"], disabled_at)]
    await redis.flushdb()  # Redis loses it (or the worker died before it was queued)
    assert smtp_server.messages == []

    for n in range(3):
        await redis.enqueue_job("sweep", _job_id=f"sweep:{n}")
        await run_jobs()
    assert_told(smtp_server, receiver)
    assert await pool.fetchval("select disabled_notice_sent_at is not null from webhook_endpoints")


async def test_webhook_endpoint_gone_is_owed_no_notice(
    client: TestClient[Any, Any], key: str, receiver: WebhookReceiver, factory: Factory, pool: asyncpg.Pool,
    settings: Settings, redis: ArqRedis, run_jobs: Any, smtp_server: SmtpServer,
) -> None:
    await factory.council()
    await endpoint(client, key, receiver)
    await factory.event(title="Cabinet")
    await match(pool, settings)
    receiver.plans["a"] = [410]
    await redis.enqueue_job("deliver_webhooks", _job_id="webhooks:test")
    await run_jobs()
    await redis.enqueue_job("sweep", _job_id="sweep:0")
    await run_jobs()
    row = await pool.fetchrow("select status, disabled_by, disabled_notice_sent_at from webhook_endpoints")
    assert tuple(row) == ("disabled", "gone", None)
    assert smtp_server.messages == []  # the receiver said 410 itself: nobody is emailed


# Whether another session holds a row of webhook_endpoints for update (a lock probed without taking one: a probe
# that locked the row itself, however briefly, could make the job skip it).
HOLDING = """
    select exists (select from pg_locks l join pg_class c on c.oid = l.relation
                   where c.relname = 'webhook_endpoints' and l.mode = 'RowShareLock' and l.pid <> pg_backend_pid())
"""


async def test_webhook_disabled_notice_of_a_worker_dying_while_sending_is_owed_still(
    client: TestClient[Any, Any], key: str, receiver: WebhookReceiver, factory: Factory, pool: asyncpg.Pool,
    settings: Settings, send: Send, redis: ArqRedis, run_jobs: Any, smtp_server: SmtpServer,
) -> None:
    await fail_for_days(client, key, receiver, factory, pool, settings, send)
    assert (await send()).disabled
    endpoint_id = await pool.fetchval("select id from webhook_endpoints")
    smtp_server.fault, smtp_server.slow_seconds = "slow", 30.0  # the mail server takes its time over DATA
    mailer = Mailer.create(settings, pool)
    try:
        ctx = WorkerContext(pool=pool, redis=redis, mailer=mailer)
        sending = asyncio.ensure_future(notify_endpoint_disabled(ctx, endpoint_id))
        while not await pool.fetchval(HOLDING):  # until the job holds the notice
            assert not sending.done()
            await asyncio.sleep(0.01)
        # meanwhile a second worker given the same notice leaves it to the first: nobody is told twice
        assert await notify_endpoint_disabled(ctx, endpoint_id) == "nothing owed"
        assert await pool.fetchval("select disabled_notice_sent_at from webhook_endpoints") is None
        sending.cancel()  # the worker dies mid-send: its transaction ends with it, and nothing is marked
        await asyncio.gather(sending, return_exceptions=True)
    finally:
        await mailer.close()
    assert smtp_server.messages == []
    assert await pool.fetchval("select disabled_notice_sent_at from webhook_endpoints") is None

    smtp_server.fault = None
    await redis.enqueue_job("sweep", _job_id="sweep:after-death")
    await run_jobs()
    assert_told(smtp_server, receiver)
    assert await pool.fetchval("select disabled_notice_sent_at is not null from webhook_endpoints")
