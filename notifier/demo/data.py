"""The demo councils: what they publish, and how that changes while the demo runs.

Three East Midlands councils are played: Leicestershire County Council, Leicester City Council and Rutland County
Council. Leicestershire's Health and Wellbeing Board meeting of Thursday 4 December 2025 is transcribed as a fixed
historical meeting, with its agenda, reports and minutes published. Every other meeting is placed relative to the
week the demo starts in ("next Tuesday 10.00 am"), so the demo looks current whenever it runs; those meetings, their
agendas and the decisions are illustrative, written the way these councils write them.

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
from typing import NamedTuple
from zoneinfo import ZoneInfo

from notifier.models import EventType

__all__ = [
    "DEMO_COUNCILS",
    "LONDON",
    "SCRIPT",
    "AgendaItem",
    "Change",
    "Committee",
    "Council",
    "Decision",
    "DemoCouncilInfo",
    "DemoCouncils",
    "DemoState",
    "Document",
    "Issue",
    "Meeting",
    "NewsEntry",
    "ScriptedChange",
    "When",
    "build_baseline",
    "heading_date",
    "long_date",
    "uk_time",
    "utc_now",
]

LONDON = ZoneInfo("Europe/London")
MON, TUE, WED, THU, FRI = range(5)


# ---- what a council publishes -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class When:
    """A day and time relative to the Monday of the week the demo starts in."""

    weeks: int
    weekday: int
    hour: int
    minute: int = 0

    def day(self, monday: date) -> date:
        return monday + timedelta(weeks=self.weeks, days=self.weekday)

    @property
    def clock(self) -> time:
        return time(self.hour, self.minute)


@dataclass(frozen=True, slots=True)
class Committee:
    """A committee, with the habits new meetings of it follow (day of the week, time, room)."""

    id: int
    title: str
    category: str
    location: str
    weekday: int = TUE
    start_time: time = time(10)
    finish_time: time | None = None
    expired: bool = False

    @property
    def body(self) -> str:
        """What its minutes call it: "The Board considered ..."."""
        for word in ("Board", "Commission", "Cabinet", "Executive"):
            if word in self.title:
                return word
        return "Committee"


@dataclass(frozen=True, slots=True)
class Document:
    """A published paper, served at `mgConvert2PDF.aspx?ID={id}`."""

    id: int
    title: str
    published: date
    size_kb: int


@dataclass(frozen=True, slots=True)
class AgendaItem:
    """One item of a published agenda; `minutes` is filled when the minutes are published."""

    id: int
    number: int
    title: str
    text: tuple[str, ...]
    documents: tuple[Document, ...] = ()
    minutes: tuple[str, ...] = ()
    # What the minutes will record: as written for procedural items, after "RESOLVED:" for the others.
    resolution: tuple[str, ...] = ()
    procedural: bool = False
    is_decision: bool = False
    decision: tuple[str, ...] = ()
    key_decision: bool = False
    decision_published: bool = False


@dataclass(frozen=True, slots=True)
class Meeting:
    """A meeting; times are UK local time, as ModernGov writes them."""

    id: int
    committee_id: int
    day: date
    start_time: time
    finish_time: time | None
    location: str
    status: str = "Confirmed"
    agenda_published: bool = False
    minutes_published: bool = False
    decision_published: bool = False
    items: tuple[AgendaItem, ...] = ()
    # Papers of the meeting as a whole (agenda frontsheet, public reports pack, printed minutes): ModernGov lists
    # these on the meeting page, not against an agenda item in the web service.
    documents: tuple[Document, ...] = ()
    webcast: bool = False

    @property
    def starts_at(self) -> datetime:
        return datetime.combine(self.day, self.start_time, LONDON)

    @property
    def cancelled(self) -> bool:
        return self.status == "Cancelled"


@dataclass(frozen=True, slots=True)
class Decision:
    """A published decision, served at `ieDecisionDetails.aspx?ID={id}`."""

    id: int
    title: str
    maker: str
    decided_on: date
    published_on: date
    purpose: tuple[str, ...]
    text: tuple[str, ...]
    key_decision: bool = False
    call_in: bool = False
    officer: bool = False
    status: str = "Recommendations Approved"
    meeting_id: int | None = None
    committee_id: int | None = None
    documents: tuple[Document, ...] = ()

    @property
    def effective_from(self) -> date:
        """A decision open to call-in takes effect when the five working-day call-in period ends."""
        return _add_working_days(self.published_on, 6) if self.call_in else self.published_on


@dataclass(frozen=True, slots=True)
class Issue:
    """A forward plan issue: its history page is linked from the decisions register without being a decision."""

    id: int
    title: str
    listed_on: date


@dataclass(frozen=True, slots=True)
class NewsEntry:
    """One item of the council's "what's new" RSS feed; `path` is relative to the council's base URL."""

    at: datetime
    title: str
    path: str
    description: str
    guid: str


@dataclass(frozen=True, slots=True)
class IdSeq:
    """The next free id of each kind: ModernGov numbers meetings, items, papers and decisions separately."""

    meeting: int
    item: int
    document: int
    decision: int


@dataclass(frozen=True, slots=True)
class Council:
    """One council's ModernGov site at one instant."""

    slug: str
    name: str
    region: str
    nation: str
    website: str
    committees: tuple[Committee, ...]
    meetings: tuple[Meeting, ...]
    decisions: tuple[Decision, ...]
    issues: tuple[Issue, ...]
    news: tuple[NewsEntry, ...]
    ids: IdSeq

    def committee(self, committee_id: int) -> Committee | None:
        return next((c for c in self.committees if c.id == committee_id), None)

    def meeting(self, meeting_id: int) -> Meeting | None:
        return next((m for m in self.meetings if m.id == meeting_id), None)

    def decision(self, decision_id: int) -> Decision | None:
        return next((d for d in self.decisions if d.id == decision_id), None)

    def document(self, document_id: int) -> Document | None:
        for meeting in self.meetings:
            for doc in meeting.documents:
                if doc.id == document_id:
                    return doc
            for item in meeting.items:
                for doc in item.documents:
                    if doc.id == document_id:
                        return doc
        for decision in self.decisions:
            for doc in decision.documents:
                if doc.id == document_id:
                    return doc
        return None


class DemoCouncilInfo(NamedTuple):
    """A council the demo serves, as the command line registers it: its site is `{demo base URL}{path}`."""

    slug: str
    name: str
    region: str
    nation: str
    path: str


# ---- formats ----------------------------------------------------------------------------------------------------


def uk_time(value: time) -> str:
    """ModernGov's clock: `10.00 am`, `2.00 pm`, `12.30 pm`."""
    hour = value.hour % 12 or 12
    return f"{hour}.{value.minute:02d} {'am' if value.hour < 12 else 'pm'}"


