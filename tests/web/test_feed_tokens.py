"""Private subscription feeds: rotating the token (through the API, and the function the manage page calls) makes
the old URL answer 404 and ends WebSub subscriptions to it; WebSub subscriptions follow the subscription behind the
feed when it changes or goes."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from notifier.delivery import websub
from notifier.partners import create_partner
from notifier.subscriptions import rotate_feed_token
from tests.factories import Factory


async def test_feed_token_rotation_through_the_api(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory
) -> None:
    await factory.event(title="Asthma in schools")
    partner_id, key = await create_partner(pool, "Asthma UK")
    _, other_key = await create_partner(pool, "Someone else")
    auth = {"Authorization": f"Bearer {key}"}
    subscriber = await factory.subscriber(partner_id=partner_id)
    sub = await factory.subscription(subscriber, query="asthma", partner_id=partner_id)
    made = await (await client.get(f"/api/v1/subscriptions/{sub}", headers=auth)).json()
    old_path = made["feed_url"].removeprefix("http://notifier.test")
    assert (await client.get(old_path)).status == 200
    refused = await client.post(f"/api/v1/subscriptions/{sub}/rotate-feed-token",
                                headers={"Authorization": f"Bearer {other_key}"})
    assert refused.status == 404  # not that partner's subscription
    resp = await client.post(f"/api/v1/subscriptions/{sub}/rotate-feed-token", headers=auth)
    assert resp.status == 200, await resp.text()
    rotated = await resp.json()
    new_path = rotated["feed_url"].removeprefix("http://notifier.test")
    assert new_path != old_path
    assert (await client.get(old_path)).status == 404
    assert (await client.get(new_path)).status == 200
    assert (await client.post("/api/v1/subscriptions/999999/rotate-feed-token", headers=auth)).status == 404


async def test_feed_token_rotation_ends_websub_subscriptions_to_the_old_url(
    pool: asyncpg.Pool, factory: Factory
) -> None:
    sub = await factory.subscription(await factory.subscriber(), query="asthma")
    token = await pool.fetchval("select feed_token from subscriptions where id = $1", sub)
    other = await factory.subscription(await factory.subscriber("b@example.org"), query="asthma")
    other_token = await pool.fetchval("select feed_token from subscriptions where id = $1", other)
    for n, t in enumerate((token, other_token)):
        endpoint = await pool.fetchval(
            """
            insert into webhook_endpoints (url, secret, channel, topic, lease_expires_at)
            values ($1, '', 'websub', $2, now() + interval '1 day') returning id
            """,
            f"https://reader.example/cb/{n}", f"http://notifier.test/feeds/s/{t}.atom",
        )
        await pool.execute(
            """
            insert into subscriptions (endpoint_id, query, channel, feed_token, confirmed_at)
            values ($1, 'asthma', 'websub', $2, now())
            """,
            endpoint, f"websub-{n}",
        )
    new = await rotate_feed_token(pool, sub)
    assert new is not None and new != token
    assert await pool.fetchval("select feed_token from subscriptions where id = $1", sub) == new
    topics = [r["topic"] for r in await pool.fetch("select topic from webhook_endpoints")]
    assert topics == [f"http://notifier.test/feeds/s/{other_token}.atom"]
    assert await pool.fetchval("select count(*) from subscriptions where channel = 'websub'") == 1
    with pytest.raises(LookupError):
        await rotate_feed_token(pool, 424242)


async def _followed_by_websub(pool: asyncpg.Pool, factory: Factory, suffix: str, kinds: list[str]) -> int:
    """A resident's subscription to `asthma`, and a WebSub subscription to its private feed in the format `suffix`
    (its copy following `kinds`); returns the resident's subscription."""
    sub = await factory.subscription(await factory.subscriber(), query="asthma")
    token = await pool.fetchval("select feed_token from subscriptions where id = $1", sub)
    endpoint = await pool.fetchval(
        """
        insert into webhook_endpoints (url, secret, channel, topic, lease_expires_at)
        values ('https://reader.example/cb', '', 'websub', $1, now() + interval '1 day') returning id
        """,
        f"http://notifier.test/feeds/s/{token}{suffix}",
    )
    await pool.execute(
        "insert into subscriptions (endpoint_id, query, kinds, channel, feed_token) "
        "values ($1, 'asthma', $2, 'websub', 'w')",
        endpoint, kinds,
    )
    return int(sub)


async def test_feed_token_websub_copies_follow_the_subscription_behind_the_feed(
    pool: asyncpg.Pool, factory: Factory
) -> None:
    sub = await _followed_by_websub(pool, factory, ".json", [])
    assert await websub.follow_private_feeds(pool) == 0  # in step already
    await pool.execute("update subscriptions set query = 'asthma OR copd', councils = '{rutland}' where id = $1", sub)
    assert await websub.follow_private_feeds(pool) == 1
    copy = await pool.fetchrow("select query, councils from subscriptions where channel = 'websub'")
    assert (copy["query"], copy["councils"]) == ("asthma OR copd", ["rutland"])
    await pool.execute("delete from subscriptions where id = $1", sub)
    assert await websub.follow_private_feeds(pool) == 1
    assert await pool.fetchval("select count(*) from webhook_endpoints") == 0
    assert await pool.fetchval("select count(*) from subscriptions") == 0


async def test_feed_token_websub_copy_of_a_calendar_keeps_following_meetings_only(
    pool: asyncpg.Pool, factory: Factory
) -> None:
    sub = await _followed_by_websub(pool, factory, ".ics", ["meeting", "agenda_item"])
    assert await websub.follow_private_feeds(pool) == 0  # in step: a calendar follows meetings and agendas
    await pool.execute("update subscriptions set query = 'copd' where id = $1", sub)
    assert await websub.follow_private_feeds(pool) == 1
    copy = await pool.fetchrow("select query, kinds from subscriptions where channel = 'websub'")
    assert (copy["query"], copy["kinds"]) == ("copd", ["meeting", "agenda_item"])
    assert await websub.follow_private_feeds(pool) == 0
