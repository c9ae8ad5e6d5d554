"""The polling path end to end: the real adapters against a real council HTTP server, written to real PostgreSQL.

Every test polls through `notifier.ingest.poll.poll_source` (or the worker job around it) and reads back what a poll
leaves behind: items, events, the source's health and its poll_runs rows.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp import web
from arq.connections import ArqRedis
from arq.jobs import Job, JobStatus

from notifier import __version__
from notifier.ingest import write
from notifier.ingest.fetch import Fetcher, client_session
from notifier.ingest.normalise import content_hash
from notifier.ingest.poll import enqueue_due_polls, poll_source
from notifier.ingest.write import PollResult, write_poll
from notifier.matching import CURSOR_NAME
from notifier.models import ItemKind
from notifier.search import compile_query
from notifier.settings import Settings
from notifier.sources.base import Record
from notifier.sources.moderngov import MeetingSummary, parse_meeting
from notifier.topics.text import tsvector_literal
from tests.factories import Factory
from tests.servers import CouncilServer, fixture_bytes

LONDON = ZoneInfo("Europe/London")
WS = "/mgWebService.asmx"
INTERVAL = timedelta(minutes=30)
EMPTY_MEETINGS = fixture_bytes("moderngov/meetings_empty.xml")


# ---- helpers ----------------------------------------------------------------------------------------------------


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


# ---- ModernGov: first poll, second poll ---------------------------------------------------------------------------


async def test_poll_moderngov_first_poll_creates_items_and_events(
    pool: asyncpg.Pool, factory: Factory, council_server: CouncilServer, settings: Settings
) -> None:
    site = manchester(council_server)
    source_id = await factory.source("manchester", url=council_server.url)

    result = await poll(pool, settings, source_id)

    assert outcome(result) == {
        "source_id": source_id, "records": 6, "events": 4, "error": None, "not_modified": False, "skipped": None,
        "http_status": 200,
    }
    rows = await pool.fetch(
        """
        select i.kind, i.external_id, i.council, i.title, i.committee, i.committee_id, i.starts_at, i.status, i.url,
               p.external_id as parent, i.published_at
        from items i left join items p on p.id = i.parent_id
        order by i.id
        """
    )
    base = council_server.url
    manchester_doc = "https://democracy.manchester.gov.uk/mgConvert2PDF.aspx?ID="
    audit = "Audit Committee"
    jan13, feb10, feb2 = datetime(2026, 1, 13, 10, tzinfo=UTC), datetime(2026, 2, 10, 10, tzinfo=UTC), datetime(
        2026, 2, 2, tzinfo=UTC
    )
    assert [tuple(r) for r in rows] == [
        ("meeting", "4966", "manchester", audit, audit, "144", jan13, "cancelled",
         f"{base}/ieListDocuments.aspx?CId=144&MId=4966", None, None),
        ("meeting", "4967", "manchester", audit, audit, "144", feb10, "confirmed",
         f"{base}/ieListDocuments.aspx?CId=144&MId=4967", None, None),
        ("agenda_item", "18831", "manchester", "Minutes", audit, "144", feb10, None,
         f"{base}/ieListDocuments.aspx?CId=144&MId=4967", "4967", None),
        ("agenda_item", "18833", "manchester", "Work Programme", audit, "144", feb10, None,
         f"{base}/ieListDocuments.aspx?CId=144&MId=4967", "4967", None),
        ("document", "60860", "manchester", "6 - CHAIR APPROVED Minutes Audit Committee 25 Nov 2025", audit, "144",
         feb10, None, f"{manchester_doc}60860", "18831", feb2),
        ("document", "60909", "manchester", "DRAFT WP FEBRUARY 2026", audit, "144", feb10, None,
         f"{manchester_doc}60909", "18833", feb2),
    ]
    listed, folded = split_documents(await events(pool))
    assert listed == [
        ("meeting.cancelled", "4966", {"status": [None, "cancelled"]},
         "Audit Committee, 13 Jan 2026 10:00: meeting cancelled"),
        ("meeting.scheduled", "4967", {"starts_at": [None, "2026-02-10T10:00:00+00:00"]},
         "Audit Committee, 10 Feb 2026 10:00: meeting scheduled"),
        ("agenda.published", "4967", {"agenda_published": [None, True]},
         "Audit Committee, 10 Feb 2026 10:00: agenda published"),
        ("minutes.published", "4967", {"minutes_published": [None, True]},
         "Audit Committee, 10 Feb 2026 10:00: minutes published"),
    ]
    # Both papers are announced with the meeting's publications (which of the two takes the last meeting's minutes,
    # an agenda paper, is the diff's call).
    assert sorted(folded, key=str) == [
        {"title": "6 - CHAIR APPROVED Minutes Audit Committee 25 Nov 2025", "url": f"{manchester_doc}60860"},
        {"title": "DRAFT WP FEBRUARY 2026", "url": f"{manchester_doc}60909"},
    ]
    # The meetings were asked for over the default window: 30 days back to 120 ahead, in the council's zone.
    (run,) = await poll_runs(pool, source_id)
    today = run["started_at"].astimezone(LONDON).date()
    window = (uk(today - timedelta(days=30)), uk(today + timedelta(days=120)))
    assert site.windows == [window, window, window]
    assert run == {"started_at": run["started_at"], "http_status": 200, "records": 6, "events": 4, "error": None}
    assert await health(pool, source_id) == {
        "consecutive_failures": 0, "last_error": None, "last_error_at": None, "last_success_at": run["started_at"],
        "next_poll_at": run["started_at"] + INTERVAL, "etag": None, "last_modified": None,
    }
    # History search finds the agenda item by a word of its text ("scrutinies" stems as "scrutiny" does).
    found = await pool.fetch(
        "select external_id from items where search @@ $1::tsquery order by id", compile_query("scrutinies")
    )
    assert [r["external_id"] for r in found] == ["4967", "18833"]


async def test_poll_moderngov_second_poll_creates_nothing(
    pool: asyncpg.Pool, factory: Factory, council_server: CouncilServer, settings: Settings
) -> None:
    manchester(council_server)
    source_id = await factory.source("manchester", url=council_server.url)
    await poll(pool, settings, source_id)
    before = await items(pool)
    last = await last_event_id(pool)

    result = await poll(pool, settings, source_id)

    assert outcome(result) == {
        "source_id": source_id, "records": 0, "events": 0, "error": None, "not_modified": False, "skipped": None,
        "http_status": 200,
    }
    assert await items(pool) == before
    assert await events(pool, after=last) == []
    # The details of meetings whose summary did not change are not asked for again.
    assert council_server.hits[f"{WS}/GetCommittees"] == 2
    assert council_server.hits[f"{WS}/GetMeetings"] == 6
    assert council_server.hits[f"{WS}/GetMeeting?lMeetingId=4966"] == 1
    assert council_server.hits[f"{WS}/GetMeeting?lMeetingId=4967"] == 1
    assert [(r["records"], r["events"], r["error"]) for r in await poll_runs(pool, source_id)] == [
        (6, 4, None), (0, 0, None),
    ]


# ---- ModernGov: a rescheduled, a cancelled and a newly published meeting ---------------------------------------

AGENDA_7004 = """
  <agendaitems>
    <agendaitem>
      <agendaitemid>9401</agendaitemid>
      <agendaitemtitle>Joint Living Well with Dementia Strategy &amp;#8211; Progress Report</agendaitemtitle>
      <agendatext>&lt;p class=MsoNormal&gt;To receive a report of the Director of Public Health on progress with
