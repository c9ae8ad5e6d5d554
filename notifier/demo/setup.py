"""`notifier run --demo`: serve the demo councils on this machine and register them as sources."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

from aiohttp import web

from notifier.councils import add_council, add_source
from notifier.db import create_pool
from notifier.demo.data import DEMO_COUNCILS, FACTS
from notifier.demo.server import start_demo_server
from notifier.demo.timeline import DemoCouncils
from notifier.embedded import announce
from notifier.models import SourceKind
from notifier.settings import Settings
from notifier.sources.moderngov import DEFAULT_DAYS_BACK

log = logging.getLogger(__name__)

# The demo changes every few minutes; poll it every minute so its changes show up promptly.
DEMO_POLL_MINUTES = 1


def demo_source_options(slug: str, today: date) -> dict[str, int]:
    """Source options for a demo council: poll every minute, at a pace a local server takes, and look back far
    enough to see its fixed meetings.

    The demo transcribes some real meetings on their real dates (Leicestershire's Health and Wellbeing Board of
    4 December 2025); the default window of 30 days back would leave them out once they are older than that.
    """
    # one request a second to the demo's own server, shared by the council's two sources
    options = {"detail_refresh_minutes": 1, "seconds_per_request": 1}
    fixed = [m.day for m in FACTS[slug].fixed_meetings]
    if fixed:
        options["days_back"] = max(DEFAULT_DAYS_BACK, (today - min(fixed)).days + 1)
    return options


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
                        options=demo_source_options(slug, datetime.now(UTC).date()),
                    )
    finally:
        await pool.close()
    announce(f"demo councils served at {base} ({', '.join(c[0] for c in DEMO_COUNCILS)})")
    return runner
