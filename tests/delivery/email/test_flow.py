"""The email channel end to end: partners' API, what every email carries, batching, digests at the local hour across
DST changes, the weekly summary, suppression and SMTP failures; against real PostgreSQL, Redis, the in-process worker
and a real SMTP server (aiosmtpd) with its fault modes."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiosmtplib.email import flatten_message
from arq.connections import ArqRedis

from notifier import subscriptions as subs
from notifier.delivery import outbox
from notifier.delivery.email.batches import KeptEntries, entry_view, prepare, render_batch
from notifier.delivery.email.mailer import Mailer
from notifier.delivery.email.message import build_message
from notifier.delivery.email.render import email_environment, render_alert
from notifier.delivery.email.views import Following, Links
from notifier.delivery.schedule import next_send_time
from notifier.matching.matcher import SubscriptionIndex, match_events
from notifier.partners import create_partner
from notifier.settings import Settings
from notifier.tokens import Tokens
from notifier.web.app import create_app
from tests.factories import Factory
from tests.servers import SmtpServer
from tests.web.test_pages import BASE, html_part, link, links, post, text_part

LEICS = "Leicestershire County Council"
MakeMailer = Callable[..., Mailer]


@pytest.fixture
async def client(settings: Settings, pool: asyncpg.Pool, redis: ArqRedis) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_app(settings))) as c:
        yield c
    # the API's rate-limit counters are per partner id, and ids start again at 1 in the next test
    await redis.flushdb()


@pytest.fixture
async def mailer(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[MakeMailer]:
    """`mailer(**settings_overrides)`: the worker's Mailer, closed after the test."""
    made: list[Mailer] = []

    def make(**overrides: Any) -> Mailer:
        made.append(Mailer.create(settings.model_copy(update=overrides), pool))
        return made[-1]

    yield make
    for m in made:
        await m.close()


async def deliveries(pool: asyncpg.Pool) -> list[tuple[Any, ...]]:
    rows = await pool.fetch("select subscription_id, event_id, status, attempts from deliveries order by id")
    return [tuple(r) for r in rows]


async def match(pool: asyncpg.Pool, settings: Settings, **overrides: Any) -> int:
    result = await match_events(pool, SubscriptionIndex(), settings.model_copy(update=overrides))
    return result.deliveries


def fixed_tokens(settings: Settings) -> Tokens:
    """Tokens dated at one fixed second, so that a test can make the very tokens an email carries."""
    signed_at = time.time()
    return Tokens(settings.secret_key, clock=lambda: signed_at)


