"""Tests for the ModernGov web service adapter, driven by recorded and written fixtures through a fake Fetch."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from notifier.models import ItemKind
from notifier.sources.base import Record, Response, SourceError, SourceState
from notifier.sources.freshness import ReadPlan, next_read_at
from notifier.sources.moderngov import (
    Committee,
    MeetingSummary,
    ModernGovAdapter,
    base_url,
    meeting_status,
    needs_details,
    parse_committees,
    parse_meeting,
    parse_meetings,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "moderngov"
MANCHESTER = "https://democracy.manchester.gov.uk"
SHIRE = "https://democracy.example-shire.gov.uk"

Answer = bytes | Callable[[str], bytes] | Exception


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


class FakeFetch:
    """A `Fetch` answering from fixtures: the first pattern that matches the URL wins; records every URL asked."""

    def __init__(self, routes: Mapping[str, Answer], *, delay: float = 0.0) -> None:
        self.routes = [(re.compile(pattern), answer) for pattern, answer in routes.items()]
        self.delay = delay
        self.asked: list[str] = []
        self.in_flight = 0
        self.peak = 0

    async def __call__(self, url: str, *, conditional: bool = False) -> Response | None:
        self.asked.append(url)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            for pattern, answer in self.routes:
                if pattern.search(url):
                    if isinstance(answer, Exception):
                        raise answer
                    body = answer(url) if callable(answer) else answer
                    return Response(url=url, status=200, body=body, content_type="text/xml; charset=utf-8")
            raise SourceError(f"HTTP 404 Not Found from {url}")
        finally:
            self.in_flight -= 1

    def asked_matching(self, pattern: str) -> list[str]:
        return [u for u in self.asked if re.search(pattern, u)]


def manchester_routes(**overrides: Answer) -> dict[str, Answer]:
    routes: dict[str, Answer] = {
        r"/GetCommittees\?": fixture("committees.xml"),
        r"/GetMeetings\?lCommitteeId=144&": fixture("meetings.xml"),
        r"/GetMeetings\?": fixture("meetings_empty.xml"),
        r"/GetMeeting\?lMeetingId=4966$": fixture("meeting_no_minutes.xml"),
        r"/GetMeeting\?lMeetingId=4967$": fixture("meeting_with_minutes.xml"),
    }
    return merged(overrides, routes)


def merged(overrides: Mapping[str, Answer], routes: Mapping[str, Answer]) -> dict[str, Answer]:
    """Overrides first, so they win over the defaults they shadow."""
    result = dict(overrides)
    for pattern, answer in routes.items():
        result.setdefault(pattern, answer)
    return result


def shire_routes(**overrides: Answer) -> dict[str, Answer]:
    routes: dict[str, Answer] = {
        r"/GetCommittees\?": fixture("committees_deleted.xml"),
        r"/GetMeetings\?lCommitteeId=501&": fixture("meetings_hwb.xml"),
        r"/GetMeetings\?": fixture("meetings_empty.xml"),
        r"/GetMeeting\?lMeetingId=7001$": fixture("meeting_7001_word_html.xml"),
        r"/GetMeeting\?lMeetingId=7002$": fixture("meeting_7002_rescheduled.xml"),
        r"/GetMeeting\?lMeetingId=7003$": fixture("meeting_7003_cancelled_title.xml"),
        r"/GetMeeting\?lMeetingId=7004$": fixture("meeting_7004_no_time.xml"),
    }
    return merged(overrides, routes)


def by_key(records: list[Record]) -> dict[tuple[ItemKind, str], Record]:
    return {(r.kind, r.external_id): r for r in records}


def known_from(records: list[Record]) -> dict[tuple[ItemKind, str], Mapping[str, Any]]:
    """What ingest would hand back next poll: each record's data after a round trip through jsonb."""
    return {(r.kind, r.external_id): json.loads(json.dumps(dict(r.data))) for r in records}


MANCHESTER_NOW = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)
SHIRE_NOW = datetime(2026, 9, 10, 9, 0, tzinfo=UTC)


async def collect(routes: Mapping[str, Answer], url: str, **state: Any) -> tuple[list[Record], FakeFetch]:
    fetch = FakeFetch(routes)
    records = await ModernGovAdapter().collect(url, fetch, SourceState(**state))
    assert records is not None
    return records, fetch


# ---- the recorded Manchester answers ---------------------------------------------------------------------------------