def long_date(value: date) -> str:
    """`24 September 2026`, as in "Confirmed; Rescheduled from 24 September 2026"."""
    return f"{value.day} {value:%B %Y}"


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def heading_date(meeting: Meeting) -> str:
    """How ModernGov heads a meeting: `Thursday, 4th December, 2025 2.00 pm`."""
    day = meeting.day
    return f"{day:%A}, {_ordinal(day.day)} {day:%B}, {day.year} {uk_time(meeting.start_time)}"


def _pack_date(meeting: Meeting) -> str:
    """The date-and-time stamp in ModernGov's generated pack names: `04th-Dec-2025 14.00`, `01st-Apr-2026 10.00`."""
    ordinal = _ordinal(meeting.day.day)
    return f"{meeting.day.day:02d}{ordinal[-2:]}-{meeting.day:%b-%Y} {meeting.start_time:%H.%M}"


def _add_working_days(day: date, count: int) -> date:
    while count > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            count -= 1
    return day


def _previous_working_day(day: date) -> date:
    day -= timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def _size_kb(document_id: int) -> int:
    return 60 + (document_id * 37) % 900


def utc_now() -> datetime:
    return datetime.now(UTC)


# ---- the facts --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Topic:
    """A substantive agenda item a committee takes; `decision` set means the item is decided at the meeting."""

    title: str
    text: tuple[str, ...]
    report: str | None = None
    resolution: tuple[str, ...] = ("That the report be noted.",)
    decision: tuple[str, ...] = ()
    key_decision: bool = False


@dataclass(frozen=True, slots=True)
class OfficerDecisionPlan:
    """An officer decision; `{place}` in any text is filled in, so the council keeps deciding new things."""

    title: str
    maker: str
    purpose: tuple[str, ...]
    text: tuple[str, ...]
    key_decision: bool = False


@dataclass(frozen=True, slots=True)
class MeetingPlan:
    """A meeting the demo starts with, and what of it is already published."""

    id: int
    committee_id: int
    when: When
    agenda: bool = False
    minutes: bool = False
    decisions: bool = False


@dataclass(frozen=True, slots=True)
class CouncilFacts:
    slug: str
    name: str
    region: str
    nation: str
    website: str
    committees: tuple[Committee, ...]
    fixed_meetings: tuple[Meeting, ...]
    plans: tuple[MeetingPlan, ...]
    topics: Mapping[int, tuple[Topic, ...]]
    officer_decisions: tuple[OfficerDecisionPlan, ...]
    places: tuple[str, ...]
    # Days before the start on which the officer decisions already published were published, oldest first.
    published_officer_decisions: tuple[int, ...]
    issue: tuple[int, str]
    ids: IdSeq


DECLARATIONS_TEXT = (
    "Members who wish to do so may make declarations of any interests in respect of items on the agenda for the "
    "meeting."
)
DECLARATIONS_MINUTES = (
    "The Chairman invited members who wished to do so to declare any interest in respect of items on the agenda for "
    "the meeting.",
    "No declarations were made.",
)


