"""Polling one source: fetch, parse, diff against what is stored, write items and events in one transaction.

A broken response is a failed poll: it is recorded (poll_runs, the source's failure streak and back-off) and leaves
every stored item untouched. A poll of one source never runs twice at once, across any number of workers: it holds
a PostgreSQL advisory lock keyed by the source id for as long as it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
from arq.connections import ArqRedis

from notifier.diff import Change, content_hash, diff_poll
from notifier.metrics import Metrics
from notifier.models import ItemKind, SourceKind
from notifier.settings import Settings
from notifier.sources.base import Adapter, Record, Response, SourceError, SourceState
from notifier.topics.text import tsvector_literal

log = logging.getLogger(__name__)

# classid half of the two-key advisory lock; the source id is the other half
POLL_LOCK_CLASS = 0x706F6C6C  # "poll"

# How long a source handed to the queue is not handed over again (see enqueue_due_polls).
ENQUEUE_CLAIM = timedelta(minutes=10)

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


# ---- HTTP ----


def client_session(settings: Settings) -> aiohttp.ClientSession:
    """The one shared client session for fetching council systems."""
    timeout = aiohttp.ClientTimeout(
        total=settings.poll_total_timeout,
        connect=settings.poll_connect_timeout,
        sock_read=settings.poll_total_timeout,
    )
    connector = aiohttp.TCPConnector(limit=settings.poll_concurrency * 2, ttl_dns_cache=300)
    return aiohttp.ClientSession(
        timeout=timeout,
        connector=connector,
        headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate"},
    )


class HttpStatusError(SourceError):
    """The source answered with a status other than 2xx or 304."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Fetcher:
    """HTTP for adapters: concurrency limits (overall and per host), a size cap, and conditional GET."""

    def __init__(self, session: aiohttp.ClientSession, settings: Settings) -> None:
        self.session = session
        self.max_bytes = settings.poll_max_response_bytes
        self.total_timeout = settings.poll_total_timeout
        self._overall = asyncio.Semaphore(settings.poll_concurrency)
        self._per_host_limit = settings.poll_per_host_concurrency
        self._per_host: dict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(self._per_host_limit))

    def for_source(self, etag: str | None, last_modified: str | None) -> SourceFetch:
        return SourceFetch(self, etag, last_modified)

    async def get(self, url: str, headers: Mapping[str, str]) -> tuple[int, bytes, Mapping[str, str], str]:
        host = urlsplit(url).netloc
        async with self._overall, self._per_host[host]:
            try:
                async with self.session.get(url, headers=dict(headers), allow_redirects=True, max_redirects=5) as resp:
                    if resp.status == 304:
                        return 304, b"", resp.headers, str(resp.url)
                    if not 200 <= resp.status < 300:
                        snippet = (await resp.content.read(200)).decode("utf-8", "replace")
                        raise HttpStatusError(
                            resp.status, f"HTTP {resp.status} {resp.reason} from {url}: {snippet.strip()[:120]!r}"
                        )
                    declared = resp.content_length
                    if declared is not None and declared > self.max_bytes:
                        raise SourceError(f"response from {url} is {declared} bytes, over the {self.max_bytes} cap")
                    body = await self._read_capped(resp, url)
                    return resp.status, body, resp.headers, str(resp.url)
            except TimeoutError as e:
                raise SourceError(f"timed out after {self.total_timeout:.0f}s fetching {url}") from e
            except aiohttp.ClientError as e:
                raise SourceError(f"could not fetch {url}: {type(e).__name__}: {e}") from e

    async def _read_capped(self, resp: aiohttp.ClientResponse, url: str) -> bytes:
        # Count decompressed bytes: a small gzip body can expand to gigabytes.
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > self.max_bytes:
                raise SourceError(f"response from {url} exceeds the {self.max_bytes}-byte cap")
            chunks.append(chunk)
        return b"".join(chunks)


@dataclass
class SourceFetch:
    """The `Fetch` an adapter gets for one poll; remembers the validators of the conditional request."""

    fetcher: Fetcher
    etag: str | None
    last_modified: str | None
    new_etag: str | None = None
    new_last_modified: str | None = None
    http_status: int | None = None
    requests: int = 0

    async def __call__(self, url: str, *, conditional: bool = False) -> Response | None:
        headers: dict[str, str] = {}
        if conditional:
            if self.etag:
                headers["If-None-Match"] = self.etag
            if self.last_modified:
                headers["If-Modified-Since"] = self.last_modified
        self.requests += 1
        try:
            status, body, resp_headers, final_url = await self.fetcher.get(url, headers)
        except HttpStatusError as e:
            # the status of the answer that failed the poll, for poll_runs
            self.http_status = e.status
            raise
        if conditional:
            self.http_status = status
            self.new_etag = resp_headers.get("ETag") or self.etag
            self.new_last_modified = resp_headers.get("Last-Modified") or self.last_modified
        elif self.http_status is None:
            self.http_status = status
        if status == 304:
            if conditional:
                return None
            raise SourceError(f"unexpected 304 Not Modified from {url}")
        return Response(
            url=final_url,
            status=status,
            body=body,
            content_type=resp_headers.get("Content-Type", ""),
            headers=dict(resp_headers),
        )