the dementia strategy.&lt;/p&gt;</agendatext>
      <fulldisplaynumberformat>5.</fulldisplaynumberformat>
      <isdecision>False</isdecision>
      <isminutepublished>False</isminutepublished>
      <isrestricted>False</isrestricted>
      <isdisplayallowed>True</isdisplayallowed>
      <linkeddocuments>
        <linkeddoc>
          <attachmentid>84010</attachmentid>
          <title>Dementia strategy progress report</title>
          <isurl>False</isurl>
          <url>documents/s84010/Dementia strategy progress report.pdf</url>
          <isrestricted>False</isrestricted>
          <publicationdate>{published}</publicationdate>
        </linkeddoc>
      </linkeddocuments>
    </agendaitem>
  </agendaitems>
  <linkeddocuments>
    <linkeddoc>
      <attachmentid>84001</attachmentid>
      <title>Agenda frontsheet</title>
      <isurl>False</isurl>
      <url>mgConvert2PDF.aspx?ID=84001</url>
      <isrestricted>False</isrestricted>
      <publicationdate>{published}</publicationdate>
    </linkeddoc>
  </linkeddocuments>"""


class HealthBoard:
    """The written Health and Wellbeing Board fixtures, moved to dates around today so the refresh policy applies.

    7001 was held a fortnight ago (agenda and minutes out); 7002 is next week; 7003 and 7004 (no time given) follow.
    """

    def __init__(self, site: ModernGovSite, today: date) -> None:
        self.site = site
        self.days = {
            "7001": today - timedelta(days=14),
            "7002": today + timedelta(days=7),
            "7003": today + timedelta(days=10),
            "7004": today + timedelta(days=18),
        }
        self.moved_to = today + timedelta(days=14)
        site.committees(fixture_bytes("moderngov/committees_deleted.xml"))

    def serve(self, *, changed: bool) -> None:
        """The board before the changes, or after: 7002 moved a week, 7003 cancelled in its title, 7004's agenda out."""
        d = self.days
        day_7002 = self.moved_to if changed else d["7002"]
        status_7002 = f"Confirmed; Rescheduled from {long_date(d['7002'])}" if changed else "Confirmed"
        listing = fixture_bytes("moderngov/meetings_hwb.xml").decode()
        listing = (
            listing.replace("24/09/2026", uk(d["7001"]))
            .replace("03/12/2026", uk(day_7002))
            .replace("Confirmed; Rescheduled from 26 November 2026", status_7002)
            .replace("15/10/2026", uk(d["7003"]))
            .replace("05/11/2026", uk(d["7004"]))
        )
        if not changed:
            listing = re.sub(r"\s*<meetingtitle>.*</meetingtitle>", "", listing)
        self.site.meetings["501"] = listing.encode()

        first = fixture_bytes("moderngov/meeting_7001_word_html.xml").decode()
        first = first.replace("24/09/2026", uk(d["7001"])).replace("16/09/2026", uk(d["7001"] - timedelta(days=8)))
        self.site.meeting("7001", first)
        second = fixture_bytes("moderngov/meeting_7002_rescheduled.xml").decode()
        second = second.replace("03/12/2026", uk(day_7002))
        self.site.meeting("7002", second.replace("Confirmed; Rescheduled from 26 November 2026", status_7002))
        third = fixture_bytes("moderngov/meeting_7003_cancelled_title.xml").decode()
        third = third.replace("15/10/2026", uk(d["7003"]))
        if not changed:
            third = re.sub(r"\s*<meetingtitle>.*</meetingtitle>", "", third)
        self.site.meeting("7003", third)
        fourth = fixture_bytes("moderngov/meeting_7004_no_time.xml").decode().replace("05/11/2026", uk(d["7004"]))
        if changed:
            agenda = AGENDA_7004.format(published=uk(d["7004"] - timedelta(days=8)))
            empty = r"\s*<agendaitems>\s*</agendaitems>\s*<linkeddocuments>\s*</linkeddocuments>"
            fourth = re.sub(empty, agenda, fourth)
            fourth = fourth.replace("<agendapublished>False<", "<agendapublished>True<")
        self.site.meeting("7004", fourth)


