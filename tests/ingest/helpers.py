"""What the polling tests share: polling a source through a real fetcher, a ModernGov site played by the council
server, and reading back what a poll leaves behind (items, events, the source's health, its poll_runs rows)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web

from notifier.ingest.fetch import Fetcher, client_session
from notifier.ingest.poll import poll_source
from notifier.ingest.write import PollResult
from notifier.settings import Settings
from notifier.sources.freshness import ReadPlan
from notifier.subscriptions import compile_query
from tests.servers import CouncilServer, fixture_bytes

LONDON = ZoneInfo("Europe/London")
WS = "/mgWebService.asmx"
INTERVAL = timedelta(minutes=30)
# a ModernGov source is polled as often as its read plan needs: every 4 minutes by default
MODERNGOV_POLL_EVERY = ReadPlan().poll_every(INTERVAL)


def moderngov_next_poll(started: datetime) -> datetime:
    """When a ModernGov source polled at `started` is polled again: 4 minutes on from the minute it was polled in."""
    return started.replace(second=0, microsecond=0) + MODERNGOV_POLL_EVERY
EMPTY_MEETINGS = fixture_bytes("moderngov/meetings_empty.xml")


@asynccontextmanager
async def fetcher(settings: Settings) -> AsyncIterator[Fetcher]:
    async with client_session(settings) as session:
        yield Fetcher(session, settings)


async def poll(pool: asyncpg.Pool, settings: Settings, source_id: int, **kwargs: Any) -> PollResult:
    async with fetcher(settings) as f:
        return await poll_source(pool, f, source_id, **kwargs)


def outcome(result: PollResult) -> dict[str, Any]:
    """A poll's result without its timing."""
    data = result.as_dict()
    del data["duration_ms"]
    return data


class ModernGovSite:
    """A ModernGov web service played by the council server: GetCommittees, GetMeetings by committee, GetMeeting."""

    def __init__(self, server: CouncilServer) -> None:
        self.server = server
        self.meetings: dict[str, bytes] = {}
        self.windows: list[tuple[str, str]] = []
        server.routes[f"{WS}/GetMeetings"] = self._get_meetings

    def committees(self, body: bytes | str) -> None:
        self.server.set(f"{WS}/GetCommittees", body)

    def meeting(self, meeting_id: str, body: bytes | str) -> None:
        self.server.set(f"{WS}/GetMeeting?lMeetingId={meeting_id}", body)

    async def _get_meetings(self, request: web.Request) -> web.Response:
        self.windows.append((request.query["sFromDate"], request.query["sToDate"]))
        body = self.meetings.get(request.query["lCommitteeId"], EMPTY_MEETINGS)
        return web.Response(body=body, content_type="text/xml", charset="utf-8")


def manchester(server: CouncilServer) -> ModernGovSite:
    """The recorded Manchester answers: three committees, the Audit Committee's two meetings and their details."""
    site = ModernGovSite(server)
    site.committees(fixture_bytes("moderngov/committees.xml"))
    site.meetings["144"] = fixture_bytes("moderngov/meetings.xml")
    site.meeting("4966", fixture_bytes("moderngov/meeting_no_minutes.xml"))
    site.meeting("4967", fixture_bytes("moderngov/meeting_with_minutes.xml"))
    return site


async def items(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    """Every stored item, every column."""
    return [dict(r) for r in await pool.fetch("select * from items order by id")]


async def events(pool: asyncpg.Pool, after: int = 0) -> list[tuple[str, str, dict[str, Any], str]]:
    rows = await pool.fetch(
        """
        select e.type, i.external_id, e.changes, e.summary
        from events e join items i on i.id = e.item_id
        where e.id > $1
        order by e.id
        """,
        after,
    )
    return [(r["type"], r["external_id"], r["changes"], r["summary"]) for r in rows]


def split_documents(
    listed: list[tuple[str, str, dict[str, Any], str]],
) -> tuple[list[tuple[str, str, dict[str, Any], str]], list[dict[str, str]]]:
    """Events without the documents folded into publications (nor their count in the summary), and those documents."""
    out, documents = [], []
    for kind, external_id, changes, summary in listed:
        if "documents" in changes:
            changes = dict(changes)
            documents.extend(changes.pop("documents")[1])
            summary = re.sub(r" \(\d+ documents?\)$", "", summary)
        out.append((kind, external_id, changes, summary))
    return out, documents


async def found(pool: asyncpg.Pool, query: str) -> list[tuple[str, str]]:
    """What history search finds for a query, as (kind, external id) in the order stored."""
    rows = await pool.fetch(
        "select kind, external_id from items where search @@ $1::tsquery order by id", compile_query(query)
    )
    return [(r["kind"], r["external_id"]) for r in rows]


async def last_event_id(pool: asyncpg.Pool) -> int:
    value: int = await pool.fetchval("select coalesce(max(id), 0) from events")
    return value


async def health(pool: asyncpg.Pool, source_id: int) -> dict[str, Any]:
    row = await pool.fetchrow(
        """
        select consecutive_failures, last_error, last_error_at, last_success_at, next_poll_at, etag, last_modified
        from sources where id = $1
        """,
        source_id,
    )
    assert row is not None
    return dict(row)


async def poll_runs(pool: asyncpg.Pool, source_id: int) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "select started_at, http_status, records, events, error from poll_runs where source_id = $1 order by id",
        source_id,
    )
    return [dict(r) for r in rows]


def uk(day: date) -> str:
    return f"{day:%d/%m/%Y}"


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A UK wall-clock time as UTC."""
    return datetime.combine(day, time(hour, minute), LONDON).astimezone(UTC)


def shown(day: date) -> str:
    """A date as event summaries write it."""
    return f"{day.day} {day:%b} {day.year}"


def long_date(day: date) -> str:
    return f"{day.day} {day:%B} {day.year}"