def api(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# ---- partners' API --------------------------------------------------------------------------------------------------


async def test_api_consent_confirm_then_alert(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, redis: ArqRedis, smtp_server: SmtpServer,
    run_jobs: Any,
) -> None:
    council = await factory.council(name=LEICS)
    _, key = await create_partner(pool, "Dementia UK")
    resp = await client.post("/api/v1/subscribers", json={"email": "Nina@example.org", "consent": "confirm"},
                             headers=api(key))
    assert resp.status == 201
    nina = await resp.json()
    assert (nina["email"], nina["status"], nina["confirmed_at"]) == ("nina@example.org", "pending", None)

    resp = await client.post(
        "/api/v1/subscriptions",
        json={"subscriber_id": nina["id"], "filter": {"query": "dementia", "councils": [council]}},
        headers=api(key),
    )
    assert resp.status == 201
    subscription = await resp.json()
    assert subscription["feed_url"].startswith(f"{BASE}/feeds/s/")
    await factory.event(title="Dementia strategy")
    await redis.enqueue_job("match_events")
    await run_jobs()
    [confirmation] = smtp_server.messages  # the confirmation, and nothing about the event
    assert confirmation.rcpt_tos == ["nina@example.org"]
    assert confirmation.message["Subject"] == "Confirm your email alerts from Council alerts"
    assert await pool.fetchval("select count(*) from deliveries") == 0

    assert (await post(client, link(confirmation.message, "confirm"))).status == 200
    resp = await client.get(f"/api/v1/subscribers/{nina['id']}", headers=api(key))
    assert (await resp.json())["status"] == "active"
    await factory.event(title="Dementia friendly communities")
    await redis.enqueue_job("match_events", _job_id="match:after-confirm")
    await run_jobs()
    assert len(smtp_server.messages) == 2
    assert "*Dementia* friendly communities" in text_part(smtp_server.messages[1].message)


async def test_api_vouched_subscriber_gets_alerts_without_confirmation(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, redis: ArqRedis, smtp_server: SmtpServer,
    run_jobs: Any,
) -> None:
    council = await factory.council(name=LEICS)
    _, key = await create_partner(pool, "Age UK")
    resp = await client.post("/api/v1/subscribers", json={"email": "olga@example.org", "consent": "vouched"},
                             headers=api(key))
    assert resp.status == 201
    olga = await resp.json()
    assert olga["status"] == "active" and olga["confirmed_at"] is not None
    resp = await client.post("/api/v1/subscriptions", json={"subscriber_id": olga["id"], "filter": {
        "councils": [council]}, "frequency": "immediate"}, headers=api(key))
    assert resp.status == 201
    await run_jobs()
    assert smtp_server.messages == []  # no confirmation for a vouched address
    await factory.event(title="Adult social care charging policy")
    await redis.enqueue_job("match_events")
    await run_jobs()
    [alert] = smtp_server.messages
    assert alert.rcpt_tos == ["olga@example.org"]
    assert alert.message["Subject"] == f"{LEICS}: Adult social care charging policy: meeting.scheduled"


async def test_api_subscription_read_change_delete(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory
) -> None:
    council = await factory.council()
    _, key = await create_partner(pool, "Carers Trust")
    sid = (await (await client.post("/api/v1/subscribers", json={"email": "pam@example.org", "consent": "vouched"},
                                    headers=api(key))).json())["id"]
    created = await (await client.post("/api/v1/subscriptions", json={
        "subscriber_id": sid, "filter": {"query": "carers", "councils": [council]}}, headers=api(key))).json()
    url = f"/api/v1/subscriptions/{created['id']}"
    got = await (await client.get(url, headers=api(key))).json()
    assert got["filter"] == {"query": "carers", "councils": [council], "regions": [], "committees": [], "kinds": [],
                             "event_types": []}
    assert (got["frequency"], got["hour"], got["paused_until"]) == ("immediate", None, None)

    resp = await client.patch(url, json={"frequency": "daily", "hour": 18, "paused_until": "2030-01-01T00:00:00Z"},
                              headers=api(key))
    assert resp.status == 200
    changed = await resp.json()
    assert (changed["frequency"], changed["hour"], changed["paused_until"]) == (
        "daily", 18, "2030-01-01T00:00:00+00:00")
    assert changed["filter"]["query"] == "carers"
    bad = await client.patch(url, json={"filter": {"query": "(unclosed"}}, headers=api(key))
    assert bad.status == 422
    assert (await bad.json())["errors"][0]["field"] == "filter.query"

    assert (await client.delete(url, headers=api(key))).status == 204
    assert (await client.get(url, headers=api(key))).status == 404
    assert await pool.fetchval("select count(*) from subscriptions") == 0


async def test_api_export_and_erase_subscriber(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, settings: Settings
) -> None:
    council = await factory.council()
    _, key = await create_partner(pool, "Shelter")
    sid = (await (await client.post("/api/v1/subscribers", json={"email": "quinn@example.org", "consent": "vouched",
                                                                 "timezone": "Europe/Paris"},
                                    headers=api(key))).json())["id"]
    sub = (await (await client.post("/api/v1/subscriptions", json={
        "subscriber_id": sid, "filter": {"query": "housing", "councils": [council]}}, headers=api(key))).json())["id"]
    event = await factory.event(title="Housing strategy")
    await match(pool, settings)
    resp = await client.get(f"/api/v1/subscribers/{sid}/export", headers=api(key))
    assert resp.status == 200
    data = await resp.json()
    assert (data["subscriber"]["email"], data["subscriber"]["timezone"]) == ("quinn@example.org", "Europe/Paris")
    assert [s["id"] for s in data["subscriptions"]] == [sub]
    assert [(d["event_id"], d["status"]) for d in data["deliveries"]] == [(event, "pending")]

    assert (await client.delete(f"/api/v1/subscribers/{sid}", headers=api(key))).status == 204
    assert (await client.get(f"/api/v1/subscribers/{sid}", headers=api(key))).status == 404
    for table in ("subscribers", "subscriptions", "deliveries"):
        assert await pool.fetchval(f"select count(*) from {table}") == 0


async def test_api_partner_sees_only_its_own_subscribers(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory
) -> None:
    council = await factory.council()
    _, mine = await create_partner(pool, "Mind")
    _, theirs = await create_partner(pool, "Other charity")
    sid = (await (await client.post("/api/v1/subscribers", json={"email": "ray@example.org", "consent": "vouched"},
                                    headers=api(mine))).json())["id"]
    sub = (await (await client.post("/api/v1/subscriptions", json={
        "subscriber_id": sid, "filter": {"councils": [council]}}, headers=api(mine))).json())["id"]
    for method, path in [
        ("GET", f"/api/v1/subscribers/{sid}"), ("GET", f"/api/v1/subscribers/{sid}/export"),
        ("DELETE", f"/api/v1/subscribers/{sid}"), ("GET", f"/api/v1/subscriptions/{sub}"),
        ("PATCH", f"/api/v1/subscriptions/{sub}"), ("DELETE", f"/api/v1/subscriptions/{sub}"),
    ]:
        resp = await client.request(method, path, json={"frequency": "weekly"} if method == "PATCH" else None,
                                    headers=api(theirs))
        assert (method, path, resp.status) == (method, path, 404)
        assert resp.content_type == "application/problem+json"
    resp = await client.post("/api/v1/subscriptions", json={"subscriber_id": sid, "filter": {}}, headers=api(theirs))
    assert resp.status == 422
    listed = await (await client.get("/api/v1/subscriptions", headers=api(theirs))).json()
    assert listed == {"items": [], "next": None}
    # the same address is a different subscriber for the other partner
    other = await client.post("/api/v1/subscribers", json={"email": "ray@example.org", "consent": "confirm"},
                              headers=api(theirs))
    assert other.status == 201
    assert (await other.json())["id"] != sid
    assert (await client.get(f"/api/v1/subscriptions/{sub}", headers=api(mine))).status == 200
    assert (await client.get("/api/v1/subscribers/1", headers={"Authorization": "Bearer nk_wrong"})).status == 401


async def test_api_suppressed_address_readded_by_partner_is_never_mailed(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, redis: ArqRedis, smtp_server: SmtpServer,
    run_jobs: Any, settings: Settings,
) -> None:
    council = await factory.council()
    sam = await factory.subscriber("sam@example.org")
    await factory.subscription(sam, councils=[council])
    one_click = await client.post(f"/unsubscribe/{Tokens(settings.secret_key).make('unsubscribe', sam)}",
                                  data={"List-Unsubscribe": "One-Click"})
    assert one_click.status == 200
    _, key = await create_partner(pool, "Partner")
    for consent in ("vouched", "confirm"):
        resp = await client.post("/api/v1/subscribers", json={"email": "SAM@example.org", "consent": consent},
                                 headers=api(key))
        assert resp.status in (200, 201)
        body = await resp.json()
        assert body["status"] == "unsubscribed"
        created = await client.post("/api/v1/subscriptions", json={
            "subscriber_id": body["id"], "filter": {"councils": [council]}}, headers=api(key))
        assert created.status == 201
    await factory.event(title="Budget consultation")
    await redis.enqueue_job("match_events")
    await run_jobs()
    assert smtp_server.messages == []
    assert await pool.fetchval("select count(*) from deliveries") == 0


# ---- what every email carries ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("frequency", ["immediate", "daily", "weekly"])
async def test_email_links_and_rfc8058_headers(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, smtp_server: SmtpServer,
    mailer: MakeMailer, settings: Settings, frequency: str,
) -> None:
    council = await factory.council(name=LEICS)
    tess = await factory.subscriber("tess@example.org")
    sub = await factory.subscription(tess, councils=[council], frequency=frequency)
    await factory.event(title="Cabinet", committee="Cabinet", url="https://leics.example/cabinet")
    assert await match(pool, settings) == 1
    await pool.execute("update deliveries set next_attempt_at = now()")  # the digest's hour has come
    m = mailer()
    m.tokens = tokens = fixed_tokens(settings)
    assert await m.send_due() == 1
    [received] = smtp_server.messages
    message = received.message

    stop_this = f"/unsubscribe/{tokens.make('unsubscribe', tess, sub)}"
    everything = f"/unsubscribe/{tokens.make('unsubscribe', tess)}"
    manage = f"/manage/{tokens.make('manage', tess)}"
    assert links(message, "unsubscribe") == [stop_this, everything]
    assert links(message, "manage") == [manage]
    assert message["List-Unsubscribe"] == f"<{BASE}{stop_this}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Id"] == "Council alerts <alerts.notifier.test>"
    assert re.fullmatch(r"<[0-9a-f]{32}@notifier\.test>", message["Message-ID"])
    assert await pool.fetchval("select message_id from deliveries") == message["Message-ID"]
    assert message["Date"] is not None
    assert received.mail_from.startswith("bounces+") and received.mail_from.endswith("@notifier.test")
    html = html_part(message)
    for path in (stop_this, everything, manage):
        assert f'href="{BASE}{path}"' in html
    assert "<img" not in html and "<script" not in html

    page = await client.get(manage)
    assert page.status == 200 and "Your alerts" in await page.text()
    page = await client.get(stop_this)
    assert page.status == 200 and "Stop this alert" in await page.text()
    assert await pool.fetchval("select count(*) from subscriptions") == 1  # GETs change nothing

    resp = await client.post(stop_this, data="List-Unsubscribe=One-Click",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status == 200
    assert await pool.fetchval("select count(*) from subscriptions") == 0
    assert await pool.fetchval("select status from subscribers") == "active"
    assert not await subs.is_suppressed(pool, "tess@example.org")


async def test_email_about_two_subscriptions_stops_each_or_everything(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, smtp_server: SmtpServer,
    mailer: MakeMailer, settings: Settings,
) -> None:
    council = await factory.council(name=LEICS)
    uma = await factory.subscriber("uma@example.org")
    dementia = await factory.subscription(uma, query="dementia", councils=[council])
    carers = await factory.subscription(uma, query="carers", councils=[council])
    await factory.event(title="Dementia and carers strategy")
    await match(pool, settings)
    m = mailer()
    m.tokens = tokens = fixed_tokens(settings)
    assert await m.send_due() == 1
    [received] = smtp_server.messages
    message = received.message
    everything = f"/unsubscribe/{tokens.make('unsubscribe', uma)}"
    # one entry for the event both matched, with both subscriptions' terms highlighted
    assert text_part(message).count("strategy") == 1
    assert "*Dementia* and *carers* strategy" in text_part(message)
    assert message["List-Unsubscribe"] == f"<{BASE}{everything}>"
    assert links(message, "unsubscribe") == [
        f"/unsubscribe/{tokens.make('unsubscribe', uma, dementia)}",
        f"/unsubscribe/{tokens.make('unsubscribe', uma, carers)}",
        everything,
    ]
    assert (await post(client, links(message, "unsubscribe")[1], {"scope": "one"})).status == 200
    assert [r["id"] for r in await pool.fetch("select id from subscriptions")] == [dementia]
    assert (await client.post(everything, data={"List-Unsubscribe": "One-Click"})).status == 200
    assert await subs.is_suppressed(pool, "uma@example.org")


async def test_email_merged_message_is_what_build_message_makes(
    pool: asyncpg.Pool, factory: Factory, smtp_server: SmtpServer, mailer: MakeMailer, settings: Settings
) -> None:
    """The sender renders shared content once and fills in each recipient's links: the result must be exactly the
    message `build_message` builds for that recipient, whether merged (plain addresses) or built whole (the rest)."""
    council = await factory.council(name=LEICS)
    plain = await factory.subscriber("vic@example.org")
    literal = await factory.subscriber("vic@[192.0.2.1]")  # not a plain address: built whole, not merged
    for subscriber in (plain, literal):
        await factory.subscription(subscriber, query="care*", councils=[council])
    await factory.event(title="Children’s social care — Ofsted report", body="Care leavers and caring " * 40,
                        url="https://leics.example/ofsted")
    await match(pool, settings)
    m = mailer()
    m.tokens = tokens = fixed_tokens(settings)
    assert await m.send_due() == 2
    for received in smtp_server.messages:
        subscriber = plain if received.rcpt_tos == ["vic@example.org"] else literal
        sub = await pool.fetchval("select id from subscriptions where subscriber_id = $1", subscriber)
        row = await pool.fetchrow(
            "select e.id, e.type, e.changes, e.summary, e.council, c.name as council_name, i.* from events e "
            "join items i on i.id = e.item_id join councils c on c.slug = e.council"
        )
        assert row is not None
        one = f"{BASE}/unsubscribe/{tokens.make('unsubscribe', subscriber, sub)}"
        expected_links = Links(manage=f"{BASE}/manage/{tokens.make('manage', subscriber)}",
                               unsubscribe=f"{BASE}/unsubscribe/{tokens.make('unsubscribe', subscriber)}",
                               one_click=one, unsubscribe_subscription=one)
        entry = entry_view(row, "Europe/London", ["care*"])
        rendered = render_alert([entry], links=expected_links,
                                following=[Following(f"care* at {LEICS}", "immediate")], env=m.env)
        to = received.rcpt_tos[0]
        expected = build_message(rendered, to=to, mail_from=settings.mail_from, links=expected_links,
                                 list_id="Council alerts <alerts.notifier.test>", message_id_domain="notifier.test")
        # as the sender would put it on the wire
        expected = email.message_from_bytes(flatten_message(expected), policy=email.policy.default)  # type: ignore[assignment]
        got = received.message
        for header in ("From", "To", "Subject", "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post",
                       "Auto-Submitted", "X-Auto-Response-Suppress", "MIME-Version"):
            assert (header, str(got[header])) == (header, str(expected[header]))
        assert got.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in got.iter_parts()] == ["text/plain", "text/html"]
        assert text_part(got) == text_part(expected)
        assert html_part(got) == html_part(expected)
        assert "social <mark>care</mark> — Ofsted" in html_part(got)
        assert "<mark>Care</mark> leavers and caring <mark>Care</mark>" in html_part(got)
        assert got["Return-Path"] is None  # the VERP address is the envelope sender; the last MTA writes Return-Path
    raw = next(r.raw for r in smtp_server.messages if r.rcpt_tos == ["vic@example.org"])
    assert raw.isascii()
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