def _leicestershire_hwb_4_december_2025() -> Meeting:
    """Leicestershire's Health and Wellbeing Board, Thursday 4 December 2025 at 2.00 pm: agenda, papers, minutes."""
    agenda_day = date(2025, 11, 26)
    minutes_day = date(2025, 12, 15)

    def doc(doc_id: int, title: str, published: date = agenda_day) -> Document:
        return Document(doc_id, title, published, _size_kb(doc_id))

    items = (
        AgendaItem(
            70411, 1, "Minutes of the previous meeting",
            ("To confirm the minutes of the meeting held on 25 September 2025.",),
            (doc(191470, "Minutes , 25/09/2025 Health and Wellbeing Board"),),
            minutes=("The minutes of the meeting held on 25 September 2025 were taken as read, confirmed and signed.",),
            procedural=True,
        ),
        AgendaItem(
            70412, 2, "Declarations of interest", (DECLARATIONS_TEXT,),
            minutes=DECLARATIONS_MINUTES, procedural=True,
        ),
        AgendaItem(
            70413, 3, "Joint Local Health and Wellbeing Strategy 2022-2032 Review",
            (
                "The Board will consider a report of the Director of Public Health which presents the findings of "
                "the mid-point review of the Joint Local Health and Wellbeing Strategy 2022-2032, including progress "
                "against each of the Strategy's life course themes: Best Start for Life; Staying Healthy, Safe and "
                "Well; Living and Supported Well; and Dying Well.",
                "The Board is asked to note the findings of the review and to approve the proposed refresh of the "
                "Strategy's priorities and delivery arrangements for the remaining years of the Strategy.",
            ),
            (doc(191471, "Joint Health and Wellbeing Strategy review report"),),
            minutes=(
                "The Board considered a report of the Director of Public Health which presented the findings of the "
                "mid-point review of the Joint Local Health and Wellbeing Strategy 2022-2032, a copy of which, "
                "marked 'Agenda Item 3', is filed with these minutes.",
                "RESOLVED:",
                "(a) That the findings of the review of the Joint Local Health and Wellbeing Strategy 2022-2032 be "
                "noted;",
                "(b) That the proposed refresh of the Strategy's priorities and delivery arrangements be approved.",
            ),
        ),
        AgendaItem(
            70414, 4, "LLR SEND and Inclusion Alliance Update",
            (
                "The Board will receive an update on the work of the Leicester, Leicestershire and Rutland (LLR) SEND "
                "and Inclusion Alliance, which brings together the three local authorities, the Integrated Care "
                "Board, schools and the parent carer forums to improve outcomes for children and young people with "
                "special educational needs and disabilities (SEND).",
                "The report sets out progress against the Alliance's priorities, including the earlier "
                "identification of need, the timeliness of Education, Health and Care Plans and access to therapies.",
            ),
            (doc(191472, "SEND Alliance update"),),
            minutes=(
                "The Board received an update on the work of the LLR SEND and Inclusion Alliance, a copy of which, "
                "marked 'Agenda Item 4', is filed with these minutes.",
                "RESOLVED:",
                "That the update on the work of the LLR SEND and Inclusion Alliance be noted.",
            ),
        ),
        AgendaItem(
            70415, 5, "Pandemic Planning",
            (
                "The Board will consider a report of the Director of Public Health which sets out the arrangements in "
                "place across Leicester, Leicestershire and Rutland to prepare for and respond to a future pandemic, "
                "drawing on the lessons of the COVID-19 response.",
                "The report describes the local pandemic preparedness plan, the roles of the Local Resilience Forum "
                "and health partners, and the outcome of recent national and local exercises.",
            ),
            (doc(191473, "Pandemic planning report"),),
            minutes=(
                "The Board considered a report of the Director of Public Health on pandemic planning, a copy of "
                "which, marked 'Agenda Item 5', is filed with these minutes.",
                "RESOLVED:",
                "That the local arrangements for pandemic preparedness and response be noted.",
            ),
        ),
        AgendaItem(
            70416, 6, "LLR Joint Living Well with Dementia Strategy 2024-2028 - Progress Report",
            (
                "The Board will receive a progress report on the delivery of the Leicester, Leicestershire and "
                "Rutland Joint Living Well with Dementia Strategy 2024-2028, which sets out how partners will support "
                "people to live well with dementia, from diagnosis through to the end of life.",
                "The report covers the dementia diagnosis rate, post-diagnostic support, support for carers and the "
                "work to make communities dementia friendly.",
            ),
            (doc(191474, "Dementia Strategy progress report"),),
            minutes=(
                "The Board considered a progress report on the LLR Joint Living Well with Dementia Strategy "
                "2024-2028, a copy of which, marked 'Agenda Item 6', is filed with these minutes.",
                "RESOLVED:",
                "That progress against the action plan of the Joint Living Well with Dementia Strategy be noted.",
            ),
        ),
        AgendaItem(
            70417, 7, "Neighbourhood Models of Care",
            (
                "The Board will receive a presentation from the Leicester, Leicestershire and Rutland Integrated Care "
                "Board on the development of neighbourhood models of care, bringing general practice, community "
                "health services, adult social care and the voluntary sector together around local populations.",
                "The presentation will describe how the approach supports the shift from hospital to community care "
                "and from treatment to prevention set out in the NHS 10 Year Health Plan.",
            ),
            minutes=(
                "The Board received a presentation on the development of neighbourhood models of care in "
                "Leicestershire.",
                "RESOLVED:",
                "That the presentation be noted.",
            ),
        ),
        AgendaItem(
            70418, 8, "Health Related Activities of the Office of the Police and Crime Commissioner",
            (
                "The Board will receive a presentation on the health-related activities commissioned and supported by "
                "the Office of the Police and Crime Commissioner for Leicestershire, Leicester and Rutland, including "
                "support for victims of crime, substance misuse services and mental health support within the "
                "criminal justice system.",
            ),
            minutes=(
                "The Board received a presentation on the health-related activities of the Office of the Police and "
                "Crime Commissioner.",
                "RESOLVED:",
                "That the presentation be noted.",
            ),
        ),
        AgendaItem(
            70419, 9, "Better Care Fund Quarter 2 2025/26 Report",
            (
                "The Board will consider a report of the Director of Adults and Communities and the Integrated Care "
                "Board which provides an update on the Better Care Fund (BCF) plan for 2025/26 and seeks the Board's "
                "retrospective approval of the quarter 2 return submitted to NHS England.",
                "The report summarises performance against the BCF national metrics, including emergency admissions, "
                "discharge delays and admissions to long-term residential and nursing care.",
            ),
            (doc(191475, "Better Care Fund Q2 report"),),
            minutes=(
                "The Board considered a report on the Better Care Fund for quarter 2 of 2025/26, a copy of which, "
                "marked 'Agenda Item 9', is filed with these minutes.",
                "RESOLVED:",
                "That the Better Care Fund quarter 2 return for 2025/26 submitted to NHS England be approved.",
            ),
        ),
        AgendaItem(
            70420, 10, "Date of next meeting",
            ("To note that the next meeting of the Board is scheduled to take place on Thursday 5 March 2026 at "
             "2.00pm.",),
            minutes=("It was noted that the next meeting of the Board would be held on Thursday 5 March 2026 at "
                     "2.00pm.",),
            procedural=True,
        ),
    )
    stamp = "04th-Dec-2025 14.00 Health and Wellbeing Board"
    return Meeting(
        id=7581,
        committee_id=1038,
        day=date(2025, 12, 4),
        start_time=time(14),
        finish_time=time(16, 30),
        location="Sparkenhoe Committee Room, County Hall, Glenfield",
        agenda_published=True,
        minutes_published=True,
        items=items,
        documents=(
            doc(191476, f"Agenda frontsheet {stamp}"),
            doc(191477, f"Public reports pack {stamp}"),
            doc(192318, f"Printed minutes {stamp}", minutes_day),
        ),
    )


COUNTY_HALL = "County Hall, Glenfield"
CITY_HALL = "City Hall, 115 Charles Street, Leicester, LE1 1FZ"
CATMOSE = "Catmose, Oakham, Rutland, LE15 6HP"

