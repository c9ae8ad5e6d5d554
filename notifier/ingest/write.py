"""Writing one successful poll in one transaction: its items (inserted, rewritten, or left alone when unchanged),
its events, the source's health and its poll_runs row; then a `pg_notify` for the matcher.

Most records of most polls are what is stored already, so the work is to find out cheaply which are not: a record's
content hash is compared with the stored one in one read, and only what differs is diffed and rewritten.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from notifier.ingest.diff import Change, diff_poll
from notifier.ingest.fetch import SourceFetch
from notifier.ingest.normalise import Key, Lines, content_hash, dedupe, search_text, search_vectors
from notifier.ingest.stored import Stored, read_stored
from notifier.models import ItemKind
from notifier.sources.base import Record


@dataclass
class PollResult:
    """What one poll of a source did: the poll job's answer, and what `poll_runs` and the metrics record."""

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
    result = result if result is not None else PollResult(source_id)
    records = dedupe(records)
    # Filled in by the read for stored records, and as they are written for new ones.
    hashes: dict[Key, str] = {}
    async with conn.transaction():
        stored = await read_stored(conn, source_id, records, hashes)
        ids = {key: st.id for key, st in stored.items()}
        plan = _plan_for(records, stored)
        changes: list[Change] = []

        def diff() -> None:
            changes.extend(
                diff_poll(
                    plan.old,
                    plan.changed,
                    timezone=source["timezone"],
                    old_hashes={key: st.content_hash for key, st in stored.items()},
                    new_hashes=hashes,
                )
            )

        # The diff needs no ids: it is made while PostgreSQL inserts the last group of new items.
        await _write_items(conn, source, plan, ids, hashes, started, diff)
        event_ids = await _insert_events(conn, source["council"], changes, ids, started)
        await _record_success(conn, source, fetch, started, t0, len(records), len(event_ids))
    result.http_status = fetch.http_status if fetch is not None else None
    result.records = len(records)
    result.event_ids = event_ids
    result.events = len(event_ids)
    result.event_types = [c.type.value for c in changes]
    return result


@dataclass
class _Plan:
    """What each of a poll's records needs, found by comparing its hash with the stored one."""

    # What the diff compares against. An unchanged record is the same as the stored one, so it stands in for it
    # where the diff looks one up (a document's agenda item and meeting), and its stored text is not read.
    old: dict[Key, Record] = field(default_factory=dict)
    # Records new or changed: the ones diffed.
    changed: list[Record] = field(default_factory=list)
    # Records seen for the first time: inserted.
    fresh: list[Record] = field(default_factory=list)
    # (item id, data) of unchanged records whose adapter bookkeeping changed.
    bookkeeping: list[tuple[int, Any]] = field(default_factory=list)
    # Unchanged records whose stored row has no parent yet (it was stored before its parent was).
    orphans: list[Record] = field(default_factory=list)
    # The stored parent of each changed record whose parent is an item of the same source.
    parents: dict[Key, Key] = field(default_factory=dict)


def _plan_for(records: Sequence[Record], stored: Mapping[Key, Stored]) -> _Plan:
    plan = _Plan()
    for r in records:
        key = (r.kind, r.external_id)
        before = stored.get(key)
        if before is None:
            plan.changed.append(r)
            plan.fresh.append(r)
            continue
        if before.record is not None:
            plan.old[key] = before.record
            plan.changed.append(r)
            if before.parent is not None:
                plan.parents[key] = before.parent
            continue
        plan.old[key] = r
        if (data := _json_data(r.data)) != before.data:
            plan.bookkeeping.append((before.id, data))
        if r.parent is not None and before.parent_missing:
            plan.orphans.append(r)
    return plan


async def _write_items(
    conn: asyncpg.Connection,
    source: Mapping[str, Any],
    plan: _Plan,
    ids: dict[Key, int],
    hashes: dict[Key, str],
    started: datetime,
    meanwhile: Callable[[], None],
) -> None:
    """Insert the new records, rewrite the changed ones and link children to parents; fills in `ids`. Calls
    `meanwhile` once, while the changed records are rewritten, or else while the last group of new records is
    inserted (or first, when there is neither)."""
    source_id: int = source["id"]
    lines: Lines = {}
    updated = [r for r in plan.changed if (r.kind, r.external_id) in plan.old]
    inserted, unlinked = await _insert_items(
        conn, source_id, source["council"], plan.fresh, hashes, started, lines, meanwhile if not updated else None
    )
    ids.update(inserted)
    await _update_items(conn, updated, plan.old, ids, hashes, started, lines, meanwhile if updated else None)
    await _update_bookkeeping(conn, plan.bookkeeping)
    # A changed record whose stored parent is the one it names is linked already.
    relink = [r for r in updated if r.parent is None or r.parent != plan.parents.get((r.kind, r.external_id))]
    await _link_parents(conn, source_id, [*relink, *unlinked, *plan.orphans])


async def _record_success(
    conn: asyncpg.Connection,
    source: Mapping[str, Any],
    fetch: SourceFetch | None,
    started: datetime,
    t0: float,
    records: int,
    events: int,
) -> None:
    """A successful poll: keep the answer's validators, end any failure streak, schedule the next poll, log the run."""
    await conn.execute(
        """
        update sources
        set etag = $2, last_modified = $3, last_success_at = $4::timestamptz, last_error = null,
            consecutive_failures = 0, next_poll_at = $4::timestamptz + poll_interval
        where id = $1
        """,
        source["id"],
        (fetch.new_etag if fetch is not None else None) or source["etag"],
        (fetch.new_last_modified if fetch is not None else None) or source["last_modified"],
        started,
    )
    await conn.execute(
        """
        insert into poll_runs (source_id, started_at, duration_ms, http_status, records, events, error)
        values ($1, $2, $3, $4, $5, $6, null)
        """,
        source["id"],
        started,
        int((time.perf_counter() - t0) * 1000),
        fetch.http_status if fetch is not None else None,
        records,
        events,
    )