# ---- batching, digests, the weekly summary --------------------------------------------------------------------------


async def test_alerts_batched_within_the_window(
    pool: asyncpg.Pool, factory: Factory, smtp_server: SmtpServer, mailer: MakeMailer, settings: Settings
) -> None:
    council = await factory.council(name=LEICS)
    for address in ("wendy@example.org", "xavier@example.org"):
        await factory.subscription(await factory.subscriber(address), councils=[council])
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    for offset, title in [(0, "Cabinet"), (30, "Scrutiny Commission"), (90, "Health and Wellbeing Board")]:
        await factory.event(title=title, committee=title, occurred_at=t0 + timedelta(seconds=offset))
    assert await match(pool, settings, alert_batch_seconds=120) == 6
    due = sorted({r["next_attempt_at"] for r in await pool.fetch("select next_attempt_at from deliveries")})
    assert due == [t0 + timedelta(seconds=s) for s in (120, 150, 210)]

    m = mailer()
    assert await m.send_due(now=t0 + timedelta(seconds=119)) == 0
    assert await m.send_due(now=t0 + timedelta(seconds=120)) == 2
    assert sorted(r.rcpt_tos[0] for r in smtp_server.messages) == ["wendy@example.org", "xavier@example.org"]
    for received in smtp_server.messages:
        assert received.message["Subject"] == f"3 updates from {LEICS}"
        body = text_part(received.message)
        assert [line for line in body.splitlines() if line.startswith("* ")] == [
            "* Cabinet", "* Health and Wellbeing Board", "* Scrutiny Commission"]
    assert {r[2] for r in await deliveries(pool)} == {"sent"}

    await factory.event(title="Planning applications", occurred_at=t0 + timedelta(seconds=200))
    await match(pool, settings, alert_batch_seconds=120)
    assert await m.send_due(now=t0 + timedelta(seconds=319)) == 0
    assert await m.send_due(now=t0 + timedelta(seconds=320)) == 2
    assert len(smtp_server.messages) == 4
    assert smtp_server.messages[2].message["Subject"] == f"{LEICS}: Planning applications: meeting.scheduled"


