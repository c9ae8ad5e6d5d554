"""Claimed batches of deliveries made ready to send: what they need, read in one query; what must not be sent, and
why; and what each email says, rendered from the rows.

Rules kept here: only active, confirmed subscribers are mailed; a suppressed address is never mailed, nor a paused
subscription. A delivery skipped for one of these reasons is marked so, with the reason.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from jinja2 import Environment

from notifier import subscriptions as subs
from notifier.delivery import outbox
from notifier.delivery.email.render import render_alert, render_digest, render_weekly
from notifier.delivery.email.views import EntryView, Following, Links, Rendered, SourceWarning, WeeklyCouncil
from notifier.delivery.email.words import describe_event, documents_from_changes
from notifier.ingest.briefs import briefs_for_events
from notifier.topics.highlight import make_excerpt

# A council whose source has failed this many polls in a row is named in emails as possibly missing updates.
FAILING_SOURCE_STREAK = 3
# Gmail clips messages over ~100 KB: an email lists at most this many entries.
MAX_ENTRIES = 100
WEEKLY_SECTION_LIMIT = 30
# A decision's text read for its excerpt (EXCERPT_CHARS of it, whitespace folded): enough, without the whole text.
DECISION_TEXT_CHARS = 2000


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A claimed batch with what sending it needs: its subscriber and its deliveries still to send."""

    batch: outbox.ClaimedBatch
    subscriber_id: int
    email: str
    timezone: str | None
    rows: list[asyncpg.Record]
    claimed_at: float  # time.monotonic() when claimed
    failing: Mapping[str, SourceWarning]  # councils whose feeds are failing, by slug


async def prepare(
    pool: asyncpg.Pool, batches: list[outbox.ClaimedBatch], now: datetime, claimed_at: float
) -> list[PreparedBatch]:
    """Read what the claimed batches need in one query; skip what must not be sent (and say why)."""
    rows = await pool.fetch(_BATCH_ROWS, [i for b in batches for i in b.delivery_ids])
    batch_of = {i: n for n, b in enumerate(batches) for i in b.delivery_ids}
    rows_of: list[list[asyncpg.Record]] = [[] for _ in batches]
    for r in rows:  # in the query's order, which is the email's
        rows_of[batch_of[r["delivery_id"]]].append(r)
    failing = await _failing(pool, sorted({r["council"] for r in rows}))
    skipped: dict[str, list[int]] = {}
    work = []
    for batch, found in zip(batches, rows_of, strict=True):
        gone = sorted(set(batch.delivery_ids) - {r["delivery_id"] for r in found})
        if gone:
            skipped.setdefault("subscription deleted", []).extend(gone)
        if not found:
            continue
        first = found[0]
        if first["suppressed"] or first["subscriber_status"] != "active":
            reason = "address suppressed" if first["suppressed"] else "subscriber not active"
            skipped.setdefault(reason, []).extend(r["delivery_id"] for r in found)
            continue
        live = []
        for r in found:
            if r["confirmed_at"] is None:
                skipped.setdefault("subscription not confirmed", []).append(r["delivery_id"])
            elif r["paused_until"] is not None and r["paused_until"] > now:
                skipped.setdefault("subscription paused", []).append(r["delivery_id"])
            else:
                live.append(r)
        if live:
            work.append(PreparedBatch(
                batch, first["subscriber_id"], first["email"], first["timezone"], live, claimed_at, failing
            ))
    for reason, ids in skipped.items():
        await outbox.mark_final(pool, ids, status="skipped", error=reason)
    return work


def content_key(work: PreparedBatch, tz: str, subscription_ids: Sequence[int], now: datetime) -> Hashable:
    """Everything the rendered content depends on, except the recipient's own links."""
    filters: dict[int, tuple[object, ...]] = {}
    for r in work.rows:  # a digest's rows are mostly one subscription's: its filter read once
        if r["subscription_id"] not in filters:
            filters[r["subscription_id"]] = (
                r["query"], *(tuple(r[k]) for k in ("councils", "regions", "committees", "kinds", "event_types"))
            )
    return (
        work.batch.frequency,
        tz,
        now.astimezone(ZoneInfo(tz)).date(),
        tuple((r["event_id"], tuple(r["matched_terms"] or ())) for r in work.rows),
        tuple(filters[s] for s in subscription_ids),
    )


