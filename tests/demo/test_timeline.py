"""The demo councils over time: the opening script, the generated cycle, and what each change shows when served."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from lxml import etree
from lxml import html as lxml_html

from notifier.demo import DemoCouncils
from notifier.demo.timeline import SCRIPT
from notifier.models import EventType
from tests.demo.helpers import START, STEP, Clock, css, get_html, get_xml, meetings_listed, text, words

# ---- change over time -----------------------------------------------------------------------------------------

SCRIPTED = [
    (EventType.MEETING_SCHEDULED, "leicestershire", 7640),
    (EventType.MEETING_RESCHEDULED, "leicestershire", 7612),
    (EventType.MEETING_CANCELLED, "rutland", 3341),
    (EventType.AGENDA_PUBLISHED, "leicestershire", 7618),
    (EventType.DECISION_PUBLISHED, "leicestershire", 7605),
    (EventType.MINUTES_PUBLISHED, "leicestershire", 7609),
    (EventType.MEETING_SCHEDULED, "leicester", 13940),
    (EventType.MEETING_RESCHEDULED, "rutland", 3338),
    (EventType.MEETING_CANCELLED, "leicester", 13905),
    (EventType.AGENDA_PUBLISHED, "rutland", 3343),
    (EventType.DECISION_PUBLISHED, "leicester", None),
    (EventType.MINUTES_PUBLISHED, "leicester", 13897),
]


def test_script_changes_in_order(councils: DemoCouncils) -> None:
    assert len(SCRIPT) == len(SCRIPTED)
    assert councils.state_at(START + STEP - timedelta(seconds=1)).changes == ()
    for steps, expected in enumerate(SCRIPTED, start=1):
        state = councils.state_at(START + steps * STEP)
        assert len(state.changes) == steps
        change = state.changes[-1]
        assert (change.kind, change.council, change.meeting_id) == expected
        assert change.at == START + steps * STEP


async def test_clock_new_meeting_scheduled(client: TestClient[Any, Any], clock: Clock) -> None:
    path = "/leicestershire/mgWebService.asmx/GetMeetings?lCommitteeId=1038&sFromDate=01/04/2026&sToDate=30/04/2026"
    assert meetings_listed(await get_xml(client, path)) == []
    clock.advance(1)
    assert meetings_listed(await get_xml(client, path)) == [("7640", "16/04/2026", "2.00 pm", "Confirmed")]


async def test_clock_meeting_rescheduled(client: TestClient[Any, Any], clock: Clock) -> None:
    path = "/leicestershire/mgWebService.asmx/GetMeeting?lMeetingId=7612"
    before = await get_xml(client, path)
    assert [text(before, t) for t in ("meetingdate", "meetingtime", "meetingstatus")] == [
        "11/03/2026", "10.00 am", "Confirmed",
    ]
    clock.advance(2)
    after = await get_xml(client, path)
    assert [text(after, t) for t in ("meetingid", "meetingdate", "meetingtime", "meetingstatus")] == [
        "7612", "16/03/2026", "10.00 am", "Confirmed; Rescheduled from 11 March 2026",
    ]
    clock.advance(6)
    rutland = await get_xml(client, "/rutland/mgWebService.asmx/GetMeeting?lMeetingId=3338")
    assert [text(rutland, t) for t in ("meetingdate", "meetingtime", "meetingstatus")] == [
        "12/03/2026", "2.00 pm", "Confirmed; Rescheduled from 10 March 2026",
    ]


async def test_clock_meeting_cancelled(client: TestClient[Any, Any], clock: Clock) -> None:
    path = "/rutland/mgWebService.asmx/GetMeetings?lCommitteeId=234&sFromDate=01/03/2026&sToDate=31/03/2026"
    assert meetings_listed(await get_xml(client, path)) == [("3341", "17/03/2026", "6.00 pm", "Confirmed")]
    clock.advance(3)
    assert meetings_listed(await get_xml(client, path)) == [("3341", "17/03/2026", "6.00 pm", "Cancelled")]
    page = await get_html(client, "/rutland/ieListDocuments.aspx?CId=234&MId=3341")
    assert words(css(page, "p.mgWarningTxt")[0].text_content()) == "This meeting has been cancelled."
    rss = etree.fromstring(await (await client.get("/rutland/mgRss.aspx?XXR=0")).read())
    assert [rss.findtext("channel/item/title"), rss.findtext("channel/item/description")] == [
        "Planning and Licensing Committee - Tuesday, 17th March, 2026 6.00 pm", "Meeting cancelled",
    ]


async def test_clock_agenda_published(client: TestClient[Any, Any], clock: Clock) -> None:
    path = "/leicestershire/mgWebService.asmx/GetMeeting?lMeetingId=7618"
    clock.advance(3)
    assert text(await get_xml(client, path), "agendapublished") == "False"
    clock.advance(1)
    root = await get_xml(client, path)
    assert text(root, "agendapublished") == "True"
    assert [text(i, "agendaitemtitle") for i in root.iter("agendaitem")] == [
        "Minutes of the previous meeting",
        "Declarations of interest",
        "Carers Strategy Refresh",
        "Adult Mental Health Social Work Service",
        "Dementia Support Services in Leicestershire",
    ]
    assert [(text(d, "title"), text(d, "publicationdate")) for d in root.iter("linkeddoc")] == [
        ("Minutes , 16/02/2026 Adults and Communities Overview and Scrutiny Committee", "02/03/2026"),
        ("Report of the Director of Adults and Communities", "02/03/2026"),
        ("Report of the Director of Adults and Communities", "02/03/2026"),
        ("Report of the Director of Adults and Communities", "02/03/2026"),
    ]
    ids = [text(d, "attachmentid") for d in root.iter("linkeddoc")]
    document = await client.get(f"/leicestershire/mgConvert2PDF.aspx?ID={ids[1]}")
    assert document.status == 200


async def test_clock_decisions_published(client: TestClient[Any, Any], clock: Clock) -> None:
    register = "/leicestershire/mgDelegatedDecisions.aspx?DR=01/02/2026-02/03/2026"
    clock.advance(4)
    page = await get_html(client, register)
    assert "ieDecisionDetails.aspx?ID=5832" not in [a.get("href") for a in css(page, "tbody a")]
    clock.advance(1)
    page = await get_html(client, register)
    rows = [(a.get("href"), words(a.text_content())) for a in css(page, "tbody a")][:3]
    assert rows == [
        ("ieDecisionDetails.aspx?ID=5834", "Adult Social Care Charging Policy - Outcome of Consultation ref: 5834"),
        ("ieDecisionDetails.aspx?ID=5833", "SEND and Inclusion Transformation Programme ref: 5833"),
        ("ieDecisionDetails.aspx?ID=5832", "Provisional Medium Term Financial Strategy 2026/27 - 2029/30 ref: 5832"),
    ]
    meeting = await get_xml(client, "/leicestershire/mgWebService.asmx/GetMeeting?lMeetingId=7605")
    assert text(meeting, "decisionpublished") == "True"
    assert [(text(i, "isdecision"), text(i, "isdecisionpublished")) for i in meeting.iter("agendaitem")] == [
        ("False", "False"), ("False", "False"), ("True", "True"), ("True", "True"), ("True", "True"),
    ]
    detail = await get_html(client, "/leicestershire/ieDecisionDetails.aspx?ID=5832")
    decided_at = [a for a in css(detail, "a") if "ieListDocuments" in (a.get("href") or "")]
    assert [(a.get("href"), words(a.text_content())) for a in decided_at] == [
        ("ieListDocuments.aspx?CId=135&MID=7605", "17/02/2026 - Cabinet"),
    ]


async def test_clock_minutes_published(client: TestClient[Any, Any], clock: Clock) -> None:
    path = "/leicestershire/mgWebService.asmx/GetMeeting?lMeetingId=7609"
    clock.advance(5)
    before = await get_xml(client, path)
    assert text(before, "minutepublished") == "False"
    assert all(text(i, "minutesnonemptyhtmlbody") == "" for i in before.iter("agendaitem"))
    clock.advance(1)
    after = await get_xml(client, path)
    assert text(after, "minutepublished") == "True"
    minutes = [words(lxml_html.fromstring(i.findtext("minutesnonemptyhtmlbody") or "<p/>").text_content())
               for i in after.iter("agendaitem")]
    assert minutes[0] == (
        "The minutes of the meeting held on 27 January 2026 were taken as read, confirmed and signed."
    )
    assert all(m for m in minutes)
    page = await get_html(client, "/leicestershire/ieListDocuments.aspx?CId=1040&MId=7609")
    assert [words(a.text_content()).split(" PDF ")[0] for a in css(page, "ul.mgActionList a")][-1] == (
        "Printed minutes 24th-Feb-2026 14.00 Children and Families Overview and Scrutiny Committee"
    )


async def test_clock_officer_decision_published(client: TestClient[Any, Any], clock: Clock) -> None:
    clock.advance(11)
    page = await get_html(client, "/leicester/ieDecisionDetails.aspx?ID=9475")
    assert words(css(page, "h2.mgSubTitleTxt")[0].text_content()) == (
        "Adult Social Care: Dementia Day Opportunities Contract Extension - Aylestone"
    )


def test_clock_generated_changes_continue(councils: DemoCouncils) -> None:
    steps = len(SCRIPT) + 300
    state = councils.state_at(START + steps * STEP)
    assert [c.index for c in state.changes] == list(range(steps))
    generated = state.changes[len(SCRIPT):]
    assert {c.kind for c in generated} >= {
        EventType.MEETING_SCHEDULED, EventType.AGENDA_PUBLISHED, EventType.DECISION_PUBLISHED,
        EventType.MEETING_RESCHEDULED, EventType.MEETING_CANCELLED,
    }
    assert [c.council for c in generated[:18:6]] == ["leicestershire", "leicester", "rutland"]
    again = DemoCouncils(START, STEP).state_at(START + steps * STEP)
    assert [c.summary for c in again.changes] == [c.summary for c in state.changes]


def test_clock_generated_changes_after_days(councils: DemoCouncils) -> None:
    """Long after the start the demo still moves meetings about, not only papers."""
    state = councils.state_at(START + timedelta(days=3))
    last = state.changes[-120:]
    assert {c.kind for c in last} >= {
        EventType.MEETING_SCHEDULED, EventType.MEETING_RESCHEDULED, EventType.MEETING_CANCELLED,
        EventType.AGENDA_PUBLISHED, EventType.DECISION_PUBLISHED,
    }


def test_clock_backwards_replays(councils: DemoCouncils) -> None:
    later = councils.state_at(START + 40 * STEP)
    earlier = councils.state_at(START + 10 * STEP)
    fresh = DemoCouncils(START, STEP).state_at(START + 10 * STEP)
    assert len(later.changes) == 40
    assert earlier.changes == fresh.changes
    assert dict(earlier.councils) == dict(fresh.councils)


@pytest.mark.parametrize(
    ("start", "step", "message"),
    [
        (datetime(2026, 3, 2, 9, 0), STEP, "timezone-aware"),
        (START, timedelta(0), "must be positive"),
    ],
)
def test_demo_councils_bad_arguments(start: datetime, step: timedelta, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DemoCouncils(start, step)
