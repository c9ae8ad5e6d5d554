"""A subscription's filter in words, for emails and pages: 'dementia OR "mental health" in East Midlands councils'.

Pure: it is given display names (council names, not slugs) and only writes them into a sentence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from notifier.models import EventType

# A short name for each kind of event ("Meeting moved"): in emails beside each entry, and in a filter's words.
EVENT_LABELS: Mapping[str, str] = {
    EventType.MEETING_SCHEDULED: "New meeting",
    EventType.MEETING_UPDATED: "Meeting updated",
    EventType.MEETING_RESCHEDULED: "Meeting moved",
    EventType.MEETING_CANCELLED: "Meeting cancelled",
    EventType.AGENDA_PUBLISHED: "Agenda published",
    EventType.MINUTES_PUBLISHED: "Minutes published",
    EventType.DOCUMENT_PUBLISHED: "Document published",
    EventType.DECISION_PUBLISHED: "Decision",
    EventType.DECISION_UPDATED: "Decision updated",
}


def and_list(items: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def describe_filter(
    query: str = "",
    *,
    councils: Sequence[str] = (),
    regions: Sequence[str] = (),
    committees: Sequence[str] = (),
    event_types: Sequence[str] = (),
) -> str:
    """A subscription's filter in words, given display names: 'dementia OR "mental health" in East Midlands
    councils', "everything at Leicestershire County Council", "planning in every council"."""
    text = " ".join(query.split()) or "everything"
    if committees:
        text += f" in {and_list(list(committees))}"
    if councils:
        text += f" at {and_list(list(councils))}"
    elif regions:
        text += f" in {and_list(list(regions))} councils"
    else:
        text += " in every council"
    if event_types:
        text += f" (only: {', '.join(EVENT_LABELS.get(str(t), str(t)).lower() for t in event_types)})"
    return text