async def test_poll_moderngov_changes_become_the_right_events(
    pool: asyncpg.Pool, factory: Factory, council_server: CouncilServer, settings: Settings
) -> None:
    board = HealthBoard(ModernGovSite(council_server), datetime.now(LONDON).date())
    board.serve(changed=False)
    # Details of meetings near today are re-read at every poll: an agenda appears without the listing changing.
    source_id = await factory.source(url=council_server.url, options={"detail_refresh_minutes": 0})
    first = await poll(pool, settings, source_id)
    assert [(t, ext) for t, ext, _, _ in await events(pool)] == [
        ("meeting.scheduled", "7001"), ("agenda.published", "7001"), ("minutes.published", "7001"),
        ("meeting.scheduled", "7002"), ("meeting.scheduled", "7003"), ("meeting.scheduled", "7004"),
    ]
    second = await poll(pool, settings, source_id)
    assert (second.error, second.records, second.events) == (None, first.records, 0)
    before = {(r["kind"], r["external_id"]): r for r in await items(pool)}
    last = await last_event_id(pool)
    assert await found(pool, '"progress report"') == []

    board.serve(changed=True)
    result = await poll(pool, settings, source_id)

    assert (result.error, result.events) == (None, 3)
    d = board.days
    base = council_server.url
    assert await events(pool, after=last) == [
        ("meeting.cancelled", "7003", {"status": ["confirmed", "cancelled"]},
         f"Health and Wellbeing Board, {shown(d['7003'])} 09:30: meeting cancelled"),
        ("meeting.rescheduled", "7002",
         {"starts_at": [at(d["7002"], 10).isoformat(), at(board.moved_to, 10).isoformat()],
          "status": ["confirmed", "rescheduled"],
          "status_text": ["Confirmed", f"Confirmed; Rescheduled from {long_date(d['7002'])}"]},
         f"Health and Wellbeing Board, {shown(d['7002'])} 10:00 moved to {shown(board.moved_to)} 10:00"),
        ("agenda.published", "7004",
         {"agenda_published": [False, True],
          "documents": [[], [
              {"title": "Agenda frontsheet", "url": f"{base}/mgConvert2PDF.aspx?ID=84001"},
              {"title": "Dementia strategy progress report",
               "url": f"{base}/documents/s84010/Dementia%20strategy%20progress%20report.pdf"},
          ]]},
         f"Health and Wellbeing Board, {shown(d['7004'])}: agenda published (2 documents)"),
    ]
    after = {(r["kind"], r["external_id"]): r for r in await items(pool)}
    # The meeting that did not change is as it was, whatever was re-read.
    unchanged = [key for key in before if key[1] in {"7001", "9101", "9102", "81001", "81002", "81010"}]
    assert unchanged
    for key in unchanged:
        assert {k: v for k, v in after[key].items() if k != "data"} == {
            k: v for k, v in before[key].items() if k != "data"
        }
    assert after[("meeting", "7002")]["starts_at"] == at(board.moved_to, 10)
    assert after[("meeting", "7003")]["status"] == "cancelled"
    assert after[("agenda_item", "9401")]["parent_id"] == after[("meeting", "7004")]["id"]
    assert after[("document", "84010")]["parent_id"] == after[("agenda_item", "9401")]["id"]
    assert "dementia strategy" in after[("meeting", "7004")]["body"].lower()
    # New words are searchable at once; a meeting that moved is found by its words as before.
    assert await found(pool, '"progress report"') == [
        ("meeting", "7004"), ("agenda_item", "9401"), ("document", "84010"),
    ]
    assert after[("meeting", "7002")]["search"] == before[("meeting", "7002")]["search"] != ""

    # Polled again with nothing changed: nothing; and a meeting missing from the listing is not an event either.
    assert (await poll(pool, settings, source_id)).events == 0
    board.site.meetings["501"] = re.sub(
        rb"\s*<meeting>\s*<meetingid>7001</meetingid>.*?</meeting>", b"", board.site.meetings["501"], flags=re.S
    )
    missing = await poll(pool, settings, source_id)
    assert (missing.error, missing.events) == (None, 0)
    assert await events(pool, after=last + 3) == []
    assert ("meeting", "7001") in {(r["kind"], r["external_id"]) for r in await items(pool)}


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


