"""Feeds over HTTP: conditional GET, caching headers, gzip, CORS, HEAD, WebSub discovery, and the Redis cache of
rendered feeds that a new event invalidates."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser
from aiohttp.test_utils import TestClient, TestServer
from arq.connections import ArqRedis
from multidict import MultiDict

from notifier.settings import Settings
from notifier.web.app import create_app
from notifier.web.feed_cache import FeedCache
from notifier.web.feed_specs import resolve
from tests.factories import Factory

FEED = "/feeds/councils/leicestershire.atom"


async def test_feed_http_conditional_get_answers_304(client: TestClient[Any, Any], factory: Factory) -> None:
    await factory.event(title="Budget", occurred_at=datetime.now(UTC) - timedelta(minutes=5))
    first = await client.get(FEED)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert etag.startswith('"') and not etag.startswith("W/")
    again = await client.get(FEED, headers={"If-None-Match": etag})
    assert again.status == 304 and await again.read() == b""
    assert again.headers["ETag"] == etag
    since = await client.get(FEED, headers={"If-Modified-Since": modified})
    assert since.status == 304
    await factory.event(title="Budget again")
    changed = await client.get(FEED, headers={"If-None-Match": etag})
    assert changed.status == 200 and changed.headers["ETag"] != etag


async def test_feed_http_headers_gzip_and_cors(client: TestClient[Any, Any], factory: Factory) -> None:
    await factory.event(title="Budget")
    plain = await client.get(FEED, headers={"Accept-Encoding": "identity"})
    body = await plain.read()
    assert plain.headers["Cache-Control"] == "public, max-age=300"
    assert plain.headers["Vary"] == "Accept-Encoding"
    assert plain.headers["Access-Control-Allow-Origin"] == "*"
    assert "Content-Encoding" not in plain.headers
    assert plain.headers["Link"] == (
        '<http://notifier.test/websub>; rel="hub", <http://notifier.test/feeds/councils/leicestershire.atom>; '
        'rel="self"'
    )
    zipped = await client.get(FEED, headers={"Accept-Encoding": "gzip, deflate"}, auto_decompress=False)
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(await zipped.read()) == body
    assert zipped.headers["ETag"] != plain.headers["ETag"]  # another representation, another strong ETag
    refused = await client.get(FEED, headers={"Accept-Encoding": "gzip;q=0"}, auto_decompress=False)
    assert "Content-Encoding" not in refused.headers
    head = await client.head(FEED, headers={"Accept-Encoding": "identity"})
    assert head.status == 200 and await head.read() == b""
    assert head.headers["ETag"] == plain.headers["ETag"]
    preflight = await client.options(FEED, headers={"Origin": "https://reader.example",
                                                    "Access-Control-Request-Method": "GET"})
    assert preflight.status == 204
    assert "If-None-Match" in preflight.headers["Access-Control-Allow-Headers"]


async def test_feed_http_cache_serves_until_a_new_event(
    client: TestClient[Any, Any], factory: Factory, redis: ArqRedis, settings: Settings
) -> None:
    old = await factory.event(title="Old business", summary="Old business")
    await factory.event(title="Budget", summary="Budget")

    async def titles() -> list[str]:
        return [e.title for e in feedparser.parse(await (await client.get(FEED)).read()).entries]

    assert await titles() == ["Budget", "Old business"]
    assert await redis.keys("feed:*")  # shared by every web process
    # gone from the database, but the newest event is the same: the rendering comes from Redis
    await factory.pool.execute("delete from events where id = $1", old)
    assert await titles() == ["Budget", "Old business"]
    async with TestClient(TestServer(create_app(settings))) as other:  # another web process: from Redis
        entries = feedparser.parse(await (await other.get(FEED)).read()).entries
        assert [e.title for e in entries] == ["Budget", "Old business"]
    await factory.event(title="Scrutiny", summary="Scrutiny")
    assert await titles() == ["Scrutiny", "Budget"]


async def test_feed_http_a_process_trusts_what_it_read_only_while_fresh(factory: Factory) -> None:
    await factory.council()
    spec = await resolve(factory.pool, FEED, MultiDict())
    never = FeedCache(fresh=0)
    never.remember_spec(FEED, spec)
    assert never.recent_spec(FEED) is None
    trusting = FeedCache(fresh=60)
    trusting.remember_spec(FEED, spec)
    assert trusting.recent_spec(FEED) == spec
    assert trusting.recent_spec(FEED + "?limit=5") is None
