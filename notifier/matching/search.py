"""History search: the topic language compiled to a PostgreSQL tsquery over items, for feeds, the API and previews.

The `items.search` column is built by the same tokeniser as the in-memory matcher (topics.text.tsvector_literal), so
both give the same answers; tests hold them to it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from notifier.matching.documents import query_snippets
from notifier.models import FilterModel
from notifier.subscriptions import FilterError, compile_query
from notifier.topics.parse import Query, QueryError, parse

PREVIEW_DAYS = 30
PREVIEW_LIMIT = 50


def parsed_query(query: str) -> Query | None:
    """The parsed query, or None when it is empty (matches everything); raises `FilterError` like `compile_query`."""
    if not query.strip():
        return None
    try:
        return parse(query)
    except QueryError as e:
        raise FilterError("query", str(e), getattr(e, "position", None)) from e


# Events joined to items and councils, restricted by a filter. $1 tsquery (or null), $2 councils, $3 regions,
# $4 committees, $5 kinds, $6 event types, $7 since.
FILTERED_EVENTS = """
    select e.id, e.type, e.council, c.name as council_name, e.occurred_at, e.summary, e.changes,
           i.id as item_id, i.kind, i.title, i.committee, i.starts_at, i.status, i.url
    from events e
    join items i on i.id = e.item_id
    join councils c on c.slug = e.council
    where e.occurred_at >= $7
      and ($1::text is null or i.search @@ $1::tsquery or (e.changes ? 'documents' and exists (
          -- a meeting's event that published documents is found by their text too (notifier.matching.documents)
          select 1
          from (select i.id union all select a.id from items a where a.parent_id = i.id) p
          join items d on d.parent_id = p.id
          where d.kind = 'document' and d.search @@ $1::tsquery
            and d.url in (select x ->> 'url' from jsonb_array_elements(e.changes -> 'documents' -> 1) x)
      )))
      and (cardinality($2::text[]) = 0 and cardinality($3::text[]) = 0
           or e.council = any($2) or c.region = any($3))
      and (cardinality($4::text[]) = 0 or i.committee = any($4) or i.committee_id = any($4))
      and (cardinality($5::text[]) = 0 or i.kind = any($5))
      and (cardinality($6::text[]) = 0 or e.type = any($6))
"""


def filter_args(f: FilterModel, since: datetime) -> list[Any]:
    return [
        compile_query(f.query),
        f.councils,
        f.regions,
        f.committees,
        [k.value for k in f.kinds],
        [e.value for e in f.event_types],
        since,
    ]


async def preview_filter(pool: asyncpg.Pool, f: FilterModel, *, now: datetime | None = None) -> dict[str, Any]:
    """What a filter would have matched in the last 30 days, and how many a week that makes."""
    now = now or datetime.now(UTC)
    since = now - timedelta(days=PREVIEW_DAYS)
    args = filter_args(f, since)
    total = await pool.fetchval(f"select count(*) from ({FILTERED_EVENTS}) m", *args)
    rows = await pool.fetch(f"{FILTERED_EVENTS} order by e.occurred_at desc, e.id desc limit {PREVIEW_LIMIT}", *args)
    weekly = round(total * 7 / PREVIEW_DAYS, 1)
    snippets = await query_snippets(pool, rows, parsed_query(f.query))
    return {
        "items": [{**dict(r), "snippets": hits.snippets if (hits := snippets.get(r["id"])) else []} for r in rows],
        "total": total,
        "days": PREVIEW_DAYS,
        "weekly_estimate": weekly,
        "warning": _volume_warning(weekly),
    }


def _volume_warning(weekly: float) -> str | None:
    if weekly >= 200:
        return f"about {weekly:.0f} alerts a week: consider a narrower topic or a daily or weekly digest"
    if weekly >= 50:
        return f"about {weekly:.0f} alerts a week: a daily digest may suit this better"
    return None


# Events older than any feed reaches back for (archive pages walk back by event id, not by date).
SINCE_EVER = datetime.fromisoformat("2000-01-01T00:00:00+00:00")