async def test_collect_recorded_manchester_records() -> None:
    records, fetch = await collect(manchester_routes(), MANCHESTER + "/", now=MANCHESTER_NOW)

    assert sorted(fetch.asked) == sorted(
        [
            f"{MANCHESTER}/mgWebService.asmx/GetCommittees?lCommitteeId=0",
            f"{MANCHESTER}/mgWebService.asmx/GetMeetings?lCommitteeId=312&sFromDate=21/12/2025&sToDate=20/05/2026",
            f"{MANCHESTER}/mgWebService.asmx/GetMeetings?lCommitteeId=163&sFromDate=21/12/2025&sToDate=20/05/2026",
            f"{MANCHESTER}/mgWebService.asmx/GetMeetings?lCommitteeId=144&sFromDate=21/12/2025&sToDate=20/05/2026",
            f"{MANCHESTER}/mgWebService.asmx/GetMeeting?lMeetingId=4966",
            f"{MANCHESTER}/mgWebService.asmx/GetMeeting?lMeetingId=4967",
        ]
    )
    assert [(r.kind, r.external_id) for r in records] == [
        (ItemKind.MEETING, "4966"),
        (ItemKind.MEETING, "4967"),
        (ItemKind.AGENDA_ITEM, "18831"),
        (ItemKind.AGENDA_ITEM, "18833"),
        (ItemKind.DOCUMENT, "60860"),
        (ItemKind.DOCUMENT, "60909"),
    ]
    got = by_key(records)
    assert got[(ItemKind.MEETING, "4966")] == Record(
        kind=ItemKind.MEETING,
        external_id="4966",
        title="Audit Committee",
        committee="Audit Committee",
        committee_id="144",
        body="",
        starts_at=datetime(2026, 1, 13, 10, 0, tzinfo=UTC),
        status="cancelled",
        url=f"{MANCHESTER}/ieListDocuments.aspx?CId=144&MId=4966",
        data={
            "location": "Council Antechamber, Level 2, Town Hall Extension",
            "status_text": "Cancelled",
            "agenda_published": False,
            "minutes_published": False,
            "decisions_published": False,
            "webcast": False,
            "time_known": True,
            "_summary": "13/01/2026|10.00 am|Cancelled",
            "_detail_at": "2026-01-20T12:00:00+00:00",
        },
    )
    meeting = got[(ItemKind.MEETING, "4967")]
    assert meeting.status == "confirmed"
    assert meeting.starts_at == datetime(2026, 2, 10, 10, 0, tzinfo=UTC)
    assert meeting.body == (
        "1. Minutes\n"
        "To approve as a correct record the minutes of the meeting held on 25 November 2025.\n"
        "9. Work Programme\n"
        "The report of the Governance and Scrutiny Support Unit, attached."
    )
    assert (meeting.data["agenda_published"], meeting.data["minutes_published"]) == (True, True)
    assert got[(ItemKind.AGENDA_ITEM, "18833")] == Record(
        kind=ItemKind.AGENDA_ITEM,
        external_id="18833",
        title="Work Programme",
        committee="Audit Committee",
        committee_id="144",
        body="The report of the Governance and Scrutiny Support Unit, attached.",
        starts_at=datetime(2026, 2, 10, 10, 0, tzinfo=UTC),
        url=f"{MANCHESTER}/ieListDocuments.aspx?CId=144&MId=4967",
        parent=(ItemKind.MEETING, "4967"),
        data={
            "number": "9.",
            "minutes": (
                "The Committee considered a report of the Governance and Scrutiny Support Unit which set out its "
                "future Work Programme for the remainder of 2025/26 municipal year."
            ),
            "is_decision": False,
        },
    )
    assert got[(ItemKind.DOCUMENT, "60860")] == Record(
        kind=ItemKind.DOCUMENT,
        external_id="60860",
        title="6 - CHAIR APPROVED Minutes Audit Committee 25 Nov 2025",
        committee="Audit Committee",
        committee_id="144",
        starts_at=datetime(2026, 2, 10, 10, 0, tzinfo=UTC),
        url=f"{MANCHESTER}/mgConvert2PDF.aspx?ID=60860",
        parent=(ItemKind.AGENDA_ITEM, "18831"),
        published_at=datetime(2026, 2, 2, 0, 0, tzinfo=UTC),
        data={"is_link": False},
    )


async def test_collect_records_data_is_json() -> None:
    records, _ = await collect(shire_routes(), SHIRE, now=SHIRE_NOW)
    for r in records:
        assert json.loads(json.dumps(dict(r.data))) == dict(r.data)
        assert r.starts_at is None or r.starts_at.tzinfo == UTC


# ---- committees ------------------------------------------------------------------------------------------------------


def test_committees_skip_deleted_keep_expired() -> None:
    assert parse_committees(fixture("committees_deleted.xml")) == [
        Committee("501", "Health and Wellbeing Board", expired=False),
        Committee("502", "Cabinet", expired=False),
        Committee("504", "Covid-19 Recovery Board", expired=True),
    ]
    assert parse_committees(fixture("committees.xml")) == [
        Committee("312", "Appointment Sub Committee for Director of Adult Social Services", expired=True),
        Committee("163", "Art Galleries Committee", expired=False),
        Committee("144", "Audit Committee", expired=False),
    ]


async def test_collect_committees_deleted_not_asked() -> None:
    _, fetch = await collect(shire_routes(), SHIRE, now=SHIRE_NOW)
    asked = {re.search(r"lCommitteeId=(\d+)", u)[1] for u in fetch.asked_matching("GetMeetings")}  # type: ignore[index]
    assert asked == {"501", "502", "504"}


