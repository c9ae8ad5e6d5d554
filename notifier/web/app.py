"""Builds the web application: wiring only; the handlers live in their own modules."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver
from arq.connections import ArqRedis

from notifier.db import create_pool
from notifier.metrics import Metrics
from notifier.settings import Settings
from notifier.tokens import Tokens
from notifier.web import admin, api, feed_cache, feed_routes, manage, meetings, ops, outbox, pages, websub_hub
from notifier.web.keys import METRICS, OUTBOX_DIR, POOL, REDIS, RESOLVER, SETTINGS, TOKENS
from notifier.web.middleware import observe
from notifier.web.security import protect

PAGES_TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "pages"
# the pages' CSS and JavaScript: the Content-Security-Policy allows nothing inline and nothing from elsewhere
STATIC = Path(__file__).resolve().parents[2] / "static"


async def _postgres(app: web.Application) -> AsyncIterator[None]:
    s = app[SETTINGS]
    app[POOL] = await create_pool(s.database_url, min_size=s.db_pool_min, max_size=s.db_pool_max)
    yield
    await app[POOL].close()


async def _redis(app: web.Application) -> AsyncIterator[None]:
    # Connects lazily: the web process starts (and /readyz says why it is not ready) while Redis is down.
    app[REDIS] = ArqRedis.from_url(app[SETTINGS].redis_url, socket_connect_timeout=2)
    yield
    await app[REDIS].aclose()


def _resolver(given: AbstractResolver | None) -> Callable[[web.Application], AsyncIterator[None]]:
    async def resolver(app: web.Application) -> AsyncIterator[None]:
        app[RESOLVER] = given or DefaultResolver()
        yield
        if given is None:
            await app[RESOLVER].close()

    return resolver


def create_app(
    settings: Settings,
    *,
    metrics: Metrics | None = None,
    outbox_dir: str | None = None,
    resolver: AbstractResolver | None = None,
) -> web.Application:
    app = web.Application(middlewares=[observe, protect], client_max_size=1024 * 1024)
    app[SETTINGS] = settings
    app[METRICS] = metrics or Metrics()
    if outbox_dir is not None:
        app[OUTBOX_DIR] = outbox_dir
    app[TOKENS] = Tokens(settings.ensure_secret_key(), confirm_max_age_seconds=settings.confirm_token_days * 86400)
    app.cleanup_ctx.extend([_postgres, _redis, _resolver(resolver)])
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(PAGES_TEMPLATES),
        autoescape=jinja2.select_autoescape(default=True),
    )
    app.add_routes(ops.routes)
    app.add_routes(pages.routes)
    app.add_routes(manage.routes)
    app.add_routes(admin.routes)
    app.add_routes(outbox.routes)
    app.router.add_static("/static", STATIC)
    app.add_routes(meetings.routes)
    app.add_routes(api.routes)
    app.add_routes(feed_routes.routes)
    app[feed_routes.FEED_CACHE] = feed_cache.FeedCache(fresh=settings.feed_fresh_seconds)
    app.add_routes(websub_hub.routes)
    return app
