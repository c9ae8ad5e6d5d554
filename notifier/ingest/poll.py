"""Polling one source: take its lock, fetch and parse through its adapter, hand the records to `write_poll`; and
handing due sources to the queue.

A broken response is a failed poll: it is recorded (poll_runs, the source's failure streak and back-off) and leaves
every stored item untouched. A poll of one source never runs twice at once, across any number of workers: it holds
a PostgreSQL advisory lock keyed by the source id for as long as it runs.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import asyncpg
from arq.connections import ArqRedis

from notifier.ingest.fetch import Fetcher
from notifier.ingest.write import PollResult, write_poll
from notifier.metrics import Metrics
from notifier.models import ItemKind, SourceKind
from notifier.sources.base import Adapter, SourceError, SourceState
from notifier.sources.freshness import ReadPlan

log = logging.getLogger(__name__)

# classid half of the two-key advisory lock; the source id is the other half
POLL_LOCK_CLASS = 0x706F6C6C  # "poll"

# How long a source handed to the queue is not handed over again (see enqueue_due_polls).
ENQUEUE_CLAIM = timedelta(minutes=10)

# The host a source's URL names, in SQL: lower-cased, without credentials, with its port unless the default one
# (the server the fetcher's per-host limits count by).
_HOST = (
    "regexp_replace(lower(substring({url} from '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?([^/?#]+)')), "
    "':(80|443)$', '')"
)
# How many enabled sources of its council read the host of source `s` (at least 1): they share its request budget.
# Counted within the council: each of the 197 registered councils has a host of its own, while the demo and test
# councils share one server, and a budget split among them all would starve each.
HOST_SOURCES = (
    "greatest(1, (select count(*) from sources o where o.enabled and o.council = s.council and "
    f"{_HOST.format(url='o.url')} = {_HOST.format(url='s.url')}))::int"
)

# Failures back off exponentially from the source's interval: interval × 2^(streak-1), capped by settings.
BACKOFF_BASE = 2


def adapter_for(kind: str) -> Adapter:
    """The adapter for a source kind (imported lazily: each pulls in its own parsing libraries)."""
    k = SourceKind(kind)
    if k is SourceKind.MODERNGOV:
        from notifier.sources.moderngov import ModernGovAdapter

        return ModernGovAdapter()
    if k is SourceKind.MODERNGOV_DECISIONS:
        from notifier.sources.moderngov_decisions import ModernGovDecisionsAdapter

        return ModernGovDecisionsAdapter()
    if k is SourceKind.RSS:
        from notifier.sources.rss import RssAdapter

        return RssAdapter()
    if k is SourceKind.ICAL:
        from notifier.sources.ical import IcalAdapter

        return IcalAdapter()
    from notifier.sources.legistar import LegistarAdapter

    return LegistarAdapter()


# ---- polling ----


async def poll_source(
    pool: asyncpg.Pool,
    fetcher: Fetcher,
    source_id: int,
    *,
    metrics: Metrics | None = None,
    max_backoff: timedelta | None = None,
    force: bool = False,
) -> PollResult:
    """Poll one source now. Safe to call concurrently and repeatedly: a second caller finds the lock taken.

    The poll holds one pooled connection from start to end (the advisory lock is that connection's) and does all its
    database work on it: a poll that needed a second connection while holding the first could wait forever for one
    when every pooled connection is held by a poll.
    """
    result = PollResult(source_id)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    async with pool.acquire() as conn:
        got = await conn.fetchval("select pg_try_advisory_lock($1, $2)", POLL_LOCK_CLASS, source_id)
        if not got:
            result.skipped = "a poll of this source is already running"
            return result
        try:
            source = await conn.fetchrow(
                f"""
                select s.*, c.timezone, {HOST_SOURCES} as host_sources
                from sources s join councils c on c.slug = s.council
                where s.id = $1
                """,
                source_id,
            )
            if source is None:
                result.skipped = "no such source"
                return result
            if not source["enabled"] and not force:
                result.skipped = "source is disabled"
                return result
            await _poll_locked(conn, fetcher, source, result, started, max_backoff)
        finally:
            await conn.execute("select pg_advisory_unlock($1, $2)", POLL_LOCK_CLASS, source_id)
    result.duration_ms = int((time.perf_counter() - t0) * 1000)
    if metrics is not None:
        outcome = "error" if result.error else "not_modified" if result.not_modified else "ok"
        metrics.polls.labels(source["kind"], outcome).inc()
        for event_type in result.event_types:
            metrics.events.labels(event_type).inc()
    return result


async def _poll_locked(
    conn: asyncpg.Connection,
    fetcher: Fetcher,
    source: asyncpg.Record,
    result: PollResult,
    started: datetime,
    max_backoff: timedelta | None,
) -> None:
    source_id: int = source["id"]
    t0 = time.perf_counter()
    fetch = fetcher.for_source(source["etag"], source["last_modified"])
    adapter = adapter_for(source["kind"])
    kinds: frozenset[ItemKind] | None = getattr(adapter, "known_kinds", None)
    known_rows = await conn.fetch(
        "select kind, external_id, data from items where source_id = $1 and ($2::text[] is null or kind = any($2))",
        source_id,
        None if kinds is None else sorted(k.value for k in kinds),
    )
    state = SourceState(
        now=started,
        timezone=source["timezone"],
        options=source["options"],
        known={(ItemKind(r["kind"]), r["external_id"]): r["data"] for r in known_rows},
        last_success_at=source["last_success_at"],
        poll_interval=source["poll_interval"],
        host_sources=source["host_sources"],
    )
    try:
        records = await adapter.collect(source["url"], fetch, state)
    except SourceError as e:
        result.error = str(e)
    except Exception as e:  # an adapter bug must fail this poll, not the worker
        log.exception("adapter %s crashed on source %s", source["kind"], source_id)
        result.error = f"internal error parsing the response: {type(e).__name__}: {e}"
    else:
        try:
            await write_poll(
                conn, source, [] if records is None else records, started=started, fetch=fetch, result=result, t0=t0
            )
            result.not_modified = records is None
            await _poll_sooner(conn, source, started)
            return
        except Exception as e:
            log.exception("writing poll of source %s failed", source_id)
            result.error = f"could not store the results: {type(e).__name__}: {e}"
            result.records = result.events = 0
            result.event_ids, result.event_types = [], []
    result.http_status = fetch.http_status
    await _record_failure(conn, source, result, started, t0, max_backoff or timedelta(days=1))
    log.warning("poll of source %s (%s) failed: %s", source_id, source["url"], result.error)


async def _poll_sooner(conn: asyncpg.Connection, source: asyncpg.Record, started: datetime) -> None:
    """A ModernGov source is polled as often as its read schedule needs (`ReadPlan.poll_every`), which may be more
    often than its interval."""
    if source["kind"] != SourceKind.MODERNGOV.value:
        return
    try:
        every = ReadPlan.from_options(source["options"]).poll_every(source["poll_interval"])
    except SourceError:  # a bad option has failed the poll already, with its message
        return
    await conn.execute(
        # from the minute the poll was scheduled in: polls are handed out at each whole minute, and one due a few
        # seconds past it would wait for the next
        """
        update sources set next_poll_at = least(next_poll_at, date_trunc('minute', $2::timestamptz) + $3::interval)
        where id = $1
        """,
        source["id"],
        started,
        every,
    )


def next_poll_delay(interval: timedelta, failures: int, max_backoff: timedelta) -> timedelta:
    """How long after a poll to poll again, after `failures` failures in a row: the interval, doubled for each failure
    after the first, up to `max_backoff` (or the interval, when that is longer)."""
    if failures <= 0:
        return interval
    delay: timedelta = min(interval * (BACKOFF_BASE ** min(failures - 1, 20)), max(max_backoff, interval))
    return delay


async def _record_failure(
    conn: asyncpg.Connection,
    source: asyncpg.Record,
    result: PollResult,
    started: datetime,
    t0: float,
    backoff_cap: timedelta,
) -> None:
    """A failed poll: bump the failure streak, back off, and log the run. Stored items are not touched."""
    failures = source["consecutive_failures"] + 1
    delay = next_poll_delay(source["poll_interval"], failures, backoff_cap)
    async with conn.transaction():
        await conn.execute(
            """
            update sources
            set consecutive_failures = $2, last_error = $3, last_error_at = $4::timestamptz,
                next_poll_at = $4::timestamptz + $5::interval
            where id = $1
            """,
            source["id"],
            failures,
            result.error,
            started,
            delay,
        )
        await conn.execute(
            """
            insert into poll_runs (source_id, started_at, duration_ms, http_status, records, events, error)
            values ($1, $2, $3, $4, 0, 0, $5)
            """,
            source["id"],
            started,
            int((time.perf_counter() - t0) * 1000),
            result.http_status,
            result.error,
        )


# ---- scheduling ----


async def enqueue_due_polls(pool: asyncpg.Pool, redis: ArqRedis, *, now: datetime, limit: int = 1000) -> int:
    """Enqueue poll_source for each due source; returns how many jobs were enqueued.

    Each due source is claimed first: its next_poll_at moves `ENQUEUE_CLAIM` ahead, so a queue that is running
    behind does not collect another poll of the same source every minute (the poll sets the real next time when it
    runs, and a lost job is made up for once the claim runs out). The arq job id names the source and the minute
    slot, so schedulers running at once on several machines enqueue each poll once.
    """
    rows = await pool.fetch(
        """
        update sources set next_poll_at = $1::timestamptz + $3::interval
        where id in (
            select id from sources
            where enabled and next_poll_at <= $1
            order by next_poll_at
            limit $2
            for update skip locked
        )
        returning id
        """,
        now,
        limit,
        ENQUEUE_CLAIM,
    )
    slot = now.strftime("%Y%m%dT%H%M")
    n = 0
    for row in sorted(rows, key=lambda r: int(r["id"])):
        job = await redis.enqueue_job("poll_source", row["id"], _job_id=f"poll:{row['id']}:{slot}")
        n += job is not None
    return n
