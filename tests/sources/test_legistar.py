"""The Legistar adapter: the recorded Metro payloads, the OData requests it builds, paging, incremental polls, time
zones, cancellations, detail budgets and answers that must fail the poll."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from notifier.models import ItemKind
from notifier.sources.base import Record, SourceError, SourceState
from notifier.sources.legistar import LegistarAdapter
from tests.sources import fakes
from tests.sources.fakes import Body

FIXTURES = Path(__file__).parent.parent / "fixtures" / "legistar"
BASE = "https://webapi.legistar.com/v1/metro"
NOW = datetime(2024, 9, 20, 12, 0, tzinfo=UTC)
LA = "America/Los_Angeles"


def fake_fetch(routes: Mapping[str, Body], **kwargs: Any) -> fakes.FakeFetch:
    """`fakes.FakeFetch` answering with this format's content type unless told otherwise."""
    return fakes.FakeFetch(routes, **{"content_type": "application/json; charset=utf-8", **kwargs})


def paths(fetch: fakes.FakeFetch) -> list[str]:
    """The paths asked, after the client's base URL, unquoted."""
    return [unquote(url.removeprefix(BASE)) for url, _ in fetch.asked]


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_bytes())


def as_json(value: Any) -> bytes:
    return json.dumps(value).encode()


def make_event(event_id: int = 2907, **fields: Any) -> dict[str, Any]:
    """The recorded Metro event with another id and any fields replaced."""
    event: dict[str, Any] = load("metro_event.json")
    event.update({"EventId": event_id, **fields})
    return event


def state(
    now: datetime = NOW, tz: str = LA, last_success_at: datetime | None = None,
    known: dict[tuple[ItemKind, str], dict[str, Any]] | None = None, **options: Any,
) -> SourceState:
    return SourceState(now=now, timezone=tz, options=options, known=known or {}, last_success_at=last_success_at)


def routes(events: list[dict[str, Any]], *, items: Body = b"[]", matters: Body = b"[]") -> dict[str, Body]:
    return {
        r"/events\?": as_json(events),
        r"/events/\d+/eventitems": items,
        r"/matters\?": matters,
        r"/matters/\d+/attachments": b"[]",
    }


async def collect(fetch: fakes.FakeFetch, st: SourceState | None = None, url: str = BASE) -> list[Record]:
    records = await LegistarAdapter().collect(url, fetch, st or state())
    assert records is not None
    return records


def by_key(records: list[Record]) -> dict[tuple[ItemKind, str], Record]:
    return {(r.kind, r.external_id): r for r in records}


# ---- the recorded payloads ------------------------------------------------------------------------------------------


async def test_legistar_fixture_requests() -> None:
    fetch = fake_fetch({
        r"/events\?": as_json([load("metro_event.json")]),
        r"/events/2907/eventitems": (FIXTURES / "metro_eventitems.json").read_bytes(),
        r"/matters\?": (FIXTURES / "metro_matters.json").read_bytes(),
        r"/matters/10881/attachments": (FIXTURES / "metro_matter_attachments.json").read_bytes(),
    })

    await collect(fetch)

    assert fetch.asked == [
        (f"{BASE}/events?$filter=EventDate%20ge%20datetime%272024-08-21%27%20and%20EventDate%20lt%20datetime"
         "%272025-01-18%27&$orderby=EventId&$top=1000&$skip=0", True),
        (f"{BASE}/matters?$filter=MatterLastModifiedUtc%20gt%20datetime%272024-08-21T12%3A00%3A00%27"
         "&$orderby=MatterId&$top=1000&$skip=0", False),
        (f"{BASE}/events/2907/eventitems?AgendaNote=1&MinutesNote=1&Attachments=1", False),
        (f"{BASE}/matters/10881/attachments", False),
    ]


