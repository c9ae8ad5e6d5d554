"""The arq worker: its context, its jobs and its cron schedule.

Job functions are thin wrappers over the modules that do the work. Redis only carries triggers: every job re-reads
its state from PostgreSQL, and arq may run a job more than once, so every job is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict, cast

import aiohttp
import asyncpg
from aiohttp.abc import AbstractResolver
from arq import Retry, cron
from arq.connections import ArqRedis, RedisSettings
from arq.typing import WorkerCoroutine
from arq.worker import Function, Worker, func

from notifier.db import create_pool
from notifier.delivery import outbox, websub
from notifier.delivery.email.mailer import Mailer, TemporaryFailure
from notifier.delivery.email.render import render_endpoint_disabled
from notifier.delivery.webhooks import endpoints
from notifier.delivery.webhooks.sender import WebhookSender, next_due
from notifier.ingest import briefs, documents, fetch, poll
from notifier.leases import Heartbeat, worker_id
from notifier.logs import context_id
from notifier.matching.documents import next_release
from notifier.matching.matcher import CURSOR_NAME, SubscriptionIndex
from notifier.matching.matcher import match_events as run_matcher
from notifier.metrics import Metrics
from notifier.settings import Settings

log = logging.getLogger(__name__)


class WorkerContext(TypedDict, total=False):
    """What every job receives. arq adds `redis`, `job_id`, `job_try`, `enqueue_time`, `score`."""

    settings: Settings
    metrics: Metrics
    pool: asyncpg.Pool
    http: aiohttp.ClientSession
    fetcher: fetch.Fetcher
    index: SubscriptionIndex
    mailer: Mailer
    email_pass: OnePass
    webhooks: WebhookSender
    heartbeat: Heartbeat
    redis: ArqRedis
    job_id: str
    job_try: int


JobFn = Callable[..., Awaitable[Any]]


def _observed(name: str, fn: JobFn) -> WorkerCoroutine:
    """Wrap a job so it is counted, timed and logged with its job id."""

    async def run(ctx: WorkerContext, *args: Any, **kwargs: Any) -> Any:
        token = context_id.set(f"job:{ctx.get('job_id', '?')}")
        start = time.perf_counter()
        outcome = "error"
        try:
            result = await fn(ctx, *args, **kwargs)
            outcome = "ok"
            return result
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            metrics = ctx["metrics"]
            metrics.jobs.labels(name, outcome).inc()
            metrics.job_latency.labels(name).observe(time.perf_counter() - start)
            context_id.reset(token)

    run.__name__ = name
    run.__qualname__ = name
    return cast(WorkerCoroutine, run)


# ---- jobs ----


async def schedule_polls(ctx: WorkerContext) -> int:
    """Enqueue a poll for every due source; the job id names source and minute, so overlapping schedulers agree."""
    return await poll.enqueue_due_polls(ctx["pool"], ctx["redis"], now=datetime.now(UTC))


async def poll_source(ctx: WorkerContext, source_id: int) -> dict[str, Any]:
    settings = ctx["settings"]
    result = await poll.poll_source(
        ctx["pool"], ctx["fetcher"], source_id, metrics=ctx["metrics"],
        max_backoff=timedelta(minutes=settings.poll_max_backoff_minutes),
    )
    if result.event_ids:
        await enqueue_matcher(ctx["redis"], result.event_ids[-1])
    return result.as_dict()


async def enqueue_matcher(redis: ArqRedis, up_to_event: int) -> None:
    """Wake the matcher. The job id names the newest event, so repeated wake-ups for the same events collapse."""
    await redis.enqueue_job("match_events", _job_id=f"match:{up_to_event}")


async def match_events(ctx: WorkerContext) -> dict[str, Any]:
    result = await run_matcher(ctx["pool"], ctx["index"], ctx["settings"])
    job_id = ctx.get("job_id", "")
    if result.skipped and not job_id.startswith("match-again:"):
        # Another matcher holds the lock and may have looked for events just before ours were committed: look again
        # shortly (once), rather than leave them to the sweeper's next round.
        await ctx["redis"].enqueue_job("match_events", _job_id=f"match-again:{job_id}", _defer_by=2)
    if result.deliveries:
        stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%S}"
        await ctx["redis"].enqueue_job("send_emails", _job_id=f"send:{stamp}")
        await ctx["redis"].enqueue_job("deliver_webhooks", _job_id=f"webhooks:{stamp}")
    return {"events": result.events, "deliveries": result.deliveries, "held": result.held, "skipped": result.skipped}


class OnePass:
    """At most one sending pass of a channel at a time in a worker process; a pass asked for while one runs makes
    that one look again when it is done, instead of starting beside it.

    A pass sends until nothing is due, so a second one beside it only splits the same work, and each pass keeps a
    database connection for its marks while it runs: under a long backlog, passes started by every wake-up would
    hold the whole pool between them and each wait for a connection none of them gives back.
    """

    def __init__(self) -> None:
        self._running = False
        self._again = False

    async def run(self, one_pass: Callable[[], Awaitable[int]]) -> int:
        """Run `one_pass` (again while asked for meanwhile) and return what it sent; 0 when one is running."""
        if self._running:
            self._again = True
            return 0
        self._running = True
        total = 0
        try:
            while True:
                self._again = False
                total += await one_pass()
                if not self._again:
                    return total
        finally:
            self._running = False


async def send_emails(ctx: WorkerContext) -> int:
    """Send every email delivery that is due (cron every minute too: digests fall due with no other trigger)."""
    return await ctx["email_pass"].run(ctx["mailer"].send_due)


async def send_confirmation(ctx: WorkerContext, subscription_id: int) -> str:
    try:
        return await ctx["mailer"].send_confirmation(subscription_id)
    except TemporaryFailure as e:
        raise Retry(defer=CONFIRM_RETRY_DELAYS[min(ctx.get("job_try", 1), len(CONFIRM_RETRY_DELAYS)) - 1]) from e


CONFIRM_RETRY_DELAYS = [10, 60, 300, 1800]


async def notify_endpoint_disabled(ctx: WorkerContext, endpoint_id: int) -> str:
    """Tell a partner, once, that one of its webhook endpoints was disabled."""
    async with ctx["pool"].acquire() as conn, conn.transaction():
        notice = await endpoints.disabled_notice_due(conn, endpoint_id)
        if notice is None:
            return "nothing owed"
        mailer = ctx["mailer"]
        rendered = render_endpoint_disabled(
            partner_name=notice["partner_name"], url=notice["url"], reason=notice["disabled_reason"] or "disabled",
            disabled_at=notice["disabled_at"], endpoint_id=notice["id"], env=mailer.env,
        )
        result = await mailer.send_notice(rendered, notice["contact_email"])
        if result.ok or result.permanent:  # a permanent refusal is marked too: tried again, it would be refused again
            await endpoints.notice_sent(conn, endpoint_id)
            return "sent" if result.ok else f"failed: {result.message}"
    # Not marked: the notice is owed still, and the retry locks it again.
    raise Retry(defer=CONFIRM_RETRY_DELAYS[min(ctx.get("job_try", 1), len(CONFIRM_RETRY_DELAYS)) - 1])


def notice_job_id(endpoint_id: int, disabled_at: datetime) -> str:
    """The one job telling a partner of one disablement: the pass that disabled the endpoint and every sweep after
    it name the same job, so arq queues it once."""
    return f"disabled:{endpoint_id}:{disabled_at.astimezone(UTC):%Y%m%dT%H%M%S.%f}"


async def queue_disabled_notices(pool: asyncpg.Pool, redis: ArqRedis) -> int:
    """Queue a notice for every endpoint owed one (disabled for failing, its partner not yet told); returns how many
    are owed. The sending pass calls this once its outcomes are committed, and the sweeper again in case that
    worker died first or Redis lost the job."""
    owed = await endpoints.notices_owed(pool)
    for endpoint_id, disabled_at in owed:
        await redis.enqueue_job(
            "notify_endpoint_disabled", endpoint_id, _job_id=notice_job_id(endpoint_id, disabled_at)
        )
    return len(owed)


async def deliver_webhooks(ctx: WorkerContext) -> dict[str, int]:
    """Send every webhook delivery that is due, then schedule a pass for when the next retry falls due (the cron
    pass every minute is the safety net)."""
    result = await ctx["webhooks"].send_due()
    redis = ctx["redis"]
    if result.disabled:
        await queue_disabled_notices(ctx["pool"], redis)
    due = await next_due(ctx["pool"])
    if due is not None and due - datetime.now(UTC) < timedelta(minutes=1):
        await redis.enqueue_job("deliver_webhooks", _job_id=f"webhooks:{due:%Y%m%dT%H%M%S}", _defer_until=due)
    return {"sent": result.sent, "retried": result.retried, "failed": result.failed,
            "disabled": len(result.disabled)}


async def verify_websub(ctx: WorkerContext, request_id: int) -> str:
    """Verify a WebSub subscriber's intent (the GET challenge) and apply its request, through the webhook sender's
    HTTP client, whose connections go only where the target checks allow."""
    settings = ctx["settings"]
    verified = await websub.verify(
        ctx["pool"], ctx["webhooks"].http, request_id, allow_private=settings.webhook_allow_private_targets,
        timeout=settings.webhook_timeout,
    )
    return verified.outcome


async def expire_websub(ctx: WorkerContext) -> int:
    """Drop WebSub subscriptions whose lease ended, or whose callback has failed every push for days; keep those to
    private feeds in step with the subscription behind the feed."""
    await websub.follow_private_feeds(ctx["pool"])
    return await websub.expire(ctx["pool"], now=datetime.now(UTC))


async def fetch_documents(ctx: WorkerContext) -> dict[str, int]:
    """Download and extract the documents due; wake the matcher for the events that waited for their text."""
    pool, redis = ctx["pool"], ctx["redis"]
    result = await documents.fetch_due_documents(pool, ctx["fetcher"], ctx["settings"])
    if result.item_ids and await next_release(pool) is not None:
        await redis.enqueue_job("match_events", _job_id=f"match:documents:{datetime.now(UTC):%Y%m%dT%H%M%S.%f}")
    if result.item_ids:
        await redis.enqueue_job("build_briefs", _job_id=f"briefs:{datetime.now(UTC):%Y%m%dT%H%M%S.%f}")
    return result.as_dict()


async def build_briefs(ctx: WorkerContext) -> int:
    """Build the briefs of documents whose text arrived or changed (cron every minute too, as a safety net)."""
    return len(await briefs.build_due_briefs(ctx["pool"]))


async def sweep_documents(ctx: WorkerContext) -> dict[str, int]:
    """Release the document claims of dead workers, start the downloads that fell due (new documents wait at most
    this minute), and wake the matcher when a held event's wait has run out."""
    pool, redis = ctx["pool"], ctx["redis"]
    now = datetime.now(UTC)
    released = await documents.release_expired_documents(pool, now=now)
    due = await documents.next_document_due(pool)
    if due is not None and due <= now:
        await redis.enqueue_job("fetch_documents", _job_id=f"documents:{now:%Y%m%dT%H%M}")
    until = await next_release(pool)
    if until is not None and until <= now:
        await redis.enqueue_job("match_events", _job_id=f"match:held:{now:%Y%m%dT%H%M}")
    return {"released": released, "documents_due": int(due is not None and due <= now)}


