"""The demo councils through the whole polling path: served over HTTP, registered as sources, polled, diffed, stored.

The demo runs on a clock the test moves by hand; the pollers read it over HTTP as they would any ModernGov site.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from notifier.councils import add_council, add_source
from notifier.demo import DEMO_COUNCILS, DemoCouncils, start_demo_server
from notifier.demo.data import LONDON, Council, Meeting
from notifier.demo.timeline import SCRIPT, Change
from notifier.ingest.documents import fetch_due_documents
from notifier.ingest.fetch import Fetcher, client_session
from notifier.ingest.poll import poll_source
from notifier.matching.search import preview_filter
from notifier.models import EventType, FilterModel, SourceKind
from notifier.settings import Settings
from notifier.subscriptions import compile_query
from tests.demo.helpers import HWB_ITEMS, Clock

STEP = timedelta(minutes=3)
HWB_DAY = date(2025, 12, 4)


class Demo:
    """The demo server, its clock, and its councils registered as sources in the test database."""

    def __init__(self, councils: DemoCouncils, clock: Clock, base: str) -> None:
        self.councils = councils
        self.clock = clock
        self.base = base
        self.sources: dict[tuple[str, str], int] = {}

    def council(self, slug: str) -> Council:
        return self.councils.current().councils[slug]

    async def register(self, pool: asyncpg.Pool) -> None:
        """What `notifier run --demo` registers, with options for polls seconds apart rather than minutes."""
        # Meeting details near today re-read at every poll; the window reaching back to the fixed meeting of 2025.
        days_back = (datetime.now(LONDON).date() - HWB_DAY).days + 7
        async with pool.acquire() as conn:
            for slug, name, region, nation, path in DEMO_COUNCILS:
                await add_council(conn, slug, name, region=region, nation=nation, website=f"{self.base}{path}")
                for kind in (SourceKind.MODERNGOV, SourceKind.MODERNGOV_DECISIONS):
                    options = {"detail_refresh_minutes": 0, "days_back": days_back, "seconds_per_request": 1}
                    if kind is SourceKind.MODERNGOV_DECISIONS:
                        options = {"seconds_per_request": 1}
                    self.sources[(slug, kind.value)] = await add_source(
                        conn, slug, kind.value, f"{self.base}{path}", interval_minutes=1, options=options
                    )

    async def poll_all(self, pool: asyncpg.Pool, settings: Settings) -> None:
        async with client_session(settings) as session:
            fetcher = Fetcher(session, settings)
            for source_id in self.sources.values():
                result = await poll_source(pool, fetcher, source_id)
                assert (result.skipped, result.error) == (None, None), result


@pytest.fixture
async def demo(pool: asyncpg.Pool) -> AsyncIterator[Demo]:
    # An hour ago, so the demo's "today" never runs ahead of the pollers' (which is the real one).
    start = datetime.now(UTC) - timedelta(hours=1)
    clock = Clock(start)
    councils = DemoCouncils(start, STEP, clock)
    runner: web.AppRunner
    runner, base = await start_demo_server("127.0.0.1", 0, councils)
    try:
        d = Demo(councils, clock, base)
        await d.register(pool)
        yield d
    finally:
        await runner.cleanup()


def shown(day: date, start: time | None = None) -> str:
    """A meeting's date (and time) as event summaries write them."""
    text = f"{day.day} {day:%b} {day.year}"
    return f"{text} {start:%H:%M}" if start is not None else text


def label(council: Council, meeting: Meeting) -> str:
    committee = council.committee(meeting.committee_id)
    assert committee is not None
    return f"{committee.title}, {shown(meeting.day, meeting.start_time)}"


def papers(meeting: Meeting) -> int:
    """The papers the web service lists for a meeting: its items' (the meeting's own are only on its page)."""
    return sum(len(item.documents) for item in meeting.items)


async def new_events(pool: asyncpg.Pool, after: int) -> list[tuple[str, str, str, str]]:
    rows = await pool.fetch(
        """
        select e.council, e.type, i.external_id, e.summary
        from events e join items i on i.id = e.item_id
        where e.id > $1 order by e.id
        """,
        after,
    )
    return [(r["council"], r["type"], r["external_id"], r["summary"]) for r in rows]