async def test_legistar_fixture_records() -> None:
    fetch = fake_fetch({
        r"/events\?": as_json([load("metro_event.json")]),
        r"/events/2907/eventitems": (FIXTURES / "metro_eventitems.json").read_bytes(),
        r"/matters\?": (FIXTURES / "metro_matters.json").read_bytes(),
        r"/matters/10881/attachments": (FIXTURES / "metro_matter_attachments.json").read_bytes(),
    })

    records = by_key(await collect(fetch))

    assert sorted(records) == sorted([
        (ItemKind.MEETING, "2907"),
        (ItemKind.DOCUMENT, "event:2907:agenda"),
        (ItemKind.AGENDA_ITEM, "31501"),
        (ItemKind.AGENDA_ITEM, "31510"),
        (ItemKind.DOCUMENT, "attachment:27980"),
        (ItemKind.DECISION, "matter:10881"),
        (ItemKind.DOCUMENT, "attachment:28753"),
        (ItemKind.DOCUMENT, "attachment:28754"),
        (ItemKind.DOCUMENT, "attachment:28800"),
        (ItemKind.DOCUMENT, "attachment:28801"),
    ])
    committee = "Board of Directors - Regular Board Meeting"
    assert records[ItemKind.MEETING, "2907"] == Record(
        kind=ItemKind.MEETING,
        external_id="2907",
        title=committee,
        committee=committee,
        committee_id="138",
        body="Watch online: https://boardagendas.metro.net\nListen by phone: Dial 202-735-3323 and enter Access Code:\n"
        "5647249# (English) or 7292892# (Español)\n"
        "To give written or live public comment, please see the top of page 4",
        # 10:00 AM Pacific Daylight Time.
        starts_at=datetime(2024, 9, 26, 17, 0, tzinfo=UTC),
        status="confirmed",
        url="https://metro.legistar.com/MeetingDetail.aspx?LEGID=2907&GID=557&G=A5FAA737-A54D-4A6C-B1E8-FF70F765FA94",
        data={
            "location": "One Gateway Plaza, Los Angeles, CA 90012, 3rd Floor, Metro Board Room",
            "time_known": True,
            "time_text": "10:00 AM",
            "agenda_status": "Final",
            "minutes_status": "Draft",
            "agenda_published": True,
            "minutes_published": False,
            "agenda_url": "https://metro.legistar1.com/metro/meetings/2024/9/2907_A_Board_of_Directors_-_Regular_Board_"
            "Meeting_24-09-26_Agenda.pdf",
            "minutes_url": None,
            "video_url": None,
            "_detail_key": "2024-09-21T00:49:38.617|2024-09-21T00:49:38.513|",
            "_detail_at": "2024-09-20T12:00:00",
        },
    )
    agenda = records[ItemKind.DOCUMENT, "event:2907:agenda"]
    assert (agenda.title, agenda.parent, agenda.published_at, agenda.data) == (
        f"Agenda: {committee}, 26 Sep 2024",
        (ItemKind.MEETING, "2907"),
        datetime(2024, 9, 21, 0, 49, 38, 513000, tzinfo=UTC),
        {"document_type": "agenda"},
    )
    item = records[ItemKind.AGENDA_ITEM, "31510"]
    assert item == Record(
        kind=ItemKind.AGENDA_ITEM,
        external_id="31510",
        title="APPROVE Minutes of the Regular Board Meeting held July 25, 2024.",
        committee=committee,
        committee_id="138",
        body="CONSENT CALENDAR\nItems 2, 6 and 9 are consent items.\n\n"
        "APPROVED Consent Calendar Items 2, 6 and 9.\nMotion by Director Horvath, seconded by Director Butts.",
        starts_at=datetime(2024, 9, 26, 17, 0, tzinfo=UTC),
        parent=(ItemKind.MEETING, "2907"),
        data={
            "number": "2.", "sequence": 6, "matter_id": "10712", "matter_file": "2024-0571",
            "matter_type": "Minutes", "matter_status": "Passed", "action": "APPROVED", "passed": "Pass",
            "tally": "12-0",
        },
    )
    attachment = records[ItemKind.DOCUMENT, "attachment:27980"]
    assert (attachment.title, attachment.url, attachment.parent) == (
        "Regular Board Meeting MINUTES - July 25, 2024",
        "https://metro.legistar1.com/metro/attachments/0d6c1a55-2f0e-4f5b-8a0e-5b1f2f6c9e11.pdf",
        (ItemKind.AGENDA_ITEM, "31510"),
    )
    decision = records[ItemKind.DECISION, "matter:10881"]
    assert (
        decision.title, decision.committee, decision.status, decision.starts_at, decision.published_at, decision.url
    ) == (
        "APPROVE Minutes of the Regular Board Meeting held September 26, 2024 and the Special Board Meeting/Ad Hoc "
        "2028 Olympic & Paralympic Games Committee held October 23, 2024.",
        committee, "passed", datetime(2024, 10, 31, 7, 0, tzinfo=UTC), datetime(2024, 10, 31, 7, 0, tzinfo=UTC),
        None,
    )
    assert {k: v for k, v in decision.data.items() if not k.startswith("_")} == {
        "document_type": "matter", "matter_id": "10881", "file": "2024-1026", "type": "Minutes", "status": "Passed",
        "intro_date": "2024-10-22", "agenda_date": "2024-10-31", "passed_date": "2024-10-31", "enactment_date": None,
        "enactment_number": "",
    }
    assert records[ItemKind.DOCUMENT, "attachment:28754"].parent == (ItemKind.DECISION, "matter:10881")


