"""The manage pages beyond changing and deleting: adding alerts, editing, pausing until a date, private feed links
and their rotation (notifier/web/manage.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from arq.connections import ArqRedis

from notifier import subscriptions as subs
from notifier.settings import Settings
from notifier.tokens import Tokens
from notifier.web.app import create_app
from notifier.web.forms import schedule_in_words
from tests.factories import Factory
from tests.web.test_pages import post, two_alerts


def manage_path(settings: Settings, subscriber: int) -> str:
    return f"/manage/{Tokens(settings.secret_key).make('manage', subscriber)}"


async def test_manage_add_a_cross_council_alert(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, settings: Settings
) -> None:
    grace, _, _ = await two_alerts(factory)
    path = manage_path(settings, grace)
    form = await client.get(f"{path}/new")
    assert form.status == 200
    assert 'name="council" value="leicestershire"' in await form.text()
    resp = await post(client, f"{path}/new", {"scope": "all", "query": "dementia OR asthma", "frequency": "weekly",
                                              "weekday": "2"}, allow_redirects=False)
    assert resp.status == 303
    row = await pool.fetchrow("select * from subscriptions order by id desc limit 1")
    assert (row["query"], row["councils"], row["regions"], row["weekday"]) == ("dementia OR asthma", [], [], 2)
    assert row["confirmed_at"] is not None  # the manage link came by email: the address is proven
    page = await (await client.get(resp.headers["Location"])).text()
    assert "Alert added." in page and "Every Wednesday at 07:00 (Europe/London)" in page


async def test_manage_add_with_nothing_chosen_says_what_to_do(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, settings: Settings
) -> None:
    grace, _, _ = await two_alerts(factory)
    resp = await post(client, f"{manage_path(settings, grace)}/new", {"scope": "choose", "query": ""})
    assert resp.status == 422
    page = await resp.text()
    assert "There is a problem" in page
    assert '<a href="#councils">Choose at least one council or region' in page
    resp = await post(client, f"{manage_path(settings, grace)}/new", {"scope": "all", "query": "(", "hour": "25",
                                                                       "frequency": "daily"})
    assert resp.status == 422
    page = await resp.text()
    assert '<a href="#query">Enter a topic we can follow' in page
    assert '<a href="#hour">Choose an hour of the day' in page
    assert 'aria-describedby="query-hint query-error" aria-invalid="true"' in page
    assert await pool.fetchval("select count(*) from subscriptions") == 2


async def test_manage_edit_someone_elses_alert_is_not_found(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, settings: Settings
) -> None:
    grace, _, _ = await two_alerts(factory)
    other = await factory.subscription(await factory.subscriber("heidi@example.org"), councils=["leicestershire"])
    path = f"{manage_path(settings, grace)}/alerts/{other}"
    assert (await client.get(path)).status == 404
    resp = await post(client, path, {"scope": "all", "query": "stolen", "frequency": "weekly"})
    assert resp.status == 404
    assert await pool.fetchval("select query from subscriptions where id = $1", other) == ""


@pytest.mark.parametrize(
    ("until", "message"),
    [
        ("yesterday", "Enter the date to pause until"),
        ((datetime.now(UTC) - timedelta(days=3)).date().isoformat(), "must be today or in the future"),
        ((datetime.now(UTC) + timedelta(days=400)).date().isoformat(), "Pause for at most a year"),
    ],
)
async def test_manage_pause_until_a_bad_date(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, settings: Settings, until: str, message: str
) -> None:
    grace, dementia, _ = await two_alerts(factory)
    resp = await post(client, manage_path(settings, grace), {"action": "pause", "subscription": str(dementia),
                                                             "until": until})
    assert resp.status == 422
    page = await resp.text()
    assert f'<a href="#until-{dementia}">' in page and message in page
    assert await pool.fetchval("select paused_until from subscriptions where id = $1", dementia) is None


async def test_manage_feed_links_and_rotation(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, settings: Settings
) -> None:
    grace, dementia, _ = await two_alerts(factory)
    path = manage_path(settings, grace)
    old = await pool.fetchval("select feed_token from subscriptions where id = $1", dementia)
    page = await (await client.get(path)).text()
    for fmt in ("atom", "rss", "ics"):
        assert f'value="{settings.base_url}/feeds/s/{old}.{fmt}"' in page
    assert (await client.get(f"/feeds/s/{old}.atom")).status == 200
    resp = await post(client, path, {"action": "rotate", "subscription": str(dementia)}, allow_redirects=False)
    assert resp.status == 303
    new = await pool.fetchval("select feed_token from subscriptions where id = $1", dementia)
    assert new != old
    assert (await client.get(f"/feeds/s/{old}.atom")).status == 404
    assert (await client.get(f"/feeds/s/{new}.atom")).status == 200
    assert f"/feeds/s/{new}.ics" in await (await client.get(resp.headers["Location"])).text()


async def test_rotate_feed_token_gives_a_fresh_token(pool: asyncpg.Pool, factory: Factory) -> None:
    _, dementia, housing = await two_alerts(factory)
    before = dict(await pool.fetch("select id, feed_token from subscriptions"))
    token = await subs.rotate_feed_token(pool, dementia)
    after = dict(await pool.fetch("select id, feed_token from subscriptions"))
    assert after[dementia] == token != before[dementia]
    assert after[housing] == before[housing]
    assert len(token) >= 32
    with pytest.raises(LookupError):
        await subs.rotate_feed_token(pool, 10**9)


@pytest.mark.parametrize(
    ("frequency", "hour", "weekday", "words"),
    [
        ("immediate", None, None, "As it happens, a few minutes after each update"),
        ("daily", 18, None, "Every day at 18:00 (Europe/Paris)"),
        ("daily", None, None, "Every day at 09:00 (Europe/Paris)"),
        ("weekly", None, 4, "Every Friday at 09:00 (Europe/Paris)"),
        ("weekly", 6, 0, "Every Monday at 06:00 (Europe/Paris)"),
        ("weekly", None, None, "Every Wednesday at 09:00 (Europe/Paris)"),
    ],
)
def test_schedule_in_words(frequency: str, hour: int | None, weekday: int | None, words: str) -> None:
    assert schedule_in_words(frequency, hour, weekday, "Europe/Paris", default_hour=9, default_weekday=2) == words


async def test_manage_weekly_schedule_in_words_is_when_the_digest_is_due(
    settings: Settings, pool: asyncpg.Pool, redis: ArqRedis, factory: Factory, run_jobs: Any
) -> None:
    """The words on the page are the hour the matcher schedules: a weekly alert made here has no hour of its own,
    so it goes out at the configured digest hour, in the subscriber's zone."""
    grace, _, _ = await two_alerts(factory)
    path = manage_path(settings, grace)
    nine = settings.model_copy(update={"digest_hour": 9})
    async with TestClient(TestServer(create_app(nine))) as client:
        resp = await post(client, f"{path}/new", {"scope": "all", "query": "libraries", "frequency": "weekly",
                                                  "weekday": "4", "timezone": "Europe/Paris"}, allow_redirects=False)
        assert resp.status == 303
        page = await (await client.get(resp.headers["Location"])).text()
    assert "Every Friday at 09:00 (Europe/Paris)" in page
    weekly = await pool.fetchval("select id from subscriptions where query = 'libraries'")
    event = await factory.event(title="Libraries review")
    await redis.enqueue_job("match_events", _job_id=f"match:{event}")
    await run_jobs(digest_hour=9)
    due = await pool.fetchval("select next_attempt_at from deliveries where subscription_id = $1", weekly)
    local = due.astimezone(ZoneInfo("Europe/Paris"))
    assert (local.strftime("%A"), local.hour, local.minute) == ("Friday", 9, 0)
