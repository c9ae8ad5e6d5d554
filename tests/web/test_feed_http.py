"""Feeds over HTTP: conditional GET, caching headers, gzip, CORS, HEAD, WebSub discovery, and the Redis cache of
rendered feeds that a new event invalidates."""

from __future__ import annotations

import asyncio
import gc
import gzip
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser
from aiohttp.test_utils import TestClient, TestServer
from arq.connections import ArqRedis
from multidict import MultiDict

from notifier.delivery.feed_urls import FeedNotFound, FeedSpec, resolve
from notifier.settings import Settings
from notifier.web.app import create_app
from notifier.web.feed_cache import FeedCache
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
    asked: list[str] = []

    def resolving(url: str) -> Callable[[], Awaitable[FeedSpec]]:
        async def read() -> FeedSpec:
            asked.append(url)
            await asyncio.sleep(0)  # others ask while this one is in flight
            return await resolve(factory.pool, url.split("?")[0], MultiDict())
        return read

    never = FeedCache(fresh=0)
    await never.spec(FEED, resolving(FEED))
    await never.spec(FEED, resolving(FEED))
    assert asked == [FEED, FEED]
    asked.clear()
    trusting = FeedCache(fresh=60)
    # twenty requests at once for a feed not yet read: one resolution, every request answered with it
    specs = await asyncio.gather(*(trusting.spec(FEED, resolving(FEED)) for _ in range(20)))
    assert asked == [FEED] and len({id(s) for s in specs}) == 1
    assert await trusting.spec(FEED, resolving(FEED)) is specs[0]
    await trusting.spec(FEED + "?limit=5", resolving(FEED + "?limit=5"))
    assert asked == [FEED, FEED + "?limit=5"]


async def test_feed_http_a_resolution_outlives_the_request_that_started_it() -> None:
    cache = FeedCache(fresh=60)
    started, go_on = asyncio.Event(), asyncio.Event()
    asked: list[str] = []

    async def read() -> FeedSpec:
        asked.append("read")
        started.set()
        await go_on.wait()
        raise FeedNotFound("no such feed")

    lost: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: lost.append(context))
    try:
        first = asyncio.ensure_future(cache.spec(FEED, read))
        await started.wait()
        first.cancel()  # its client went away
        second = asyncio.ensure_future(cache.spec(FEED, read))  # still answered by the same resolution
        await asyncio.sleep(0)
        go_on.set()
        outcomes = await asyncio.gather(first, second, return_exceptions=True)
        assert [type(o).__name__ for o in outcomes] == ["CancelledError", "FeedNotFound"]
        assert asked == ["read"]
        # and a failure nobody waits for any more is read, not reported as never retrieved
        go_on.clear()
        alone = asyncio.ensure_future(cache.spec(FEED, read))
        await started.wait()
        alone.cancel()
        go_on.set()
        await asyncio.gather(alone, return_exceptions=True)
        for _ in range(3):
            await asyncio.sleep(0)
        gc.collect()
        assert lost == []
    finally:
        loop.set_exception_handler(None)


async def test_feed_http_a_failed_resolution_fails_every_request_waiting_for_it(factory: Factory) -> None:
    cache = FeedCache(fresh=60)
    missing = "/feeds/councils/nowhere.atom"

    async def read() -> FeedSpec:
        await asyncio.sleep(0)
        return await resolve(factory.pool, missing, MultiDict())

    outcomes = await asyncio.gather(*(cache.spec(missing, read) for _ in range(3)), return_exceptions=True)
    assert [type(o).__name__ for o in outcomes] == ["FeedNotFound"] * 3