LEICESTERSHIRE = CouncilFacts(
    slug="leicestershire",
    name="Leicestershire County Council",
    region="East Midlands",
    nation="England",
    website="https://www.leicestershire.gov.uk",
    committees=(
        Committee(135, "Cabinet", "Executive", f"Sparkenhoe Committee Room, {COUNTY_HALL}", TUE, time(14), time(16)),
        Committee(148, "Scrutiny Commission", "Overview and Scrutiny", f"Gartree Committee Room, {COUNTY_HALL}",
                  WED, time(10), time(12, 30)),
        Committee(1041, "Adults and Communities Overview and Scrutiny Committee", "Overview and Scrutiny",
                  f"Gartree Committee Room, {COUNTY_HALL}", MON, time(14), time(16, 30)),
        Committee(1040, "Children and Families Overview and Scrutiny Committee", "Overview and Scrutiny",
                  f"Gartree Committee Room, {COUNTY_HALL}", TUE, time(14), time(16, 30)),
        Committee(1038, "Health and Wellbeing Board", "Partnership Boards",
                  f"Sparkenhoe Committee Room, {COUNTY_HALL}", THU, time(14), time(16, 30)),
        Committee(1207, "COVID-19 Local Outbreak Engagement Board", "Partnership Boards",
                  "Virtual Meeting", THU, time(14), None, expired=True),
    ),
    fixed_meetings=(_leicestershire_hwb_4_december_2025(),),
    plans=(
        MeetingPlan(7598, 148, When(-4, WED, 10), agenda=True, minutes=True),
        MeetingPlan(7601, 1041, When(-2, MON, 14), agenda=True, minutes=True),
        MeetingPlan(7605, 135, When(-2, TUE, 14), agenda=True),
        MeetingPlan(7609, 1040, When(-1, TUE, 14), agenda=True),
        MeetingPlan(7612, 148, When(1, WED, 10)),
        MeetingPlan(7618, 1041, When(1, MON, 14)),
        MeetingPlan(7621, 135, When(2, TUE, 14)),
        MeetingPlan(7626, 1038, When(3, THU, 14)),
    ),
    topics={
        135: (
            Topic(
                "Provisional Medium Term Financial Strategy 2026/27 - 2029/30",
                (
                    "To seek approval of the provisional Medium Term Financial Strategy (MTFS), including the "
                    "proposed revenue budget for 2026/27 and the capital programme, for consultation and for "
                    "consideration by the Overview and Scrutiny bodies.",
                    "The report sets out the growing demand for adult social care and for support for children with "
                    "special educational needs and disabilities, and the savings required to set a balanced budget.",
                ),
                "Report of the Director of Corporate Resources",
                decision=(
                    "(a) That the provisional Medium Term Financial Strategy 2026/27 - 2029/30 be approved for "
                    "consultation and referred to the Overview and Scrutiny bodies for consideration;",
                    "(b) That the final MTFS be presented to the County Council for approval in February.",
                ),
                key_decision=True,
            ),
            Topic(
                "SEND and Inclusion Transformation Programme",
                (
                    "To provide an update on the SEND and Inclusion Transformation Programme and to seek approval for "
                    "the next phase of the programme, which aims to meet more children's needs in mainstream schools "
                    "close to home.",
                ),
                "Report of the Director of Children and Family Services",
                decision=(
                    "That the next phase of the SEND and Inclusion Transformation Programme, including the expansion "
                    "of resourced provision in mainstream schools, be approved.",
                ),
                key_decision=True,
            ),
            Topic(
                "Adult Social Care Charging Policy - Outcome of Consultation",
                (
                    "To report the outcome of the public consultation on proposed changes to the Adult Social Care "
                    "Charging Policy and to seek approval of the revised policy.",
                ),
                "Report of the Director of Adults and Communities",
                decision=(
                    "That the revised Adult Social Care Charging Policy be approved, to take effect from 6 April, "
                    "having had regard to the outcome of the consultation and the equality impact assessment.",
                ),
                key_decision=True,
            ),
            Topic(
                "Recommissioning of Dementia Support Services",
                (
                    "To seek approval to recommission the Leicestershire dementia support service, which offers "
                    "information, advice and peer support to people living with dementia and their carers following "
                    "diagnosis.",
                ),
                "Report of the Director of Adults and Communities",
                decision=(
                    "That the Director of Adults and Communities be authorised to recommission dementia support "
                    "services for a period of up to five years.",
                ),
            ),
            Topic(
                "Local Transport Plan 4 - Approval",
                (
                    "To seek approval of the Leicestershire Local Transport Plan 4, which sets the County Council's "
                    "approach to highways, public transport, walking, cycling and parking over the coming years.",
                ),
                "Report of the Director of Environment and Transport",
                decision=("That the Leicestershire Local Transport Plan 4 be recommended to the County Council for "
                          "adoption.",),
                key_decision=True,
            ),
        ),
        148: (
            Topic(
                "Medium Term Financial Strategy 2026/27 - 2029/30",
                (
                    "The Commission will consider the provisional Medium Term Financial Strategy as it relates to the "
                    "Corporate Resources and Chief Executive's departments, and the overall position of the County "
                    "Council's finances.",
                ),
                "Joint report of the Chief Executive and the Director of Corporate Resources",
                resolution=("That the report be noted and the comments now made be forwarded to the Cabinet.",),
            ),
            Topic(
                "Corporate Complaints and Compliments Annual Report",
                (
                    "To present the annual report on complaints and compliments received by the County Council, "
                    "including those referred to the Local Government and Social Care Ombudsman.",
                ),
                "Report of the Director of Law and Governance",
            ),
            Topic(
                "Quarter 3 Performance Report",
                (
                    "To present the County Council's performance at the end of quarter 3 against the outcomes of the "
                    "Strategic Plan, including waiting times for adult social care assessments and the timeliness of "
                    "Education, Health and Care Plans.",
                ),
                "Report of the Chief Executive",
            ),
        ),
        1041: (
            Topic(
                "Dementia Support Services in Leicestershire",
                (
                    "To provide an overview of support available to people living with dementia in Leicestershire and "
                    "their carers, and of progress in delivering the Joint Living Well with Dementia Strategy.",
                ),
                "Report of the Director of Adults and Communities",
            ),
            Topic(
                "Adult Social Care Performance: Quarter 3",
                (
                    "To present performance against the Adults and Communities department's key measures, including "
                    "admissions to residential care, reablement and waiting lists for assessment.",
                ),
                "Report of the Director of Adults and Communities",
            ),
            Topic(
                "Carers Strategy Refresh",
                (
                    "To seek the Committee's views on the draft refreshed Carers Strategy, developed with unpaid "
                    "carers, including carers of people with dementia and with mental health needs.",
                ),
                "Report of the Director of Adults and Communities",
                resolution=("That the comments now made be forwarded to the Cabinet for consideration.",),
            ),
            Topic(
                "Adult Mental Health Social Work Service",
                (
                    "To provide an update on the delivery of the adult mental health social work service, including "
                    "Approved Mental Health Professional assessments and joint work with the NHS mental health trust.",
                ),
                "Report of the Director of Adults and Communities",
            ),
        ),
        1040: (
            Topic(
                "SEND and Inclusion: High Needs Block Update",
                (
                    "To update the Committee on the High Needs Block of the Dedicated Schools Grant, demand for "
                    "Education, Health and Care Plans and the progress of the SEND and Inclusion programme.",
                ),
                "Report of the Director of Children and Family Services",
            ),
            Topic(
                "Children and Young People's Mental Health Services",
                (
                    "To receive an update from the Integrated Care Board on waiting times for children and young "
                    "people's mental health services and on mental health support teams in schools.",
                ),
                "Report of the Integrated Care Board",
            ),
            Topic(
                "Home to School Transport Policy Review",
                (
                    "To seek the Committee's views on proposed changes to the Home to School Transport Policy, "
                    "including transport for children with special educational needs and disabilities.",
                ),
                "Report of the Director of Children and Family Services",
                resolution=("That the comments now made be forwarded to the Cabinet for consideration.",),
            ),
        ),
        1038: (
            Topic(
                "Joint Strategic Needs Assessment: Respiratory Health",
                (
                    "To present the Joint Strategic Needs Assessment chapter on respiratory health, covering asthma, "
                    "chronic obstructive pulmonary disease (COPD) and the effect of air quality and smoking.",
                ),
                "Report of the Director of Public Health",
            ),
            Topic(
                "Mental Health and Wellbeing: Prevention Concordat Update",
                (
                    "To update the Board on the Prevention Concordat for Better Mental Health and on suicide "
                    "prevention work across Leicestershire.",
                ),
                "Report of the Director of Public Health",
            ),
            Topic(
                "Better Care Fund Quarter 3 2025/26 Report",
                (
                    "To provide an update on the Better Care Fund plan and to seek the Board's approval of the "
                    "quarter 3 return submitted to NHS England.",
                ),
                "Report of the Director of Adults and Communities",
                resolution=("That the Better Care Fund quarter 3 return be approved.",),
            ),
        ),
    },
    officer_decisions=(
        OfficerDecisionPlan(
            "Traffic Regulation Order: Waiting Restrictions in {place}",
            "Director of Environment and Transport",
            ("To introduce waiting restrictions in {place} to address obstructive parking reported by residents and "
             "the local bus operator.",),
            ("That the proposed waiting restrictions in {place} be implemented as advertised, having considered the "
             "objections received during the statutory consultation.",),
        ),
        OfficerDecisionPlan(
            "Award of Grants to Dementia Support Groups - {place}",
            "Director of Adults and Communities",
            ("To award small grants to community groups in {place} offering activities and peer support for people "
             "living with dementia and their carers.",),
            ("That grants be awarded to the community dementia support groups in {place} set out in the report.",),
        ),
        OfficerDecisionPlan(
            "Direct Award of SEND Transport Contracts - {place} Schools",
            "Director of Children and Family Services",
            ("To secure home to school transport for children with special educational needs and disabilities "
             "attending schools in {place}.",),
            ("That transport contracts for the routes serving schools in {place} be awarded directly to the operators "
             "named in the report for the remainder of the academic year.",),
            key_decision=True,
        ),
    ),
    places=("Coalville", "Hinckley", "Loughborough", "Market Harborough", "Melton Mowbray", "Lutterworth",
            "Ashby-de-la-Zouch", "Oadby"),
    published_officer_decisions=(26, 9),
    issue=(6640, "Provisional Medium Term Financial Strategy 2026/27 - 2029/30"),
    ids=IdSeq(meeting=7640, item=71800, document=193400, decision=5830),
)

