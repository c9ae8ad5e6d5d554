"""Benchmark: how soon a change to a known meeting reaches people, and what it costs each council's server.

Run as `.venv/bin/python bench/freshness.py [--councils 400] [--days 7] [--seed 1]`.

The workload: 400 simulated ModernGov councils, each with 5 to 40 committees and about 30 meetings in its listing
window (from 23 days back to 120 ahead, so about six of them are in the coming weeks at any time), answering each
request in 150 ms. Over a simulated week, changes that do not show in the listing (a document, a supplement,
minutes added to a meeting notifier already knows) come at random times, 20 per council, four in five of them to a
meeting in the coming weeks, as councils publish. The clock is moved, never waited on: every council is polled on
its own phase, every poll lists the committees and reads the meeting details its policy says are due, four requests
at a time, and a change is seen when a read of its meeting starts after it.

Two policies, in the same run on the same councils and changes:

- today's (before this change): polled every 30 minutes (the default interval); details re-read when 6 hours old
  for meetings from 45 days back to 21 ahead, 7 days otherwise;
- proximity (`notifier/sources/freshness.py`, the code the adapter runs: `ReadPlan`, `next_read_at`,
  `choose_reads`): polled every 4 minutes; hot meetings (a week back to three weeks ahead) every 8 minutes, warm
  daily, cold weekly, each on its own phase; at most one request every 2 seconds on average per council.

Change to alert = from the change to the end of the poll that read it, plus the same delivery path for both: the
immediate-alert batching window (120 s), the wait for the next sending pass (twice a minute: 0 to 30 s) and a
second for matching and sending. "Hot window" counts the changes to meetings from a week back to three weeks ahead
when the change is made. Requests a second per host: each council's requests over the week; the busiest poll
interval's (what the budget caps); and the busiest minute (polls send their requests four at a time, so both
policies make short bursts).
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from notifier.sources.freshness import Band, DueRead, ReadPlan, choose_reads, next_read_at

START = datetime(2026, 9, 7, 0, 0, tzinfo=UTC)
RESPONSE_SECONDS = 0.15
CONCURRENT = 4  # moderngov.MAX_CONCURRENT_REQUESTS
ALERT_BATCH_SECONDS = 120
SEND_PASS_EVERY = 30
MATCH_AND_SEND_SECONDS = 1.0
CHANGES_PER_COUNCIL = 20
HOT_SHARE = 0.8
WINDOW = (-23, 120)  # the meetings' days, relative to the first day
INTERVAL = timedelta(minutes=30)


@dataclass
class Meeting:
    key: str
    day: date
    last_read: float = 0.0
    next_at: float = 0.0
    band: Band | None = None
    changes: list[tuple[float, bool]] = field(default_factory=list)  # changes not yet seen: (time, hot then)


@dataclass
class Council:
    committees: int
    meetings: list[Meeting]
    phase: float  # 0..1: where in its poll interval this council's polls fall
    today: date | None = None  # the day its meetings' bands were last worked out for


@dataclass
class Outcome:
    delays_hot: list[float] = field(default_factory=list)  # seconds
    delays_all: list[float] = field(default_factory=list)
    unseen_hot: int = 0
    unseen_all: int = 0
    requests: list[float] = field(default_factory=list)  # per council, over the run, a second
    busiest_interval: float = 0.0
    busiest_minute: float = 0.0
    wall: float = 0.0


class Today:
    name = "today's policy"
    poll_every = INTERVAL.total_seconds()

    def every(self, day: date, today: date) -> float:
        hot = today - timedelta(days=45) <= day <= today + timedelta(days=21)
        return 6 * 3600.0 if hot else 7 * 86400.0

    def band(self, day: date, today: date) -> Band:
        return Band.HOT if self.every(day, today) < 86400 else Band.COLD

    def interval(self, day: date, today: date) -> float:
        return self.every(day, today)

    def next_at(self, m: Meeting, today: date) -> float:
        return m.last_read + self.every(m.day, today)

    def allowance(self, committees: int) -> int | None:
        return None


class Proximity:
    name = "proximity"

    def __init__(self) -> None:
        self.plan = ReadPlan()
        self.poll_every = self.plan.poll_every(INTERVAL).total_seconds()

    def band(self, day: date, today: date) -> Band:
        return self.plan.band(day, today)

    def interval(self, day: date, today: date) -> float:
        return self.plan.every(self.plan.band(day, today)).total_seconds()

    def next_at(self, m: Meeting, today: date) -> float:
        last = datetime.fromtimestamp(m.last_read, UTC)
        return next_read_at(m.key, last, self.plan.every(self.plan.band(m.day, today))).timestamp()

    def allowance(self, committees: int) -> int | None:
        return self.plan.requests_per_poll(INTERVAL) - 1 - committees


Policy = Today | Proximity


def make_councils(n: int, rng: random.Random) -> list[Council]:
    councils = []
    first = START.date()
    for c in range(n):
        meetings = [
            Meeting(f"{c}-{k}", first + timedelta(days=rng.randint(*WINDOW))) for k in range(rng.randint(25, 35))
        ]
        councils.append(Council(rng.randint(5, 40), meetings, rng.random()))
    return councils


def make_changes(council: Council, days: int, rng: random.Random) -> list[tuple[float, Meeting, bool]]:
    """(time, meeting, in the hot window then) for each change to the council's meetings."""
    changes = []
    for _ in range(CHANGES_PER_COUNCIL):
        at = START.timestamp() + rng.random() * days * 86400
        today = datetime.fromtimestamp(at, UTC).date()
        hot = [m for m in council.meetings if _in_hot_window(m.day, today)]
        meeting = rng.choice(hot) if hot and rng.random() < HOT_SHARE else rng.choice(council.meetings)
        changes.append((at, meeting, _in_hot_window(meeting.day, today)))
    return sorted(changes, key=lambda c: c[0])