# ---- polling ----


@dataclass
class PollResult:
    source_id: int
    records: int = 0
    events: int = 0
    error: str | None = None
    not_modified: bool = False
    skipped: str | None = None
    http_status: int | None = None
    duration_ms: int = 0
    event_ids: list[int] = field(default_factory=list)
    event_types: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source_id": self.source_id,
            "records": self.records,
            "events": self.events,
            "error": self.error,
            "not_modified": self.not_modified,
            "skipped": self.skipped,
            "http_status": self.http_status,
            "duration_ms": self.duration_ms,
        }


def _row_to_record(row: Mapping[str, Any], parents: Mapping[int, tuple[str, str]]) -> Record:
    parent = parents.get(row["parent_id"]) if row["parent_id"] is not None else None
    return Record(
        kind=ItemKind(row["kind"]),
        external_id=row["external_id"],
        title=row["title"],
        committee=row["committee"],
        committee_id=row["committee_id"],
        body=row["body"],
        starts_at=row["starts_at"],
        status=row["status"],
        url=row["url"],
        parent=(ItemKind(parent[0]), parent[1]) if parent else None,
        published_at=row["published_at"],
        data=row["data"],
    )


def next_poll_delay(interval: timedelta, failures: int, max_backoff: timedelta) -> timedelta:
    if failures <= 0:
        return interval
    delay: timedelta = min(interval * (BACKOFF_BASE ** min(failures - 1, 20)), max(max_backoff, interval))
    return delay


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
                """
                select s.*, c.timezone
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
    known_rows = await conn.fetch("select kind, external_id, data from items where source_id = $1", source_id)
    state = SourceState(
        now=started,
        timezone=source["timezone"],
        options=source["options"],
        known={(ItemKind(r["kind"]), r["external_id"]): r["data"] for r in known_rows},
        last_success_at=source["last_success_at"],
    )
    try:
        records = await adapter_for(source["kind"]).collect(source["url"], fetch, state)
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
            return
        except Exception as e:
            log.exception("writing poll of source %s failed", source_id)
            result.error = f"could not store the results: {type(e).__name__}: {e}"
            result.records = result.events = 0
            result.event_ids, result.event_types = [], []
    result.http_status = fetch.http_status
    await _record_failure(conn, source, result, started, t0, max_backoff or timedelta(days=1))
    log.warning("poll of source %s (%s) failed: %s", source_id, source["url"], result.error)


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


Key = tuple[ItemKind, str]


async def write_poll(
    conn: asyncpg.Connection,
    source: Mapping[str, Any],
    records: Sequence[Record],
    *,
    started: datetime,
    fetch: SourceFetch | None = None,
    result: PollResult | None = None,
    t0: float | None = None,
) -> PollResult:
    """Diff and write one successful poll's records, its events, the source's health and a poll_runs row, atomically.

    `source` needs the source's `id`, `council`, `etag` and `last_modified`, and the council's `timezone`; `fetch`
    (when the records came over HTTP) carries the answer's status and new validators. Fills in and returns `result`.

    Most records of most polls are what is stored already: a record whose content hash matches the stored one is not
    diffed and not rewritten (only its adapter bookkeeping, when that changed), so a re-poll costs one read.
    """
    t0 = time.perf_counter() if t0 is None else t0
    source_id: int = source["id"]
    council: str = source["council"]
    result = result if result is not None else PollResult(source_id)
    records = _dedupe(records)
    hashes = {(r.kind, r.external_id): content_hash(r) for r in records}
    http_status = fetch.http_status if fetch is not None else None
    async with conn.transaction():
        stored = await _stored(conn, source_id, records, hashes)
        ids = {key: st.id for key, st in stored.items()}
        # What the diff compares against. An unchanged record is the same as the stored one, so it stands in for
        # it where the diff looks one up (a document's agenda item and meeting), and its stored text is not read.
        old: dict[Key, Record] = {}
        changed: list[Record] = []
        fresh: list[Record] = []
        bookkeeping: list[tuple[int, Any]] = []
        orphans: list[Record] = []
        for r in records:
            key = (r.kind, r.external_id)
            before = stored.get(key)
            if before is None:
                changed.append(r)
                fresh.append(r)
                continue
            if before.record is not None:
                old[key] = before.record
                changed.append(r)
                continue
            old[key] = r
            if (data := _json_data(r.data)) != before.data:
                bookkeeping.append((before.id, data))
            if r.parent is not None and before.parent_missing:
                orphans.append(r)
        changes = diff_poll(
            old,
            changed,
            timezone=source["timezone"],
            old_hashes={key: st.content_hash for key, st in stored.items()},
            new_hashes=hashes,
        )
        inserted, unlinked = await _insert_items(conn, source_id, council, fresh, hashes, started)
        ids.update(inserted)
        updated = [r for r in changed if (r.kind, r.external_id) in old]
        await _update_items(conn, updated, old, ids, hashes, started)
        await _update_bookkeeping(conn, bookkeeping)
        await _link_parents(conn, source_id, [*updated, *unlinked, *orphans])
        event_ids = await _insert_events(conn, council, changes, ids, started)
        await conn.execute(
            """
            update sources
            set etag = $2, last_modified = $3, last_success_at = $4::timestamptz, last_error = null,
                consecutive_failures = 0, next_poll_at = $4::timestamptz + poll_interval
            where id = $1
            """,
            source_id,
            (fetch.new_etag if fetch is not None else None) or source["etag"],
            (fetch.new_last_modified if fetch is not None else None) or source["last_modified"],
            started,
        )
        await conn.execute(
            """
            insert into poll_runs (source_id, started_at, duration_ms, http_status, records, events, error)
            values ($1, $2, $3, $4, $5, $6, null)
            """,
            source_id,
            started,
            int((time.perf_counter() - t0) * 1000),
            http_status,
            len(records),
            len(event_ids),
        )
    result.http_status = http_status
    result.records = len(records)
    result.event_ids = event_ids
    result.events = len(event_ids)
    result.event_types = [c.type.value for c in changes]
    return result


@dataclass(frozen=True, slots=True)
class _Stored:
    """A stored item this poll has a record for: its id, hash and data, and, when its content changed, the whole
    stored record (for the diff)."""

    id: int
    content_hash: str
    data: Any
    parent_missing: bool
    record: Record | None


async def _stored(
    conn: asyncpg.Connection, source_id: int, records: Sequence[Record], hashes: Mapping[Key, str]
) -> dict[Key, _Stored]:
    """What is stored of this poll's records, in one read. The text of an item whose hash matches this poll's is
    not sent back: it is not needed, and it is most of the bytes."""
    if not records:
        return {}
    rows = await conn.fetch(
        """
        select i.id, i.kind, i.external_id, i.content_hash, i.data, i.parent_id, i.content_hash = t.hash as same,
               case when i.content_hash = t.hash then null else i.title end as title,
               case when i.content_hash = t.hash then null else i.body end as body,
               i.committee, i.committee_id, i.starts_at, i.status, i.url, i.published_at
        from unnest($2::text[], $3::text[], $4::text[]) as t(kind, external_id, hash)
        join items i on i.source_id = $1 and i.kind = t.kind and i.external_id = t.external_id
        """,
        source_id,
        [r.kind.value for r in records],
        [r.external_id for r in records],
        [hashes[(r.kind, r.external_id)] for r in records],
    )
    parent_ids = {r["parent_id"] for r in rows if r["parent_id"] is not None and not r["same"]}
    parents: dict[int, tuple[str, str]] = {}
    if parent_ids:
        for p in await conn.fetch(
            "select id, kind, external_id from items where id = any($1::bigint[])", list(parent_ids)
        ):
            parents[p["id"]] = (p["kind"], p["external_id"])
    stored: dict[Key, _Stored] = {}
    for row in rows:
        record = None if row["same"] else _row_to_record(row, parents)
        stored[(ItemKind(row["kind"]), row["external_id"])] = _Stored(
            row["id"], row["content_hash"], row["data"], row["parent_id"] is None, record
        )
    return stored


def _json_data(data: Mapping[str, Any]) -> Any:
    """`data` as it reads back from the jsonb column."""
    return json.loads(json.dumps(dict(data), default=str))


def _dedupe(records: Sequence[Record]) -> list[Record]:
    """Keep the last record for each (kind, external_id): a feed listing an item twice is not two items."""
    seen: dict[Key, Record] = {}
    for r in records:
        seen[(r.kind, r.external_id)] = r
    return list(seen.values())


def _search_text(r: Record) -> str:
    return "\n".join(part for part in (r.title, r.committee or "", r.body) if part)


def _search_vectors(records: Sequence[Record]) -> dict[Key, str]:
    """The `search` tsvector literal of each record: its title, committee and body."""
    return {(r.kind, r.external_id): tsvector_literal(_search_text(r)) for r in records}


async def _insert_items(
    conn: asyncpg.Connection,
    source_id: int,
    council: str,
    records: Sequence[Record],
    hashes: Mapping[Key, str],
    now: datetime,
) -> tuple[dict[Key, int], list[Record]]:
    """Insert records seen for the first time; returns their ids, and those whose parent could not be set yet.

    Parents go in before their children (meetings, then agenda items, then documents) so each row is written with
    its parent_id: setting it afterwards would write every child row, and all its indexes, a second time. Each
    group's rows are prepared (search vectors are most of the work) while PostgreSQL inserts the group before.
    """
    ids: dict[Key, int] = {}
    unlinked: list[Record] = []
    in_flight: asyncio.Future[list[asyncpg.Record]] | None = None
    sent: Sequence[Record] = []
    try:
        for level in [*_parent_levels(records), []]:
            args = _insert_args(level, hashes) if level else None
            if in_flight is not None:
                rows, in_flight = await in_flight, None
                linked: dict[Key, bool] = {}
                for row in rows:
                    key = (ItemKind(row["kind"]), row["external_id"])
                    ids[key] = row["id"]
                    linked[key] = row["parent_id"] is not None
                unlinked.extend(r for r in sent if r.parent is not None and not linked.get((r.kind, r.external_id)))
            if args is not None:
                in_flight = asyncio.ensure_future(conn.fetch(_INSERT_ITEMS, source_id, council, now, *args))
                sent = level
                # Let the query go out before the next group's rows are prepared.
                await asyncio.sleep(0)
    finally:
        if in_flight is not None:
            # Preparing a group failed with an insert under way: the connection must not be left mid-query.
            with contextlib.suppress(Exception):
                await in_flight
    return ids, unlinked


_INSERT_ITEMS = """
    insert into items (source_id, kind, external_id, council, committee, committee_id, title, body, starts_at,
                       status, url, published_at, data, content_hash, search, parent_id, first_seen_at, updated_at)
    select $1, t.kind, t.external_id, $2, t.committee, t.committee_id, t.title, t.body, t.starts_at, t.status,
           t.url, t.published_at, t.data::jsonb, t.content_hash, t.search::tsvector, p.id, $3, $3
    from unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::timestamptz[],
                $11::text[], $12::text[], $13::timestamptz[], $14::text[], $15::text[], $16::text[],
                $17::text[], $18::text[]) with ordinality
         as t(kind, external_id, committee, committee_id, title, body, starts_at, status, url, published_at,
              data, content_hash, search, pkind, pexternal, n)
    left join items p on p.source_id = $1 and p.kind = t.pkind and p.external_id = t.pexternal
    order by t.n
    on conflict (source_id, kind, external_id) do update
    set committee = excluded.committee, committee_id = excluded.committee_id, title = excluded.title,
        body = excluded.body, starts_at = excluded.starts_at, status = excluded.status, url = excluded.url,
        published_at = excluded.published_at, data = excluded.data, search = excluded.search,
        updated_at = $3, content_hash = excluded.content_hash
    returning id, kind, external_id, parent_id