def _json_data(data: Mapping[str, Any]) -> Any:
    """`data` as it reads back from the jsonb column."""
    return json.loads(json.dumps(dict(data), default=str))


async def _insert_items(
    conn: asyncpg.Connection,
    source_id: int,
    council: str,
    records: Sequence[Record],
    hashes: dict[Key, str],
    now: datetime,
    lines: Lines,
    meanwhile: Callable[[], None] | None,
) -> tuple[dict[Key, int], list[Record]]:
    """Insert records seen for the first time; returns their ids, and those whose parent could not be set yet.

    Parents go in before their children (meetings, then agenda items, then documents) so each row is written with
    its parent_id: setting it afterwards would write every child row, and all its indexes, a second time. Each
    group's rows are prepared (search vectors are most of the work) while PostgreSQL inserts the group before,
    and `meanwhile` (when given) is called while it inserts the last.
    """
    ids: dict[Key, int] = {}
    unlinked: list[Record] = []
    in_flight: asyncio.Future[list[asyncpg.Record]] | None = None
    sent: Sequence[Record] = []
    try:
        for level in [*_parent_levels(records), []]:
            args = _insert_args(level, hashes, lines) if level else None
            if not level and meanwhile is not None:
                meanwhile()
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


def _insert_args(records: Sequence[Record], hashes: dict[Key, str], lines: Lines) -> list[list[Any]]:
    """The column arrays of `_INSERT_ITEMS` ($4 on) for `records`."""
    vectors = search_vectors(records, lines)
    return [
        [r.kind.value for r in records],
        [r.external_id for r in records],
        *_content_columns(records, hashes),
        [vectors[(r.kind, r.external_id)] for r in records],
        [r.parent[0].value if r.parent is not None else None for r in records],
        [r.parent[1] if r.parent is not None else None for r in records],
    ]


def _content_columns(records: Sequence[Record], hashes: dict[Key, str]) -> list[list[Any]]:
    """The column arrays of what a record says, as inserted and updated: committee and committee id, title, body,
    start, status, URL, publication date, data (JSON text) and content hash (made here, and kept in `hashes`, for
    a record the read did not hash)."""
    for r in records:
        if (r.kind, r.external_id) not in hashes:
            hashes[(r.kind, r.external_id)] = content_hash(r)
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
    hashes: dict[Key, str],
    now: datetime,
    lines: Lines,
    meanwhile: Callable[[], None] | None,
) -> None:
    """Rewrite stored records whose content changed, calling `meanwhile` (when given) while PostgreSQL does. The
    search vector is only rebuilt when the searched text changed: a meeting that moves keeps its words."""
    if not records:
        if meanwhile is not None:
            meanwhile()
        return
    rebuilt = search_vectors(
        [r for r in records if search_text(r) != search_text(old[(r.kind, r.external_id)])], lines
    )
    update = asyncio.ensure_future(
        conn.execute(
            _UPDATE_ITEMS,
            now,
            [ids[(r.kind, r.external_id)] for r in records],
            *_content_columns(records, hashes),
            [rebuilt.get((r.kind, r.external_id)) for r in records],
        )
    )
    try:
        # Let the statement go out before the caller's work.
        await asyncio.sleep(0)
        if meanwhile is not None:
            meanwhile()
    except BaseException:
        # `meanwhile` failed with the rewrite under way: the connection must not be left mid-query.
        with contextlib.suppress(Exception):
            await update
        raise
    await update


# Rows whose URL, data and search vector stay as stored are rewritten without naming those columns, so the
# documents' row trigger (`update of url, data, search`) is not run for them: for such a row it writes nothing (the
# URL, declared size and words it compares are the same, and its document_texts row is there, which `kept` checks),
# and it cost PostgreSQL more than the row's rewrite. Both halves read the same snapshot, so every row is rewritten
# once, by one or the other; a changed search vector ($13 not null) always takes the full rewrite.
_UPDATE_ITEMS = """
    with t as (
        select t.*, coalesce(i.data::text = t.data::jsonb::text and i.url is not distinct from t.url
                             and t.search is null
                             and (i.kind <> 'document' or i.url is null
                                  or exists (select from document_texts d where d.item_id = i.id)), false) as kept
        from unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::text[],
                    $9::text[], $10::timestamptz[], $11::text[], $12::text[], $13::text[])
             as t(id, committee, committee_id, title, body, starts_at, status, url, published_at, data, content_hash,
                  search)
        join items i on i.id = t.id
    ), kept as (
        update items i
        set committee = t.committee, committee_id = t.committee_id, title = t.title, body = t.body,
            starts_at = t.starts_at, status = t.status, published_at = t.published_at, content_hash = t.content_hash,
            updated_at = $1
        from t
        where i.id = t.id and t.kept
    )
    update items i
    set committee = t.committee, committee_id = t.committee_id, title = t.title, body = t.body,
        starts_at = t.starts_at, status = t.status, url = t.url, published_at = t.published_at,
        data = t.data::jsonb, content_hash = t.content_hash, search = coalesce(t.search::tsvector, i.search),
        updated_at = $1
    from t
    where i.id = t.id and not t.kept
"""


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
