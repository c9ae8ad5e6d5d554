"""The residents' pages end to end: subscribe, confirm (double opt-in), manage and unsubscribe, against real
PostgreSQL, Redis, the in-process worker and a real SMTP server."""

from __future__ import annotations

import html
import json
import re
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from arq.connections import ArqRedis
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from notifier import subscriptions as subs
from notifier.settings import Settings
from notifier.tokens import TokenData, TokenError, Tokens
from notifier.web.app import create_app
from notifier.web.keys import SETTINGS
from notifier.web.security import make_csrf
from tests.factories import Factory
from tests.servers import SmtpServer

BASE = "http://notifier.test"  # tests/conftest.py's base_url
LEICS = "Leicestershire County Council"


def text_part(message: EmailMessage) -> str:
    """The plain-text part, decoded, with the wire's CRLF line ends as newlines."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def html_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def links(message: EmailMessage, kind: str) -> list[str]:
    """The paths of this kind's links (confirm, manage, unsubscribe) in the plain-text part, in order."""
    return re.findall(rf"{re.escape(BASE)}(/{kind}/[A-Za-z0-9_.-]+)", text_part(message))


def link(message: EmailMessage, kind: str) -> str:
    found = links(message, kind)
    assert found, f"no {kind} link in:\n{text_part(message)}"
    return found[0]


def post(client: TestClient[Any, Any], path: str, data: dict[str, str] | None = None, **kwargs: Any) -> Any:
    """A form post as the page's own form sends it: with the signed token the page puts in each form."""
    token = make_csrf(client.app[SETTINGS].secret_key, path)
    return client.post(path, data={**(data or {}), "csrf": token}, **kwargs)


async def subscribe(client: TestClient[Any, Any], email: str, **form: str) -> tuple[int, str]:
    values = {"email": email, "query": "", "council": "leicestershire", "region": "", "frequency": "immediate"}
    resp = await post(client, "/subscribe", {**values, **form})
    return resp.status, await resp.text()


async def new_event(factory: Factory, redis: ArqRedis, title: str, **kwargs: Any) -> int:
    """An event arrives and the matcher is asked to look at it (as ingest does)."""
    event_id = await factory.event(title=title, **kwargs)
    await redis.enqueue_job("match_events", _job_id=f"match:{event_id}")
    return event_id


async def subscriber_row(pool: asyncpg.Pool, email: str) -> asyncpg.Record:
    row = await pool.fetchrow("select * from subscribers where lower(email) = $1", email.lower())
    assert row is not None
    return row


def main_text(page: str) -> str:
    """The page's <main>, whitespace folded: what a reader sees, without the request id."""
    found = re.search(r"<main[^>]*>(.*)</main>", page, re.S)
    assert found is not None
    return " ".join(found[1].split())


# ---- the consent cycle ----------------------------------------------------------------------------------------------