async def test_alerts_batched_by_the_worker(
    pool: asyncpg.Pool, factory: Factory, redis: ArqRedis, smtp_server: SmtpServer, run_jobs: Any
) -> None:
    council = await factory.council(name=LEICS)
    await factory.subscription(await factory.subscriber("yann@example.org"), councils=[council])
    for title in ("Cabinet", "Scrutiny Commission"):
        await factory.event(title=title)
    await redis.enqueue_job("match_events")
    await run_jobs(alert_batch_seconds=120)
    assert smtp_server.messages == []  # the window is still open
    assert [r[2] for r in await deliveries(pool)] == ["pending", "pending"]
    await pool.execute("update deliveries set next_attempt_at = now() - interval '1 second'")
    await redis.enqueue_job("send_emails", _job_id="send:window-closed")
    await run_jobs(alert_batch_seconds=120)
    [received] = smtp_server.messages
    assert received.message["Subject"] == f"2 updates from {LEICS}"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("frequency", "timezone", "hour", "weekday", "after", "expected"),
    [
        # Europe/London: clocks go forward 29 Mar 2026 01:00 GMT, back 25 Oct 2026 02:00 BST
        ("daily", "Europe/London", 7, 0, "2026-03-28T12:00", "2026-03-29T06:00"),
        ("daily", "Europe/London", 7, 0, "2026-03-29T05:59", "2026-03-29T06:00"),
        ("daily", "Europe/London", 7, 0, "2026-03-29T06:00", "2026-03-29T06:00"),
        ("daily", "Europe/London", 7, 0, "2026-03-29T06:00:01", "2026-03-30T06:00"),
        ("daily", "Europe/London", 1, 0, "2026-03-28T23:30", "2026-03-29T01:00"),  # 01:00 is skipped: 02:00 BST
        ("daily", "Europe/London", 7, 0, "2026-10-24T12:00", "2026-10-25T07:00"),
        ("daily", "Europe/London", 7, 0, "2026-10-25T06:30", "2026-10-25T07:00"),
        ("daily", "Europe/London", 1, 0, "2026-10-24T23:30", "2026-10-25T00:00"),  # 01:00 twice: the first, BST
        ("daily", "Europe/London", 1, 0, "2026-10-25T00:30", "2026-10-26T01:00"),
        ("daily", "Europe/London", 1, 0, "2026-10-25T01:00", "2026-10-26T01:00"),  # the second 01:00 is not another
        ("daily", "Europe/London", 0, 0, "2026-10-24T23:00", "2026-10-24T23:00"),
        # America/New_York: forward 8 Mar 2026 02:00 EST, back 1 Nov 2026 02:00 EDT
        ("daily", "America/New_York", 7, 0, "2026-03-07T15:00", "2026-03-08T11:00"),
        ("daily", "America/New_York", 2, 0, "2026-03-08T05:00", "2026-03-08T07:00"),  # 02:00 skipped: 03:00 EDT
        ("daily", "America/New_York", 7, 0, "2026-10-31T15:00", "2026-11-01T12:00"),
        ("daily", "America/New_York", 1, 0, "2026-11-01T05:30", "2026-11-02T06:00"),
        # Australia/Sydney: forward 4 Oct 2026 02:00 AEST, back 5 Apr 2026 03:00 AEDT
        ("daily", "Australia/Sydney", 7, 0, "2026-10-03T00:00", "2026-10-03T20:00"),
        ("daily", "Australia/Sydney", 2, 0, "2026-10-03T14:00", "2026-10-03T16:00"),
        ("daily", "Australia/Sydney", 7, 0, "2026-04-04T00:00", "2026-04-04T21:00"),
        # weekly on a day and hour (0 = Monday)
        ("weekly", "Europe/London", 7, 0, "2026-03-28T12:00", "2026-03-30T06:00"),
        ("weekly", "Europe/London", 7, 6, "2026-10-24T12:00", "2026-10-25T07:00"),
        ("weekly", "Europe/London", 7, 0, "2026-03-30T06:30", "2026-04-06T06:00"),
        ("weekly", "America/New_York", 7, 6, "2026-03-07T15:00", "2026-03-08T11:00"),
        ("weekly", "Australia/Sydney", 7, 6, "2026-10-03T00:00", "2026-10-03T20:00"),
        # immediate: after the batching window, whatever the zone
        ("immediate", "Australia/Sydney", 7, 0, "2026-10-03T15:59", "2026-10-03T16:01"),
    ],
)
def test_next_send_time_across_dst(
    frequency: str, timezone: str, hour: int, weekday: int, after: str, expected: str
) -> None:
    due = next_send_time(frequency, after=utc(after), timezone=timezone, hour=hour, weekday=weekday,
                         batch_seconds=120)
    assert due == utc(expected)
    assert due.tzinfo is UTC