async def test_poll_failures_back_off_exponentially_to_the_cap_and_success_resets(
    pool: asyncpg.Pool, factory: Factory, council_server: CouncilServer, settings: Settings
) -> None:
    manchester(council_server)
    source_id = await factory.source("manchester", url=council_server.url)
    council_server.set(f"{WS}/GetCommittees", "Service Unavailable", status=503, content_type="text/plain")

    delays = []
    for _ in range(6):
        result = await poll(pool, settings, source_id, max_backoff=timedelta(hours=3))
        assert result.error is not None and result.error.startswith("HTTP 503 Service Unavailable from ")
        state = await health(pool, source_id)
        delays.append((state["consecutive_failures"], state["next_poll_at"] - state["last_error_at"]))

    minutes = [(n, delay / timedelta(minutes=1)) for n, delay in delays]
    assert minutes == [(1, 30), (2, 60), (3, 120), (4, 180), (5, 180), (6, 180)]
    assert [r["http_status"] for r in await poll_runs(pool, source_id)] == [503] * 6

    manchester(council_server)
    result = await poll(pool, settings, source_id, max_backoff=timedelta(hours=3))
    assert (result.error, result.records) == (None, 6)
    runs = await poll_runs(pool, source_id)
    state = await health(pool, source_id)
    assert state == {
        "consecutive_failures": 0, "last_error": None, "last_error_at": runs[-2]["started_at"],
        "last_success_at": runs[-1]["started_at"], "next_poll_at": runs[-1]["started_at"] + INTERVAL, "etag": None,
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


# ---- other source kinds through the whole path ---------------------------------------------------------------------


async def test_poll_legistar_events_items_and_matters(
    pool: asyncpg.Pool, factory: Factory, council_server: CouncilServer, settings: Settings
) -> None:
    event = json.loads(fixture_bytes("legistar/metro_event.json"))
    council_server.set("/v1/metro/events", json.dumps([event]), content_type="application/json")
    council_server.set(
        "/v1/metro/events/2907/eventitems", fixture_bytes("legistar/metro_eventitems.json"),
        content_type="application/json",
    )
    council_server.set(
        "/v1/metro/matters", fixture_bytes("legistar/metro_matters.json"), content_type="application/json"
    )
    council_server.set(
        "/v1/metro/matters/10881/attachments", fixture_bytes("legistar/metro_matter_attachments.json"),
        content_type="application/json",
    )
    await factory.council("la-metro", region=None)
    await pool.execute("update councils set timezone = 'America/Los_Angeles' where slug = 'la-metro'")
    source_id = await factory.source("la-metro", kind="legistar", url=f"{council_server.url}/v1/metro")

    result = await poll(pool, settings, source_id)

    assert (result.error, result.http_status) == (None, 200)
    rows = await pool.fetch(
        """
        select i.kind, i.external_id, i.title, i.starts_at, p.kind as parent_kind, p.external_id as parent
        from items i left join items p on p.id = i.parent_id
        order by i.kind, i.external_id
        """
    )
    meeting_at = datetime(2024, 9, 26, 17, 0, tzinfo=UTC)  # 10:00 AM in Los Angeles (summer time)
    board = "Board of Directors - Regular Board Meeting"
    minutes_title = "APPROVE Minutes of the Regular Board Meeting held September 26, 2024 and the Special Board " \
        "Meeting/Ad Hoc 2028 Olympic & Paralympic Games Committee held October 23, 2024."
    matter = ("decision", "matter:10881")
    assert [tuple(r) for r in rows] == [
        ("agenda_item", "31501", "CALL TO ORDER", meeting_at, "meeting", "2907"),
        ("agenda_item", "31510", "APPROVE Minutes of the Regular Board Meeting held July 25, 2024.", meeting_at,
         "meeting", "2907"),
        ("decision", "matter:10881", minutes_title, datetime(2024, 10, 31, 7, 0, tzinfo=UTC), None, None),
        ("document", "attachment:27980", "Regular Board Meeting MINUTES - July 25, 2024", None, "agenda_item",
         "31510"),
        ("document", "attachment:28753", "Regular Board Meeting MINUTES - September 26, 2024", None, *matter),
        ("document", "attachment:28754", "September 2024 RBM Public Comments", None, *matter),
        ("document", "attachment:28800", "Special Board Meeting/Ad Hoc 2028 MINUTES - October 23, 2024", None,
         *matter),
        ("document", "attachment:28801", "October 2024 SBM/Ad Hoc Public Comments", None, *matter),
        ("document", "event:2907:agenda", f"Agenda: {board}, 26 Sep 2024", meeting_at, "meeting", "2907"),
        ("meeting", "2907", board, meeting_at, None, None),
    ]
    attachments = "https://metro.legistar1.com/metro/attachments/"
    assert [(t, ext, changes) for t, ext, changes, _ in await events(pool)] == [
        ("meeting.scheduled", "2907", {"starts_at": [None, "2024-09-26T17:00:00+00:00"]}),
        ("agenda.published", "2907", {
            "agenda_published": [None, True],
            "documents": [[], [
                {"title": f"Agenda: {board}, 26 Sep 2024",
                 "url": "https://metro.legistar1.com/metro/meetings/2024/9/"
                        "2907_A_Board_of_Directors_-_Regular_Board_Meeting_24-09-26_Agenda.pdf"},
                {"title": "Regular Board Meeting MINUTES - July 25, 2024",
                 "url": f"{attachments}0d6c1a55-2f0e-4f5b-8a0e-5b1f2f6c9e11.pdf"},
            ]],
        }),
        ("decision.published", "matter:10881", {"status": [None, "passed"]}),
        ("document.published", "attachment:28753", {
            "title": [None, "Regular Board Meeting MINUTES - September 26, 2024"],
            "url": [None, f"{attachments}73425e96-9569-465d-b4c2-14ef9398e6ee.pdf"],
        }),
        ("document.published", "attachment:28754", {
            "title": [None, "September 2024 RBM Public Comments"],
            "url": [None, f"{attachments}cf3d93b7-3286-4487-85bc-938dbbb14a4d.pdf"],
        }),
        ("document.published", "attachment:28800", {
            "title": [None, "Special Board Meeting/Ad Hoc 2028 MINUTES - October 23, 2024"],
            "url": [None, f"{attachments}b9206789-2b9a-4742-9b57-bee1d3d52581.pdf"],
        }),
        ("document.published", "attachment:28801", {
            "title": [None, "October 2024 SBM/Ad Hoc Public Comments"],
            "url": [None, f"{attachments}3ec341d3-49c3-4e13-af4d-26f834855032.pdf"],
        }),
    ]
    assert (result.records, result.events) == (10, 7)
    last = await last_event_id(pool)

    again = await poll(pool, settings, source_id)

    assert (again.error, again.events) == (None, 0)
    assert await events(pool, after=last) == []
    # Once a poll has succeeded, lists are asked for what changed since (less the look-back).
    asked = [r.query.get("$filter", "") for r in council_server.requests if r.path == "/v1/metro/events"]
    assert asked[0].startswith("EventDate ge datetime'")
    assert asked[1].startswith("EventLastModifiedUtc gt datetime'")


# ---- one poll at a time, scheduling, the worker --------------------------------------------------------------------


async def test_poll_concurrent_polls_of_one_source_one_runs_one_skips(
    pool: asyncpg.Pool, factory: Factory, council_server: CouncilServer, settings: Settings
) -> None:
    site = manchester(council_server)
    site.server.set(f"{WS}/GetCommittees", fixture_bytes("moderngov/committees.xml"), delay=0.5)
    source_id = await factory.source("manchester", url=council_server.url)

    async with fetcher(settings) as f:
        results = await asyncio.gather(poll_source(pool, f, source_id), poll_source(pool, f, source_id))

    ran = [r for r in results if r.skipped is None]
    skipped = [r for r in results if r.skipped is not None]
    assert len(ran) == 1 and len(skipped) == 1
    assert (ran[0].error, ran[0].records, ran[0].events) == (None, 6, 4)
    assert outcome(skipped[0]) == {
        "source_id": source_id, "records": 0, "events": 0, "error": None, "not_modified": False,
        "skipped": "a poll of this source is already running", "http_status": None,
    }
    assert council_server.hits[f"{WS}/GetCommittees"] == 1
    assert len(await poll_runs(pool, source_id)) == 1
    # The lock is released: the next poll runs.
    assert (await poll(pool, settings, source_id)).skipped is None


async def test_poll_disabled_source_is_skipped_unless_forced(
    pool: asyncpg.Pool, factory: Factory, council_server: CouncilServer, settings: Settings
) -> None:
    manchester(council_server)
    source_id = await factory.source("manchester", url=council_server.url, enabled=False)

    skipped = await poll(pool, settings, source_id)
    assert skipped.skipped == "source is disabled"
    assert council_server.requests == []
    assert await poll_runs(pool, source_id) == []

    forced = await poll(pool, settings, source_id, force=True)
    assert (forced.skipped, forced.error, forced.records) == (None, None, 6)
    assert (await poll(pool, settings, 999_999)).skipped == "no such source"


async def _queued(redis: ArqRedis) -> list[tuple[str, str, tuple[Any, ...]]]:
    jobs = await redis.queued_jobs()
    return sorted((j.job_id or "", j.function, tuple(j.args)) for j in jobs)


async def test_enqueue_due_polls_once_per_source_and_skips_disabled(
    pool: asyncpg.Pool, factory: Factory, redis: ArqRedis
) -> None:
    now = datetime(2026, 3, 2, 9, 15, 20, tzinfo=UTC)
    due = [await factory.source(next_poll_at=now - timedelta(minutes=m)) for m in (5, 0)]
    await factory.source(next_poll_at=now - timedelta(minutes=5), enabled=False)
    await factory.source(next_poll_at=now + timedelta(minutes=1))

    assert await enqueue_due_polls(pool, redis, now=now) == 2
    assert await enqueue_due_polls(pool, redis, now=now + timedelta(seconds=30)) == 0
    # A second scheduler that read the same due sources in the same minute enqueues nothing: the job ids agree.
    await pool.execute("update sources set next_poll_at = $1 where id = any($2::bigint[])", now, due)
    assert await enqueue_due_polls(pool, redis, now=now + timedelta(seconds=10)) == 0

    assert await _queued(redis) == sorted(
        (f"poll:{source_id}:20260302T0915", "poll_source", (source_id,)) for source_id in due
    )


async def test_enqueue_due_polls_claims_sources_until_their_job_has_had_time_to_run(
    pool: asyncpg.Pool, factory: Factory, redis: ArqRedis
) -> None:
    now = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)
    source_id = await factory.source(next_poll_at=now)

    assert await enqueue_due_polls(pool, redis, now=now) == 1
    # While the queue is behind, later minutes do not pile up more polls of the same source...
    for minute in range(1, 10):
        assert await enqueue_due_polls(pool, redis, now=now + timedelta(minutes=minute)) == 0
    # ...but a job that was lost is made up for.
    assert await enqueue_due_polls(pool, redis, now=now + timedelta(minutes=10)) == 1
    assert [job_id for job_id, _, _ in await _queued(redis)] == [
        f"poll:{source_id}:20260302T0915", f"poll:{source_id}:20260302T0925",
    ]


