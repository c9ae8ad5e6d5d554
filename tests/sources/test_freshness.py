"""Freshness by proximity: which meeting details a ModernGov poll reads again, when, and within what budget.

Every test moves the clock (`SourceState.now`) through a council played from generated web service answers; nothing
sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from notifier.models import ItemKind
from notifier.sources.base import Record, SourceError, SourceState
from notifier.sources.freshness import (
    Band,
    DueRead,
    ReadPlan,
    choose_reads,
    is_due,
    next_read_at,
    staleness,
)
from notifier.sources.moderngov import ModernGovAdapter
from tests.sources.test_moderngov import FakeFetch

BASE = "https://democracy.example-shire.gov.uk"
START = datetime(2026, 9, 10, 9, 0, tzinfo=UTC)
POLL = timedelta(minutes=30)  # the source's interval; the plan polls it every 4 minutes


@dataclass
class Council:
    """A ModernGov site with one committee: meetings by id with their day, and documents added as time goes on."""

    meetings: dict[str, date]
    documents: dict[str, list[str]] = field(default_factory=dict)

    def routes(self) -> dict[str, Any]:
        return {
            r"/GetCommittees\?": _committees(),
            r"/GetMeetings\?": _meetings(self.meetings),
            r"/GetMeeting\?lMeetingId=": lambda url: _meeting(
                url.rsplit("=", 1)[1], self.meetings, self.documents
            ),
        }


def _committees() -> bytes:
    return (
        b"<committees><committee><committeeid>501</committeeid><committeetitle>Cabinet</committeetitle>"
        b"<committeedeleted>False</committeedeleted><committeeexpired>False</committeeexpired></committee>"
        b"</committees>"
    )


def _meetings(meetings: Mapping[str, date]) -> bytes:
    rows = "".join(
        f"<meeting><meetingid>{mid}</meetingid><meetingdate>{day:%d/%m/%Y}</meetingdate>"
        f"<meetingstatus>Confirmed</meetingstatus><meetingtime>10:00</meetingtime></meeting>"
        for mid, day in meetings.items()
    )
    return (
        "<getmeetings><committee><committeeid>501</committeeid><committeetitle>Cabinet</committeetitle>"
        f"<committeemeetings>{rows}</committeemeetings></committee></getmeetings>"
    ).encode()


def _meeting(mid: str, meetings: Mapping[str, date], documents: Mapping[str, list[str]]) -> bytes:
    docs = "".join(
        f"<linkeddoc><attachmentid>{doc}</attachmentid><title>Report {doc}</title><isurl>False</isurl>"
        f"<url>{BASE}/mgConvert2PDF.aspx?ID={doc}</url><isrestricted>False</isrestricted></linkeddoc>"
        for doc in documents.get(mid, [])
    )
    return (
        f"<meeting><meetingid>{mid}</meetingid><meetingdate>{meetings[mid]:%d/%m/%Y}</meetingdate>"
        "<meetingstatus>Confirmed</meetingstatus><meetingtime>10:00</meetingtime>"
        "<agendapublished>False</agendapublished><decisionpublished>False</decisionpublished>"
        "<minutepublished>False</minutepublished><iswebcast>False</iswebcast><agendaitems></agendaitems>"
        f"<linkeddocuments>{docs}</linkeddocuments></meeting>"
    ).encode()


class Poller:
    """Polls the council as ingest would: each poll hands back what the previous ones stored."""

    def __init__(self, council: Council, options: Mapping[str, Any] | None = None, host_sources: int = 1) -> None:
        self.council = council
        self.host_sources = host_sources
        self.options = dict(options or {})
        self.known: dict[tuple[ItemKind, str], Mapping[str, Any]] = {}
        self.requests: list[int] = []  # requests made by each poll

    async def poll(self, now: datetime) -> tuple[list[Record], FakeFetch]:
        fetch = FakeFetch(self.council.routes())
        state = SourceState(now=now, options=self.options, known=self.known, poll_interval=POLL,
                            host_sources=self.host_sources)
        records = await ModernGovAdapter().collect(BASE, fetch, state)
        assert records is not None
        for r in records:
            self.known[(r.kind, r.external_id)] = json.loads(json.dumps(dict(r.data)))
        self.requests.append(len(fetch.asked))
        return records, fetch

    async def run(self, start: datetime, until: datetime) -> dict[str, list[datetime]]:
        """Poll every `poll_every` from `start` to `until`; when each meeting's details were read."""
        every = ReadPlan.from_options(self.options).poll_every(POLL)
        reads: dict[str, list[datetime]] = {}
        now = start
        while now < until:
            _, fetch = await self.poll(now)
            for url in fetch.asked_matching(r"GetMeeting\?"):
                reads.setdefault(url.rsplit("=", 1)[1], []).append(now)
            now += every
        return reads


