"""Matching change events to subscriptions: the `match_events` job's work.

Each worker keeps an in-memory percolator of every subscription's filter, built from PostgreSQL at start and kept
current by replaying `subscription_changes` before each batch (a subscription made through the API matches the very
next event). One matcher at a time advances the cursor over `events` (an advisory lock), writing deliveries with
ON CONFLICT DO NOTHING in the same transaction as the cursor move: a crash between the two loses nothing and a rerun
duplicates nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from notifier.delivery.schedule import next_send_time
from notifier.matching import documents
from notifier.matching.documents import EventDocuments
from notifier.settings import Settings
from notifier.topics.evaluate import Document, EventFacts, Filter
from notifier.topics.index import Percolator
from notifier.topics.parse import Query, QueryError, parse

log = logging.getLogger(__name__)

MATCH_LOCK_KEY = 0x6D617463  # "matc"
CURSOR_NAME = "match_events"
BATCH_SIZE = 500
# a council slug that cannot exist (slugs are [a-z0-9-]): a filter restricted to it matches nothing
NO_COUNCIL = "\x00none"


def filter_from_row(row: asyncpg.Record | dict[str, Any]) -> Filter:
    """The filter of one stored subscription row (id, query and the five value arrays)."""
    return FilterLoader().filter(row)


# A filter restricted to a council that cannot exist: what a query that no longer parses becomes.
_MATCHES_NOTHING = Filter(query=None, councils=frozenset({NO_COUNCIL}))


class FilterLoader:
    """Filters from stored subscription rows, sharing what rows have in common; one loader per load.

    Subscribers share queries (many follow "dementia", many more a council with no query): rows with the same
    query text and value arrays get the same `Filter` object, so the percolator files it once and only appends the
    subscription id; each distinct query text is parsed once and each distinct value array becomes one frozenset.
    The caches live as long as the loader: drop it after the load.
    """

    __slots__ = ("_filters", "_queries", "_sets")

    def __init__(self) -> None:
        self._filters: dict[tuple[Any, ...], Filter] = {}
        self._queries: dict[str, Query | QueryError] = {}
        self._sets: dict[tuple[str, ...], frozenset[str]] = {(): frozenset()}

    def filter(self, row: asyncpg.Record | dict[str, Any]) -> Filter:
        text = row["query"] or ""
        key = (
            text, tuple(row["councils"]), tuple(row["regions"]), tuple(row["committees"]), tuple(row["kinds"]),
            tuple(row["event_types"]),
        )
        f = self._filters.get(key)
        if f is None:
            query = self._query(text) if text else None
            if isinstance(query, QueryError):
                f = _MATCHES_NOTHING
            else:
                councils, regions, committees, kinds, event_types = map(self._set, key[1:])
                f = Filter(query, councils, regions, committees, kinds, event_types)
            self._filters[key] = f
        if f is _MATCHES_NOTHING:
            # stored queries are validated on the way in; one that no longer parses (a stricter parser) matches
            # nothing rather than everything
            log.error("subscription %s has an unparseable query %r; it matches nothing", row["id"], text)
        return f

    def _query(self, text: str) -> Query | QueryError:
        found = self._queries.get(text)
        if found is None:
            try:
                found = parse(text)
            except QueryError as e:
                found = e
            self._queries[text] = found
        return found

    def _set(self, values: tuple[str, ...]) -> frozenset[str]:
        found = self._sets.get(values)
        if found is None:
            found = self._sets[values] = frozenset(values)
        return found


_SUBSCRIPTION_FILTER_COLUMNS = "id, query, councils, regions, committees, kinds, event_types"
# Rows fetched at a time while loading: enough that a round trip is amortised, few enough that the rows in flight
# never rival the index in memory (a million fetched at once would be half a gigabyte of records).
LOAD_CHUNK = 5000
# Recent events observed before loading, for the percolator's term and value frequency estimates: filters are then
# filed under the terms that are rare in real events rather than under guesses.
WARMUP_EVENTS = 500
# Seconds within which a subscription change may still commit after changes numbered after it (a transaction that
# writes a subscription and runs on for longer than this could see its change missed by workers until restart).
LATE_COMMIT = 300.0


@dataclass
class SubscriptionIndex:
    """A worker's percolator over every subscription that can receive deliveries, and where it has read up to."""

    percolator: Percolator = field(default_factory=Percolator)
    # Changes up to `last_change` are applied for good; those after it that were applied are in `_applied`, with
    # when (loop-independent monotonic seconds), and are read again until they are older than LATE_COMMIT.
    last_change: int = 0
    loaded: bool = False
    _applied: dict[int, float] = field(default_factory=dict)

    async def refresh(self, conn: asyncpg.Connection | asyncpg.Pool) -> int:
        """Load everything on first use, then apply the changes since; returns how many subscriptions changed."""
        if not self.loaded:
            if isinstance(conn, asyncpg.Pool):
                async with conn.acquire() as c:
                    return await self._load(c)
            return await self._load(conn)
        # A change's seq is taken when its transaction writes it but is seen only once it commits, so a change with a
        # lower seq can appear after a higher one was read. The changes of the last LATE_COMMIT are therefore read
        # again each time, and those not applied yet are applied now.
        now = time.monotonic()
        changes = [
            c
            for c in await conn.fetch(
                "select seq, subscription_id from subscription_changes where seq > $1 order by seq", self.last_change
            )
            if c["seq"] not in self._applied
        ]
        for c in changes:
            self._applied[c["seq"]] = now
        settled = [seq for seq, at in self._applied.items() if now - at > LATE_COMMIT]
        if settled:
            self.last_change = max(settled)
            self._applied = {seq: at for seq, at in self._applied.items() if seq > self.last_change}
        if not changes:
            return 0
        ids = sorted({c["subscription_id"] for c in changes})
        rows = await conn.fetch(
            f"""
            select {_SUBSCRIPTION_FILTER_COLUMNS} from subscriptions
            where id = any($1::bigint[]) and channel in ('email', 'webhook', 'websub')
            """,
            ids,
        )
        current = {r["id"]: r for r in rows}
        for sub_id in ids:
            self.percolator.remove(sub_id)
            if sub_id in current:
                self.percolator.add(sub_id, filter_from_row(current[sub_id]))
        return len(ids)

    async def _load(self, conn: asyncpg.Connection) -> int:
        """Every subscription, streamed through a cursor and filed as the rows arrive.

        The rows go into a new percolator that replaces the current one only once all are in: a load that fails
        half-way leaves nothing behind, and the next refresh starts again from scratch.
        """
        percolator = Percolator()
        for row in await conn.fetch(_RECENT_EVENTS, WARMUP_EVENTS):
            percolator.observe(event_facts(row))
        loader = FilterLoader()
        count = 0
        async with conn.transaction():  # a cursor lives in a transaction
            # Read before the rows, and only as far as the changes older than LATE_COMMIT (a younger one may have
            # committed after a higher seq, see `refresh`): the changes after it are replayed by the next refresh,
            # and replaying one the rows already show is harmless (remove, then add the current row).
            last_change = await conn.fetchval(
                """
                select coalesce((select seq from subscription_changes where at < now() - $1::interval
                                 order by seq desc limit 1), 0)
                """,
                timedelta(seconds=LATE_COMMIT),
            )
            cursor = await conn.cursor(
                f"""
                select {_SUBSCRIPTION_FILTER_COLUMNS} from subscriptions
                where channel in ('email', 'webhook', 'websub')
                """
            )
            # The collector stays paused for the whole load, other tasks of the process included (up to half a
            # minute for a million subscriptions, once at start): its collections would walk the growing index
            # again and again.
            with percolator.bulk():
                add, make = percolator.add, loader.filter
                while rows := await cursor.fetch(LOAD_CHUNK):
                    for row in rows:
                        add(row["id"], make(row))
                    count += len(rows)
        self.percolator, self.last_change, self._applied, self.loaded = percolator, last_change, {}, True
        return count