@pytest.mark.parametrize("option", [["501", "504"], [501, 504], "501, 504", ("504", "501")])
async def test_collect_committees_option(option: Any) -> None:
    _, fetch = await collect(shire_routes(), SHIRE, now=SHIRE_NOW, options={"committees": option})
    asked = sorted(re.search(r"lCommitteeId=(\d+)", u)[1] for u in fetch.asked_matching("GetMeetings"))  # type: ignore[index]
    assert asked == ["501", "504"]


def test_committees_namespaced_and_wrapped_answers() -> None:
    plain = fixture("committees.xml").decode()
    namespaced = plain.replace("<committees>", '<committees xmlns="http://moderngov.co.uk/namespaces">')
    wrapped = (
        '<?xml version="1.0" encoding="utf-8"?>\n<string xmlns="http://moderngov.co.uk/namespaces">'
        + plain.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        + "</string>"
    )
    expected = [c.id for c in parse_committees(plain.encode())]
    assert [c.id for c in parse_committees(namespaced.encode())] == expected
    assert [c.id for c in parse_committees(wrapped.encode())] == expected


# ---- the window ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "options", "window"),
    [
        (MANCHESTER_NOW, {}, "sFromDate=21/12/2025&sToDate=20/05/2026"),
        # 23:30 UTC on 29 March is already 30 March in London (BST).
        (
            datetime(2026, 3, 29, 23, 30, tzinfo=UTC),
            {"days_back": 7, "days_ahead": 14},
            "sFromDate=23/03/2026&sToDate=13/04/2026",
        ),
        (
            datetime(2026, 3, 29, 23, 30, tzinfo=UTC),
            {"days_back": "0", "days_ahead": "0"},
            "sFromDate=30/03/2026&sToDate=30/03/2026",
        ),
    ],
)
async def test_collect_meetings_window(now: datetime, options: dict[str, Any], window: str) -> None:
    _, fetch = await collect(manchester_routes(), MANCHESTER, now=now, options=options)
    windows = {u.split("&", 1)[1] for u in fetch.asked_matching("GetMeetings")}
    assert windows == {window}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"days_back": -1}, "option days_back must be from 0 to 3660, not -1"),
        ({"days_ahead": "soon"}, "option days_ahead must be a whole number, not 'soon'"),
        ({"days_ahead": True}, "option days_ahead must be a whole number, not True"),
        ({"committees": {"id": 1}}, "option committees must be a list of committee ids, not {'id': 1}"),
    ],
)
async def test_collect_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(SourceError) as e:
        await collect(manchester_routes(), MANCHESTER, now=MANCHESTER_NOW, options=options)
    assert str(e.value) == message


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("https://democracy.leics.gov.uk", "https://democracy.leics.gov.uk"),
        ("https://democracy.leics.gov.uk/", "https://democracy.leics.gov.uk"),
        ("https://democracy.leics.gov.uk/mgWebService.asmx", "https://democracy.leics.gov.uk"),
        ("https://democracy.leics.gov.uk/mgWebService.asmx/GetCommittees?x=1", "https://democracy.leics.gov.uk"),
        ("https://democracy.leics.gov.uk/mgCalendarMonthView.aspx?GL=1#x", "https://democracy.leics.gov.uk"),
        ("https://www.example.gov.uk/democracy/", "https://www.example.gov.uk/democracy"),
        ("  https://www.example.gov.uk/democracy/ieListMeetings.aspx?CId=1 ", "https://www.example.gov.uk/democracy"),
    ],
)
def test_base_url_forms(url: str, base: str) -> None:
    assert base_url(url) == base


@pytest.mark.parametrize("url", ["democracy.leics.gov.uk", "ftp://democracy.leics.gov.uk", ""])
def test_base_url_refuses(url: str) -> None:
    with pytest.raises(SourceError, match="not an http"):
        base_url(url)


# ---- meetings: times, statuses, titles, text -------------------------------------------------------------------------


async def test_collect_meeting_times_bst_and_gmt() -> None:
    records, _ = await collect(shire_routes(), SHIRE, now=SHIRE_NOW)
    meetings = {r.external_id: r for r in records if r.kind is ItemKind.MEETING}
    assert {mid: (m.starts_at, m.data["time_known"]) for mid, m in meetings.items()} == {
        "7001": (datetime(2026, 9, 24, 13, 0, tzinfo=UTC), True),  # 2.00 pm BST
        "7002": (datetime(2026, 12, 3, 10, 0, tzinfo=UTC), True),  # 10:00 GMT
        "7003": (datetime(2026, 10, 15, 8, 30, tzinfo=UTC), True),  # 9.30 am BST
        "7004": (datetime(2026, 11, 5, 0, 0, tzinfo=UTC), False),  # no time: local midnight (GMT)
    }


