"""The manage pages a subscriber reaches from any email: their alerts in words, add, edit, pause, delete, private
feed links and their rotation, export and erasure. The manage token in the URL is the only key."""

from __future__ import annotations

import functools
import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from aiohttp import web
from aiohttp.typedefs import Handler

from notifier import subscriptions as subs
from notifier.tokens import TokenError, Tokens
from notifier.web import forms
from notifier.web.keys import POOL, SETTINGS, TOKENS
from notifier.web.pages import alerts_in_words, expired_or_invalid, message
from notifier.web.security import render

routes = web.RouteTableDef()

PAUSE_DAYS = 30
MAX_PAUSE_DAYS = 366
FEED_FORMATS = [("atom", "Atom"), ("rss", "RSS"), ("ics", "iCal")]


class _Gone(Exception):
    """The subscriber (or the alert named) no longer exists."""


def _subscriber_id(request: web.Request) -> int:
    tokens: Tokens = request.app[TOKENS]
    return tokens.read("manage", request.match_info["token"]).subscriber_id


async def _subscriber(request: web.Request, subscriber_id: int) -> Any:
    row = await request.app[POOL].fetchrow("select * from subscribers where id = $1", subscriber_id)
    if row is None:
        raise _Gone
    return row


def _gone(request: web.Request) -> web.Response:
    return message(request, "No alerts", "This address has no alerts with us, or that alert no longer exists.",
                   status=404)