async def render_batch(
    pool: asyncpg.Pool, env: Environment, work: PreparedBatch, *, tz: str, subscription_ids: Sequence[int],
    now: datetime, links: Links, stops: Sequence[str | None], base_url: str = "",
    kept: KeptEntries | None = None,
) -> Rendered:
    """The email for a prepared batch in the subscriber's zone `tz`: an alert, a digest or a weekly summary, by its
    frequency; `links` and `stops` (each subscription's stop link, or None) are the recipient's links. `kept` holds
    the entries a pass has built so far, to be used again."""
    rows = work.rows
    names = {r["council"]: r["council_name"] for r in rows}
    following = []
    for sub_id, stop in zip(subscription_ids, stops, strict=True):
        row = next(r for r in rows if r["subscription_id"] == sub_id)
        following.append(Following(subs.describe_subscription(row, names), work.batch.frequency, stop))
    warnings = sorted((work.failing[c] for c in names if c in work.failing), key=lambda w: w.council)
    # an event that several of the subscriber's subscriptions matched is listed once, with all their terms
    first: dict[int, asyncpg.Record] = {}
    terms: dict[int, list[str]] = {}
    snippets: dict[int, list[tuple[str, int, str]]] = {}
    for r in rows:
        first.setdefault(r["event_id"], r)
        seen = terms.setdefault(r["event_id"], [])
        seen += [t for t in r["matched_terms"] or () if t not in seen]
        places = snippets.setdefault(r["event_id"], [])
        places += [s for s in _snippets(r) if s not in places]
    events = list(first.values())[:MAX_ENTRIES]
    entries = await _entries(pool, events, tz, terms, snippets, now=now, base_url=base_url, kept=kept)
    if work.batch.frequency == "weekly":
        councils = await _weekly(pool, events, entries, warnings, now, base_url)
        week_start = now.astimezone(ZoneInfo(tz)).date() - timedelta(days=7)
        return render_weekly(councils, week_start=week_start, links=links, following=following, timezone=tz,
                             env=env)
    if work.batch.frequency == "daily":
        day = now.astimezone(ZoneInfo(tz)).date()
        return render_digest(entries, day=day, links=links, following=following, warnings=warnings, timezone=tz,
                             env=env)
    return render_alert(entries, links=links, following=following, warnings=warnings, timezone=tz, env=env)


# Entries a pass keeps (see `KeptEntries`): a bound on its memory, far above a day's events.
KEPT_ENTRIES = 20_000
# What an entry is built from besides its event: the zone, the terms and snippets, and whether its meeting was held.
EntryKey = tuple[int, str, tuple[str, ...], tuple[tuple[str, int, str], ...], bool]


class KeptEntries(dict[EntryKey, EntryView]):
    """The entries a sending pass has built (views with their briefs), by event and what else they depend on, and
    the events' rows they were built from (`events`, by event id).

    Within a pass an event is taken to stay as it was read, as the rendered contents the pass keeps already take it
    to; personal digests list the same few hundred events in thousands of different combinations, and each entry
    costs its row, its JSON, its words, its excerpt and the briefs' queries."""

    def __init__(self) -> None:
        super().__init__()
        self.events: dict[int, asyncpg.Record] = {}

    def clear(self) -> None:
        super().clear()
        self.events.clear()


async def _entries(
    pool: asyncpg.Pool, events: list[asyncpg.Record], tz: str, terms: Mapping[int, list[str]],
    snippets: Mapping[int, list[tuple[str, int, str]]], *, now: datetime, base_url: str, kept: KeptEntries | None,
) -> list[EntryView]:
    """The entries for `events` (one row each), those `kept` has taken from it, the others built (and kept)."""
    keys: list[EntryKey] = [
        (r["event_id"], tz, tuple(terms[r["event_id"]]), tuple(snippets[r["event_id"]]),
         r["starts_at"] is not None and r["starts_at"] < now)
        for r in events
    ]
    found = [kept.get(k) if kept is not None else None for k in keys]
    missing = [i for i, view in enumerate(found) if view is None]
    if missing:
        rows = [events[i] for i in missing]
        if kept is not None and len(kept) + len(rows) > KEPT_ENTRIES:
            kept.clear()
        details = await _event_rows(pool, [r["event_id"] for r in rows], kept)
        built = [entry_view(details[r["event_id"]], tz, terms[r["event_id"]], snippets[r["event_id"]]) for r in rows]
        built = await with_briefs(pool, rows, built, now=now, base_url=base_url)
        for i, view in zip(missing, built, strict=True):
            found[i] = view
            if kept is not None:
                kept[keys[i]] = view
    return [view for view in found if view is not None]


async def _event_rows(pool: asyncpg.Pool, ids: list[int], kept: KeptEntries | None) -> Mapping[int, asyncpg.Record]:
    """The rows `entry_view` reads for these events, those `kept` has not read yet read now (and kept)."""
    found: dict[int, asyncpg.Record] = kept.events if kept is not None else {}
    wanted = [i for i in ids if i not in found]
    if wanted:
        found.update((r["event_id"], r) for r in await pool.fetch(_EVENT_ROWS, wanted))
    return found


