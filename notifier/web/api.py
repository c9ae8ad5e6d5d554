"""JSON API v1 for partner organisations: councils, items, events, subscribers, subscriptions, preview.

Every request carries `Authorization: Bearer <key>`; a partner sees and changes only its own subscribers and
subscriptions. Errors are RFC 9457 problems; lists are `{"items": [...], "next": cursor}`.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from notifier import subscriptions as subs
from notifier.models import (
    FilterModel,
    PreviewRequest,
    SubscriberCreate,
    SubscriptionCreate,
    SubscriptionPatch,
)
from notifier.partners import partner_for_key
from notifier.web.keys import POOL, REDIS, SETTINGS
from notifier.web.problems import Problem

routes = web.RouteTableDef()

PARTNER = web.RequestKey("partner", dict)  # set by `authenticated`
MAX_LIMIT = 200
DEFAULT_LIMIT = 50
M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# ---- plumbing ----


async def parse_request(request: web.Request, model: type[M]) -> M:
    """The request body as `model`, or a 400 (not JSON) / 422 (invalid, with every error) problem."""
    if request.content_type != "application/json":
        raise Problem(415, "Unsupported Media Type", "send a JSON body with Content-Type: application/json")
    try:
        raw = await request.read()
        data = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as e:
        raise Problem(400, "Bad Request", f"the body is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise Problem(400, "Bad Request", "the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise Problem(422, "Unprocessable Content", "the body is not valid", errors=_errors(e)) from e


def _errors(e: ValidationError) -> list[dict[str, Any]]:
    return [
        {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"], "type": err["type"]}
        for err in e.errors(include_url=False, include_input=False)
    ]


def filter_problem(e: subs.FilterError) -> Problem:
    err: dict[str, Any] = {"field": f"filter.{e.field}", "message": str(e)}
    if e.position is not None:
        err["position"] = e.position
    return Problem(422, "Unprocessable Content", str(e), errors=[err])


def authenticated(handler: Handler) -> Handler:
    async def check(request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        scheme, _, key = auth.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Problem(401, "Unauthorized", "send Authorization: Bearer <API key>")
        partner = await partner_for_key(request.app[POOL], key.strip())
        if partner is None:
            raise Problem(401, "Unauthorized", "unknown or disabled API key")
        await _rate_limit(request, partner)
        request[PARTNER] = partner
        return await handler(request)

    check.__name__ = handler.__name__
    return check


async def _rate_limit(request: web.Request, partner: dict[str, Any]) -> None:
    """A fixed one-minute window per partner, counted in Redis so every web process shares it."""
    window = int(time.time() // 60)
    key = f"notifier:rate:{partner['id']}:{window}"
    redis = request.app[REDIS]
    try:
        count = await redis.incr(key)
        if count == 1:
            await redis.expire(key, 120)
    except Exception:  # Redis down: serve rather than fail closed; /readyz reports Redis
        return
    limit = partner["rate_limit_per_minute"]
    if count > limit:
        raise Problem(
            429, "Too Many Requests", f"limit is {limit} requests a minute", retry_after=60 - int(time.time()) % 60
        )


def page_params(request: web.Request) -> tuple[int, int]:
    """(limit, after_id) from `?limit=&cursor=`."""
    try:
        limit = int(request.query.get("limit", DEFAULT_LIMIT))
    except ValueError as e:
        raise Problem(400, "Bad Request", "limit must be an integer") from e
    if not 1 <= limit <= MAX_LIMIT:
        raise Problem(400, "Bad Request", f"limit must be between 1 and {MAX_LIMIT}")
    cursor = request.query.get("cursor")
    after = 0
    if cursor:
        try:
            after = int(base64.urlsafe_b64decode(cursor.encode() + b"==").decode())
        except (ValueError, binascii.Error, UnicodeDecodeError) as e:
            raise Problem(400, "Bad Request", "cursor is not one this API gave out") from e
    return limit, after


def make_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(str(last_id).encode()).decode().rstrip("=")


def page(items: list[dict[str, Any]], limit: int, id_key: str = "id") -> dict[str, Any]:
    more = len(items) > limit
    items = items[:limit]
    return {"items": items, "next": make_cursor(items[-1][id_key]) if more and items else None}


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data, default=_json_default), status=status, content_type="application/json")


def path_id(request: web.Request, name: str = "id") -> int:
    try:
        value = int(request.match_info[name])
    except ValueError as e:
        raise Problem(404, "Not Found") from e
    if not 0 < value < 2**63:
        raise Problem(404, "Not Found")
    return value


def parse_time(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as e:
        raise Problem(400, "Bad Request", f"{name} must be an ISO 8601 date or time") from e
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# ---- councils, items, events ----


@routes.get("/api/v1/councils")
@authenticated
async def list_councils(request: web.Request) -> web.Response:
    limit, after = page_params(request)
    region = request.query.get("region")
    rows = await request.app[POOL].fetch(
        """
        select row_number() over (order by c.slug) as n, c.slug, c.name, c.region, c.nation, c.timezone, c.website
        from councils c where ($1::text is null or c.region = $1) order by c.slug
        """,
        region,
    )
    items = [dict(r) for r in rows if r["n"] > after][: limit + 1]
    for item in items:
        item["sources"] = await _source_health(request, item["slug"])
    out = page(items, limit, "n")
    for item in out["items"]:
        item.pop("n")
    return json_response(out)


async def _source_health(request: web.Request, council: str) -> list[dict[str, Any]]:
    rows = await request.app[POOL].fetch(
        """
        select id, kind, url, enabled, last_success_at, last_error, last_error_at, consecutive_failures
        from sources where council = $1 order by id
        """,
        council,
    )
    return [dict(r) for r in rows]


@routes.get("/api/v1/councils/{slug}")
@authenticated
async def get_council(request: web.Request) -> web.Response:
    row = await request.app[POOL].fetchrow(
        "select slug, name, region, nation, timezone, website from councils where slug = $1",
        request.match_info["slug"],
    )
    if row is None:
        raise Problem(404, "Not Found", "no such council")
    out = dict(row)
    out["sources"] = await _source_health(request, out["slug"])
    return json_response(out)


ITEM_FIELDS = """
    i.id, i.kind, i.external_id, i.council, i.committee, i.committee_id, i.title, i.body, i.starts_at,
    i.published_at, i.status, i.url, i.parent_id, i.data - (select coalesce(array_agg(k), '{}')
    from jsonb_object_keys(i.data) k where k like '\\_%') as data, i.first_seen_at, i.updated_at