LEICESTER = CouncilFacts(
    slug="leicester",
    name="Leicester City Council",
    region="East Midlands",
    nation="England",
    website="https://www.leicester.gov.uk",
    committees=(
        Committee(386, "Health and Wellbeing Board", "Partnership Boards",
                  f"Meeting Room G.01, Ground Floor, {CITY_HALL}", THU, time(9, 30), time(11, 30)),
        Committee(528, "Executive", "Executive", f"Meeting Room G.02, Ground Floor, {CITY_HALL}", THU, time(10),
                  time(12)),
        Committee(156, "Planning and Development Control Committee", "Regulatory",
                  f"Meeting Rooms G.01 and G.02, Ground Floor, {CITY_HALL}", WED, time(17, 30), time(20)),
    ),
    fixed_meetings=(),
    plans=(
        MeetingPlan(13881, 386, When(-3, THU, 9, 30), agenda=True, minutes=True),
        MeetingPlan(13897, 528, When(-1, THU, 10), agenda=True, decisions=True),
        MeetingPlan(13899, 156, When(0, WED, 17, 30), agenda=True),
        MeetingPlan(13902, 528, When(1, THU, 10), agenda=True),
        MeetingPlan(13905, 156, When(3, WED, 17, 30)),
        MeetingPlan(13910, 386, When(4, THU, 9, 30)),
    ),
    topics={
        386: (
            Topic(
                "Children and Young People's Asthma: Leicester Respiratory Health Programme",
                (
                    "The Board will receive an update on the city's respiratory health programme, including asthma "
                    "care for children and young people in schools and general practice, and the link between damp "
                    "and mouldy housing and respiratory illness.",
                ),
                "Report of the Director of Public Health",
            ),
            Topic(
                "Leicester Mental Health and Wellbeing Strategy",
                (
                    "The Board will consider the draft Leicester Mental Health and Wellbeing Strategy, which sets out "
                    "how partners will promote good mental health, prevent suicide and improve access to support.",
                ),
                "Report of the Director of Public Health",
                resolution=("That the draft Mental Health and Wellbeing Strategy be endorsed for consultation.",),
            ),
            Topic(
                "Joint Living Well with Dementia Strategy: Leicester Progress",
                (
                    "The Board will receive an update on the city's progress in delivering the Leicester, "
                    "Leicestershire and Rutland Joint Living Well with Dementia Strategy, including dementia "
                    "diagnosis rates among the city's diverse communities.",
                ),
                "Report of the Strategic Director of Social Care and Education",
            ),
            Topic(
                "Director of Public Health's Annual Report",
                (
                    "The Board will receive the Director of Public Health's annual report, which this year focuses on "
                    "health inequalities between neighbourhoods of the city.",
                ),
                "Director of Public Health's Annual Report",
            ),
        ),
        528: (
            Topic(
                "Homelessness and Rough Sleeping Strategy 2026-2031",
                (
                    "To consider the Homelessness and Rough Sleeping Strategy 2026-2031, which responds to rising "
                    "demand for temporary accommodation and sets out how the Council will prevent homelessness.",
                ),
                "Report of the Director of Housing",
                decision=("That the Homelessness and Rough Sleeping Strategy 2026-2031 be approved.",),
                key_decision=True,
            ),
            Topic(
                "Housing Revenue Account Budget 2026/27",
                (
                    "To consider the Housing Revenue Account budget for 2026/27, including council housing rents, "
                    "service charges and the capital programme for council homes.",
                ),
                "Report of the Director of Finance",
                decision=("That the Housing Revenue Account budget for 2026/27 be recommended to Council for "
                          "approval.",),
                key_decision=True,
            ),
            Topic(
                "Adult Social Care: Fee Rates for Care Providers 2026/27",
                (
                    "To set the fee rates paid to providers of residential care, nursing care and home care in "
                    "2026/27, including care for people living with dementia.",
                ),
                "Report of the Strategic Director of Social Care and Education",
                decision=("That the fee rates for adult social care providers for 2026/27 set out in the report be "
                          "approved.",),
                key_decision=True,
            ),
            Topic(
                "Residents' Parking Schemes: Review",
                (
                    "To consider the outcome of the review of residents' parking schemes and the proposed criteria "
                    "for introducing new schemes near the city centre.",
                ),
                "Report of the Strategic Director of City Development and Neighbourhoods",
                decision=("That the revised criteria for residents' parking schemes be approved.",),
            ),
        ),
        156: (
            Topic(
                "Planning Application 20251532: Former Garage Site, Residential Development of 24 Homes",
                (
                    "Full planning application for the demolition of garages and the construction of 24 affordable "
                    "homes with associated parking and landscaping.",
                    "Recommendation: grant planning permission subject to conditions.",
                ),
                "Planning application 20251532 - officer report",
                resolution=("That planning permission be granted subject to the conditions set out in the report.",),
            ),
            Topic(
                "Planning Application 20251688: Change of Use to a House in Multiple Occupation",
                (
                    "Application for the change of use of a dwelling house to a seven-bedroom house in multiple "
                    "occupation (HMO), within an area covered by an Article 4 direction.",
                    "Recommendation: refuse planning permission.",
                ),
                "Planning application 20251688 - officer report",
                resolution=("That planning permission be refused for the reason set out in the report.",),
            ),
            Topic(
                "Planning Application 20252011: Extension to a Primary School for SEND Places",
                (
                    "Application for a single-storey extension to a primary school to provide a resourced base for "
                    "children with special educational needs and disabilities.",
                    "Recommendation: grant planning permission subject to conditions.",
                ),
                "Planning application 20252011 - officer report",
                resolution=("That planning permission be granted subject to the conditions set out in the report.",),
            ),
            Topic(
                "Planning Application 20251874: Multi-Storey Car Park",
                (
                    "Application for a multi-storey car park providing 420 parking spaces, including spaces for "
                    "disabled drivers and electric vehicle charging.",
                    "Recommendation: grant planning permission subject to conditions.",
                ),
                "Planning application 20251874 - officer report",
                resolution=("That planning permission be granted subject to the conditions set out in the report.",),
            ),
        ),
    },
    officer_decisions=(
        OfficerDecisionPlan(
            "Residents' Parking Scheme - {place}",
            "Strategic Director of City Development and Neighbourhoods",
            ("To introduce a residents' parking scheme in the {place} area following consultation with residents.",),
            ("That the residents' parking scheme for the {place} area be introduced as advertised.",),
        ),
        OfficerDecisionPlan(
            "Homelessness Prevention: Supported Accommodation Contract - {place}",
            "Director of Housing",
            ("To secure supported accommodation for single homeless people in the {place} area, reducing the use of "
             "bed and breakfast accommodation.",),
            ("That a contract for supported accommodation in the {place} area be awarded to the provider named in "
             "the report for three years.",),
            key_decision=True,
        ),
        OfficerDecisionPlan(
            "Adult Social Care: Dementia Day Opportunities Contract Extension - {place}",
            "Strategic Director of Social Care and Education",
            ("To extend the contract for day opportunities for people living with dementia in {place} while the "
             "service is recommissioned.",),
            ("That the contract for dementia day opportunities in {place} be extended for twelve months.",),
        ),
    ),
    places=("Aylestone", "Belgrave", "Braunstone Park and Rowley Fields", "Castle", "Evington", "Knighton",
            "Saffron", "Westcotes"),
    published_officer_decisions=(30, 12),
    issue=(4518, "Homelessness and Rough Sleeping Strategy 2026-2031"),
    ids=IdSeq(meeting=13940, item=128600, document=156200, decision=9470),
)