def event_document(row: asyncpg.Record | dict[str, Any], documents_text: str = "") -> Document:
    """The text an event is matched on: its item's title, committee and text, the council's name, and the text of
    its documents (see `notifier.matching.documents`)."""
    parts = [row["title"], row["committee"] or "", row["council_name"], row["body"] or "", documents_text]
    return Document.from_text("\n".join(p for p in parts if p))


def event_facts(row: asyncpg.Record | dict[str, Any], documents_text: str = "") -> EventFacts:
    return EventFacts(
        council=row["council"],
        region=row["region"],
        committee=row["committee"],
        committee_id=row["committee_id"],
        kind=row["kind"],
        event_type=row["type"],
        doc=event_document(row, documents_text),
    )


_EVENTS = """
    select e.id, e.type, e.council, e.occurred_at, e.item_id, e.changes, i.kind, i.title, i.body, i.committee,
           i.committee_id, c.name as council_name, c.region
    from events e
    join items i on i.id = e.item_id
    join councils c on c.slug = e.council
"""
_EVENTS_AFTER = _EVENTS + " where e.id > $1 order by e.id limit $2"
_RECENT_EVENTS = _EVENTS + " order by e.id desc limit $1"
_HELD_EVENTS = _EVENTS + " where e.id = any($1::bigint[]) order by e.id"