@pytest.mark.parametrize(
    ("after", "hour", "weekday"),
    [(datetime(2026, 3, 29, 6, 0), 7, 0), (utc("2026-03-29T06:00"), 24, 0), (utc("2026-03-29T06:00"), 7, 7)],
)
def test_next_send_time_refuses_bad_input(after: datetime, hour: int, weekday: int) -> None:
    with pytest.raises(ValueError):
        next_send_time("daily", after=after, timezone="Europe/London", hour=hour, weekday=weekday, batch_seconds=0)


@pytest.mark.parametrize(
    ("timezone", "occurred", "due", "day"),
    [
        ("Europe/London", "2026-03-28T12:00", "2026-03-29T06:00", "Sun 29 Mar 2026"),
        ("Europe/London", "2026-10-24T12:00", "2026-10-25T07:00", "Sun 25 Oct 2026"),
        ("America/New_York", "2026-03-07T15:00", "2026-03-08T11:00", "Sun 8 Mar 2026"),
        ("Australia/Sydney", "2026-10-03T00:00", "2026-10-03T20:00", "Sun 4 Oct 2026"),
    ],
)
async def test_digest_sent_at_the_local_hour_across_dst(
    pool: asyncpg.Pool, factory: Factory, smtp_server: SmtpServer, mailer: MakeMailer, settings: Settings,
    timezone: str, occurred: str, due: str, day: str,
) -> None:
    council = await factory.council(name=LEICS)
    zoe = await factory.subscriber("zoe@example.org", timezone=timezone)
    await factory.subscription(zoe, councils=[council], frequency="daily", hour=7, created_at=utc("2026-01-01T00:00"))
    await factory.event(title="Cabinet", starts_at=utc(occurred) + timedelta(days=3), occurred_at=utc(occurred))
    await match(pool, settings)
    assert await pool.fetchval("select next_attempt_at from deliveries") == utc(due)
    m = mailer()
    # an hour early is where a digest kept in UTC (or in the offset before the change) would go out
    for early in (timedelta(hours=1), timedelta(seconds=1)):
        assert await m.send_due(now=utc(due) - early) == 0
    assert await m.send_due(now=utc(due)) == 1
    [received] = smtp_server.messages
    assert received.message["Subject"] == f"Your daily digest for {day}: 1 update"
    assert await pool.fetchval("select sent_at from deliveries") == utc(due)


