"""The operator page: sources and their health (with a poll-now button), recent polls, queue sizes, deliveries by
channel and recent failures, suppressions. Behind NOTIFIER_ADMIN_TOKEN, and refused when none is set.

Signing in with the token sets a signed, HttpOnly, SameSite=Strict cookie for the /admin paths. The cookie signs a
digest of the token, so changing NOTIFIER_ADMIN_TOKEN ends every session.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from aiohttp import web
from arq.constants import default_queue_name
from itsdangerous import BadSignature, TimestampSigner

from notifier.delivery.timing import alert_times
from notifier.ingest.freshness import source_freshness
from notifier.models import Channel
from notifier.web.keys import POOL, REDIS, SETTINGS
from notifier.web.pages import client_limited, message
from notifier.web.security import ADMIN_COOKIE, render

routes = web.RouteTableDef()
ALERT_TIMES_WINDOW = timedelta(hours=24)  # the time-to-alert figures cover the last day's immediate alerts

SESSION_SECONDS = 12 * 3600
# the channels the matcher makes deliveries for (a feed is read, not delivered)
DELIVERY_CHANNELS = [Channel.EMAIL.value, Channel.WEBHOOK.value, Channel.WEBSUB.value]


def _signer(request: web.Request) -> TimestampSigner:
    return TimestampSigner(request.app[SETTINGS].ensure_secret_key(), salt="notifier.admin")


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def signed_in(request: web.Request) -> bool:
    token = request.app[SETTINGS].admin_token
    cookie = request.cookies.get(ADMIN_COOKIE, "")
    if not token or not cookie:
        return False
    try:
        value = _signer(request).unsign(cookie, max_age=SESSION_SECONDS).decode()
    except BadSignature:
        return False
    return hmac.compare_digest(value, _token_digest(token))


def _refused_when_off(request: web.Request) -> web.Response | None:
    if request.app[SETTINGS].admin_token:
        return None
    return message(request, "The operator page is off",
                   "Set NOTIFIER_ADMIN_TOKEN to turn it on.", status=404)


def _login_page(request: web.Request, error: str | None = None) -> web.Response:
    errors = {"token": error} if error else {}
    return render("admin_login.html", request, {"errors": errors}, status=401)


@routes.get("/admin")
async def admin_page(request: web.Request) -> web.Response:
    off = _refused_when_off(request)
    if off is not None:
        return off
    if not signed_in(request):
        return _login_page(request)
    context = await dashboard(request)
    context["notice"] = request.query.get("notice")
    return render("admin.html", request, context)


@routes.post("/admin/login")
async def login(request: web.Request) -> web.Response:
    off = _refused_when_off(request)
    if off is not None:
        return off
    limited = await client_limited(request)  # guessing the token is as limited as subscribing
    if limited is not None:
        return limited
    form = await request.post()
    given = str(form.get("token", ""))
    token = request.app[SETTINGS].admin_token
    if not hmac.compare_digest(given.encode(), token.encode()):
        return _login_page(request, "The token is not right" if given else "Enter the operator token")
    response = web.HTTPSeeOther("/admin")
    response.set_cookie(
        ADMIN_COOKIE,
        _signer(request).sign(_token_digest(token)).decode(),
        max_age=SESSION_SECONDS,
        path="/admin",
        httponly=True,
        samesite="Strict",
        secure=request.app[SETTINGS].base_url.startswith("https://"),
    )
    raise response


@routes.post("/admin/logout")
async def logout(request: web.Request) -> web.Response:
    response = web.HTTPSeeOther("/admin")
    response.del_cookie(ADMIN_COOKIE, path="/admin")
    raise response


@routes.post("/admin/sources/{id:\\d+}/poll")
async def poll_now(request: web.Request) -> web.Response:
    """Enqueue the worker's own poll job for this source; a second click in the same minute is the same job."""
    off = _refused_when_off(request)
    if off is not None:
        return off
    if not signed_in(request):
        return _login_page(request)
    source_id = int(request.match_info["id"])
    row = await request.app[POOL].fetchrow("select id, council, kind from sources where id = $1", source_id)
    if row is None:
        return message(request, "No such source", f"There is no source {source_id}.", status=404)
    minute = int(time.time() // 60)
    await request.app[REDIS].enqueue_job("poll_source", source_id, _job_id=f"poll:{source_id}:now:{minute}")
    notice = f"Poll of source {source_id} ({row['council']}, {row['kind']}) queued."
    raise web.HTTPSeeOther(f"/admin?notice={quote(notice)}")


async def _queues(request: web.Request) -> dict[str, Any]:
    redis = request.app[REDIS]
    now_ms = int(time.time() * 1000)
    try:
        queued = await redis.zcard(default_queue_name)
        due = await redis.zcount(default_queue_name, "-inf", now_ms)
    except Exception as e:  # the page still shows everything else when Redis is down
        return {"error": f"{type(e).__name__}: {e}"}
    return {"name": default_queue_name, "queued": queued, "due": due, "scheduled": queued - due}


async def dashboard(request: web.Request) -> dict[str, Any]:
    pool = request.app[POOL]
    sources = await pool.fetch(
        """
        select s.id, s.council, c.name as council_name, s.kind, s.url, s.enabled, s.last_success_at,
               s.last_error, s.last_error_at, s.consecutive_failures, s.next_poll_at
        from sources s join councils c on c.slug = s.council
        order by s.consecutive_failures desc, s.enabled desc, c.name, s.kind
        limit 500
        """
    )
    runs = await pool.fetch(
        """
        select r.started_at, r.duration_ms, r.http_status, r.records, r.events, r.error, s.id as source_id,
               s.council, s.kind
        from poll_runs r join sources s on s.id = r.source_id
        order by r.started_at desc limit 25
        """
    )
    deliveries = await pool.fetch(
        """
        select s.channel, d.status, count(*) as n
        from deliveries d join subscriptions s on s.id = d.subscription_id
        group by s.channel, d.status order by s.channel, d.status
        """
    )
    failures = await pool.fetch(
        """
        select d.id, s.channel, d.status, d.attempts, d.last_error, d.next_attempt_at, d.created_at, e.summary,
               d.event_id is null as test_ping
        from deliveries d join subscriptions s on s.id = d.subscription_id left join events e on e.id = d.event_id
        where d.last_error is not null and d.status in ('pending', 'failed')
        order by d.created_at desc limit 25
        """
    )
    suppressions = await pool.fetch("select email, reason, at, detail from suppressions order by at desc limit 25")
    by_reason = await pool.fetch("select reason, count(*) as n from suppressions group by reason order by reason")
    counts: dict[str, dict[str, int]] = {}
    for r in deliveries:
        counts.setdefault(r["channel"], {})[r["status"]] = r["n"]
    now = datetime.now(UTC)
    return {
        "freshness": await source_freshness(pool, now=now),
        "alert_times": await alert_times(pool, since=now - ALERT_TIMES_WINDOW),
        "sources": sources,
        "runs": runs,
        "queues": await _queues(request),
        # every channel that delivers, with a row of noughts before its first delivery, and any other present
        "delivery_channels": DELIVERY_CHANNELS + sorted(counts.keys() - set(DELIVERY_CHANNELS)),
        "delivery_counts": counts,
        "statuses": ["pending", "sending", "sent", "failed", "skipped"],
        "failures": failures,
        "suppressions": suppressions,
        "suppressions_by_reason": by_reason,
    }