async def release_claims(ctx: WorkerContext) -> int:
    """Hand back the claims of senders that have gone (their heartbeat stopped) or whose leases ran out, and start
    a sending pass at once for what came back, rather than leave it for the next scheduled pass."""
    pool, beat = ctx["pool"], ctx["heartbeat"]
    now = datetime.now(UTC)
    released = await outbox.release_orphaned_leases(
        pool, now=now, stale_after=beat.stale_after, quiet_after=timedelta(seconds=beat.every * 2)
    )
    released += await outbox.release_expired_leases(pool, now=now)
    if released:
        stamp = f"{now:%Y%m%dT%H%M%S}"
        await ctx["redis"].enqueue_job("send_emails", _job_id=f"send:released:{stamp}")
        await ctx["redis"].enqueue_job("deliver_webhooks", _job_id=f"webhooks:released:{stamp}")
    return released


async def sweep(ctx: WorkerContext) -> dict[str, int]:
    """Recover from lost jobs and dead workers: claims of gone senders and expired leases, events the matcher has
    not reached, notices owed to partners whose endpoints were disabled."""
    pool = ctx["pool"]
    released = await release_claims(ctx)
    notices = await queue_disabled_notices(pool, ctx["redis"])
    behind = await pool.fetchval(
        """
        select max(e.id) from events e
        where e.id > coalesce((select position from cursors where name = $1), 0)
        """,
        CURSOR_NAME,
    )
    if behind is not None:
        await enqueue_matcher(ctx["redis"], behind)
    # the percolators have long caught up with changes older than a day
    await pool.execute(
        """
        delete from subscription_changes
        where at < now() - interval '1 day' and seq < (select max(seq) from subscription_changes)
        """
    )
    await outbox.forget_gone_workers(pool, older_than=timedelta(days=1))
    return {"released": released, "matcher_behind": int(behind is not None), "notices_owed": notices}


