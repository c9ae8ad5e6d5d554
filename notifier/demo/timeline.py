"""The demo councils over time: the state they start in, and the changes made to them as the demo runs.

`DemoCouncils` holds the state. Change k happens at `start + (k + 1) * step`: first the changes in `SCRIPT`, then an
endless cycle (`CYCLE`) that each council takes in turn, worked out from the state itself: a meeting added, an agenda
published, a decision published, a meeting rescheduled, another meeting added, then a meeting cancelled or minutes
published. When the calendar is full (a committee meets at most once a week, up to about three months ahead) the
cycle publishes late papers and officer decisions instead, so a demo left running keeps producing events every step.
Everything is deterministic for a given start: two instances with the same start agree at every instant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType

from notifier.demo.data import FACTS, LONDON, MON, THU, Council, Issue, Meeting, When
from notifier.demo.formats import long_date, uk_time
from notifier.demo.publishing import (
    UPDATE_REPORT,
    add_meeting,
    cancel_meeting,
    committee_of,
    decision_news,
    meeting_news,
    meeting_of,
    previous_working_day,
    publish_agenda,
    publish_meeting_decisions,
    publish_minutes,
    publish_officer_decision,
    publish_supplement,
    reschedule_meeting,
    with_meeting,
    with_news,
)
from notifier.models import EventType

__all__ = ["SCRIPT", "Change", "DemoCouncils", "DemoState", "ScriptedChange", "build_baseline", "utc_now"]


def utc_now() -> datetime:
    return datetime.now(UTC)


# ---- the starting state -----------------------------------------------------------------------------------------


def _local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), LONDON).astimezone(UTC)


def _monday(start: datetime) -> date:
    today = start.astimezone(LONDON).date()
    return today - timedelta(days=today.weekday())


def build_baseline(start: datetime) -> dict[str, Council]:
    """Every council as the demo starts at `start`: the meetings before it, their papers, minutes and decisions."""
    today = start.astimezone(LONDON).date()
    monday = _monday(start)
    # Councils publish on working days: the latest a baseline paper can carry is the working day before the start.
    yesterday = previous_working_day(today)
    councils: dict[str, Council] = {}
    for facts in FACTS.values():
        council = Council(
            slug=facts.slug, name=facts.name, region=facts.region, nation=facts.nation, website=facts.website,
            committees=facts.committees, meetings=facts.fixed_meetings, decisions=(),
            issues=(Issue(facts.issue[0], facts.issue[1], today - timedelta(days=3)),), news=(), ids=facts.ids,
        )
        for fixed in facts.fixed_meetings:
            agenda_day = min(d.published for d in fixed.documents)
            council = with_news(council, meeting_news(council, fixed, _local(agenda_day, 9), "Agenda published",
                                                      "agenda"))
            if fixed.minutes_published:
                minutes_day = max(d.published for d in fixed.documents)
                council = with_news(council, meeting_news(council, fixed, _local(minutes_day, 12),
                                                          "Minutes published", "minutes"))
        for plan in facts.plans:
            committee = committee_of(council, plan.committee_id)
            meeting = Meeting(plan.id, committee.id, plan.when.day(monday), plan.when.clock, committee.finish_time,
                              committee.location)
            council = with_meeting(council, meeting)
            if plan.agenda:
                day = min(meeting.day - timedelta(days=7), yesterday)
                council = publish_agenda(council, meeting.id, day)
                council = with_news(council, meeting_news(council, meeting, _local(day, 9), "Agenda published",
                                                          "agenda"))
            if plan.decisions:
                day = max(meeting.day, min(meeting.day + timedelta(days=1), yesterday))
                council, decision_ids = publish_meeting_decisions(council, meeting.id, day)
                for decision_id in decision_ids:
                    decision = council.decision(decision_id)
                    if decision is not None:
                        council = with_news(council, decision_news(council, decision, _local(day, 12)))
            if plan.minutes:
                day = max(meeting.day, min(meeting.day + timedelta(days=8), yesterday))
                council = publish_minutes(council, meeting.id, day)
                council = with_news(council, meeting_news(council, meeting, _local(day, 12), "Minutes published",
                                                          "minutes"))
        for days_before in facts.published_officer_decisions:
            day = previous_working_day(today - timedelta(days=days_before - 1))
            council, decision_id = publish_officer_decision(council, day)
            decision = council.decision(decision_id)
            if decision is not None:
                council = with_news(council, decision_news(council, decision, _local(day, 11)))
        councils[facts.slug] = replace(council, news=tuple(sorted(council.news, key=lambda n: n.at)))
    return councils


# ---- changes over time ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScriptedChange:
    """One change of the opening script. Meetings are named by id; new dates are relative to the start week."""

    kind: EventType
    council: str
    meeting_id: int | None = None
    committee_id: int | None = None
    when: When | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """A change that has happened: the event a poller should see, and the meeting or decisions it concerns."""

    index: int
    at: datetime
    kind: EventType
    council: str
    summary: str
    meeting_id: int | None = None
    decision_ids: tuple[int, ...] = ()
    document_ids: tuple[int, ...] = ()


SCRIPT: tuple[ScriptedChange, ...] = (
    ScriptedChange(EventType.MEETING_SCHEDULED, "leicestershire", committee_id=1038, when=When(6, THU, 14)),
    ScriptedChange(EventType.MEETING_RESCHEDULED, "leicestershire", meeting_id=7612, when=When(2, MON, 10)),
    ScriptedChange(EventType.MEETING_CANCELLED, "rutland", meeting_id=3341),
    ScriptedChange(EventType.AGENDA_PUBLISHED, "leicestershire", meeting_id=7618),
    ScriptedChange(EventType.DECISION_PUBLISHED, "leicestershire", meeting_id=7605),
    ScriptedChange(EventType.MINUTES_PUBLISHED, "leicestershire", meeting_id=7609),
    ScriptedChange(EventType.MEETING_SCHEDULED, "leicester", committee_id=528, when=When(5, THU, 10)),
    ScriptedChange(EventType.MEETING_RESCHEDULED, "rutland", meeting_id=3338, when=When(1, THU, 14)),
    ScriptedChange(EventType.MEETING_CANCELLED, "leicester", meeting_id=13905),
    ScriptedChange(EventType.AGENDA_PUBLISHED, "rutland", meeting_id=3343),
    ScriptedChange(EventType.DECISION_PUBLISHED, "leicester"),
    ScriptedChange(EventType.MINUTES_PUBLISHED, "leicester", meeting_id=13897),
)

# After the script, each council in turn goes through this cycle, one change per step. The last step alternates
# between a cancellation and minutes: two meetings are added for every one cancelled, so meetings never run out.
CYCLE: tuple[EventType, ...] = (
    EventType.MEETING_SCHEDULED,
    EventType.AGENDA_PUBLISHED,
    EventType.DECISION_PUBLISHED,
    EventType.MEETING_RESCHEDULED,
    EventType.MEETING_SCHEDULED,
    EventType.MEETING_CANCELLED,
)
ORDER = tuple(FACTS)
# How far ahead generated meetings are scheduled (varying by cycle), and how far a generated reschedule moves one.
NEW_MEETING_LEADS = (timedelta(days=14), timedelta(days=21), timedelta(days=28))
RESCHEDULE_BY = timedelta(days=7)
# How many weeks on from its lead a new meeting may go looking for a free week: the calendar's horizon.
NEW_MEETING_TRIES = 10
# Late papers a meeting may gain before the demo looks elsewhere.
MAX_UPDATE_REPORTS = 2


@dataclass(frozen=True, slots=True)
class _Target:
    """What one change does: its kind and the meeting (or, for a new meeting, the committee and when)."""

    kind: EventType
    meeting_id: int | None = None
    committee_id: int | None = None
    day: date | None = None
    start: time | None = None


def _label(council: Council, meeting: Meeting) -> str:
    committee = committee_of(council, meeting.committee_id)
    return f"{committee.title}, {long_date(meeting.day)} {uk_time(meeting.start_time)}"


def _apply(council: Council, target: _Target, index: int, at: datetime) -> tuple[Council, Change]:
    """Carry out one change at `at`; the council's news gains the matching entry."""
    today = at.astimezone(LONDON).date()
    kind = target.kind
    if kind is EventType.MEETING_SCHEDULED:
        if target.committee_id is None or target.day is None or target.start is None:
            raise ValueError("a new meeting needs a committee, a day and a time")
        council, meeting_id = add_meeting(council, target.committee_id, target.day, target.start)
        meeting = meeting_of(council, meeting_id)
        council = with_news(council, meeting_news(council, meeting, at, "New meeting", "new"))
        return council, Change(index, at, kind, council.slug, f"{_label(council, meeting)} scheduled", meeting_id)
    if kind is EventType.DECISION_PUBLISHED and target.meeting_id is None:
        council, decision_id = publish_officer_decision(council, today)
        decision = council.decision(decision_id)
        title = decision.title if decision is not None else str(decision_id)
        if decision is not None:
            council = with_news(council, decision_news(council, decision, at))
        return council, Change(index, at, kind, council.slug, f"Decision published: {title}", None, (decision_id,))
    if target.meeting_id is None:
        raise ValueError(f"{kind} needs a meeting")
    before = meeting_of(council, target.meeting_id)
    if kind is EventType.MEETING_RESCHEDULED:
        if target.day is None or target.start is None:
            raise ValueError("a reschedule needs a new day and time")
        council = reschedule_meeting(council, before.id, target.day, target.start)
        after = meeting_of(council, before.id)
        summary = f"{_label(council, before)} moved to {long_date(after.day)} {uk_time(after.start_time)}"
        news = meeting_news(council, after, at, f"Meeting rescheduled from {long_date(before.day)}", "moved")
        return with_news(council, news), Change(index, at, kind, council.slug, summary, before.id)
    if kind is EventType.MEETING_CANCELLED:
        council = cancel_meeting(council, before.id)
        news = meeting_news(council, before, at, "Meeting cancelled", "cancelled")
        return with_news(council, news), Change(index, at, kind, council.slug, f"{_label(council, before)} cancelled",
                                                before.id)
    if kind is EventType.AGENDA_PUBLISHED:
        council = publish_agenda(council, before.id, today)
        news = meeting_news(council, before, at, "Agenda published", "agenda")
        return with_news(council, news), Change(index, at, kind, council.slug,
                                                f"Agenda published: {_label(council, before)}", before.id)
    if kind is EventType.MINUTES_PUBLISHED:
        council = publish_minutes(council, before.id, today)
        news = meeting_news(council, before, at, "Minutes published", "minutes")
        return with_news(council, news), Change(index, at, kind, council.slug,
                                                f"Minutes published: {_label(council, before)}", before.id)
    if kind is EventType.DOCUMENT_PUBLISHED:
        council, document_id = publish_supplement(council, before.id, today)
        news = meeting_news(council, before, at, "Document published", f"document{document_id}")
        return with_news(council, news), Change(index, at, kind, council.slug,
                                                f"Document published: {_label(council, before)}", before.id,
                                                document_ids=(document_id,))
    if kind is EventType.DECISION_PUBLISHED:
        council, decision_ids = publish_meeting_decisions(council, before.id, today)
        for decision_id in decision_ids:
            decision = council.decision(decision_id)
            if decision is not None:
                council = with_news(council, decision_news(council, decision, at))
        return council, Change(index, at, kind, council.slug, f"Decisions published: {_label(council, before)}",
                               before.id, decision_ids)
    raise ValueError(f"the demo does not make {kind} changes")


