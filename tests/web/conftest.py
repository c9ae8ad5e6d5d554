from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from notifier.settings import Settings
from notifier.web.app import create_app


@pytest.fixture
async def client(settings: Settings, pool: object, redis: object) -> AsyncIterator[TestClient[object, object]]:
    # `pool` empties the tables and `redis` the Redis database (rate-limit counters keyed by partner id included).
    app = create_app(settings)
    async with TestClient(TestServer(app)) as c:
        yield c