# ---- wiring ----


# Job timeouts, seconds. A poll is a few dozen requests of at most `poll_total_timeout` each, a few at a time; a
# sending pass runs until nothing is due, its claims renewed as it goes, and one cut short leaves them to the sweeper
# within a lease; the sweeper runs every 15 seconds and must be done well before the next.
POLL_TIMEOUT = 900
MATCH_TIMEOUT = 300
SEND_TIMEOUT = 1800
SWEEP_TIMEOUT = 60
# a documents pass ends before the next minute's starts (ingest.documents.PASS_SECONDS), its downloads in time
DOCUMENTS_TIMEOUT = 300
SCHEDULE_TIMEOUT = 60
# When each minute's scheduled jobs fire: the sweeper several times a minute, so nothing a dead worker held waits
# for it for long.
SWEEP_SECONDS = {5, 20, 35, 50}


def worker_functions() -> list[Function]:
    return [
        func(_observed("poll_source", poll_source), name="poll_source", max_tries=3, timeout=POLL_TIMEOUT),
        func(_observed("match_events", match_events), name="match_events", max_tries=5, timeout=MATCH_TIMEOUT),
        func(_observed("send_emails", send_emails), name="send_emails", max_tries=3, timeout=SEND_TIMEOUT),
        func(_observed("fetch_documents", fetch_documents), name="fetch_documents", max_tries=3,
             timeout=DOCUMENTS_TIMEOUT),
        func(_observed("deliver_webhooks", deliver_webhooks), name="deliver_webhooks", max_tries=3,
             timeout=SEND_TIMEOUT),
        func(_observed("build_briefs", build_briefs), name="build_briefs", max_tries=3, timeout=SWEEP_TIMEOUT),
        func(
            _observed("notify_endpoint_disabled", notify_endpoint_disabled), name="notify_endpoint_disabled",
            max_tries=len(CONFIRM_RETRY_DELAYS) + 1,
        ),
        func(
            _observed("send_confirmation", send_confirmation), name="send_confirmation",
            max_tries=len(CONFIRM_RETRY_DELAYS) + 1,
        ),
        # also a job, so a sweep can be asked for between the scheduled ones
        func(_observed("sweep", sweep), name="sweep", max_tries=1, timeout=SWEEP_TIMEOUT),
        func(_observed("verify_websub", verify_websub), name="verify_websub", max_tries=3, timeout=SWEEP_TIMEOUT),
        func(_observed("expire_websub", expire_websub), name="expire_websub", max_tries=3, timeout=SWEEP_TIMEOUT),
    ]


