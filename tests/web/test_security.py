"""What every page answer carries and what every form post must show (notifier/web/security.py)."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from notifier.settings import Settings
from notifier.tokens import Tokens
from notifier.web.app import create_app
from notifier.web.security import CSRF_MAX_AGE, check_csrf, make_csrf
from tests.factories import Factory
from tests.web.test_pages import post


async def test_security_headers_on_every_page(client: TestClient[Any, Any], factory: Factory) -> None:
    await factory.council()
    for path in ("/", "/manage/not-a-token", "/static/site.css", "/admin"):
        resp = await client.get(path)
        csp = resp.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "style-src 'self'" in csp, path
        assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert resp.headers["Referrer-Policy"] == "no-referrer"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["X-Frame-Options"] == "DENY"


async def test_security_pages_have_no_inline_script_style_or_outside_asset(
    client: TestClient[Any, Any], factory: Factory
) -> None:
    await factory.council()
    page = await (await client.get("/")).text()
    assert "<style" not in page and " style=" not in page
    assert [src for src in re.findall(r'<script[^>]*src="([^"]+)"', page)] == ["/static/site.js"]
    assert len(re.findall(r"<script", page)) == 1
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert (await client.get("/static/site.js")).status == 200


@pytest.mark.parametrize(
    ("headers", "with_token", "status"),
    [
        ({}, True, 200),
        ({"Origin": "null"}, True, 200),  # our own pages' posts, under Referrer-Policy: no-referrer
        ({"Sec-Fetch-Site": "same-origin", "Origin": "http://notifier.test"}, True, 200),
        ({}, False, 403),
        ({"Origin": "https://evil.example"}, True, 403),
        ({"Sec-Fetch-Site": "cross-site", "Origin": "null"}, True, 403),
        ({"Sec-Fetch-Site": "same-site"}, True, 403),
    ],
)
async def test_security_form_posts_need_token_and_our_origin(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, settings: Settings,
    headers: dict[str, str], with_token: bool, status: int,
) -> None:
    grace = await factory.subscriber("grace@example.org")
    sub = await factory.subscription(grace, councils=[await factory.council()])
    path = f"/manage/{Tokens(settings.secret_key).make('manage', grace)}"
    form = {"action": "delete", "subscription": str(sub)}
    if with_token:
        form["csrf"] = make_csrf(settings.secret_key, path)
    resp = await client.post(path, data=form, headers=headers, allow_redirects=False)
    assert resp.status == (303 if status == 200 else status)
    assert await pool.fetchval("select count(*) from subscriptions") == (0 if status == 200 else 1)
    if status == 403:
        assert "This form could not be sent" in await resp.text()


async def test_security_token_is_for_one_form_target_only(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, settings: Settings
) -> None:
    tokens = Tokens(settings.secret_key)
    grace = await factory.subscriber("grace@example.org")
    await factory.subscription(grace, councils=[await factory.council()])
    path = f"/manage/{tokens.make('manage', grace)}"
    resp = await client.post(path, data={"action": "erase", "csrf": make_csrf(settings.secret_key, "/subscribe")})
    assert resp.status == 403
    assert await pool.fetchval("select count(*) from subscribers") == 1


def test_security_csrf_tokens_expire_and_resist_tampering() -> None:
    secret = "a-secret-key-of-enough-length"
    token = make_csrf(secret, "/subscribe")
    check_csrf(secret, "/subscribe", token)
    for bad in ("", token[:-2] + "xx", make_csrf("another-secret-key-long-enough", "/subscribe"), "x" * 300):
        with pytest.raises(Exception, match="token"):
            check_csrf(secret, "/subscribe", bad)
    with pytest.raises(Exception, match="token"):
        check_csrf(secret, "/subscribe", make_csrf(secret, "/subscribe", session="operator"))
    assert CSRF_MAX_AGE == 86400


async def test_security_one_click_unsubscribe_needs_no_token(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, settings: Settings
) -> None:
    grace = await factory.subscriber("grace@example.org")
    path = f"/unsubscribe/{Tokens(settings.secret_key).make('unsubscribe', grace)}"
    resp = await client.post(path, data={"List-Unsubscribe": "One-Click"}, headers={"Origin": "https://mail.example"})
    assert (resp.status, await resp.text()) == (200, "unsubscribed")
    # the same path without the one-click body is a form post like any other
    other = await factory.subscriber("heidi@example.org")
    resp = await client.post(f"/unsubscribe/{Tokens(settings.secret_key).make('unsubscribe', other)}",
                             data={"scope": "all"})
    assert resp.status == 403
    assert await pool.fetchval("select status from subscribers where id = $1", other) == "active"


async def test_security_subscribing_is_limited_per_client_address(
    settings: Settings, pool: asyncpg.Pool, redis: object, factory: Factory
) -> None:
    await factory.council()
    limited = settings.model_copy(update={"subscribe_rate_limit_per_client_per_hour": 2})
    async with TestClient(TestServer(create_app(limited))) as client:
        answers = []
        for n in range(3):
            resp = await post(client, "/subscribe", {"email": f"person{n}@example.org", "council": "leicestershire"})
            answers.append((resp.status, await resp.text()))
    assert [status for status, _ in answers] == [200, 200, 429]
    assert "Too many requests" in answers[2][1]
    assert "No alert was made from what you sent." in answers[2][1]
    assert resp.headers["Retry-After"].isdigit()
    assert await pool.fetchval("select count(*) from subscribers") == 2


async def test_security_previews_are_limited_per_client_address(
    settings: Settings, pool: asyncpg.Pool, redis: object, factory: Factory
) -> None:
    await factory.council()
    limited = settings.model_copy(update={"preview_rate_limit_per_client_per_hour": 2})
    params = {"query": "dementia", "council": "leicestershire"}
    async with TestClient(TestServer(create_app(limited))) as client:
        answers = [await client.get("/preview", params=params, headers={"Accept": "application/json"})
                   for _ in range(3)]
        assert [r.status for r in answers] == [200, 200, 429]
        over = answers[2]
        assert over.content_type == "application/json"
        assert (await over.json())["error"].startswith("This connection has asked for too many previews")
        assert over.headers["Retry-After"].isdigit()
        # the same bucket behind the plain page and the form's Preview button
        page = await client.get("/preview", params=params)
        assert page.status == 429
        assert "<h1>Too many requests</h1>" in await page.text()
        button = await post(client, "/subscribe", {**params, "action": "preview"})
        assert button.status == 429
        # subscribing has a bucket of its own
        resp = await post(client, "/subscribe", {"email": "person@example.org", "council": "leicestershire"})
        assert resp.status == 200
    assert await pool.fetchval("select count(*) from subscribers") == 1


async def test_security_council_text_is_escaped(client: TestClient[Any, Any], factory: Factory) -> None:
    await factory.council("evil", name='<script>alert("x")</script> Council', region="<b>Region</b>")
    page = await (await client.get("/")).text()
    assert "<script>alert" not in page and "<b>Region</b>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Council" in page


async def test_security_unknown_page_is_a_page_not_a_bare_error(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/no-such-page")
    assert resp.status == 404
    page = await resp.text()
    assert "<h1>Page not found</h1>" in page
    assert resp.headers["Content-Security-Policy"].startswith("default-src 'none'")
    api = await client.get("/api/v1/no-such-thing")
    assert api.content_type == "application/problem+json"


async def test_security_unhandled_error_is_a_plain_page_without_a_trace(
    settings: Settings, pool: asyncpg.Pool, redis: object
) -> None:
    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("connection string postgresql://secret@db")

    app = create_app(settings)
    app.router.add_get("/broken", broken)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/broken")
        page = await resp.text()
        assert resp.status == 500
        assert "<h1>Sorry, there is a problem with the service</h1>" in page
        assert "Traceback" not in page and "RuntimeError" not in page and "secret" not in page
        assert resp.headers["Content-Security-Policy"].startswith("default-src 'none'")
        api = await client.get("/broken", headers={"Accept": "application/json"})
        assert api.status == 500
        assert "secret" not in await api.text()