RUTLAND = CouncilFacts(
    slug="rutland",
    name="Rutland County Council",
    region="East Midlands",
    nation="England",
    website="https://www.rutland.gov.uk",
    committees=(
        Committee(226, "Cabinet", "Executive", f"Council Chamber, {CATMOSE}", TUE, time(10), time(12)),
        Committee(234, "Planning and Licensing Committee", "Regulatory", f"Council Chamber, {CATMOSE}", TUE,
                  time(18), time(21)),
        Committee(391, "Health and Wellbeing Board", "Partnership Boards", f"Council Chamber, {CATMOSE}", TUE,
                  time(14), time(16)),
    ),
    fixed_meetings=(),
    plans=(
        MeetingPlan(3329, 391, When(-4, TUE, 14), agenda=True, minutes=True),
        MeetingPlan(3334, 226, When(-2, TUE, 10), agenda=True, minutes=True, decisions=True),
        MeetingPlan(3338, 226, When(1, TUE, 10)),
        MeetingPlan(3341, 234, When(2, TUE, 18)),
        MeetingPlan(3343, 391, When(1, TUE, 14)),
        MeetingPlan(3346, 234, When(5, TUE, 18)),
    ),
    topics={
        226: (
            Topic(
                "Rutland Local Plan: Regulation 19 Consultation",
                (
                    "To seek approval to publish the Rutland Local Plan for consultation under Regulation 19, setting "
                    "out where new housing, employment land and infrastructure will go up to 2041.",
                ),
                "Report of the Strategic Director of Places",
                decision=("That the Rutland Local Plan be approved for publication and consultation under Regulation "
                          "19.",),
                key_decision=True,
            ),
            Topic(
                "Adult Social Care: Day Opportunities Review",
                (
                    "To consider the outcome of the review of day opportunities for adults with learning disabilities, "
                    "dementia and mental health needs, and the proposed new model.",
                ),
                "Report of the Strategic Director of Adults and Health",
                decision=("That the new model for day opportunities be approved for implementation.",),
                key_decision=True,
            ),
            Topic(
                "Oakham Town Centre Parking Charges",
                (
                    "To consider proposed changes to parking charges in Oakham town centre car parks following "
                    "consultation with residents and businesses.",
                ),
                "Report of the Strategic Director of Places",
                decision=("That the revised parking charges for Oakham town centre car parks be approved.",),
            ),
            Topic(
                "Housing Allocations Policy Review",
                (
                    "To approve the revised Housing Allocations Policy, which sets out how social housing in Rutland "
                    "is let, including priority for households threatened with homelessness.",
                ),
                "Report of the Strategic Director of Places",
                decision=("That the revised Housing Allocations Policy be approved.",),
            ),
        ),
        234: (
            Topic(
                "Planning Application 2025/0812/FUL: Residential Development of 30 Dwellings",
                (
                    "Full application for the erection of 30 dwellings, including 9 affordable homes, with access, "
                    "parking and open space, on land at the edge of the village.",
                    "Recommendation: approval, subject to a section 106 agreement and conditions.",
                ),
                "Planning application 2025/0812/FUL - officer report",
                resolution=("That the application be approved subject to a section 106 agreement and conditions.",),
            ),
            Topic(
                "Planning Application 2025/0977/FUL: Change of Use to Holiday Lets",
                (
                    "Application for the conversion of agricultural buildings to four holiday lets with parking.",
                    "Recommendation: approval, subject to conditions.",
                ),
                "Planning application 2025/0977/FUL - officer report",
                resolution=("That the application be approved subject to conditions.",),
            ),
            Topic(
                "Review of the Statement of Licensing Policy",
                (
                    "To consider the draft revised Statement of Licensing Policy under the Licensing Act 2003 "
                    "before it is recommended to Council.",
                ),
                "Report of the Strategic Director of Places",
                resolution=("That the draft Statement of Licensing Policy be recommended to Council for adoption.",),
            ),
        ),
        391: (
            Topic(
                "Rutland Dementia Strategy: Progress Update",
                (
                    "To receive an update on support for people living with dementia in Rutland, including memory "
                    "assessment waiting times and the Rutland dementia friendly communities programme.",
                ),
                "Report of the Strategic Director of Adults and Health",
            ),
            Topic(
                "SEND Local Area Partnership: Inspection Readiness",
                (
                    "To update the Board on the SEND local area partnership's self-evaluation and readiness for "
                    "inspection, and on waiting times for therapies and neurodevelopmental assessments.",
                ),
                "Report of the Strategic Director of Children and Families",
            ),
            Topic(
                "Mental Health Support in Rural Communities",
                (
                    "To consider access to mental health support for people in Rutland's villages, including "
                    "talking therapies and support for farmers and rural businesses.",
                ),
                "Report of the Director of Public Health",
            ),
            Topic(
                "Joint Strategic Needs Assessment: Respiratory Health and Winter Planning",
                (
                    "To present the respiratory health chapter of the Joint Strategic Needs Assessment, including "
                    "asthma and COPD, and the local plan for winter pressures.",
                ),
                "Report of the Director of Public Health",
            ),
        ),
    },
    officer_decisions=(
        OfficerDecisionPlan(
            "Parking Places Order: Changes to Parking in {place}",
            "Strategic Director of Places",
            ("To make changes to on-street parking in {place} following requests from residents and the parish "
             "council.",),
            ("That the Parking Places Order for {place} be made as advertised.",),
        ),
        OfficerDecisionPlan(
            "Household Support Fund: Grants to Community Groups in {place}",
            "Strategic Director of Adults and Health",
            ("To award Household Support Fund grants to community groups in {place} supporting residents with the "
             "cost of food and energy.",),
            ("That grants be awarded to the community groups in {place} listed in the report.",),
        ),
        OfficerDecisionPlan(
            "Extra Care Housing Support Contract - {place}",
            "Strategic Director of Adults and Health",
            ("To secure care and support for older people living in extra care housing in {place}.",),
            ("That the contract for extra care housing support in {place} be awarded to the provider named in the "
             "report.",),
            key_decision=True,
        ),
    ),
    places=("Oakham", "Uppingham", "Ketton", "Cottesmore", "Empingham", "Ryhall", "Great Casterton", "Whissendine"),
    published_officer_decisions=(21, 6),
    issue=(1312, "Rutland Local Plan"),
    ids=IdSeq(meeting=3360, item=26400, document=41900, decision=2630),
)

