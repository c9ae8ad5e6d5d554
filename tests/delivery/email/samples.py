"""Sample emails for the tests: real-looking entries from two councils, and the four kinds rendered from them."""

from __future__ import annotations

from datetime import UTC, date, datetime

from notifier.delivery.email.render import render_alert, render_confirm, render_digest, render_weekly
from notifier.delivery.email.views import EntryView, Following, Links, Rendered, SourceWarning, WeeklyCouncil
from notifier.delivery.email.words import describe_event, documents_from_changes

BASE = "https://alerts.example.org"
LINKS = Links(
    manage=f"{BASE}/manage/TOKEN-M",
    unsubscribe=f"{BASE}/unsubscribe/TOKEN-U",
    unsubscribe_subscription=f"{BASE}/unsubscribe/TOKEN-S",
)
REASON = 'dementia OR "mental health" in East Midlands councils'
FOLLOWING = [Following(REASON, "immediate")]
LEICS = "Leicestershire County Council"
RUTLAND = "Rutland County Council"
HWB = "Health and Wellbeing Board"
MEETING_URL = "https://politics.leics.gov.uk/ieListDocuments.aspx?CId=1038&MId=7424"
AGENDA_URL = "https://politics.leics.gov.uk/documents/g7424/Public%20reports%20pack%2011th-Dec-2025%2010.00.pdf"
STRATEGY_URL = "https://politics.leics.gov.uk/documents/s190312/Dementia%20Strategy.pdf"
DECISION_URL = "https://politics.leics.gov.uk/ieDecisionDetails.aspx?ID=9021"
RUTLAND_URL = "https://rutland.moderngov.co.uk/ieListDocuments.aspx?CId=133&MId=3301"
MENTAL = "mental health"


def rescheduled() -> EntryView:
    changes = {"starts_at": ["2025-12-04T14:00:00+00:00", "2025-12-11T10:00:00+00:00"]}
    return EntryView(
        event_type="meeting.rescheduled",
        council=LEICS,
        committee=HWB,
        title=HWB,
        what=describe_event("meeting.rescheduled", changes),
        summary="Health and Wellbeing Board, 4 Dec 2025 14:00 moved to 11 Dec 2025 10:00",
        url=MEETING_URL,
        when=datetime(2025, 12, 11, 10, 0, tzinfo=UTC),
        matched_terms=("dementia",),
        excerpt="Update on the Leicestershire joint dementia strategy and the Better Care Fund.",
    )


def agenda() -> EntryView:
    changes = {
        "agenda_published": [None, True],
        "documents": [[], [
            {"title": "Agenda frontsheet and reports pack", "url": AGENDA_URL},
            {"title": "Joint Dementia Strategy 2025-2030", "url": STRATEGY_URL},
        ]],
    }
    return EntryView(
        event_type="agenda.published",
        council=LEICS,
        committee=HWB,
        title=HWB,
        what=describe_event("agenda.published", changes),
        summary="Health and Wellbeing Board, 11 Dec 2025 10:00: agenda published (2 documents)",
        url=MEETING_URL,
        when=datetime(2025, 12, 11, 10, 0, tzinfo=UTC),
        documents=documents_from_changes(changes),
        matched_terms=("dementia", '"mental health"'),
        excerpt="Item 6: Mental Health Transformation Programme. Item 7: Joint Dementia Strategy 2025-2030.",
    )


def decision() -> EntryView:
    return EntryView(
        event_type="decision.published",
        council=LEICS,
        committee="Cabinet",
        title="Mental Health Support in Schools: Commissioning",
        what=describe_event("decision.published", {"status": [None, "Recommendations Approved"]}),
        summary="Decision: Mental Health Support in Schools: Commissioning (Recommendations Approved)",
        url=DECISION_URL,
        when=datetime(2025, 12, 9, 14, 0, tzinfo=UTC),
        matched_terms=(MENTAL,),
    )


def cancelled() -> EntryView:
    return EntryView(
        event_type="meeting.cancelled",
        council=RUTLAND,
        committee="Adults and Health Scrutiny Committee",
        title="Adults and Health Scrutiny Committee",
        what=describe_event("meeting.cancelled", {"status": ["confirmed", "cancelled"]}),
        summary="Adults and Health Scrutiny Committee, 9 Dec 2025 19:00: meeting cancelled",
        url=RUTLAND_URL,
        when=datetime(2025, 12, 9, 19, 0, tzinfo=UTC),
    )


WARNING = SourceWarning(RUTLAND, datetime(2025, 12, 3, 9, 0, tzinfo=UTC), "HTTP 503 from rutland.moderngov.co.uk")


def alert() -> Rendered:
    return render_alert(
        [rescheduled(), agenda(), decision(), cancelled()], links=LINKS, following=FOLLOWING, warnings=[WARNING]
    )


def digest() -> Rendered:
    return render_digest(
        [agenda(), decision(), cancelled()], day=date(2025, 12, 4), links=LINKS, following=FOLLOWING,
        warnings=[WARNING],
    )


def weekly() -> Rendered:
    leics = WeeklyCouncil(
        LEICS,
        upcoming=[rescheduled()],
        held=[EntryView("meeting.scheduled", LEICS, "Cabinet", committee="Cabinet",
                        when=datetime(2025, 12, 2, 14, 0, tzinfo=UTC), url=DECISION_URL)],
        decisions=[decision()],
        documents=[EntryView("document.published", LEICS, "Joint Dementia Strategy 2025-2030", committee=HWB,
                             url=STRATEGY_URL, matched_terms=("dementia",))],
        url="https://politics.leics.gov.uk/",
    )
    rutland = WeeklyCouncil(RUTLAND, warning=WARNING)
    return render_weekly(
        [leics, rutland], week_start=date(2025, 12, 1), links=LINKS,
        following=[Following(f"everything at {LEICS}", "weekly"), Following(f"everything at {RUTLAND}", "weekly")],
    )


def confirm() -> Rendered:
    return render_confirm(
        confirm_url=f"{BASE}/confirm/TOKEN-C", following=[Following(REASON, "daily")], expires_days=7,
    )


ALL_KINDS = {"alert": alert, "digest": digest, "weekly": weekly, "confirm": confirm}
LIST_KINDS = ("alert", "digest", "weekly")
