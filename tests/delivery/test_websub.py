"""WebSub end to end: a subscriber (a real aiohttp server) subscribes at the hub, is verified with the GET
challenge by the worker, receives a signed push of the new entry when an event matches its topic, and hears
nothing after unsubscribing or once its lease has run out. The clock is moved in the database, never slept through.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import feedparser
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from arq.connections import ArqRedis
from icalendar import Calendar

from notifier.delivery import websub
from notifier.delivery.webhooks.sender import WebhookSender
from notifier.matching.matcher import SubscriptionIndex, match_events
from notifier.settings import Settings
from notifier.web.app import create_app
from tests.factories import Factory

TOPIC = "http://notifier.test/feeds/councils/leicestershire.atom"
SECRET = "a subscriber's own secret"


@dataclass
class Push:
    headers: dict[str, str]
    body: bytes


@dataclass
class Subscriber:
    """A feed reader's WebSub callback: echoes challenges (unless told to refuse) and keeps what is pushed."""

    refuse: set[str] = field(default_factory=set)
    failing: set[str] = field(default_factory=set)
    challenges: list[dict[str, str]] = field(default_factory=list)
    pushes: list[Push] = field(default_factory=list)
    runner: web.AppRunner | None = None
    port: int = 0

    def url(self, name: str = "reader") -> str:
        return f"http://127.0.0.1:{self.port}/callback/{name}"

    async def _verify(self, request: web.Request) -> web.Response:
        self.challenges.append(dict(request.query))
        if request.match_info["name"] in self.refuse:
            return web.Response(status=404)
        return web.Response(text=request.query["hub.challenge"])

    async def _push(self, request: web.Request) -> web.Response:
        self.pushes.append(Push(dict(request.headers), await request.read()))
        return web.Response(status=500 if request.match_info["name"] in self.failing else 202)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/callback/{name}", self._verify)
        app.router.add_post("/callback/{name}", self._push)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def subscriber() -> AsyncIterator[Subscriber]:
    s = Subscriber()
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
async def hub(settings: Settings, pool: asyncpg.Pool, redis: ArqRedis) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_app(settings))) as c:
        yield c


async def ask(hub: TestClient[Any, Any], mode: str, callback: str, topic: str = TOPIC, **extra: str) -> int:
    resp = await hub.post("/websub", data={"hub.mode": mode, "hub.topic": topic, "hub.callback": callback, **extra})
    return resp.status


async def new_event(factory: Factory, redis: ArqRedis, run_jobs: Any, title: str) -> int:
    """An event, and the worker's reaction to it: match, then push."""
    event_id = await factory.event(title=title, summary=f"{title}: agenda published", type="agenda.published")
    await redis.enqueue_job("match_events", _job_id=f"match:{event_id}")
    await run_jobs()
    return event_id


async def test_websub_subscriber_is_verified_and_receives_signed_pushes(
    hub: TestClient[Any, Any], subscriber: Subscriber, factory: Factory, pool: asyncpg.Pool, redis: ArqRedis,
    run_jobs: Any,
) -> None:
    await factory.council()
    assert await ask(hub, "subscribe", subscriber.url(), **{"hub.secret": SECRET, "hub.lease_seconds": "86400"}) \
        == 202
    assert subscriber.challenges == []  # verified by the worker, not inside the request
    await run_jobs()
    [challenge] = subscriber.challenges
    assert challenge["hub.mode"] == "subscribe" and challenge["hub.topic"] == TOPIC
    assert challenge["hub.lease_seconds"] == "86400"
    await factory.event(council="rutland", title="Rutland Cabinet")  # another council's: not this topic
    event_id = await new_event(factory, redis, run_jobs, "Health and Wellbeing Board")
    [push] = subscriber.pushes
    expected = "sha256=" + hmac.new(SECRET.encode(), push.body, hashlib.sha256).hexdigest()
    assert push.headers["X-Hub-Signature"] == expected
    assert push.headers["Link"] == f'<http://notifier.test/websub>; rel="hub", <{TOPIC}>; rel="self"'
    assert push.headers["Content-Type"].startswith("application/atom+xml")
    feed = feedparser.parse(push.body)
    assert not feed.bozo
    [entry] = feed.entries
    assert entry.id == f"tag:notifier.test,2025:event:{event_id}"
    assert entry.title == "Health and Wellbeing Board: agenda published"
    # the same entry as the feed shows
    page = feedparser.parse(await (await hub.get("/feeds/councils/leicestershire.atom")).read())
    assert entry.id in [e.id for e in page.entries]
    assert await pool.fetchval("select status from deliveries") == "sent"


