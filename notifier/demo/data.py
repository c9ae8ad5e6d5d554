"""The demo councils: what they publish, and the facts their meetings and decisions are made from.

Three East Midlands councils are played: Leicestershire County Council, Leicester City Council and Rutland County
Council. Leicestershire's Health and Wellbeing Board meeting of Thursday 4 December 2025 is transcribed as a fixed
historical meeting, with its agenda, reports and minutes published. Every other meeting is placed relative to the
week the demo starts in ("next Tuesday 10.00 am"), so the demo looks current whenever it runs; those meetings, their
agendas and the decisions are illustrative, written the way these councils write them.

How all this changes while the demo runs is `timeline.py`; the steps it takes are `publishing.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from types import MappingProxyType
from typing import NamedTuple
from zoneinfo import ZoneInfo

__all__ = [
    "DECLARATIONS_MINUTES",
    "DECLARATIONS_TEXT",
    "DEMO_COUNCILS",
    "FACTS",
    "LONDON",
    "AgendaItem",
    "Committee",
    "Council",
    "CouncilFacts",
    "Decision",
    "DemoCouncilInfo",
    "Document",
    "IdSeq",
    "Issue",
    "Meeting",
    "NewsEntry",
    "Topic",
    "When",
    "size_kb",
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


# ---- working days and file sizes -------------------------------------------------------------------------------


def _add_working_days(day: date, count: int) -> date:
    while count > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            count -= 1
    return day


def size_kb(document_id: int) -> int:
    """The size the demo gives a paper, varied by its id."""
    return 60 + (document_id * 37) % 900


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
        return Document(doc_id, title, published, size_kb(doc_id))

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
