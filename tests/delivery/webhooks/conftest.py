"""What the webhook tests share: the web app, a partner's key and one sending pass of the worker's sender (the
receiver, which verifies every request with the `standardwebhooks` reference implementation, is in tests/conftest.py
for the end-to-end tests too)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from arq.connections import ArqRedis

from notifier.delivery.webhooks.sender import WebhookSender
from notifier.partners import create_partner
from notifier.settings import Settings
from notifier.web.app import create_app
from tests.delivery.webhooks.helpers import Send
from tests.delivery.webhooks.resolver import TableResolver
from tests.factories import Factory


@pytest.fixture
async def client(settings: Settings, pool: asyncpg.Pool, redis: ArqRedis) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_app(settings))) as c:
        yield c


@pytest.fixture
async def key(pool: asyncpg.Pool, factory: Factory) -> str:
    await factory.council()  # the endpoints here follow Leicestershire
    _, api_key = await create_partner(pool, "Dementia UK", contact_email="tech@dementia.example")
    return api_key


@pytest.fixture
async def send(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[Send]:
    """`await send(**settings_overrides)`: one sending pass of the worker's webhook sender."""
    made: list[WebhookSender] = []

    async def run(resolver: TableResolver | None = None, **overrides: Any) -> Any:
        sender = WebhookSender.create(settings.model_copy(update=overrides), pool, resolver=resolver)
        made.append(sender)
        return await sender.send_due()

    yield run
    for s in made:
        await s.close()