async def test_pages_consent_cycle_confirm_then_alert(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, redis: ArqRedis, smtp_server: SmtpServer,
    run_jobs: Any,
) -> None:
    await factory.council("leicestershire", name=LEICS)
    index = await client.get("/")
    assert index.status == 200
    assert 'action="/subscribe"' in await index.text()

    status, page = await subscribe(client, "Alice@Example.org", query="dementia")
    assert status == 200
    assert "Check your email" in page
    alice = await subscriber_row(pool, "alice@example.org")
    assert (alice["email"], alice["status"], alice["confirmed_at"]) == ("alice@example.org", "pending", None)
    assert await pool.fetchval("select count(*) from subscriptions where confirmed_at is null") == 1

    # news that matches arrives before she confirms: only the confirmation is sent, and nothing is queued for later
    await new_event(factory, redis, "Dementia strategy progress report")
    await run_jobs()
    [confirmation] = smtp_server.messages
    assert confirmation.rcpt_tos == ["alice@example.org"]
    assert confirmation.message["Subject"] == "Confirm your email alerts from Council alerts"
    assert confirmation.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "dementia at Leicestershire County Council" in text_part(confirmation.message)
    assert await pool.fetchval("select count(*) from deliveries") == 0

    confirm_path = link(confirmation.message, "confirm")
    assert f'href="{BASE}{confirm_path}"' in html_part(confirmation.message)
    shown = await client.get(confirm_path)
    assert shown.status == 200
    body = await shown.text()
    assert f'<form method="post" action="{confirm_path}">' in body
    assert "Yes, send me these alerts" in body
    assert (await subscriber_row(pool, "alice@example.org"))["status"] == "pending"  # a GET changes nothing

    done = await post(client, confirm_path)
    assert done.status == 200
    confirmed = await done.text()
    assert "<h1>You're subscribed</h1>" in confirmed
    assert "dementia at Leicestershire County Council" in confirmed
    assert "As it happens, a few minutes after each update" in confirmed
    assert 'href="/manage/' in confirmed
    alice = await subscriber_row(pool, "alice@example.org")
    assert alice["status"] == "active"
    assert alice["confirmed_at"] is not None
    assert await pool.fetchval("select count(*) from subscriptions where confirmed_at is null") == 0

    await new_event(factory, redis, "Dementia services: consultation results", url="https://leics.example/d/1")
    await new_event(factory, redis, "Highways maintenance plan")  # not about dementia
    await run_jobs()
    assert len(smtp_server.messages) == 2
    alert = smtp_server.messages[1].message
    assert alert["To"] == "alice@example.org"
    assert alert["Subject"] == f"{LEICS}: Dementia services: consultation results: meeting.scheduled"
    assert "*Dementia* services: consultation results" in text_part(alert)
    assert "Highways" not in text_part(alert)
    assert "<mark>Dementia</mark> services: consultation results" in html_part(alert)
    assert alert["List-Unsubscribe"] == f"<{BASE}{link(alert, 'unsubscribe')}>"


async def test_pages_confirmation_one_click_stops_everything_for_good(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, smtp_server: SmtpServer, run_jobs: Any,
    settings: Settings,
) -> None:
    """Someone else typed my address: the confirmation's List-Unsubscribe stops it, and any later request."""
    await factory.council()
    await subscribe(client, "hal@example.org")
    await run_jobs()
    [confirmation] = smtp_server.messages
    hal = (await subscriber_row(pool, "hal@example.org"))["id"]
    one_click = str(confirmation.message["List-Unsubscribe"]).strip("<>")
    assert one_click.startswith(f"{BASE}/unsubscribe/")
    assert Tokens(settings.secret_key).read("unsubscribe", one_click.rsplit("/", 1)[1]) == TokenData(hal)
    resp = await client.post(one_click.removeprefix(BASE), data={"List-Unsubscribe": "One-Click"})
    assert resp.status == 200
    assert await subs.is_suppressed(pool, "hal@example.org")
    assert (await post(client, link(confirmation.message, "confirm"))).status == 409
    await subscribe(client, "hal@example.org", query="anything")
    await run_jobs()
    assert len(smtp_server.messages) == 1


async def test_pages_subscribe_same_answer_for_new_known_and_suppressed_addresses(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, redis: ArqRedis, smtp_server: SmtpServer,
    run_jobs: Any,
) -> None:
    await factory.council()
    answers = [await subscribe(client, "bob@example.org")]  # new
    answers.append(await subscribe(client, "bob@example.org"))  # known, pending
    await run_jobs()
    # one confirmation: the form submitted again is the same subscription, within the resend window
    assert [m.rcpt_tos for m in smtp_server.messages] == [["bob@example.org"]]
    await pool.execute("update subscribers set status = 'active', confirmed_at = now()")
    answers.append(await subscribe(client, "BOB@example.org"))  # known, active
    await subs.suppress(pool, "bob@example.org", "unsubscribed")
    answers.append(await subscribe(client, "bob@example.org"))  # suppressed
    assert [status for status, _ in answers] == [200, 200, 200, 200]
    pages = {main_text(page).replace("BOB@example.org", "bob@example.org") for _, page in answers}
    assert pages == {
        "<h1>Check your email</h1> <p>If bob@example.org can receive our emails, a message with a link to confirm is "
        "on its way.</p><p>Nothing else will be sent until you confirm. The link works for 7 days.</p> "
        '<p><a href="/">Go to the start page</a></p>'
    }
    # the same filter asked for again is the same subscription, not a second one listing every event twice
    assert await pool.fetchval("select count(*) from subscriptions") == 1
    await run_jobs()
    assert len(smtp_server.messages) == 1