async def test_poll_job_enqueues_match_events(
    pool: asyncpg.Pool,
    factory: Factory,
    council_server: CouncilServer,
    redis: ArqRedis,
    run_jobs: Callable[..., Awaitable[int]],
) -> None:
    manchester(council_server)
    source_id = await factory.source("manchester", url=council_server.url)
    await redis.enqueue_job("poll_source", source_id, _job_id=f"poll:{source_id}:test")

    completed = await run_jobs()

    assert completed == 2
    last = await last_event_id(pool)
    assert last == 4
    poll_job = await Job(f"poll:{source_id}:test", redis).result_info()
    assert poll_job is not None and poll_job.success
    assert {k: poll_job.result[k] for k in ("records", "events", "error")} == {"records": 6, "events": 4, "error": None}
    match = Job(f"match:{last}", redis)
    assert await match.status() == JobStatus.complete
    info = await match.result_info()
    assert info is not None and info.function == "match_events" and info.success
    assert await pool.fetchval("select position from cursors where name = $1", CURSOR_NAME) == last


# ---- write_poll: what one poll writes ------------------------------------------------------------------------------

HWB = "Health and Wellbeing Board"


def meeting_records(
    fixture: str, *, day: str | None = None, fetched_at: datetime = datetime(2026, 9, 20, 8, tzinfo=UTC)
) -> list[Record]:
    """A recorded GetMeeting answer, parsed by the real adapter (moved to `day` when given)."""
    body = fixture_bytes(f"moderngov/{fixture}")
    mid = re.search(rb"<meetingid>(\d+)<", body)[1].decode()  # type: ignore[index]
    recorded = re.search(rb"<meetingdate>([^<]+)<", body)[1].decode()  # type: ignore[index]
    if day is not None:
        body = body.replace(f"<meetingdate>{recorded}<".encode(), f"<meetingdate>{day}<".encode())
    summary = MeetingSummary(mid, "501", HWB, day or recorded, "2.00 pm", "Confirmed", "")
    return parse_meeting(body, summary=summary, base="https://democracy.example.gov.uk", tz="Europe/London",
                         fetched_at=fetched_at)


