"""How fresh each source can be: its read plan's worst-case staleness and request rate, from what it holds.

For `notifier sources list` and the admin page. A ModernGov source's figures come from `sources.freshness.staleness`
over the meetings it holds in its listing window (by band) and the committees they belong to (the listing asks each
committee; ones without a stored meeting are not counted, so the rate is a floor), with the budget of the host
shared among the sources that read it. Every other kind asks its server
what changed (conditional GET, Legistar's modified-since filters) at each poll: its staleness is its interval.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from notifier.ingest.poll import HOST_SOURCES
from notifier.models import SourceKind
from notifier.sources.base import SourceError
from notifier.sources.common import int_option
from notifier.sources.freshness import Band, ReadPlan, staleness
from notifier.sources.moderngov import DEFAULT_DAYS_AHEAD, DEFAULT_DAYS_BACK
from notifier.zones import time_zone

_MEETING_DAYS = """
    select i.source_id, (i.starts_at at time zone c.timezone)::date as day, count(*) as n
    from items i
    join sources s on s.id = i.source_id
    join councils c on c.slug = s.council
    where i.kind = 'meeting' and s.kind = 'moderngov' and i.starts_at is not null
    group by 1, 2
"""

_COMMITTEES = """
    select i.source_id, count(distinct i.committee_id) as n
    from items i join sources s on s.id = i.source_id
    where i.kind = 'meeting' and s.kind = 'moderngov'
    group by 1
"""


async def source_freshness(pool: asyncpg.Pool, *, now: datetime) -> dict[int, dict[str, Any]]:
    """Each source's worst-case staleness (minutes, per band for ModernGov), requests a second and budget, by id.
    A source whose options are bad says so under `error`."""
    sources = await pool.fetch(
        f"select s.id, s.kind, s.options, s.poll_interval, c.timezone, {HOST_SOURCES} as host_sources "
        "from sources s join councils c on c.slug = s.council"
    )
    days: dict[int, list[tuple[date, int]]] = defaultdict(list)
    for r in await pool.fetch(_MEETING_DAYS):
        days[r["source_id"]].append((r["day"], r["n"]))
    committees = {r["source_id"]: r["n"] for r in await pool.fetch(_COMMITTEES)}
    out: dict[int, dict[str, Any]] = {}
    for s in sources:
        interval: timedelta = s["poll_interval"]
        if s["kind"] != SourceKind.MODERNGOV.value:
            minutes = round(interval.total_seconds() / 60, 1)
            out[s["id"]] = {"poll_every_minutes": minutes, "hot_staleness_minutes": minutes,
                            "warm_staleness_minutes": minutes, "cold_staleness_minutes": minutes}
            continue
        try:
            out[s["id"]] = _moderngov(s, days[s["id"]], committees.get(s["id"], 0), now)
        except SourceError as e:
            out[s["id"]] = {"error": str(e)}
    return out


def _moderngov(source: asyncpg.Record, days: list[tuple[date, int]], committees: int, now: datetime) -> dict[str, Any]:
    options = source["options"]
    plan = ReadPlan.from_options(options).shared(source["host_sources"])
    try:
        today = now.astimezone(time_zone(source["timezone"])).date()
    except ValueError as e:
        raise SourceError(str(e)) from e
    start = today - timedelta(days=int_option(options, "days_back", DEFAULT_DAYS_BACK))
    end = today + timedelta(days=int_option(options, "days_ahead", DEFAULT_DAYS_AHEAD))
    bands = {Band.HOT: 0, Band.WARM: 0, Band.COLD: 0}
    for day, n in days:
        if start <= day <= end:
            bands[plan.band(day, today)] += n
    worst = staleness(plan, source["poll_interval"], committees=committees, hot=bands[Band.HOT],
                      warm=bands[Band.WARM], cold=bands[Band.COLD])
    return {**worst.as_dict(), "over_budget": worst.over_budget, "committees": committees,
            "host_sources": source["host_sources"],
            "meetings": {b.name.lower(): n for b, n in bands.items()}}