def cron_jobs() -> list[Any]:
    minute = set(range(60))
    return [
        cron(
            _observed("schedule_polls", schedule_polls),
            name="schedule_polls",
            minute=minute,
            second=0,
            run_at_startup=True,
            unique=True,
            timeout=SCHEDULE_TIMEOUT,
        ),
        # twice a minute: immediate alerts fall due when their batching window ends, with no other trigger
        cron(_observed("send_emails", send_emails), name="send_emails_cron", minute=minute, second={20, 50},
             unique=True, timeout=SEND_TIMEOUT),
        cron(
            _observed("deliver_webhooks", deliver_webhooks), name="deliver_webhooks_cron", minute=minute, second=30,
            unique=True, timeout=SEND_TIMEOUT,
        ),
        cron(_observed("sweep", sweep), name="sweep_cron", minute=minute, second=SWEEP_SECONDS,
             run_at_startup=True, unique=True, timeout=SWEEP_TIMEOUT),
        cron(
            _observed("sweep_documents", sweep_documents), name="sweep_documents", minute=minute, second=50,
            run_at_startup=True, unique=True, timeout=SWEEP_TIMEOUT,
        ),
        cron(_observed("build_briefs", build_briefs), name="build_briefs_cron", minute=minute, second=55, unique=True),
        cron(_observed("expire_websub", expire_websub), name="expire_websub_cron", minute=set(range(0, 60, 10)),
             second=50, unique=True, timeout=SWEEP_TIMEOUT),
    ]


