"""Webhook endpoints: partners create them with a filter, receive signed deliveries, and manage them here.

A URL is checked when set (form, and every address its host resolves to now) and again at every send. Another
partner's endpoint answers 404 to every verb, exactly like one that does not exist.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from notifier import subscriptions as subs
from notifier.delivery.webhooks import endpoints
from notifier.delivery.webhooks.targets import TargetRefused, vet_url
from notifier.matching.search import FILTERED_EVENTS, filter_args
from notifier.models import FilterModel, ReplayRequest, WebhookCreate, WebhookPatch
from notifier.web.api.plumbing import decode_cursor, filter_problem, operation, page_of, partner_id, path_id, respond
from notifier.web.api.schemas import (
    Page,
    PageQuery,
    PingQueued,
    ReplayQueued,
    SecretRotated,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookEndpointCreated,
)
from notifier.web.keys import POOL, REDIS, RESOLVER, SETTINGS
from notifier.web.problems import Problem

REPLAY_LIMIT = 1000  # events re-sent by one replay; the answer says where to go on from
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def endpoint_model(row: dict[str, Any]) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=row["id"], url=row["url"], description=row["description"], status=row["status"],
        disabled_reason=row["disabled_reason"], disabled_at=row["disabled_at"], failure_streak=row["failure_streak"],
        failing_since=row["failing_since"], previous_secret_expires_at=row["previous_secret_expires_at"],
        created_at=row["created_at"], updated_at=row["updated_at"],
        filter=FilterModel(query=row["query"], councils=row["councils"], regions=row["regions"],
                           committees=row["committees"], kinds=row["kinds"], event_types=row["event_types"]),
    )


async def _vetted_url(request: web.Request, url: str) -> str:
    try:
        target = await vet_url(url, request.app[RESOLVER],
                               allow_private=request.app[SETTINGS].webhook_allow_private_targets)
    except (TargetRefused, socket.gaierror, UnicodeError) as e:
        raise Problem(422, "Unprocessable Content", str(e), errors=[{"field": "url", "message": str(e)}]) from e
    return str(target.url)


async def _filter(request: web.Request, f: FilterModel) -> FilterModel:
    try:
        return await subs.validate_filter(request.app[POOL], f)
    except subs.FilterError as e:
        raise filter_problem(e) from e


async def _own(request: web.Request) -> dict[str, Any]:
    row = await endpoints.get(request.app[POOL], partner_id(request), path_id(request))
    if row is None:
        raise Problem(404, "Not Found", "no such webhook endpoint")
    return row


async def _wake_sender(request: web.Request) -> None:
    await request.app[REDIS].enqueue_job("deliver_webhooks")


@operation("POST", "/api/v1/webhooks", tag="webhooks", status=201, body=WebhookCreate,
           response=WebhookEndpointCreated, summary="Add an endpoint; its signing secret is shown once, here")
async def create_webhook(request: web.Request, body: WebhookCreate) -> web.Response:
    url = await _vetted_url(request, body.url)
    f = await _filter(request, body.filter)
    row, secret = await endpoints.create(request.app[POOL], partner_id(request), url, f, body.description)
    created = WebhookEndpointCreated(**endpoint_model(row).model_dump(), secret=secret)
    return respond(created, status=201)


@operation("GET", "/api/v1/webhooks", tag="webhooks", query=PageQuery, response=Page[WebhookEndpoint],
           summary="The partner's endpoints")
async def list_webhooks(request: web.Request, query: PageQuery) -> web.Response:
    rows = await endpoints.list_for(request.app[POOL], partner_id(request), after=decode_cursor(query.cursor),
                                    limit=query.limit + 1)
    items, next_cursor = page_of(rows, query.limit)
    return respond(Page[WebhookEndpoint](items=[endpoint_model(r) for r in items], next=next_cursor))


@operation("GET", "/api/v1/webhooks/{id}", tag="webhooks", response=WebhookEndpoint, summary="One endpoint")
async def get_webhook(request: web.Request) -> web.Response:
    return respond(endpoint_model(await _own(request)))


@operation("PATCH", "/api/v1/webhooks/{id}", tag="webhooks", body=WebhookPatch, response=WebhookEndpoint,
           summary="Change an endpoint's URL, filter or description")
async def patch_webhook(request: web.Request, body: WebhookPatch) -> web.Response:
    await _own(request)
    url = await _vetted_url(request, body.url) if body.url is not None else None
    f = await _filter(request, body.filter) if body.filter is not None else None
    row = await endpoints.update(
        request.app[POOL], partner_id(request), path_id(request), url=url, f=f, description=body.description,
        set_description="description" in body.model_fields_set,
    )
    if row is None:
        raise Problem(404, "Not Found", "no such webhook endpoint")
    return respond(endpoint_model(row))


@operation("DELETE", "/api/v1/webhooks/{id}", tag="webhooks", status=204,
           summary="Remove an endpoint with its pending deliveries and attempts log")
async def delete_webhook(request: web.Request) -> web.Response:
    if not await endpoints.delete(request.app[POOL], partner_id(request), path_id(request)):
        raise Problem(404, "Not Found", "no such webhook endpoint")
    return web.Response(status=204)


@operation("POST", "/api/v1/webhooks/{id}/test", tag="webhooks", status=202, response=PingQueued,
           summary="Queue a signed test delivery (type webhook.test); its attempts show in the log")
async def ping_webhook(request: web.Request) -> web.Response:
    row = await _own(request)
    webhook_id = await endpoints.ping(request.app[POOL], row)
    await _wake_sender(request)
    return respond(PingQueued(webhook_id=webhook_id), status=202)


@operation("POST", "/api/v1/webhooks/{id}/rotate-secret", tag="webhooks", response=SecretRotated,
           summary="A new signing secret; the old one also signs for 24 hours, so deliveries carry both signatures")
async def rotate_webhook_secret(request: web.Request) -> web.Response:
    await _own(request)
    grace = timedelta(hours=request.app[SETTINGS].webhook_secret_grace_hours)
    pool = request.app[POOL]
    secret = await endpoints.rotate_secret(pool, partner_id(request), path_id(request), grace=grace)
    row = await endpoints.get(pool, partner_id(request), path_id(request))
    if secret is None or row is None:
        raise Problem(404, "Not Found", "no such webhook endpoint")
    return respond(SecretRotated(id=row["id"], secret=secret,
                                 previous_secret_expires_at=row["previous_secret_expires_at"]))


@operation("POST", "/api/v1/webhooks/{id}/enable", tag="webhooks", response=WebhookEndpoint,
           summary="Re-enable a disabled endpoint; its pending deliveries go out again")
async def enable_webhook(request: web.Request) -> web.Response:
    await _own(request)
    row = await endpoints.enable(request.app[POOL], partner_id(request), path_id(request))
    if row is None:
        raise Problem(404, "Not Found", "no such webhook endpoint")
    await _wake_sender(request)
    return respond(endpoint_model(row))


@operation("POST", "/api/v1/webhooks/{id}/replay", tag="webhooks", status=202, body=ReplayRequest,
           response=ReplayQueued, summary=f"Re-send the events matching the endpoint's filter after an event id "
           f"(at most {REPLAY_LIMIT}), each under its original webhook-id")
async def replay_webhook(request: web.Request, body: ReplayRequest) -> web.Response:
    row = await _own(request)
    f = endpoint_model(row).filter
    pool = request.app[POOL]
    try:
        args = filter_args(f, since=EPOCH)
    except subs.FilterError as e:
        raise filter_problem(e) from e
    ids = [r["id"] for r in await pool.fetch(
        f"select m.id from ({FILTERED_EVENTS}) m where m.id > $8 order by m.id limit $9",
        *args, body.after, REPLAY_LIMIT + 1,
    )]
    more = len(ids) > REPLAY_LIMIT
    ids = ids[:REPLAY_LIMIT]
    queued = await endpoints.requeue(pool, row["subscription_id"], ids)
    if queued:
        await _wake_sender(request)
    return respond(ReplayQueued(queued=queued, after=body.after, last_event_id=ids[-1] if ids else None, more=more),
                   status=202)


@operation("GET", "/api/v1/webhooks/{id}/attempts", tag="webhooks", query=PageQuery, response=Page[WebhookAttempt],
           summary="Every delivery attempt, newest first: time, status code, duration, error, webhook-id")
async def list_attempts(request: web.Request, query: PageQuery) -> web.Response:
    await _own(request)
    before = decode_cursor(query.cursor) or None
    rows = await endpoints.attempts(request.app[POOL], partner_id(request), path_id(request), before=before,
                                    limit=query.limit + 1)
    items, next_cursor = page_of(rows, query.limit)
    return respond(Page[WebhookAttempt](items=[WebhookAttempt(**r) for r in items], next=next_cursor))
