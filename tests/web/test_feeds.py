"""Feeds as readers take them: Atom (parsed by feedparser and valid against RFC 4287's schema), RSS (feedparser)
and JSON Feed 1.1 (its schema), by council, committee, search and subscription, with paging and entry content."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import feedparser
import jsonschema
import pytest
from aiohttp.test_utils import TestClient
from lxml import etree

from notifier.ingest.documents import fetch_due_documents
from notifier.settings import Settings
from tests.factories import Factory
from tests.ingest.helpers import fetcher
from tests.ingest.test_documents import REPORT
from tests.servers import CouncilServer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
ATOM_SCHEMA = etree.RelaxNG(etree.parse(str(FIXTURES / "atom.rng")))
JSON_FEED_SCHEMA = json.loads((FIXTURES / "jsonfeed-1.1.schema.json").read_text())


def valid_atom(body: bytes) -> bool:
    ok: bool = ATOM_SCHEMA.validate(etree.fromstring(body))
    assert ok, ATOM_SCHEMA.error_log
    return ok


def valid_json_feed(body: bytes) -> dict[str, Any]:
    feed: dict[str, Any] = json.loads(body)
    jsonschema.validate(feed, JSON_FEED_SCHEMA, format_checker=jsonschema.FormatChecker())
    for item in feed["items"]:
        datetime.fromisoformat(item["date_published"])
    return feed


async def meeting_with_documents(factory: Factory) -> int:
    meeting = await factory.item(title="Health and Wellbeing Board", url="https://democracy.leics.gov.uk/m/2",
                                 starts_at=datetime(2026, 7, 2, 13, 0, tzinfo=UTC), external_id="m2")
    source = await factory.pool.fetchval("select source_id from items where id = $1", meeting)
    for n, title in enumerate(("Dementia strategy report", "Minutes of the last meeting")):
        doc = await factory.item(source_id=source, kind="document", title=title, external_id=f"d{n}",
                                 url=f"https://democracy.leics.gov.uk/documents/d{n}.pdf")
        await factory.pool.execute("update items set parent_id = $1 where id = $2", meeting, doc)
    return await factory.event(item_id=meeting, type="agenda.published",
                               summary="Health and Wellbeing Board, 2 Jul 2026 14:00: agenda published")


async def test_feeds_atom_rss_and_json_carry_the_same_entries(client: TestClient[Any, Any], factory: Factory) -> None:
    await meeting_with_documents(factory)
    await factory.event(council="rutland", title="Rutland Cabinet")
    ids = {}
    for fmt in ("atom", "rss"):
        resp = await client.get(f"/feeds/councils/leicestershire.{fmt}")
        assert resp.status == 200, await resp.text()
        body = await resp.read()
        feed = feedparser.parse(body)
        assert not feed.bozo, feed.bozo_exception
        assert {(ln.rel, ln.href) for ln in feed.feed.links} >= {
            ("hub", "http://notifier.test/websub"),
            ("self", f"http://notifier.test/feeds/councils/leicestershire.{fmt}"),
        }
        [entry] = feed.entries
        ids[fmt] = entry.id
        assert entry.title == "Health and Wellbeing Board, 2 Jul 2026 14:00: agenda published"
        assert entry.link == "https://democracy.leics.gov.uk/m/2"
        assert "https://democracy.leics.gov.uk/documents/d1.pdf" in entry.content[0].value
        assert {t.term for t in entry.tags} == {"Leicestershire Council", "Health and Wellbeing Board",
                                                "agenda.published"}
        assert "2 Jul 2026 14:00" in entry.summary  # in the council's zone (BST), not UTC
    valid_atom(body := await (await client.get("/feeds/councils/leicestershire.atom")).read())
    [entry] = feedparser.parse(body).entries
    assert [ln.href for ln in entry.links if ln.rel == "related"] == [
        "https://democracy.leics.gov.uk/documents/d0.pdf", "https://democracy.leics.gov.uk/documents/d1.pdf"
    ]
    resp = await client.get("/feeds/councils/leicestershire.json")
    assert resp.headers["Content-Type"].startswith("application/feed+json")
    doc = valid_json_feed(await resp.read())
    [item] = doc["items"]
    assert item["title"] == entry.title and item["url"] == entry.link
    assert item["tags"] == ["Leicestershire Council", "Health and Wellbeing Board", "agenda.published"]
    assert [a["url"] for a in item["attachments"]] == [
        "https://democracy.leics.gov.uk/documents/d0.pdf", "https://democracy.leics.gov.uk/documents/d1.pdf"
    ]
    assert doc["hubs"] == [{"type": "WebSub", "url": "http://notifier.test/websub"}]
    assert ids["atom"] == ids["rss"] == item["id"]


async def test_feeds_atom_schema_refuses_a_broken_feed() -> None:
    broken = b'<feed xmlns="http://www.w3.org/2005/Atom"><title>no id, no updated</title></feed>'
    assert not ATOM_SCHEMA.validate(etree.fromstring(broken))


async def test_feeds_entry_id_stays_and_updated_moves_with_the_item(
    client: TestClient[Any, Any], factory: Factory
) -> None:
    event_id = await factory.event(title="Cabinet", occurred_at=datetime.now(UTC) - timedelta(hours=2))
    await factory.pool.execute("update items set updated_at = now() - interval '2 hours'")
    ident = f"tag:notifier.test,2025:event:{event_id}"

    async def entry() -> Any:
        feed = feedparser.parse(await (await client.get("/feeds/councils/leicestershire.atom")).read())
        return next(e for e in feed.entries if e.id == ident)

    first = await entry()
    await factory.pool.execute(
        "update items set updated_at = now() where id = (select item_id from events where id = $1)", event_id
    )
    await factory.event(title="Scrutiny")  # the item changed, and something else happened since
    second = await entry()
    assert second.updated_parsed > first.updated_parsed
    assert second.published_parsed == first.published_parsed


async def test_feeds_search_and_subscription_feeds_show_matched_terms(
    client: TestClient[Any, Any], factory: Factory
) -> None:
    await factory.event(title="Living well with dementia", summary="Dementia strategy")
    await factory.event(title="Parking")
    resp = await client.get("/feeds/search.json", params={"q": "dementia OR asthma"})
    feed = valid_json_feed(await resp.read())
    [item] = feed["items"]
    assert item["_notifier"]["matched_terms"] == ["dementia"]
    assert "Matched: dementia" in item["content_html"]
    sub = await factory.subscription(await factory.subscriber(), query="parking")
    token = await factory.pool.fetchval("select feed_token from subscriptions where id = $1", sub)
    resp = await client.get(f"/feeds/s/{token}.atom")
    body = await resp.read()
    valid_atom(body)
    [entry] = feedparser.parse(body).entries
    assert "Matched: parking" in entry.content[0].value
    assert "Access-Control-Allow-Origin" not in resp.headers  # private: not for any page's script
    assert resp.headers["Cache-Control"].startswith("private")


async def test_feeds_paging_walks_every_entry_exactly_once(client: TestClient[Any, Any], factory: Factory) -> None:
    made = [await factory.event(title=f"Meeting {n}") for n in range(23)]
    seen: list[str] = []
    url: str | None = "/feeds/councils/leicestershire.atom?limit=5"
    pages = 0
    while url:
        resp = await client.get(url.removeprefix("http://notifier.test"))
        body = await resp.read()
        valid_atom(body)
        feed = feedparser.parse(body)
        assert not feed.bozo
        seen += [e.id for e in feed.entries]
        url = next((ln.href for ln in feed.feed.links if ln.rel == "next"), None)
        pages += 1
    assert pages == 5
    assert seen == [f"tag:notifier.test,2025:event:{i}" for i in reversed(made)]
    # RSS and JSON page the same way
    rss = feedparser.parse(await (await client.get("/feeds/councils/leicestershire.rss?limit=20")).read())
    [next_link] = [ln.href for ln in rss.feed.links if ln.rel == "next"]
    assert next_link == f"http://notifier.test/feeds/councils/leicestershire.rss?limit=20&before={made[3]}"
    js = json.loads(await (await client.get("/feeds/councils/leicestershire.json?limit=23")).read())
    assert "next_url" not in js and len(js["items"]) == 23


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=ten", "before=-3"])
async def test_feeds_bad_paging_is_a_problem(client: TestClient[Any, Any], factory: Factory, query: str) -> None:
    await factory.council()
    resp = await client.get(f"/feeds/councils/leicestershire.atom?{query}")
    assert resp.status == 400
    assert resp.headers["Content-Type"].startswith("application/problem+json")


async def test_feeds_default_and_largest_page(client: TestClient[Any, Any], factory: Factory) -> None:
    for n in range(51):
        await factory.event(title=f"Meeting {n}")
    feed = json.loads(await (await client.get("/feeds/councils/leicestershire.json")).read())
    last = feed["items"][-1]["_notifier"]["event_id"]
    assert len(feed["items"]) == 50 and feed["next_url"].endswith(f"before={last}")
    feed = json.loads(await (await client.get("/feeds/councils/leicestershire.json?limit=200")).read())
    assert len(feed["items"]) == 51


async def test_feeds_unknown_council_committee_or_token_is_404(client: TestClient[Any, Any], factory: Factory) -> None:
    await factory.event(title="Cabinet", committee="Cabinet")
    await factory.pool.execute("update items set committee_id = '7'")
    assert (await client.get("/feeds/councils/leicestershire/committees/7.atom")).status == 200
    for path in ("/feeds/councils/atlantis.atom", "/feeds/councils/leicestershire/committees/8.rss",
                 "/feeds/s/not-a-token.json", "/feeds/councils/leicestershire.pdf"):
        resp = await client.get(path)
        assert resp.status == 404, path


async def test_feeds_bad_query_is_a_problem_with_its_position(client: TestClient[Any, Any], factory: Factory) -> None:
    await factory.council()
    resp = await client.get("/feeds/search.atom", params={"q": 'dementia AND "unclosed'})
    assert resp.status == 400
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    problem = await resp.json(content_type=None)
    assert problem["status"] == 400 and "quote" in problem["detail"].lower()
    assert problem["position"] == 13


async def test_feeds_search_by_topic_and_region(client: TestClient[Any, Any], factory: Factory) -> None:
    await factory.council("kent", region="South East")
    await factory.event(title="Living well with dementia")
    await factory.event(council="kent", title="Dementia care in Kent")
    await factory.event(title="Parking")
    resp = await client.get("/feeds/search.atom", params={"q": "dementia", "region": "East Midlands"})
    assert len(feedparser.parse(await resp.read()).entries) == 1
    resp = await client.get("/feeds/search.rss", params={"q": "dementia"})
    assert len(feedparser.parse(await resp.read()).entries) == 2


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
    content = " ".join(entry.content[0].value.split())
    assert "p. 3: 2. Background The programme was agreed with the chair. The respite centre at" in content
    assert "Matched: respite" in content  # the word is only in the paper
    feed = valid_json_feed(await (await client.get("/feeds/search.json", params={"q": "respite"})).read())
    [item] = feed["items"]
    assert item["_notifier"]["matched_terms"] == ["respite"]
    assert "<p>Matched: respite</p>" in item["content_html"]
    # terms from the title and from the paper, in the query's order
    resp = await client.get("/feeds/search.atom", params={"q": "carers programme"})
    [entry] = feedparser.parse(await resp.read()).entries
    assert "Matched: carers, programme" in entry.content[0].value
    # a feed without a query has no terms to point at
    resp = await client.get("/feeds/councils/leicestershire.atom")
    [entry] = feedparser.parse(await resp.read()).entries
    assert "p. 3" not in entry.content[0].value
