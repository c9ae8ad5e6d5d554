"""Times and events in words."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from notifier.delivery.email.words import describe_event, documents_from_changes, format_range, format_when
from tests.delivery.email.samples import AGENDA_URL, HWB


@pytest.mark.parametrize(
    ("event_type", "changes", "expected"),
    [
        ("meeting.rescheduled", {"starts_at": ["2025-12-04T14:00:00+00:00", "2025-12-11T10:00:00+00:00"]},
         "moved from 4 Dec 14:00 to 11 Dec 10:00"),
        # British Summer Time: 13:00 UTC is 14:00 in London.
        ("meeting.rescheduled", {"starts_at": ["2025-06-05T13:00:00+00:00", "2025-06-12T09:00:00Z"]},
         "moved from 5 Jun 14:00 to 12 Jun 10:00"),
        ("meeting.rescheduled", {"starts_at": ["2025-12-30T14:00:00+00:00", "2026-01-06T10:00:00+00:00"]},
         "moved from 30 Dec 2025 14:00 to 6 Jan 2026 10:00"),
        ("meeting.rescheduled", {"starts_at": ["2025-12-04T00:00:00+00:00", "2025-12-11T00:00:00+00:00"]},
         "moved from 4 Dec to 11 Dec"),
        ("meeting.rescheduled",
         {"starts_at": ["2025-12-04T10:00:00+00:00", "2025-12-11T10:00:00+00:00"], "time_known": [False, True]},
         "moved from 4 Dec to 11 Dec 10:00"),
        ("meeting.rescheduled", {"starts_at": [None, "2025-12-11T10:00:00+00:00"]}, "moved to 11 Dec 10:00"),
        ("meeting.cancelled", {"status": ["confirmed", "cancelled"]}, "cancelled"),
        ("meeting.cancelled", {"status": [None, "postponed"]}, "postponed"),
        ("meeting.scheduled", {"starts_at": [None, "2025-12-11T10:00:00+00:00"]}, "meeting scheduled"),
        ("meeting.updated", {"location": ["County Hall", "Room 1, County Hall, Glenfield"]},
         "venue changed to Room 1, County Hall, Glenfield"),
        ("meeting.updated", {"status": ["cancelled", "confirmed"]}, "reinstated"),
        ("meeting.updated", {"title": ["Health Board", HWB]}, "renamed (was Health Board)"),
        ("meeting.updated", {"body": ["old", "new"]}, "agenda updated"),
        ("meeting.updated", {"location": ["A", "B"], "body": ["x", "y"]}, "venue and agenda changed"),
        ("agenda.published", {"agenda_published": [None, True]}, "agenda published"),
        ("minutes.published", {"minutes_published": [False, True]}, "minutes published"),
        ("document.published", {"title": [None, "Report"]}, "document published"),
        ("decision.published", {"status": [None, "Recommendations Approved"]},
         "decision published: Recommendations approved"),
        ("decision.published", {}, "decision published"),
        ("decision.updated", {"status": ["For Determination", "Call-in expired"]},
         "decision updated: now Call-in expired"),
        ("something.else", None, "updated"),
    ],
)
def test_describe_event_table(event_type: str, changes: dict[str, Any] | None, expected: str) -> None:
    assert describe_event(event_type, changes) == expected


@pytest.mark.parametrize(
    ("value", "time_known", "expected"),
    [
        (datetime(2025, 12, 4, 14, 0, tzinfo=UTC), True, "Thu 4 Dec 2025, 14:00"),
        (datetime(2025, 6, 5, 13, 0, tzinfo=UTC), True, "Thu 5 Jun 2025, 14:00"),
        (datetime(2025, 12, 4, 9, 30, tzinfo=timezone(timedelta(hours=-5))), True, "Thu 4 Dec 2025, 14:30"),
        (datetime(2025, 12, 4, 14, 0, tzinfo=UTC), False, "Thu 4 Dec 2025"),
        (date(2025, 12, 11), True, "Thu 11 Dec 2025"),
        ("Thursday afternoon", True, "Thursday afternoon"),
        (None, True, ""),
    ],
)
def test_format_when_table(value: Any, time_known: bool, expected: str) -> None:
    assert format_when(value, "Europe/London", time_known=time_known) == expected


def test_format_when_naive_datetime_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_when(datetime(2025, 12, 4, 14, 0), "Europe/London")


def test_format_when_unknown_zone_refused() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        format_when(datetime(2025, 12, 4, 14, 0, tzinfo=UTC), "Europe/Leicester")


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        (date(2025, 12, 1), date(2025, 12, 7), "1\u20137 Dec 2025"),
        (date(2025, 11, 24), date(2025, 11, 30), "24\u201330 Nov 2025"),
        (date(2025, 11, 27), date(2025, 12, 3), "27 Nov \u2013 3 Dec 2025"),
        (date(2025, 12, 29), date(2026, 1, 4), "29 Dec 2025 \u2013 4 Jan 2026"),
    ],
)
def test_format_range_table(first: date, last: date, expected: str) -> None:
    assert format_range(first, last) == expected


def test_documents_from_changes_pairs() -> None:
    changes = {"documents": [[], [{"title": "Agenda", "url": AGENDA_URL}, {"title": None, "url": None}, "junk"]]}
    assert documents_from_changes(changes) == (("Agenda", AGENDA_URL), ("Document", ""))
    assert documents_from_changes({}) == ()
