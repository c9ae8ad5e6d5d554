"""Polling one source: take its lock, fetch and parse through its adapter, hand the records to `write_poll`; and
handing due sources to the queue.

A broken response is a failed poll: it is recorded (poll_runs, the source's failure streak and back-off) and leaves
every stored item untouched. A poll of one source never runs twice at once, across any number of workers: it holds
a short lease on the source (`sources.poll_lease_until`), renewed while it runs, and takes a pooled connection only
for its reads and its writes, never while it waits on the council's server.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
from arq.connections import ArqRedis

from notifier.ingest.fetch import Fetcher
from notifier.ingest.write import PollResult, write_poll
from notifier.leases import LeaseKeeper
from notifier.metrics import Metrics
from notifier.models import ItemKind, SourceKind
from notifier.sources.base import Adapter, Record, SourceError, SourceState
from notifier.sources.freshness import ReadPlan

log = logging.getLogger(__name__)

# A poll's lease on its source, renewed every third of it while the poll runs: a worker that dies mid-poll holds
# the source up for at most this long.
POLL_LEASE = timedelta(seconds=30)

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
    """Poll one source now. Safe to call concurrently and repeatedly: a second caller finds the lease taken.

    The poll takes a pooled connection for its reads and again for its writes, one at a time, and none while the
    adapter waits on the council's server: a worker polls as many councils at once as it runs jobs, not as many as
    its pool has connections, and never waits for a second connection while holding one.
    """
    result = PollResult(source_id)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    if not await pool.fetchval(
        """
        update sources set poll_lease_until = now() + $2::interval
        where id = $1 and (poll_lease_until is null or poll_lease_until < now())
        returning true
        """,
        source_id,
        POLL_LEASE,
    ):
        exists = await pool.fetchval("select true from sources where id = $1", source_id)
        result.skipped = "a poll of this source is already running" if exists else "no such source"
        return result
    keeper = LeaseKeeper(pool, POLL_LEASE, renew_poll_leases)
    keeper.hold([source_id])
    try:
        source = await _poll_leased(pool, fetcher, source_id, result, started, t0, max_backoff, force)
    finally:
        await keeper.close()
        await pool.execute("update sources set poll_lease_until = null where id = $1", source_id)
    result.duration_ms = int((time.perf_counter() - t0) * 1000)
    if metrics is not None and source is not None:
        outcome = "error" if result.error else "not_modified" if result.not_modified else "ok"
        metrics.polls.labels(source["kind"], outcome).inc()
        for event_type in result.event_types:
            metrics.events.labels(event_type).inc()
    return result


async def renew_poll_leases(pool: asyncpg.Pool, source_ids: Sequence[int], lease: timedelta) -> int:
    """Extend the poll leases still held on these sources."""
    status = await pool.execute(
        """
        update sources set poll_lease_until = now() + $2::interval
        where id = any($1::bigint[]) and poll_lease_until is not null
        """,
        list(source_ids),
        lease,
    )
    return int(status.split()[-1])


async def _poll_leased(
    pool: asyncpg.Pool,
    fetcher: Fetcher,
    source_id: int,
    result: PollResult,
    started: datetime,
    t0: float,
    max_backoff: timedelta | None,
    force: bool,
) -> asyncpg.Record | None:
    """The poll of a source whose lease this caller holds: read, collect, write. Returns the source's row (None when
    the poll was skipped)."""
    async with pool.acquire() as conn:
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
            return None
        if not source["enabled"] and not force:
            result.skipped = "source is disabled"
            return None
        state = await _source_state(conn, source, started)
    fetch = fetcher.for_source(source["etag"], source["last_modified"])
    records: list[Record] | None = None
    try:
        records = await adapter_for(source["kind"]).collect(source["url"], fetch, state)
    except SourceError as e:
        result.error = str(e)
    except Exception as e:  # an adapter bug must fail this poll, not the worker
        log.exception("adapter %s crashed on source %s", source["kind"], source_id)
        result.error = f"internal error parsing the response: {type(e).__name__}: {e}"
    async with pool.acquire() as conn:
        if not result.error:
            try:
                await write_poll(
                    conn, source, [] if records is None else records, started=started, fetch=fetch, result=result,
                    t0=t0,
                )
                result.not_modified = records is None
                await _poll_sooner(conn, source, started)
                return source
            except Exception as e:
                log.exception("writing poll of source %s failed", source_id)
                result.error = f"could not store the results: {type(e).__name__}: {e}"
                result.records = result.events = 0
                result.event_ids, result.event_types = [], []
        result.http_status = fetch.http_status
        await _record_failure(conn, source, result, started, t0, max_backoff or timedelta(days=1))
    log.warning("poll of source %s (%s) failed: %s", source_id, source["url"], result.error)
    return source


async def _source_state(conn: asyncpg.Connection, source: asyncpg.Record, started: datetime) -> SourceState:
    """What the adapter is told of its source: the stored data of the kinds it looks at, its timing and budget."""
    kinds: frozenset[ItemKind] | None = getattr(adapter_for(source["kind"]), "known_kinds", None)
    known_rows = await conn.fetch(
        "select kind, external_id, data from items where source_id = $1 and ($2::text[] is null or kind = any($2))",
        source["id"],
        None if kinds is None else sorted(k.value for k in kinds),
    )
    return SourceState(
        now=started,
        timezone=source["timezone"],
        options=source["options"],
        known={(ItemKind(r["kind"]), r["external_id"]): r["data"] for r in known_rows},
        last_success_at=source["last_success_at"],
        poll_interval=source["poll_interval"],
        host_sources=source["host_sources"],
    )


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
