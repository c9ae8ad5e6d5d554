"""Helpers of the webhook tests: a partner's requests, endpoints made through the API, the matcher's pass, the clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from notifier.matching.matcher import SubscriptionIndex, match_events
from notifier.settings import Settings
from tests.servers import WebhookReceiver

Send = Callable[..., Any]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def endpoint(client: TestClient[Any, Any], key: str, receiver: WebhookReceiver, name: str = "a",
                   **filter_: Any) -> dict[str, Any]:
    resp = await client.post("/api/v1/webhooks", headers=auth(key), json={
        "url": receiver.endpoint(name), "filter": filter_ or {"councils": ["leicestershire"]},
        "description": "newsroom feed",
    })
    assert resp.status == 201, await resp.text()
    made: dict[str, Any] = await resp.json()
    receiver.secrets[name] = [made["secret"]]
    return made


async def match(pool: asyncpg.Pool, settings: Settings) -> int:
    return (await match_events(pool, SubscriptionIndex(), settings)).deliveries


async def move_clock(pool: asyncpg.Pool) -> None:
    """Every pending delivery falls due now, as if its retry time had come."""
    await pool.execute("update deliveries set next_attempt_at = now() where status = 'pending'")
