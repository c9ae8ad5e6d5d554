"""Operations endpoints: liveness, readiness and Prometheus metrics (outbox.py has the local outbox)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import asyncpg
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from notifier.delivery.timing import time_to_alert_histograms
from notifier.web.keys import METRICS, POOL, REDIS

log = logging.getLogger(__name__)

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


# The time to alert on /metrics covers the immediate alerts sent in this window before the scrape.
TIME_TO_ALERT_WINDOW = timedelta(hours=1)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    try:
        body += await _time_to_alert(request.app[POOL])
    except Exception:  # the process's own metrics still answer while the database does not
        log.warning("could not read the time to alert for /metrics", exc_info=True)
    resp = web.Response(body=body)
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp


async def _time_to_alert(pool: asyncpg.Pool) -> bytes:
    """The time to alert per channel and span, as Prometheus histograms, read from the database: the deliveries are
    sent by worker processes, whose own registries this process cannot see. The counts cover the last hour (they go
    down as well as up: read them with histogram_quantile directly, not through rate())."""
    since = datetime.now(UTC) - TIME_TO_ALERT_WINDOW
    found = await time_to_alert_histograms(pool, since=since)
    family = HistogramMetricFamily(
        "notifier_time_to_alert_seconds",
        "Immediate alerts sent in the last hour: seconds from the change first seen to matched, matched to sent, "
        "and seen to sent",
        labels=["channel", "span"],
    )
    for (channel, span), h in sorted(found.items()):
        buckets = [(f"{le:g}", float(n)) for le, n in h.buckets] + [("+Inf", float(h.count))]
        family.add_metric([channel, span], buckets, h.total)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families([family]))
    return generate_latest(registry)


class _Families(Collector):
    """Metric families made for one scrape."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families
