"""Time to alert: first seen, matched and sent, per channel, from the database; on /metrics and as p50/p95."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from notifier.delivery.timing import alert_times, time_to_alert_histograms
from notifier.delivery.webhooks.endpoints import create as create_endpoint
from notifier.models import FilterModel
from notifier.partners import create_partner
from tests.factories import Factory

NOW = datetime.now(UTC).replace(microsecond=0)


async def sent(pool: asyncpg.Pool, factory: Factory, *, channel: str, seen: datetime, matched: timedelta,
               sent_after: timedelta, frequency: str = "immediate", n: int = 0) -> None:
    """A delivery seen at `seen`, matched `matched` later and sent `sent_after` after that."""
    council = await factory.council()
    if channel == "webhook":
        partner_id, _ = await create_partner(pool, f"Newsroom {n}")
        endpoint, _ = await create_endpoint(pool, partner_id, "https://hooks.example.org/in",
                                            FilterModel(councils=[council]), None)
        subscription = await pool.fetchval("select id from subscriptions where endpoint_id = $1", endpoint["id"])
    else:
        subscription = await factory.subscription(
            await factory.subscriber(f"{channel}{n}-{frequency}@example.org"), councils=[council],
            frequency=frequency,
        )
    event = await factory.event(title=f"Meeting {n}", occurred_at=seen)
    await pool.execute(
        """
        insert into deliveries (subscription_id, event_id, status, created_at, sent_at)
        values ($1, $2, 'sent', $3, $4)
        """,
        subscription, event, seen + matched, seen + matched + sent_after,
    )


async def history(pool: asyncpg.Pool, factory: Factory) -> None:
    # email: seen to sent 1, 2, ... 20 minutes (matched a minute after being seen)
    for n in range(20):
        await sent(pool, factory, channel="email", seen=NOW - timedelta(minutes=50), matched=timedelta(minutes=1),
                   sent_after=timedelta(minutes=n), n=n)
    await sent(pool, factory, channel="webhook", seen=NOW - timedelta(minutes=5), matched=timedelta(seconds=5),
               sent_after=timedelta(seconds=5))
    # left out: a digest, which waits for its hour by design, and what was sent before the window
    await sent(pool, factory, channel="email", seen=NOW - timedelta(hours=20), matched=timedelta(minutes=1),
               sent_after=timedelta(hours=19), frequency="daily")
    await sent(pool, factory, channel="email", seen=NOW - timedelta(hours=3), matched=timedelta(0),
               sent_after=timedelta(hours=1), n=99)


async def test_alert_times_p50_and_p95_per_channel(pool: asyncpg.Pool, factory: Factory) -> None:
    await history(pool, factory)
    times = {t.channel: t.as_dict() for t in await alert_times(pool, since=NOW - timedelta(hours=1))}
    assert times == {
        # 60 + 0..1140 seconds: the median 630, the 95th percentile 60 + 0.95 * 1140
        "email": {"channel": "email", "count": 20, "p50_seconds": 630.0, "p95_seconds": 1143.0,
                  "max_seconds": 1200.0},
        "webhook": {"channel": "webhook", "count": 1, "p50_seconds": 10.0, "p95_seconds": 10.0, "max_seconds": 10.0},
    }


async def test_histograms_per_channel_and_span(pool: asyncpg.Pool, factory: Factory) -> None:
    await history(pool, factory)
    found = await time_to_alert_histograms(pool, since=NOW - timedelta(hours=1), buckets=(60, 300, 900))
    assert set(found) == {(c, s) for c in ("email", "webhook") for s in
                          ("seen_to_matched", "matched_to_sent", "seen_to_sent")}
    seen_to_sent = found[("email", "seen_to_sent")]
    # 60, 120, ... 1200 seconds
    assert (seen_to_sent.buckets, seen_to_sent.count, seen_to_sent.total) == (
        [(60.0, 1), (300.0, 5), (900.0, 15)], 20, float(sum(60 * (n + 1) for n in range(20))),
    )
    assert found[("email", "seen_to_matched")].buckets == [(60.0, 20), (300.0, 20), (900.0, 20)]
    assert found[("webhook", "seen_to_sent")].buckets == [(60.0, 1), (300.0, 1), (900.0, 1)]