def build_worker(
    settings: Settings,
    *,
    metrics: Metrics | None = None,
    burst: bool = False,
    redis_pool: ArqRedis | None = None,
    with_cron: bool = True,
    lease: timedelta | None = None,
    resolver: AbstractResolver | None = None,
) -> Worker:
    metrics = metrics or Metrics()

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["settings"] = settings
        ctx["metrics"] = metrics
        holder = worker_id()
        # the pool's sessions carry the worker's id: every claim made through them names this worker as its holder
        ctx["pool"] = await create_pool(
            settings.database_url, min_size=1, max_size=settings.db_pool_max, application_name=holder
        )
        ctx["heartbeat"] = Heartbeat(ctx["pool"], holder, settings.worker_heartbeat_seconds)
        await ctx["heartbeat"].start()
        ctx["http"] = fetch.client_session(settings)
        ctx["fetcher"] = fetch.Fetcher(ctx["http"], settings)
        ctx["index"] = SubscriptionIndex()
        await ctx["index"].refresh(ctx["pool"])
        ctx["mailer"] = Mailer.create(
            settings, ctx["pool"], metrics=metrics, lease=lease or timedelta(seconds=settings.delivery_lease_seconds)
        )
        ctx["email_pass"] = OnePass()
        ctx["webhooks"] = WebhookSender.create(settings, ctx["pool"], metrics=metrics, resolver=resolver)
        # a worker started in place of one that died takes back what that one held, before anything else
        await release_claims(cast(WorkerContext, ctx))

    async def shutdown(ctx: dict[str, Any]) -> None:
        with contextlib.suppress(KeyError):
            await ctx["heartbeat"].stop()
        with contextlib.suppress(KeyError):
            await ctx["mailer"].close()
        with contextlib.suppress(KeyError):
            await ctx["webhooks"].close()
        with contextlib.suppress(KeyError):
            await ctx["http"].close()
        with contextlib.suppress(KeyError):
            await ctx["pool"].close()

    return Worker(
        functions=worker_functions(),
        cron_jobs=cron_jobs() if with_cron else None,
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        redis_pool=redis_pool,
        on_startup=startup,
        on_shutdown=shutdown,
        handle_signals=False,
        burst=burst,
        max_jobs=settings.worker_max_jobs,
        job_timeout=600,
        poll_delay=0.2 if burst else 0.5,
        keep_result=60,
    )


async def stop_worker(worker: Worker, task: asyncio.Task[None], grace: float) -> None:
    """Stop taking jobs, let running ones finish (up to `grace` seconds), then close everything."""
    worker.allow_pick_jobs = False
    deadline = time.monotonic() + grace
    while any(not t.done() for t in worker.tasks.values()) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    for t in worker.tasks.values():  # past the grace period: arq retries these jobs later
        t.cancel()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
    if worker.on_shutdown is not None:
        await worker.on_shutdown(worker.ctx)
    # arq's Worker.close() would do this with a call redis-py deprecates
    with contextlib.suppress(Exception):
        await worker.pool.delete(worker.health_check_key)
        await worker.pool.aclose()
