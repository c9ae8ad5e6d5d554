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
    rss = await factory.source("shire", kind="rss", url="https://news.shire.example.net/feed",
                               poll_interval=timedelta(minutes=15))
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
    assert (shire["budget_per_second"], shire["host_sources"]) == (0.5, 1)
    assert found[rss] == {"poll_every_minutes": 15.0, "hot_staleness_minutes": 15.0,
                          "warm_staleness_minutes": 15.0, "cold_staleness_minutes": 15.0}
    # one request a minute cannot even list the committees every four minutes: only listing changes are seen
    assert (found[busy]["hot_staleness_minutes"], found[busy]["over_budget"]) == (None, True)


async def test_sources_reading_one_host_share_its_budget(pool: asyncpg.Pool, factory: Factory) -> None:
    meetings = await factory.source("shire", url="https://democracy.shire.example.org/mgWebService.asmx",
                                    poll_interval=timedelta(minutes=30))
    for n in range(4):
        item_id = await factory.item(source_id=meetings, council="shire", starts_at=NOW + timedelta(days=2 + n))
        await pool.execute("update items set committee_id = $2 where id = $1", item_id, str(n))
    alone = (await source_freshness(pool, now=NOW))[meetings]
    await factory.source("shire", kind="moderngov_decisions",
                         url="https://Democracy.Shire.example.org:443/mgDelegatedDecisions.aspx")
    await factory.source("shire", kind="moderngov_decisions", enabled=False,
                         url="https://democracy.shire.example.org/mgListOfficerDecisions.aspx")
    shared = (await source_freshness(pool, now=NOW))[meetings]
    assert (alone["host_sources"], alone["budget_per_second"]) == (1, 0.5)
    # the decisions register reads the same host (whatever the case or port); a disabled source asks nothing
    assert (shared["host_sources"], shared["budget_per_second"]) == (2, 0.25)
    assert shared["requests_per_second"] <= 0.25
    assert shared["hot_staleness_minutes"] >= alone["hot_staleness_minutes"]


async def test_bad_options_say_so(pool: asyncpg.Pool, factory: Factory) -> None:
    source_id = await factory.source("shire", options={"hot_read_minutes": "soon"})
    assert (await source_freshness(pool, now=NOW))[source_id] == {
        "error": "option hot_read_minutes must be a whole number, not 'soon'"
    }