async def test_legistar_not_modified_returns_none() -> None:
    fetch = fake_fetch(routes([make_event()]), not_modified=True)

    assert await LegistarAdapter().collect(BASE, fetch, state()) is None
    assert len(fetch.asked) == 1
    assert fetch.asked[0][1] is True


# ---- the requests ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("last_success_at", "options", "since"),
    [
        (datetime(2025, 11, 20, 10, 15, 30, tzinfo=UTC), {}, "2025-11-19T10:15:30"),
        (datetime(2025, 11, 20, 10, 15, 30, tzinfo=UTC), {"lookback_hours": 2}, "2025-11-20T08:15:30"),
        (datetime(2025, 7, 1, 12, tzinfo=timezone(timedelta(hours=1))), {"lookback_hours": 0}, "2025-07-01T11:00:00"),
    ],
)
async def test_legistar_incremental_filter_from_last_success_at(
    last_success_at: datetime, options: dict[str, Any], since: str
) -> None:
    fetch = fake_fetch(routes([]))

    await collect(fetch, state(now=datetime(2025, 11, 21, tzinfo=UTC), last_success_at=last_success_at, **options))

    assert paths(fetch) == [
        f"/events?$filter=EventLastModifiedUtc gt datetime'{since}'&$orderby=EventId&$top=1000&$skip=0",
        f"/matters?$filter=MatterLastModifiedUtc gt datetime'{since}'&$orderby=MatterId&$top=1000&$skip=0",
    ]
    assert "'" not in fetch.asked[0][0] and " " not in fetch.asked[0][0]


async def test_legistar_window_uses_the_client_zone_and_options() -> None:
    fetch = fake_fetch(routes([]))

    # 03:00 UTC on 1 March is still 28 February in Los Angeles.
    await collect(fetch, state(now=datetime(2025, 3, 1, 3, 0, tzinfo=UTC), days_back=7, days_ahead=14, matters=False))

    assert paths(fetch) == [
        "/events?$filter=EventDate ge datetime'2025-02-21' and EventDate lt datetime'2025-03-14'&$orderby=EventId"
        "&$top=1000&$skip=0"
    ]


async def test_legistar_token_and_trailing_slash() -> None:
    fetch = fake_fetch(routes([make_event()]))

    await collect(fetch, state(token="s3cr et"), url=BASE + "/")

    assert len(fetch.asked) == 3
    assert all(url.startswith(BASE + "/") and "//" not in url.removeprefix("https://") for url, _ in fetch.asked)
    assert all(url.endswith("token=s3cr%20et") for url, _ in fetch.asked)