async def last_event_id(pool: asyncpg.Pool) -> int:
    value: int = await pool.fetchval("select coalesce(max(id), 0) from events")
    return value


def expected_events(before: Council, after: Council, change: Change) -> list[tuple[str, str, str, str]]:
    """The events a change to one demo council should become, worked out from the demo's own state."""
    slug = change.council
    if change.kind is EventType.DECISION_PUBLISHED:
        out = []
        for decision_id in change.decision_ids:
            decision = after.decision(decision_id)
            assert decision is not None
            summary = f"Decision: {decision.title} ({decision.status})"
            out.append((slug, "decision.published", str(decision_id), summary))
        return out
    assert change.meeting_id is not None
    meeting = after.meeting(change.meeting_id)
    assert meeting is not None
    mid = str(meeting.id)
    if change.kind is EventType.MEETING_SCHEDULED:
        return [(slug, "meeting.scheduled", mid, f"{label(after, meeting)}: meeting scheduled")]
    if change.kind is EventType.MEETING_CANCELLED:
        return [(slug, "meeting.cancelled", mid, f"{label(after, meeting)}: meeting cancelled")]
    if change.kind is EventType.MEETING_RESCHEDULED:
        old = before.meeting(meeting.id)
        assert old is not None
        moved = f"{label(before, old)} moved to {shown(meeting.day, meeting.start_time)}"
        return [(slug, "meeting.rescheduled", mid, moved)]
    if change.kind is EventType.AGENDA_PUBLISHED:
        published = f"agenda published ({papers(meeting)} documents)"
        return [(slug, "agenda.published", mid, f"{label(after, meeting)}: {published}")]
    if change.kind is EventType.MINUTES_PUBLISHED:
        return [(slug, "minutes.published", mid, f"{label(after, meeting)}: minutes published")]
    raise AssertionError(f"no expectation for {change.kind}")


async def test_demo_flow_health_and_wellbeing_board_is_stored_and_searchable(
    pool: asyncpg.Pool, settings: Settings, demo: Demo
) -> None:
    await demo.poll_all(pool, settings)

    meeting = await pool.fetchrow(
        "select * from items where council = 'leicestershire' and kind = 'meeting' and external_id = '7581'"
    )
    assert meeting is not None
    assert (meeting["title"], meeting["committee"], meeting["starts_at"], meeting["status"]) == (
        "Health and Wellbeing Board", "Health and Wellbeing Board", datetime(2025, 12, 4, 14, 0, tzinfo=UTC),
        "confirmed",
    )
    assert meeting["url"] == f"{demo.base}/leicestershire/ieListDocuments.aspx?CId=1038&MId=7581"
    assert meeting["data"]["location"] == "Sparkenhoe Committee Room, County Hall, Glenfield"
    assert (meeting["data"]["agenda_published"], meeting["data"]["minutes_published"]) == (True, True)
    items = await pool.fetch(
        "select title from items where parent_id = $1 and kind = 'agenda_item' order by (data->>'number')::numeric",
        meeting["id"],
    )
    assert [r["title"] for r in items] == HWB_ITEMS
    documents = await pool.fetch(
        """
        select d.title from items d
        where d.kind = 'document'
          and (d.parent_id = $1 or d.parent_id in (select id from items where parent_id = $1))
        order by d.external_id
        """,
        meeting["id"],
    )
    assert [r["title"] for r in documents] == [
        "Minutes , 25/09/2025 Health and Wellbeing Board",
        "Joint Health and Wellbeing Strategy review report",
        "SEND Alliance update",
        "Pandemic planning report",
        "Dementia Strategy progress report",
        "Better Care Fund Q2 report",
    ]

    # Searchable as history search runs it: the meeting, its dementia item and the report, nothing else of it.
    found = await pool.fetch(
        """
        select kind, title from items
        where search @@ $1::tsquery
          and (id = $2 or parent_id = $2 or parent_id in (select id from items where parent_id = $2))
        order by kind, title
        """,
        compile_query('"dementia strategy" OR "better care fund"'),
        meeting["id"],
    )
    assert [tuple(r) for r in found] == [
        ("agenda_item", "Better Care Fund Quarter 2 2025/26 Report"),
        ("agenda_item", "LLR Joint Living Well with Dementia Strategy 2024-2028 - Progress Report"),
        ("document", "Better Care Fund Q2 report"),
        ("document", "Dementia Strategy progress report"),
        ("meeting", "Health and Wellbeing Board"),
    ]
    events = await pool.fetch(
        "select type, summary, changes from events where item_id = $1 order by id", meeting["id"]
    )
    hwb = "Health and Wellbeing Board, 4 Dec 2025 14:00"
    assert [(r["type"], re.sub(r" \(\d+ documents?\)$", "", r["summary"])) for r in events] == [
        ("meeting.scheduled", f"{hwb}: meeting scheduled"),
        ("agenda.published", f"{hwb}: agenda published"),
        ("minutes.published", f"{hwb}: minutes published"),
    ]
    # Every paper of the meeting is announced with its publications (the minutes of the previous meeting, an agenda
    # paper whose title says minutes, may go with either: the diff's call).
    announced = [doc["title"] for r in events for doc in r["changes"].get("documents", [[], []])[1]]
    assert sorted(announced) == sorted(r["title"] for r in documents)

    # Polling again before anything changes finds nothing new.
    last = await last_event_id(pool)
    await demo.poll_all(pool, settings)
    assert await new_events(pool, last) == []


