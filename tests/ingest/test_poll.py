"""The polling path end to end: the real adapters against a real council HTTP server, written to real PostgreSQL.

Every test polls through `notifier.ingest.poll.poll_source` (or the worker job around it) and reads back what a poll
leaves behind: items, events, the source's health and its poll_runs rows.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp import web
from arq.connections import ArqRedis
from arq.jobs import Job, JobStatus

from notifier.db import create_pool
from notifier.ingest.poll import enqueue_due_polls, poll_source
from notifier.matching.matcher import CURSOR_NAME
from notifier.settings import Settings
from notifier.subscriptions import compile_query
from tests.factories import Factory
from tests.ingest.helpers import (
    LONDON,
    WS,
    ModernGovSite,
    at,
    events,
    fetcher,
    found,
    health,
    items,
    last_event_id,
    long_date,
    manchester,
    moderngov_next_poll,
    outcome,
    poll,
    poll_runs,
    shown,
    split_documents,
    uk,
)
from tests.servers import CouncilServer, fixture_bytes

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
        "next_poll_at": moderngov_next_poll(run["started_at"]), "etag": None, "last_modified": None,
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

# ---- failures back off ------------------------------------------------------------------------------------------


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
        "last_success_at": runs[-1]["started_at"], "next_poll_at": moderngov_next_poll(runs[-1]["started_at"]),
        "etag": None, "last_modified": None,
    }

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
    # The lease is given back: the next poll runs.
    assert (await poll(pool, settings, source_id)).skipped is None


async def test_poll_holds_no_database_connection_while_the_council_answers(
    factory: Factory, council_server: CouncilServer, settings: Settings
) -> None:
    # Two councils polled at once by a worker whose pool has one connection: both wait on their servers together.
    site = manchester(council_server)
    open_now, most = 0, 0

    async def committees(request: web.Request) -> web.Response:
        nonlocal open_now, most
        open_now += 1
        most = max(most, open_now)
        await asyncio.sleep(0.3)
        open_now -= 1
        return web.Response(body=fixture_bytes("moderngov/committees.xml"), content_type="text/xml")

    site.server.routes[f"{WS}/GetCommittees"] = committees
    first = await factory.source("manchester", url=council_server.url)
    second = await factory.source("leicestershire", url=council_server.url)
    one = await create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        async with fetcher(settings) as f:
            results = await asyncio.gather(poll_source(one, f, first), poll_source(one, f, second))
    finally:
        await one.close()
    assert [(r.error, r.skipped, r.records) for r in results] == [(None, None, 6), (None, None, 6)]
    assert most == 2


async def test_poll_lease_held_by_a_dead_worker_runs_out(
    pool: asyncpg.Pool, factory: Factory, council_server: CouncilServer, settings: Settings
) -> None:
    manchester(council_server)
    source_id = await factory.source("manchester", url=council_server.url)
    # a worker died mid-poll: its lease stands until it runs out, then the next poll takes the source
    await pool.execute("update sources set poll_lease_until = now() + interval '20 seconds' where id = $1", source_id)
    assert (await poll(pool, settings, source_id)).skipped == "a poll of this source is already running"
    await pool.execute("update sources set poll_lease_until = now() - interval '1 second' where id = $1", source_id)
    result = await poll(pool, settings, source_id)
    assert (result.skipped, result.error, result.records) == (None, None, 6)
    assert await pool.fetchval("select poll_lease_until from sources where id = $1", source_id) is None
    assert (await poll(pool, settings, 10**9)).skipped == "no such source"


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


async def test_poll_sources_on_one_host_share_its_request_budget(
    pool: asyncpg.Pool, factory: Factory, council_server: CouncilServer, settings: Settings
) -> None:
    """A council's decisions register on the same host as its meetings: each poll of it may ask half as often as it
    could alone (one request every 2 s: 30 a minute alone, 15 when shared by two), and the decisions left wait for
    the next poll."""
    rows = "".join(
        f'<tr><td class="mgMainTxt"><a href="ieDecisionDetails.aspx?ID={i}">Decision {i}</a></td>'
        f'<td class="mgMainTxt">03&#47;11&#47;2025</td></tr>'
        for i in range(1, 61)
    )
    register = f'<table class="mgTabTable" summary="Table of decision summary data"><tbody>{rows}</tbody></table>'
    council_server.set("/mgDelegatedDecisions.aspx", register, content_type="text/html")
    council_server.set("/ieDecisionDetails.aspx", fixture_bytes("moderngov/modgov_decision_detail.html"),
                       content_type="text/html")
    decisions = await factory.source("manchester", kind="moderngov_decisions", poll_interval=timedelta(minutes=1),
                                     url=f"{council_server.url}/mgDelegatedDecisions.aspx")
    stored = "select count(*) from items where source_id = $1"
    alone = await poll(pool, settings, decisions, force=True)
    assert (alone.error, len(council_server.requests)) == (None, 30)  # the register and 29 pages
    assert await pool.fetchval(stored, decisions) == 29
    await factory.source("manchester", url=council_server.url)  # the meetings, on the same host
    council_server.requests.clear()
    shared = await poll(pool, settings, decisions, force=True)
    assert (shared.error, len(council_server.requests)) == (None, 15)  # the register and 14 of the 31 left
    assert await pool.fetchval(stored, decisions) == 43
