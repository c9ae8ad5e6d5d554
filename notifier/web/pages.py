"""Server-rendered pages for residents: subscribe, preview, confirm, unsubscribe (manage.py has the manage pages).

They work without JavaScript; static/site.js only adds the council search, the live preview and copy buttons.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from notifier import subscriptions as subs
from notifier.delivery.email.confirmations import enqueue_confirmation
from notifier.matching.search import preview_filter
from notifier.models import SubscriberCreate
from notifier.tokens import TokenData, TokenError, Tokens
from notifier.web import forms
from notifier.web.keys import POOL, REDIS, SETTINGS, TOKENS
from notifier.web.security import render
from notifier.zones import time_zone

routes = web.RouteTableDef()


def message(request: web.Request, heading: str, *paragraphs: str, status: int = 200, **extra: Any) -> web.Response:
    context = {"heading": heading, "paragraphs": paragraphs, **extra}
    return render("message.html", request, context, status=status)


async def _render_index(
    request: web.Request, values: dict[str, Any], errors: dict[str, str], preview: Any = None
) -> web.Response:
    context = {"form": values, "errors": errors, "preview": preview, "choices": await forms.choices(request.app[POOL])}
    status = 422 if errors else 200
    return render("index.html", request, context, status=status)


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    values = forms.read_values(request.query, request.app[SETTINGS].default_timezone)
    return await _render_index(request, values, {})


async def _count(request: web.Request, key: str, limit: int) -> bool:
    """Count one more in this hour's bucket; True when that goes over `limit`. Redis down means no limit."""
    try:
        count = await request.app[REDIS].incr(key)
        if count == 1:
            await request.app[REDIS].expire(key, 7200)
    except Exception:
        return False
    return int(count) > limit


async def _over_subscribe_limit(request: web.Request, email: str) -> bool:
    """Stop the form being used to flood one address with confirmation emails."""
    limit = request.app[SETTINGS].subscribe_rate_limit_per_hour
    key = f"notifier:subscribe:{subs.normalise_email(email)}:{int(time.time() // 3600)}"
    return await _count(request, key, limit)


