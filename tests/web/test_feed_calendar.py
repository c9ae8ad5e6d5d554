"""The iCal feed as calendar apps read it: the council's VTIMEZONE and local times, one UID per meeting for life,
SEQUENCE raised by every change, cancelled meetings kept as STATUS:CANCELLED, the agenda in the description."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
from aiohttp.test_utils import TestClient

from tests.factories import Factory

LONDON = ZoneInfo("Europe/London")


async def calendar(client: TestClient[Any, Any], path: str = "/feeds/councils/leicestershire.ics") -> Any:
    resp = await client.get(path)
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/calendar")
    return icalendar.Calendar.from_ical(await resp.read())


async def test_feed_calendar_local_times_timezone_and_properties(
    client: TestClient[Any, Any], factory: Factory
) -> None:
    start = datetime.now(UTC).replace(microsecond=0, second=0) + timedelta(days=30)
    meeting = await factory.item(title="Health and Wellbeing Board", starts_at=start,
                                 data={"location": "County Hall, Glenfield"}, url="https://democracy.leics.gov.uk/m/1")
    source = await factory.pool.fetchval("select source_id from items where id = $1", meeting)
    for n, title in enumerate(("Apologies", "Dementia strategy")):
        agenda = await factory.item(source_id=source, kind="agenda_item", title=title, external_id=f"a{n}")
        await factory.pool.execute("update items set parent_id = $1 where id = $2", meeting, agenda)
    await factory.event(item_id=meeting)
    cal = await calendar(client)
    assert str(cal["x-wr-calname"]) == "Leicestershire Council"
    assert cal["refresh-interval"].params["VALUE"] == "DURATION"
    assert cal.decoded("refresh-interval") == timedelta(hours=1)
    [tz] = cal.walk("VTIMEZONE")
    assert str(tz["tzid"]) == "Europe/London"
    [ev] = cal.walk("VEVENT")
    assert ev["dtstart"].params["TZID"] == "Europe/London"
    assert ev.decoded("dtstart") == start.astimezone(LONDON)
    assert ev.decoded("dtend") - ev.decoded("dtstart") == timedelta(hours=2)
    assert str(ev["uid"]) == f"item-{meeting}@notifier.test"
    assert str(ev["location"]) == "County Hall, Glenfield"
    assert str(ev["url"]) == "https://democracy.leics.gov.uk/m/1"
    assert "1. Apologies\n2. Dementia strategy" in str(ev["description"])
    assert int(ev["sequence"]) == 0


async def test_feed_calendar_sequence_rises_across_a_reschedule_and_a_cancellation(
    client: TestClient[Any, Any], factory: Factory
) -> None:
    start = datetime.now(UTC).replace(microsecond=0, second=0) + timedelta(days=10)
    meeting = await factory.item(title="Cabinet", starts_at=start)
    await factory.event(item_id=meeting, type="meeting.scheduled", occurred_at=datetime.now(UTC) - timedelta(hours=3))
    [before] = (await calendar(client)).walk("VEVENT")
    moved = start + timedelta(days=7)
    await factory.pool.execute("update items set starts_at = $2, updated_at = now() where id = $1", meeting, moved)
    await factory.event(item_id=meeting, type="meeting.rescheduled", occurred_at=datetime.now(UTC) - timedelta(hours=2))
    [after] = (await calendar(client)).walk("VEVENT")
    await factory.pool.execute("update items set status = 'cancelled', updated_at = now() where id = $1", meeting)
    await factory.event(item_id=meeting, type="meeting.cancelled", occurred_at=datetime.now(UTC) - timedelta(hours=1))
    [cancelled] = (await calendar(client)).walk("VEVENT")
    assert str(before["uid"]) == str(after["uid"]) == str(cancelled["uid"])
    assert [int(e["sequence"]) for e in (before, after, cancelled)] == [0, 1, 2]
    assert after.decoded("dtstart") == moved.astimezone(LONDON)
    assert str(before["status"]) == str(after["status"]) == "CONFIRMED"
    assert str(cancelled["status"]) == "CANCELLED"


async def test_feed_calendar_by_search_and_token(client: TestClient[Any, Any], factory: Factory) -> None:
    start = datetime.now(UTC) + timedelta(days=3)
    await factory.item(title="Dementia friendly communities panel", starts_at=start)
    await factory.item(title="Planning committee", starts_at=start)
    cal = await calendar(client, "/feeds/search.ics?q=dementia")
    assert [str(e["summary"]) for e in cal.walk("VEVENT")] == [
        "Dementia friendly communities panel (Leicestershire Council)"
    ]
    sub = await factory.subscription(await factory.subscriber(), query="planning")
    token = await factory.pool.fetchval("select feed_token from subscriptions where id = $1", sub)
    cal = await calendar(client, f"/feeds/s/{token}.ics")
    assert [str(e["summary"]) for e in cal.walk("VEVENT")] == ["Planning committee (Leicestershire Council)"]