async def test_collect_meeting_statuses() -> None:
    records, _ = await collect(shire_routes(), SHIRE, now=SHIRE_NOW)
    meetings = {r.external_id: r for r in records if r.kind is ItemKind.MEETING}
    assert {mid: (m.status, m.data["status_text"], m.title) for mid, m in meetings.items()} == {
        "7001": ("confirmed", "Confirmed", "Health and Wellbeing Board"),
        "7002": ("rescheduled", "Confirmed; Rescheduled from 26 November 2026", "Health and Wellbeing Board"),
        # Cancelled only in its own title: the status says so, and the title stays the committee's.
        "7003": ("cancelled", "Confirmed", "Health and Wellbeing Board"),
        "7004": ("confirmed", "Confirmed", "Health and Wellbeing Board"),
    }


@pytest.mark.parametrize(
    ("status_text", "titles", "status"),
    [
        ("Confirmed", (), "confirmed"),
        ("confirmed", ("Audit Committee",), "confirmed"),
        ("Cancelled", (), "cancelled"),
        ("CANCELED", (), "cancelled"),
        ("Confirmed; Cancelled", (), "cancelled"),
        ("Meeting cancelled - no business", (), "cancelled"),
        ("Cancellation", (), "cancelled"),
        ("Confirmed", ("CANCELLED - Audit Committee",), "cancelled"),
        ("Confirmed", ("Audit Committee (Cancelled)",), "cancelled"),
        ("Confirmed", ("Cancellation Review Panel",), "confirmed"),
        ("Confirmed; Rescheduled from 24 September 2026", (), "rescheduled"),
        ("Rescheduled", (), "rescheduled"),
        ("Re-scheduled to 3 October", (), "rescheduled"),
        ("Moved to 3 October", (), "rescheduled"),
        ("Postponed", (), "postponed"),
        ("Confirmed", ("POSTPONED Audit Committee",), "postponed"),
        ("Provisional", (), "provisional"),
        ("Not confirmed", (), "provisional"),
        ("Unconfirmed", (), "provisional"),
        ("Date to be confirmed", (), "provisional"),
        ("", (), "unknown"),
        ("Quorum pending", (), "unknown"),
    ],
)
def test_meeting_status_normalised(status_text: str, titles: tuple[str, ...], status: str) -> None:
    assert meeting_status(status_text, *titles) == status


async def test_collect_double_escaped_titles() -> None:
    records, _ = await collect(shire_routes(), SHIRE, now=SHIRE_NOW)
    items = {r.external_id: r.title for r in records if r.kind is ItemKind.AGENDA_ITEM}
    assert items == {"9101": "Chair's Announcements", "9102": "Dementia Strategy 2026–2031"}


async def test_collect_word_html_agenda_text() -> None:
    records, _ = await collect(shire_routes(), SHIRE, now=SHIRE_NOW)
    got = by_key(records)
    item = got[(ItemKind.AGENDA_ITEM, "9102")]
    assert item.body == (
        "To receive a report of the Director of Public Health on the Dementia Strategy 2026–2031.\n"
        "(a) memory assessment waiting times;\n"
        "(b) carers' support & respite.\n"
        "Appendix A – action plan\n"
        "Appendix B\n"
        "Equality impact assessment"
    )
    assert item.data == {
        "number": "2.",
        "minutes": "RESOLVED:\nThat the Dementia Strategy 2026–2031 be approved.",
        "is_decision": True,
    }
    assert got[(ItemKind.AGENDA_ITEM, "9101")].body == ""
    meeting = got[(ItemKind.MEETING, "7001")]
    assert meeting.body == "1. Chair's Announcements\n2. Dementia Strategy 2026–2031\n" + item.body
    assert meeting.data == {
        "location": "County Hall, Glenfield, Sparkenhoe Committee Room",
        "status_text": "Confirmed",
        "agenda_published": True,
        "minutes_published": True,
        "decisions_published": False,
        "webcast": True,
        "time_known": True,
        "_summary": "24/09/2026|2.00 pm|Confirmed",
        "_detail_at": "2026-09-10T09:00:00+00:00",
    }


async def test_collect_item_not_displayed_is_left_out() -> None:
    records, _ = await collect(shire_routes(), SHIRE, now=SHIRE_NOW)
    assert (ItemKind.AGENDA_ITEM, "9103") not in by_key(records)