def read_ids(fetch: FakeFetch) -> set[str]:
    return {u.rsplit("=", 1)[1] for u in fetch.asked_matching(r"GetMeeting\?")}


async def test_a_document_added_to_a_meeting_in_the_coming_weeks_is_read_at_the_next_scheduled_read() -> None:
    council = Council({"1": date(2026, 9, 24), "2": date(2027, 2, 1)})
    poller = Poller(council)
    await poller.poll(START)  # both read: never seen
    council.documents["1"] = ["81001"]  # just after that read
    # the read falls due at the start of the meeting's next 8-minute period, and the first poll after it reads it
    due = next_read_at("1", START, timedelta(minutes=8))
    assert START < due <= START + timedelta(minutes=8)
    reads = await poller.run(START + timedelta(minutes=4), due + timedelta(minutes=4))
    first_read = reads["1"][0]
    assert due <= first_read < due + timedelta(minutes=4)
    records, _ = await poller.poll(first_read)  # a poll at the same moment reads it no more
    assert records == []
    assert (ItemKind.DOCUMENT, "81001") in poller.known
    assert "2" not in reads  # five months away: not read again within the hour


async def test_a_meeting_months_away_is_read_rarely() -> None:
    council = Council({"near": date(2026, 9, 20), "warm": date(2026, 11, 20), "far": date(2027, 1, 5)})
    poller = Poller(council)
    await poller.poll(START)
    reads = await poller.run(START + timedelta(minutes=4), START + timedelta(days=3))
    # near: every 8 minutes, each read in its own poll; warm: once a day; far: not within the week
    assert 3 * 24 * 60 / 8 - 2 <= len(reads["near"]) <= 3 * 24 * 60 / 8 + 1
    assert 2 <= len(reads.get("warm", [])) <= 3
    assert "far" not in reads
    gaps = [b - a for a, b in zip(reads["near"], reads["near"][1:], strict=False)]
    assert max(gaps) <= timedelta(minutes=12)


async def test_reads_are_spread_over_the_interval() -> None:
    council = Council({str(n): date(2026, 9, 11) + timedelta(days=n % 20) for n in range(40)})
    poller = Poller(council)
    await poller.poll(START)
    poller.requests.clear()
    await poller.run(START + timedelta(minutes=4), START + timedelta(hours=4))
    reads_per_poll = [n - 2 for n in poller.requests]  # less the committees and the meetings listing
    # 40 meetings every 8 minutes, polls every 4: about 20 a poll, never all 40 at once
    assert sum(reads_per_poll) / len(reads_per_poll) == pytest.approx(20, abs=2)
    assert max(reads_per_poll) < 30


async def test_the_budget_holds_when_400_meetings_fall_due_at_once() -> None:
    council = Council({str(n): date(2026, 9, 12) + timedelta(days=n % 14) for n in range(400)})
    poller = Poller(council)
    plan = ReadPlan()
    budget = plan.requests_per_poll(POLL)  # 4 minutes at one request every 2 seconds: 120
    assert budget == 120
    records, _ = await poller.poll(START)
    assert poller.requests == [budget]
    read_first = {r.external_id for r in records if r.kind is ItemKind.MEETING}
    assert len(read_first) == budget - 2
    reads = await poller.run(START + timedelta(minutes=4), START + timedelta(minutes=16))
    assert max(poller.requests) <= budget
    # the ones left waiting come first, and every meeting has been read within four polls
    assert read_first.isdisjoint({m for m, at in reads.items() if at[0] == START + timedelta(minutes=4)})
    assert read_first | set(reads) == set(council.meetings)


async def test_a_host_read_by_two_sources_gives_each_half_its_budget() -> None:
    council = Council({str(n): date(2026, 9, 12) + timedelta(days=n % 14) for n in range(400)})
    poller = Poller(council, host_sources=2)
    assert ReadPlan().shared(2).requests_per_poll(POLL) == 60
    await poller.poll(START)
    await poller.run(START + timedelta(minutes=4), START + timedelta(minutes=40))
    assert max(poller.requests) == 60
    assert sum(poller.requests) <= 60 * len(poller.requests)


