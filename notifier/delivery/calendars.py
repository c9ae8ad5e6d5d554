"""The meetings a filter's calendar shows: one query for the calendar feeds (web/feed_specs.py) and for the whole
calendar a WebSub push to a calendar topic carries (websub.py), so both show the same meetings."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from notifier.models import FilterModel
from notifier.subscriptions import compile_query

# A calendar's window: meetings from two months back to a year ahead.
CALENDAR_BACK = timedelta(days=60)
CALENDAR_AHEAD = timedelta(days=365)

# Meetings restricted by a filter: $1 tsquery (or null), $2 councils, $3 regions, $4 committees, $5 from, $6 to.
# `changes` counts the meeting's events (its SEQUENCE), `agenda` its agenda items.
FILTERED_MEETINGS = """
    select i.id, i.title, i.committee, i.starts_at, i.status, i.url, i.data, i.updated_at, i.first_seen_at,
           c.name as council_name, c.timezone,
           (select count(*) from events ev where ev.item_id = i.id) as changes,
           array(select a.title from items a where a.parent_id = i.id and a.kind = 'agenda_item'
                 order by a.external_id) as agenda
    from items i join councils c on c.slug = i.council
    where i.kind = 'meeting' and i.starts_at >= $5 and i.starts_at < $6
      and ($1::text is null or i.search @@ $1::tsquery)
      and (cardinality($2::text[]) = 0 and cardinality($3::text[]) = 0
           or i.council = any($2) or c.region = any($3))
      and (cardinality($4::text[]) = 0 or i.committee = any($4) or i.committee_id = any($4))
    order by i.starts_at, i.id
    limit 2000
"""


async def meetings_matching(pool: asyncpg.Pool, f: FilterModel, now: datetime) -> list[Mapping[str, Any]]:
    """The meetings a filter's calendar shows (its councils, regions, committees and query; not its kinds or event
    types, which choose among events), each with its agenda, in date order."""
    return [dict(r) for r in await pool.fetch(
        FILTERED_MEETINGS, compile_query(f.query), f.councils, f.regions, f.committees,
        now - CALENDAR_BACK, now + CALENDAR_AHEAD,
    )]
