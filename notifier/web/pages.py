"""Server-rendered pages for residents: subscribe, confirm, manage, unsubscribe. They work without JavaScript."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web
from pydantic import ValidationError

from notifier import subscriptions as subs
from notifier.delivery.email.confirmations import enqueue_confirmation
from notifier.matching.search import preview_filter
from notifier.models import FilterModel, Frequency, SubscriberCreate
from notifier.tokens import TokenData, TokenError, Tokens
from notifier.web.keys import POOL, REDIS, SETTINGS, TOKENS

routes = web.RouteTableDef()

FREQUENCIES = [("immediate", "As it happens"), ("daily", "Daily digest"), ("weekly", "Weekly summary")]
FREQUENCY_LABELS = dict(FREQUENCIES)
PAUSE_DAYS = 30


def _message(request: web.Request, heading: str, *paragraphs: str, status: int = 200, **extra: Any) -> web.Response:
    context = {"heading": heading, "paragraphs": paragraphs, **extra}
    return aiohttp_jinja2.render_template("message.html", request, context, status=status)


async def _form_context(request: web.Request) -> dict[str, Any]:
    pool = request.app[POOL]
    councils = await pool.fetch("select slug, name from councils order by name")
    regions = await pool.fetch("select distinct region from councils where region is not null order by region")
    return {"councils": councils, "regions": [r["region"] for r in regions]}


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    context = await _form_context(request)
    context.update(form={}, errors=[])
    return aiohttp_jinja2.render_template("index.html", request, context)


async def _over_subscribe_limit(request: web.Request, email: str) -> bool:
    """Stop the form being used to flood one address with confirmation emails."""
    limit = request.app[SETTINGS].subscribe_rate_limit_per_hour
    key = f"notifier:subscribe:{subs.normalise_email(email)}:{int(time.time() // 3600)}"
    try:
        count = await request.app[REDIS].incr(key)
        if count == 1:
            await request.app[REDIS].expire(key, 7200)
    except Exception:
        return False
    return int(count) > limit


@routes.post("/subscribe")
async def subscribe(request: web.Request) -> web.Response:
    form = await request.post()
    values = {k: str(form.get(k, "")).strip() for k in ("email", "query", "council", "region", "frequency")}
    # The form's "Preview" button: show what the filter would have sent lately, subscribe nobody.
    previewing = form.get("action") == "preview"
    errors: list[str] = []
    pool = request.app[POOL]
    try:
        body = SubscriberCreate(email=values["email"])
    except ValidationError:
        if not previewing:
            errors.append("Enter a valid email address.")
    try:
        frequency = Frequency(values["frequency"] or "weekly")
    except ValueError:
        errors.append("Choose how often you want emails.")
        frequency = Frequency.WEEKLY
    f = FilterModel(
        query=values["query"][:1000],
        councils=[values["council"]] if values["council"] else [],
        regions=[values["region"]] if values["region"] else [],
    )
    try:
        f = await subs.validate_filter(pool, f)
    except subs.FilterError as e:
        errors.append(f"Topic: {e}" if e.field == "query" else str(e))
    if errors or previewing:
        context = await _form_context(request)
        context.update(form=values, errors=errors)
        if not errors:
            context["preview"] = await preview_filter(pool, f)
        return aiohttp_jinja2.render_template("index.html", request, context, status=422 if errors else 200)
    settings = request.app[SETTINGS]
    if not await _over_subscribe_limit(request, body.email):
        async with pool.acquire() as conn, conn.transaction():
            subscriber = await subs.get_or_create_subscriber(conn, body.email, timezone=settings.default_timezone)
            subscription = await subs.create_subscription(
                conn, subscriber.id, f, frequency=frequency, confirmed=False, reuse_identical=True
            )
        if not subscriber.suppressed:
            await enqueue_confirmation(pool, request.app[REDIS], subscriber.id, subscription["id"])
    # the same answer whether the address is new, known, suppressed or rate-limited
    return _message(
        request,
        "Check your email",
        f"If {body.email} can receive our emails, a message with a link to confirm is on its way.",
        f"Nothing else will be sent until you confirm. The link works for {settings.confirm_token_days} days.",
    )


def _read_token(request: web.Request, purpose: str) -> TokenData:
    tokens: Tokens = request.app[TOKENS]
    return tokens.read(purpose, request.match_info["token"])  # type: ignore[arg-type]


async def _subscriber(request: web.Request, subscriber_id: int) -> Any:
    return await request.app[POOL].fetchrow("select * from subscribers where id = $1", subscriber_id)


async def _describe(request: web.Request, rows: list[Any]) -> list[str]:
    """Subscriptions in words, with councils by name as the emails call them."""
    slugs = sorted({c for r in rows for c in r["councils"]})
    names = {
        r["slug"]: r["name"]
        for r in await request.app[POOL].fetch("select slug, name from councils where slug = any($1)", slugs)
    }
    return [subs.describe_subscription(dict(r), names) for r in rows]


@routes.get("/confirm/{token}")
async def confirm_page(request: web.Request) -> web.Response:
    try:
        data = _read_token(request, "confirm")
    except TokenError as e:
        return _expired_or_invalid(request, e)
    subscriber = await _subscriber(request, data.subscriber_id)
    if subscriber is None:
        return _message(request, "Nothing to confirm", "This subscription no longer exists.", status=404)
    description = "your alerts"
    if data.subscription_id is not None:
        row = await request.app[POOL].fetchrow(
            "select * from subscriptions where id = $1 and subscriber_id = $2", data.subscription_id, subscriber["id"]
        )
        if row is None:
            return _message(request, "Nothing to confirm", "This subscription no longer exists.", status=404)
        [description] = await _describe(request, [row])
    return aiohttp_jinja2.render_template(
        "confirm.html",
        request,
        {"token": request.match_info["token"], "email": subscriber["email"], "description": description},
    )


def _expired_or_invalid(request: web.Request, e: TokenError) -> web.Response:
    if e.expired:
        return _message(
            request,
            "This link has expired",
            "Confirmation links work for a limited time. Enter your address and we will send a fresh one.",
            status=410,
            resend=True,
        )
    return _message(request, "This link is not valid", "Check that you copied the whole link.", status=404)


@routes.post("/confirm/{token}")
async def confirm(request: web.Request) -> web.Response:
    try:
        data = _read_token(request, "confirm")
    except TokenError as e:
        return _expired_or_invalid(request, e)
    ok = await subs.confirm(request.app[POOL], data.subscriber_id, data.subscription_id)
    if not ok:
        return _message(request, "Nothing to confirm", "This address can no longer receive our emails.", status=409)
    tokens: Tokens = request.app[TOKENS]
    manage = "/manage/" + tokens.make("manage", data.subscriber_id)
    return _message(
        request,
        "You're subscribed",
        "Thank you: your alerts are on. Every email has links to change or stop them.",
        back=manage,
    )


@routes.post("/confirm/resend")
async def resend(request: web.Request) -> web.Response:
    form = await request.post()
    email = str(form.get("email", "")).strip()
    pool = request.app[POOL]
    if email and not await _over_subscribe_limit(request, email):
        rows = await pool.fetch(
            """
            select s.id as subscription_id, b.id as subscriber_id
            from subscribers b join subscriptions s on s.subscriber_id = b.id
            where lower(b.email) = $1 and b.partner_id is null and s.confirmed_at is null
              and b.status in ('pending', 'active')
            """,
            subs.normalise_email(email),
        )
        for row in rows:
            await enqueue_confirmation(
                pool, request.app[REDIS], row["subscriber_id"], row["subscription_id"], force=True
            )
    return _message(
        request, "Check your email", f"If {email} has alerts waiting for confirmation, a fresh link is on its way."
    )


# ---- unsubscribe ----


@routes.get("/unsubscribe/{token}")
async def unsubscribe_page(request: web.Request) -> web.Response:
    try:
        data = _read_token(request, "unsubscribe")
    except TokenError as e:
        return _expired_or_invalid(request, e)
    subscriber = await _subscriber(request, data.subscriber_id)
    if subscriber is None:
        return _message(request, "Unsubscribed", "This address has no alerts with us.")
    description = None
    if data.subscription_id is not None:
        row = await request.app[POOL].fetchrow(
            "select * from subscriptions where id = $1 and subscriber_id = $2", data.subscription_id, subscriber["id"]
        )
        description = (await _describe(request, [row]))[0] if row else None
    tokens: Tokens = request.app[TOKENS]
    return aiohttp_jinja2.render_template(
        "unsubscribe.html",
        request,
        {
            "token": request.match_info["token"],
            "email": subscriber["email"],
            "subscription": description,
            "manage_url": "/manage/" + tokens.make("manage", subscriber["id"]),
        },
    )


@routes.post("/unsubscribe/{token}")
async def unsubscribe(request: web.Request) -> web.Response:
    """The form's button, and RFC 8058 one-click (`List-Unsubscribe=One-Click`): no further step either way."""
    try:
        data = _read_token(request, "unsubscribe")
    except TokenError as e:
        return _expired_or_invalid(request, e)
    form = await request.post()
    one_click = form.get("List-Unsubscribe") == "One-Click"
    # one-click from a link for one subscription stops that subscription; the "all" button stops everything
    scope = "one" if (one_click or form.get("scope") == "one") and data.subscription_id is not None else "all"
    if one_click and data.subscription_id is None:
        scope = "all"
    await subs.unsubscribe(request.app[POOL], data.subscriber_id, data.subscription_id if scope == "one" else None)
    if one_click:
        return web.Response(text="unsubscribed")
    if scope == "one":
        return _message(request, "Unsubscribed", "That alert is stopped. Your other alerts, if any, carry on.")
    return _message(request, "Unsubscribed", "You will get no more emails from us at this address.")


