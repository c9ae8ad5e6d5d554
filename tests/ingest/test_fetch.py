"""Fetching over HTTP, through whole polls against a real council server: broken, slow, oversized and compressed
answers, an unreachable server, conditional GET with ETag and Last-Modified, and the headers sent.
"""

from __future__ import annotations

import asyncio
import gzip
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from notifier import __version__
from notifier.settings import Settings
from tests.factories import Factory
from tests.ingest.helpers import (
    INTERVAL,
    WS,
    events,
    health,
    items,
    last_event_id,
    manchester,
    outcome,
    poll,
    poll_runs,
)
from tests.servers import CouncilServer, fixture_bytes

# ---- broken responses ---------------------------------------------------------------------------------------------

CAP = 64 * 1024


def _padded_meetings(size: int) -> bytes:
    """A well-formed GetMeetings answer of about `size` bytes (a council padding its answer with whitespace)."""
    body = fixture_bytes("moderngov/meetings.xml")
    return body.replace(b"<committeescount>", b" " * size + b"<committeescount>", 1)


async def _chunked(request: web.Request) -> web.StreamResponse:
    """A large answer streamed with no Content-Length, so only counting the bytes read can catch it."""
    response = web.StreamResponse(headers={"Content-Type": "text/xml"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(8):
        await response.write(b" " * (16 * 1024))
    await response.write_eof()
    return response


async def _gzip_bomb(request: web.Request) -> web.Response:
    """A small compressed body that inflates far beyond the cap."""
    body = gzip.compress(b"<getmeetings>" + b" " * (CAP * 20) + b"</getmeetings>")
    return web.Response(body=body, headers={"Content-Type": "text/xml", "Content-Encoding": "gzip"})


def _reply(status: int = 200, body: bytes = b"", content_type: str = "text/xml", delay: float = 0.0) -> Any:
    async def handler(request: web.Request) -> web.Response:
        if delay:
            await asyncio.sleep(delay)
        return web.Response(status=status, body=body, headers={"Content-Type": content_type})

    return handler


BROKEN: dict[str, tuple[str, Callable[[web.Request], Awaitable[web.StreamResponse]], str, int | None]] = {
    # case: (path broken, its handler, the error (a regular expression), the poll's recorded HTTP status)
    "html_with_200": (
        "GetCommittees",
        _reply(body=fixture_bytes("moderngov/error_page_200.html"), content_type="text/html"),
        r"ModernGov GetCommittees response is HTML, not XML \(starts '<!DOCTYPE html.*",
        200,
    ),
    "empty": ("GetCommittees", _reply(), r"ModernGov GetCommittees response is empty", 200),
    "server_error": (
        "GetCommittees",
        _reply(500, b"System.InvalidOperationException: Request format is invalid.", "text/plain"),
        r"HTTP 500 Internal Server Error from http://127\.0\.0\.1:\d+/mgWebService\.asmx/GetCommittees"
        r"\?lCommitteeId=0: 'System\.InvalidOperationException: Request format is invalid\.'",
        500,
    ),
    "truncated": (
        "GetMeetings",
        _reply(body=fixture_bytes("moderngov/meetings.xml")[:500]),
        r"ModernGov GetMeetings response for committee \d+ is not well-formed XML.*",
        200,
    ),
    "entity_expansion": (
        "GetMeetings",
        _reply(body=fixture_bytes("moderngov/billion_laughs.xml")),
        r"ModernGov GetMeetings response for committee \d+ declares XML entities, which are refused",
        200,
    ),
    "slow": (
        "GetCommittees",
        _reply(body=fixture_bytes("moderngov/committees.xml"), delay=3.0),
        r"timed out after 1s fetching http://127\.0\.0\.1:\d+/mgWebService\.asmx/GetCommittees\?lCommitteeId=0",
        None,
    ),
    "huge": (
        "GetMeetings",
        _reply(body=_padded_meetings(2 * CAP)),
        rf"response from http://\S+/GetMeetings\?\S+ is {len(_padded_meetings(2 * CAP))} bytes, over the {CAP} cap",
        200,
    ),
    "huge_chunked": ("GetMeetings", _chunked, rf"response from http://\S+ exceeds the {CAP}-byte cap", 200),
    "gzip_bomb": ("GetMeetings", _gzip_bomb, rf"response from http://\S+ exceeds the {CAP}-byte cap", 200),
}


@pytest.mark.parametrize("case", list(BROKEN))
async def test_poll_broken_response_fails_and_leaves_items_untouched(
    pool: asyncpg.Pool, factory: Factory, council_server: CouncilServer, settings: Settings, case: str
) -> None:
    settings = settings.model_copy(update={"poll_total_timeout": 1.0, "poll_max_response_bytes": CAP})
    manchester(council_server)
    source_id = await factory.source("manchester", url=council_server.url)
    good = await poll(pool, settings, source_id)
    assert (good.error, good.records) == (None, 6)
    before = await items(pool)
    last = await last_event_id(pool)

    path, handler, error, status = BROKEN[case]
    council_server.routes[f"{WS}/{path}"] = handler
    result = await poll(pool, settings, source_id)

    assert result.error is not None
    assert re.fullmatch(error, result.error, flags=re.S), result.error
    assert (result.records, result.events, result.http_status) == (0, 0, status)
    assert await items(pool) == before
    assert await events(pool, after=last) == []
    runs = await poll_runs(pool, source_id)
    assert runs[-1] == {
        "started_at": runs[-1]["started_at"], "http_status": status, "records": 0, "events": 0, "error": result.error,
    }
    started = runs[-1]["started_at"]
    assert await health(pool, source_id) == {
        "consecutive_failures": 1, "last_error": result.error, "last_error_at": started,
        "last_success_at": runs[0]["started_at"], "next_poll_at": started + INTERVAL, "etag": None,
        "last_modified": None,
    }

async def test_poll_unreachable_server_is_a_failed_poll(
    pool: asyncpg.Pool, factory: Factory, council_server: CouncilServer, settings: Settings
) -> None:
    source_id = await factory.source(url=council_server.url)
    await council_server.stop()  # nothing listens on its port now

    result = await poll(pool, settings, source_id)

    assert result.error is not None
    assert re.fullmatch(
        r"could not fetch http://127\.0\.0\.1:\d+/mgWebService\.asmx/GetCommittees\?lCommitteeId=0: "
        r"ClientConnectorError: .*",
        result.error,
    ), result.error
    assert (await health(pool, source_id))["consecutive_failures"] == 1

# ---- conditional GET, headers ------------------------------------------------------------------------------------


async def test_poll_rss_conditional_get_with_etag(
    pool: asyncpg.Pool, factory: Factory, council_server: CouncilServer, settings: Settings
) -> None:
    feed = fixture_bytes("rss/moderngov_mgrss.xml")
    modified = "Wed, 26 Nov 2025 16:05:12 GMT"
    council_server.set(
        "/mgRss.aspx?XXR=0", feed, content_type="application/rss+xml", etag='"whatsnew-1"',
        headers={"Last-Modified": modified},
    )
    source_id = await factory.source(kind="rss", url=f"{council_server.url}/mgRss.aspx?XXR=0")

    first = await poll(pool, settings, source_id)
    assert (first.error, first.not_modified, first.http_status) == (None, False, 200)
    assert first.records == first.events > 0
    state = await health(pool, source_id)
    assert (state["etag"], state["last_modified"]) == ('"whatsnew-1"', modified)
    before = await items(pool)
    last = await last_event_id(pool)

    second = await poll(pool, settings, source_id)

    assert outcome(second) == {
        "source_id": source_id, "records": 0, "events": 0, "error": None, "not_modified": True, "skipped": None,
        "http_status": 304,
    }
    sent = council_server.requests[-1].headers
    assert (sent["If-None-Match"], sent["If-Modified-Since"]) == ('"whatsnew-1"', modified)
    assert "If-None-Match" not in council_server.requests[0].headers
    assert await items(pool) == before
    assert await events(pool, after=last) == []
    runs = await poll_runs(pool, source_id)
    assert [(r["http_status"], r["records"], r["events"], r["error"]) for r in runs] == [
        (200, first.records, first.events, None), (304, 0, 0, None),
    ]
    state = await health(pool, source_id)
    assert (state["consecutive_failures"], state["last_success_at"]) == (0, runs[1]["started_at"])
    assert (state["etag"], state["last_modified"]) == ('"whatsnew-1"', modified)

    # A new version of the feed: a 200 again, with the new validator kept for next time.
    council_server.set(
        "/mgRss.aspx?XXR=0", feed, content_type="application/rss+xml", etag='"whatsnew-2"',
        headers={"Last-Modified": "Thu, 27 Nov 2025 09:00:00 GMT"},
    )
    third = await poll(pool, settings, source_id)
    assert (third.error, third.not_modified, third.http_status, third.records, third.events) == (
        None, False, 200, first.records, 0,
    )
    assert (await health(pool, source_id))["etag"] == '"whatsnew-2"'


async def test_poll_ical_conditional_get_with_last_modified(
    pool: asyncpg.Pool, factory: Factory, council_server: CouncilServer, settings: Settings
) -> None:
    calendar = fixture_bytes("ical/det_board_of_education.ics")
    modified = "Tue, 30 Apr 2019 15:28:59 GMT"
    parsed: list[str | None] = []

    async def ics(request: web.Request) -> web.Response:
        # A server that knows only Last-Modified, no ETag
        parsed.append(request.headers.get("If-Modified-Since"))
        if request.headers.get("If-Modified-Since") == modified:
            return web.Response(status=304)
        return web.Response(body=calendar, headers={"Content-Type": "text/calendar", "Last-Modified": modified})

    council_server.routes["/calendar.ics"] = ics
    await factory.council("detroit", region=None)
    await pool.execute("update councils set timezone = 'America/Detroit' where slug = 'detroit'")
    source_id = await factory.source("detroit", kind="ical", url=f"{council_server.url}/calendar.ics")

    first = await poll(pool, settings, source_id)

    assert (first.error, first.http_status, first.records) == (None, 200, 33)
    rows = await pool.fetch("select external_id, title, starts_at, status from items where external_id = '7856'")
    assert [tuple(r) for r in rows] == [
        ("7856", "DPSCD Regular Board Meeting (Open)", datetime(2019, 4, 16, 21, 30, tzinfo=UTC), "confirmed"),
    ]
    (event,) = [e for e in await events(pool) if e[1] == "7856"]
    assert event == (
        "meeting.scheduled", "7856", {"starts_at": [None, "2019-04-16T21:30:00+00:00"]},
        "DPSCD Regular Board Meeting (Open), 16 Apr 2019 17:30: meeting scheduled",
    )
    assert first.events == 33
    before = await items(pool)

    second = await poll(pool, settings, source_id)

    assert (second.error, second.not_modified, second.http_status, second.records, second.events) == (
        None, True, 304, 0, 0,
    )
    assert parsed == [None, modified]
    assert await items(pool) == before
    assert (await health(pool, source_id))["last_modified"] == modified


async def test_poll_sends_user_agent_and_accepts_gzip(
    pool: asyncpg.Pool, factory: Factory, council_server: CouncilServer, settings: Settings
) -> None:
    settings = settings.model_copy(update={"contact_url": "https://alerts.example.org/about"})
    feed = fixture_bytes("rss/committee_atom.xml")

    async def compressed(request: web.Request) -> web.Response:
        return web.Response(
            body=gzip.compress(feed), headers={"Content-Type": "application/atom+xml", "Content-Encoding": "gzip"}
        )

    council_server.routes["/feed.atom"] = compressed
    source_id = await factory.source(
        kind="rss", url=f"{council_server.url}/feed.atom", options={"item_kind": "meeting"}
    )

    result = await poll(pool, settings, source_id)

    assert (result.error, result.http_status) == (None, 200)
    assert result.records > 0
    (request,) = council_server.requests
    assert request.headers["User-Agent"] == f"notifier/{__version__} (+https://alerts.example.org/about)"
    assert "gzip" in request.headers["Accept-Encoding"]