async def test_demo_flow_scripted_changes_become_events(pool: asyncpg.Pool, settings: Settings, demo: Demo) -> None:
    await demo.poll_all(pool, settings)
    seen = set()

    for index in range(len(SCRIPT)):
        before = dict(demo.councils.current().councils)
        last = await last_event_id(pool)
        demo.clock.now = demo.councils.change_time(index)
        state = demo.councils.current()
        (change,) = state.changes[index:]

        await demo.poll_all(pool, settings)

        expected = expected_events(before[change.council], state.councils[change.council], change)
        assert await new_events(pool, last) == expected, (index, change)
        seen.update(kind for _, kind, _, _ in expected)

    assert seen == {
        "meeting.scheduled", "meeting.rescheduled", "meeting.cancelled", "agenda.published", "minutes.published",
        "decision.published",
    }


async def test_demo_flow_stored_meetings_follow_the_demo(pool: asyncpg.Pool, settings: Settings, demo: Demo) -> None:
    await demo.poll_all(pool, settings)
    demo.clock.now = demo.councils.change_time(len(SCRIPT) - 1)
    await demo.poll_all(pool, settings)

    for slug in ("leicestershire", "leicester", "rutland"):
        council = demo.council(slug)
        rows = await pool.fetch(
            "select external_id, starts_at, status from items where council = $1 and kind = 'meeting'", slug
        )
        stored: dict[str, Any] = {r["external_id"]: (r["starts_at"], r["status"]) for r in rows}
        for meeting in council.meetings:
            status = "cancelled" if meeting.cancelled else "rescheduled" if "Rescheduled" in meeting.status else (
                "confirmed"
            )
            assert stored[str(meeting.id)] == (meeting.starts_at.astimezone(UTC), status), (slug, meeting.id)


async def test_demo_flow_papers_are_read_so_their_text_is_searched_with_its_page(
    pool: asyncpg.Pool, settings: Settings, demo: Demo
) -> None:
    await demo.poll_all(pool, settings)
    async with client_session(settings) as session:
        result = await fetch_due_documents(pool, Fetcher(session, settings), settings)
    assert (result.extracted, result.retried, result.failed) == (len(result.item_ids), 0, 0)
    # The Board's dementia report says on its last page what no title says: a respite centre will close.
    titles = await pool.fetch(
        "select title from items where council = 'leicestershire' and search @@ $1::tsquery and kind = 'document'",
        compile_query("respite"),
    )
    assert "Dementia Strategy progress report" in {r["title"] for r in titles}
    preview = await preview_filter(pool, FilterModel(query="respite", councils=["leicestershire"]))
    board = [e for e in preview["items"] if e["item_id"] is not None and e["title"] == "Health and Wellbeing Board"]
    [agenda] = [e for e in board if e["type"] == "agenda.published"]
    [snippet] = agenda["snippets"]  # the first of the agenda's papers that says it
    assert snippet["page"] == 4 and snippet["document"] in {r["title"] for r in titles}
    assert re.search(r"the respite centre at [\w ]+ will close on 31 March", snippet["text"])
