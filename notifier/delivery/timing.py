"""Time to alert: how long a change took from being seen to reaching people, per channel.

Each delivery carries its three moments: first seen (its event's `occurred_at`, the start of the poll that saw the
change), matched (the delivery's `created_at`) and sent (`sent_at`). Only immediate alerts count: a digest waits
for its hour by design. The figures are read from PostgreSQL, so any process (the web process's `/metrics`, the
admin page) shows every worker's deliveries, however many workers there are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

__all__ = ["SPANS", "TIME_TO_ALERT_BUCKETS", "AlertTimes", "Histogram", "alert_times", "time_to_alert_histograms"]

# Upper bounds in seconds: the goal is a quarter of an hour from a council's change to the inbox.
TIME_TO_ALERT_BUCKETS: tuple[float, ...] = (
    15, 30, 60, 120, 180, 300, 600, 900, 1200, 1800, 3600, 7200, 21600, 86400,
)
# span name -> (from, to), both columns of the query below
SPANS = {
    "seen_to_matched": ("seen", "matched"),
    "matched_to_sent": ("matched", "sent"),
    "seen_to_sent": ("seen", "sent"),
}

_SENT = """
    select s.channel, e.occurred_at as seen, d.created_at as matched, d.sent_at as sent
    from deliveries d
    join subscriptions s on s.id = d.subscription_id
    join events e on e.id = d.event_id
    where d.status = 'sent' and d.sent_at >= $1 and s.frequency = 'immediate'
"""


@dataclass(frozen=True, slots=True)
class Histogram:
    """Cumulative counts at each bucket's upper bound (seconds), with the count and sum of all observations."""

    buckets: list[tuple[float, int]]
    count: int
    total: float


async def time_to_alert_histograms(
    pool: asyncpg.Pool, *, since: datetime, buckets: Sequence[float] = TIME_TO_ALERT_BUCKETS
) -> dict[tuple[str, str], Histogram]:
    """Histograms by (channel, span) of the immediate alerts sent since `since`."""
    rows = await pool.fetch(
        f"""
        with sent as ({_SENT}),
        spans as (
            select channel, span, greatest(extract(epoch from b - a), 0)::float8 as seconds
            from sent,
                 lateral (values ('seen_to_matched', seen, matched), ('matched_to_sent', matched, sent),
                                 ('seen_to_sent', seen, sent)) as v(span, a, b)
        )
        select channel, span, u.i, count(*) filter (where x.seconds <= u.le) as below, count(*) as n,
               sum(x.seconds) as total
        from spans x cross join unnest($2::float8[]) with ordinality as u(le, i)
        group by channel, span, u.i
        order by channel, span, u.i
        """,
        since,
        list(buckets),
    )
    found: dict[tuple[str, str], Histogram] = {}
    for r in rows:
        key = (r["channel"], r["span"])
        h = found.setdefault(key, Histogram([], r["n"], float(r["total"])))
        h.buckets.append((float(buckets[r["i"] - 1]), r["below"]))
    return found


@dataclass(frozen=True, slots=True)
class AlertTimes:
    """One channel's time to alert (seen to sent), in seconds, over the deliveries sent since a moment."""

    channel: str
    count: int
    p50: float
    p95: float
    worst: float

    def as_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "count": self.count, "p50_seconds": round(self.p50, 1),
                "p95_seconds": round(self.p95, 1), "max_seconds": round(self.worst, 1)}


async def alert_times(pool: asyncpg.Pool, *, since: datetime) -> list[AlertTimes]:
    """p50 and p95 of the time from first seen to sent, per channel, for immediate alerts sent since `since`."""
    rows = await pool.fetch(
        f"""
        with sent as ({_SENT})
        select channel, count(*) as n,
               percentile_cont(0.5) within group (order by extract(epoch from sent - seen)) as p50,
               percentile_cont(0.95) within group (order by extract(epoch from sent - seen)) as p95,
               max(extract(epoch from sent - seen)) as worst
        from sent
        group by channel
        order by channel
        """,
        since,
    )
    return [AlertTimes(r["channel"], r["n"], float(r["p50"]), float(r["p95"]), float(r["worst"])) for r in rows]