def _in_hot_window(day: date, today: date) -> bool:
    return today - timedelta(days=7) <= day <= today + timedelta(days=21)


def simulate(policy: Policy, councils: list[Council], days: int, seed: int) -> Outcome:
    out = Outcome()
    end = START.timestamp() + days * 86400
    t0 = time.perf_counter()
    for number, council in enumerate(councils):
        rng = random.Random(seed * 1_000_003 + number)
        changes = make_changes(council, days, rng)
        # a steady state: every meeting last read some time within its interval before the start
        today = START.date()
        for m in council.meetings:
            m.last_read = START.timestamp() - rng.random() * policy.interval(m.day, today)
            m.band = policy.band(m.day, today)
            m.next_at = policy.next_at(m, today)
            m.changes = []
        council.today = today
        pending = list(changes)
        per_poll: list[tuple[float, int]] = []
        t = START.timestamp() + council.phase * policy.poll_every
        while t < end:
            while pending and pending[0][0] <= t:
                at, meeting, hot = pending.pop(0)
                meeting.changes.append((at, hot))
            requests = _poll(policy, council, t, rng, out)
            per_poll.append((t, requests))
            t += policy.poll_every
        for m in council.meetings:  # never read within the run
            out.unseen_all += len(m.changes)
            out.unseen_hot += sum(hot for _, hot in m.changes)
        total = sum(r for _, r in per_poll)
        out.requests.append(total / (days * 86400))
        out.busiest_interval = max(out.busiest_interval, max(r for _, r in per_poll) / policy.poll_every)
        out.busiest_minute = max(out.busiest_minute, _busiest_minute(per_poll, policy.poll_every) / 60)
        # changes left pending (made after the last poll) are not counted either way
    out.wall = time.perf_counter() - t0
    return out