@dataclass
class MatchResult:
    events: int = 0
    deliveries: int = 0
    held: int = 0  # events held back, waiting for their documents' text
    skipped: str | None = None


async def match_events(
    pool: asyncpg.Pool, index: SubscriptionIndex, settings: Settings, *, now: datetime | None = None
) -> MatchResult:
    """Match every event after the cursor, and the held events whose documents are now in (or whose wait ran out);
    write deliveries; move the cursor. One caller at a time does work."""
    result = MatchResult()
    wait = timedelta(seconds=settings.document_text_wait_seconds)
    async with pool.acquire() as conn:
        if not await conn.fetchval("select pg_try_advisory_lock($1)", MATCH_LOCK_KEY):
            result.skipped = "another matcher is running"
            return result
        try:
            await conn.execute(
                "insert into cursors (name, position) values ($1, 0) on conflict (name) do nothing", CURSOR_NAME
            )
            await index.refresh(conn)
            async with conn.transaction():
                held = await conn.fetch(_HELD_EVENTS, await documents.held_event_ids(conn))
                result.deliveries += await _write_deliveries(conn, index, held, settings, now=now, wait=wait,
                                                             were_held=True)
            while True:
                await index.refresh(conn)
                async with conn.transaction():
                    cursor = await conn.fetchval("select position from cursors where name = $1 for update", CURSOR_NAME)
                    events = await conn.fetch(_EVENTS_AFTER, cursor, BATCH_SIZE)
                    if not events:
                        break
                    result.deliveries += await _write_deliveries(conn, index, events, settings, now=now, wait=wait)
                    result.events += len(events)
                    await conn.execute(
                        "update cursors set position = $2, updated_at = now() where name = $1",
                        CURSOR_NAME,
                        events[-1]["id"],
                    )
                if len(events) < BATCH_SIZE:
                    break
            result.held = await conn.fetchval("select count(*) from held_events")
        finally:
            await conn.execute("select pg_advisory_unlock($1)", MATCH_LOCK_KEY)
    return result


# A match: subscription, event, the matched terms, where in the event's documents they were found.
_Pair = tuple[int, int, list[str], list[dict[str, Any]]]
# A delivery to write: subscription, event, status, when it is due, the matched terms, the snippets.
_DeliveryRow = tuple[int, int, str, datetime, list[str], list[dict[str, Any]]]


async def _write_deliveries(
    conn: asyncpg.Connection, index: SubscriptionIndex, events: Sequence[asyncpg.Record], settings: Settings, *,
    now: datetime | None, wait: timedelta, were_held: bool = False,
) -> int:
    """Match a batch of events and insert their deliveries; returns how many rows were new.

    An event whose documents' text is still coming is held back (`held_events`) rather than matched; events that
    `were_held` and are matched now are released.
    """
    docs = await documents.event_documents(conn, events)
    moment = now or datetime.now(UTC)
    waiting = [ev for ev in events if documents.must_wait(ev["occurred_at"], docs.get(ev["id"]), now=moment,
                                                          wait=wait)]  # fmt: skip
    await documents.hold_events(conn, [(ev["id"], ev["occurred_at"] + wait) for ev in waiting])
    held = {ev["id"] for ev in waiting}
    ready = [ev for ev in events if ev["id"] not in held]
    if were_held:
        await documents.release_events(conn, [ev["id"] for ev in ready])
    pairs = _match_batch(index, ready, docs)
    if not pairs:
        return 0
    recipients = await _recipients(conn, sorted({p[0] for p in pairs}))
    rows = _delivery_rows(pairs, recipients, ready, settings)
    if not rows:
        return 0
    return await _insert_deliveries(conn, rows)


