"""Tests for notifier.ingest.diff: records of one poll against the stored ones → change events."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from notifier.ingest.diff import CHANGE_TEXT_LIMIT, Change, diff_poll
from notifier.ingest.normalise import content_hash
from notifier.models import EventType
from notifier.sources.base import Record
from tests.ingest.records import (
    BASE,
    DEC,
    HWB_START,
    TZ,
    A,
    D,
    M,
    agenda_item,
    decision,
    document,
    meeting,
    stored,
    with_data,
)


def brief(changes: Sequence[Change]) -> list[tuple[str, str, str]]:
    return [(c.type.value, c.key[1], c.summary) for c in changes]

# ---- first sight, re-polls, missing records ---------------------------------------------------------------------


def first_poll() -> list[Record]:
    published = meeting(
        body="1. Dementia strategy\nProgress on the LLR dementia strategy.",
        data={"agenda_published": True},
    )
    return [
        published,
        agenda_item("501"),
        agenda_item("502", title="Better Care Fund"),
        document("8001", "Agenda frontsheet", parent=(M, "7001")),
        document("8002", "Dementia strategy progress report"),
        document("8003", "Better Care Fund Q2 report", parent=(A, "502")),
        meeting("7002", starts_at=datetime(2026, 1, 15, 10, 0, tzinfo=UTC), data={"time_known": False}),
        meeting(
            "7003",
            starts_at=datetime(2026, 6, 11, 9, 30, tzinfo=UTC),
            status="cancelled",
            data={"status_text": "Cancelled"},
        ),
        decision(),
        document("8100", "Pharmaceutical needs assessment", parent=None, starts_at=None),
    ]


def test_diff_first_poll_announces_everything_once() -> None:
    changes = diff_poll({}, first_poll(), timezone=TZ)
    assert brief(changes) == [
        ("meeting.scheduled", "7001", "Health and Wellbeing Board, 4 Dec 2025 14:00: meeting scheduled"),
        ("agenda.published", "7001", "Health and Wellbeing Board, 4 Dec 2025 14:00: agenda published (3 documents)"),
        ("meeting.scheduled", "7002", "Health and Wellbeing Board, 15 Jan 2026: meeting scheduled"),
        ("meeting.cancelled", "7003", "Health and Wellbeing Board, 11 Jun 2026 10:30: meeting cancelled"),
        ("decision.published", "9001", "Decision: Better Care Fund Q2 report (Recommendations approved)"),
        ("document.published", "8100", "Document published: Pharmaceutical needs assessment"),
    ]
    assert changes[0].changes == {"starts_at": [None, "2025-12-04T14:00:00+00:00"]}
    assert changes[1].changes == {
        "agenda_published": [None, True],
        "documents": [
            [],
            [
                {"title": "Agenda frontsheet", "url": f"{BASE}/mgConvert2PDF.aspx?ID=8001"},
                {"title": "Dementia strategy progress report", "url": f"{BASE}/mgConvert2PDF.aspx?ID=8002"},
                {"title": "Better Care Fund Q2 report", "url": f"{BASE}/mgConvert2PDF.aspx?ID=8003"},
            ],
        ],
    }
    assert changes[3].changes == {"status": [None, "cancelled"]}
    assert changes[4].changes == {"status": [None, "Recommendations approved"]}
    assert changes[5].changes == {
        "title": [None, "Pharmaceutical needs assessment"],
        "url": [None, f"{BASE}/mgConvert2PDF.aspx?ID=8100"],
    }
    assert {c.key for c in changes} == {(M, "7001"), (M, "7002"), (M, "7003"), (DEC, "9001"), (D, "8100")}


def test_diff_changes_are_json_serialisable() -> None:
    records = first_poll()
    later = [with_data(replace(records[0], starts_at=HWB_START + timedelta(days=7)), location="Room 2")]
    for change in diff_poll({}, records, timezone=TZ) + diff_poll(stored(records), later, timezone=TZ):
        assert json.loads(json.dumps(change.changes)) == change.changes


@pytest.mark.parametrize("as_stored", [False, True], ids=["same-objects", "read-back-from-database"])
def test_diff_unchanged_repoll_gives_nothing(as_stored: bool) -> None:
    records = first_poll()
    old = stored(records) if as_stored else {(r.kind, r.external_id): r for r in records}
    assert diff_poll(old, records, timezone=TZ) == []


@pytest.mark.parametrize(
    "bookkeeping",
    [
        {"_detail_at": "2025-12-01T09:00:00+00:00"},
        {"_summary": "04/12/2025|2.00 pm|Confirmed|v2"},
        {"_fetched": datetime(2025, 12, 1, tzinfo=UTC), "_etag": '"abc"'},
    ],
)
def test_diff_bookkeeping_only_change_gives_nothing(bookkeeping: dict[str, Any]) -> None:
    records = first_poll()
    again = [with_data(r, **bookkeeping) for r in records]
    assert diff_poll(stored(records), again, timezone=TZ) == []


@pytest.mark.parametrize(
    "new",
    [
        [],
        [meeting("7002", starts_at=datetime(2026, 1, 15, 10, 0, tzinfo=UTC), data={"time_known": False})],
        [decision()],
    ],
    ids=["empty-poll", "truncated-meetings", "other-kind-only"],
)
def test_diff_record_missing_from_poll_gives_nothing(new: list[Record]) -> None:
    assert diff_poll(stored(first_poll()), new, timezone=TZ) == []


def test_diff_duplicate_record_counts_once() -> None:
    changes = diff_poll({}, [decision(), decision(status="Called in")], timezone=TZ)
    assert brief(changes) == [("decision.published", "9001", "Decision: Better Care Fund Q2 report (Called in)")]


# ---- meetings ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old_start", "new_start", "data", "summary"),
    [
        (  # GMT → GMT
            datetime(2025, 12, 4, 14, 0, tzinfo=UTC),
            datetime(2025, 12, 11, 10, 0, tzinfo=UTC),
            {},
            "Health and Wellbeing Board, 4 Dec 2025 14:00 moved to 11 Dec 2025 10:00",
        ),
        (  # GMT → BST: the clocks go forward on 29 March 2026
            datetime(2026, 3, 26, 14, 0, tzinfo=UTC),
            datetime(2026, 4, 2, 9, 0, tzinfo=UTC),
            {},
            "Health and Wellbeing Board, 26 Mar 2026 14:00 moved to 2 Apr 2026 10:00",
        ),
        (  # BST → GMT: back on 25 October 2026; 23:30 UTC on 24 Oct is already the 25th in London
            datetime(2026, 10, 24, 23, 30, tzinfo=UTC),
            datetime(2026, 11, 2, 18, 0, tzinfo=UTC),
            {},
            "Health and Wellbeing Board, 25 Oct 2026 00:30 moved to 2 Nov 2026 18:00",
        ),
        (  # same day, new time
            datetime(2026, 7, 9, 13, 0, tzinfo=UTC),
            datetime(2026, 7, 9, 9, 0, tzinfo=UTC),
            {},
            "Health and Wellbeing Board, 9 Jul 2026 14:00 moved to 9 Jul 2026 10:00",
        ),
        (  # time not known: dates only
            datetime(2026, 1, 15, 0, 0, tzinfo=UTC),
            datetime(2026, 1, 22, 0, 0, tzinfo=UTC),
            {"time_known": False},
            "Health and Wellbeing Board, 15 Jan 2026 moved to 22 Jan 2026",
        ),
    ],
    ids=["gmt-gmt", "gmt-bst", "bst-gmt", "same-day", "date-only"],
)
def test_diff_meeting_rescheduled(old_start: datetime, new_start: datetime, data: dict[str, Any], summary: str) -> None:
    before = meeting(starts_at=old_start, data=data)
    after = meeting(starts_at=new_start, data=data)
    changes = diff_poll(stored([before]), [after], timezone=TZ)
    assert changes == [
        Change(
            key=(M, "7001"),
            type=EventType.MEETING_RESCHEDULED,
            changes={"starts_at": [old_start.isoformat(), new_start.isoformat()]},
            summary=summary,
        )
    ]


def test_diff_meeting_rescheduled_takes_its_status_and_input_in_any_zone() -> None:
    before = meeting()
    local = timezone(timedelta(hours=1))
    after = meeting(
        starts_at=datetime(2025, 12, 11, 11, 0, tzinfo=local),
        status="rescheduled",
        data={"status_text": "Confirmed; Rescheduled from 4 December 2025"},
    )
    changes = diff_poll(stored([before]), [after], timezone=TZ)
    assert changes == [
        Change(
            key=(M, "7001"),
            type=EventType.MEETING_RESCHEDULED,
            changes={
                "starts_at": ["2025-12-04T14:00:00+00:00", "2025-12-11T10:00:00+00:00"],
                "status": ["confirmed", "rescheduled"],
                "status_text": ["Confirmed", "Confirmed; Rescheduled from 4 December 2025"],
            },
            summary="Health and Wellbeing Board, 4 Dec 2025 14:00 moved to 11 Dec 2025 10:00",
        )
    ]


@pytest.mark.parametrize(
    ("status", "status_text", "title", "expected_changes", "summary"),
    [
        (
            "cancelled",
            "Cancelled",
            "Health and Wellbeing Board",
            {"status": ["confirmed", "cancelled"], "status_text": ["Confirmed", "Cancelled"]},
            "Health and Wellbeing Board, 4 Dec 2025 14:00: meeting cancelled",
        ),
        (
            "postponed",
            "Postponed",
            "Health and Wellbeing Board",
            {"status": ["confirmed", "postponed"], "status_text": ["Confirmed", "Postponed"]},
            "Health and Wellbeing Board, 4 Dec 2025 14:00: meeting postponed",
        ),
        (
            "cancelled",
            "Confirmed",
            "CANCELLED - Health and Wellbeing Board",
            {
                "status": ["confirmed", "cancelled"],
                "title": ["Health and Wellbeing Board", "CANCELLED - Health and Wellbeing Board"],
            },
            "CANCELLED - Health and Wellbeing Board, 4 Dec 2025 14:00: meeting cancelled",
        ),
    ],
    ids=["status", "postponed", "title-marker"],
)
def test_diff_meeting_cancelled(
    status: str, status_text: str, title: str, expected_changes: dict[str, list[Any]], summary: str
) -> None:
    after = meeting(status=status, title=title, data={"status_text": status_text})
    changes = diff_poll(stored([meeting()]), [after], timezone=TZ)
    assert changes == [
        Change(key=(M, "7001"), type=EventType.MEETING_CANCELLED, changes=expected_changes, summary=summary)
    ]


def test_diff_meeting_cancelled_when_first_seen() -> None:
    fixture_like = meeting(
        "4966",
        title="Audit Committee",
        starts_at=datetime(2026, 1, 13, 10, 0, tzinfo=UTC),
        status="cancelled",
        data={"status_text": "Cancelled"},
    )
    assert diff_poll({}, [fixture_like], timezone=TZ) == [
        Change(
            key=(M, "4966"),
            type=EventType.MEETING_CANCELLED,
            changes={"status": [None, "cancelled"]},
            summary="Audit Committee, 13 Jan 2026 10:00: meeting cancelled",
        )
    ]


def test_diff_meeting_cancelled_stays_quiet_while_cancelled() -> None:
    cancelled = meeting(status="cancelled", data={"status_text": "Cancelled"})
    again = with_data(cancelled, status_text="Cancelled.", _detail_at="2025-12-02T00:00:00+00:00")
    assert diff_poll(stored([cancelled]), [again], timezone=TZ) == []


def test_diff_meeting_reinstated() -> None:
    cancelled = meeting(status="cancelled", data={"status_text": "Cancelled"})
    changes = diff_poll(stored([cancelled]), [meeting()], timezone=TZ)
    assert changes == [
        Change(
            key=(M, "7001"),
            type=EventType.MEETING_UPDATED,
            changes={"status": ["cancelled", "confirmed"], "status_text": ["Cancelled", "Confirmed"]},
            summary="Health and Wellbeing Board, 4 Dec 2025 14:00: meeting reinstated",
        )
    ]


def test_diff_meeting_reinstated_explains_its_title() -> None:
    cancelled = meeting(
        status="cancelled", title="CANCELLED - Health and Wellbeing Board", data={"status_text": "Cancelled"}
    )
    [change] = diff_poll(stored([cancelled]), [meeting()], timezone=TZ)
    assert change.type is EventType.MEETING_UPDATED
    assert sorted(change.changes) == ["status", "status_text", "title"]
    assert change.summary == "Health and Wellbeing Board, 4 Dec 2025 14:00: meeting reinstated"


def test_diff_cancelled_meeting_moving_stays_quiet() -> None:
    cancelled = meeting(status="cancelled", data={"status_text": "Cancelled"})
    moved = replace(cancelled, starts_at=HWB_START + timedelta(days=1))
    assert diff_poll(stored([cancelled]), [moved], timezone=TZ) == []


def test_diff_meeting_date_becomes_known() -> None:
    undated = meeting(starts_at=None)
    [change] = diff_poll(stored([undated]), [meeting()], timezone=TZ)
    assert (change.type, change.changes, change.summary) == (
        EventType.MEETING_UPDATED,
        {"starts_at": [None, "2025-12-04T14:00:00+00:00"]},
        "Health and Wellbeing Board, 4 Dec 2025 14:00: date and time set",
    )


@pytest.mark.parametrize(
    ("after", "expected_changes", "summary"),
    [
        (
            with_data(meeting(), location="Sparkenhoe Committee Room"),
            {"location": ["County Hall, Glenfield", "Sparkenhoe Committee Room"]},
            "venue changed to Sparkenhoe Committee Room",
        ),
        (
            replace(meeting(), body="1. Minutes\n2. Dementia strategy (revised)"),
            {"body": ["", "1. Minutes\n2. Dementia strategy (revised)"]},
            "agenda updated",
        ),
        (
            with_data(replace(meeting(), title="Health and Wellbeing Board (Extraordinary)"), location="Room 2"),
            {
                "title": ["Health and Wellbeing Board", "Health and Wellbeing Board (Extraordinary)"],
                "location": ["County Hall, Glenfield", "Room 2"],
            },
            "title and venue changed",
        ),
        (
            replace(meeting(), status="provisional"),
            {"status": ["confirmed", "provisional"]},
            "status now provisional",
        ),
    ],
    ids=["venue", "agenda-text", "title-and-venue", "status"],
)
def test_diff_meeting_updated(after: Record, expected_changes: dict[str, list[Any]], summary: str) -> None:
    changes = diff_poll(stored([meeting()]), [after], timezone=TZ)
    label = after.title + ", 4 Dec 2025 14:00: "
    assert changes == [
        Change(key=(M, "7001"), type=EventType.MEETING_UPDATED, changes=expected_changes, summary=label + summary)
    ]


def test_diff_meeting_time_becomes_known_is_an_update_not_a_move() -> None:
    before = meeting(starts_at=datetime(2026, 1, 15, 0, 0, tzinfo=UTC), data={"time_known": False})
    after = meeting(starts_at=datetime(2026, 1, 15, 10, 0, tzinfo=UTC))
    assert diff_poll(stored([before]), [after], timezone=TZ) == [
        Change(
            key=(M, "7001"),
            type=EventType.MEETING_UPDATED,
            changes={"starts_at": ["2026-01-15T00:00:00+00:00", "2026-01-15T10:00:00+00:00"]},
            summary="Health and Wellbeing Board, 15 Jan 2026 10:00: time set",
        )
    ]


@pytest.mark.parametrize(
    "after",
    [
        replace(meeting(), url=f"{BASE}/ieListDocuments.aspx?CId=1038&MId=7001&Ver=4"),
        replace(meeting(), committee_id="1039"),
        with_data(meeting(), webcast=True, decisions_published=True),
        replace(meeting(), title="Health  and wellbeing   Board"),
        with_data(meeting(), location=""),
        replace(meeting(), starts_at=None),
        replace(meeting(), status=None),
        replace(meeting(), published_at=datetime(2025, 11, 1, tzinfo=UTC)),
    ],
    ids=[
        "url",
        "committee-id",
        "flags",
        "whitespace-and-case",
        "venue-lost",
        "date-lost",
        "status-lost",
        "published-at",
    ],
)
def test_diff_meeting_immaterial_change_gives_nothing(after: Record) -> None:
    assert content_hash(after) != content_hash(meeting())
    assert diff_poll(stored([meeting()]), [after], timezone=TZ) == []


def agenda_pack(mid: str = "7001") -> list[Record]:
    return [
        agenda_item("501", mid),
        agenda_item("502", mid, title="Better Care Fund"),
        document("8001", "Agenda frontsheet", parent=(M, mid)),
        document("8002", "Public reports pack", parent=(M, mid)),
        document("8003", "Dementia strategy progress report", parent=(A, "501")),
        document("8004", "Better Care Fund Q2 report", parent=(A, "502")),
        document("8005", "Appendix A - BCF metrics", parent=(A, "502")),
    ]


def test_diff_agenda_published_folds_its_documents() -> None:
    before = meeting()
    after = replace(with_data(meeting(), agenda_published=True), body="1. Dementia strategy\n2. Better Care Fund")
    changes = diff_poll(stored([before]), [after, *agenda_pack()], timezone=TZ)
    assert brief(changes) == [
        ("agenda.published", "7001", "Health and Wellbeing Board, 4 Dec 2025 14:00: agenda published (5 documents)"),
    ]
    assert changes[0].changes["agenda_published"] == [False, True]
    assert [d["title"] for d in changes[0].changes["documents"][1]] == [
        "Agenda frontsheet",
        "Public reports pack",
        "Dementia strategy progress report",
        "Better Care Fund Q2 report",
        "Appendix A - BCF metrics",
    ]
    assert changes[0].changes["documents"][0] == []


def test_diff_agenda_published_folds_documents_of_stored_agenda_items() -> None:
    # The agenda item was stored in an earlier poll and is not in this one.
    before = meeting()
    after = with_data(meeting(), agenda_published=True)
    old = stored([before, agenda_item("501")])
    changes = diff_poll(old, [after, document("8003", "Dementia strategy progress report")], timezone=TZ)
    assert brief(changes) == [
        ("agenda.published", "7001", "Health and Wellbeing Board, 4 Dec 2025 14:00: agenda published (1 document)"),
    ]


def test_diff_agenda_published_without_documents() -> None:
    changes = diff_poll(stored([meeting()]), [with_data(meeting(), agenda_published=True)], timezone=TZ)
    assert brief(changes) == [
        ("agenda.published", "7001", "Health and Wellbeing Board, 4 Dec 2025 14:00: agenda published"),
    ]
    assert changes[0].changes == {"agenda_published": [False, True]}


def test_diff_supplementary_document_after_agenda_is_its_own_event() -> None:
    published = with_data(meeting(), agenda_published=True)
    old = stored([published, *agenda_pack()])
    supplement = document("8006", "Supplementary pack: updated appendix", parent=(A, "502"))
    changes = diff_poll(old, [published, *agenda_pack(), supplement], timezone=TZ)
    assert brief(changes) == [
        ("document.published", "8006", "Document published: Supplementary pack: updated appendix"),
    ]


def test_diff_minutes_published() -> None:
    before = with_data(meeting(), agenda_published=True)
    after = with_data(meeting(), agenda_published=True, minutes_published=True)
    minutes = document("8050", "Printed minutes 04th-Dec-2025 14.00 Health and Wellbeing Board", parent=(M, "7001"))
    changes = diff_poll(stored([before]), [after, minutes], timezone=TZ)
    assert changes == [
        Change(
            key=(M, "7001"),
            type=EventType.MINUTES_PUBLISHED,
            changes={
                "minutes_published": [False, True],
                "documents": [[], [{"title": minutes.title, "url": f"{BASE}/mgConvert2PDF.aspx?ID=8050"}]],
            },
            summary="Health and Wellbeing Board, 4 Dec 2025 14:00: minutes published (1 document)",
        )
    ]


def test_diff_agenda_and_minutes_at_once_split_the_documents() -> None:
    past = meeting(data={"agenda_published": True, "minutes_published": True})
    docs = [
        document("8001", "Agenda frontsheet", parent=(M, "7001")),
        document("8009", "Minutes of the previous meeting", parent=(A, "501")),
        document("8050", "Printed minutes 04th-Dec-2025", parent=(M, "7001")),
    ]
    changes = diff_poll({}, [past, agenda_item("501"), *docs], timezone=TZ)
    assert [(c.type.value, c.summary) for c in changes] == [
        ("meeting.scheduled", "Health and Wellbeing Board, 4 Dec 2025 14:00: meeting scheduled"),
        ("agenda.published", "Health and Wellbeing Board, 4 Dec 2025 14:00: agenda published (2 documents)"),
        ("minutes.published", "Health and Wellbeing Board, 4 Dec 2025 14:00: minutes published (1 document)"),
    ]
    assert [d["title"] for d in changes[1].changes["documents"][1]] == [
        "Agenda frontsheet",
        "Minutes of the previous meeting",
    ]
    assert [d["title"] for d in changes[2].changes["documents"][1]] == ["Printed minutes 04th-Dec-2025"]


def test_diff_rescheduled_and_agenda_published_at_once() -> None:
    after = replace(
        with_data(meeting(), agenda_published=True, status_text="Confirmed; Rescheduled from 4 December 2025"),
        starts_at=datetime(2025, 12, 11, 10, 0, tzinfo=UTC),
        status="rescheduled",
        body="1. Dementia strategy",
    )
    changes = diff_poll(stored([meeting()]), [after, *agenda_pack()], timezone=TZ)
    assert brief(changes) == [
        ("meeting.rescheduled", "7001", "Health and Wellbeing Board, 4 Dec 2025 14:00 moved to 11 Dec 2025 10:00"),
        ("agenda.published", "7001", "Health and Wellbeing Board, 11 Dec 2025 10:00: agenda published (5 documents)"),
    ]
    assert set(changes[0].changes) == {"starts_at", "status", "status_text"}


def test_diff_reschedule_and_venue_change_never_report_a_field_twice() -> None:
    after = with_data(replace(meeting(), starts_at=datetime(2025, 12, 11, 10, 0, tzinfo=UTC)), location="Room 2")
    changes = diff_poll(stored([meeting()]), [after], timezone=TZ)
    assert [(c.type, sorted(c.changes)) for c in changes] == [
        (EventType.MEETING_RESCHEDULED, ["starts_at"]),
        (EventType.MEETING_UPDATED, ["location"]),
    ]
    assert changes[1].summary == "Health and Wellbeing Board, 11 Dec 2025 10:00: venue changed to Room 2"


def test_diff_agenda_item_changes_are_never_events() -> None:
    item = agenda_item("501")
    changed = replace(item, title="Dementia strategy (withdrawn)", body="Withdrawn.")
    assert diff_poll({}, [item], timezone=TZ) == []
    assert diff_poll(stored([item]), [changed], timezone=TZ) == []


# ---- documents and decisions -------------------------------------------------------------------------------------


def test_diff_standalone_document_published() -> None:
    doc = document("8100", "Dementia strategy progress report", parent=None)
    assert diff_poll({}, [doc], timezone=TZ) == [
        Change(
            key=(D, "8100"),
            type=EventType.DOCUMENT_PUBLISHED,
            changes={"title": [None, doc.title], "url": [None, f"{BASE}/mgConvert2PDF.aspx?ID=8100"]},
            summary="Document published: Dementia strategy progress report",
        )
    ]


def test_diff_document_of_meeting_without_publication_is_its_own_event() -> None:
    doc = document("8003", "Dementia strategy progress report")
    changes = diff_poll(stored([meeting()]), [meeting(), agenda_item("501"), doc], timezone=TZ)
    assert brief(changes) == [("document.published", "8003", "Document published: Dementia strategy progress report")]


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (
            replace(document("8100", "Draft report", parent=None), title="Final report"),
            [("document.published", "8100", "Document published: Final report (previously \u201cDraft report\u201d)")],
        ),
        (replace(document("8100", "Draft report", parent=None), url=f"{BASE}/documents/s123/Draft.pdf"), []),
        (replace(document("8100", "Draft report", parent=None), title="DRAFT  report"), []),
    ],
    ids=["retitled", "new-url", "case-only"],
)
def test_diff_document_changed(after: Record, expected: list[tuple[str, str, str]]) -> None:
    before = document("8100", "Draft report", parent=None)
    assert brief(diff_poll(stored([before]), [after], timezone=TZ)) == expected


def test_diff_decision_without_status() -> None:
    changes = diff_poll({}, [decision(status=None)], timezone=TZ)
    assert [(c.changes, c.summary) for c in changes] == [({}, "Decision: Better Care Fund Q2 report")]


def test_diff_decision_published_then_updated() -> None:
    first = decision(status="For determination")
    published = diff_poll({}, [first], timezone=TZ)
    assert brief(published) == [
        ("decision.published", "9001", "Decision: Better Care Fund Q2 report (For determination)"),
    ]

    second = with_data(decision(status="Called in"), call_in="Called in on 12 December 2025")
    updated = diff_poll(stored([first]), [second], timezone=TZ)
    assert updated == [
        Change(
            key=(DEC, "9001"),
            type=EventType.DECISION_UPDATED,
            changes={
                "status": ["For determination", "Called in"],
                "call_in": ["Not subject to call-in", "Called in on 12 December 2025"],
            },
            summary="Decision updated: Better Care Fund Q2 report (now Called in; call-in changed)",
        )
    ]
    assert diff_poll(stored([second]), [second], timezone=TZ) == []


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (
            with_data(decision(), key_decision=True),
            ("{'key_decision': [False, True]}", "Decision updated: Better Care Fund Q2 report (key decision changed)"),
        ),
        (
            replace(decision(), body="The Board approved the return with amendments."),
            (
                "{'body': ['The Board approved the quarter 2 return.', 'The Board approved the return with amendments.']}",  # noqa: E501
                "Decision updated: Better Care Fund Q2 report (decision text changed)",
            ),
        ),
        (replace(decision(), url=f"{BASE}/ieDecisionDetails.aspx?ID=9001&Opt=0"), None),
        (with_data(decision(), documents=[{"title": "Report", "url": f"{BASE}/x.pdf"}]), None),
    ],
    ids=["key-decision", "text", "url-only", "documents-only"],
)
def test_diff_decision_updated(after: Record, expected: tuple[str, str] | None) -> None:
    changes = diff_poll(stored([decision()]), [after], timezone=TZ)
    if expected is None:
        assert changes == []
    else:
        assert [(str(c.changes), c.summary) for c in changes] == [expected]
        assert changes[0].type is EventType.DECISION_UPDATED


# ---- ordering, limits, errors ------------------------------------------------------------------------------------


def test_diff_order_is_deterministic_whatever_the_input_order() -> None:
    records = [
        *first_poll(),
        agenda_item("601", "7002"),
        document("8301", "Report", parent=(A, "601")),
        meeting("10", starts_at=datetime(2026, 1, 15, 10, 0, tzinfo=UTC), data={"time_known": False}),
        decision("9"),
        decision("10"),
        document("8200", "Later report", parent=None),
        document("900", "Earlier report", parent=None),
    ]
    expected = diff_poll({}, records, timezone=TZ)
    shuffler = random.Random(7)
    for _ in range(20):
        shuffled = records[:]
        shuffler.shuffle(shuffled)
        assert diff_poll({}, shuffled, timezone=TZ) == expected
    assert [(c.type.value, c.key[1]) for c in expected] == [
        ("meeting.scheduled", "7001"),
        ("agenda.published", "7001"),
        ("meeting.scheduled", "10"),
        ("meeting.scheduled", "7002"),
        ("meeting.cancelled", "7003"),
        ("decision.published", "9"),
        ("decision.published", "10"),
        ("decision.published", "9001"),
        ("document.published", "900"),
        ("document.published", "8100"),
        ("document.published", "8200"),
        ("document.published", "8301"),
    ]


def test_diff_summary_stays_short() -> None:
    long_title = "Joint Health Scrutiny Committee for Leicester, Leicestershire and Rutland " * 5
    changes = diff_poll(
        {},
        [
            meeting(title=long_title),
            decision(title=long_title, status=long_title),
            document("1", long_title * 3, parent=None),
        ],
        timezone=TZ,
    )
    assert len(changes) == 3
    for c in changes:
        assert len(c.summary) <= 200
        assert "\n" not in c.summary
    assert changes[0].summary.endswith("…, 4 Dec 2025 14:00: meeting scheduled")


def test_diff_long_body_is_clipped_in_changes() -> None:
    after = replace(meeting(), body="x" * 5000)
    [change] = diff_poll(stored([meeting()]), [after], timezone=TZ)
    assert len(change.changes["body"][1]) == CHANGE_TEXT_LIMIT
    assert change.changes["body"][1].endswith("…")


def test_diff_unknown_timezone_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Europe/Leicester'"):
        diff_poll({}, [meeting()], timezone="Europe/Leicester")

def test_diff_poll_uses_the_hashes_it_is_given() -> None:
    old = meeting()
    new = meeting(title="Health and Wellbeing Board (renamed)")
    key = (M, "7001")
    assert [c.type for c in diff_poll({key: old}, [new], timezone=TZ)] == [EventType.MEETING_UPDATED]
    # Hashes from the caller are trusted: the same hash on both sides is an unchanged record.
    same = {key: "h"}
    assert diff_poll({key: old}, [new], timezone=TZ, old_hashes=same, new_hashes=same) == []
    # A key the caller has no hash for is hashed here.
    assert [c.type for c in diff_poll({key: old}, [new], timezone=TZ, old_hashes={}, new_hashes={key: "h"})] == [
        EventType.MEETING_UPDATED
    ]