async def test_pages_subscribe_limit_per_address_is_silent(
    settings: Settings, pool: asyncpg.Pool, redis: ArqRedis, factory: Factory, smtp_server: SmtpServer,
    run_jobs: Any,
) -> None:
    """Over the per-address limit the page says what it always says, and nothing more is made or sent."""
    await factory.council()
    limited = settings.model_copy(update={"subscribe_rate_limit_per_hour": 2})
    async with TestClient(TestServer(create_app(limited))) as client:
        answers = [await subscribe(client, email, query=query)
                   for email, query in (("ivy@example.org", "dementia"), ("ivy@example.org", "housing"),
                                        ("IVY@example.org", "libraries"))]
    assert [status for status, _ in answers] == [200, 200, 200]
    pages = {main_text(page).replace("IVY@", "ivy@") for _, page in answers}
    assert len(pages) == 1 and "<h1>Check your email</h1>" in pages.pop()
    assert [r["query"] for r in await pool.fetch("select query from subscriptions order by id")] == [
        "dementia", "housing"
    ]
    await run_jobs()
    assert [m.rcpt_tos for m in smtp_server.messages] == [["ivy@example.org"], ["ivy@example.org"]]


async def test_pages_subscribe_to_a_whole_region(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory
) -> None:
    await factory.council()
    await factory.council("camden", region="London")
    index = await (await client.get("/")).text()
    assert 'name="region" value="East Midlands"' in index
    status, page = await subscribe(client, "jo@example.org", query="parks", council="", region="East Midlands")
    assert (status, "Check your email" in page) == (200, True)
    row = await pool.fetchrow("select query, councils, regions from subscriptions")
    assert (row["query"], row["councils"], row["regions"]) == ("parks", [], ["East Midlands"])


async def test_pages_subscribe_rejects_bad_input_with_the_form_again(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory
) -> None:
    await factory.council()
    status, page = await subscribe(client, "not-an-address", query='"unclosed phrase')
    assert status == 422
    assert "Enter an email address in the correct format, like name@example.com" in page
    assert "Enter a topic we can follow: " in page
    assert '<a href="#email">' in page and '<a href="#query">' in page  # the summary links to each field
    assert 'value="not-an-address"' in page
    assert await pool.fetchval("select count(*) from subscribers") == 0


async def test_pages_preview_shows_recent_matches_and_subscribes_nobody(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory
) -> None:
    await factory.council()
    await factory.event(title="Joint Living Well Dementia Strategy 2024-2028", url="https://example.org/dementia")
    await factory.event(title="Better Care Fund quarter 2 report")
    # no address needed to look; the form comes back filled in, with what the topic matched
    status, page = await subscribe(client, "", query="dementia", action="preview")
    assert status == 200
    assert "1 update in the last 30 days" in page
    assert '<a href="https://example.org/dementia">Joint Living Well Dementia Strategy 2024-2028</a>' in page
    assert "Better Care Fund" not in page
    assert 'value="dementia"' in page
    assert await pool.fetchval("select count(*) from subscribers") == 0


