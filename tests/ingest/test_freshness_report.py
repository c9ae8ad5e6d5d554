"""What `notifier sources list` (and the admin page) say about each source's freshness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from notifier.ingest.freshness import source_freshness
from tests.factories import Factory

NOW = datetime(2026, 9, 10, 9, 0, tzinfo=UTC)


async def test_moderngov_staleness_by_band_from_its_meetings(pool: asyncpg.Pool, factory: Factory) -> None:
    source_id = await factory.source("shire", poll_interval=timedelta(minutes=30))
    # 4 hot, 2 warm, 1 cold, and 2 outside the listing window
    days = [1, 5, 20, -3, 40, 60, 100, -100, 300]
    for n, day in enumerate(days):
        item_id = await factory.item(source_id=source_id, council="shire", starts_at=NOW + timedelta(days=day))
        await pool.execute("update items set committee_id = $2 where id = $1", item_id, str(500 + n % 3))
    await factory.item(source_id=source_id, council="shire", kind="agenda_item")
    rss = await factory.source("shire", kind="rss", poll_interval=timedelta(minutes=15))
    busy = await factory.source("busy", options={"seconds_per_request": 60})
    for n in range(5):
        item_id = await factory.item(source_id=busy, council="busy", starts_at=NOW + timedelta(days=2 + n))
        await pool.execute("update items set committee_id = $2 where id = $1", item_id, str(n))

    found = await source_freshness(pool, now=NOW)
    shire: dict[str, Any] = found[source_id]
    assert shire["meetings"] == {"hot": 4, "warm": 2, "cold": 1}
    assert shire["committees"] == 3
    assert (shire["poll_every_minutes"], shire["hot_staleness_minutes"], shire["warm_staleness_minutes"],
            shire["cold_staleness_minutes"], shire["over_budget"]) == (4.0, 12.0, 1444.0, 10084.0, False)
    assert shire["budget_per_second"] == 0.5
    assert found[rss] == {"poll_every_minutes": 15.0, "hot_staleness_minutes": 15.0,
                          "warm_staleness_minutes": 15.0, "cold_staleness_minutes": 15.0}
    # one request a minute cannot even list the committees every four minutes: only listing changes are seen
    assert (found[busy]["hot_staleness_minutes"], found[busy]["over_budget"]) == (None, True)


async def test_bad_options_say_so(pool: asyncpg.Pool, factory: Factory) -> None:
    source_id = await factory.source("shire", options={"hot_read_minutes": "soon"})
    assert (await source_freshness(pool, now=NOW))[source_id] == {
        "error": "option hot_read_minutes must be a whole number, not 'soon'"
    }