def _snippets(r: asyncpg.Record) -> Sequence[tuple[str, int, str]]:
    """A delivery's snippets (`deliveries.snippets`: where in the event's documents its terms were found)."""
    # `_BATCH_ROWS` reads them as text: the pool's jsonb codec would parse every row's afresh
    value = r["snippets"]
    return _parsed_snippets(value) if isinstance(value, str) else _read_snippets(value or [])


# Read once for each distinct text: most deliveries' are the same few ("[]" for those without terms).
@functools.lru_cache(maxsize=4096)
def _parsed_snippets(value: str) -> tuple[tuple[str, int, str], ...]:
    return _read_snippets(json.loads(value) or [])


def _read_snippets(found: Any) -> tuple[tuple[str, int, str], ...]:
    return tuple((str(s.get("document") or ""), int(s["page"]), str(s["text"])) for s in found)


def entry_view(
    r: asyncpg.Record, tz: str, terms: list[str], snippets: Sequence[tuple[str, int, str]] = ()
) -> EntryView:
    """One matched event's row as an email shows it; `terms` are the query terms it matched, for highlighting and
    the excerpt, and `snippets` where in its documents they were found."""
    return EntryView(
        event_type=r["type"],
        council=r["council_name"],
        title=r["title"],
        what=describe_event(r["type"], r["changes"], timezone=tz),
        summary=r["summary"],
        committee=r["committee"],
        url=r["url"],
        when=r["starts_at"],
        time_known=(r["data"] or {}).get("time_known", True) is not False,
        documents=documents_from_changes(r["changes"]),
        matched_terms=terms,
        # a decision says what was decided in its own words; other items only around the matched terms
        excerpt=make_excerpt(r["body"] or "", terms) if terms or r["kind"] == "decision" else "",
        snippets=snippets,
    )


async def _failing(pool: asyncpg.Pool, councils: list[str]) -> dict[str, SourceWarning]:
    """The councils (of these) whose feed has been failing, with what to say about it."""
    rows = await pool.fetch(
        """
        select c.slug, c.name, min(coalesce(s.last_success_at, s.created_at)) as since,
               max(s.last_error) as detail
        from sources s join councils c on c.slug = s.council
        where s.council = any($1) and s.enabled and s.consecutive_failures >= $2
        group by c.slug, c.name
        """,
        councils, FAILING_SOURCE_STREAK,
    )
    return {r["slug"]: SourceWarning(r["name"], r["since"], r["detail"] or "") for r in rows}


async def with_briefs(
    pool: asyncpg.Pool, rows: Sequence[Mapping[str, Any]], entries: list[EntryView], *, now: datetime,
    base_url: str,
) -> list[EntryView]:
    """Entries with what their papers say: a coming meeting's purposes and recommendations, a held one's
    resolutions, a report's own purpose and recommendations; meetings link to their page here once they have
    papers, and a report to its meeting's page."""
    found = await briefs_for_events(pool, rows, now=now)
    out = []
    for r, entry in zip(rows, entries, strict=True):
        if r["item_id"] in found:
            lines, meeting_id = found[r["item_id"]]
            page = f"{base_url}/meetings/{meeting_id}" if base_url and meeting_id is not None else None
            entry = replace(entry, brief=lines, page_url=page)
        out.append(entry)
    return out