async def test_pages_preview_warns_about_a_filter_that_matches_everything(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory
) -> None:
    await factory.council()
    item_id = await factory.item(title="Cabinet")
    for _ in range(60):  # 60 in 30 days is 14 a week; 300 is 70, over the line where a digest is suggested
        for _ in range(5):
            await factory.event(item_id=item_id)
    status, page = await subscribe(client, "someone@example.org", action="preview")
    assert status == 200
    assert "300 updates in the last 30 days, about 70 a week" in page
    assert "a daily digest may suit this better" in page
    assert await pool.fetchval("select count(*) from subscribers") == 0


async def test_pages_preview_of_a_broken_topic_says_what_is_wrong(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory
) -> None:
    await factory.council()
    status, page = await subscribe(client, "", query="dementia AND (", action="preview")
    assert status == 422
    assert "Enter a topic we can follow: " in page
    assert "What this alert would have sent" not in page


async def test_pages_confirm_expired_link_offers_resend(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, smtp_server: SmtpServer, run_jobs: Any,
    settings: Settings,
) -> None:
    council = await factory.council()
    carol = await factory.subscriber("carol@example.org", status="pending")
    sub = await factory.subscription(carol, councils=[council], confirmed=False)
    # the first confirmation went out eight days ago, signed then
    await pool.execute("update subscriptions set confirm_sent_at = now() - interval '8 days'")
    eight_days_ago = Tokens(settings.secret_key, clock=lambda: time.time() - 8 * 86400)
    expired = f"/confirm/{eight_days_ago.make('confirm', carol, sub)}"

    for resp in (await client.get(expired), await post(client, expired)):
        assert resp.status == 410
        page = await resp.text()
        assert "This link has expired" in page
        assert '<form method="post" action="/confirm/resend" novalidate>' in page
    assert (await subscriber_row(pool, "carol@example.org"))["status"] == "pending"

    resent = await post(client, "/confirm/resend", {"email": "Carol@example.org"})
    assert resent.status == 200
    assert "a fresh link is on its way" in await resent.text()
    await run_jobs()
    [fresh] = smtp_server.messages
    assert fresh.rcpt_tos == ["carol@example.org"]
    path = link(fresh.message, "confirm")
    assert path != expired
    assert (await client.get(path)).status == 200
    assert (await post(client, path)).status == 200
    assert (await subscriber_row(pool, "carol@example.org"))["status"] == "active"


async def test_pages_resend_for_unknown_address_sends_nothing_and_says_the_same(
    client: TestClient[Any, Any], pool: asyncpg.Pool, smtp_server: SmtpServer, run_jobs: Any
) -> None:
    resp = await post(client, "/confirm/resend", {"email": "nobody@example.org"})
    assert resp.status == 200
    assert "If nobody@example.org has alerts waiting for confirmation, a fresh link is on its way." in await resp.text()
    await run_jobs()
    assert smtp_server.messages == []


def _flip(token: str, at: int) -> str:
    """The token with one character of its signature changed. Not the last: in base64 its low bits are padding,
    and a change there can decode to the same signature."""
    return token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1:]


@pytest.mark.parametrize("kind", ["confirm", "manage", "unsubscribe"])
@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda t, kind: "not-a-token", id="garbage"),
        pytest.param(lambda t, kind: Tokens("another-secret-key-of-32-chars!!").make(kind, 1, 1), id="other-key"),
        pytest.param(lambda t, kind: t.make("manage" if kind != "manage" else "confirm", 1, 1), id="other-purpose"),
        pytest.param(lambda t, kind: _flip(t.make(kind, 1, 1), -6), id="bad-signature"),
        pytest.param(lambda t, kind: "A" * 600, id="too-long"),
    ],
)
async def test_pages_forged_token_is_not_found(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, settings: Settings, kind: str, forge: Any
) -> None:
    subscriber = await factory.subscriber("dave@example.org")
    await factory.subscription(subscriber, councils=[await factory.council()])
    token = forge(Tokens(settings.secret_key), kind)
    for resp in (await client.get(f"/{kind}/{token}"), await post(client, f"/{kind}/{token}")):
        assert resp.status == 404
        assert "This link is not valid" in await resp.text()
    assert (await subscriber_row(pool, "dave@example.org"))["status"] == "active"
    assert await pool.fetchval("select count(*) from subscriptions") == 1
    assert await pool.fetchval("select count(*) from suppressions") == 0


