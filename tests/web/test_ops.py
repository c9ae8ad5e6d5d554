from __future__ import annotations

import json
import logging
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from notifier.logs import JsonFormatter, context_id
from notifier.settings import Settings
from notifier.web.app import create_app
from tests.delivery.test_timing import history
from tests.factories import Factory


async def test_healthz_answers_ok(client: TestClient) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok"}
    assert len(resp.headers["X-Request-Id"]) == 16


async def test_readyz_ok_when_postgres_and_redis_answer(client: TestClient) -> None:
    resp = await client.get("/readyz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok", "checks": {"postgres": "ok", "redis": "ok"}}


async def test_readyz_503_names_failed_redis(settings: Settings, pool: object) -> None:
    broken = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    async with TestClient(TestServer(create_app(broken))) as client:
        resp = await client.get("/readyz")
        body = await resp.json()
    assert resp.status == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["postgres"] == "ok"
    assert body["checks"]["redis"].startswith("failed: ")


async def test_metrics_counts_requests_by_route(client: TestClient) -> None:
    await client.get("/healthz")
    await client.get("/healthz")
    await client.get("/no-such-page")
    resp = await client.get("/metrics")
    assert resp.status == 200
    text = await resp.text()
    assert 'notifier_http_requests_total{method="GET",route="/healthz",status="200"} 2.0' in text
    assert 'status="404"' in text
    assert "notifier_http_request_seconds_bucket" in text
    assert "notifier_jobs_total" in text


async def test_request_id_is_passed_through(client: TestClient) -> None:
    resp = await client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert resp.headers["X-Request-Id"] == "abc-123"
    resp = await client.get("/healthz", headers={"X-Request-Id": "bad id with <spaces>"})
    assert resp.headers["X-Request-Id"] != "bad id with <spaces>"


async def test_api_errors_are_problem_json(client: TestClient) -> None:
    resp = await client.get("/api/v1/no-such-thing")
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    assert body["status"] == 404 and body["title"] == "Not Found"


async def test_outbox_absent_without_embedded_sink(client: TestClient) -> None:
    resp = await client.get("/dev/outbox")
    assert resp.status == 404


def test_json_log_lines_carry_context_id() -> None:
    record = logging.LogRecord("notifier.web", logging.INFO, __file__, 1, "GET %s", ("/x",), None)
    record.context_id = "r1"
    token = context_id.set("r1")
    try:
        line = JsonFormatter().format(record)
    finally:
        context_id.reset(token)
    data = json.loads(line)
    assert data["msg"] == "GET /x" and data["id"] == "r1" and data["level"] == "info"
    assert "\n" not in line


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_log_setup_formats(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    from notifier.logs import setup_logging

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        setup_logging(fmt, "INFO")
        logging.getLogger("notifier.test").info("hello\nworld")
        err = capsys.readouterr().err.strip()
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    assert len(err.splitlines()) == (1 if fmt == "json" else 2)
    if fmt == "json":
        assert json.loads(err)["msg"] == "hello\nworld"


async def test_metrics_shows_time_to_alert(client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory) -> None:
    await history(pool, factory)
    text = await (await client.get("/metrics")).text()
    assert "# TYPE notifier_time_to_alert_seconds histogram" in text
    assert 'notifier_time_to_alert_seconds_bucket{channel="email",le="900",span="seen_to_sent"} 15.0' in text
    assert 'notifier_time_to_alert_seconds_bucket{channel="email",le="+Inf",span="seen_to_sent"} 20.0' in text
    assert 'notifier_time_to_alert_seconds_count{channel="webhook",span="seen_to_sent"} 1.0' in text
    # the process's own metrics are still there
    assert "notifier_http_requests_total" in text