async def test_a_changed_listing_is_read_at_once_whatever_the_schedule() -> None:
    council = Council({"1": date(2027, 3, 1)})
    poller = Poller(council)
    await poller.poll(START)
    council.meetings["1"] = date(2027, 3, 8)
    records, fetch = await poller.poll(START + timedelta(minutes=4))
    assert read_ids(fetch) == {"1"}
    assert [r.starts_at for r in records] == [datetime(2027, 3, 8, 10, 0, tzinfo=UTC)]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"hot_read_minutes": -1}, "option hot_read_minutes must be from 0"),
        ({"seconds_per_request": 0}, "option seconds_per_request must be from 1"),
        ({"seconds_per_request": "fast"}, "option seconds_per_request must be a whole number"),
    ],
)
def test_bad_plan_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(SourceError, match=message):
        ReadPlan.from_options(options)


def test_plan_options() -> None:
    plan = ReadPlan.from_options({"hot_read_minutes": "15", "seconds_per_request": 5})
    assert (plan.hot_every, plan.seconds_per_request, plan.poll_every(POLL)) == (timedelta(minutes=15), 5.0,
                                                                                 timedelta(minutes=7.5))
    # the older option name still sets the hot interval; 0 reads every poll
    assert ReadPlan.from_options({"detail_refresh_minutes": 0}).poll_every(POLL) == POLL
    assert is_due("7", START, START, timedelta(0))


@pytest.mark.parametrize(
    ("day", "band"),
    [
        (date(2026, 9, 3), Band.HOT), (date(2026, 10, 1), Band.HOT), (None, Band.HOT),
        (date(2026, 9, 2), Band.WARM), (date(2026, 10, 2), Band.WARM), (date(2026, 12, 9), Band.WARM),
        (date(2026, 7, 27), Band.WARM), (date(2026, 7, 26), Band.COLD), (date(2026, 12, 10), Band.COLD),
    ],
)
def test_bands_by_meeting_day(day: date | None, band: Band) -> None:
    assert ReadPlan().band(day, date(2026, 9, 10)) is band


def test_scheduled_reads_never_wait_longer_than_their_interval() -> None:
    every = timedelta(minutes=8)
    for n in range(200):
        last = START + timedelta(seconds=n * 37)
        due = next_read_at(str(n), last, every)
        assert last < due <= last + every
        assert not is_due(str(n), last, due - timedelta(microseconds=1), every)
        assert is_due(str(n), last, due, every)


def test_choose_reads_most_urgent_first() -> None:
    reads = [
        DueRead("cold", Band.COLD, START - timedelta(days=9)),
        DueRead("hot-late", Band.HOT, START - timedelta(hours=1)),
        DueRead("new", Band.NEW, None),
        DueRead("hot", Band.HOT, START - timedelta(minutes=9)),
    ]
    assert [d.key for d in choose_reads(reads, 3)] == ["new", "hot-late", "hot"]
    assert [d.key for d in choose_reads(reads, None)] == ["new", "hot-late", "hot", "cold"]
    assert choose_reads(reads, -5) == []


def test_staleness_within_budget() -> None:
    worst = staleness(ReadPlan(), POLL, committees=20, hot=10, warm=10, cold=10)
    # a change just after a read is seen at the first poll after the next read falls due
    assert (worst.poll_every, worst.hot, worst.warm, worst.cold) == (
        timedelta(minutes=4), timedelta(minutes=12), timedelta(days=1, minutes=4), timedelta(days=7, minutes=4),
    )
    assert worst.requests_per_second == pytest.approx(21 / 240 + 10 / 480 + 10 / 86400 + 10 / 604800)
    assert not worst.over_budget


def test_staleness_when_the_budget_runs_short() -> None:
    # 100 committees take 101 of the 120 requests a poll may make: 19 reads a poll are left for 400 hot meetings
    worst = staleness(ReadPlan(), POLL, committees=100, hot=400, warm=0, cold=0)
    assert worst.hot == timedelta(seconds=400 / (19 / 240)) + timedelta(minutes=4)
    assert worst.requests_per_second == pytest.approx(0.5)
    assert not worst.over_budget
    # a listing bigger than the budget leaves nothing for reads: only a changed listing is seen
    broke = staleness(ReadPlan(), POLL, committees=150, hot=5, warm=0, cold=0)
    assert (broke.hot, broke.over_budget) == (None, True)
    assert broke.as_dict()["hot_staleness_minutes"] is None