def _scripted_target(step: ScriptedChange, council: Council, monday: date) -> _Target:
    if step.when is None:
        return _Target(step.kind, step.meeting_id, step.committee_id)
    return _Target(step.kind, step.meeting_id, step.committee_id, step.when.day(monday), step.when.clock)


def _upcoming(council: Council, at: datetime) -> list[Meeting]:
    return sorted((m for m in council.meetings if m.starts_at > at and not m.cancelled), key=lambda m: m.starts_at)


def _new_meeting(council: Council, nth: int, at: datetime) -> _Target | None:
    """A meeting for the next committee with a free week within reach; None when every committee is booked up.

    A committee meets at most once a week, so a long-running demo fills its calendar to a realistic density and no
    further; new weeks open up as time passes.
    """
    live = [c for c in council.committees if not c.expired]
    first_day = at.astimezone(LONDON).date() + NEW_MEETING_LEADS[nth % len(NEW_MEETING_LEADS)]
    for offset in range(len(live)):
        committee = live[(nth + offset) % len(live)]
        taken = {_week(m.day) for m in council.meetings if m.committee_id == committee.id and not m.cancelled}
        day = first_day + timedelta(days=(committee.weekday - first_day.weekday()) % 7)
        for _ in range(NEW_MEETING_TRIES):
            if _week(day) not in taken:
                return _Target(EventType.MEETING_SCHEDULED, committee_id=committee.id, day=day,
                               start=committee.start_time)
            day += timedelta(days=7)
    return None