async def test_weekly_summary_content(
    pool: asyncpg.Pool, factory: Factory, smtp_server: SmtpServer, mailer: MakeMailer, settings: Settings
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    council = await factory.council("leicestershire", name=LEICS)
    await factory.council("rutland", name="Rutland County Council")
    leics = await factory.source("leicestershire")
    amy = await factory.subscriber("amy@example.org")
    await factory.subscription(amy, councils=[council], frequency="weekly", weekday=0, hour=7)

    async def item(title: str, kind: str, committee: str, *, starts: timedelta | None = None,
                   seen: timedelta = timedelta(0), status: str | None = "confirmed",
                   source: int | None = leics, council: str = "leicestershire") -> int:
        item_id = await factory.item(source_id=source, council=council, kind=kind, title=title, committee=committee,
                                     starts_at=now + starts if starts is not None else None, status=status,
                                     url=f"https://leics.example/{kind}/{title.replace(' ', '-')}")
        await pool.execute("update items set first_seen_at = $2 where id = $1", item_id, now - seen)
        return item_id

    await item("Health and Wellbeing Board meeting", "meeting", "Health and Wellbeing Board",
               starts=-timedelta(days=3), seen=timedelta(days=20))
    await item("Cabinet meeting", "meeting", "Cabinet", starts=timedelta(days=4), seen=timedelta(days=20))
    await item("Cabinet in a fortnight", "meeting", "Cabinet", starts=timedelta(days=10))
    await item("Scrutiny meeting called off", "meeting", "Scrutiny Commission", starts=timedelta(days=2),
               status="cancelled")
    await item("Library opening hours", "decision", "Cabinet", seen=timedelta(days=2))
    strategy = await item("Dementia strategy 2026", "document", "Health and Wellbeing Board", seen=timedelta(days=1))
    await item("Last month's report", "document", "Cabinet", seen=timedelta(days=9))
    await item("Rutland Cabinet", "meeting", "Cabinet", starts=timedelta(days=2), source=None, council="rutland")
    await factory.event(item_id=strategy, type="document.published", summary="Dementia strategy 2026 published")
    await match(pool, settings)
    await pool.execute("update deliveries set next_attempt_at = $1", now)
    assert await mailer().send_due(now=now) == 1
    [received] = smtp_server.messages
    text = text_part(received.message)
    start = now.date() - timedelta(days=7)
    assert received.message["Subject"].startswith(f"Weekly summary, {start.day}")
    assert received.message["Subject"].endswith(f": {LEICS}")
    body = text[text.index(LEICS + "\n"):text.index("\n-- \n")]
    headings = [line for line in body.splitlines() if line and not line.startswith((" ", "*", "=", "-", "http"))]
    assert headings == [
        LEICS, "Cabinet", "Coming up next week:", "Decisions made:",
        "Health and Wellbeing Board", "Meetings held:", "Documents published:",
    ]
    titles = [line[2:] for line in body.splitlines() if line.startswith("* ")]
    assert titles == ["Cabinet meeting", "Library opening hours", "Health and Wellbeing Board meeting",
                      "Dementia strategy 2026"]
    for absent in ("fortnight", "called off", "Last month", "Rutland"):
        assert absent not in text
    assert "https://leics.example/decision/Library-opening-hours" in text
    html = html_part(received.message)
    assert html.index("Cabinet meeting") < html.index("Library opening hours") < html.index("Dementia strategy 2026")


async def test_email_says_when_a_followed_councils_source_is_failing(
    pool: asyncpg.Pool, factory: Factory, smtp_server: SmtpServer, mailer: MakeMailer, settings: Settings
) -> None:
    council = await factory.council(name=LEICS)
    await factory.source(council, consecutive_failures=5, last_error="HTTP 503 from democracy.leics.gov.uk",
                         last_success_at=datetime(2026, 3, 2, 9, 30, tzinfo=UTC))
    await factory.source(council, kind="rss")  # a healthy one beside it does not hide the broken one
    await factory.subscription(await factory.subscriber("bea@example.org"), councils=[council])
    await factory.event(title="Cabinet")
    await match(pool, settings)
    assert await mailer().send_due() == 1
    text = " ".join(text_part(smtp_server.messages[0].message).split())
    assert (f"WARNING: we cannot read {LEICS}'s website at the moment. It has been failing since Mon 2 Mar 2026, "
            f"09:30, so this email may be missing updates from {LEICS}.") in text
    assert "HTTP 503 from democracy.leics.gov.uk" in text
    assert f"cannot read {LEICS}" in " ".join(html_part(smtp_server.messages[0].message).split()).replace("&#39;", "'")


async def test_paused_or_unconfirmed_subscription_skipped_at_send_time(
    pool: asyncpg.Pool, factory: Factory, smtp_server: SmtpServer, mailer: MakeMailer, settings: Settings
) -> None:
    council = await factory.council()
    cat = await factory.subscriber("cat@example.org")
    paused = await factory.subscription(cat, councils=[council])
    later = await factory.subscription(await factory.subscriber("dan@example.org"), councils=[council])
    await factory.event(title="Cabinet")
    await match(pool, settings)
    # after matching: one pauses from the manage page, the other's subscription loses its confirmation
    await pool.execute("update subscriptions set paused_until = now() + interval '30 days' where id = $1", paused)
    await pool.execute("update subscriptions set confirmed_at = null where id = $1", later)
    assert await mailer().send_due() == 0
    assert smtp_server.messages == []
    rows = await pool.fetch("select subscription_id, status, last_error from deliveries order by subscription_id")
    assert [tuple(r) for r in rows] == [
        (paused, "skipped", "subscription paused"), (later, "skipped", "subscription not confirmed")]


# ---- suppression and SMTP failures ----------------------------------------------------------------------------------


async def two_recipients(factory: Factory) -> tuple[int, int]:
    council = await factory.council()
    ivan = await factory.subscription(await factory.subscriber("ivan@example.org"), councils=[council])
    judy = await factory.subscription(await factory.subscriber("judy@example.org"), councils=[council])
    await factory.event(title="Cabinet")
    return ivan, judy


@pytest.mark.parametrize(
    ("reply", "suppressed", "status"),
    [
        ("550 5.1.1 <ivan@example.org>: Recipient address rejected: User unknown", True, "bounced"),
        ("550 No such user here", True, "bounced"),
        ("552 5.2.2 Mailbox full", False, "active"),
        ("554 5.7.1 Message rejected as spam", False, "active"),
    ],
)
async def test_permanent_rcpt_failure(
    pool: asyncpg.Pool, factory: Factory, smtp_server: SmtpServer, mailer: MakeMailer, settings: Settings,
    reply: str, suppressed: bool, status: str,
) -> None:
    ivan, judy = await two_recipients(factory)
    await match(pool, settings)
    smtp_server.rcpt_faults["ivan@example.org"] = reply
    assert await mailer().send_due() == 1
    assert [r.rcpt_tos for r in smtp_server.messages] == [["judy@example.org"]]
    row = await pool.fetchrow("select status, attempts, last_error from deliveries where subscription_id = $1", ivan)
    assert row is not None
    assert (row["status"], row["attempts"]) == ("failed", 1)
    assert row["last_error"] == " ".join(reply.split())
    assert await subs.is_suppressed(pool, "ivan@example.org") is suppressed
    assert await pool.fetchval("select status from subscribers where email = 'ivan@example.org'") == status
    assert await pool.fetchval("select status from deliveries where subscription_id = $1", judy) == "sent"
    # a bounced address gets nothing more, whatever matches next
    await factory.event(title="Scrutiny")
    await match(pool, settings)
    smtp_server.rcpt_faults.clear()
    await mailer().send_due()
    assert sum(r.rcpt_tos == ["ivan@example.org"] for r in smtp_server.messages) == (0 if suppressed else 1)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("451 4.3.0 Temporary local problem, try later", "451 4.3.0 Temporary local problem, try later"),
        ("421 4.7.0 Too many connections, closing", "421 4.7.0 Too many connections, closing"),
        ("drop", "connection lost during DATA"),
        ("slow", "no reply from smtp://127.0.0.1"),
    ],
)
async def test_temporary_failure_retries_with_backoff_then_recovers(
    pool: asyncpg.Pool, factory: Factory, smtp_server: SmtpServer, mailer: MakeMailer, settings: Settings,
    fault: str, error: str,
) -> None:
    council = await factory.council()
    await factory.subscription(await factory.subscriber("kate@example.org"), councils=[council])
    await factory.event(title="Cabinet")
    await match(pool, settings)
    smtp_server.fault = fault
    smtp_server.slow_seconds = 1.0
    m = mailer(smtp_url=f"{smtp_server.url}?timeout=0.3")
    t0 = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    schedule = [(t0, 1, t0 + timedelta(minutes=1)), (t0 + timedelta(minutes=1), 2, t0 + timedelta(minutes=6))]
    for at, attempts, next_at in schedule:
        assert await m.send_due(now=at) == 0
        row = await pool.fetchrow("select status, attempts, next_attempt_at, last_error, lease_until from deliveries")
        assert row is not None
        assert (row["status"], row["attempts"], row["next_attempt_at"], row["lease_until"]) == (
            "pending", attempts, next_at, None)
        assert error in row["last_error"]
        assert await m.send_due(now=next_at - timedelta(seconds=1)) == 0  # not before its time
    assert smtp_server.messages == []
    smtp_server.fault = None
    assert await m.send_due(now=t0 + timedelta(minutes=6)) == 1
    assert [r.rcpt_tos for r in smtp_server.messages] == [["kate@example.org"]]
    row = await pool.fetchrow("select status, attempts, last_error from deliveries")
    assert row is not None
    assert tuple(row) == ("sent", 3, None)


