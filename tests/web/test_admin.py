"""The operator page: refused without NOTIFIER_ADMIN_TOKEN, a login form setting a signed cookie, the health of
sources, polls, queue and deliveries, and the poll-now button enqueueing the worker's own poll job."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from arq.connections import ArqRedis

from notifier.delivery.webhooks import endpoints
from notifier.models import FilterModel
from notifier.partners import create_partner
from notifier.settings import Settings
from notifier.web.app import create_app
from notifier.web.keys import SETTINGS
from notifier.web.security import make_csrf
from tests.factories import Factory

TOKEN = "operator-token-1234"


@pytest.fixture
async def admin(settings: Settings, pool: asyncpg.Pool, redis: ArqRedis) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(settings.model_copy(update={"admin_token": TOKEN}))
    async with TestClient(TestServer(app)) as c:
        yield c


async def sign_in(client: TestClient[Any, Any], token: str = TOKEN) -> Any:
    form = {"token": token, "csrf": make_csrf(client.app[SETTINGS].secret_key, "/admin/login")}
    return await client.post("/admin/login", data=form, allow_redirects=False)


def admin_post(client: TestClient[Any, Any], path: str) -> Any:
    """A form post from the operator page: its token is bound to the operator's session cookie."""
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/admin"))["notifier_admin"].value
    secret = client.app[SETTINGS].secret_key
    return client.post(path, data={"csrf": make_csrf(secret, path, cookie)}, allow_redirects=False)


async def test_admin_refused_when_no_token_is_configured(client: TestClient[Any, Any]) -> None:
    for resp in (await client.get("/admin"), await sign_in(client, "")):
        assert resp.status == 404
        assert "The operator page is off" in await resp.text()


async def test_admin_login_sets_a_strict_http_only_cookie(admin: TestClient[Any, Any], factory: Factory) -> None:
    resp = await admin.get("/admin")
    assert resp.status == 401
    assert 'name="token"' in await resp.text()
    wrong = await sign_in(admin, "guess")
    assert wrong.status == 401
    assert "The token is not right" in await wrong.text()
    resp = await sign_in(admin)
    assert resp.status == 303
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie
    page = await admin.get("/admin")
    assert page.status == 200
    assert "Operator page" in await page.text()


async def test_admin_tampered_or_stale_cookie_is_not_a_session(
    settings: Settings, pool: asyncpg.Pool, redis: ArqRedis
) -> None:
    async with TestClient(TestServer(create_app(settings.model_copy(update={"admin_token": TOKEN})))) as client:
        await sign_in(client)
        cookie = client.session.cookie_jar.filter_cookies(client.make_url("/admin"))["notifier_admin"].value
    # the token changed since: the old session ends
    async with TestClient(TestServer(create_app(settings.model_copy(update={"admin_token": "a-new-token-5678"})))) as c:
        for value in (cookie, cookie[:-3] + "abc"):
            resp = await c.get("/admin", headers={"Cookie": f"notifier_admin={value}"})
            assert resp.status == 401


async def test_admin_page_shows_health_queue_deliveries_and_suppressions(
    admin: TestClient[Any, Any], factory: Factory, pool: asyncpg.Pool, redis: ArqRedis
) -> None:
    broken = await factory.source("rutland", last_error="HTTP 503 <from> the council", consecutive_failures=4)
    await pool.execute(
        "insert into poll_runs (source_id, started_at, duration_ms, http_status, records, events, error) "
        "values ($1, now(), 120, 503, 0, 0, 'HTTP 503')",
        broken,
    )
    grace = await factory.subscriber("grace@example.org")
    sub = await factory.subscription(grace, councils=["rutland"])
    event = await factory.event(council="rutland", title="Cabinet")
    await pool.execute(
        "insert into deliveries (subscription_id, event_id, status, attempts, last_error) "
        "values ($1, $2, 'failed', 8, '550 mailbox unavailable')",
        sub,
        event,
    )
    await pool.execute("insert into suppressions (email, reason) values ('gone@example.org', 'bounced')")
    await redis.enqueue_job("send_emails", _job_id="pending-send")
    await sign_in(admin)
    page = await (await admin.get("/admin")).text()
    assert "HTTP 503 &lt;from&gt; the council" in page
    assert '<span class="tag bad">4</span>' in page
    assert "550 mailbox unavailable" in page
    assert "gone@example.org" in page and "bounced: 1" in page
    assert "<dt>Jobs waiting</dt><dd>1 in arq:queue</dd>" in page


