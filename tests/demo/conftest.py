"""The demo's tests run against one set of demo councils on a clock they move by hand, served in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from notifier.demo import DemoCouncils, create_demo_app
from tests.demo.helpers import START, STEP, Clock


@pytest.fixture
def clock() -> Clock:
    return Clock(START, STEP)


@pytest.fixture
def councils(clock: Clock) -> DemoCouncils:
    return DemoCouncils(START, STEP, clock)


@pytest.fixture
async def client(councils: DemoCouncils) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_demo_app(councils))) as test_client:
        yield test_client