async def test_one_421_is_retried_at_once_on_a_new_connection(
    pool: asyncpg.Pool, factory: Factory, smtp_server: SmtpServer, mailer: MakeMailer, settings: Settings
) -> None:
    await two_recipients(factory)
    await match(pool, settings)
    smtp_server.fault, smtp_server.fault_count = "421 4.3.2 System shutting down", 1
    assert await mailer().send_due() == 2
    assert sorted(r.rcpt_tos[0] for r in smtp_server.messages) == ["ivan@example.org", "judy@example.org"]
    assert [r[2:] for r in await deliveries(pool)] == [("sent", 1), ("sent", 1)]


async def test_connection_refused_retries_later(
    pool: asyncpg.Pool, factory: Factory, mailer: MakeMailer, settings: Settings
) -> None:
    await two_recipients(factory)
    await match(pool, settings)
    t0 = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    assert await mailer(smtp_url="smtp://127.0.0.1:1").send_due(now=t0) == 0
    rows = await pool.fetch("select status, attempts, next_attempt_at, last_error from deliveries")
    assert {(r["status"], r["attempts"], r["next_attempt_at"]) for r in rows} == {
        ("pending", 1, t0 + timedelta(minutes=1))}
    assert all("cannot open an SMTP session with smtp://127.0.0.1:1" in r["last_error"] for r in rows)