async def test_websub_a_calendar_topic_is_pushed_whole_when_its_meetings_change(
    hub: TestClient[Any, Any], subscriber: Subscriber, factory: Factory, pool: asyncpg.Pool, redis: ArqRedis,
    run_jobs: Any,
) -> None:
    await factory.council()
    calendar = TOPIC.replace(".atom", ".ics")
    assert await ask(hub, "subscribe", subscriber.url(), topic=calendar, **{"hub.secret": SECRET}) == 202
    await run_jobs()
    assert [c["hub.topic"] for c in subscriber.challenges] == [calendar]
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=9)
    meeting = await factory.item(title="Cabinet", starts_at=starts)
    await factory.event(item_id=meeting, type="meeting.scheduled")
    # a document of the meeting changes nothing a calendar shows: no push for it
    await factory.event(kind="document", title="Budget report", type="document.published")
    await redis.enqueue_job("match_events", _job_id="match:calendar")
    await run_jobs()
    [push] = subscriber.pushes
    assert push.headers["Content-Type"].startswith("text/calendar")
    signed = hmac.new(SECRET.encode(), push.body, hashlib.sha256).hexdigest()
    assert push.headers["X-Hub-Signature"] == f"sha256={signed}"
    assert push.headers["Link"] == f'<http://notifier.test/websub>; rel="hub", <{calendar}>; rel="self"'
    pushed = Calendar.from_ical(push.body)
    [event] = pushed.walk("VEVENT")
    assert str(event["SUMMARY"]).startswith("Cabinet")
    assert event.decoded("DTSTART") == starts
    # the calendar its own URL serves, byte for byte: the same meeting with the same UID, under the same name
    served_bytes = await (await hub.get("/feeds/councils/leicestershire.ics")).read()
    served = Calendar.from_ical(served_bytes)
    assert [str(e["UID"]) for e in served.walk("VEVENT")] == [str(event["UID"])]
    assert str(pushed["X-WR-CALNAME"]) == str(served["X-WR-CALNAME"]) == "Leicestershire Council"
    assert push.body == served_bytes


async def test_websub_nothing_after_unsubscribing(
    hub: TestClient[Any, Any], subscriber: Subscriber, factory: Factory, redis: ArqRedis, run_jobs: Any,
    pool: asyncpg.Pool,
) -> None:
    await factory.council()
    await ask(hub, "subscribe", subscriber.url())
    await run_jobs()
    await new_event(factory, redis, run_jobs, "Cabinet")
    assert len(subscriber.pushes) == 1
    assert "X-Hub-Signature" not in subscriber.pushes[0].headers  # no hub.secret, no signature
    assert await ask(hub, "unsubscribe", subscriber.url()) == 202
    await run_jobs()
    assert subscriber.challenges[-1]["hub.mode"] == "unsubscribe"
    assert await pool.fetchval("select count(*) from webhook_endpoints") == 0
    await new_event(factory, redis, run_jobs, "Scrutiny")
    assert len(subscriber.pushes) == 1


async def test_websub_nothing_after_the_lease_ends(
    hub: TestClient[Any, Any], subscriber: Subscriber, factory: Factory, redis: ArqRedis, run_jobs: Any,
    pool: asyncpg.Pool,
) -> None:
    await factory.council()
    await ask(hub, "subscribe", subscriber.url(), **{"hub.lease_seconds": "3600"})
    await run_jobs()
    expires = await pool.fetchval("select lease_expires_at - now() from webhook_endpoints")
    assert 3500 < expires.total_seconds() <= 3600
    # the lease runs out
    await pool.execute("update webhook_endpoints set lease_expires_at = now() - interval '1 second'")
    await new_event(factory, redis, run_jobs, "Cabinet")
    assert subscriber.pushes == []
    await redis.enqueue_job("expire_websub", _job_id="expire:now")
    await run_jobs()
    assert await pool.fetchval("select count(*) from webhook_endpoints") == 0
    assert await pool.fetchval("select count(*) from subscriptions") == 0