async def write_counted(conn: asyncpg.Connection, source_id: int, records: list[Record]) -> tuple[PollResult, int, int]:
    """write_poll, and how many item rows it inserted and updated (rows written, whatever their values)."""
    source = await conn.fetchrow(
        "select s.*, c.timezone from sources s join councils c on c.slug = s.council where s.id = $1", source_id
    )
    assert source is not None
    counted = "select n_tup_ins, n_tup_upd from pg_stat_xact_user_tables where relname = 'items'"
    # The counters also hold earlier transactions of this connection that are not reported yet: take the difference.
    async with conn.transaction():
        before = await conn.fetchrow(counted)
        result = await write_poll(conn, source, records, started=datetime.now(UTC))
        after = await conn.fetchrow(counted)
    assert before is not None and after is not None
    return result, after["n_tup_ins"] - before["n_tup_ins"], after["n_tup_upd"] - before["n_tup_upd"]


async def stored_items(conn: asyncpg.Connection) -> dict[tuple[str, str], dict[str, Any]]:
    rows = await conn.fetch(
        """
        select i.*, i.search::text as search_text, p.kind as parent_kind, p.external_id as parent_external_id
        from items i left join items p on p.id = i.parent_id
        """
    )
    return {(r["kind"], r["external_id"]): dict(r) for r in rows}


