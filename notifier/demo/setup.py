"""`notifier run --demo`: serve the demo councils on this machine and register them as sources."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from aiohttp import web

from notifier.councils import add_council, add_source
from notifier.db import create_pool
from notifier.demo.data import DEMO_COUNCILS, DemoCouncils
from notifier.demo.server import start_demo_server
from notifier.embedded import announce
from notifier.models import SourceKind
from notifier.settings import Settings

log = logging.getLogger(__name__)

# The demo changes every few minutes; poll it every minute so its changes show up promptly.
DEMO_POLL_MINUTES = 1


async def start_demo(settings: Settings, *, host: str = "127.0.0.1", port: int = 0) -> web.AppRunner:
    """Start the demo server and make sure each demo council and its two sources exist (pointing at it)."""
    runner, base = await start_demo_server(host, port, DemoCouncils(start=datetime.now(UTC)))
    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn, conn.transaction():
            # a previous run's demo listened on another port: retire its sources
            await conn.execute(
                "update sources set enabled = false where council = any($1) and url not like $2 || '%'",
                [c[0] for c in DEMO_COUNCILS], base,
            )
            for slug, name, region, nation, path in DEMO_COUNCILS:
                await add_council(conn, slug, name, region=region, nation=nation, website=f"{base}{path}")
                for kind in (SourceKind.MODERNGOV, SourceKind.MODERNGOV_DECISIONS):
                    await add_source(
                        conn, slug, kind.value, f"{base}{path}", interval_minutes=DEMO_POLL_MINUTES,
                        options={"detail_refresh_minutes": 1},
                    )
    finally:
        await pool.close()
    announce(f"demo councils served at {base} ({', '.join(c[0] for c in DEMO_COUNCILS)})")
    return runner