FACTS: Mapping[str, CouncilFacts] = MappingProxyType({f.slug: f for f in (LEICESTERSHIRE, LEICESTER, RUTLAND)})

DEMO_COUNCILS: list[DemoCouncilInfo] = [
    DemoCouncilInfo(f.slug, f.name, f.region, f.nation, f"/{f.slug}") for f in FACTS.values()
]


# ---- publishing: each step a pure function from one council to the next ------------------------------------------


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
    return Document(doc_id, title, published, _size_kb(doc_id))


def _committee(council: Council, committee_id: int) -> Committee:
    committee = council.committee(committee_id)
    if committee is None:
        raise ValueError(f"{council.slug} has no committee {committee_id}")
    return committee


def _meeting(council: Council, meeting_id: int) -> Meeting:
    meeting = council.meeting(meeting_id)
    if meeting is None:
        raise ValueError(f"{council.slug} has no meeting {meeting_id}")
    return meeting


def _with_meeting(council: Council, meeting: Meeting) -> Council:
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
    meeting = _meeting(council, meeting_id)
    if meeting.agenda_published:
        return council
    committee = _committee(council, meeting.committee_id)
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
    stamp = f"{_pack_date(meeting)} {committee.title}"
    papers = (_doc(ids, f"Agenda frontsheet {stamp}", day), _doc(ids, f"Public reports pack {stamp}", day))
    meeting = replace(meeting, agenda_published=True, items=tuple(items), documents=(*meeting.documents, *papers))
    return replace(_with_meeting(council, meeting), ids=ids.seq)


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
    meeting = _meeting(council, meeting_id)
    if meeting.minutes_published:
        return council
    committee = _committee(council, meeting.committee_id)
    ids = _Ids(council.ids)
    items = tuple(replace(item, minutes=_item_minutes(item, committee)) for item in meeting.items)
    printed = _doc(ids, f"Printed minutes {_pack_date(meeting)} {committee.title}", day)
    meeting = replace(meeting, minutes_published=True, items=items, documents=(*meeting.documents, printed))
    return replace(_with_meeting(council, meeting), ids=ids.seq)


def publish_meeting_decisions(council: Council, meeting_id: int, day: date) -> tuple[Council, tuple[int, ...]]:
    """The decisions taken at a meeting are published on `day`; returns the new decisions' ids."""
    meeting = _meeting(council, meeting_id)
    committee = _committee(council, meeting.committee_id)
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
    council = replace(_with_meeting(council, meeting), decisions=(*council.decisions, *decisions), ids=ids.seq)
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
        decided_on=_previous_working_day(day),
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
    meeting = _meeting(council, meeting_id)
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
    return replace(_with_meeting(council, replace(meeting, items=items)), ids=ids.seq), paper.id


def add_meeting(council: Council, committee_id: int, day: date, start: time) -> tuple[Council, int]:
    """A new meeting of a committee is scheduled; returns its id."""
    committee = _committee(council, committee_id)
    ids = _Ids(council.ids)
    meeting = Meeting(ids.meeting(), committee.id, day, start, committee.finish_time, committee.location)
    return replace(_with_meeting(council, meeting), ids=ids.seq), meeting.id


def reschedule_meeting(council: Council, meeting_id: int, day: date, start: time) -> Council:
    """A meeting moves; ModernGov keeps its id and says where it came from in the status."""
    meeting = _meeting(council, meeting_id)
    moved = replace(meeting, day=day, start_time=start, status=f"Confirmed; Rescheduled from {long_date(meeting.day)}")
    return _with_meeting(council, moved)


def cancel_meeting(council: Council, meeting_id: int) -> Council:
    """A meeting is cancelled: it keeps its id and its page, with the status `Cancelled`."""
    return _with_meeting(council, replace(_meeting(council, meeting_id), status="Cancelled"))


# ---- news (the RSS "what's new" feed) ---------------------------------------------------------------------------


def _meeting_path(meeting: Meeting) -> str:
    return f"ieListDocuments.aspx?CId={meeting.committee_id}&MId={meeting.id}"


def _meeting_news(council: Council, meeting: Meeting, at: datetime, what: str, tag: str) -> NewsEntry:
    committee = _committee(council, meeting.committee_id)
    return NewsEntry(
        at=at,
        title=f"{committee.title} - {heading_date(meeting)}",
        path=_meeting_path(meeting),
        description=what,
        guid=f"{council.slug}-{tag}-{meeting.id}-{at:%Y%m%d%H%M}",
    )