async def test_legistar_paging_three_pages() -> None:
    events = [make_event(100 + i, EventDate="2024-09-25T00:00:00") for i in range(5)]

    def page(url: str) -> bytes:
        skip = int(re.search(r"\$skip=(\d+)", url)[1])  # type: ignore[index]
        return as_json(events[skip : skip + 2])

    fetch = fake_fetch({r"/events\?": page, r"/eventitems": b"[]"})

    records = await collect(fetch, state(page_size=2, matters=False))

    list_requests = [(url, conditional) for url, conditional in fetch.asked if "/events?" in url]
    assert [re.search(r"\$top=(\d+)&\$skip=(\d+)", url).groups() for url, _ in list_requests] == [  # type: ignore[union-attr]
        ("2", "0"), ("2", "2"), ("2", "4")
    ]
    assert [conditional for _, conditional in list_requests] == [True, False, False]
    assert sorted(r.external_id for r in records if r.kind is ItemKind.MEETING) == ["100", "101", "102", "103", "104"]


async def test_legistar_paging_stops_after_an_empty_page() -> None:
    events = [make_event(100 + i) for i in range(4)]

    def page(url: str) -> bytes:
        skip = int(re.search(r"\$skip=(\d+)", url)[1])  # type: ignore[index]
        return as_json(events[skip : skip + 2])

    fetch = fake_fetch({r"/events\?": page, r"/eventitems": b"[]"})

    await collect(fetch, state(page_size=2, matters=False))

    assert sum("/events?" in url for url, _ in fetch.asked) == 3


async def test_legistar_paging_server_ignoring_skip_fails() -> None:
    fetch = fake_fetch({r"/events\?": as_json([make_event(1), make_event(2)])})

    with pytest.raises(SourceError, match="ignore \\$skip"):
        await collect(fetch, state(page_size=2, matters=False))


# ---- times ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "day", "clock", "expected", "time_known"),
    [
        ("Europe/London", "2025-07-01T00:00:00", "10:00 AM", datetime(2025, 7, 1, 9, 0, tzinfo=UTC), True),
        ("Europe/London", "2025-12-01T00:00:00", "10:00 AM", datetime(2025, 12, 1, 10, 0, tzinfo=UTC), True),
        ("Europe/London", "2025-03-30T00:00:00", "2:30 PM", datetime(2025, 3, 30, 13, 30, tzinfo=UTC), True),
        ("Europe/London", "2025-10-26T00:00:00", "2:30 PM", datetime(2025, 10, 26, 14, 30, tzinfo=UTC), True),
        (LA, "2024-09-26T00:00:00", "10:00 AM", datetime(2024, 9, 26, 17, 0, tzinfo=UTC), True),
        (LA, "2024-12-05T00:00:00", "9:30 AM", datetime(2024, 12, 5, 17, 30, tzinfo=UTC), True),
        (LA, "2024-12-05T00:00:00", None, datetime(2024, 12, 5, 8, 0, tzinfo=UTC), False),
        (LA, "2024-12-05T00:00:00", "TBD", datetime(2024, 12, 5, 8, 0, tzinfo=UTC), False),
    ],
)
async def test_legistar_event_times_across_dst(
    tz: str, day: str, clock: str | None, expected: datetime, time_known: bool
) -> None:
    fetch = fake_fetch(routes([make_event(EventDate=day, EventTime=clock)]))

    records = await collect(fetch, state(tz="UTC", timezone=tz, matters=False))

    meeting = by_key(records)[ItemKind.MEETING, "2907"]
    assert (meeting.starts_at, meeting.data["time_known"], meeting.data["time_text"]) == (
        expected, time_known, clock or ""
    )


async def test_legistar_council_zone_used_without_timezone_option() -> None:
    fetch = fake_fetch(routes([make_event(EventDate="2025-07-01T00:00:00", EventTime="10:00 AM")]))

    records = await collect(fetch, state(tz="Europe/London", matters=False))

    assert by_key(records)[ItemKind.MEETING, "2907"].starts_at == datetime(2025, 7, 1, 9, 0, tzinfo=UTC)