async def test_collect_documents_and_dates() -> None:
    records, _ = await collect(shire_routes(), SHIRE, now=SHIRE_NOW)
    documents = {r.external_id: r for r in records if r.kind is ItemKind.DOCUMENT}
    assert {doc_id: (d.title, d.parent, d.url, d.published_at) for doc_id, d in documents.items()} == {
        "81001": (
            "Dementia Strategy 2026-2031",
            (ItemKind.AGENDA_ITEM, "9102"),
            f"{SHIRE}/mgConvert2PDF.aspx?ID=81001",
            datetime(2026, 9, 15, 23, 0, tzinfo=UTC),  # 16/09/2026 local midnight, BST
        ),
        "81002": (
            "Appendix A - action plan",
            (ItemKind.AGENDA_ITEM, "9102"),
            f"{SHIRE}/documents/s81002/Appendix%20A%20-%20action%20plan.pdf",
            datetime(2026, 9, 15, 23, 0, tzinfo=UTC),
        ),
        "81010": (
            "Agenda frontsheet Health and Wellbeing Board, 24/09/2026 14:00",
            (ItemKind.MEETING, "7001"),
            f"{SHIRE}/documents/g7001/Agenda%20frontsheet%2024th-Sep-2026%2014.00%20Health%20and%20Wellbeing%20Board.pdf?T=0",
            datetime(2026, 9, 15, 23, 0, tzinfo=UTC),
        ),
        "81011": (
            "Printed minutes Health and Wellbeing Board, 24/09/2026 14:00",
            (ItemKind.MEETING, "7001"),
            f"{SHIRE}/documents/g7001/Printed%20minutes%2024th-Sep-2026%2014.00%20Health%20and%20Wellbeing%20Board.pdf?T=1",
            datetime(2026, 10, 1, 23, 0, tzinfo=UTC),
        ),
    }
    # The restricted (exempt) appendix is not public.
    assert "81003" not in documents
    for d in documents.values():
        assert (d.committee, d.committee_id, d.starts_at) == (
            "Health and Wellbeing Board",
            "501",
            datetime(2026, 9, 24, 13, 0, tzinfo=UTC),
        )


def test_parse_meeting_unparseable_time_is_unknown() -> None:
    body = fixture("meeting_7004_no_time.xml").replace(
        b"<meetingtime>\n  </meetingtime>", b"<meetingtime>TBC</meetingtime>"
    )
    summary = MeetingSummary("7004", "501", "Health and Wellbeing Board", "05/11/2026", "TBC", "Confirmed", "")
    [meeting] = parse_meeting(body, summary=summary, base=SHIRE, tz="Europe/London", fetched_at=SHIRE_NOW)
    assert (meeting.starts_at, meeting.data["time_known"]) == (datetime(2026, 11, 5, 0, 0, tzinfo=UTC), False)


def test_parse_meeting_not_displayed_gives_nothing() -> None:
    body = fixture("meeting_7002_rescheduled.xml").replace(
        b"<isdisplayallowed>True</isdisplayallowed>", b"<isdisplayallowed>False</isdisplayallowed>"
    )
    summary = MeetingSummary("7002", "501", "Health and Wellbeing Board", "03/12/2026", "10:00", "Confirmed", "")
    assert parse_meeting(body, summary=summary, base=SHIRE, tz="Europe/London", fetched_at=SHIRE_NOW) == []


# ---- the details refresh policy --------------------------------------------------------------------------------------


def shire_quiet() -> datetime:
    """The last moment before any shire meeting read at SHIRE_NOW is due again (7001, three weeks ahead, first)."""
    return next_read_at("7001", SHIRE_NOW, ReadPlan().hot_every) - timedelta(microseconds=1)


async def test_collect_second_poll_skips_unchanged_meetings() -> None:
    first, _ = await collect(shire_routes(), SHIRE, now=SHIRE_NOW)
    second, fetch = await collect(shire_routes(), SHIRE, now=shire_quiet(), known=known_from(first))
    assert fetch.asked_matching("GetMeeting\\?") == []
    assert second == []
    assert len(fetch.asked_matching("GetMeetings")) == 3


async def test_collect_reads_meetings_again_by_proximity() -> None:
    first, _ = await collect(shire_routes(), SHIRE, now=SHIRE_NOW)
    known = known_from(first)
    # 7001 (24 September) is within three weeks of 10 September, read again within 8 minutes; the others, further
    # ahead, daily.
    second, fetch = await collect(shire_routes(), SHIRE, now=SHIRE_NOW + timedelta(minutes=8), known=known)
    assert fetch.asked_matching("GetMeeting\\?") == [f"{SHIRE}/mgWebService.asmx/GetMeeting?lMeetingId=7001"]
    assert {(r.kind, r.external_id) for r in second} == {
        (ItemKind.MEETING, "7001"),
        (ItemKind.AGENDA_ITEM, "9101"),
        (ItemKind.AGENDA_ITEM, "9102"),
        (ItemKind.DOCUMENT, "81001"),
        (ItemKind.DOCUMENT, "81002"),
        (ItemKind.DOCUMENT, "81010"),
        (ItemKind.DOCUMENT, "81011"),
    }
    assert by_key(second)[(ItemKind.MEETING, "7001")].data["_detail_at"] == "2026-09-10T09:08:00+00:00"
    third, fetch = await collect(shire_routes(), SHIRE, now=SHIRE_NOW + timedelta(days=1), known=known)
    assert sorted(fetch.asked_matching("GetMeeting\\?")) == [
        f"{SHIRE}/mgWebService.asmx/GetMeeting?lMeetingId={mid}" for mid in ("7001", "7002", "7003", "7004")
    ]
    assert len(third) == len(first)