async def test_gives_up_after_the_last_retry(
    pool: asyncpg.Pool, factory: Factory, smtp_server: SmtpServer, mailer: MakeMailer, settings: Settings
) -> None:
    await two_recipients(factory)
    await match(pool, settings)
    await pool.execute("update deliveries set attempts = 7")  # seven failed tries already: the schedule is spent
    smtp_server.fault = "451 4.3.0 try later"
    assert await mailer().send_due() == 0
    rows = await pool.fetch("select status, attempts, last_error from deliveries")
    assert {tuple(r) for r in rows} == {("failed", 8, "gave up: 451 4.3.0 try later")}
    assert not await subs.is_suppressed(pool, "ivan@example.org")


async def test_confirmation_to_bad_address_suppresses_it(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, smtp_server: SmtpServer, run_jobs: Any
) -> None:
    await factory.council()
    smtp_server.rcpt_faults["typo@example.org"] = "550 5.1.1 User unknown"
    resp = await post(client, "/subscribe", {"email": "typo@example.org", "council": "leicestershire",
                                             "frequency": "weekly"})
    assert resp.status == 200
    await run_jobs()
    assert smtp_server.messages == []
    assert await pool.fetchval("select reason from suppressions where email = 'typo@example.org'") == "bounced"


async def test_a_slow_but_live_pass_keeps_its_claims(
    pool: asyncpg.Pool, factory: Factory, smtp_server: SmtpServer, settings: Settings
) -> None:
    """A mail server so slow that the pass outlasts its lease several times over: the live worker renews its claims,
    so the sweeper, however often it runs meanwhile, hands none of them to another worker, and each goes once."""
    from notifier.delivery import outbox

    council = await factory.council()
    for n in range(4):
        await factory.subscription(await factory.subscriber(f"slow{n}@example.org"), councils=[council])
    await factory.event(title="Cabinet")
    await match(pool, settings)
    smtp_server.fault, smtp_server.slow_seconds = "slow", 1.0
    m = Mailer.create(settings.model_copy(update={"smtp_connections": 1}), pool, lease=timedelta(seconds=3))
    released = 0
    try:
        sending = asyncio.ensure_future(m.send_due())
        while not sending.done():
            released += await outbox.release_expired_leases(pool, now=datetime.now(UTC))
            await asyncio.wait([sending], timeout=0.1)
        assert sending.result() == 4
    finally:
        await m.close()
    assert released == 0
    assert sorted(r.rcpt_tos[0] for r in smtp_server.messages) == [f"slow{n}@example.org" for n in range(4)]
    assert await pool.fetchval("select count(*) from deliveries where status = 'sent'") == 4


async def test_entries_kept_in_a_pass_follow_each_subscriber(
    pool: asyncpg.Pool, factory: Factory, settings: Settings
) -> None:
    """A pass builds each event's entry once and uses it in every email that lists it the same way: a subscriber
    whose query matched it still sees their words highlighted, one in another zone their own times, and one who
    follows the whole council neither; every email is the one rendered without anything kept."""
    council = await factory.council(name=LEICS)
    whole = await factory.subscriber("una@example.org")
    topic = await factory.subscriber("val@example.org")
    abroad = await factory.subscriber("wes@example.org", timezone="America/New_York")
    await factory.subscription(whole, councils=[council])
    await factory.subscription(topic, query="dementia", councils=[council])
    await factory.subscription(abroad, councils=[council])
    await factory.event(title="Dementia strategy refresh", body="The dementia strategy. " * 20,
                        starts_at=datetime(2030, 1, 15, 14, 0, tzinfo=UTC))
    await match(pool, settings)
    now = datetime.now(UTC)
    batches = await outbox.claim_email_batches(pool, now=now, lease=timedelta(seconds=30))
    works = await prepare(pool, batches, now, 0.0)
    env, kept = email_environment(), KeptEntries()
    links = Links(manage=f"{BASE}/manage/M", unsubscribe=f"{BASE}/unsubscribe/U")
    got = {}
    for work in sorted(works, key=lambda w: w.email) * 2:  # the second time round, every entry is a kept one
        tz = work.timezone or settings.default_timezone
        ids = sorted({r["subscription_id"] for r in work.rows})
        rendered = [await render_batch(pool, env, work, tz=tz, subscription_ids=ids, now=now, links=links,
                                       stops=[None], kept=k) for k in (kept, None)]
        assert rendered[0] == rendered[1]
        got[work.email] = rendered[0]
    assert len(kept) == 3
    assert "<mark>Dementia</mark> strategy refresh" in got["val@example.org"].html
    for plain in ("una@example.org", "wes@example.org"):
        assert "<mark>" not in got[plain].html and "Dementia strategy refresh" in got[plain].html
    assert "Tue 15 Jan 2030, 14:00" in got["una@example.org"].text
    assert "Tue 15 Jan 2030, 09:00" in got["wes@example.org"].text