def _poll(policy: Policy, council: Council, t: float, rng: random.Random, out: Outcome) -> int:
    today = datetime.fromtimestamp(t, UTC).date()
    if today != council.today:
        council.today = today
        for m in council.meetings:
            band = policy.band(m.day, today)
            if band is not m.band:  # the meeting moved into another band as the days went by
                m.band = band
                m.next_at = policy.next_at(m, today)
    due = [
        DueRead(m.key, m.band or Band.HOT, datetime.fromtimestamp(m.last_read, UTC))
        for m in council.meetings if t >= m.next_at
    ]
    chosen = choose_reads(due, policy.allowance(council.committees))
    by_key = {m.key: m for m in council.meetings}
    rounds = 1 + math.ceil(council.committees / CONCURRENT)
    listed_at = t + rounds * RESPONSE_SECONDS
    # the poll's events are written when its last answer is in
    done = listed_at + math.ceil(len(chosen) / CONCURRENT) * RESPONSE_SECONDS
    for n, d in enumerate(chosen):
        m = by_key[d.key]
        asked_at = listed_at + (n // CONCURRENT) * RESPONSE_SECONDS
        for at, hot in m.changes:
            if at >= asked_at:
                continue
            delay = (done - at) + ALERT_BATCH_SECONDS + rng.random() * SEND_PASS_EVERY + MATCH_AND_SEND_SECONDS
            out.delays_all.append(delay)
            if hot:
                out.delays_hot.append(delay)
        m.changes = [(at, hot) for at, hot in m.changes if at >= asked_at]
        m.last_read = t
        m.next_at = policy.next_at(m, today)
    return 1 + council.committees + len(chosen)


def _busiest_minute(per_poll: list[tuple[float, int]], every: float) -> float:
    # a poll's requests go out within a few seconds of its start: a minute holds one poll, or two when polls are
    # less than a minute apart
    polls_a_minute = max(1, math.ceil(60 / every))
    counts = [r for _, r in per_poll]
    return max(sum(counts[i : i + polls_a_minute]) for i in range(len(counts)))


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--councils", type=int, default=400)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    results = {}
    for policy in (Today(), Proximity()):
        councils = make_councils(args.councils, random.Random(args.seed))
        results[policy.name] = simulate(policy, councils, args.days, args.seed)
    old, new = results["today's policy"], results["proximity"]
    meetings = sum(len(c.meetings) for c in make_councils(args.councils, random.Random(args.seed)))
    print(f"freshness: {args.councils} simulated ModernGov councils, {meetings} meetings, {args.days} simulated days, "
          f"{RESPONSE_SECONDS * 1000:.0f} ms a response, {CHANGES_PER_COUNCIL} changes per council")
    print(f"simulation time: {new.wall:.1f} s (today's policy {old.wall:.1f} s)")
    for label, a, b in (("hot window", new.delays_hot, old.delays_hot), ("every change", new.delays_all,
                                                                            old.delays_all)):
        for q in (0.5, 0.95):
            print(f"{label}: change to alert p{int(q * 100)} (min) {pct(a, q) / 60:.1f} "
                  f"(today's policy: {pct(b, q) / 60:.1f})")
        print(f"{label}: change to alert max (min) {max(a) / 60:.1f} (today's policy: {max(b) / 60:.1f}); changes "
              f"seen {len(a)}, unseen by the end {new.unseen_hot if label == 'hot window' else new.unseen_all} "
              f"(today's policy: {len(b)}, {old.unseen_hot if label == 'hot window' else old.unseen_all})")
    budget = 1 / ReadPlan().seconds_per_request
    for name, o in (("proximity", new), ("today's policy", old)):
        print(f"requests a second per host, {name}: mean {statistics.mean(o.requests):.3f}, busiest host "
              f"{max(o.requests):.3f}, busiest poll interval {o.busiest_interval:.3f}, busiest minute "
              f"{o.busiest_minute:.2f} (budget {budget:.2f} on average over a poll interval)")
    within = new.busiest_interval <= budget
    print(f"every host within its budget: {'yes' if within else 'NO'}")


if __name__ == "__main__":
    main()
