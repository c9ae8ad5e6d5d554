"""Feeds: Atom, RSS and iCal by council, committee, search and subscription, with conditional GET."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import feedparser
import icalendar
from aiohttp.test_utils import TestClient

from notifier.ingest.documents import fetch_due_documents
from notifier.settings import Settings
from tests.factories import Factory
from tests.ingest.helpers import fetcher
from tests.ingest.test_documents import REPORT
from tests.servers import CouncilServer


async def test_feeds_council_atom_and_rss_parse_in_a_reader(client: TestClient, factory: Factory) -> None:
    await factory.event(
        title="Dementia strategy progress report",
        url="https://democracy.leics.gov.uk/ieListDocuments.aspx?CId=1&MId=2",
        summary="Health and Wellbeing Board, 4 Dec 2025 14:00: agenda published",
    )
    await factory.event(council="rutland", title="Rutland Cabinet")
    for fmt in ("atom", "rss"):
        resp = await client.get(f"/feeds/councils/leicestershire.{fmt}")
        assert resp.status == 200
        assert fmt in resp.headers["Content-Type"]
        feed = feedparser.parse(await resp.read())
        assert not feed.bozo
        [entry] = feed.entries
        assert entry.title == "Health and Wellbeing Board, 4 Dec 2025 14:00: agenda published"
        assert entry.link == "https://democracy.leics.gov.uk/ieListDocuments.aspx?CId=1&MId=2"
    assert (await client.get("/feeds/councils/atlantis.atom")).status == 404


async def test_feeds_conditional_get_answers_304(client: TestClient, factory: Factory) -> None:
    await factory.event(title="Budget")
    first = await client.get("/feeds/councils/leicestershire.atom")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    again = await client.get("/feeds/councils/leicestershire.atom", headers={"If-None-Match": etag})
    assert again.status == 304 and await again.read() == b""
    since = await client.get("/feeds/councils/leicestershire.atom", headers={"If-Modified-Since": modified})
    assert since.status == 304
    await factory.event(title="Budget again", occurred_at=datetime.now(UTC) + timedelta(seconds=5))
    changed = await client.get("/feeds/councils/leicestershire.atom", headers={"If-None-Match": etag})
    assert changed.status == 200 and changed.headers["ETag"] != etag


async def test_feeds_search_by_topic_and_region(client: TestClient, factory: Factory) -> None:
    await factory.council("kent", region="South East")
    await factory.event(title="Living well with dementia")
    await factory.event(council="kent", title="Dementia care in Kent")
    await factory.event(title="Parking")
    resp = await client.get("/feeds/search.atom", params={"q": "dementia", "region": "East Midlands"})
    titles = [e.title for e in feedparser.parse(await resp.read()).entries]
    assert len(titles) == 1
    resp = await client.get("/feeds/search.rss", params={"q": "dementia"})
    assert len(feedparser.parse(await resp.read()).entries) == 2
    assert (await client.get("/feeds/search.atom", params={"q": '"unclosed'})).status == 400


async def test_feeds_calendar_of_meetings(client: TestClient, factory: Factory) -> None:
    start = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
    await factory.item(
        title="Health and Wellbeing Board",
        starts_at=start,
        data={"location": "County Hall, Glenfield"},
        url="https://democracy.leics.gov.uk/m/1",
    )
    await factory.item(title="Cabinet", starts_at=start + timedelta(days=1), status="cancelled")
    resp = await client.get("/feeds/councils/leicestershire.ics")
    assert resp.headers["Content-Type"].startswith("text/calendar")
    cal = icalendar.Calendar.from_ical(await resp.read())
    events = {str(e["summary"]): e for e in cal.walk("VEVENT")}
    hwb = events["Health and Wellbeing Board (Leicestershire Council)"]
    assert hwb.decoded("dtstart") == start
    assert str(hwb["location"]) == "County Hall, Glenfield"
    assert str(events["Cabinet (Leicestershire Council)"]["status"]) == "CANCELLED"


async def test_feeds_subscription_feed_by_token(client: TestClient, factory: Factory, pool: object) -> None:
    sub = await factory.subscription(await factory.subscriber(), query="asthma")
    token = await factory.pool.fetchval("select feed_token from subscriptions where id = $1", sub)
    await factory.event(title="Asthma in schools")
    await factory.event(title="Potholes")
    resp = await client.get(f"/feeds/s/{token}.atom")
    assert [e.title for e in feedparser.parse(await resp.read()).entries] == ["Asthma in schools: meeting.scheduled"]
    assert (await client.get("/feeds/s/not-a-token.atom")).status == 404


async def test_feeds_search_entry_says_where_in_the_paper_the_topic_is(
    client: TestClient, factory: Factory, pool: asyncpg.Pool, council_server: CouncilServer, settings: Settings
) -> None:
    council_server.set("/paper.pdf", REPORT, content_type="application/pdf")
    await factory.event(type="document.published", kind="document", title="Work programme",
                        url=f"{council_server.url}/paper.pdf", summary="Work programme published")
    async with fetcher(settings) as f:
        assert (await fetch_due_documents(pool, f, settings)).extracted == 1
    resp = await client.get("/feeds/search.atom", params={"q": "respite"})
    [entry] = feedparser.parse(await resp.read()).entries
    assert entry.title == "Work programme published"
    assert "p. 3: 2. Background The programme was agreed with the chair. The respite centre at" in entry.summary
    # a feed without a query has no terms to point at
    resp = await client.get("/feeds/councils/leicestershire.atom")
    [entry] = feedparser.parse(await resp.read()).entries
    assert "p. 3" not in entry.summary