async def test_pages_confirm_link_for_deleted_subscription(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, settings: Settings
) -> None:
    erin = await factory.subscriber("erin@example.org", status="pending")
    sub = await factory.subscription(erin, councils=[await factory.council()], confirmed=False)
    token = Tokens(settings.secret_key).make("confirm", erin, sub)
    await pool.execute("delete from subscriptions")
    resp = await client.get(f"/confirm/{token}")
    assert resp.status == 404
    assert "This subscription no longer exists." in await resp.text()


async def test_pages_confirm_refused_for_suppressed_address(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, settings: Settings
) -> None:
    fay = await factory.subscriber("fay@example.org", status="pending")
    sub = await factory.subscription(fay, councils=[await factory.council()], confirmed=False)
    token = Tokens(settings.secret_key).make("confirm", fay, sub)
    await subs.suppress(pool, "fay@example.org", "complained")
    resp = await post(client, f"/confirm/{token}")
    assert resp.status == 409
    assert (await subscriber_row(pool, "fay@example.org"))["status"] == "complained"


# ---- unsubscribe ----------------------------------------------------------------------------------------------------


async def two_alerts(factory: Factory) -> tuple[int, int, int]:
    council = await factory.council()
    grace = await factory.subscriber("grace@example.org")
    dementia = await factory.subscription(grace, query="dementia", councils=[council])
    housing = await factory.subscription(grace, query="housing", councils=[council])
    return grace, dementia, housing


async def test_pages_unsubscribe_get_shows_page_and_changes_nothing(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, settings: Settings
) -> None:
    grace, dementia, _ = await two_alerts(factory)
    token = Tokens(settings.secret_key).make("unsubscribe", grace, dementia)
    resp = await client.get(f"/unsubscribe/{token}")
    assert resp.status == 200
    page = await resp.text()
    assert "Stop <strong>dementia at Leicestershire Council</strong>." in page
    assert "Stop all emails to grace@example.org" in page
    assert await pool.fetchval("select count(*) from subscriptions") == 2
    assert (await subscriber_row(pool, "grace@example.org"))["status"] == "active"


@pytest.mark.parametrize(
    ("one_subscription", "form", "left", "status", "suppressed"),
    [
        # RFC 8058 one-click from a message about one alert stops that alert, at once, with no page in between
        (True, {"List-Unsubscribe": "One-Click"}, ["housing"], "active", False),
        # ... and from a message about several, everything
        (False, {"List-Unsubscribe": "One-Click"}, ["dementia", "housing"], "unsubscribed", True),
        (True, {"scope": "one"}, ["housing"], "active", False),
        (True, {"scope": "all"}, ["dementia", "housing"], "unsubscribed", True),
        (False, {"scope": "all"}, ["dementia", "housing"], "unsubscribed", True),
        (False, {}, ["dementia", "housing"], "unsubscribed", True),
    ],
)
async def test_pages_unsubscribe_post(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, settings: Settings,
    one_subscription: bool, form: dict[str, str], left: list[str], status: str, suppressed: bool,
) -> None:
    grace, dementia, _ = await two_alerts(factory)
    tokens = Tokens(settings.secret_key)
    token = tokens.make("unsubscribe", grace, dementia) if one_subscription else tokens.make("unsubscribe", grace)
    resp = await (client.post(f"/unsubscribe/{token}", data=form) if "List-Unsubscribe" in form
                  else post(client, f"/unsubscribe/{token}", form))
    assert resp.status == 200
    if "List-Unsubscribe" in form:
        assert await resp.text() == "unsubscribed"
    assert [r["query"] for r in await pool.fetch("select query from subscriptions order by query")] == left
    assert (await subscriber_row(pool, "grace@example.org"))["status"] == status
    assert await subs.is_suppressed(pool, "grace@example.org") is suppressed


