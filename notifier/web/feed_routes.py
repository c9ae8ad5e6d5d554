"""Feed URLs: per council, per committee, by search, and per subscription, as Atom, RSS or iCal, with ETag and
Last-Modified so feed readers and calendars that ask again get a 304."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from notifier.feeds import CONTENT_TYPES, render_calendar, render_events_feed
from notifier.matching.documents import query_snippets
from notifier.matching.search import FILTERED_EVENTS, filter_args, parsed_query
from notifier.models import FilterModel
from notifier.subscriptions import FilterError, describe_subscription
from notifier.web.keys import POOL, SETTINGS

routes = web.RouteTableDef()

FEED_DAYS = 90
FEED_LIMIT = 100
CALENDAR_BACK = timedelta(days=60)
CALENDAR_AHEAD = timedelta(days=365)

# Meetings restricted by a filter, for calendars: $1 tsquery (or null), $2 councils, $3 regions, $4 committees,
# $5 from, $6 to.
_FILTERED_MEETINGS = """
    select i.id, i.title, i.committee, i.starts_at, i.status, i.url, i.data, i.updated_at, c.name as council_name
    from items i join councils c on c.slug = i.council
    where i.kind = 'meeting' and i.starts_at >= $5 and i.starts_at < $6
      and ($1::text is null or i.search @@ $1::tsquery)
      and (cardinality($2::text[]) = 0 and cardinality($3::text[]) = 0
           or i.council = any($2) or c.region = any($3))
      and (cardinality($4::text[]) = 0 or i.committee = any($4) or i.committee_id = any($4))
    order by i.starts_at
    limit 2000
"""


def _format(request: web.Request) -> str:
    fmt = request.match_info["fmt"]
    if fmt not in CONTENT_TYPES:
        raise web.HTTPNotFound(text="feeds are .atom, .rss or .ics")
    return fmt


async def _render(request: web.Request, f: FilterModel, title: str) -> web.Response:
    fmt = _format(request)
    pool = request.app[POOL]
    settings = request.app[SETTINGS]
    now = datetime.now(UTC)
    try:
        args = filter_args(f, now - timedelta(days=FEED_DAYS))
    except FilterError as e:
        raise web.HTTPBadRequest(text=f"bad query: {e}") from e
    self_url = f"{settings.base_url}{request.path_qs}"
    if fmt == "ics":
        rows = await pool.fetch(
            _FILTERED_MEETINGS, args[0], args[1], args[2], args[3], now - CALENDAR_BACK, now + CALENDAR_AHEAD
        )
        last = max((r["updated_at"] for r in rows), default=None)
        body = render_calendar([dict(r) for r in rows], title=title, base_url=settings.base_url, now=last or now)
    else:
        rows = await pool.fetch(f"{FILTERED_EVENTS} order by e.id desc limit {FEED_LIMIT}", *args)
        last = max((r["occurred_at"] for r in rows), default=None)
        snippets = await query_snippets(pool, rows, parsed_query(f.query))
        body = render_events_feed(
            fmt,
            [{**dict(r), "snippets": snippets.get(r["id"], [])} for r in rows],
            title=title,
            self_url=self_url,
            base_url=settings.base_url,
            subtitle=f"Council alerts: {describe_subscription(f)}",
        )
    return _conditional(request, body, fmt, last)


def _conditional(request: web.Request, body: bytes, fmt: str, last: datetime | None) -> web.Response:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "public, max-age=300"}
    if last is not None:
        headers["Last-Modified"] = format_datetime(last.astimezone(UTC).replace(microsecond=0), usegmt=True)
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        if etag in [t.strip() for t in if_none_match.split(",")] or if_none_match.strip() == "*":
            return web.Response(status=304, headers=headers)
    elif last is not None and (since := request.headers.get("If-Modified-Since")):
        try:
            if last.replace(microsecond=0) <= parsedate_to_datetime(since):
                return web.Response(status=304, headers=headers)
        except (TypeError, ValueError):
            pass
    resp = web.Response(body=body, headers=headers)
    resp.headers["Content-Type"] = CONTENT_TYPES[fmt]
    return resp


async def _council(request: web.Request, slug: str) -> Any:
    row = await request.app[POOL].fetchrow("select slug, name from councils where slug = $1", slug)
    if row is None:
        raise web.HTTPNotFound(text="no such council")
    return row


@routes.get(r"/feeds/councils/{slug:[a-z0-9-]+}.{fmt:atom|rss|ics}")
async def council_feed(request: web.Request) -> web.Response:
    council = await _council(request, request.match_info["slug"])
    return await _render(request, FilterModel(councils=[council["slug"]]), council["name"])


@routes.get(r"/feeds/councils/{slug:[a-z0-9-]+}/committees/{committee:[^/.]+}.{fmt:atom|rss|ics}")
async def committee_feed(request: web.Request) -> web.Response:
    council = await _council(request, request.match_info["slug"])
    committee = request.match_info["committee"]
    name = await request.app[POOL].fetchval(
        "select committee from items where council = $1 and committee_id = $2 limit 1", council["slug"], committee
    )
    if name is None:
        raise web.HTTPNotFound(text="no such committee")
    return await _render(
        request, FilterModel(councils=[council["slug"]], committees=[committee]), f"{name}, {council['name']}"
    )


@routes.get(r"/feeds/search.{fmt:atom|rss|ics}")
async def search_feed(request: web.Request) -> web.Response:
    q = request.query
    try:
        f = FilterModel(
            query=q.get("q", ""),
            councils=q.getall("council", []),
            regions=q.getall("region", []),
            committees=q.getall("committee", []),
        )
    except ValidationError as e:
        raise web.HTTPBadRequest(text=f"bad filter: {e.errors()[0]['msg']}") from e
    title = f"Search: {f.query}" if f.query else "Council alerts"
    return await _render(request, f, title)


@routes.get(r"/feeds/s/{token:[A-Za-z0-9_-]+}.{fmt:atom|rss|ics}")
async def subscription_feed(request: web.Request) -> web.Response:
    row = await request.app[POOL].fetchrow(
        "select query, councils, regions, committees, kinds, event_types from subscriptions where feed_token = $1",
        request.match_info["token"],
    )
    if row is None:
        raise web.HTTPNotFound(text="no such feed")
    f = FilterModel(**dict(row))
    return await _render(request, f, f"Council alerts: {describe_subscription(f)}")