# ---- status and documents -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, "confirmed"),
        ({"EventAgendaStatusName": "Cancelled"}, "cancelled"),
        ({"EventAgendaStatusName": "Canceled"}, "cancelled"),
        ({"EventAgendaStatusName": "Postponed"}, "cancelled"),
        ({"EventComment": "This meeting has been CANCELED.\r\nIt will be rescheduled."}, "cancelled"),
        ({"EventComment": "POSTPONED to October 3"}, "cancelled"),
        ({"EventLocation": "CANCELLED"}, "cancelled"),
        ({"EventComment": "Cancellation policy for public comment: see page 4"}, "confirmed"),
    ],
)
async def test_legistar_cancellation(fields: dict[str, Any], expected: str) -> None:
    fetch = fake_fetch(routes([make_event(**fields)]))

    records = await collect(fetch, state(matters=False))

    assert by_key(records)[ItemKind.MEETING, "2907"].status == expected


@pytest.mark.parametrize(
    ("fields", "agenda", "minutes", "documents"),
    [
        ({}, True, False, ["event:2907:agenda"]),
        ({"EventMinutesStatusName": "Final", "EventMinutesFile": "https://metro.legistar1.com/m.pdf"}, True, True,
         ["event:2907:agenda", "event:2907:minutes"]),
        ({"EventAgendaStatusName": "Not Viewable by the Public"}, False, False, []),
        ({"EventAgendaFile": None}, False, False, []),
        ({"EventAgendaFile": "javascript:alert(1)"}, False, False, []),
    ],
)
async def test_legistar_agenda_and_minutes_published(
    fields: dict[str, Any], agenda: bool, minutes: bool, documents: list[str]
) -> None:
    fetch = fake_fetch(routes([make_event(**fields)]))

    records = await collect(fetch, state(matters=False))

    meeting = by_key(records)[ItemKind.MEETING, "2907"]
    assert (meeting.data["agenda_published"], meeting.data["minutes_published"]) == (agenda, minutes)
    assert [r.external_id for r in records if r.kind is ItemKind.DOCUMENT] == documents


@pytest.mark.parametrize(
    ("fields", "kind", "status"),
    [
        ({}, ItemKind.DECISION, "passed"),
        ({"MatterStatusName": "Adopted"}, ItemKind.DECISION, "adopted"),
        ({"MatterStatusName": "Approved as Amended"}, ItemKind.DECISION, "approved as amended"),
        ({"MatterStatusName": "Introduced"}, ItemKind.DOCUMENT, "introduced"),
        ({"MatterStatusName": "Failed"}, ItemKind.DOCUMENT, "failed"),
        ({"MatterStatusName": "Not Passed"}, ItemKind.DOCUMENT, "not passed"),
        ({"MatterStatusName": None}, ItemKind.DOCUMENT, None),
    ],
)
async def test_legistar_matter_kinds(fields: dict[str, Any], kind: ItemKind, status: str | None) -> None:
    matter = {**load("metro_matters.json")[0], **fields}
    fetch = fake_fetch(routes([], matters=as_json([matter])))

    [record, *attachments] = await collect(fetch)

    assert (record.kind, record.external_id, record.status) == (kind, "matter:10881", status)
    assert attachments == []


async def test_legistar_matter_restricted_from_the_web_is_skipped() -> None:
    matter = {**load("metro_matters.json")[0], "MatterRestrictViewViaWeb": True}
    fetch = fake_fetch(routes([], matters=as_json([matter])))

    assert await collect(fetch) == []
    assert not any("/attachments" in url for url, _ in fetch.asked)


async def test_legistar_matter_insite_link() -> None:
    fetch = fake_fetch(routes([], matters=(FIXTURES / "metro_matters.json").read_bytes()))

    [record] = await collect(fetch, state(insite_url="https://metro.legistar.com/"))

    assert record.url == "https://metro.legistar.com/gateway.aspx?M=L&ID=10881"


# ---- detail requests ------------------------------------------------------------------------------------------------

ITEMS_KEY = "2024-09-21T00:49:38.617|2024-09-21T00:49:38.513|"