"""


def _insert_args(records: Sequence[Record], hashes: Mapping[Key, str]) -> list[list[Any]]:
    """The column arrays of `_INSERT_ITEMS` ($4 on) for `records`."""
    vectors = _search_vectors(records)
    return [
        [r.kind.value for r in records],
        [r.external_id for r in records],
        *_content_columns(records, hashes),
        [vectors[(r.kind, r.external_id)] for r in records],
        [r.parent[0].value if r.parent is not None else None for r in records],
        [r.parent[1] if r.parent is not None else None for r in records],
    ]


def _content_columns(records: Sequence[Record], hashes: Mapping[Key, str]) -> list[list[Any]]:
    """The column arrays of what a record says, as inserted and updated: committee and committee id, title, body,
    start, status, URL, publication date, data (JSON text) and content hash."""
    return [
        [r.committee for r in records],
        [r.committee_id for r in records],
        [r.title for r in records],
        [r.body for r in records],
        [r.starts_at for r in records],
        [r.status for r in records],
        [r.url for r in records],
        [r.published_at for r in records],
        [json.dumps(dict(r.data), default=str) for r in records],
        [hashes[(r.kind, r.external_id)] for r in records],
    ]


def _parent_levels(records: Sequence[Record]) -> list[list[Record]]:
    """`records` in groups, each record in a later group than its parent when that parent is among them; the order
    within a group is kept. A parent chain that loops (a broken feed) ends up in the last group."""
    pending = list(records)
    placed: set[Key] = set()
    within = {(r.kind, r.external_id) for r in records}
    levels: list[list[Record]] = []
    while pending:
        level = [r for r in pending if r.parent is None or r.parent not in within or r.parent in placed]
        if not level:
            levels.append(pending)
            break
        levels.append(level)
        placed.update((r.kind, r.external_id) for r in level)
        pending = [r for r in pending if (r.kind, r.external_id) not in placed]
    return levels


async def _update_items(
    conn: asyncpg.Connection,
    records: Sequence[Record],
    old: Mapping[Key, Record],
    ids: Mapping[Key, int],
    hashes: Mapping[Key, str],
    now: datetime,
) -> None:
    """Rewrite stored records whose content changed. The search vector is only rebuilt when the searched text
    changed: a meeting that moves keeps its words."""
    if not records:
        return
    rebuilt = _search_vectors(
        [r for r in records if _search_text(r) != _search_text(old[(r.kind, r.external_id)])]
    )
    searches = [rebuilt.get((r.kind, r.external_id)) for r in records]
    await conn.execute(
        """
        update items i
        set committee = t.committee, committee_id = t.committee_id, title = t.title, body = t.body,
            starts_at = t.starts_at, status = t.status, url = t.url, published_at = t.published_at,
            data = t.data::jsonb, content_hash = t.content_hash, search = coalesce(t.search::tsvector, i.search),
            updated_at = $1
        from unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::text[],
                    $9::text[], $10::timestamptz[], $11::text[], $12::text[], $13::text[])
             as t(id, committee, committee_id, title, body, starts_at, status, url, published_at, data, content_hash,
                  search)
        where i.id = t.id
        """,
        now,
        [ids[(r.kind, r.external_id)] for r in records],
        *_content_columns(records, hashes),
        searches,
    )


async def _update_bookkeeping(conn: asyncpg.Connection, rows: Sequence[tuple[int, Any]]) -> None:
    """Store new `data` for records whose content did not change (only the adapter's `_` bookkeeping did)."""
    if not rows:
        return
    await conn.execute(
        """
        update items set data = t.data::jsonb
        from unnest($1::bigint[], $2::text[]) as t(id, data)
        where items.id = t.id
        """,
        [item_id for item_id, _ in rows],
        [json.dumps(data) for _, data in rows],
    )


async def _link_parents(conn: asyncpg.Connection, source_id: int, records: Sequence[Record]) -> None:
    """Point records at their parents (new or changed records, and stored ones whose parent was not there yet)."""
    with_parent = [r for r in records if r.parent is not None]
    if not with_parent:
        return
    await conn.execute(
        """
        update items c
        set parent_id = p.id
        from unnest($2::text[], $3::text[], $4::text[], $5::text[]) as t(kind, external_id, pkind, pexternal)
        join items p on p.source_id = $1 and p.kind = t.pkind and p.external_id = t.pexternal
        where c.source_id = $1 and c.kind = t.kind and c.external_id = t.external_id
          and c.parent_id is distinct from p.id
        """,
        source_id,
        [r.kind.value for r in with_parent],
        [r.external_id for r in with_parent],
        [r.parent[0].value for r in with_parent if r.parent],
        [r.parent[1] for r in with_parent if r.parent],
    )


async def _insert_events(
    conn: asyncpg.Connection,
    council: str,
    changes: Sequence[Change],
    ids: Mapping[tuple[ItemKind, str], int],
    now: datetime,
) -> list[int]:
    if not changes:
        return []
    rows = await conn.fetch(
        """
        insert into events (type, item_id, council, occurred_at, changes, summary)
        select type, item_id, $1, $2, changes::jsonb, summary
        from unnest($3::text[], $4::bigint[], $5::text[], $6::text[]) with ordinality
             as t(type, item_id, changes, summary, n)
        order by n
        returning id
        """,
        council,
        now,
        [c.type.value for c in changes],
        [ids[c.key] for c in changes],
        [json.dumps(c.changes, default=str) for c in changes],
        [c.summary for c in changes],
    )
    await conn.execute("select pg_notify('notifier_events', $1)", str(rows[-1]["id"]))
    return [r["id"] for r in rows]


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