def _by_link(handler: Handler) -> Handler:
    """A page reached by a manage link: a link expired or tampered with, or for an address or alert that is gone,
    is answered with its own page, whichever step of the handler finds it."""

    @functools.wraps(handler)
    async def answer(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except TokenError as e:
            return expired_or_invalid(request, e)
        except _Gone:
            return _gone(request)

    return answer


def _back(request: web.Request, notice: str) -> web.HTTPSeeOther:
    # Post/Redirect/Get, so a reload does not repeat the change
    return web.HTTPSeeOther(f"/manage/{request.match_info['token']}?notice={quote(notice)}")


@routes.get("/manage/{token}")
@_by_link
async def manage_page(request: web.Request) -> web.Response:
    subscriber = await _subscriber(request, _subscriber_id(request))
    return await _render(request, subscriber, notice=request.query.get("notice"))


async def _render(
    request: web.Request, subscriber: Any, *, notice: str | None = None, errors: dict[str, str] | None = None
) -> web.Response:
    rows = await request.app[POOL].fetch(
        "select * from subscriptions where subscriber_id = $1 and channel = 'email' order by id", subscriber["id"]
    )
    alerts = await alerts_in_words(request, rows, subscriber["timezone"])
    base = request.app[SETTINGS].base_url.rstrip("/")
    for a in alerts:
        a["feeds"] = [(fmt, label, f"{base}/feeds/s/{a['feed_token']}.{fmt}") for fmt, label in FEED_FORMATS]
    tokens: Tokens = request.app[TOKENS]
    context = {
        "token": request.match_info["token"],
        "email": subscriber["email"],
        "status": subscriber["status"],
        "alerts": alerts,
        "notice": notice,
        "errors": errors or {},
        "pause_default": (datetime.now(UTC) + timedelta(days=PAUSE_DAYS)).date().isoformat(),
        "unsubscribe_url": "/unsubscribe/" + tokens.make("unsubscribe", subscriber["id"]),
    }
    return render("manage.html", request, context, status=422 if errors else 200)


def _pause_until(text: str, timezone: str) -> datetime:
    """The start of the day after `text` (a date) in the subscriber's zone: paused through that whole day."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError as e:
        raise ValueError("Enter the date to pause until, like 2026-03-31") from e
    today = datetime.now(ZoneInfo(timezone)).date()
    if day < today:
        raise ValueError("The date to pause until must be today or in the future")
    if day > today + timedelta(days=MAX_PAUSE_DAYS):
        raise ValueError("Pause for at most a year; you can pause again later")
    return datetime.combine(day + timedelta(days=1), time(), ZoneInfo(timezone))


@routes.post("/manage/{token}")
@_by_link
async def manage(request: web.Request) -> web.Response:
    subscriber = await _subscriber(request, _subscriber_id(request))
    form = await request.post()
    action = str(form.get("action", ""))
    pool = request.app[POOL]
    if action == "erase":  # asked first, on a page of its own: nothing is deleted by this one click
        raise web.HTTPSeeOther(f"/manage/{request.match_info['token']}/erase")
    try:
        subscription_id = int(str(form.get("subscription", "")))
    except ValueError:
        return message(request, "Something is missing", "Choose an alert to change.", status=400)
    owned = await pool.fetchval(
        "select 1 from subscriptions where id = $1 and subscriber_id = $2", subscription_id, subscriber["id"]
    )
    if not owned:
        return message(request, "Not found", "That alert is not yours or no longer exists.", status=404)
    if action == "pause":
        try:
            until = _pause_until(str(form.get("until", "")), subscriber["timezone"])
        except ValueError as e:
            return await _render(request, subscriber, errors={f"until-{subscription_id}": str(e)})
        await pool.execute("update subscriptions set paused_until = $2 where id = $1", subscription_id, until)
        shown = (until - timedelta(days=1)).strftime("%-d %B %Y")
        raise _back(request, f"Paused: no emails until after {shown}.")
    if action == "resume":
        await pool.execute("update subscriptions set paused_until = null where id = $1", subscription_id)
        raise _back(request, "Resumed.")
    if action == "delete":
        await subs.unsubscribe(pool, subscriber["id"], subscription_id)
        raise _back(request, "Alert deleted.")
    if action == "rotate":
        await subs.rotate_feed_token(pool, subscription_id)
        raise _back(request, "New feed links made. The old links no longer work: update your feed reader.")
    return message(request, "Unknown action", "That is not something this page can do.", status=400)


@routes.get("/manage/{token}/erase")
@_by_link
async def erase_page(request: web.Request) -> web.Response:
    """What erasing deletes, and the one button that does it."""
    subscriber = await _subscriber(request, _subscriber_id(request))
    alert_count = await request.app[POOL].fetchval(
        "select count(*) from subscriptions where subscriber_id = $1 and channel = 'email'", subscriber["id"]
    )
    context = {"token": request.match_info["token"], "email": subscriber["email"], "alert_count": alert_count}
    return render("erase.html", request, context)


@routes.post("/manage/{token}/erase")
@_by_link
async def erase(request: web.Request) -> web.Response:
    subscriber = await _subscriber(request, _subscriber_id(request))
    await subs.erase(request.app[POOL], subscriber["id"])
    return message(request, "Your data is deleted", "We hold nothing about you any more, and send you nothing.")


# ---- add and edit an alert ----


async def _render_alert(
    request: web.Request, values: dict[str, Any], errors: dict[str, str], *, editing: bool
) -> web.Response:
    context = {
        "token": request.match_info["token"],
        "form": values,
        "errors": errors,
        "editing": editing,
        "action": request.path,
        "choices": await forms.choices(request.app[POOL]),
    }
    return render("alert.html", request, context, status=422 if errors else 200)


async def _own_alert(request: web.Request, subscriber_id: int) -> Any:
    try:
        subscription_id = int(request.match_info["id"])
    except ValueError as e:
        raise _Gone from e
    row = await request.app[POOL].fetchrow(
        "select * from subscriptions where id = $1 and subscriber_id = $2 and channel = 'email'",
        subscription_id,
        subscriber_id,
    )
    if row is None:
        raise _Gone
    return row


@routes.get("/manage/{token}/new")
@routes.get("/manage/{token}/alerts/{id}")
@_by_link
async def alert_page(request: web.Request) -> web.Response:
    subscriber = await _subscriber(request, _subscriber_id(request))
    row = await _own_alert(request, subscriber["id"]) if "id" in request.match_info else None
    if row is None:
        values = forms.read_values(request.query, subscriber["timezone"])
    else:
        values = forms.values_of(row, subscriber["timezone"])
    return await _render_alert(request, values, {}, editing=row is not None)


@routes.post("/manage/{token}/new")
@routes.post("/manage/{token}/alerts/{id}")
@_by_link
async def save_alert(request: web.Request) -> web.Response:
    """Add an alert (confirmed: the manage link itself came by email) or change one."""
    subscriber = await _subscriber(request, _subscriber_id(request))
    row = await _own_alert(request, subscriber["id"]) if "id" in request.match_info else None
    pool = request.app[POOL]
    values = forms.read_values(await request.post(), subscriber["timezone"])
    alert = await forms.read_alert(pool, values)
    if alert.errors:
        return await _render_alert(request, values, alert.errors, editing=row is not None)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("update subscribers set timezone = $2 where id = $1", subscriber["id"], alert.timezone)
        if row is None:
            await subs.create_subscription(
                conn, subscriber["id"], alert.filter, frequency=alert.frequency, hour=alert.hour,
                weekday=alert.weekday, confirmed=True, reuse_identical=True,
            )
        else:
            await subs.change_subscription(
                conn, row["id"], alert.filter, frequency=alert.frequency, hour=alert.hour, weekday=alert.weekday
            )
    raise _back(request, "Alert added." if row is None else "Alert saved.")


@routes.get("/manage/{token}/export")
@_by_link
async def export(request: web.Request) -> web.Response:
    exported = await subs.export(request.app[POOL], _subscriber_id(request))
    if exported is None:
        return message(request, "No data", "We hold nothing about this address.", status=404)
    return web.Response(
        text=json.dumps(exported, default=str, indent=2),
        content_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="my-council-alerts.json"'},
    )
