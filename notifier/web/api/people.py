"""Subscribers and their email subscriptions, kept by a partner on behalf of its users, and the preview of what a
filter would have matched."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from notifier import subscriptions as subs
from notifier.delivery.email.confirmations import enqueue_confirmation
from notifier.matching.search import preview_filter
from notifier.models import FilterModel, PreviewRequest, SubscriberCreate, SubscriptionCreate, SubscriptionPatch
from notifier.web.api.plumbing import decode_cursor, filter_problem, operation, page_of, partner_id, path_id, respond
from notifier.web.api.schemas import Page, Preview, Subscriber, SubscriberExport, Subscription, SubscriptionsQuery
from notifier.web.keys import POOL, REDIS, SETTINGS
from notifier.web.problems import Problem


def _subscriber(row: Any) -> Subscriber:
    return Subscriber(id=row["id"], email=row["email"], status=row["status"], timezone=row["timezone"],
                      created_at=row["created_at"], confirmed_at=row["confirmed_at"])


async def _own_subscriber(request: web.Request, subscriber_id: int) -> Any:
    row = await request.app[POOL].fetchrow(
        "select * from subscribers where id = $1 and partner_id = $2", subscriber_id, partner_id(request)
    )
    if row is None:
        raise Problem(404, "Not Found", "no such subscriber")
    return row


@operation("POST", "/api/v1/subscribers", tag="subscribers", status=201, body=SubscriberCreate,
           response=Subscriber, summary="Add a subscriber (201), or find the partner's subscriber with that "
           "address (200); with consent \"confirm\" they are asked to confirm by email")
async def create_subscriber(request: web.Request, body: SubscriberCreate) -> web.Response:
    settings = request.app[SETTINGS]
    try:
        tz = subs.check_timezone(body.timezone, settings.default_timezone)
    except subs.FilterError as e:
        raise Problem(422, "Unprocessable Content", str(e), errors=[{"field": "timezone", "message": str(e)}]) from e
    pool = request.app[POOL]
    result = await subs.get_or_create_subscriber(
        pool, body.email, timezone=tz, partner_id=partner_id(request), vouched=body.consent == "vouched"
    )
    row = await pool.fetchrow("select * from subscribers where id = $1", result.id)
    return respond(_subscriber(row), status=201 if result.created else 200)


@operation("GET", "/api/v1/subscribers/{id}", tag="subscribers", summary="One subscriber", response=Subscriber)
async def get_subscriber(request: web.Request) -> web.Response:
    return respond(_subscriber(await _own_subscriber(request, path_id(request))))


@operation("DELETE", "/api/v1/subscribers/{id}", tag="subscribers", status=204,
           summary="Erase a subscriber and everything held about them")
async def delete_subscriber(request: web.Request) -> web.Response:
    row = await _own_subscriber(request, path_id(request))
    await subs.erase(request.app[POOL], row["id"])
    return web.Response(status=204)


@operation("GET", "/api/v1/subscribers/{id}/export", tag="subscribers", response=SubscriberExport,
           summary="Everything held about a subscriber")
async def export_subscriber(request: web.Request) -> web.Response:
    row = await _own_subscriber(request, path_id(request))
    data = await subs.export(request.app[POOL], row["id"])
    if data is None:
        raise Problem(404, "Not Found", "no such subscriber")
    return respond(SubscriberExport(**data))


def subscription_model(row: Any, base_url: str) -> Subscription:
    return Subscription(
        id=row["id"],
        subscriber_id=row["subscriber_id"],
        filter=FilterModel(query=row["query"], councils=row["councils"], regions=row["regions"],
                           committees=row["committees"], kinds=row["kinds"], event_types=row["event_types"]),
        frequency=row["frequency"],
        hour=row["hour"],
        weekday=row["weekday"],
        paused_until=row["paused_until"],
        created_at=row["created_at"],
        confirmed_at=row["confirmed_at"],
        feed_url=f"{base_url}/feeds/s/{row['feed_token']}.atom",
    )


async def _own_subscription(request: web.Request, subscription_id: int) -> Any:
    row = await request.app[POOL].fetchrow(
        "select * from subscriptions where id = $1 and partner_id = $2 and channel = 'email'",
        subscription_id,
        partner_id(request),
    )
    if row is None:
        raise Problem(404, "Not Found", "no such subscription")
    return row


@operation("POST", "/api/v1/subscriptions", tag="subscriptions", status=201, body=SubscriptionCreate,
           response=Subscription, summary="Add an email subscription for one of the partner's subscribers")
async def create_subscription(request: web.Request, body: SubscriptionCreate) -> web.Response:
    pool = request.app[POOL]
    subscriber = await pool.fetchrow(
        "select * from subscribers where id = $1 and partner_id = $2", body.subscriber_id, partner_id(request)
    )
    if subscriber is None:
        raise Problem(422, "Unprocessable Content", "no such subscriber",
                      errors=[{"field": "subscriber_id", "message": "no such subscriber"}])
    try:
        f = await subs.validate_filter(pool, body.filter)
    except subs.FilterError as e:
        raise filter_problem(e) from e
    row = await subs.create_subscription(
        pool, subscriber["id"], f, frequency=body.frequency, hour=body.hour, weekday=body.weekday,
        partner_id=partner_id(request), confirmed=True,
    )
    if subscriber["status"] == "pending":
        await enqueue_confirmation(pool, request.app[REDIS], subscriber["id"], None)
    return respond(subscription_model(row, request.app[SETTINGS].base_url), status=201)


@operation("GET", "/api/v1/subscriptions", tag="subscriptions", query=SubscriptionsQuery,
           response=Page[Subscription], summary="The partner's email subscriptions")
async def list_subscriptions(request: web.Request, query: SubscriptionsQuery) -> web.Response:
    rows = await request.app[POOL].fetch(
        """
        select * from subscriptions
        where partner_id = $1 and channel = 'email' and id > $2 and ($3::bigint is null or subscriber_id = $3)
        order by id limit $4
        """,
        partner_id(request), decode_cursor(query.cursor), query.subscriber_id, query.limit + 1,
    )
    items, next_cursor = page_of([dict(r) for r in rows], query.limit)
    base = request.app[SETTINGS].base_url
    return respond(Page[Subscription](items=[subscription_model(r, base) for r in items], next=next_cursor))


@operation("GET", "/api/v1/subscriptions/{id}", tag="subscriptions", response=Subscription,
           summary="One subscription")
async def get_subscription(request: web.Request) -> web.Response:
    row = await _own_subscription(request, path_id(request))
    return respond(subscription_model(row, request.app[SETTINGS].base_url))


@operation("PATCH", "/api/v1/subscriptions/{id}", tag="subscriptions", body=SubscriptionPatch,
           response=Subscription, summary="Change a subscription's filter, frequency or pause")
async def patch_subscription(request: web.Request, body: SubscriptionPatch) -> web.Response:
    row = await _own_subscription(request, path_id(request))
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
    return respond(subscription_model(updated, request.app[SETTINGS].base_url))


@operation("DELETE", "/api/v1/subscriptions/{id}", tag="subscriptions", status=204, summary="Remove a subscription")
async def delete_subscription(request: web.Request) -> web.Response:
    row = await _own_subscription(request, path_id(request))
    await request.app[POOL].execute("delete from subscriptions where id = $1", row["id"])
    return web.Response(status=204)


@operation("POST", "/api/v1/subscriptions/{id}/rotate-feed-token", tag="subscriptions", response=Subscription,
           summary="A new private feed URL for a subscription; the old one answers 404 from now on")
async def rotate_feed_token(request: web.Request) -> web.Response:
    row = await _own_subscription(request, path_id(request))
    pool = request.app[POOL]
    try:
        await subs.rotate_feed_token(pool, row["id"])
    except LookupError as e:  # deleted meanwhile
        raise Problem(404, "Not Found", "no such subscription") from e
    updated = await pool.fetchrow("select * from subscriptions where id = $1", row["id"])
    if updated is None:
        raise Problem(404, "Not Found", "no such subscription")
    return respond(subscription_model(updated, request.app[SETTINGS].base_url))


@operation("POST", "/api/v1/subscriptions/preview", tag="subscriptions", body=PreviewRequest, response=Preview,
           summary="What a filter would have matched in the last 30 days, and about how many a week")
async def preview(request: web.Request, body: PreviewRequest) -> web.Response:
    pool = request.app[POOL]
    try:
        f = await subs.validate_filter(pool, body.filter)
    except subs.FilterError as e:
        raise filter_problem(e) from e
    return respond(Preview(**await preview_filter(pool, f)))