# ---- manage ----


@routes.get("/manage/{token}")
async def manage_page(request: web.Request) -> web.Response:
    try:
        data = _read_token(request, "manage")
    except TokenError as e:
        return _expired_or_invalid(request, e)
    return await _render_manage(request, data.subscriber_id, notice=request.query.get("notice"))


async def _render_manage(request: web.Request, subscriber_id: int, notice: str | None = None) -> web.Response:
    subscriber = await _subscriber(request, subscriber_id)
    if subscriber is None:
        return _message(request, "No alerts", "This address has no alerts with us.", status=404)
    rows = await request.app[POOL].fetch(
        "select * from subscriptions where subscriber_id = $1 and channel = 'email' order by id", subscriber_id
    )
    now = datetime.now(UTC)
    descriptions = await _describe(request, rows)
    subscriptions = [
        {
            "id": r["id"],
            "description": description,
            "frequency": r["frequency"],
            "frequency_label": FREQUENCY_LABELS[r["frequency"]],
            "paused": r["paused_until"].strftime("%d %b %Y") if r["paused_until"] and r["paused_until"] > now else None,
            "confirmed": r["confirmed_at"] is not None,
        }
        for r, description in zip(rows, descriptions, strict=True)
    ]
    tokens: Tokens = request.app[TOKENS]
    return aiohttp_jinja2.render_template(
        "manage.html",
        request,
        {
            "token": request.match_info["token"],
            "email": subscriber["email"],
            "status": subscriber["status"],
            "subscriptions": subscriptions,
            "frequencies": FREQUENCIES,
            "notice": notice,
            "unsubscribe_url": "/unsubscribe/" + tokens.make("unsubscribe", subscriber_id),
        },
    )