async def test_collect_changed_summary_refetches() -> None:
    first, _ = await collect(shire_routes(), SHIRE, now=SHIRE_NOW)
    known = known_from(first)
    known[(ItemKind.MEETING, "7002")] = {**known[(ItemKind.MEETING, "7002")], "_summary": "26/11/2026|10:00|Confirmed"}
    second, fetch = await collect(shire_routes(), SHIRE, now=shire_quiet(), known=known)
    assert fetch.asked_matching("GetMeeting\\?") == [f"{SHIRE}/mgWebService.asmx/GetMeeting?lMeetingId=7002"]
    assert [(r.kind, r.external_id, r.status) for r in second] == [(ItemKind.MEETING, "7002", "rescheduled")]


SUMMARY = MeetingSummary("1", "2", "Cabinet", "24/09/2026", "2.00 pm", "Confirmed", "")
NOW = datetime(2026, 9, 10, 12, 0, tzinfo=UTC)
TODAY = date(2026, 9, 10)


@pytest.mark.parametrize(
    ("known", "meeting_day", "needed"),
    [
        (None, date(2026, 9, 24), True),
        ({}, date(2026, 9, 24), True),
        (
            {"_summary": "24/09/2026|2.00 pm|Cancelled", "_detail_at": "2026-09-10T11:00:00+00:00"},
            date(2026, 9, 24),
            True,
        ),
        ({"_summary": SUMMARY.summary}, date(2026, 9, 24), True),
        ({"_summary": SUMMARY.summary, "_detail_at": "yesterday"}, date(2026, 9, 24), True),
        ({"_summary": SUMMARY.summary, "_detail_at": 12}, date(2026, 9, 24), True),
        # hot: from a week ago to three weeks ahead, read again every 8 minutes
        ({"_summary": SUMMARY.summary, "_detail_at": "2026-09-10T12:00:00+00:00"}, date(2026, 9, 24), False),
        ({"_summary": SUMMARY.summary, "_detail_at": "2026-09-10T11:52:00+00:00"}, date(2026, 9, 24), True),
        ({"_summary": SUMMARY.summary, "_detail_at": "2026-09-10T06:00:00"}, date(2026, 9, 24), True),
        ({"_summary": SUMMARY.summary, "_detail_at": "2026-09-10T11:52:00+00:00"}, date(2026, 10, 1), True),
        ({"_summary": SUMMARY.summary, "_detail_at": "2026-09-10T11:52:00+00:00"}, date(2026, 9, 3), True),
        # warm: daily
        ({"_summary": SUMMARY.summary, "_detail_at": "2026-09-10T12:00:00+00:00"}, date(2026, 10, 2), False),
        ({"_summary": SUMMARY.summary, "_detail_at": "2026-09-09T12:00:00+00:00"}, date(2026, 10, 2), True),
        ({"_summary": SUMMARY.summary, "_detail_at": "2026-09-10T12:00:00+00:00"}, date(2026, 9, 2), False),
        ({"_summary": SUMMARY.summary, "_detail_at": "2026-09-09T12:00:00+00:00"}, date(2026, 9, 2), True),
        # cold: weekly
        ({"_summary": SUMMARY.summary, "_detail_at": "2026-09-10T12:00:00+00:00"}, date(2027, 1, 1), False),
        ({"_summary": SUMMARY.summary, "_detail_at": "2026-09-03T12:00:00+00:00"}, date(2027, 1, 1), True),
    ],
)
def test_needs_details_policy(known: dict[str, Any] | None, meeting_day: date, needed: bool) -> None:
    assert (needs_details(SUMMARY, known, now=NOW, meeting_day=meeting_day, today=TODAY) is not None) is needed


def test_meeting_summary_includes_own_title() -> None:
    assert SUMMARY.summary == "24/09/2026|2.00 pm|Confirmed"
    titled = MeetingSummary("1", "2", "Cabinet", "24/09/2026", "2.00 pm", "Confirmed", "CANCELLED - Cabinet")
    assert titled.summary == "24/09/2026|2.00 pm|Confirmed|CANCELLED - Cabinet"


# ---- hostile and broken answers --------------------------------------------------------------------------------------