@pytest.mark.parametrize(
    ("known_data", "fetched"),
    [
        ({"_detail_key": ITEMS_KEY, "_detail_at": "2024-09-20T06:00:00"}, False),
        ({"_detail_key": ITEMS_KEY, "_detail_at": "2024-09-19T11:00:00"}, True),
        ({"_detail_key": "older|key|", "_detail_at": "2024-09-20T06:00:00"}, True),
        ({}, True),
    ],
    ids=["unchanged-and-recent", "unchanged-but-old", "changed", "never-fetched"],
)
async def test_legistar_event_items_fetched_only_when_needed(known_data: dict[str, Any], fetched: bool) -> None:
    fetch = fake_fetch(routes([make_event()], items=(FIXTURES / "metro_eventitems.json").read_bytes()))
    known = {(ItemKind.MEETING, "2907"): known_data}

    records = await collect(fetch, state(known=known, matters=False))

    assert any("/eventitems" in url for url, _ in fetch.asked) is fetched
    meeting = by_key(records)[ItemKind.MEETING, "2907"]
    if fetched:
        assert (meeting.data["_detail_key"], meeting.data["_detail_at"]) == (ITEMS_KEY, "2024-09-20T12:00:00")
        assert (ItemKind.AGENDA_ITEM, "31510") in by_key(records)
    else:
        assert (meeting.data["_detail_key"], meeting.data["_detail_at"]) == (ITEMS_KEY, "2024-09-20T06:00:00")
        assert not any(r.kind is ItemKind.AGENDA_ITEM for r in records)


async def test_legistar_detail_budget_takes_nearest_meetings_first() -> None:
    events = [
        make_event(1, EventDate="2024-12-01T00:00:00"),
        make_event(2, EventDate="2024-09-19T00:00:00"),
        make_event(3, EventDate="2024-08-25T00:00:00"),
    ]
    fetch = fake_fetch(routes(events))

    records = await collect(fetch, state(max_detail_requests=2, matters=False))

    assert [p for p in paths(fetch) if "eventitems" in p] == [
        "/events/2/eventitems?AgendaNote=1&MinutesNote=1&Attachments=1",
        "/events/3/eventitems?AgendaNote=1&MinutesNote=1&Attachments=1",
    ]
    assert "_detail_key" not in by_key(records)[ItemKind.MEETING, "1"].data


async def test_legistar_failed_detail_request_is_skipped() -> None:
    events = [make_event(1), make_event(2)]
    items = (FIXTURES / "metro_eventitems.json").read_bytes()
    fetch = fake_fetch(routes(events, items=lambda url: b"<html>error</html>" if "/events/1/" in url else items))
    known = {(ItemKind.MEETING, "1"): {"_detail_key": "old|key|", "_detail_at": "2024-09-01T00:00:00"}}

    records = by_key(await collect(fetch, state(known=known, matters=False)))

    assert records[ItemKind.MEETING, "1"].data["_detail_key"] == "old|key|"
    assert records[ItemKind.MEETING, "2"].data["_detail_key"] == ITEMS_KEY
    assert records[ItemKind.AGENDA_ITEM, "31510"].parent == (ItemKind.MEETING, "2")


async def test_legistar_every_detail_request_failing_fails_the_poll() -> None:
    error = b'{"Message": "An error has occurred."}'
    fetch = fake_fetch(routes([make_event(1), make_event(2), make_event(3)], items=error))

    with pytest.raises(SourceError, match="all 3 Legistar detail requests failed"):
        await collect(fetch, state(matters=False))


async def test_legistar_inline_event_items_need_no_request() -> None:
    items = load("metro_eventitems.json")
    fetch = fake_fetch(routes([make_event(EventItems=items)]))

    records = await collect(fetch, state(matters=False))

    assert not any("eventitems" in url for url, _ in fetch.asked)
    assert (ItemKind.AGENDA_ITEM, "31510") in by_key(records)


async def test_legistar_odd_field_types_and_duplicate_rows() -> None:
    item = {"EventItemId": 9, "EventItemAgendaNumber": 5, "EventItemTitle": None, "EventItemMatterName": None,
            "EventItemTally": {"odd": True}, "EventItemMatterAttachments": None}  # fmt: skip
    event = make_event(EventLocation=None, EventComment=None, EventBodyName=None, EventTime=" ")
    fetch = fake_fetch(routes([event, event], items=as_json([item])))

    records = await collect(fetch, state(matters=False))

    meeting = by_key(records)[ItemKind.MEETING, "2907"]
    assert (meeting.title, meeting.committee, meeting.body, meeting.data["location"], meeting.data["time_known"]) == (
        "Meeting", None, "", "", False
    )
    assert sum(r.kind is ItemKind.MEETING for r in records) == 1
    agenda_item = by_key(records)[ItemKind.AGENDA_ITEM, "9"]
    assert (agenda_item.title, agenda_item.data["number"], agenda_item.data["tally"]) == ("Item 5", "5", "")


