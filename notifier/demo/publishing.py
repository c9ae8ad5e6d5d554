"""How a demo council's site changes: each step a pure function from one council to the next.

A meeting is added, moved or cancelled; its agenda, minutes, decisions or a late paper are published; an officer
decision is published. ModernGov keeps a meeting's id through all of it and numbers meetings, items, papers and
decisions separately. Each step that publishes something has a matching entry for the "what's new" RSS feed here too;
`timeline.py` decides which step happens when.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta

from notifier.demo.data import (
    DECLARATIONS_MINUTES,
    DECLARATIONS_TEXT,
    FACTS,
    AgendaItem,
    Committee,
    Council,
    Decision,
    Document,
    IdSeq,
    Meeting,
    NewsEntry,
    Topic,
    size_kb,
)
from notifier.demo.formats import heading_date, long_date, pack_date

__all__ = [
    "UPDATE_REPORT",
    "add_meeting",
    "cancel_meeting",
    "committee_of",
    "decision_news",
    "meeting_news",
    "meeting_of",
    "previous_working_day",
    "publish_agenda",
    "publish_meeting_decisions",
    "publish_minutes",
    "publish_officer_decision",
    "publish_supplement",
    "reschedule_meeting",
    "with_meeting",
    "with_news",
]

# The title a late paper starts with.
UPDATE_REPORT = "Update report - "


def previous_working_day(day: date) -> date:
    day -= timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


# ---- the steps ----------------------------------------------------------------------------------------------------


class _Ids:
    """Hands out ids during one change; `seq` is what the council keeps afterwards."""

    def __init__(self, seq: IdSeq) -> None:
        self.seq = seq

    def meeting(self) -> int:
        value = self.seq.meeting
        self.seq = replace(self.seq, meeting=value + 1)
        return value

    def item(self) -> int:
        value = self.seq.item
        self.seq = replace(self.seq, item=value + 1)
        return value

    def document(self) -> int:
        value = self.seq.document
        self.seq = replace(self.seq, document=value + 1)
        return value

    def decision(self) -> int:
        value = self.seq.decision
        self.seq = replace(self.seq, decision=value + 1)
        return value


def _doc(ids: _Ids, title: str, published: date) -> Document:
    doc_id = ids.document()
    return Document(doc_id, title, published, size_kb(doc_id))


def committee_of(council: Council, committee_id: int) -> Committee:
    committee = council.committee(committee_id)
    if committee is None:
        raise ValueError(f"{council.slug} has no committee {committee_id}")
    return committee


def meeting_of(council: Council, meeting_id: int) -> Meeting:
    meeting = council.meeting(meeting_id)
    if meeting is None:
        raise ValueError(f"{council.slug} has no meeting {meeting_id}")
    return meeting


def with_meeting(council: Council, meeting: Meeting) -> Council:
    if council.meeting(meeting.id) is None:
        return replace(council, meetings=(*council.meetings, meeting))
    return replace(council, meetings=tuple(meeting if m.id == meeting.id else m for m in council.meetings))


def _previous(council: Council, meeting: Meeting) -> Meeting | None:
    earlier = [
        m for m in council.meetings
        if m.committee_id == meeting.committee_id and m.day < meeting.day and not m.cancelled
    ]
    return max(earlier, key=lambda m: m.day, default=None)


def _topics_for(council: Council, meeting: Meeting) -> tuple[Topic, ...]:
    pool = FACTS[council.slug].topics.get(meeting.committee_id, ())
    if not pool:
        return ()
    count = min(3, len(pool))
    return tuple(pool[(meeting.id + i) % len(pool)] for i in range(count))


def publish_agenda(council: Council, meeting_id: int, day: date) -> Council:
    """The agenda, its reports, the frontsheet and the public reports pack are published on `day`."""
    meeting = meeting_of(council, meeting_id)
    if meeting.agenda_published:
        return council
    committee = committee_of(council, meeting.committee_id)
    ids = _Ids(council.ids)
    previous = _previous(council, meeting)
    before = previous.day if previous is not None else meeting.day - timedelta(days=28)
    items = [
        AgendaItem(
            ids.item(), 1, "Minutes of the previous meeting",
            (f"To confirm the minutes of the meeting held on {long_date(before)}.",),
            (_doc(ids, f"Minutes , {before:%d/%m/%Y} {committee.title}", day),),
            resolution=(f"The minutes of the meeting held on {long_date(before)} were taken as read, confirmed and "
                        "signed.",),
            procedural=True,
        ),
        AgendaItem(ids.item(), 2, "Declarations of interest", (DECLARATIONS_TEXT,), resolution=DECLARATIONS_MINUTES,
                   procedural=True),
    ]
    for number, topic in enumerate(_topics_for(council, meeting), start=3):
        items.append(
            AgendaItem(
                ids.item(), number, topic.title, topic.text,
                (_doc(ids, topic.report, day),) if topic.report else (),
                resolution=topic.decision or topic.resolution,
                is_decision=bool(topic.decision),
                decision=topic.decision,
                key_decision=topic.key_decision,
            )
        )
    stamp = f"{pack_date(meeting)} {committee.title}"
    papers = (_doc(ids, f"Agenda frontsheet {stamp}", day), _doc(ids, f"Public reports pack {stamp}", day))
    meeting = replace(meeting, agenda_published=True, items=tuple(items), documents=(*meeting.documents, *papers))
    return replace(with_meeting(council, meeting), ids=ids.seq)


def _item_minutes(item: AgendaItem, committee: Committee) -> tuple[str, ...]:
    if item.minutes:
        return item.minutes
    if item.procedural:
        return item.resolution
    what = "a report" if item.documents else "a presentation"
    return (
        f"The {committee.body} considered {what} on {item.title}, a copy of which, marked 'Agenda Item "
        f"{item.number}', is filed with these minutes.",
        "RESOLVED:",
        *item.resolution,
    )


def publish_minutes(council: Council, meeting_id: int, day: date) -> Council:
    """The minutes are published on `day`: in every agenda item, and as the printed minutes."""
    meeting = meeting_of(council, meeting_id)
    if meeting.minutes_published:
        return council
    committee = committee_of(council, meeting.committee_id)
    ids = _Ids(council.ids)
    items = tuple(replace(item, minutes=_item_minutes(item, committee)) for item in meeting.items)
    printed = _doc(ids, f"Printed minutes {pack_date(meeting)} {committee.title}", day)
    meeting = replace(meeting, minutes_published=True, items=items, documents=(*meeting.documents, printed))
    return replace(with_meeting(council, meeting), ids=ids.seq)


def publish_meeting_decisions(council: Council, meeting_id: int, day: date) -> tuple[Council, tuple[int, ...]]:
    """The decisions taken at a meeting are published on `day`; returns the new decisions' ids."""
    meeting = meeting_of(council, meeting_id)
    committee = committee_of(council, meeting.committee_id)
    ids = _Ids(council.ids)
    decisions: list[Decision] = []
    items: list[AgendaItem] = []
    for item in meeting.items:
        if item.is_decision and not item.decision_published:
            decisions.append(
                Decision(
                    id=ids.decision(), title=item.title, maker=committee.title, decided_on=meeting.day,
                    published_on=day, purpose=item.text, text=item.decision, key_decision=item.key_decision,
                    call_in=True, meeting_id=meeting.id, committee_id=committee.id, documents=item.documents,
                )
            )
            item = replace(item, decision_published=True)
        items.append(item)
    meeting = replace(meeting, decision_published=True, items=tuple(items))
    council = replace(with_meeting(council, meeting), decisions=(*council.decisions, *decisions), ids=ids.seq)
    return council, tuple(d.id for d in decisions)