GETMEETINGS = "ModernGov GetMeetings response for committee 144"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b"<!DOCTYPE html>\n<html><body>Please sign in</body></html>",
            f"{GETMEETINGS} is HTML, not XML (starts '<!DOCTYPE html>...')",
        ),
        (fixture("error_page_200.html"), f"{GETMEETINGS} is HTML, not XML"),
        (b"", f"{GETMEETINGS} is empty"),
        (b"  \r\n  ", f"{GETMEETINGS} is empty"),
        (fixture("meetings.xml")[:-60], f"{GETMEETINGS} is not well-formed XML"),
        (fixture("billion_laughs.xml"), f"{GETMEETINGS} declares XML entities, which are refused"),
        (fixture("xxe.xml"), f"{GETMEETINGS} declares XML entities, which are refused"),
        (fixture("wrong_encoding.xml"), f"{GETMEETINGS} is not well-formed XML"),
        (
            fixture("error_answer.xml"),
            f"{GETMEETINGS} reports an error: 'Invalid date range: sFromDate must be in the format dd/mm/yyyy'",
        ),
        (b"<error>Service unavailable</error>", f"{GETMEETINGS} is an error: 'Service unavailable'"),
        (
            fixture("committees.xml"),
            f"{GETMEETINGS} has root element <committees>, expected <getmeetings> or <meetings>",
        ),
        (
            b"<getmeetings><committee><committeemeetings><meeting><meetingdate>13/01/2026</meetingdate></meeting>"
            b"</committeemeetings></committee></getmeetings>",
            f"{GETMEETINGS} has a meeting without an id",
        ),
    ],
)
async def test_collect_hostile_getmeetings_fails_the_poll(body: bytes, message: str) -> None:
    with pytest.raises(SourceError) as e:
        await collect(manchester_routes(**{r"/GetMeetings\?lCommitteeId=144&": body}), MANCHESTER, now=MANCHESTER_NOW)
    assert str(e.value).startswith(message), str(e.value)


async def test_collect_one_committee_failing_fails_the_poll() -> None:
    routes = manchester_routes(**{r"/GetMeetings\?lCommitteeId=163&": SourceError("HTTP 500 Internal Server Error")})
    with pytest.raises(SourceError, match=r"^HTTP 500 Internal Server Error$"):
        await collect(routes, MANCHESTER, now=MANCHESTER_NOW)


@pytest.mark.parametrize(
    ("route", "body", "message"),
    [
        (
            r"/GetCommittees\?",
            b"<html><body>Down for maintenance</body></html>",
            "ModernGov GetCommittees response is HTML",
        ),
        (
            r"/GetCommittees\?",
            fixture("meetings.xml"),
            "ModernGov GetCommittees response has root element <getmeetings>",
        ),
        (
            r"/GetCommittees\?",
            b"<committees><committee><committeedeleted>False</committeedeleted></committee></committees>",
            "ModernGov GetCommittees response has a committee without an id",
        ),
        (
            r"/GetCommittees\?",
            b"<committees><committee><committeeid>1</committeeid><committeedeleted>Perhaps</committeedeleted>"
            b"</committee></committees>",
            "ModernGov GetCommittees response: <committeedeleted> not a boolean: 'Perhaps'",
        ),
        (r"/GetMeeting\?lMeetingId=4967$", b"", "ModernGov GetMeeting response for meeting 4967 is empty"),
        (
            r"/GetMeeting\?lMeetingId=4967$",
            b'<?xml version="1.0" encoding="utf-8"?>\n<meeting>\n  \n</meeting>',
            "ModernGov GetMeeting response for meeting 4967 holds no meeting (no meetingid)",
        ),
        (
            r"/GetMeeting\?lMeetingId=4967$",
            fixture("meeting_no_minutes.xml"),
            "ModernGov GetMeeting response for meeting 4967 describes meeting 4966",
        ),
        (
            r"/GetMeeting\?lMeetingId=4967$",
            fixture("meeting_with_minutes.xml").replace(
                b"<meetingdate>10/02/2026</meetingdate>", b"<meetingdate>soon</meetingdate>", 1
            ),
            "ModernGov GetMeeting response for meeting 4967: meetingdate: not a date: 'soon'",
        ),
        (
            r"/GetMeeting\?lMeetingId=4967$",
            fixture("meeting_with_minutes.xml").replace(
                b"<publicationdate>02/02/2026<", b"<publicationdate>02/14/2026<", 1
            ),
            "ModernGov GetMeeting response for meeting 4967: publicationdate of document 60860: not a valid date",
        ),
    ],
)
async def test_collect_hostile_other_answers_fail_the_poll(route: str, body: bytes, message: str) -> None:
    with pytest.raises(SourceError) as e:
        await collect(manchester_routes(**{route: body}), MANCHESTER, now=MANCHESTER_NOW)
    assert str(e.value).startswith(message), str(e.value)