async def test_websub_a_callback_failing_for_days_is_retried_then_dropped(
    hub: TestClient[Any, Any], subscriber: Subscriber, factory: Factory, run_jobs: Any, pool: asyncpg.Pool,
    settings: Settings,
) -> None:
    await factory.council()
    await ask(hub, "subscribe", subscriber.url("flaky"))
    await run_jobs()
    subscriber.failing.add("flaky")
    await factory.event(title="Cabinet")
    # one pass of the matcher and of the sender (the worker's own), with the clock moved between passes
    assert (await match_events(pool, SubscriptionIndex(), settings)).deliveries == 1
    sender = WebhookSender.create(settings, pool)
    try:
        assert (await sender.send_due()).retried == 1
        delivery = await pool.fetchrow("select status, attempts, next_attempt_at > now() as later from deliveries")
        assert (delivery["status"], delivery["attempts"], delivery["later"]) == ("pending", 1, True)
        assert await pool.fetchval("select status_code from webhook_attempts") == 500
        # days later: still failing, as it has since the first push
        await pool.execute("update webhook_endpoints set failing_since = now() - interval '6 days'")
        await pool.execute("update deliveries set next_attempt_at = now()")
        result = await sender.send_due()
    finally:
        await sender.close()
    assert len(subscriber.pushes) == 2
    assert result.disabled and await pool.fetchval("select status from webhook_endpoints") == "disabled"
    assert await websub.expire(pool, now=datetime.now(UTC)) == 1
    assert await pool.fetchval("select count(*) from webhook_endpoints") == 0
    assert await pool.fetchval("select count(*) from websub_requests") == 1  # settled today: kept a while
    await websub.expire(pool, now=datetime.now(UTC) + websub.KEEP_SETTLED_REQUESTS + timedelta(minutes=1))
    assert await pool.fetchval("select count(*) from websub_requests") == 0


async def test_websub_a_callback_that_does_not_confirm_is_not_subscribed(
    hub: TestClient[Any, Any], subscriber: Subscriber, factory: Factory, redis: ArqRedis, run_jobs: Any,
    pool: asyncpg.Pool,
) -> None:
    await factory.council()
    subscriber.refuse.add("impostor")
    await ask(hub, "subscribe", subscriber.url("impostor"))
    await run_jobs()
    assert len(subscriber.challenges) == 1
    assert await pool.fetchval("select outcome from websub_requests") == "the callback answered HTTP 404"
    await new_event(factory, redis, run_jobs, "Cabinet")
    assert subscriber.pushes == []


async def test_websub_bad_requests_are_refused(
    hub: TestClient[Any, Any], subscriber: Subscriber, factory: Factory, pool: asyncpg.Pool
) -> None:
    await factory.council()
    assert await ask(hub, "subscribe", subscriber.url(), topic="https://elsewhere.example/feed.atom") == 400
    assert await ask(hub, "subscribe", subscriber.url(), topic="http://notifier.test/feeds/councils/atlantis.atom") \
        == 400
    assert await ask(hub, "subscribe", "ftp://reader.example/cb") == 400
    assert await ask(hub, "renew", subscriber.url()) == 400
    assert await ask(hub, "subscribe", subscriber.url(), **{"hub.lease_seconds": "soon"}) == 400
    assert await pool.fetchval("select count(*) from websub_requests") == 0


async def test_websub_a_callback_on_a_private_address_is_refused(
    settings: Settings, pool: asyncpg.Pool, redis: ArqRedis, factory: Factory
) -> None:
    await factory.council()
    strict = settings.model_copy(update={"webhook_allow_private_targets": False})
    async with TestClient(TestServer(create_app(strict))) as c:
        for callback in ("http://127.0.0.1:8080/cb", "http://10.0.0.7/cb", "http://[::1]/cb",
                         "http://169.254.169.254/latest/meta-data"):
            resp = await c.post("/websub", data={"hub.mode": "subscribe", "hub.topic": TOPIC,
                                                 "hub.callback": callback})
            assert resp.status == 400, callback
            assert "public addresses" in (await resp.json(content_type=None))["detail"]
    assert await pool.fetchval("select count(*) from websub_requests") == 0
