"""The queries that read a feed's rows: a page of its events, with what their entries show, or its meetings.
Which feed a URL names is `delivery/feed_urls.py`'s."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg

from notifier.delivery.calendars import meetings_matching
from notifier.delivery.feed_urls import FeedSpec
from notifier.ingest.briefs import briefs_for_events
from notifier.matching.documents import query_snippets
from notifier.matching.search import FILTERED_EVENTS, SINCE_EVER, filter_args
from notifier.topics.evaluate import Document, in_query_order, positive_terms
from notifier.topics.parse import QueryError, parse

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

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