def _week(day: date) -> tuple[int, int]:
    year, week, _ = day.isocalendar()
    return year, week


def _new_day(council: Council, meeting: Meeting, today: date) -> date | None:
    """Where a meeting moves: a week later if its committee is free then, else a day later or earlier that week."""
    taken = {_week(m.day) for m in council.meetings if m.committee_id == meeting.committee_id and not m.cancelled}
    later = meeting.day + RESCHEDULE_BY
    if _week(later) not in taken:
        return later
    for day in (meeting.day + timedelta(days=1), meeting.day - timedelta(days=1)):
        if _week(day) == _week(meeting.day) and day.weekday() < 5 and day > today:
            return day
    return None


def _update_reports(meeting: Meeting) -> int:
    return sum(1 for item in meeting.items for doc in item.documents if doc.title.startswith(UPDATE_REPORT))


def _cycle_kind(cycle: int, position: int) -> EventType:
    kind = CYCLE[position]
    if kind is EventType.MEETING_CANCELLED and (cycle // len(ORDER)) % 2:
        return EventType.MINUTES_PUBLISHED
    return kind


def _generated_target(council: Council, cycle: int, position: int, at: datetime) -> _Target:
    """What the cycle does next to this council.

    When nothing fits (no meeting left to move, nothing awaiting minutes), a new meeting; when the calendar is full,
    a late paper for the next meeting; failing that, an officer decision. There is always something to do.
    """
    kind = _cycle_kind(cycle, position)
    nth = (cycle // len(ORDER)) * len(CYCLE) + position
    today = at.astimezone(LONDON).date()
    upcoming = _upcoming(council, at)
    waiting = [m for m in upcoming if not m.agenda_published]
    if kind is EventType.AGENDA_PUBLISHED and waiting:
        return _Target(kind, waiting[0].id)
    if kind is EventType.MEETING_RESCHEDULED:
        # Meetings not moved before, those still without an agenda first.
        movable = sorted((m for m in upcoming if m.status == "Confirmed"), key=lambda m: m.agenda_published)
        for moved in movable:
            if (day := _new_day(council, moved, today)) is not None:
                return _Target(kind, moved.id, day=day, start=moved.start_time)
    if kind is EventType.MEETING_CANCELLED:
        # Not the meeting whose agenda is due next, nor one about to happen: the earliest a week or more away,
        # one without an agenda if there is one ("cancelled for lack of business").
        later = [m for m in upcoming if m.day >= today + timedelta(days=7) and (not waiting or m.id != waiting[0].id)]
        later.sort(key=lambda m: m.agenda_published)
        if later:
            return _Target(kind, later[0].id)
    if kind is EventType.MINUTES_PUBLISHED:
        held = sorted(
            (m for m in council.meetings
             if m.starts_at <= at and m.agenda_published and not m.minutes_published and not m.cancelled),
            key=lambda m: m.starts_at,
        )
        if held:
            return _Target(kind, held[0].id)
    if kind is EventType.DECISION_PUBLISHED:
        decided = [
            m for m in council.meetings
            if m.starts_at <= at and any(i.is_decision and not i.decision_published for i in m.items)
        ]
        if decided:
            return _Target(kind, max(decided, key=lambda m: m.starts_at).id)
        return _Target(kind)
    if kind is not EventType.MINUTES_PUBLISHED and (new := _new_meeting(council, nth, at)) is not None:
        return new
    # Nothing else fits: a late paper for the next meeting with an agenda, or failing that an officer decision.
    papered = [
        m for m in upcoming
        if m.agenda_published and any(not i.procedural for i in m.items) and _update_reports(m) < MAX_UPDATE_REPORTS
    ]
    if papered:
        return _Target(EventType.DOCUMENT_PUBLISHED, papered[0].id)
    return _Target(EventType.DECISION_PUBLISHED)


# ---- the state over time ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DemoState:
    """Every demo council at one instant, and the changes made up to then (oldest first)."""

    now: datetime
    councils: Mapping[str, Council]
    changes: tuple[Change, ...]


class DemoCouncils:
    """The demo councils over time: baseline at `start`, then one change every `step`.

    `clock` gives "now" for `current()`; tests pass their own to jump forward. States are immutable, so a request
    can render from one while the demo moves on.
    """

    def __init__(
        self,
        start: datetime,
        step: timedelta = timedelta(minutes=3),
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError("the demo start must be a timezone-aware datetime")
        if step <= timedelta(0):
            raise ValueError(f"the demo step must be positive, not {step}")
        self.start = start.astimezone(UTC)
        self.step = step
        self.clock = clock
        self._monday = _monday(self.start)
        self._baseline = build_baseline(self.start)
        # The latest state worked out, extended step by step as time moves on.
        self._councils = dict(self._baseline)
        self._changes: list[Change] = []

    def change_time(self, index: int) -> datetime:
        """When change `index` (from 0) happens."""
        return self.start + (index + 1) * self.step

    def changes_due(self, now: datetime) -> int:
        """How many changes have happened by `now`."""
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now must be a timezone-aware datetime")
        if now < self.start:
            return 0
        return (now - self.start) // self.step

    def current(self) -> DemoState:
        """The state at the clock's now."""
        return self.state_at(self.clock())

    def state_at(self, now: datetime) -> DemoState:
        """The state at `now`, with every change due by then applied."""
        due = self.changes_due(now)
        if due < len(self._changes):
            # Time went backwards (a test, or a clock change): replay from the start.
            self._councils = dict(self._baseline)
            self._changes = []
        while len(self._changes) < due:
            self._advance()
        return DemoState(now, MappingProxyType(dict(self._councils)), tuple(self._changes))

    def _advance(self) -> None:
        index = len(self._changes)
        at = self.change_time(index)
        if index < len(SCRIPT):
            step = SCRIPT[index]
            council = self._councils[step.council]
            target = _scripted_target(step, council, self._monday)
        else:
            cycle, position = divmod(index - len(SCRIPT), len(CYCLE))
            council = self._councils[ORDER[cycle % len(ORDER)]]
            target = _generated_target(council, cycle, position, at)
        council, change = _apply(council, target, index, at)
        self._councils[council.slug] = council
        self._changes.append(change)
