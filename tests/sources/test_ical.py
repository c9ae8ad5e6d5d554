"""The iCal adapter: the recorded calendar, time zones (broken ones too), all-day events, cancellations, recurrence
and bodies that must fail the poll."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from notifier.models import ItemKind
from notifier.sources.base import Record, SourceError, SourceState
from notifier.sources.ical import IcalAdapter, split_cancelled
from tests.sources import fakes
from tests.sources.fakes import Body

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ical"
CAL_URL = "https://democracy.example-council.gov.uk/calendar.ics"
NOW = datetime(2025, 3, 20, 12, 0, tzinfo=UTC)


def fake_fetch(routes: Mapping[str, Body], **kwargs: Any) -> fakes.FakeFetch:
    """`fakes.FakeFetch` answering with this format's content type unless told otherwise."""
    return fakes.FakeFetch(routes, **{"content_type": "text/calendar; charset=utf-8", **kwargs})


def state(now: datetime = NOW, timezone: str = "Europe/London", **options: Any) -> SourceState:
    return SourceState(now=now, timezone=timezone, options=options)


def ics(*blocks: str, head: str = "") -> bytes:
    """A calendar from VEVENT/VTIMEZONE blocks written with LF, sent with CRLF as the RFC wants."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Example Council//Meetings//EN"]
    lines += [line for line in head.strip().splitlines() if line]
    for block in blocks:
        lines += [line for line in block.strip("\n").splitlines() if line]
    lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode()


def event(uid: str = "m1", summary: str = "Cabinet", start: str = "DTSTART:20250401T130000Z", extra: str = "") -> str:
    return f"BEGIN:VEVENT\nUID:{uid}\nSUMMARY:{summary}\n{start}\n{extra}\nEND:VEVENT"


async def collect(body: bytes, st: SourceState | None = None) -> list[Record]:
    records = await IcalAdapter().collect(CAL_URL, fake_fetch({"calendar": body}), st or state())
    assert records is not None
    return records


# ---- the recorded calendar ------------------------------------------------------------------------------------------


async def test_ical_fixture_detroit_board_of_education() -> None:
    fetch = fake_fetch({r"calendar\.ics": (FIXTURES / "det_board_of_education.ics").read_bytes()})

    records = await IcalAdapter().collect(CAL_URL, fetch, state(timezone="America/Detroit"))

    assert fetch.asked == [(CAL_URL, True)]
    assert records is not None
    assert len(records) == 33
    assert len({r.external_id for r in records}) == 33
    assert records[0] == Record(
        kind=ItemKind.MEETING,
        external_id="7856",
        title="DPSCD Regular Board Meeting (Open)",
        body="",
        starts_at=datetime(2019, 4, 16, 21, 30, tzinfo=UTC),
        status="confirmed",
        url=None,
        data={
            "ends_at": "2019-04-16T23:30:00+00:00",
            "location": "Renaissance High School, Detroit, MI 48235, USA",
            "all_day": False,
            "categories": [],
        },
    )
    # A folded LOCATION line is unfolded.
    folded = next(r for r in records if r.external_id == "8973")
    assert folded.data["location"] == "Fisher Building, 3011 W. Grand Boulevard, 12th Floor Conference Room"
    # A trailing space in SUMMARY is not part of the title.
    assert next(r for r in records if r.external_id == "15351").title == "DPSCD Special Meeting (Open)"


async def test_ical_not_modified_returns_none() -> None:
    fetch = fake_fetch({"calendar": ics(event())}, not_modified=True)

    assert await IcalAdapter().collect(CAL_URL, fetch, state()) is None
    assert fetch.asked == [(CAL_URL, True)]


async def test_ical_empty_calendar_is_an_empty_list() -> None:
    assert await collect(ics()) == []


# ---- time zones -----------------------------------------------------------------------------------------------------

GMT_STANDARD_TIME = """
BEGIN:VTIMEZONE
TZID:GMT Standard Time
BEGIN:STANDARD
DTSTART:16010101T020000
TZOFFSETFROM:+0100
TZOFFSETTO:+0000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010101T010000
TZOFFSETFROM:+0000
TZOFFSETTO:+0100
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3
END:DAYLIGHT
END:VTIMEZONE
"""

BROKEN_LONDON = """
BEGIN:VTIMEZONE
TZID:Europe/London
BEGIN:STANDARD
DTSTART:garbage
TZOFFSETTO:+0000
END:STANDARD
END:VTIMEZONE
"""

BROKEN_CUSTOM = """
BEGIN:VTIMEZONE
TZID:Council Time
BEGIN:STANDARD
DTSTART:16010101T020000
TZOFFSETFROM:+0100
TZOFFSETTO:zz
END:STANDARD
END:VTIMEZONE
"""

# A VTIMEZONE that parses but is wrong (+05:00): an IANA name wins over it.
WRONG_LONDON = """
BEGIN:VTIMEZONE
TZID:Europe/London
BEGIN:STANDARD
DTSTART:16010101T000000
TZOFFSETFROM:+0500
TZOFFSETTO:+0500
END:STANDARD
END:VTIMEZONE
"""

# A custom TZID with a working VTIMEZONE of its own.
CUSTOM_PLUS_TWO = """
BEGIN:VTIMEZONE
TZID:Council Time
BEGIN:STANDARD
DTSTART:16010101T000000
TZOFFSETFROM:+0200
TZOFFSETTO:+0200
END:STANDARD
END:VTIMEZONE
"""


@pytest.mark.parametrize(
    ("blocks", "start", "head", "council_tz", "expected"),
    [
        ((), "DTSTART:20250701T090000Z", "", "Europe/London", datetime(2025, 7, 1, 9, 0, tzinfo=UTC)),
        ((), "DTSTART;TZID=Europe/London:20250701T100000", "", "Europe/London", datetime(2025, 7, 1, 9, 0, tzinfo=UTC)),
        ((), "DTSTART;TZID=Europe/London:20251201T100000", "", "Europe/London",
         datetime(2025, 12, 1, 10, 0, tzinfo=UTC)),
        ((GMT_STANDARD_TIME,), "DTSTART;TZID=GMT Standard Time:20250701T100000", "", "Europe/London",
         datetime(2025, 7, 1, 9, 0, tzinfo=UTC)),
        ((), "DTSTART;TZID=GMT Standard Time:20250701T100000", "", "Europe/London",
         datetime(2025, 7, 1, 9, 0, tzinfo=UTC)),
        ((), 'DTSTART;TZID="/mozilla.org/20050126_1/Europe/London":20250701T100000', "", "UTC",
         datetime(2025, 7, 1, 9, 0, tzinfo=UTC)),
        ((BROKEN_LONDON,), "DTSTART;TZID=Europe/London:20250701T100000", "", "UTC",
         datetime(2025, 7, 1, 9, 0, tzinfo=UTC)),
        ((WRONG_LONDON,), "DTSTART;TZID=Europe/London:20250701T100000", "", "UTC",
         datetime(2025, 7, 1, 9, 0, tzinfo=UTC)),
        ((BROKEN_CUSTOM,), "DTSTART;TZID=Council Time:20250701T100000", "", "Europe/London",
         datetime(2025, 7, 1, 9, 0, tzinfo=UTC)),
        ((), "DTSTART;TZID=Council Time:20250701T100000", "", "Europe/London", datetime(2025, 7, 1, 9, 0, tzinfo=UTC)),
        ((CUSTOM_PLUS_TWO,), "DTSTART;TZID=Council Time:20250701T100000", "", "Europe/London",
         datetime(2025, 7, 1, 8, 0, tzinfo=UTC)),
        ((), "DTSTART:20250701T100000", "", "Europe/London", datetime(2025, 7, 1, 9, 0, tzinfo=UTC)),
        ((), "DTSTART:20250101T100000", "", "Europe/London", datetime(2025, 1, 1, 10, 0, tzinfo=UTC)),
        ((), "DTSTART:20250701T100000", "X-WR-TIMEZONE:America/New_York", "Europe/London",
         datetime(2025, 7, 1, 14, 0, tzinfo=UTC)),
        # The spring gap: 01:30 on 30 March 2025 never happens in London; read with the offset before the change.
        ((), "DTSTART;TZID=Europe/London:20250330T013000", "", "Europe/London",
         datetime(2025, 3, 30, 1, 30, tzinfo=UTC)),
        # The autumn overlap: 01:30 on 26 October 2025 happens twice; the first (BST) is taken.
        ((), "DTSTART;TZID=Europe/London:20251026T013000", "", "Europe/London",
         datetime(2025, 10, 26, 0, 30, tzinfo=UTC)),
    ],
    ids=[
        "utc", "iana-summer", "iana-winter", "windows-vtimezone", "windows-no-vtimezone", "mozilla-prefix",
        "broken-vtimezone-iana", "wrong-vtimezone-iana", "broken-vtimezone-custom", "missing-vtimezone-custom",
        "working-custom-vtimezone", "floating-summer", "floating-winter", "x-wr-timezone", "dst-gap",
        "dst-overlap",
    ],
)
async def test_ical_start_times(
    blocks: tuple[str, ...], start: str, head: str, council_tz: str, expected: datetime
) -> None:
    [record] = await collect(ics(*blocks, event(start=start), head=head), state(timezone=council_tz))

    assert record.starts_at == expected
    assert record.data["all_day"] is False


OUTLOOK_CUSTOM = """
BEGIN:VTIMEZONE
TZID:(UTC+00:00) Dublin, Edinburgh, Lisbon, London
X-LIC-LOCATION:Europe/London
BEGIN:STANDARD
DTSTART:16010101T000000
TZOFFSETFROM:+0000
TZOFFSETTO:+0000
END:STANDARD
END:VTIMEZONE
"""

CUSTOMIZED_PLUS_TWO = """
BEGIN:VTIMEZONE
TZID:Customized Time Zone
X-MICROSOFT-CDO-TZID:4
BEGIN:STANDARD
DTSTART:16010101T000000
TZOFFSETFROM:+0200
TZOFFSETTO:+0200
X-WHATEVER:1
END:STANDARD
END:VTIMEZONE
"""


async def test_ical_vtimezone_with_x_properties_and_location_hint() -> None:
    body = ics(
        OUTLOOK_CUSTOM,
        CUSTOMIZED_PLUS_TWO,
        event("a", start="DTSTART;TZID=\"(UTC+00:00) Dublin, Edinburgh, Lisbon, London\":20250701T100000"),
        event("b", start="DTSTART;TZID=Customized Time Zone:20250701T100000"),
    )

    records = await collect(body, state(timezone="UTC"))

    # The location hint wins over the block's (wrong, fixed +00:00) rules; the X- properties do not break the other.
    assert [r.starts_at for r in records] == [
        datetime(2025, 7, 1, 9, 0, tzinfo=UTC), datetime(2025, 7, 1, 8, 0, tzinfo=UTC)
    ]


async def test_ical_custom_zones_do_not_leak_between_calendars() -> None:
    with_definition = ics(CUSTOMIZED_PLUS_TWO, event(start="DTSTART;TZID=Customized Time Zone:20250701T100000"))
    without_definition = ics(event(start="DTSTART;TZID=Customized Time Zone:20250701T100000"))

    first = await collect(with_definition)
    second = await collect(without_definition)

    assert first[0].starts_at == datetime(2025, 7, 1, 8, 0, tzinfo=UTC)
    # Not +02:00 from the other calendar: an undefined custom zone is the council's.
    assert second[0].starts_at == datetime(2025, 7, 1, 9, 0, tzinfo=UTC)


async def test_ical_ends_at_from_dtend_and_duration() -> None:
    body = ics(
        event("a", start="DTSTART;TZID=Europe/London:20250701T100000", extra="DTEND;TZID=Europe/London:20250701T1200"
              "00"),
        event("b", start="DTSTART:20250701T090000Z", extra="DURATION:PT1H30M"),
        event("c", start="DTSTART:20250701T090000Z"),
    )

    records = await collect(body)

    assert [r.data["ends_at"] for r in records] == [
        "2025-07-01T11:00:00+00:00", "2025-07-01T10:30:00+00:00", None
    ]


@pytest.mark.parametrize(
    ("start", "end", "expected_start", "expected_end"),
    [
        ("DTSTART;VALUE=DATE:20250701", "DTEND;VALUE=DATE:20250702", datetime(2025, 6, 30, 23, 0, tzinfo=UTC),
         "2025-07-01T23:00:00+00:00"),
        ("DTSTART;VALUE=DATE:20251201", "DTEND;VALUE=DATE:20251203", datetime(2025, 12, 1, 0, 0, tzinfo=UTC),
         "2025-12-03T00:00:00+00:00"),
        ("DTSTART;VALUE=DATE:20251201", "", datetime(2025, 12, 1, 0, 0, tzinfo=UTC), None),
    ],
    ids=["summer", "winter-two-days", "no-end"],
)
async def test_ical_all_day_events_start_at_local_midnight(
    start: str, end: str, expected_start: datetime, expected_end: str | None
) -> None:
    [record] = await collect(ics(event(start=start, extra=end)))

    assert (record.starts_at, record.data["all_day"], record.data["ends_at"]) == (expected_start, True, expected_end)


# ---- text, status, identity -----------------------------------------------------------------------------------------


async def test_ical_escapes_folding_and_lf_line_endings() -> None:
    body = (
        b"BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nUID:esc-1\n"
        b"SUMMARY:Health\\, Care and Wellbeing Board\\; special meeting\n"
        b"DESCRIPTION:Agenda:\\n1. Apologies\\n2. Dementia strategy \\, update\\n\n"
        b"  (continued after a fold)\n"
        b"LOCATION:Council Chamber\\, Town Hall\\; Market Square\n"
        b"DTSTART:20250401T130000Z\nURL:https://democracy.example-council.gov.uk/ieListDocuments.aspx?CId=1&MId=2\n"
        b"CATEGORIES:Health and Wellbeing Board,Scrutiny\n"
        b"CREATED:20250301T101500Z\n"
        b"END:VEVENT\nEND:VCALENDAR\n"
    )

    [record] = await collect(body)

    assert record.title == "Health, Care and Wellbeing Board; special meeting"
    assert record.body == "Agenda:\n1. Apologies\n2. Dementia strategy , update\n(continued after a fold)"
    assert record.data["location"] == "Council Chamber, Town Hall; Market Square"
    assert record.url == "https://democracy.example-council.gov.uk/ieListDocuments.aspx?CId=1&MId=2"
    assert record.data["categories"] == ["Health and Wellbeing Board", "Scrutiny"]
    assert record.published_at == datetime(2025, 3, 1, 10, 15, tzinfo=UTC)


async def test_ical_html_description_becomes_text_and_bad_url_is_dropped() -> None:
    body = ics(event(extra="DESCRIPTION:<p>Agenda</p><ul><li>Budget</li><li>Libraries</li></ul>\n"
                           "URL:javascript:alert(1)"))  # fmt: skip

    [record] = await collect(body)

    assert (record.body, record.url) == ("Agenda\nBudget\nLibraries", None)


@pytest.mark.parametrize(
    ("summary", "extra", "head", "expected_title", "expected_status"),
    [
        ("Cabinet", "STATUS:CONFIRMED", "", "Cabinet", "confirmed"),
        ("Cabinet", "", "", "Cabinet", "confirmed"),
        ("Cabinet", "STATUS:CANCELLED", "", "Cabinet", "cancelled"),
        ("Cabinet (Cancelled)", "STATUS:CONFIRMED", "", "Cabinet", "cancelled"),
        ("CANCELLED: Cabinet", "", "", "Cabinet", "cancelled"),
        ("Cabinet - POSTPONED", "", "", "Cabinet", "cancelled"),
        ("Cabinet", "STATUS:TENTATIVE", "", "Cabinet", "provisional"),
        ("Cabinet", "", "METHOD:CANCEL", "Cabinet", "cancelled"),
        ("Review of cancelled bus routes", "", "", "Review of cancelled bus routes", "confirmed"),
    ],
)
async def test_ical_status_and_cancellation_markers(
    summary: str, extra: str, head: str, expected_title: str, expected_status: str
) -> None:
    [record] = await collect(ics(event(summary=summary, extra=extra), head=head))

    assert (record.title, record.status) == (expected_title, expected_status)


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Cabinet (Cancelled)", ("Cabinet", True)),
        ("Cabinet [CANCELLED]", ("Cabinet", True)),
        ("CANCELLED: Cabinet", ("Cabinet", True)),
        ("Cancelled - Planning Committee", ("Planning Committee", True)),
        ("Meeting cancelled: Planning Committee", ("Planning Committee", True)),
        ("Cabinet - meeting cancelled", ("Cabinet", True)),
        ("Cabinet – Canceled", ("Cabinet", True)),
        ("Cabinet CANCELLED 4 Dec", ("Cabinet 4 Dec", True)),
        ("Scrutiny (postponed to 9 December)", ("Scrutiny", True)),
        ("Review of cancelled bus routes", ("Review of cancelled bus routes", False)),
        ("Cabinet", ("Cabinet", False)),
        ("CANCELLED", ("", True)),
    ],
)
def test_ical_split_cancelled(title: str, expected: tuple[str, bool]) -> None:
    assert split_cancelled(title) == expected


async def test_ical_duplicate_uids_are_told_apart_by_start() -> None:
    body = ics(
        event("1", "Cabinet", "DTSTART:20250401T130000Z"),
        event("1", "Council", "DTSTART:20250402T130000Z"),
        event("2", "Scrutiny", "DTSTART:20250403T130000Z"),
    )

    records = await collect(body)

    assert [(r.external_id, r.title) for r in records] == [
        ("1#20250401T130000Z", "Cabinet"), ("1#20250402T130000Z", "Council"), ("2", "Scrutiny")
    ]


async def test_ical_missing_uid_gets_a_stable_hash() -> None:
    body = ics("BEGIN:VEVENT\nSUMMARY:Cabinet\nDTSTART:20250401T130000Z\nEND:VEVENT")

    first, again = await collect(body), await collect(body)

    assert first[0].external_id == again[0].external_id
    assert re.fullmatch(r"sha256:[0-9a-f]{32}", first[0].external_id)


async def test_ical_event_with_unreadable_start_is_skipped() -> None:
    body = ics(event("bad", start="DTSTART:2025040"), event("none", start=""), event("good"))

    assert [r.external_id for r in await collect(body)] == ["good"]


async def test_ical_all_events_unreadable_fails() -> None:
    with pytest.raises(SourceError, match="none with a readable start"):
        await collect(ics(event("bad", start="DTSTART:2025040"), event("none", start="")))


async def test_ical_unreadable_properties_are_ignored() -> None:
    body = ics(
        event("p1", "Cabinet", "DTSTART:20250401T130000Z",
              "DTEND:garbage\nDURATION:PT1Q\nCREATED:bad\nURL:not a url\nSUMMARY:Second summary"),
        event("p2", "Council", "DTSTART:20250402T130000Z", "RRULE:FREQ=WEEKLY;BYDAY=XX\nEXDATE:garbage"),
        event("p3", "Scrutiny", "DTSTART:20250403T130000Z", "RRULE:FREQ=WEEKLY;COUNT=2\nEXDATE:garbage"),
    )

    records = await collect(body)

    assert [(r.external_id, r.title, r.starts_at, r.url, r.published_at, r.data["ends_at"]) for r in records] == [
        ("p1", "Cabinet", datetime(2025, 4, 1, 13, 0, tzinfo=UTC), None, None, None),
        # An unreadable rule: the first occurrence only, under the bare UID.
        ("p2", "Council", datetime(2025, 4, 2, 13, 0, tzinfo=UTC), None, None, None),
        # A readable rule with an unreadable EXDATE: expanded, the EXDATE ignored.
        ("p3#20250403T130000Z", "Scrutiny", datetime(2025, 4, 3, 13, 0, tzinfo=UTC), None, None, None),
        ("p3#20250410T130000Z", "Scrutiny", datetime(2025, 4, 10, 13, 0, tzinfo=UTC), None, None, None),
    ]


# ---- recurrence -----------------------------------------------------------------------------------------------------

WEEKLY = """
BEGIN:VEVENT
UID:weekly-1
SUMMARY:Planning Committee
DTSTART;TZID=Europe/London:20250304T100000
DTEND;TZID=Europe/London:20250304T120000
RRULE:FREQ=WEEKLY;UNTIL=20250501T000000Z
EXDATE;TZID=Europe/London:20250401T100000
END:VEVENT
BEGIN:VEVENT
UID:weekly-1
RECURRENCE-ID;TZID=Europe/London:20250408T100000
SUMMARY:Planning Committee (Cancelled)
DTSTART;TZID=Europe/London:20250408T100000
DTEND;TZID=Europe/London:20250408T120000
END:VEVENT
BEGIN:VEVENT
UID:weekly-1
RECURRENCE-ID;TZID=Europe/London:20250415T100000
SUMMARY:Planning Committee
DTSTART;TZID=Europe/London:20250416T140000
DTEND;TZID=Europe/London:20250416T160000
END:VEVENT
"""


async def test_ical_recurrence_across_dst_with_exdate_and_overrides() -> None:
    records = await collect(ics(WEEKLY))

    assert [(r.external_id, r.starts_at, r.status, r.data["ends_at"]) for r in records] == [
        ("weekly-1#20250304T100000Z", datetime(2025, 3, 4, 10, tzinfo=UTC), "confirmed", "2025-03-04T12:00:00+00:00"),
        ("weekly-1#20250311T100000Z", datetime(2025, 3, 11, 10, tzinfo=UTC), "confirmed", "2025-03-11T12:00:00+00:00"),
        ("weekly-1#20250318T100000Z", datetime(2025, 3, 18, 10, tzinfo=UTC), "confirmed", "2025-03-18T12:00:00+00:00"),
        ("weekly-1#20250325T100000Z", datetime(2025, 3, 25, 10, tzinfo=UTC), "confirmed", "2025-03-25T12:00:00+00:00"),
        # 1 April is an EXDATE; from 30 March London is on BST, so 10:00 is 09:00 UTC.
        ("weekly-1#20250408T090000Z", datetime(2025, 4, 8, 9, tzinfo=UTC), "cancelled", "2025-04-08T11:00:00+00:00"),
        # Moved by its override to the Wednesday afternoon; it keeps the identity of the Tuesday it replaces.
        ("weekly-1#20250415T090000Z", datetime(2025, 4, 16, 13, tzinfo=UTC), "confirmed", "2025-04-16T15:00:00+00:00"),
        ("weekly-1#20250422T090000Z", datetime(2025, 4, 22, 9, tzinfo=UTC), "confirmed", "2025-04-22T11:00:00+00:00"),
        ("weekly-1#20250429T090000Z", datetime(2025, 4, 29, 9, tzinfo=UTC), "confirmed", "2025-04-29T11:00:00+00:00"),
    ]
    assert records[4].title == "Planning Committee"


async def test_ical_recurrence_only_inside_the_window() -> None:
    body = ics(event("monthly", "Council", "DTSTART;TZID=Europe/London:20200115T190000", "RRULE:FREQ=MONTHLY"))

    records = await collect(body, state(days_back=30, days_ahead=60))

    # 20 February to 19 May 2025.
    assert [r.external_id for r in records] == [
        "monthly#20250315T190000Z", "monthly#20250415T180000Z", "monthly#20250515T180000Z"
    ]


async def test_ical_recurrence_is_capped() -> None:
    body = ics(event("daily", "Drop-in surgery", "DTSTART:20250301T100000Z", "RRULE:FREQ=DAILY"))

    records = await collect(body, state(max_occurrences=5))

    assert [r.starts_at for r in records] == [datetime(2025, 3, day, 10, 0, tzinfo=UTC) for day in range(1, 6)]


async def test_ical_recurrence_count_and_all_day() -> None:
    body = ics(event("bank", "Offices closed", "DTSTART;VALUE=DATE:20250401", "RRULE:FREQ=WEEKLY;COUNT=3"))

    records = await collect(body)

    assert [(r.external_id, r.starts_at, r.data["all_day"]) for r in records] == [
        ("bank#20250401", datetime(2025, 3, 31, 23, 0, tzinfo=UTC), True),
        ("bank#20250408", datetime(2025, 4, 7, 23, 0, tzinfo=UTC), True),
        ("bank#20250415", datetime(2025, 4, 14, 23, 0, tzinfo=UTC), True),
    ]


async def test_ical_recurrence_floating_with_date_until() -> None:
    body = ics(event("f", "Licensing", "DTSTART:20250401T180000", "RRULE:FREQ=WEEKLY;UNTIL=20250415"))

    records = await collect(body)

    assert [r.starts_at for r in records] == [
        datetime(2025, 4, 1, 17, 0, tzinfo=UTC), datetime(2025, 4, 8, 17, 0, tzinfo=UTC),
        datetime(2025, 4, 15, 17, 0, tzinfo=UTC),
    ]


async def test_ical_rdate_only_series() -> None:
    body = ics(event("r", "Budget council", "DTSTART:20250401T180000Z",
                     "RDATE:20250415T180000Z,20250429T170000Z\nRDATE;VALUE=DATE:20250506"))  # fmt: skip

    records = await collect(body)

    assert [(r.external_id, r.starts_at) for r in records] == [
        ("r#20250401T180000Z", datetime(2025, 4, 1, 18, 0, tzinfo=UTC)),
        ("r#20250415T180000Z", datetime(2025, 4, 15, 18, 0, tzinfo=UTC)),
        ("r#20250429T170000Z", datetime(2025, 4, 29, 17, 0, tzinfo=UTC)),
        # A DATE in RDATE takes the series' time of day.
        ("r#20250506T180000Z", datetime(2025, 5, 6, 18, 0, tzinfo=UTC)),
    ]


async def test_ical_too_frequent_rule_is_not_expanded() -> None:
    body = ics(event("spam", "Spam", "DTSTART:19900101T000000Z", "RRULE:FREQ=MINUTELY"))

    records = await collect(body)

    assert [(r.external_id, r.starts_at) for r in records] == [("spam", datetime(1990, 1, 1, tzinfo=UTC))]


async def test_ical_single_events_outside_the_window_are_kept() -> None:
    body = ics(event("old", start="DTSTART:20150101T100000Z"), event("far", start="DTSTART:20300101T100000Z"))

    assert [r.external_id for r in await collect(body)] == ["old", "far"]


# ---- hostile bodies -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty"),
        (b" \r\n ", "empty"),
        (b"<!DOCTYPE html><html><body>Error 500</body></html>", "HTML"),
        (b"\xef\xbb\xbf\r\n<html><script>location='/login'</script></html>", "HTML"),
        (ics(event())[:-40], "truncated"),
        (ics(event()).replace(b"END:VCALENDAR\r\n", b""), "truncated"),
        (b'{"error": "not found"}', "not an iCalendar"),
        (b"BEGIN:VCALENDAR\r\nthis is not a content line\r\nEND:VCALENDAR\r\n", "cannot be parsed"),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:20250101T000000Z\r\nEND:VCALENDAR\r\n", "cannot be parsed"),
    ],
    ids=["empty", "whitespace", "html", "html-after-bom", "truncated-mid-event", "truncated-no-end", "json",
         "bad-content-line", "unclosed-component"],
)
async def test_ical_hostile_body_fails(body: bytes, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        await collect(body)


async def test_ical_huge_body_fails() -> None:
    body = ics(*(event(f"u{i}", "x" * 500) for i in range(45_000)))
    assert len(body) > 20 * 1024 * 1024

    with pytest.raises(SourceError, match="over the 20971520-byte limit"):
        await collect(body)


async def test_ical_wrong_encoding_is_read_as_windows_1252() -> None:
    body = ics(event(summary="Council{Q}s {P}5m budget")).replace(b"{Q}", b"\x92").replace(b"{P}", b"\xa3")

    [record] = await collect(body)

    assert record.title == "Council’s £5m budget"


async def test_ical_utf16_with_byte_order_mark() -> None:
    body = ics(event(summary="Council’s £5m budget")).decode().encode("utf-16")

    [record] = await collect(body)

    assert record.title == "Council’s £5m budget"


async def test_ical_bad_option_fails_clearly() -> None:
    with pytest.raises(SourceError, match="days_ahead"):
        await collect(ics(event()), state(days_ahead="lots"))