# ---- hostile answers ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty"),
        (b"  \r\n", "empty"),
        (b"<!DOCTYPE html><html><body><h1>Server Error in '/' Application.</h1></body></html>", "HTML, not JSON"),
        (b'<?xml version="1.0"?><ArrayOfGranicusEvent xmlns="http://schemas.datacontract.org/2004/07/"/>',
         "XML or HTML, not JSON"),
        (as_json([make_event()])[:-200], "not valid JSON"),
        (b'[{"EventId": 1,', "not valid JSON"),
        (b'{"Message": "An error has occurred."}', "error, not a list: An error has occurred."),
        (b'{"Code": "AgencyNotFound", "Message": "Agency \'nosuch\' was not found"}',
         "error, not a list: Agency 'nosuch' was not found"),
        (b'{"odata.error": {"code": "", "message": {"lang": "en-US", "value": "The query specified in the URI is '
         b'not valid."}}}', "error, not a list: The query specified in the URI is not valid."),
        (b'{"value": []}', "error, not a list"),
        (b'"Token is required"', "a JSON str, not a list"),
        (b"[1, 2, 3]", "something other than objects"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (as_json([{"EventBodyName": "No id"}]), "without an EventId"),
        (as_json([make_event(EventDate=None)]), "no readable EventDate"),
    ],
    ids=[
        "empty", "whitespace", "html", "xml", "truncated", "truncated-short", "aspnet-error", "agency-error",
        "odata-error", "odata-envelope", "json-string", "not-objects", "deep-nesting", "no-event-id", "no-date",
    ],
)
async def test_legistar_hostile_event_list_fails(body: bytes, message: str) -> None:
    fetch = fake_fetch(routes([]) | {r"/events\?": body})

    with pytest.raises(SourceError, match=re.escape(message)):
        await collect(fetch)


async def test_legistar_hostile_matter_list_fails() -> None:
    fetch = fake_fetch(routes([make_event()], matters=b"<html><body>Forbidden</body></html>"))

    with pytest.raises(SourceError, match="Legistar matters \\(page 1\\) is HTML"):
        await collect(fetch)


async def test_legistar_huge_body_fails() -> None:
    body = as_json([make_event(i) for i in range(100)])

    with pytest.raises(SourceError, match=f"is {len(body)} bytes, over the 50000-byte limit"):
        await collect(fake_fetch(routes([]) | {r"/events\?": body}), state(max_bytes=50_000))


async def test_legistar_default_size_limit() -> None:
    body = b"[" + b" " * (20 * 1024 * 1024) + b"]"

    with pytest.raises(SourceError, match="over the 20971520-byte limit"):
        await collect(fake_fetch(routes([]) | {r"/events\?": body}))


async def test_legistar_wrong_encoding_is_read_as_windows_1252() -> None:
    body = as_json([make_event(EventBodyName="Transport Committee{Q}s review")]).replace(b"{Q}", b"\x92")

    records = await collect(fake_fetch(routes([]) | {r"/events\?": body}), state(matters=False))

    assert by_key(records)[ItemKind.MEETING, "2907"].title == "Transport Committee’s review"


async def test_legistar_empty_list_is_no_records() -> None:
    fetch = fake_fetch(routes([]))

    assert await collect(fetch) == []


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        (BASE, {"page_size": "many"}, "page_size"),
        (BASE, {"page_size": 0}, "page_size"),
        (BASE, {"matters": "perhaps"}, "matters"),
        (BASE, {"timezone": "Mars/Olympus"}, "time zone"),
        ("webapi.legistar.com/v1/metro", {}, "not an http"),
    ],
)
async def test_legistar_bad_configuration_fails_clearly(url: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(SourceError, match=message):
        await collect(fake_fetch(routes([])), state(**options), url=url)
