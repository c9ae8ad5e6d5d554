"""The OpenAPI document: valid, complete, and true to what the live app answers (checked by schemathesis, an
outside reading of the document, against the running app with a partner key)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from notifier.partners import create_partner
from notifier.settings import Settings
from notifier.web.app import create_app
from tests.delivery.webhooks.resolver import TableResolver
from tests.factories import Factory

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


async def _seed(pool: asyncpg.Pool, factory: Factory) -> str:
    await factory.council()
    await factory.council("rutland", region="East Midlands")
    for n in range(3):
        await factory.event(title=f"Dementia strategy {n}", body="carers and respite")
    _, key = await create_partner(pool, "Schema checker", rate_limit_per_minute=1_000_000)
    return key


async def test_schemathesis_finds_no_server_error_or_schema_breach(
    settings: Settings, pool: asyncpg.Pool, redis: object, factory: Factory, tmp_path: Path
) -> None:
    key = await _seed(pool, factory)
    public = settings.model_copy(update={"webhook_allow_private_targets": False})
    app = create_app(public, resolver=TableResolver({"partner.example": ["93.184.216.34"]}))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        proc = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "schemathesis"), "run", f"http://127.0.0.1:{port}/api/v1/openapi.json",
            "--header", f"Authorization: Bearer {key}", "--checks", CHECKS, "--max-examples", "12",
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
