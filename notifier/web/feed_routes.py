"""Feed URLs: per council, per committee, by search, and per subscription, as Atom, RSS, JSON Feed or iCal.

HTTP as feed readers and calendars expect it: a strong ETag and Last-Modified with 304s, Cache-Control, gzip when
asked for (with Vary), CORS on public feeds, HEAD, RFC 5005 paging (`?limit=`, `?before=` an event id, reached by
the `next` link), WebSub discovery in Link headers, and problems (RFC 9457) for unknown feeds and bad queries.
A feed costs one query to resolve it (and read the newest event id; a web process trusts that answer for
NOTIFIER_FEED_FRESH_SECONDS) and, when it is not in the cache, one to read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import format_datetime, parsedate_to_datetime
from functools import lru_cache

from aiohttp import web
from multidict import CIMultiDict

from notifier.delivery.feed_urls import FeedNotFound, FeedQueryError, FeedSpec, feed_url, resolve
from notifier.delivery.websub import HUB_PATH
from notifier.feed_calendar import render_calendar
from notifier.feeds import CONTENT_TYPES, FeedPage, entry_updated, render_events_feed
from notifier.web.feed_cache import FeedCache, Rendered, cache_key
from notifier.web.feed_specs import DEFAULT_LIMIT, MAX_LIMIT, load_events, load_meetings
from notifier.web.keys import POOL, REDIS, SETTINGS
from notifier.web.problems import Problem

routes = web.RouteTableDef()
FEED_CACHE = web.AppKey("feed_cache", FeedCache)

MAX_AGE = 300
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "ETag, Last-Modified, Link",
}


def _paging(request: web.Request) -> tuple[int, int | None]:
    try:
        limit = int(request.query.get("limit", DEFAULT_LIMIT))
        before = int(request.query["before"]) if "before" in request.query else None
    except ValueError as e:
        raise Problem(400, "Bad Request", "limit and before are whole numbers") from e
    if not 1 <= limit <= MAX_LIMIT:
        raise Problem(400, "Bad Request", f"limit is between 1 and {MAX_LIMIT}")
    if before is not None and before < 1:
        raise Problem(400, "Bad Request", "before is an event id")
    return limit, before


@dataclass(frozen=True, slots=True)
class _Page:
    """What answering one page of a feed needs besides its rendering; the same for every request of that URL until
    a new event (or, for calendars, a new day), so it is worked out once and remembered."""

    key: str  # of the rendering in the cache
    self_url: str
    page_params: tuple[tuple[str, str], ...]
    link: str  # the Link header: the hub, and the feed itself (whichever page this is) as the WebSub topic
    cache_control: str


@lru_cache(maxsize=4096)
def _page(base: str, path: str, params: tuple[tuple[str, str], ...], public: bool, latest: int, limit: int,
          before: int | None, today: date | None) -> _Page:
    search = list(params)
    page_params = search + ([("limit", str(limit))] if limit != DEFAULT_LIMIT else [])
    self_url = feed_url(base, path, page_params + ([("before", str(before))] if before else []))
    topic = feed_url(base, path, search)
    return _Page(
        key=cache_key(path, params, limit, before, latest, today, base),
        self_url=self_url,
        page_params=tuple(page_params),
        link=f'<{base}{HUB_PATH}>; rel="hub", <{topic}>; rel="self"',
        cache_control=f"{'public' if public else 'private'}, max-age={MAX_AGE}",
    )


async def _feed(request: web.Request) -> web.StreamResponse:
    cache = request.app[FEED_CACHE]
    try:
        spec = await cache.spec(request.path_qs, lambda: resolve(request.app[POOL], request.path, request.query))
    except FeedNotFound as e:
        raise Problem(404, "Not Found", str(e)) from e
    except FeedQueryError as e:
        raise Problem(400, "Bad Request", str(e), position=e.position) from e
    limit, before = _paging(request)
    today = datetime.now(UTC).date() if spec.fmt == "ics" else None
    page = _page(request.app[SETTINGS].base_url, spec.path, spec.params, spec.public, spec.latest, limit, before,
                 today)
    redis = request.app[REDIS]
    rendered = await cache.get(redis, page.key)
    if rendered is None:
        rendered = await _render(request, spec, limit=limit, before=before, self_url=page.self_url,
                                 page_params=list(page.page_params))
        await cache.put(redis, page.key, rendered)
    return _respond(request, spec, page, rendered, gzipped=_accepts_gzip(request))


async def _render(
    request: web.Request, spec: FeedSpec, *, limit: int, before: int | None, self_url: str,
    page_params: list[tuple[str, str]],
) -> Rendered:
    pool = request.app[POOL]
    base = request.app[SETTINGS].base_url
    if spec.fmt == "ics":
        meetings = await load_meetings(pool, spec, datetime.now(UTC))
        last = max((m["updated_at"] for m in meetings), default=None)
        return Rendered.of(render_calendar(meetings, title=spec.title, base_url=base, self_url=self_url), last)
    events, next_before = await load_events(pool, spec, limit=limit, before=before)
    next_url = feed_url(base, spec.path, [*page_params, ("before", str(next_before))]) if next_before else None
    page = FeedPage(spec.title, spec.subtitle, self_url, base, f"{base}{HUB_PATH}", next_url)
    last = max((entry_updated(e) for e in events), default=None)
    return Rendered.of(render_events_feed(spec.fmt, events, page), last)


def _accepts_gzip(request: web.Request) -> bool:
    for part in request.headers.get("Accept-Encoding", "").split(","):
        coding, _, q = part.strip().partition(";")
        if coding.strip().lower() == "gzip":
            return q.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _respond(request: web.Request, spec: FeedSpec, page: _Page, r: Rendered, *, gzipped: bool) -> web.Response:
    etag = r.gzip_etag if gzipped else r.etag
    if _not_modified(request, (r.etag, r.gzip_etag), r.last_modified):
        return web.Response(status=304, headers=_headers(page, spec.public, etag, r.last_modified, gzipped, None))
    content_type = CONTENT_TYPES[spec.fmt]
    return web.Response(body=r.gzipped if gzipped else r.body,
                        headers=_headers(page, spec.public, etag, r.last_modified, gzipped, content_type))


@lru_cache(maxsize=4096)
def _headers(page: _Page, public: bool, etag: str, last_modified: datetime | None, gzipped: bool,
             content_type: str | None) -> CIMultiDict[str]:
    """An answer's headers (a 304's when `content_type` is None), built once per rendering: aiohttp copies them into
    each response, so the remembered ones are never changed."""
    headers = CIMultiDict({
        "ETag": etag,
        "Cache-Control": page.cache_control,
        "Vary": "Accept-Encoding",
        "Link": page.link,
    })
    if public:
        headers.update(CORS)
    if last_modified is not None:
        headers["Last-Modified"] = format_datetime(last_modified.astimezone(UTC).replace(microsecond=0), usegmt=True)
    if content_type is not None:
        headers["Content-Type"] = content_type
        if gzipped:
            headers["Content-Encoding"] = "gzip"
    return headers


def _not_modified(request: web.Request, etags: tuple[str, str], last: datetime | None) -> bool:
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        given = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return "*" in given or any(t in given for t in etags)
    since = request.headers.get("If-Modified-Since")
    if last is None or not since:
        return False
    try:
        return last.replace(microsecond=0) <= parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False


@routes.get(r"/feeds/councils/{slug:[a-z0-9-]+}.{fmt:atom|rss|json|ics}")
async def council_feed(request: web.Request) -> web.StreamResponse:
    return await _feed(request)


@routes.get(r"/feeds/councils/{slug:[a-z0-9-]+}/committees/{committee:[^/.]+}.{fmt:atom|rss|json|ics}")
async def committee_feed(request: web.Request) -> web.StreamResponse:
    return await _feed(request)


@routes.get(r"/feeds/search.{fmt:atom|rss|json|ics}")
async def search_feed(request: web.Request) -> web.StreamResponse:
    return await _feed(request)


@routes.get(r"/feeds/s/{token:[A-Za-z0-9_-]+}.{fmt:atom|rss|json|ics}")
async def subscription_feed(request: web.Request) -> web.StreamResponse:
    return await _feed(request)


@routes.route("OPTIONS", r"/feeds/{tail:.+\.(?:atom|rss|json|ics)}")
async def feed_preflight(request: web.Request) -> web.StreamResponse:
    """CORS preflight: a page's script may send If-None-Match and If-Modified-Since."""
    return web.Response(status=204, headers={
        **CORS,
        "Access-Control-Allow-Methods": "GET, HEAD",
        "Access-Control-Allow-Headers": "If-None-Match, If-Modified-Since",
        "Access-Control-Max-Age": "86400",
    })
