"""Tests for notifier.ingest.diff: records of one poll against the stored ones → change events."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifier.ingest import normalise
from notifier.ingest.diff import CHANGE_TEXT_LIMIT, Change, diff_poll
from notifier.ingest.normalise import content_hash
from notifier.models import EventType, ItemKind
from notifier.sources.base import Record

TZ = "Europe/London"
M = ItemKind.MEETING
A = ItemKind.AGENDA_ITEM
D = ItemKind.DOCUMENT
DEC = ItemKind.DECISION

HWB_START = datetime(2025, 12, 4, 14, 0, tzinfo=UTC)  # 14:00 GMT
BASE = "https://democracy.leics.gov.uk"


def meeting(mid: str = "7001", **overrides: Any) -> Record:
    data: dict[str, Any] = {
        "location": "County Hall, Glenfield",
        "status_text": "Confirmed",
        "agenda_published": False,
        "minutes_published": False,
        "decisions_published": False,
        "webcast": False,
        "time_known": True,
        "_summary": "04/12/2025|2.00 pm|Confirmed",
        "_detail_at": "2025-11-20T09:00:00+00:00",
    }
    data.update(overrides.pop("data", {}))
    fields: dict[str, Any] = {
        "kind": M,
        "external_id": mid,
        "title": "Health and Wellbeing Board",
        "committee": "Health and Wellbeing Board",
        "committee_id": "1038",
        "starts_at": HWB_START,
        "status": "confirmed",
        "url": f"{BASE}/ieListDocuments.aspx?CId=1038&MId={mid}",
        "data": data,
    }
    fields.update(overrides)
    return Record(**fields)


def agenda_item(aid: str, mid: str = "7001", title: str = "Dementia strategy") -> Record:
    return Record(
        kind=A,
        external_id=aid,
        title=title,
        committee="Health and Wellbeing Board",
        starts_at=HWB_START,
        parent=(M, mid),
        url=f"{BASE}/ieListDocuments.aspx?CId=1038&MId={mid}",
        data={"number": aid[-1]},
    )


def document(did: str, title: str, parent: tuple[ItemKind, str] | None = (A, "501"), **overrides: Any) -> Record:
    fields: dict[str, Any] = {
        "kind": D,
        "external_id": did,
        "title": title,
        "committee": "Health and Wellbeing Board",
        "starts_at": HWB_START,
        "parent": parent,
        "url": f"{BASE}/mgConvert2PDF.aspx?ID={did}",
        "published_at": datetime(2025, 11, 26, tzinfo=UTC),
    }
    fields.update(overrides)
    return Record(**fields)


def decision(did: str = "9001", **overrides: Any) -> Record:
    fields: dict[str, Any] = {
        "kind": DEC,
        "external_id": did,
        "title": "Better Care Fund Q2 report",
        "committee": "Health and Wellbeing Board",
        "body": "The Board approved the quarter 2 return.",
        "starts_at": datetime(2025, 12, 4, tzinfo=UTC),
        "status": "Recommendations approved",
        "url": f"{BASE}/ieDecisionDetails.aspx?ID={did}",
        "published_at": datetime(2025, 12, 8, tzinfo=UTC),
        "data": {
            "key_decision": False,
            "call_in": "Not subject to call-in",
            "decision_maker": "HWB",
            "_detail_at": "2025-12-08T10:00:00+00:00",
        },
    }
    fields.update(overrides)
    return Record(**fields)


def with_data(r: Record, **data: Any) -> Record:
    return replace(r, data={**r.data, **data})


def stored(records: Sequence[Record]) -> dict[tuple[ItemKind, str], Record]:
    """Records as ingest reads them back: data through JSON (datetimes as str()), datetimes in UTC."""
    return {
        (r.kind, r.external_id): replace(
            r,
            data=json.loads(json.dumps(dict(r.data), default=str)),
            starts_at=r.starts_at.astimezone(UTC) if r.starts_at else None,
            published_at=r.published_at.astimezone(UTC) if r.published_at else None,
        )
        for r in records
    }


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


# ---- content hash ------------------------------------------------------------------------------------------------


def test_content_hash_is_sha256_hex_and_stable() -> None:
    h = content_hash(meeting())
    assert len(h) == 64
    assert int(h, 16) >= 0
    assert content_hash(meeting()) == h


def test_content_hash_ignores_dict_order_and_bookkeeping() -> None:
    a = Record(
        kind=M,
        external_id="1",
        title="T",
        data={"location": "Hall", "agenda_published": True, "nested": {"b": 1, "a": [1, 2]}},
    )
    b = Record(
        kind=M,
        external_id="1",
        title="T",
        data={
            "_detail_at": "2025-01-01T00:00:00+00:00",
            "nested": {"a": [1, 2], "b": 1},
            "agenda_published": True,
            "location": "Hall",
        },
    )
    assert content_hash(a) == content_hash(b)


def test_content_hash_normalises_datetimes() -> None:
    utc = meeting(
        starts_at=datetime(2026, 6, 11, 9, 30, tzinfo=UTC), data={"ends_at": datetime(2026, 6, 11, 12, 0, tzinfo=UTC)}
    )
    bst = timezone(timedelta(hours=1))
    local = meeting(
        starts_at=datetime(2026, 6, 11, 10, 30, tzinfo=bst), data={"ends_at": datetime(2026, 6, 11, 13, 0, tzinfo=bst)}
    )
    read_back = with_data(utc, ends_at="2026-06-11 12:00:00+00:00")  # as json.dumps(default=str) stores it
    assert content_hash(utc) == content_hash(local) == content_hash(read_back)
    assert content_hash(utc) == content_hash(stored([utc])[(M, "7001")])


def test_content_hash_of_dates_in_data_survives_the_database() -> None:
    r = decision(data={"decision_date": date(2025, 12, 4), "documents": ({"title": "Report", "url": "u"},)})
    assert content_hash(r) == content_hash(stored([r])[(DEC, "9001")])


def test_content_hash_values_are_the_stored_ones() -> None:
    # Hashes are stored with every item: a different value for the same record would rewrite every item once.
    assert content_hash(meeting()) == "a6252e7c0c7b8ef05a82d2f538910ec50c0b4cb495f4a635f90ed1e72302cc33"
    assert content_hash(document("1", "Report")) == "dfcdeba2282e3f3eef72c53a6463b2738661faedf1c77d8c69502e09a3a1d592"
    assert content_hash(agenda_item("501")) == "12a36512662e3ff1fa91123a8d8f850f83a99fda8e24c32b43bd696f9725073b"


def _hash_through_json(r: Record) -> str:
    """content_hash with every record's data taken through the database's JSON round trip (no shortcut)."""
    public = {str(k): v for k, v in r.data.items() if not str(k).startswith("_")}
    data = normalise.canonical(json.loads(json.dumps(public, default=str)))
    payload = {
        "kind": str(r.kind), "external_id": r.external_id, "title": r.title, "committee": r.committee,
        "committee_id": r.committee_id, "body": r.body, "starts_at": normalise.iso(r.starts_at),
        "status": r.status, "url": r.url, "parent": [str(r.parent[0]), r.parent[1]] if r.parent else None,
        "published_at": normalise.iso(r.published_at), "data": data,
    }
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_DATA_VALUES = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
    | st.sampled_from(["2025-12-04T14:00:00+00:00", "2025-12-04 14:00:00+01:00", "2025-12-04T14:00", "2025-13-45T99:99",
                       "١٢٣٤-١٢-٠٤T14:00", EventType.MEETING_SCHEDULED, ItemKind.MEETING])
    | st.datetimes(timezones=st.just(UTC)) | st.dates()
    | st.lists(st.text(max_size=5) | st.integers(), max_size=3)
)


@given(st.dictionaries(st.text(max_size=8) | st.integers(), _DATA_VALUES, max_size=6))
def test_content_hash_of_plain_data_is_the_json_round_trip_one(data: dict[Any, Any]) -> None:
    r = meeting(data=data)
    assert content_hash(r) == _hash_through_json(r)


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


@pytest.mark.parametrize(
    "change",
    [
        {"kind": D},
        {"external_id": "7002"},
        {"title": "Cabinet"},
        {"committee": "Cabinet"},
        {"committee_id": "1039"},
        {"body": "agenda"},
        {"starts_at": HWB_START + timedelta(minutes=1)},
        {"status": "cancelled"},
        {"url": "https://example.org/"},
        {"parent": (M, "1")},
        {"published_at": HWB_START},
        {"data": {"location": "Room 2"}},
        {"data": {"extra": None}},
    ],
    ids=lambda c: next(iter(c)) if len(c) == 1 and "data" not in c else f"data-{next(iter(c['data']))}",
)
def test_content_hash_sees_every_field(change: dict[str, Any]) -> None:
    base = meeting()
    changed = with_data(base, **change["data"]) if "data" in change else replace(base, **change)
    assert content_hash(changed) != content_hash(base)


_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.text(max_size=12),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5))])),
    st.dates(),
)
_json_value = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@given(
    data=st.dictionaries(st.text(max_size=8), _json_value, max_size=5),
    bookkeeping=st.dictionaries(st.text(max_size=6).map(lambda k: "_" + k), _json_value, max_size=3),
)
def test_content_hash_survives_the_database_and_ignores_bookkeeping(
    data: dict[str, Any], bookkeeping: dict[str, Any]
) -> None:
    public = {k: v for k, v in data.items() if not k.startswith("_")}
    fresh = meeting(data=public)
    read_back = stored([with_data(fresh, **bookkeeping)])[(M, "7001")]
    reordered = replace(fresh, data=dict(reversed(list(fresh.data.items()))))
    assert content_hash(read_back) == content_hash(fresh) == content_hash(reordered)
    assert diff_poll(stored([fresh]), [with_data(fresh, **bookkeeping)], timezone=TZ) == []