async def test_collect_huge_getmeetings_parses() -> None:
    count = 30_000
    meeting = (
        "<meeting><meetingid>{n}</meetingid><meetingdate>10/02/2026</meetingdate>"
        "<meetingstatus>Confirmed</meetingstatus><meetingtime>10.00 am</meetingtime>"
        "<iswebcast>False</iswebcast></meeting>\n"
    )
    body = (
        '<?xml version="1.0" encoding="utf-8"?>\n<getmeetings><committee><committeeid>144</committeeid>'
        "<committeetitle>Audit Committee</committeetitle><committeemeetings>"
        + "".join(meeting.format(n=n) for n in range(count))
        + "</committeemeetings></committee></getmeetings>"
    ).encode()
    assert len(body) > 5_000_000
    known = {
        (ItemKind.MEETING, str(n)): {
            "_summary": "10/02/2026|10.00 am|Confirmed",
            "_detail_at": MANCHESTER_NOW.isoformat(),
        }
        for n in range(count)
    }
    known[(ItemKind.MEETING, "17")] = {}
    routes = manchester_routes(**{r"/GetMeetings\?lCommitteeId=144&": body})
    routes[r"/GetMeeting\?lMeetingId=17$"] = fixture("meeting_with_minutes.xml").replace(b">4967<", b">17<", 1)
    records, fetch = await collect(routes, MANCHESTER, now=MANCHESTER_NOW, known=known)
    assert fetch.asked_matching("GetMeeting\\?") == [f"{MANCHESTER}/mgWebService.asmx/GetMeeting?lMeetingId=17"]
    assert [(r.kind, r.external_id) for r in records][:1] == [(ItemKind.MEETING, "17")]


def test_parse_meetings_summaries() -> None:
    committee = Committee("144", "Audit Committee", expired=False)
    assert parse_meetings(fixture("meetings.xml"), committee=committee) == [
        MeetingSummary("4966", "144", "Audit Committee", "13/01/2026", "10.00 am", "Cancelled", ""),
        MeetingSummary("4967", "144", "Audit Committee", "10/02/2026", "10.00 am", "Confirmed", ""),
    ]
    assert parse_meetings(fixture("meetings_empty.xml"), committee=committee) == []


# ---- concurrency -----------------------------------------------------------------------------------------------------


async def test_collect_limits_its_own_concurrency() -> None:
    committees = "".join(
        f"<committee><committeeid>{n}</committeeid><committeetitle>Committee {n}</committeetitle>"
        "<committeedeleted>False</committeedeleted><committeeexpired>False</committeeexpired></committee>"
        for n in range(1, 13)
    )
    routes: dict[str, Answer] = {
        r"/GetCommittees\?": f"<committees>{committees}</committees>".encode(),
        r"/GetMeetings\?": fixture("meetings_empty.xml"),
    }
    fetch = FakeFetch(routes, delay=0.005)
    assert await ModernGovAdapter().collect(MANCHESTER, fetch, SourceState(now=MANCHESTER_NOW)) == []
    assert len(fetch.asked_matching("GetMeetings")) == 12
    assert fetch.peak == 4


# ---- element names ---------------------------------------------------------------------------------------------------

_TAG = re.compile(rb"<(/?)([A-Za-z][A-Za-z0-9_.-]*)")


@pytest.mark.parametrize("fixture_name", ["meeting_with_minutes.xml", "meeting_7001_word_html.xml"])
@pytest.mark.parametrize(
    "spelling", ["upper", "capitalised", "namespaced", "prefixed", "wrapped", "capitalised, xmlns in a text"]
)
def test_parse_meeting_reads_any_spelling_of_element_names(fixture_name: str, spelling: str) -> None:
    # Names are folded to lower case and stripped of namespaces; only the elements that need it are renamed.
    plain = fixture(fixture_name)
    if "xmlns in a text" in spelling:
        # Word HTML pasted into an agenda, escaped: "xmlns" in the bytes, but nothing in a namespace.
        plain = plain.replace(
            b"<agendatext>", b'<agendatext>&lt;html xmlns:o="urn:schemas-microsoft-com:office:office"&gt;', 1
        )
    mid = re.search(rb"<meetingid>(\d+)<", plain)[1].decode()  # type: ignore[index]
    day = re.search(rb"<meetingdate>([^<]+)<", plain)[1].decode()  # type: ignore[index]
    body = plain
    if spelling == "upper":
        body = _TAG.sub(lambda m: b"<" + m[1] + m[2].upper(), plain)
    elif spelling.startswith("capitalised"):
        body = _TAG.sub(lambda m: b"<" + m[1] + m[2][:1].upper() + m[2][1:], plain)
    elif spelling == "namespaced":
        body = plain.replace(b"<meeting>", b'<meeting xmlns="http://moderngov.co.uk/namespaces">', 1)
    elif spelling == "prefixed":
        body = _TAG.sub(lambda m: b"<" + m[1] + b"mg:" + m[2], plain).replace(
            b"<mg:meeting>", b'<mg:meeting xmlns:mg="http://moderngov.co.uk/namespaces">', 1
        )
    elif spelling == "wrapped":
        text = plain.decode().split("?>", 1)[1]
        escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        body = f'<string xmlns="http://moderngov.co.uk/namespaces">{escaped}</string>'.encode()
    summary = MeetingSummary(mid, "501", "Health and Wellbeing Board", day, "2.00 pm", "Confirmed", "")
    expected = parse_meeting(plain, summary=summary, base=SHIRE, tz="Europe/London", fetched_at=SHIRE_NOW)
    assert len(expected) >= 5
    assert parse_meeting(body, summary=summary, base=SHIRE, tz="Europe/London", fetched_at=SHIRE_NOW) == expected
