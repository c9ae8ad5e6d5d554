"""Which feed a URL names, and the one query that reads a feed's rows.

`resolve` turns a feed path and its query string into a `FeedSpec` (the filter, title, format and whether it is
public) with one query, which also reads the newest event id: the rendered bytes are cached under both, so a new
event anywhere makes the next request render again. The feed routes and the WebSub hub (a topic is a feed URL) both
resolve through here, so a topic follows exactly what its feed shows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from multidict import MultiMapping
from pydantic import ValidationError

from notifier.delivery.calendars import meetings_matching
from notifier.ingest.briefs import briefs_for_events
from notifier.matching.documents import query_snippets
from notifier.matching.search import FILTERED_EVENTS, SINCE_EVER, filter_args
from notifier.models import FilterModel
from notifier.subscriptions import FilterError, compile_query, describe_subscription
from notifier.topics.evaluate import Document, in_query_order, positive_terms
from notifier.topics.parse import QueryError, parse

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

FEED_PATH = re.compile(
    r"/feeds/(?:councils/(?P<slug>[a-z0-9-]+)(?:/committees/(?P<committee>[^/.]+))?|(?P<search>search)"
    r"|s/(?P<token>[A-Za-z0-9_-]+))\.(?P<fmt>atom|rss|json|ics)"
)


class FeedNotFound(LookupError):
    """No such council, committee or feed token."""


class FeedQueryError(ValueError):
    """A search feed's parameters that cannot be followed, with the position in the query when known."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


@dataclass(frozen=True)
class FeedSpec:
    kind: str  # council, committee, search, subscription
    fmt: str
    filter: FilterModel
    title: str
    public: bool
    path: str  # the feed's path, without paging parameters
    params: tuple[tuple[str, str], ...]  # the search parameters, canonical order
    latest: int  # the newest event id when resolved (0: none yet)

    @property
    def subtitle(self) -> str:
        return f"Council alerts: {describe_subscription(self.filter)}"


async def resolve(pool: asyncpg.Pool, path: str, query: MultiMapping[str]) -> FeedSpec:
    """The feed at `path` (`/feeds/...`) with `query`; FeedNotFound or FeedQueryError when there is none."""
    m = FEED_PATH.fullmatch(path)
    if m is None:
        raise FeedNotFound("not a feed URL: feeds are /feeds/councils/{slug}, /feeds/search or /feeds/s/{token}, "
                           "as .atom, .rss, .json or .ics")
    fmt = m["fmt"]
    if m["search"]:
        f, params = _search_filter(query)
        latest = await pool.fetchval("select coalesce(max(id), 0) from events")
        title = f"Search: {f.query}" if f.query else "Council alerts"
        return FeedSpec("search", fmt, f, title, True, path, params, latest)
    if m["token"]:
        row = await pool.fetchrow(
            """
            select query, councils, regions, committees, kinds, event_types,
                   (select coalesce(max(id), 0) from events) as latest
            from subscriptions where feed_token = $1
            """,
            m["token"],
        )
        if row is None:
            raise FeedNotFound("no such feed")
        f = FilterModel(**{k: v for k, v in dict(row).items() if k != "latest"})
        return FeedSpec("subscription", fmt, f, f"Council alerts: {describe_subscription(f)}", False, path, (),
                        row["latest"])
    return await _council_spec(pool, m, path)


async def _council_spec(pool: asyncpg.Pool, m: re.Match[str], path: str) -> FeedSpec:
    committee = m["committee"]
    row = await pool.fetchrow(
        """
        select c.slug, c.name,
               (select i.committee from items i where i.council = c.slug and i.committee_id = $2 limit 1) as committee,
               (select coalesce(max(id), 0) from events) as latest
        from councils c where c.slug = $1
        """,
        m["slug"], committee,
    )
    if row is None:
        raise FeedNotFound("no such council")
    if committee is None:
        return FeedSpec("council", m["fmt"], FilterModel(councils=[row["slug"]]), row["name"], True, path, (),
                        row["latest"])
    if row["committee"] is None:
        raise FeedNotFound("no such committee")
    f = FilterModel(councils=[row["slug"]], committees=[committee])
    return FeedSpec("committee", m["fmt"], f, f"{row['committee']}, {row['name']}", True, path, (), row["latest"])


def _search_filter(query: MultiMapping[str]) -> tuple[FilterModel, tuple[tuple[str, str], ...]]:
    try:
        f = FilterModel(
            query=query.get("q", ""),
            councils=query.getall("council", []),
            regions=query.getall("region", []),
            committees=query.getall("committee", []),
        )
    except ValidationError as e:
        err = e.errors()[0]
        raise FeedQueryError(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}") from e
    try:
        compile_query(f.query)
    except FilterError as e:
        raise FeedQueryError(f"bad query: {e}", e.position) from e
    params = tuple(
        ([("q", f.query)] if f.query else []) + [("council", c) for c in f.councils]
        + [("region", r) for r in f.regions] + [("committee", c) for c in f.committees]
    )
    return f, params


# The page of events: FILTERED_EVENTS ($1-$7) before event $8 (or from the newest), $9 rows; each with what its
# entry shows (the item's last change, the council's zone, the item's documents) and, when the feed has a query,
# the item's text for the matched terms.
_FEED_EVENTS = f"""
    select f.*, i.updated_at as item_updated_at, c.timezone,
           case when $1::text is null then null else i.body end as body,
           coalesce((select json_agg(json_build_object('title', d.title, 'url', d.url) order by d.id)
                     from items d where d.parent_id = f.item_id and d.kind = 'document' and d.url is not null),
                    '[]') as documents
    from ({FILTERED_EVENTS} and ($8::bigint is null or e.id < $8) order by e.id desc limit $9) f
    join items i on i.id = f.item_id
    join councils c on c.slug = f.council
    order by f.id desc
"""


async def load_events(
    pool: asyncpg.Pool, spec: FeedSpec, *, limit: int, before: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    """A page of the feed's events, newest first, and the id to continue before (None: no older entries)."""
    args = filter_args(spec.filter, SINCE_EVER)
    rows = [dict(r) for r in await pool.fetch(_FEED_EVENTS, *args, before, limit + 1)]
    more = len(rows) > limit
    rows = rows[:limit]
    if spec.filter.query:
        await _add_matched_terms(pool, spec.filter.query, rows)
    briefs = await briefs_for_events(pool, rows, now=datetime.now(UTC))
    for r in rows:
        if r["item_id"] in briefs:
            r["brief"] = briefs[r["item_id"]][0]
    return rows, (rows[-1]["id"] if more and rows else None)


async def _add_matched_terms(pool: asyncpg.Pool, query: str, rows: list[dict[str, Any]]) -> None:
    """Each entry's matched terms, and where in its papers they are (page snippets), as alerts show them."""
    try:
        q = parse(query)
    except QueryError:
        return
    in_papers = await query_snippets(pool, rows, q)
    for r in rows:
        doc = Document.from_text("\n".join(p for p in (r["title"], r["committee"] or "", r["body"] or "") if p))
        own: list[str] = []
        positive_terms(q, doc, own)
        hits = in_papers.get(r["id"])
        # a term may be only in the papers (an AND whose other half is in the title, or the whole topic)
        r["matched"] = in_query_order(q, own, hits.terms) if hits else own
        if hits:
            r["snippets"] = hits.snippets


async def load_meetings(pool: asyncpg.Pool, spec: FeedSpec, now: datetime) -> list[Mapping[str, Any]]:
    return await meetings_matching(pool, spec.filter, now)
