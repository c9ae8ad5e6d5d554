"""The manage pages beyond changing and deleting: adding alerts, editing, pausing until a date, private feed links
and their rotation (notifier/web/manage.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from notifier import subscriptions as subs
from notifier.settings import Settings
from notifier.tokens import Tokens
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
    assert "Alert added." in page and "Every Wednesday" in page


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
