"""The OpenAPI document: valid, complete, and true to what the live app answers (checked by schemathesis, an
outside reading of the document, against the running app with a partner key)."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from notifier.delivery.webhooks.endpoints import create as create_endpoint
from notifier.delivery.webhooks.signing import webhook_id
from notifier.models import FilterModel
from notifier.partners import create_partner
from notifier.settings import Settings
from notifier.web.api.openapi import openapi_document
from notifier.web.app import create_app
from tests.delivery.webhooks.resolver import TableResolver
from tests.factories import Factory

# How often an `{id}` is one the partner owns rather than a generated one
ID_PROBABILITY = 0.8
CHECKS = ",".join([
    "not_a_server_error", "status_code_conformance", "content_type_conformance", "response_schema_conformance",
    "response_headers_conformance", "negative_data_rejection",
])


async def test_openapi_document_is_valid_and_lists_every_api_route(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/api/v1/openapi.json")
    assert resp.status == 200
    document = await resp.json()
    validate(document)
    assert document["openapi"] == "3.1.0"
    documented = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    served = {
        (route.method, route.resource.canonical)
        for route in client.app.router.routes()  # type: ignore[union-attr]
        if route.resource is not None and route.resource.canonical.startswith("/api/v1/")
        and route.method != "HEAD" and not route.resource.canonical.endswith("openapi.json")
    }
    assert served == documented
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            assert "401" in op["responses"] and "429" in op["responses"], (method, path)
            if "{" in path:
                assert "404" in op["responses"], (method, path)


@dataclass
class Seeded:
    """What the partner owns before the run: one of each resource to read and change, another to delete."""

    key: str
    endpoints: tuple[int, int]
    subscribers: tuple[int, int]
    subscriptions: tuple[int, int]


async def _seed(pool: asyncpg.Pool, factory: Factory) -> Seeded:
    council = await factory.council()
    await factory.council("rutland", region="East Midlands")
    events = [await factory.event(title=f"Dementia strategy {n}", body="carers and respite") for n in range(3)]
    partner_id, key = await create_partner(pool, "Schema checker", rate_limit_per_minute=1_000_000)
    for table in ("webhook_endpoints", "subscribers", "subscriptions"):
        # ids far from the small ones generated: a generated DELETE does not remove what the run reads
        await pool.execute("select setval(pg_get_serial_sequence($1, 'id'), 70000)", table)
    made = [
        await create_endpoint(pool, partner_id, f"https://partner.example/hooks/{n}",
                              FilterModel(councils=[council], query="dementia"), "newsroom")
        for n in range(2)
    ]
    endpoint = made[0][0]
    delivery_id = await pool.fetchval(
        """
        insert into deliveries (subscription_id, event_id, status, attempts, last_error, next_attempt_at)
        values ($1, $2, 'pending', 1, 'HTTP 500', now() + interval '1 hour') returning id
        """,
        endpoint["subscription_id"], events[0],
    )
    await pool.execute(
        """
        insert into webhook_attempts (delivery_id, endpoint_id, status_code, duration_ms, error, webhook_id, event_id)
        values ($1, $2, 500, 120, 'HTTP 500: try later', $3, $4)
        """,
        delivery_id, endpoint["id"], webhook_id(delivery_id), events[0],
    )
    subscribers = [await factory.subscriber(f"reader{n}@example.org", partner_id=partner_id) for n in range(2)]
    subscriptions = [
        await factory.subscription(subscribers[0], query="respite", councils=[council], partner_id=partner_id)
        for _ in range(2)
    ]
    return Seeded(key, (made[0][0]["id"], made[1][0]["id"]), (subscribers[0], subscribers[1]),
                  (subscriptions[0], subscriptions[1]))


def _config(seeded: Seeded) -> str:
    """schemathesis.toml: the `{id}` of an operation on a seeded kind of resource is most often one the partner owns
    (otherwise generated, mostly a 404); a delete is given a resource of its own, so the other stays to the end."""
    resources = {"webhooks": seeded.endpoints, "subscribers": seeded.subscribers, "subscriptions": seeded.subscriptions}
    lines = []
    for name, (kept, doomed) in resources.items():
        lines += [f"[dictionaries.{name}]", f"values = [{kept}]", f"[dictionaries.{name}-deleted]",
                  f"values = [{doomed}]"]
        delete = f"DELETE /api/v1/{name}/{{id}}"
        others = [
            f"{method.upper()} {path}" for path, ops in openapi_document()["paths"].items()
            if path.startswith(f"/api/v1/{name}/{{id}}") for method in ops
        ]
        for dictionary, names in ((name, [n for n in others if n != delete]), (f"{name}-deleted", [delete])):
            lines += [
                "[[operations]]",
                f"include-name = {json.dumps(names)}",  # a JSON list of strings is a TOML array
                f'parameters = {{ "path.id" = {{ dictionary = "{dictionary}", probability = {ID_PROBABILITY} }} }}',
            ]
    return "\n".join(lines) + "\n"


async def test_schemathesis_finds_no_server_error_or_schema_breach(
    settings: Settings, pool: asyncpg.Pool, redis: object, factory: Factory, tmp_path: Path
) -> None:
    seeded = await _seed(pool, factory)
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(seeded))
    public = settings.model_copy(update={"webhook_allow_private_targets": False})
    app = create_app(public, resolver=TableResolver({"partner.example": ["93.184.216.34"]}))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        proc = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(config), "run",
            f"http://127.0.0.1:{port}/api/v1/openapi.json", "--header", f"Authorization: Bearer {seeded.key}",
            "--checks", CHECKS, "--max-examples", "12",
            "--seed", "20261206", "--workers", "1", "--request-timeout", "20", "--no-color",
            "--generation-database", "none", "--suppress-health-check", "all",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 400)
    finally:
        await runner.cleanup()
    report = out.decode(errors="replace")
    print(report[-2500:])  # the summary: operations, phases and test cases run
    assert proc.returncode == 0, report[-15000:]
    assert "Missing test data" not in report  # every `{id}` operation reached a seeded resource
