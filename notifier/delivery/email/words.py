"""Times and events in words, as emails write them: "Thu 4 Dec 2025, 14:00", "1–7 Dec 2025", "moved from 4 Dec 14:00
to 11 Dec 10:00", "venue changed to County Hall". Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from notifier.models import EventType
from notifier.topics.describe import and_list
from notifier.zones import time_zone

SUBJECT_LIMIT = 150

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_SIMPLE_EVENTS: Mapping[str, str] = {
    EventType.MEETING_SCHEDULED: "meeting scheduled",
    EventType.AGENDA_PUBLISHED: "agenda published",
    EventType.MINUTES_PUBLISHED: "minutes published",
    EventType.DOCUMENT_PUBLISHED: "document published",
}
# Labels for the fields of a `meeting.updated` event's `changes` (see notifier/ingest/diff.py).
_FIELD_LABELS: Mapping[str, str] = {
    "title": "title", "committee": "committee", "location": "venue", "status": "status",
    "status_text": "status", "starts_at": "time", "body": "agenda",
}


def check_aware(value: object, name: str) -> None:
    """Refuses a naive datetime: a time in an email is written in the subscriber's zone, so it must know its own."""
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError(f"{name} must be a string or a timezone-aware datetime, not a naive datetime")


def one_line(text: str, limit: int = SUBJECT_LIMIT) -> str:
    """`text` on one line, its white space collapsed, clipped with "…" to `limit` characters (a subject)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def format_date(day: date) -> str:
    """ "Thu 4 Dec 2025"."""
    return f"{_DAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]} {day.year}"


def format_when(value: datetime | date | str | None, timezone: str, *, time_known: bool = True) -> str:
    """ "Thu 4 Dec 2025, 14:00" in `timezone` ("Thu 4 Dec 2025" for a date or without a time); a string as it is."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if not isinstance(value, datetime):
        return format_date(value)
    check_aware(value, "when")
    local = value.astimezone(time_zone(timezone))
    return f"{format_date(local)}, {local:%H:%M}" if time_known else format_date(local)


def format_range(first: date, last: date) -> str:
    """ "1–7 Dec 2025", "24 Nov – 30 Nov 2025" across months, "29 Dec 2025 – 4 Jan 2026" across years."""
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day}\u2013{last.day} {_MONTHS[last.month - 1]} {last.year}"
    if first.year == last.year:
        return f"{first.day} {_MONTHS[first.month - 1]} \u2013 {last.day} {_MONTHS[last.month - 1]} {last.year}"
    return (f"{first.day} {_MONTHS[first.month - 1]} {first.year} \u2013 "
            f"{last.day} {_MONTHS[last.month - 1]} {last.year}")


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str) and value.strip():
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    # events.changes holds UTC ISO strings (notifier/ingest/diff.py); a naive one is read as UTC, as diff does.
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _pair(value: Any) -> tuple[Any, Any]:
    if isinstance(value, list | tuple) and len(value) == 2:
        return value[0], value[1]
    return None, value


def _short_when(dt: datetime, tz: ZoneInfo, *, time_known: bool, with_year: bool) -> str:
    local = dt.astimezone(tz)
    text = f"{local.day} {_MONTHS[local.month - 1]}" + (f" {local.year}" if with_year else "")
    # Without a `time_known` change the event does not say; a date-only meeting is stored at local midnight.
    if time_known and (local.hour, local.minute) != (0, 0):
        text += f" {local:%H:%M}"
    return text


def _sentence_case(text: str) -> str:
    """ "Recommendations Approved" → "Recommendations approved"; words in capitals ("SEND") are kept."""
    words = " ".join(str(text).split()).split(" ")
    return " ".join([words[0]] + [w.lower() if w[:1].isupper() and w[1:].islower() else w for w in words[1:]])


def describe_event(
    event_type: str, changes: Mapping[str, Any] | None = None, *, timezone: str = "Europe/London"
) -> str:
    """What happened, in words, from an event's type and its `changes` (`field -> [old, new]`, as diff writes them).

    "moved from 4 Dec 14:00 to 11 Dec 10:00", "cancelled", "agenda published", "decision published: Recommendations
    approved", "venue changed to County Hall". Dates are written in `timezone` (the subscriber's).
    """
    changes = changes or {}
    tz = time_zone(timezone)
    kind = str(event_type)
    if kind == EventType.MEETING_RESCHEDULED:
        old, new = (_as_datetime(v) for v in _pair(changes.get("starts_at")))
        old_known, new_known = _pair(changes.get("time_known", [True, True]))
        if new is None:
            return "moved to a new date"
        with_year = old is not None and old.astimezone(tz).year != new.astimezone(tz).year
        after = _short_when(new, tz, time_known=new_known is not False, with_year=with_year)
        if old is None:
            return f"moved to {after}"
        return f"moved from {_short_when(old, tz, time_known=old_known is not False, with_year=with_year)} to {after}"
    if kind == EventType.MEETING_CANCELLED:
        status = str(_pair(changes.get("status"))[1] or "")
        return "postponed" if "postpon" in status.lower() else "cancelled"
    if kind == EventType.MEETING_UPDATED:
        return _describe_update(changes)
    if kind in (EventType.DECISION_PUBLISHED, EventType.DECISION_UPDATED):
        status = str(_pair(changes.get("status"))[1] or "").strip()
        if kind == EventType.DECISION_PUBLISHED:
            return f"decision published: {_sentence_case(status)}" if status else "decision published"
        return f"decision updated: now {_sentence_case(status)}" if status else "decision updated"
    return _SIMPLE_EVENTS.get(kind, "updated")


def _describe_update(changes: Mapping[str, Any]) -> str:
    parts: list[str] = []
    fields = [name for name in changes if name in _FIELD_LABELS]
    old_status, new_status = (str(v or "").lower() for v in _pair(changes.get("status")))
    if old_status in ("cancelled", "postponed") and new_status not in ("cancelled", "postponed", ""):
        parts.append("reinstated")
        fields = [f for f in fields if f not in ("status", "status_text")]
    if fields == ["location"]:
        venue = " ".join(str(_pair(changes["location"])[1] or "").split())
        parts.append(f"venue changed to {venue}" if venue else "venue changed")
    elif fields == ["body"]:
        parts.append("agenda updated")
    elif fields == ["title"]:
        was = " ".join(str(_pair(changes["title"])[0] or "").split())
        parts.append(f"renamed (was {was})" if was else "renamed")
    elif fields == ["starts_at"]:
        parts.append("date and time set")
    elif fields:
        labels = list(dict.fromkeys(_FIELD_LABELS[f] for f in fields))
        parts.append(f"{and_list(labels)} changed")
    return "; ".join(parts) or "details updated"


def documents_from_changes(changes: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    """The (title, url) pairs of the documents folded into an agenda or minutes event (`changes["documents"]`)."""
    new = _pair((changes or {}).get("documents"))[1]
    if not isinstance(new, list):
        return ()
    return tuple(
        (str(d.get("title") or "Document"), str(d.get("url") or "")) for d in new if isinstance(d, Mapping)
    )
