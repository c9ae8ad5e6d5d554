"""Rendered feeds kept in Redis, so a popular feed is served from memory.

A key names everything a rendering depends on: the feed's path and search parameters, the page (limit, before),
the newest event id when it was rendered and, for calendars, the day (their window moves with the date). A new
event changes the newest id, so the next request renders again (in a web process that read the newest id less than
`NOTIFIER_FEED_FRESH_SECONDS` ago, the one after that); old keys simply expire. Redis is shared by every
web process; each also keeps the few hundred renderings it served last in memory, which saves the Redis round trip
for the popular ones (safe, since a key's rendering never changes). Redis being unreachable costs a rendering,
never an answer.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError

from notifier.delivery.feed_urls import FeedSpec

log = logging.getLogger(__name__)

TTL_SECONDS = 6 * 3600
PREFIX = "feed:"
LOCAL_ENTRIES = 256
SPEC_ENTRIES = 10_000


@dataclass(frozen=True)
class Rendered:
    body: bytes
    gzipped: bytes
    etag: str  # of the identity body, quoted; the gzipped one adds "-gz" inside the quotes
    last_modified: datetime | None

    @classmethod
    def of(cls, body: bytes, last_modified: datetime | None) -> Rendered:
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        # mtime=0: the same body always gzips to the same bytes
        return cls(body, gzip.compress(body, compresslevel=6, mtime=0), etag, last_modified)

    @property
    def gzip_etag(self) -> str:
        return self.etag[:-1] + '-gz"'


def cache_key(*parts: object) -> str:
    return PREFIX + hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()


class FeedCache:
    """One web process's view of the cache: its recent renderings, then Redis; and what it last read about each feed
    URL (its `FeedSpec`, with the newest event id), trusted for `fresh` seconds."""

    def __init__(self, local_entries: int = LOCAL_ENTRIES, *, fresh: float = 0.0) -> None:
        self._local: OrderedDict[str, Rendered] = OrderedDict()
        self._local_entries = local_entries
        self._fresh = fresh
        self._specs: OrderedDict[str, tuple[float, FeedSpec]] = OrderedDict()
        self._resolving: dict[str, asyncio.Future[FeedSpec]] = {}

    async def spec(self, url: str, resolve: Callable[[], Awaitable[FeedSpec]]) -> FeedSpec:
        """The feed at `url`: as read less than `fresh` seconds ago, or from `resolve()`. Requests for one URL that
        arrive while it is being resolved wait for that answer rather than each asking PostgreSQL (when the answer
        of a popular feed goes stale, every request in flight would otherwise miss at once)."""
        found = self._specs.get(url)
        if found is not None and found[0] >= time.monotonic():
            return found[1]
        if self._fresh <= 0:  # trusting nothing: every request reads for itself
            return await resolve()
        pending = self._resolving.get(url)
        if pending is None:
            # The resolution is settled by its task, not by the request that started it: that request may be
            # cancelled (its client gone) while others wait for the answer, or while none does.
            pending = self._resolving[url] = asyncio.ensure_future(resolve())
            pending.add_done_callback(lambda task: self._settled(url, task))
        return await asyncio.shield(pending)

    def _settled(self, url: str, task: asyncio.Future[FeedSpec]) -> None:
        """A resolution is done: remember its answer; a failure is read here, so that one no request waits for any
        more is not reported as lost (the requests that wait get it from `shield`)."""
        if self._resolving.get(url) is task:
            del self._resolving[url]
        if not task.cancelled() and task.exception() is None:
            self._remember_spec(url, task.result())

    def _remember_spec(self, url: str, spec: FeedSpec) -> None:
        if self._fresh <= 0:
            return
        self._specs[url] = (time.monotonic() + self._fresh, spec)
        self._specs.move_to_end(url)
        while len(self._specs) > SPEC_ENTRIES:
            self._specs.popitem(last=False)

    def _remember(self, key: str, rendered: Rendered) -> None:
        self._local[key] = rendered
        self._local.move_to_end(key)
        while len(self._local) > self._local_entries:
            self._local.popitem(last=False)

    async def get(self, redis: Redis, key: str) -> Rendered | None:
        found = self._local.get(key)
        if found is not None:
            self._local.move_to_end(key)
            return found
        try:
            meta, body, gz = await redis.hmget(key, ["meta", "body", "gz"])  # type: ignore[misc]
        except RedisError:
            log.warning("feed cache unreachable", exc_info=True)
            return None
        if meta is None or body is None or gz is None:
            return None
        m = json.loads(meta)
        last = datetime.fromisoformat(m["last_modified"]) if m["last_modified"] else None
        found = Rendered(body, gz, m["etag"], last)
        self._remember(key, found)
        return found

    async def put(self, redis: Redis, key: str, rendered: Rendered) -> None:
        self._remember(key, rendered)
        meta = json.dumps({"etag": rendered.etag,
                           "last_modified": rendered.last_modified.isoformat() if rendered.last_modified else None})
        try:
            async with redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping={"meta": meta, "body": rendered.body, "gz": rendered.gzipped})
                pipe.expire(key, TTL_SECONDS)
                await pipe.execute()
        except RedisError:
            log.warning("feed cache unreachable", exc_info=True)