async def expected_vector(conn: asyncpg.Connection, row: dict[str, Any]) -> str:
    """The search vector of a stored row as tokenising its whole searched text gives it."""
    text = "\n".join(p for p in (row["title"], row["committee"] or "", row["body"]) if p)
    value: str = await conn.fetchval("select $1::tsvector::text", tsvector_literal(text))
    return value


@pytest.mark.parametrize("fixture", ["meeting_with_minutes.xml", "meeting_7001_word_html.xml"])
async def test_write_poll_first_sight_writes_each_item_once_with_its_parent_texts_and_vector(
    pool: asyncpg.Pool, factory: Factory, fixture: str
) -> None:
    records = meeting_records(fixture)
    source_id = await factory.source("leicestershire")
    async with pool.acquire() as conn:
        result, inserted, updated = await write_counted(conn, source_id, records)
        stored = await stored_items(conn)
        # Parents are inserted before their children, so no row is written twice to set its parent.
        assert (inserted, updated) == (len(records), 0)
        assert result.records == len(records) and result.events > 0
        for r in records:
            row = stored[(r.kind.value, r.external_id)]
            assert (row["title"], row["committee"], row["body"], row["url"]) == (r.title, r.committee, r.body, r.url)
            assert (row["parent_kind"], row["parent_external_id"]) == (
                (r.parent[0].value, r.parent[1]) if r.parent is not None else (None, None)
            )
            assert row["content_hash"] == content_hash(r)
            assert row["search_text"] == await expected_vector(conn, row)
    # The meeting is found by words of its agenda text, as every other item is by its own.
    meeting = stored[("meeting", records[0].external_id)]
    assert len(meeting["body"]) > 100
    query = compile_query('"to receive"' if "7001" in fixture else '"correct record"')
    found = await pool.fetchval("select count(*) from items where kind = 'meeting' and search @@ $1::tsquery", query)
    assert found == 1


