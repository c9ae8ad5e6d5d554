"""Request ids, access logging, metrics and the mapping of errors to responses, in one place."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from notifier.logs import context_id
from notifier.web.keys import METRICS
from notifier.web.problems import Problem

log = logging.getLogger("notifier.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _route_name(request: web.Request) -> str:
    # label by route pattern, not path, so /feeds/s/{token} does not explode the metric's cardinality
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


def _wants_problem(request: web.Request) -> bool:
    return request.path.startswith("/api/") or "json" in request.headers.get("Accept", "")


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    rid = request.headers.get("X-Request-Id", "")
    if not (0 < len(rid) <= 64 and rid.replace("-", "").isalnum()):
        rid = secrets.token_hex(8)
    token = context_id.set(rid)
    start = time.perf_counter()
    status = 500
    try:
        response = await _answer(request, handler)
        status = response.status
        response.headers["X-Request-Id"] = rid
        return response
    except web.HTTPException as e:
        status = e.status
        e.headers["X-Request-Id"] = rid
        raise
    finally:
        elapsed = time.perf_counter() - start
        request.app[METRICS].observe_http(request.method, _route_name(request), status, elapsed)
        log.info("%s %s %s %.1fms", request.method, request.path, status, elapsed * 1000)
        context_id.reset(token)


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Problem as p:
        return p.response(instance=request.path)
    except web.HTTPException as e:
        if e.status >= 400 and _wants_problem(request):
            detail = e.text if e.text and e.text != f"{e.status}: {e.reason}" else None
            return Problem(e.status, e.reason, detail).response(instance=request.path)
        raise
    except Exception:
        log.exception("unhandled error answering %s %s", request.method, request.path)
        if _wants_problem(request):
            return Problem(500, "Internal Server Error").response(instance=request.path)
        return web.Response(status=500, text="Internal Server Error")