def _decision_news(council: Council, decision: Decision, at: datetime) -> NewsEntry:
    return NewsEntry(
        at=at,
        title=f"Decision: {decision.title}",
        path=f"ieDecisionDetails.aspx?ID={decision.id}",
        description=f"Decision published by {decision.maker}",
        guid=f"{council.slug}-decision-{decision.id}",
    )


def _with_news(council: Council, *entries: NewsEntry) -> Council:
    return replace(council, news=(*council.news, *entries))


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
    yesterday = _previous_working_day(today)
    councils: dict[str, Council] = {}
    for facts in FACTS.values():
        council = Council(
            slug=facts.slug, name=facts.name, region=facts.region, nation=facts.nation, website=facts.website,
            committees=facts.committees, meetings=facts.fixed_meetings, decisions=(),
            issues=(Issue(facts.issue[0], facts.issue[1], today - timedelta(days=3)),), news=(), ids=facts.ids,
        )
        for fixed in facts.fixed_meetings:
            agenda_day = min(d.published for d in fixed.documents)
            council = _with_news(council, _meeting_news(council, fixed, _local(agenda_day, 9), "Agenda published",
                                                         "agenda"))
            if fixed.minutes_published:
                minutes_day = max(d.published for d in fixed.documents)
                council = _with_news(council, _meeting_news(council, fixed, _local(minutes_day, 12),
                                                             "Minutes published", "minutes"))
        for plan in facts.plans:
            committee = _committee(council, plan.committee_id)
            meeting = Meeting(plan.id, committee.id, plan.when.day(monday), plan.when.clock, committee.finish_time,
                              committee.location)
            council = _with_meeting(council, meeting)
            if plan.agenda:
                day = min(meeting.day - timedelta(days=7), yesterday)
                council = publish_agenda(council, meeting.id, day)
                council = _with_news(council, _meeting_news(council, meeting, _local(day, 9), "Agenda published",
                                                             "agenda"))
            if plan.decisions:
                day = max(meeting.day, min(meeting.day + timedelta(days=1), yesterday))
                council, decision_ids = publish_meeting_decisions(council, meeting.id, day)
                for decision_id in decision_ids:
                    decision = council.decision(decision_id)
                    if decision is not None:
                        council = _with_news(council, _decision_news(council, decision, _local(day, 12)))
            if plan.minutes:
                day = max(meeting.day, min(meeting.day + timedelta(days=8), yesterday))
                council = publish_minutes(council, meeting.id, day)
                council = _with_news(council, _meeting_news(council, meeting, _local(day, 12), "Minutes published",
                                                             "minutes"))
        for days_before in facts.published_officer_decisions:
            day = _previous_working_day(today - timedelta(days=days_before - 1))
            council, decision_id = publish_officer_decision(council, day)
            decision = council.decision(decision_id)
            if decision is not None:
                council = _with_news(council, _decision_news(council, decision, _local(day, 11)))
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
UPDATE_REPORT = "Update report - "


@dataclass(frozen=True, slots=True)
class _Target:
    """What one change does: its kind and the meeting (or, for a new meeting, the committee and when)."""

    kind: EventType
    meeting_id: int | None = None
    committee_id: int | None = None
    day: date | None = None
    start: time | None = None


def _label(council: Council, meeting: Meeting) -> str:
    committee = _committee(council, meeting.committee_id)
    return f"{committee.title}, {long_date(meeting.day)} {uk_time(meeting.start_time)}"


def _apply(council: Council, target: _Target, index: int, at: datetime) -> tuple[Council, Change]:
    """Carry out one change at `at`; the council's news gains the matching entry."""
    today = at.astimezone(LONDON).date()
    kind = target.kind
    if kind is EventType.MEETING_SCHEDULED:
        if target.committee_id is None or target.day is None or target.start is None:
            raise ValueError("a new meeting needs a committee, a day and a time")
        council, meeting_id = add_meeting(council, target.committee_id, target.day, target.start)
        meeting = _meeting(council, meeting_id)
        council = _with_news(council, _meeting_news(council, meeting, at, "New meeting", "new"))
        return council, Change(index, at, kind, council.slug, f"{_label(council, meeting)} scheduled", meeting_id)
    if kind is EventType.DECISION_PUBLISHED and target.meeting_id is None:
        council, decision_id = publish_officer_decision(council, today)
        decision = council.decision(decision_id)
        title = decision.title if decision is not None else str(decision_id)
        if decision is not None:
            council = _with_news(council, _decision_news(council, decision, at))
        return council, Change(index, at, kind, council.slug, f"Decision published: {title}", None, (decision_id,))
    if target.meeting_id is None:
        raise ValueError(f"{kind} needs a meeting")
    before = _meeting(council, target.meeting_id)
    if kind is EventType.MEETING_RESCHEDULED:
        if target.day is None or target.start is None:
            raise ValueError("a reschedule needs a new day and time")
        council = reschedule_meeting(council, before.id, target.day, target.start)
        after = _meeting(council, before.id)
        summary = f"{_label(council, before)} moved to {long_date(after.day)} {uk_time(after.start_time)}"
        news = _meeting_news(council, after, at, f"Meeting rescheduled from {long_date(before.day)}", "moved")
        return _with_news(council, news), Change(index, at, kind, council.slug, summary, before.id)
    if kind is EventType.MEETING_CANCELLED:
        council = cancel_meeting(council, before.id)
        news = _meeting_news(council, before, at, "Meeting cancelled", "cancelled")
        return _with_news(council, news), Change(index, at, kind, council.slug, f"{_label(council, before)} cancelled",
                                                 before.id)
    if kind is EventType.AGENDA_PUBLISHED:
        council = publish_agenda(council, before.id, today)
        news = _meeting_news(council, before, at, "Agenda published", "agenda")
        return _with_news(council, news), Change(index, at, kind, council.slug,
                                                 f"Agenda published: {_label(council, before)}", before.id)
    if kind is EventType.MINUTES_PUBLISHED:
        council = publish_minutes(council, before.id, today)
        news = _meeting_news(council, before, at, "Minutes published", "minutes")
        return _with_news(council, news), Change(index, at, kind, council.slug,
                                                 f"Minutes published: {_label(council, before)}", before.id)
    if kind is EventType.DOCUMENT_PUBLISHED:
        council, document_id = publish_supplement(council, before.id, today)
        news = _meeting_news(council, before, at, "Document published", f"document{document_id}")
        return _with_news(council, news), Change(index, at, kind, council.slug,
                                                 f"Document published: {_label(council, before)}", before.id,
                                                 document_ids=(document_id,))
    if kind is EventType.DECISION_PUBLISHED:
        council, decision_ids = publish_meeting_decisions(council, before.id, today)
        for decision_id in decision_ids:
            decision = council.decision(decision_id)
            if decision is not None:
                council = _with_news(council, _decision_news(council, decision, at))
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