@routes.post("/manage/{token}")
async def manage(request: web.Request) -> web.Response:
    try:
        data = _read_token(request, "manage")
    except TokenError as e:
        return _expired_or_invalid(request, e)
    form = await request.post()
    action = str(form.get("action", ""))
    pool = request.app[POOL]
    if action == "erase":
        await subs.erase(pool, data.subscriber_id)
        return _message(request, "Your data is deleted", "We hold nothing about you any more, and send you nothing.")
    try:
        subscription_id = int(str(form.get("subscription", "")))
    except ValueError:
        return _message(request, "Something is missing", "Choose an alert to change.", status=400)
    owned = await pool.fetchval(
        "select 1 from subscriptions where id = $1 and subscriber_id = $2", subscription_id, data.subscriber_id
    )
    if not owned:
        return _message(request, "Not found", "That alert is not yours or no longer exists.", status=404)
    notice = None
    if action == "frequency":
        try:
            frequency = Frequency(str(form.get("frequency", "")))
        except ValueError:
            return _message(request, "Unknown frequency", "Choose one of the offered frequencies.", status=400)
        await pool.execute(
            "update subscriptions set frequency = $2, updated_at = now() where id = $1",
            subscription_id,
            frequency.value,
        )
        notice = f"Now: {FREQUENCY_LABELS[frequency.value].lower()}."
    elif action == "pause":
        until = datetime.now(UTC) + timedelta(days=PAUSE_DAYS)
        await pool.execute("update subscriptions set paused_until = $2 where id = $1", subscription_id, until)
        notice = f"Paused until {until:%d %b %Y}."
    elif action == "resume":
        await pool.execute("update subscriptions set paused_until = null where id = $1", subscription_id)
        notice = "Resumed."
    elif action == "delete":
        await subs.unsubscribe(pool, data.subscriber_id, subscription_id)
        notice = "Alert deleted."
    else:
        return _message(request, "Unknown action", "That is not something this page can do.", status=400)
    # Post/Redirect/Get, so a reload does not repeat the change
    raise web.HTTPSeeOther(f"/manage/{request.match_info['token']}?notice={quote(notice)}")


@routes.get("/manage/{token}/export")
async def export(request: web.Request) -> web.Response:
    try:
        data = _read_token(request, "manage")
    except TokenError as e:
        return _expired_or_invalid(request, e)
    exported = await subs.export(request.app[POOL], data.subscriber_id)
    if exported is None:
        return _message(request, "No data", "We hold nothing about this address.", status=404)
    return web.Response(
        text=json.dumps(exported, default=str, indent=2),
        content_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="my-council-alerts.json"'},
    )