def publish_officer_decision(council: Council, day: date) -> tuple[Council, int]:
    """The council's next officer decision is published on `day`; returns its id."""
    facts = FACTS[council.slug]
    number = sum(1 for d in council.decisions if d.officer)
    plan = facts.officer_decisions[number % len(facts.officer_decisions)]
    place = facts.places[(number // len(facts.officer_decisions)) % len(facts.places)]
    ids = _Ids(council.ids)
    decision_id = ids.decision()
    title = plan.title.format(place=place)
    decision = Decision(
        id=decision_id,
        title=title,
        maker=plan.maker,
        decided_on=previous_working_day(day),
        published_on=day,
        purpose=tuple(p.format(place=place) for p in plan.purpose),
        text=tuple(p.format(place=place) for p in plan.text),
        key_decision=plan.key_decision,
        # Key decisions taken by officers are open to call-in like the executive's.
        call_in=plan.key_decision,
        officer=True,
        documents=(_doc(ids, f"Officer decision notice - {title}", day),),
    )
    return replace(council, decisions=(*council.decisions, decision), ids=ids.seq), decision_id


def publish_supplement(council: Council, meeting_id: int, day: date) -> tuple[Council, int]:
    """A late paper (an update report) for a meeting's agenda is published on `day`; returns its id."""
    meeting = meeting_of(council, meeting_id)
    substantive = [item for item in meeting.items if not item.procedural]
    if not substantive:
        raise ValueError(f"{council.slug} meeting {meeting_id} has no item to add a paper to")
    # The item with the fewest papers, so repeated updates spread over the agenda.
    target = min(substantive, key=lambda item: len(item.documents))
    ids = _Ids(council.ids)
    paper = _doc(ids, f"{UPDATE_REPORT}{target.title}", day)
    items = tuple(
        replace(item, documents=(*item.documents, paper)) if item.id == target.id else item for item in meeting.items
    )
    return replace(with_meeting(council, replace(meeting, items=items)), ids=ids.seq), paper.id


def add_meeting(council: Council, committee_id: int, day: date, start: time) -> tuple[Council, int]:
    """A new meeting of a committee is scheduled; returns its id."""
    committee = committee_of(council, committee_id)
    ids = _Ids(council.ids)
    meeting = Meeting(ids.meeting(), committee.id, day, start, committee.finish_time, committee.location)
    return replace(with_meeting(council, meeting), ids=ids.seq), meeting.id


def reschedule_meeting(council: Council, meeting_id: int, day: date, start: time) -> Council:
    """A meeting moves; ModernGov keeps its id and says where it came from in the status."""
    meeting = meeting_of(council, meeting_id)
    moved = replace(meeting, day=day, start_time=start, status=f"Confirmed; Rescheduled from {long_date(meeting.day)}")
    return with_meeting(council, moved)


def cancel_meeting(council: Council, meeting_id: int) -> Council:
    """A meeting is cancelled: it keeps its id and its page, with the status `Cancelled`."""
    return with_meeting(council, replace(meeting_of(council, meeting_id), status="Cancelled"))


# ---- news (the RSS "what's new" feed) ---------------------------------------------------------------------------


def _meeting_path(meeting: Meeting) -> str:
    return f"ieListDocuments.aspx?CId={meeting.committee_id}&MId={meeting.id}"


def meeting_news(council: Council, meeting: Meeting, at: datetime, what: str, tag: str) -> NewsEntry:
    committee = committee_of(council, meeting.committee_id)
    return NewsEntry(
        at=at,
        title=f"{committee.title} - {heading_date(meeting)}",
        path=_meeting_path(meeting),
        description=what,
        guid=f"{council.slug}-{tag}-{meeting.id}-{at:%Y%m%d%H%M}",
    )


def decision_news(council: Council, decision: Decision, at: datetime) -> NewsEntry:
    return NewsEntry(
        at=at,
        title=f"Decision: {decision.title}",
        path=f"ieDecisionDetails.aspx?ID={decision.id}",
        description=f"Decision published by {decision.maker}",
        guid=f"{council.slug}-decision-{decision.id}",
    )


def with_news(council: Council, *entries: NewsEntry) -> Council:
    return replace(council, news=(*council.news, *entries))
