"""When to read a meeting's details again: freshness by proximity, under a per-host request budget.

Councils publish around their meetings: the agenda about a week before, supplements and late reports in the days
before, minutes in the week or two after. None of it changes the meeting's line in a listing, so the details are
read again on a schedule that follows the meeting's date:

- hot, from `HOT_BACK` ago to `HOT_AHEAD` ahead: every `hot_every` (8 minutes by default, option
  `hot_read_minutes`);
- warm, from `WARM_BACK` ago to `WARM_AHEAD` ahead: daily;
- cold, anything else: weekly.

A meeting never read, or whose listing changed, is read at once. Scheduled reads are spread over their interval:
each meeting has its own phase (from its id), and is due once the clock has crossed into a new period of its
schedule since its last read, so thirty meetings on an eight-minute schedule make about four reads a minute rather
than thirty at the top of each eighth minute.

The budget: a host is asked at most once every `seconds_per_request` seconds on average (2 by default), counted
over the poll interval. A council's sources that read the same host (its meetings and its decisions register) share
it equally: each gets `seconds_per_request × sources on the host` (`ReadPlan.shared`). A poll spends its share on
the listing first, then on the reads due, the most urgent first (new and changed meetings, then hot, warm and cold
by how overdue they are); what does not fit waits for the next poll. The decisions register spends its share the
same way on decision pages. `staleness` says what that gives at worst: how old, at most, a meeting's details can
be in each band.

Pure: no I/O. Used by the ModernGov adapters; other adapters ask their servers what changed (conditional GET,
Legistar's LastModifiedUtc filters), so their staleness is their poll interval.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import IntEnum
from typing import Any

from notifier.sources.common import int_option

__all__ = [
    "Band",
    "DueRead",
    "ReadPlan",
    "Staleness",
    "choose_reads",
    "is_due",
    "next_read_at",
    "staleness",
]

HOT_BACK = timedelta(days=7)
HOT_AHEAD = timedelta(days=21)
WARM_BACK = timedelta(days=45)
WARM_AHEAD = timedelta(days=90)
DEFAULT_HOT_EVERY = timedelta(minutes=8)
WARM_EVERY = timedelta(days=1)
COLD_EVERY = timedelta(days=7)
DEFAULT_SECONDS_PER_REQUEST = 2
# How often a source with hot meetings is polled at most: half the hot interval, so a read falls due at most that
# long before the poll that makes it.
POLL_SHARE = 0.5


class Band(IntEnum):
    """How urgent a read is; lower first."""

    NEW = 0  # never read, or its listing changed
    HOT = 1
    WARM = 2
    COLD = 3


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """A source's read schedule and request budget."""

    hot_every: timedelta = DEFAULT_HOT_EVERY
    warm_every: timedelta = WARM_EVERY
    cold_every: timedelta = COLD_EVERY
    seconds_per_request: float = DEFAULT_SECONDS_PER_REQUEST

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> ReadPlan:
        """Options `hot_read_minutes` (0: every poll; `detail_refresh_minutes` is its older name) and
        `seconds_per_request` (the budget: one request every so many seconds on average, whole seconds)."""
        default_hot = int(DEFAULT_HOT_EVERY.total_seconds() // 60)
        hot = int_option(options, "detail_refresh_minutes", default_hot, low=0, high=7 * 24 * 60)
        hot = int_option(options, "hot_read_minutes", hot, low=0, high=7 * 24 * 60)
        pace = int_option(options, "seconds_per_request", DEFAULT_SECONDS_PER_REQUEST, low=1, high=3600)
        hot_every = timedelta(minutes=hot)
        if not hot:  # every meeting at every poll: a source that changes fast (the demo), or a test
            return cls(hot_every, hot_every, hot_every, float(pace))
        return cls(
            hot_every=hot_every,
            warm_every=max(WARM_EVERY, hot_every),
            cold_every=max(COLD_EVERY, hot_every),
            seconds_per_request=float(pace),
        )

    def band(self, meeting_day: date | None, today: date) -> Band:
        """A meeting's band by its date; one without a readable date is treated as hot."""
        if meeting_day is None or today - HOT_BACK <= meeting_day <= today + HOT_AHEAD:
            return Band.HOT
        if today - WARM_BACK <= meeting_day <= today + WARM_AHEAD:
            return Band.WARM
        return Band.COLD

    def every(self, band: Band) -> timedelta:
        return {Band.NEW: timedelta(0), Band.HOT: self.hot_every, Band.WARM: self.warm_every}.get(
            band, self.cold_every
        )

    def poll_every(self, interval: timedelta) -> timedelta:
        """How often the source is polled: its interval, or half the hot interval when that is shorter."""
        if self.hot_every <= timedelta(0):
            return interval
        return min(interval, max(timedelta(minutes=1), self.hot_every * POLL_SHARE))

    def shared(self, sources: int) -> ReadPlan:
        """This plan for one of `sources` sources reading the same host: the host's budget divided equally."""
        return replace(self, seconds_per_request=self.seconds_per_request * max(1, sources))

    def requests_in(self, period: timedelta) -> int:
        """What the budget allows over `period` (at least one request)."""
        return max(1, int(period.total_seconds() / self.seconds_per_request))

    def requests_per_poll(self, interval: timedelta) -> int:
        """The budget of one poll: what the source may ask for in one poll interval."""
        return self.requests_in(self.poll_every(interval))


def _phase(key: str, period: float) -> float:
    """Where in its period a meeting's scheduled reads fall: stable, and spread evenly across meetings."""
    return (zlib.crc32(key.encode()) / 2**32) * period


def next_read_at(key: str, last_read: datetime, every: timedelta) -> datetime:
    """When a read last made at `last_read` falls due on a schedule of `every`: the start of the key's next period
    (each key's periods are offset by its phase). Never more than `every` after the last read."""
    period = every.total_seconds()
    if period <= 0:
        return last_read
    offset = _phase(key, period)
    start = (math.floor((last_read.timestamp() + offset) / period) + 1) * period - offset
    return datetime.fromtimestamp(start, last_read.tzinfo)


def is_due(key: str, last_read: datetime, now: datetime, every: timedelta) -> bool:
    """Whether a read last made at `last_read` is due at `now` (see `next_read_at`)."""
    return every <= timedelta(0) or now >= next_read_at(key, last_read, every)


@dataclass(frozen=True, slots=True)
class DueRead:
    """A meeting whose details are due: its id, its band, and when its details were last read (None: never)."""

    key: str
    band: Band
    last_read: datetime | None


def choose_reads(due: Iterable[DueRead], allowance: int | None) -> list[DueRead]:
    """The reads this poll makes: the most urgent first, at most `allowance` of them (None: no limit)."""
    ordered = sorted(due, key=lambda d: (d.band, d.last_read is not None, d.last_read or datetime.min, d.key))
    return ordered if allowance is None else ordered[: max(0, allowance)]


@dataclass(frozen=True, slots=True)
class Staleness:
    """What a source's plan gives at worst, for the meetings it holds: how old a meeting's details can be in each
    band (None: never re-read within the budget; only a change to the listing is seen), and the requests a second
    its polls make."""

    poll_every: timedelta
    hot: timedelta | None
    warm: timedelta | None
    cold: timedelta | None
    requests_per_second: float
    budget_per_second: float

    @property
    def over_budget(self) -> bool:
        return self.requests_per_second > self.budget_per_second * 1.0001

    def as_dict(self) -> dict[str, Any]:
        def minutes(t: timedelta | None) -> float | None:
            return None if t is None else round(t.total_seconds() / 60, 1)

        return {
            "poll_every_minutes": minutes(self.poll_every),
            "hot_staleness_minutes": minutes(self.hot),
            "warm_staleness_minutes": minutes(self.warm),
            "cold_staleness_minutes": minutes(self.cold),
            "requests_per_second": round(self.requests_per_second, 3),
            "budget_per_second": round(self.budget_per_second, 3),
        }


def staleness(plan: ReadPlan, interval: timedelta, *, committees: int, hot: int, warm: int, cold: int) -> Staleness:
    """The worst case of `plan` for a source polled every `interval` with `committees` committees listed and that
    many meetings in each band.

    Each poll lists the committees (1 + `committees` requests) and spends the rest of its budget on reads, hot ones
    first. A band's meetings are read every `every` when the budget allows, else as often as what is left of it
    allows; a change made just after a read is seen at the first poll after the next read falls due.
    """
    poll = plan.poll_every(interval)
    seconds = poll.total_seconds()
    listing = 1 + committees
    spare = max(0.0, plan.requests_per_poll(interval) - listing) / seconds  # reads a second the budget leaves
    worst: dict[Band, timedelta | None] = {}
    used = 0.0
    for band, n in ((Band.HOT, hot), (Band.WARM, warm), (Band.COLD, cold)):
        every = plan.every(band).total_seconds()
        wanted = n / every if every > 0 else n / seconds
        left = spare - used
        if n == 0:
            worst[band] = timedelta(seconds=max(every, seconds)) + poll
        elif left <= 0:
            worst[band] = None
        else:
            got = min(wanted, left)
            used += got
            worst[band] = timedelta(seconds=max(every, seconds, n / got)) + poll
    return Staleness(
        poll_every=poll,
        hot=worst[Band.HOT],
        warm=worst[Band.WARM],
        cold=worst[Band.COLD],
        requests_per_second=listing / seconds + used,
        budget_per_second=1 / plan.seconds_per_request,
    )