"""


@routes.get("/api/v1/items")
@authenticated
async def list_items(request: web.Request) -> web.Response:
    from notifier.search import compile_query

    limit, after = page_params(request)
    q = request.query.get("q", "")
    try:
        tsquery = compile_query(q)
    except subs.FilterError as e:
        raise filter_problem(e) from e
    kind = request.query.get("kind")
    rows = await request.app[POOL].fetch(
        f"""
        select {ITEM_FIELDS}
        from items i
        where i.id > $1
          and ($2::text is null or i.council = $2)
          and ($3::text is null or i.committee_id = $3 or i.committee ilike $3)
          and ($4::text is null or i.kind = $4)
          and ($5::text is null or i.status = $5)
          and ($6::timestamptz is null or i.starts_at >= $6)
          and ($7::timestamptz is null or i.starts_at < $7)
          and ($8::text is null or i.search @@ $8::tsquery)
        order by i.id
        limit $9
        """,
        after,
        request.query.get("council"),
        request.query.get("committee"),
        kind,
        request.query.get("status"),
        parse_time(request, "from"),
        parse_time(request, "to"),
        tsquery,
        limit + 1,
    )
    return json_response(page([dict(r) for r in rows], limit))


@routes.get("/api/v1/meetings")
@authenticated
async def list_meetings(request: web.Request) -> web.Response:
    raise web.HTTPFound(f"/api/v1/items?kind=meeting&{request.query_string}".rstrip("&"))


@routes.get("/api/v1/items/{id}")
@authenticated
async def get_item(request: web.Request) -> web.Response:
    row = await request.app[POOL].fetchrow(f"select {ITEM_FIELDS} from items i where i.id = $1", path_id(request))
    if row is None:
        raise Problem(404, "Not Found", "no such item")
    return json_response(dict(row))


@routes.get("/api/v1/events")
@authenticated
async def list_events(request: web.Request) -> web.Response:
    try:
        after = int(request.query.get("after", "0"))
    except ValueError as e:
        raise Problem(400, "Bad Request", "after must be an event id") from e
    limit, cursor_after = page_params(request)
    after = max(after, cursor_after)
    types = [t for t in request.query.get("types", "").split(",") if t]
    rows = await request.app[POOL].fetch(
        """
        select e.id, e.type, e.council, e.occurred_at, e.changes, e.summary,
               json_build_object('id', i.id, 'kind', i.kind, 'title', i.title, 'committee', i.committee,
                                 'starts_at', i.starts_at, 'status', i.status, 'url', i.url) as item
        from events e join items i on i.id = e.item_id
        where e.id > $1 and (cardinality($2::text[]) = 0 or e.type = any($2)) and ($3::text is null or e.council = $3)
        order by e.id
        limit $4
        """,
        after,
        types,
        request.query.get("council"),
        limit + 1,
    )
    return json_response(page([dict(r) for r in rows], limit))


# ---- subscribers ----


def _partner_id(request: web.Request) -> int:
    partner_id: int = request[PARTNER]["id"]
    return partner_id


def _subscriber_json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "email": row["email"],
        "status": row["status"],
        "timezone": row["timezone"],
        "created_at": row["created_at"],
        "confirmed_at": row["confirmed_at"],
    }


async def _own_subscriber(request: web.Request, subscriber_id: int) -> Any:
    row = await request.app[POOL].fetchrow(
        "select * from subscribers where id = $1 and partner_id = $2", subscriber_id, _partner_id(request)
    )
    if row is None:
        raise Problem(404, "Not Found", "no such subscriber")
    return row


@routes.post("/api/v1/subscribers")
@authenticated
async def create_subscriber(request: web.Request) -> web.Response:
    body = await parse_request(request, SubscriberCreate)
    settings = request.app[SETTINGS]
    try:
        tz = subs.check_timezone(body.timezone, settings.default_timezone)
    except subs.FilterError as e:
        raise Problem(422, "Unprocessable Content", str(e), errors=[{"field": "timezone", "message": str(e)}]) from e
    pool = request.app[POOL]
    result = await subs.get_or_create_subscriber(
        pool, body.email, timezone=tz, partner_id=_partner_id(request), vouched=body.consent == "vouched"
    )
    row = await pool.fetchrow("select * from subscribers where id = $1", result.id)
    return json_response(_subscriber_json(row), status=201 if result.created else 200)


@routes.get("/api/v1/subscribers/{id}")
@authenticated
async def get_subscriber(request: web.Request) -> web.Response:
    return json_response(_subscriber_json(await _own_subscriber(request, path_id(request))))


@routes.delete("/api/v1/subscribers/{id}")
@authenticated
async def delete_subscriber(request: web.Request) -> web.Response:
    row = await _own_subscriber(request, path_id(request))
    await subs.erase(request.app[POOL], row["id"])
    return web.Response(status=204)


@routes.get("/api/v1/subscribers/{id}/export")
@authenticated
async def export_subscriber(request: web.Request) -> web.Response:
    row = await _own_subscriber(request, path_id(request))
    return json_response(await subs.export(request.app[POOL], row["id"]))


# ---- subscriptions ----


def subscription_json(row: Any, base_url: str) -> dict[str, Any]:
    return {
        "id": row["id"],
        "subscriber_id": row["subscriber_id"],
        "filter": {
            "query": row["query"],
            "councils": row["councils"],
            "regions": row["regions"],
            "committees": row["committees"],
            "kinds": row["kinds"],
            "event_types": row["event_types"],
        },
        "frequency": row["frequency"],
        "hour": row["hour"],
        "weekday": row["weekday"],
        "paused_until": row["paused_until"],
        "created_at": row["created_at"],
        "confirmed_at": row["confirmed_at"],
        "feed_url": f"{base_url}/feeds/s/{row['feed_token']}.atom",
    }


async def _own_subscription(request: web.Request, subscription_id: int) -> Any:
    row = await request.app[POOL].fetchrow(
        "select * from subscriptions where id = $1 and partner_id = $2 and channel = 'email'",
        subscription_id,
        _partner_id(request),
    )
    if row is None:
        raise Problem(404, "Not Found", "no such subscription")
    return row


@routes.post("/api/v1/subscriptions")
@authenticated
async def create_subscription(request: web.Request) -> web.Response:
    from notifier.delivery.email.confirmations import enqueue_confirmation

    body = await parse_request(request, SubscriptionCreate)
    subscriber = await request.app[POOL].fetchrow(
        "select * from subscribers where id = $1 and partner_id = $2", body.subscriber_id, _partner_id(request)
    )
    if subscriber is None:
        raise Problem(
            422,
            "Unprocessable Content",
            "no such subscriber",
            errors=[{"field": "subscriber_id", "message": "no such subscriber"}],
        )
    pool = request.app[POOL]
    try:
        f = await subs.validate_filter(pool, body.filter)
    except subs.FilterError as e:
        raise filter_problem(e) from e
    row = await subs.create_subscription(
        pool,
        subscriber["id"],
        f,
        frequency=body.frequency,
        hour=body.hour,
        weekday=body.weekday,
        partner_id=_partner_id(request),
        confirmed=True,
    )
    if subscriber["status"] == "pending":
        await enqueue_confirmation(pool, request.app[REDIS], subscriber["id"], None)
    return json_response(subscription_json(row, request.app[SETTINGS].base_url), status=201)


@routes.get("/api/v1/subscriptions")
@authenticated
async def list_subscriptions(request: web.Request) -> web.Response:
    limit, after = page_params(request)
    subscriber = request.query.get("subscriber_id")
    rows = await request.app[POOL].fetch(
        """
        select * from subscriptions
        where partner_id = $1 and channel = 'email' and id > $2 and ($3::bigint is null or subscriber_id = $3)
        order by id limit $4
        """,
        _partner_id(request),
        after,
        int(subscriber) if subscriber and subscriber.isdigit() else None,
        limit + 1,
    )
    base = request.app[SETTINGS].base_url
    out = page([dict(r) for r in rows], limit)
    out["items"] = [subscription_json(r, base) for r in out["items"]]
    return json_response(out)


@routes.get("/api/v1/subscriptions/{id}")
@authenticated
async def get_subscription(request: web.Request) -> web.Response:
    row = await _own_subscription(request, path_id(request))
    return json_response(subscription_json(row, request.app[SETTINGS].base_url))


@routes.patch("/api/v1/subscriptions/{id}")
@authenticated
async def patch_subscription(request: web.Request) -> web.Response:
    row = await _own_subscription(request, path_id(request))
    body = await parse_request(request, SubscriptionPatch)
    pool = request.app[POOL]
    fields = body.model_fields_set
    f: FilterModel | None = None
    if body.filter is not None:
        try:
            f = await subs.validate_filter(pool, body.filter)
        except subs.FilterError as e:
            raise filter_problem(e) from e
    updated = await pool.fetchrow(
        """
        update subscriptions set
            query = coalesce($2, query), councils = coalesce($3, councils), regions = coalesce($4, regions),
            committees = coalesce($5, committees), kinds = coalesce($6, kinds),
            event_types = coalesce($7, event_types), frequency = coalesce($8, frequency),
            hour = case when $9 then $10 else hour end, weekday = case when $11 then $12 else weekday end,
            paused_until = case when $13 then $14 else paused_until end, updated_at = now()
        where id = $1
        returning *
        """,
        row["id"],
        f.query if f else None,
        f.councils if f else None,
        f.regions if f else None,
        f.committees if f else None,
        [k.value for k in f.kinds] if f else None,
        [e.value for e in f.event_types] if f else None,
        body.frequency.value if body.frequency else None,
        "hour" in fields,
        body.hour,
        "weekday" in fields,
        body.weekday,
        "paused_until" in fields,
        body.paused_until,
    )
    return json_response(subscription_json(updated, request.app[SETTINGS].base_url))


@routes.delete("/api/v1/subscriptions/{id}")
@authenticated
async def delete_subscription(request: web.Request) -> web.Response:
    row = await _own_subscription(request, path_id(request))
    await request.app[POOL].execute("delete from subscriptions where id = $1", row["id"])
    return web.Response(status=204)


@routes.post("/api/v1/subscriptions/preview")
@authenticated
async def preview(request: web.Request) -> web.Response:
    from notifier.search import preview_filter

    body = await parse_request(request, PreviewRequest)
    pool = request.app[POOL]
    try:
        f = await subs.validate_filter(pool, body.filter)
    except subs.FilterError as e:
        raise filter_problem(e) from e
    return json_response(await preview_filter(pool, f))