async def _weekly(
    pool: asyncpg.Pool, rows: Sequence[asyncpg.Record], entries: list[EntryView], warnings: list[SourceWarning],
    now: datetime, base_url: str = "",
) -> list[WeeklyCouncil]:
    """Each followed council's week: the matched events, and for whole-council subscriptions the council's
    meetings held and coming, decisions and documents from its items."""
    by_council: dict[str, dict[str, list[EntryView]]] = {}
    seen: set[tuple[int, str]] = set()  # an item already in a section as an event is not listed there again
    for r, entry in zip(rows, entries, strict=False):
        section = _weekly_section(r["type"], r["starts_at"], now)
        by_council.setdefault(r["council"], {}).setdefault(section, []).append(entry)
        seen.add((r["item_id"], section))
    names = {r["council"]: r["council_name"] for r in rows}
    whole = sorted({c for r in rows if not r["query"] for c in (r["councils"] or [r["council"]])})
    if whole:
        week = await pool.fetch(_WEEK_ITEMS, whole, now - timedelta(days=7), now + timedelta(days=7),
                                WEEKLY_SECTION_LIMIT, now, DECISION_TEXT_CHARS)
        items = [i for i in week if (i["id"], i["section"]) not in seen]
        views = [
            EntryView(
                event_type=_ITEM_EVENT[item["kind"]], council=item["council_name"], title=item["title"],
                what=item["status"] or "", committee=item["committee"], url=item["url"], when=item["starts_at"],
                # a decision in the council's words, as its alert gives it
                excerpt=make_excerpt(item["body"] or "", []) if item["kind"] == "decision" else "",
            )
            for item in items
        ]
        rows_for_briefs = [{"kind": i["kind"], "item_id": i["id"], "starts_at": i["starts_at"]} for i in items]
        views = await with_briefs(pool, rows_for_briefs, views, now=now, base_url=base_url)
        for item, view in zip(items, views, strict=True):
            names.setdefault(item["council"], item["council_name"])
            by_council.setdefault(item["council"], {}).setdefault(item["section"], []).append(view)
    warning_for = {w.council: w for w in warnings}
    return [
        WeeklyCouncil(
            names[c], upcoming=s.get("upcoming", []), held=s.get("held", []), decisions=s.get("decisions", []),
            documents=s.get("documents", []), warning=warning_for.get(names[c]),
        )
        for c, s in sorted(by_council.items(), key=lambda kv: names[kv[0]])
    ]


def _weekly_section(event_type: str, starts_at: datetime | None, now: datetime) -> str:
    if event_type.startswith("decision."):
        return "decisions"
    if event_type.startswith("meeting."):
        return "upcoming" if starts_at is not None and starts_at >= now else "held"
    return "documents"


_ITEM_EVENT = {
    "meeting": "meeting.scheduled",
    "decision": "decision.published",
    "document": "document.published",
    "agenda_item": "agenda.published",
}

# What a claimed set of deliveries needs, in the order emails list them. What an entry shows of its event (the
# item's text, the changes) is read by `_EVENT_ROWS`, once an event a pass: a digest's events are a day's few
# hundred, and their text, read with each delivery, was most of what the rows carried.
_BATCH_ROWS = """
    select d.id as delivery_id, d.subscription_id, d.matched_terms, d.snippets::text as snippets, e.id as event_id,
           e.type,
           e.council, c.name as council_name, i.id as item_id, i.kind, i.starts_at,
           s.query, s.councils, s.regions, s.committees, s.kinds, s.event_types, s.confirmed_at,
           s.paused_until, b.id as subscriber_id, b.email, b.status as subscriber_status, b.timezone,
           exists (select 1 from suppressions x where x.email = lower(b.email)) as suppressed
    from deliveries d
    join subscriptions s on s.id = d.subscription_id
    join subscribers b on b.id = s.subscriber_id
    join events e on e.id = d.event_id
    join items i on i.id = e.item_id
    join councils c on c.slug = e.council
    where d.id = any($1::bigint[])
    order by c.name, i.committee nulls last, coalesce(i.starts_at, e.occurred_at), e.id
"""

# What an entry shows of each event, by event id (`entry_view` reads these columns).
_EVENT_ROWS = """
    select e.id as event_id, e.type, e.changes, e.summary, e.council, c.name as council_name, i.id as item_id, i.kind,
           i.title, i.body, i.committee, i.starts_at, i.url, i.data
    from events e
    join items i on i.id = e.item_id
    join councils c on c.slug = e.council
    where e.id = any($1::bigint[])
"""

# A council's week from its items: meetings in the past 7 days (held) and the next 7 (upcoming), decisions and
# documents first seen in the past 7 days; a decision's text only as far as its excerpt can reach.
_WEEK_ITEMS = """
    select * from (
        select i.id, i.kind, i.council, c.name as council_name, i.title, i.committee, i.starts_at, i.url, i.status,
               case when i.kind = 'decision' then left(i.body, $6) end as body,
               case
                   when i.kind = 'meeting' and i.starts_at >= $5 then 'upcoming'
                   when i.kind = 'meeting' then 'held'
                   when i.kind = 'decision' then 'decisions'
                   else 'documents'
               end as section,
               row_number() over (partition by i.council, i.kind order by i.starts_at, i.id) as n
        from items i join councils c on c.slug = i.council
        where i.council = any($1)
          and (
              (i.kind = 'meeting' and i.starts_at >= $2 and i.starts_at < $3 and coalesce(i.status, '') <> 'cancelled')
              or (i.kind in ('decision', 'document') and i.first_seen_at >= $2 and i.first_seen_at <= $5)
          )
    ) x
    where n <= $4
    order by council_name, committee nulls last, starts_at
"""