async def test_admin_poll_now_enqueues_the_poll_job(
    admin: TestClient[Any, Any], factory: Factory, redis: ArqRedis
) -> None:
    source = await factory.source("rutland")
    path = f"/admin/sources/{source}/poll"
    await sign_in(admin)
    for _ in range(2):  # a double click is one job
        resp = await admin_post(admin, path)
        assert resp.status == 303
        assert resp.headers["Location"].startswith("/admin?notice=")
    jobs = [j for j in await redis.queued_jobs() if j.function == "poll_source"]
    assert [j.args for j in jobs] == [(source,)]


async def test_admin_poll_now_needs_a_session(admin: TestClient[Any, Any], factory: Factory, redis: ArqRedis) -> None:
    source = await factory.source("rutland")
    path = f"/admin/sources/{source}/poll"
    resp = await admin.post(path, data={"csrf": make_csrf(admin.app[SETTINGS].secret_key, path)})
    assert resp.status == 401
    assert await redis.queued_jobs() == []


async def test_admin_page_shows_staleness_and_time_to_alert(
    admin: TestClient[Any, Any], factory: Factory, pool: asyncpg.Pool
) -> None:
    await factory.source("leicestershire", kind="rss")  # polled every 30 minutes: that is its staleness
    grace = await factory.subscriber("grace@example.org")
    sub = await factory.subscription(grace, councils=["leicestershire"])
    seen = datetime.now(UTC) - timedelta(minutes=10)
    for n, minutes in enumerate((2, 4, 9)):
        event = await factory.event(title=f"Cabinet {n}", occurred_at=seen)
        await pool.execute(
            "insert into deliveries (subscription_id, event_id, status, sent_at, created_at) "
            "values ($1, $2, 'sent', $3, $4)",
            sub, event, seen + timedelta(minutes=minutes), seen + timedelta(seconds=30),
        )
    await sign_in(admin)
    page = " ".join((await (await admin.get("/admin")).text()).split())
    assert "Worst staleness" in page and "30.0 min" in page
    assert "Time to alert, last 24 hours" in page
    # three immediate email alerts: 2, 4 and 9 minutes from seen to sent
    assert '<th scope="row">email</th><td class="num">3</td><td class="num">4.0 min</td>' in page


async def test_admin_deliveries_show_every_channel_and_failed_test_pings(
    admin: TestClient[Any, Any], factory: Factory, pool: asyncpg.Pool
) -> None:
    """WebSub deliveries are counted in a row of their own, and a failing webhook test ping (no event) is listed."""
    event = await factory.event(council="rutland", title="Cabinet")
    hub = await pool.fetchval(
        """
        insert into webhook_endpoints (url, secret, channel, topic, lease_expires_at)
        values ('https://reader.example/cb', '', 'websub', 'http://notifier.test/feeds/all.atom',
                now() + interval '1 day') returning id
        """
    )
    websub = await pool.fetchval(
        "insert into subscriptions (endpoint_id, channel, feed_token, confirmed_at) "
        "values ($1, 'websub', 'w', now()) returning id",
        hub,
    )
    await pool.execute(
        "insert into deliveries (subscription_id, event_id, status, sent_at) values ($1, $2, 'sent', now())",
        websub, event,
    )
    partner, _ = await create_partner(pool, "Newsroom")
    endpoint, _ = await endpoints.create(pool, partner, "https://newsroom.example/hook", FilterModel(), None)
    await endpoints.ping(pool, endpoint)
    await pool.execute("update deliveries set attempts = 3, last_error = 'HTTP 502 from the endpoint' "
                       "where event_id is null")
    await sign_in(admin)
    page = " ".join((await (await admin.get("/admin")).text()).split())
    counts = '<td class="num">{}</td><td class="num">0</td><td class="num">{}</td><td class="num">0</td>' \
             '<td class="num">0</td>'
    assert '<th scope="row">email</th>' + counts.format(0, 0) in page
    assert '<th scope="row">webhook</th>' + counts.format(1, 0) in page
    assert '<th scope="row">websub</th>' + counts.format(0, 1) in page
    assert ("<td>webhook</td><td><em>Test ping</em></td><td>pending</td><td class=\"num\">3</td>"
            "<td>HTTP 502 from the endpoint</td>") in page