async def test_write_poll_unchanged_records_write_nothing(pool: asyncpg.Pool, factory: Factory) -> None:
    source_id = await factory.source("leicestershire")
    async with pool.acquire() as conn:
        await write_counted(conn, source_id, meeting_records("meeting_with_minutes.xml"))
        before = await stored_items(conn)

        # The same answer read again later: only the meeting's bookkeeping (when its details were read) is new.
        again = meeting_records("meeting_with_minutes.xml", fetched_at=datetime(2026, 9, 21, 8, tzinfo=UTC))
        result, inserted, updated = await write_counted(conn, source_id, again)
        after = await stored_items(conn)

    assert (result.records, result.events, inserted, updated) == (len(again), 0, 0, 1)
    assert after.keys() == before.keys()
    for key, row in after.items():
        if key[0] == "meeting":
            assert row["data"]["_detail_at"] == "2026-09-21T08:00:00+00:00"
            row = {**row, "data": before[key]["data"]}
        assert row == before[key]


async def test_write_poll_moved_meeting_rewrites_items_and_keeps_their_words(
    pool: asyncpg.Pool, factory: Factory
) -> None:
    source_id = await factory.source("leicestershire")
    async with pool.acquire() as conn:
        first = meeting_records("meeting_7001_word_html.xml")
        await write_counted(conn, source_id, first)
        before = await stored_items(conn)

        moved = meeting_records("meeting_7001_word_html.xml", day="01/10/2026")
        result, inserted, updated = await write_counted(conn, source_id, moved)
        after = await stored_items(conn)
        for row in after.values():
            assert row["search_text"] == await expected_vector(conn, row)

    assert (inserted, updated) == (0, len(moved))
    assert result.event_types == ["meeting.rescheduled"]
    for key, row in after.items():
        assert row["starts_at"] - before[key]["starts_at"] == timedelta(days=7)
        assert (row["title"], row["body"], row["search_text"], row["parent_id"]) == (
            before[key]["title"], before[key]["body"], before[key]["search_text"], before[key]["parent_id"]
        )


async def test_write_poll_new_document_of_a_stored_agenda_item_is_folded_into_its_agenda(
    pool: asyncpg.Pool, factory: Factory
) -> None:
    # The agenda item is unchanged (so not read back in full), and is still what the new paper is filed under.
    source_id = await factory.source("leicestershire")
    records = meeting_records("meeting_with_minutes.xml")
    documents = [r for r in records if r.kind is ItemKind.DOCUMENT and r.parent and r.parent[0] is ItemKind.AGENDA_ITEM]
    withheld = documents[0]
    meeting = records[0]
    unpublished = replace(meeting, data={**meeting.data, "agenda_published": False, "minutes_published": False})
    async with pool.acquire() as conn:
        await write_counted(conn, source_id, [unpublished, *(r for r in records[1:] if r is not withheld)])
        result, inserted, _ = await write_counted(conn, source_id, records)
        stored = await stored_items(conn)
    assert inserted == 1
    assert result.event_types == ["agenda.published", "minutes.published"]
    row = stored[("document", withheld.external_id)]
    assert (row["parent_kind"], row["parent_external_id"]) == ("agenda_item", withheld.parent[1])  # type: ignore[index]
    changes = await pool.fetch("select type, changes from events order by id desc limit 2")
    folded = [d["title"] for c in changes for d in c["changes"].get("documents", [[], []])[1]]
    assert folded == [withheld.title]


async def test_write_poll_failing_while_a_group_is_inserted_stores_nothing_and_leaves_the_connection_usable(
    pool: asyncpg.Pool, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The documents' rows fail to prepare while the agenda items are being inserted.
    real = write._search_vectors
    calls = 0

    def failing_on_the_third_group(records: list[Record]) -> dict[tuple[ItemKind, str], str]:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("tokeniser broke")
        return real(records)

    monkeypatch.setattr(write, "_search_vectors", failing_on_the_third_group)
    source_id = await factory.source("leicestershire")
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError, match="tokeniser broke"):
            await write_counted(conn, source_id, meeting_records("meeting_with_minutes.xml"))
        assert await conn.fetchval("select count(*) from items") == 0
