"""Operations endpoints: liveness, readiness and Prometheus metrics (outbox.py has the local outbox)."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from notifier.web.keys import METRICS, POOL, REDIS

routes = web.RouteTableDef()

READY_TIMEOUT = 2.0


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    checks: dict[str, str] = {}

    async def check_postgres() -> None:
        async with request.app[POOL].acquire(timeout=READY_TIMEOUT) as conn:
            await conn.fetchval("select 1")

    async def check_redis() -> None:
        await request.app[REDIS].ping()

    for name, check in (("postgres", check_postgres), ("redis", check_redis)):
        try:
            await asyncio.wait_for(check(), READY_TIMEOUT)
            checks[name] = "ok"
        except Exception as e:  # any failure means not ready; say which and why
            checks[name] = f"failed: {type(e).__name__}: {e}".strip()
    ok = all(v == "ok" for v in checks.values())
    return web.json_response({"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    resp = web.Response(body=body)
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp
