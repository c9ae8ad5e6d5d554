"""`POST /websub`: the hub's subscription endpoint (W3C WebSub, section 5.1).

A request is checked here (mode, a topic that is one of our feeds, a callback we may send to, lease, secret),
recorded and answered 202 Accepted; the intent is verified asynchronously by the `verify_websub` job (the GET
challenge to the callback), as the spec allows, so no request waits on a subscriber's server.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from aiohttp import web
from multidict import MultiDict

from notifier.delivery import websub
from notifier.delivery.feed_urls import FeedNotFound, FeedQueryError, resolve
from notifier.delivery.webhooks.targets import TargetRefused, vet_url
from notifier.models import FilterModel, ItemKind
from notifier.web.keys import POOL, REDIS, RESOLVER, SETTINGS
from notifier.web.problems import Problem

routes = web.RouteTableDef()


def _bad(detail: str) -> Problem:
    return Problem(400, "Bad Request", detail)


async def _topic_filter(request: web.Request, topic: str) -> FilterModel:
    base = request.app[SETTINGS].base_url
    if not topic.startswith(f"{base}/feeds/"):
        raise _bad(f"hub.topic must be one of this hub's feeds, under {base}/feeds/")
    parts = urlsplit(topic)
    try:
        spec = await resolve(request.app[POOL], parts.path, MultiDict(parse_qsl(parts.query)))
    except (FeedNotFound, FeedQueryError) as e:
        raise _bad(f"hub.topic: {e}") from e
    if spec.fmt == "ics" and not spec.filter.kinds:
        # a calendar changes with its meetings and their agendas, not with each document or decision
        return spec.filter.model_copy(update={"kinds": [ItemKind.MEETING, ItemKind.AGENDA_ITEM]})
    return spec.filter


@routes.post(websub.HUB_PATH)
async def hub(request: web.Request) -> web.Response:
    form = await request.post()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    mode, topic, callback = fields.get("hub.mode"), fields.get("hub.topic"), fields.get("hub.callback")
    if mode not in ("subscribe", "unsubscribe"):
        raise _bad("hub.mode is subscribe or unsubscribe")
    if not topic or not callback:
        raise _bad("hub.topic and hub.callback are required")
    secret = fields.get("hub.secret") or None
    if secret is not None and len(secret.encode()) > websub.MAX_SECRET_BYTES:
        raise _bad(f"hub.secret is at most {websub.MAX_SECRET_BYTES} bytes")
    lease: int | None = None
    if fields.get("hub.lease_seconds"):
        try:
            lease = int(fields["hub.lease_seconds"])
        except ValueError as e:
            raise _bad("hub.lease_seconds is a whole number of seconds") from e
    settings = request.app[SETTINGS]
    try:
        await vet_url(callback, request.app[RESOLVER], allow_private=settings.webhook_allow_private_targets)
    except TargetRefused as e:
        raise _bad(f"hub.callback: {e}") from e
    # an unsubscribe may name a topic that has since gone (a rotated token): nothing is followed for it
    f = await _topic_filter(request, topic) if mode == "subscribe" else FilterModel()
    pool = request.app[POOL]
    request_id = await websub.request(pool, mode=mode, topic=topic, callback=callback, secret=secret,
                                      lease_seconds=lease, f=f)
    await request.app[REDIS].enqueue_job("verify_websub", request_id, _job_id=f"websub:{request_id}")
    return web.Response(status=202, text="accepted: the callback will be asked to confirm\n")