async def test_pages_unsubscribe_one_click_is_idempotent(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, settings: Settings
) -> None:
    grace, _, _ = await two_alerts(factory)
    token = Tokens(settings.secret_key).make("unsubscribe", grace)
    for _ in range(2):
        resp = await client.post(f"/unsubscribe/{token}", data="List-Unsubscribe=One-Click",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert resp.status == 200
    assert [tuple(r) for r in await pool.fetch("select email, reason from suppressions")] == [
        ("grace@example.org", "unsubscribed")
    ]


async def test_pages_unsubscribe_all_then_subscribe_again_is_never_mailed(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, redis: ArqRedis, smtp_server: SmtpServer,
    run_jobs: Any, settings: Settings,
) -> None:
    grace, _, _ = await two_alerts(factory)
    resp = await post(client, f"/unsubscribe/{Tokens(settings.secret_key).make('unsubscribe', grace)}",
                      {"scope": "all"})
    assert resp.status == 200
    status, page = await subscribe(client, "grace@example.org", query="libraries")
    assert (status, "Check your email" in page) == (200, True)
    await new_event(factory, redis, "Dementia, housing and libraries")
    await run_jobs()
    assert smtp_server.messages == []
    assert await pool.fetchval("select count(*) from deliveries") == 0
    # a link from an old confirmation email cannot bring the address back either
    sub = await pool.fetchval("select id from subscriptions where query = 'libraries'")
    confirm = await post(client, f"/confirm/{Tokens(settings.secret_key).make('confirm', grace, sub)}")
    assert confirm.status == 409
    assert (await subscriber_row(pool, "grace@example.org"))["status"] == "unsubscribed"


# ---- manage ---------------------------------------------------------------------------------------------------------


async def test_pages_manage_lists_and_changes_alerts(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, settings: Settings
) -> None:
    grace, dementia, housing = await two_alerts(factory)
    path = f"/manage/{Tokens(settings.secret_key).make('manage', grace)}"
    page = await (await client.get(path)).text()
    assert "Alerts to <strong>grace@example.org</strong>." in page
    assert "dementia at Leicestershire Council" in page and "housing at Leicestershire Council" in page
    assert page.count('value="pause"') == 2

    async def act(form: dict[str, str], at: str = path) -> str:
        resp = await post(client, at, form, allow_redirects=False)
        assert resp.status == 303
        location = resp.headers["Location"]
        assert location.startswith(path + "?notice=")
        return await (await client.get(location)).text()

    changed = await act(
        {"scope": "choose", "council": "leicestershire", "query": "dementia", "frequency": "daily", "hour": "18",
         "timezone": "Europe/Paris"},
        at=f"{path}/alerts/{dementia}",
    )
    assert "Alert saved." in changed
    assert "Every day at 18:00 (Europe/Paris)" in changed
    row = await pool.fetchrow("select frequency, hour from subscriptions where id = $1", dementia)
    assert (row["frequency"], row["hour"]) == ("daily", 18)
    assert (await subscriber_row(pool, "grace@example.org"))["timezone"] == "Europe/Paris"

    day = (datetime.now(UTC) + timedelta(days=10)).date()
    page = await act({"action": "pause", "subscription": str(housing), "until": day.isoformat()})
    until = await pool.fetchval("select paused_until from subscriptions where id = $1", housing)
    assert until.astimezone(ZoneInfo("Europe/Paris")).date() == day + timedelta(days=1)
    assert f"Paused to the end of {day:%-d %B %Y}" in page
    assert "Resumed." in await act({"action": "resume", "subscription": str(housing)})
    assert await pool.fetchval("select paused_until from subscriptions where id = $1", housing) is None

    assert "Alert deleted." in await act({"action": "delete", "subscription": str(housing)})
    assert [r["id"] for r in await pool.fetch("select id from subscriptions")] == [dementia]
    assert (await subscriber_row(pool, "grace@example.org"))["status"] == "active"


async def test_pages_manage_refuses_someone_elses_subscription(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, settings: Settings
) -> None:
    grace, _, _ = await two_alerts(factory)
    other = await factory.subscription(await factory.subscriber("heidi@example.org"), councils=["leicestershire"])
    path = f"/manage/{Tokens(settings.secret_key).make('manage', grace)}"
    resp = await post(client, path, {"action": "delete", "subscription": str(other)}, allow_redirects=False)
    assert resp.status == 404
    assert await pool.fetchval("select count(*) from subscriptions where id = $1", other) == 1


async def test_pages_manage_export_and_erase(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, settings: Settings
) -> None:
    grace, dementia, housing = await two_alerts(factory)
    path = f"/manage/{Tokens(settings.secret_key).make('manage', grace)}"
    export = await client.get(f"{path}/export")
    assert export.status == 200
    assert export.headers["Content-Disposition"] == 'attachment; filename="my-council-alerts.json"'
    data = json.loads(await export.text())
    assert data["subscriber"]["email"] == "grace@example.org"
    assert [s["id"] for s in data["subscriptions"]] == [dementia, housing]
    assert data["suppression"] is None

    # the button asks first, and deletes nothing
    asked = await post(client, path, {"action": "erase"}, allow_redirects=False)
    assert (asked.status, asked.headers["Location"]) == (303, f"{path}/erase")
    confirm = await client.get(f"{path}/erase")
    assert confirm.status == 200
    page = main_text(await confirm.text())
    assert "This deletes the address <strong>grace@example.org</strong>, 2 alerts" in page
    assert "Are you sure?" in page
    assert f'<form method="post" action="{path}/erase">' in page
    assert await pool.fetchval("select count(*) from subscriptions") == 2
    # the confirmation's own token, bound to its own path: the manage page's token does not erase
    refused = await client.post(f"{path}/erase", data={"csrf": make_csrf(settings.secret_key, path)})
    assert refused.status == 403
    assert await pool.fetchval("select count(*) from subscribers") == 1

    erased = await post(client, f"{path}/erase")
    assert erased.status == 200
    assert "Your data is deleted" in await erased.text()
    assert await pool.fetchval("select count(*) from subscribers") == 0
    assert await pool.fetchval("select count(*) from subscriptions") == 0
    assert (await client.get(path)).status == 404


# ---- the tokens in the links ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("purpose", ["confirm", "manage", "unsubscribe"])
@pytest.mark.parametrize(
    ("ids", "same_as_library"),
    [((1,), True), ((12345, 678), True), ((2**40, 7), True), ((111111111111, 111111111111), False)],
)
def test_tokens_are_itsdangerous_tokens(purpose: str, ids: tuple[int, ...], same_as_library: bool) -> None:
    """Tokens are made directly but in itsdangerous's format: it reads them, and they are its own tokens except for
    ids of repeated digits, which it would compress."""
    signed_at = 1_764_857_112

    class Then(TimestampSigner):
        def get_timestamp(self) -> int:
            return signed_at

    tokens = Tokens("a-secret-key-of-enough-length", clock=lambda: signed_at)
    token = tokens.make(purpose, *ids)  # type: ignore[arg-type]
    library = URLSafeTimedSerializer("a-secret-key-of-enough-length", salt=f"notifier.{purpose}", signer=Then)
    assert library.loads(token) == list(ids)
    assert (token == library.dumps(list(ids))) is same_as_library
    assert tokens.read(purpose, token) == TokenData(*ids)  # type: ignore[arg-type]
    assert tokens.read(purpose, library.dumps(list(ids))) == TokenData(*ids)  # type: ignore[arg-type]


def test_tokens_confirm_expires_manage_and_unsubscribe_do_not() -> None:
    now = time.time()
    long_ago = Tokens("a-secret-key-of-enough-length", clock=lambda: now - 30 * 86400)
    today = Tokens("a-secret-key-of-enough-length", confirm_max_age_seconds=7 * 86400)
    for purpose in ("manage", "unsubscribe"):
        assert today.read(purpose, long_ago.make(purpose, 5, 6)).subscription_id == 6  # type: ignore[arg-type]
    with pytest.raises(TokenError) as raised:
        today.read("confirm", long_ago.make("confirm", 5, 6))
    assert raised.value.expired is True
    with pytest.raises(TypeError):
        today.make("manage", True)


async def test_pages_preview_says_where_in_the_paper_the_topic_is(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, council_server: Any, settings: Settings
) -> None:
    from notifier.ingest.documents import fetch_due_documents
    from tests.ingest.helpers import fetcher
    from tests.ingest.test_documents import REPORT

    await factory.council()
    council_server.set("/paper.pdf", REPORT, content_type="application/pdf")
    await factory.event(type="document.published", kind="document", title="Work programme",
                        url=f"{council_server.url}/paper.pdf", summary="Work programme published")
    await factory.event(title="Scrutiny <b>notes</b>", url="javascript:alert(1)", body="respite care")
    async with fetcher(settings) as f:
        assert (await fetch_due_documents(pool, f, settings)).extracted == 1
    status, page = await subscribe(client, "", query="respite", action="preview")
    assert status == 200
    assert "p. 3: " in page and "The respite centre at" in " ".join(page.split())
    assert "javascript:" not in page and "Scrutiny &lt;b&gt;notes&lt;/b&gt;" in page  # shown, never a link
    resp = await client.get("/preview", params={"query": "respite", "council": "leicestershire",
                                                "frequency": "immediate"})
    items = {i["title"]: i for i in (await resp.json())["items"]}
    assert items["Work programme"]["snippets"][0].startswith("p. 3: ")
    assert items["Scrutiny <b>notes</b>"]["url"] is None


class _FormFields(HTMLParser):
    """What a browser sends from a page's first form: its fields with their values, the ticked choices only."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self._select: str | None = None
        self._forms = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._forms += 1
        if self._forms != 1 or "name" not in a:
            if tag == "option" and self._select and "selected" in a:
                self.fields.append((self._select, a.get("value", "")))
            return
        if tag == "input" and (a.get("type") not in ("checkbox", "radio", "submit") or "checked" in a):
            self.fields.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select = a["name"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def form_fields(page: str) -> list[tuple[str, str]]:
    parser = _FormFields()
    parser.feed(page)
    return parser.fields


async def test_pages_follow_a_committee_from_its_meeting_page(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory
) -> None:
    await factory.council("leicestershire", name=LEICS)
    meeting = await factory.item(kind="meeting", committee="Health & Wellbeing Board")
    page = await (await client.get(f"/meetings/{meeting}")).text()
    [follow] = re.findall(r'<a href="(/\?[^"]*)">Follow Health &amp; Wellbeing Board</a>', page)
    form = await client.get(html.unescape(follow))
    assert form.status == 200
    fields = form_fields(await form.text())
    assert ("committee", "Health & Wellbeing Board") in fields and ("council", "leicestershire") in fields
    fields = [(k, v) for k, v in fields if k != "email"] + [("email", "amy@example.org"), ("action", "subscribe")]
    done = await client.post("/subscribe", data=fields)
    assert "Check your email" in await done.text()
    row = await pool.fetchrow("select councils, committees from subscriptions")
    assert (row["councils"], row["committees"]) == (["leicestershire"], ["Health & Wellbeing Board"])
    # unticked, the committee is dropped and the alert follows the whole council
    await client.post("/subscribe", data=[(k, v) for k, v in fields if k != "committee"])
    assert await pool.fetchval("select count(*) from subscriptions where committees = '{}'") == 1