async def _client_over(request: web.Request, bucket: str, limit: int) -> int | None:
    """Count one more in this client address's hourly `bucket`; when that goes over `limit`, the seconds until the
    bucket empties."""
    hour = int(time.time() // 3600)
    if not await _count(request, f"notifier:{bucket}-client:{request.remote or 'unknown'}:{hour}", limit):
        return None
    return max(1, (hour + 1) * 3600 - int(time.time()))


async def client_limited(request: web.Request) -> web.Response | None:
    """A clear 429 page when one client address sends too many forms this hour, whatever addresses it gives."""
    limit = request.app[SETTINGS].subscribe_rate_limit_per_client_per_hour
    retry_after = await _client_over(request, "subscribe", limit)
    if retry_after is None:
        return None
    response = message(
        request,
        "Too many requests",
        "This connection has sent the form too many times in the last hour.",
        f"Please try again in {max(1, retry_after // 60)} minutes. No alert was made from what you sent.",
        status=429,
    )
    response.headers["Retry-After"] = str(retry_after)
    return response


async def preview_limited(request: web.Request) -> web.Response | None:
    """A 429 when one client address asks for too many previews this hour: JSON for the live preview (which shows
    its `error`), the plain page otherwise."""
    limit = request.app[SETTINGS].preview_rate_limit_per_client_per_hour
    retry_after = await _client_over(request, "preview", limit)
    if retry_after is None:
        return None
    said = "This connection has asked for too many previews in the last hour."
    later = f"Please try again in {max(1, retry_after // 60)} minutes."
    if "json" in request.headers.get("Accept", ""):
        response = web.json_response({"error": f"{said} {later}"}, status=429)
    else:
        response = message(request, "Too many requests", said, later, status=429)
    response.headers["Retry-After"] = str(retry_after)
    return response


def _where(snippet: dict[str, object], title: str) -> str:
    """A snippet as the page shows it: "Report, p. 3: …the respite centre…"."""
    doc = snippet.get("document")
    place = f"{doc}, p. {snippet['page']}" if doc and doc != title else f"p. {snippet['page']}"
    return f"{place}: {snippet['text']}"


@routes.get("/preview")
async def preview(request: web.Request) -> web.Response:
    """The live preview behind the form's topic field: what the alert would have sent lately, as JSON."""
    limited = await preview_limited(request)
    if limited is not None:
        return limited
    values = forms.read_values(request.query, request.app[SETTINGS].default_timezone)
    alert = await forms.read_alert(request.app[POOL], values)
    error = alert.errors.get("query") or alert.errors.get("councils")
    if error:
        return web.json_response({"error": error})
    found = await preview_filter(request.app[POOL], alert.filter)
    items = [
        {
            "date": e["occurred_at"].strftime("%d %b"),
            "council": e["council_name"],
            "title": e["title"],
            "url": e["url"] if str(e["url"] or "").startswith(("https://", "http://")) else None,
            "summary": e["summary"],
            "snippets": [_where(s, e["title"]) for s in e.get("snippets") or ()],
        }
        for e in found["items"][:5]
    ]
    body = {k: found[k] for k in ("total", "days", "weekly_estimate", "warning")}
    return web.json_response({**body, "items": items})


@routes.post("/subscribe")
async def subscribe(request: web.Request) -> web.Response:
    form = await request.post()
    settings = request.app[SETTINGS]
    values = forms.read_values(form, settings.default_timezone)
    # The form's "Preview" button: show what the filter would have sent lately, subscribe nobody.
    previewing = form.get("action") == "preview"
    pool = request.app[POOL]
    alert = await forms.read_alert(pool, values)
    errors: dict[str, str] = {}
    email = ""
    if not previewing:
        try:
            email = SubscriberCreate(email=values["email"]).email
        except ValidationError:
            errors["email"] = (
                "Enter an email address in the correct format, like name@example.com"
                if values["email"] else "Enter your email address"
            )
    errors.update(alert.errors)
    if previewing and not errors:
        limited = await preview_limited(request)
        if limited is not None:
            return limited
    if errors or previewing:
        found = await preview_filter(pool, alert.filter) if not errors else None
        return await _render_index(request, values, errors, found)
    limited = await client_limited(request)
    if limited is not None:
        return limited
    if not await _over_subscribe_limit(request, email):
        async with pool.acquire() as conn, conn.transaction():
            subscriber = await subs.get_or_create_subscriber(conn, email, timezone=alert.timezone)
            subscription = await subs.create_subscription(
                conn, subscriber.id, alert.filter, frequency=alert.frequency, hour=alert.hour,
                weekday=alert.weekday, confirmed=False, reuse_identical=True,
            )
        if not subscriber.suppressed:
            await enqueue_confirmation(pool, request.app[REDIS], subscriber.id, subscription["id"])
    # the same answer whether the address is new, known, suppressed or rate-limited
    return message(
        request,
        "Check your email",
        f"If {email} can receive our emails, a message with a link to confirm is on its way.",
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


def _last_paused_day(until: datetime, timezone: str) -> str:
    """The last whole day with no emails, in the subscriber's zone (a pause ends at the start of the next)."""
    return (until.astimezone(time_zone(timezone)) - timedelta(microseconds=1)).strftime("%-d %B %Y")


async def alerts_in_words(request: web.Request, rows: list[Any], timezone: str) -> list[dict[str, Any]]:
    """Each subscription with its filter and its schedule in words, for the pages that list them."""
    now = datetime.now(UTC)
    settings = request.app[SETTINGS]
    descriptions = await _describe(request, rows)
    return [
        {
            "id": r["id"],
            "description": description,
            "schedule": forms.schedule_in_words(
                r["frequency"], r["hour"], r["weekday"], timezone,
                default_hour=settings.digest_hour, default_weekday=settings.weekly_day,
            ),
            "frequency_label": forms.FREQUENCY_LABELS[r["frequency"]],
            "paused": _last_paused_day(r["paused_until"], timezone) if r["paused_until"] and r["paused_until"] > now
            else None,
            "confirmed": r["confirmed_at"] is not None,
            "feed_token": r["feed_token"],
        }
        for r, description in zip(rows, descriptions, strict=True)
    ]


@routes.get("/confirm/{token}")
async def confirm_page(request: web.Request) -> web.Response:
    try:
        data = _read_token(request, "confirm")
    except TokenError as e:
        return expired_or_invalid(request, e)
    subscriber = await _subscriber(request, data.subscriber_id)
    if subscriber is None:
        return message(request, "Nothing to confirm", "This subscription no longer exists.", status=404)
    description = "your alerts"
    if data.subscription_id is not None:
        row = await request.app[POOL].fetchrow(
            "select * from subscriptions where id = $1 and subscriber_id = $2", data.subscription_id, subscriber["id"]
        )
        if row is None:
            return message(request, "Nothing to confirm", "This subscription no longer exists.", status=404)
        [description] = await _describe(request, [row])
    context = {"token": request.match_info["token"], "email": subscriber["email"], "description": description}
    return render("confirm.html", request, context)


def expired_or_invalid(request: web.Request, e: TokenError) -> web.Response:
    if e.expired:
        return message(
            request,
            "This link has expired",
            "Confirmation links work for a limited time. Enter your address and we will send a fresh one.",
            status=410,
            resend=True,
        )
    return message(request, "This link is not valid", "Check that you copied the whole link.", status=404)


@routes.post("/confirm/{token}")
async def confirm(request: web.Request) -> web.Response:
    try:
        data = _read_token(request, "confirm")
    except TokenError as e:
        return expired_or_invalid(request, e)
    ok = await subs.confirm(request.app[POOL], data.subscriber_id, data.subscription_id)
    if not ok:
        return message(request, "Nothing to confirm", "This address can no longer receive our emails.", status=409)
    pool = request.app[POOL]
    subscriber = await _subscriber(request, data.subscriber_id)
    rows = await pool.fetch(
        """
        select * from subscriptions
        where subscriber_id = $1 and channel = 'email' and ($2::bigint is null or id = $2) order by id
        """,
        data.subscriber_id,
        data.subscription_id,
    )
    tokens: Tokens = request.app[TOKENS]
    context = {
        "email": subscriber["email"],
        "alerts": await alerts_in_words(request, rows, subscriber["timezone"]),
        "manage_url": "/manage/" + tokens.make("manage", data.subscriber_id),
    }
    return render("confirmed.html", request, context)


@routes.post("/confirm/resend")
async def resend(request: web.Request) -> web.Response:
    limited = await client_limited(request)
    if limited is not None:
        return limited
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
    return message(
        request, "Check your email", f"If {email} has alerts waiting for confirmation, a fresh link is on its way."
    )


# ---- unsubscribe ----


@routes.get("/unsubscribe/{token}")
async def unsubscribe_page(request: web.Request) -> web.Response:
    try:
        data = _read_token(request, "unsubscribe")
    except TokenError as e:
        return expired_or_invalid(request, e)
    subscriber = await _subscriber(request, data.subscriber_id)
    if subscriber is None:
        return message(request, "Unsubscribed", "This address has no alerts with us.")
    description = None
    if data.subscription_id is not None:
        row = await request.app[POOL].fetchrow(
            "select * from subscriptions where id = $1 and subscriber_id = $2", data.subscription_id, subscriber["id"]
        )
        description = (await _describe(request, [row]))[0] if row else None
    tokens: Tokens = request.app[TOKENS]
    context = {
        "token": request.match_info["token"],
        "email": subscriber["email"],
        "subscription": description,
        "manage_url": "/manage/" + tokens.make("manage", subscriber["id"]),
    }
    return render("unsubscribe.html", request, context)


@routes.post("/unsubscribe/{token}")
async def unsubscribe(request: web.Request) -> web.Response:
    """The form's button, and RFC 8058 one-click (`List-Unsubscribe=One-Click`): no further step either way."""
    try:
        data = _read_token(request, "unsubscribe")
    except TokenError as e:
        return expired_or_invalid(request, e)
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
        return message(request, "Unsubscribed", "That alert is stopped. Your other alerts, if any, carry on.")
    return message(request, "Unsubscribed", "You will get no more emails from us at this address.")