def _match_batch(
    index: SubscriptionIndex, events: Sequence[asyncpg.Record], docs: dict[int, EventDocuments]
) -> list[_Pair]:
    """(subscription, event, matched terms, snippets) for every match in the batch."""
    pairs: list[_Pair] = []
    for ev in events:
        found = docs.get(ev["id"])
        facts = event_facts(ev, found.text if found is not None else "")
        # The answer comes in chunks of equal terms: snippets are looked up once per chunk, not per subscription
        # (the lists are shared by the chunk's pairs and never changed).
        for terms, ids in index.percolator.matches(facts).by_terms():
            snippets = found.snippets(terms) if found is not None and terms else []
            listed = list(terms)
            pairs += [(sub_id, ev["id"], listed, snippets) for sub_id in ids]
    return pairs


async def _recipients(conn: asyncpg.Connection, sub_ids: list[int]) -> dict[int, asyncpg.Record]:
    """The matched subscriptions still stored, with what decides whether and when their owners hear."""
    subs = await conn.fetch(
        """
        select s.id, s.channel, s.frequency, s.hour, s.weekday, s.created_at, s.paused_until, s.confirmed_at,
               b.status as subscriber_status, b.timezone, w.status as endpoint_status, w.lease_expires_at
        from subscriptions s
        left join subscribers b on b.id = s.subscriber_id
        left join webhook_endpoints w on w.id = s.endpoint_id
        where s.id = any($1::bigint[])
        """,
        sub_ids,
    )
    return {s["id"]: s for s in subs}


def _delivery_rows(
    pairs: list[_Pair],
    by_id: dict[int, asyncpg.Record],
    events: Sequence[asyncpg.Record],
    settings: Settings,
) -> list[_DeliveryRow]:
    """Who may hear of what: a live subscription made before the event, whose owner can receive it."""
    occurred = {ev["id"]: ev["occurred_at"] for ev in events}
    rows: list[_DeliveryRow] = []
    for sub_id, event_id, terms, snippets in pairs:
        s = by_id.get(sub_id)
        when = occurred[event_id]
        if s is None or s["created_at"] > when:
            continue  # deleted since, or made after the event: no flood of the past
        status = _eligibility(s, when)
        if status is None:
            continue
        rows.append((sub_id, event_id, status, _due(s, when, settings), terms, snippets))
    return rows


def _due(s: asyncpg.Record, when: datetime, settings: Settings) -> datetime:
    """When a delivery of an event that happened at `when` is due to go out."""
    if s["channel"] != "email":
        return when
    return next_send_time(
        s["frequency"],
        after=when,
        timezone=s["timezone"] or settings.default_timezone,
        hour=s["hour"] if s["hour"] is not None else settings.digest_hour,
        weekday=s["weekday"] if s["weekday"] is not None else settings.weekly_day,
        batch_seconds=settings.alert_batch_seconds,
    )


async def _insert_deliveries(conn: asyncpg.Connection, rows: list[_DeliveryRow]) -> int:
    inserted = await conn.fetch(
        """
        insert into deliveries (subscription_id, event_id, status, next_attempt_at, matched_terms, snippets)
        select t.sub, t.ev, t.status, t.due, coalesce(
                   (select array_agg(x) from jsonb_array_elements_text(t.terms::jsonb) x), '{}'), t.snippets::jsonb
        from unnest($1::bigint[], $2::bigint[], $3::text[], $4::timestamptz[], $5::text[], $6::text[])
             as t(sub, ev, status, due, terms, snippets)
        on conflict (subscription_id, event_id) do nothing
        returning id
        """,
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
        [_json_list(r[4]) for r in rows],
        [json.dumps(r[5]) for r in rows],
    )
    return len(inserted)


def _json_list(values: list[str]) -> str:
    return json.dumps(values)


def _eligibility(s: asyncpg.Record, when: datetime) -> str | None:
    """`pending` to send, `skipped` to record but not send (paused), None to write nothing."""
    if s["channel"] == "email":
        if s["subscriber_status"] != "active" or s["confirmed_at"] is None:
            return None
    elif s["channel"] == "webhook":
        if s["endpoint_status"] != "active":
            return None
    elif s["channel"] == "websub":
        if s["endpoint_status"] != "active" or s["lease_expires_at"] <= when:
            return None
    else:
        return None
    if s["paused_until"] is not None and s["paused_until"] > when:
        return "skipped"
    return "pending"
