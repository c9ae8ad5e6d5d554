"""Pure: the one-line summary of each event, in words a subscriber reads in an email subject or a feed title.

The diff decides what happened and which fields changed; this module only words it. Dates are written in the
council's zone, as "4 Dec 2025 14:00" (the date alone when the time is not known), names and phrases are clipped
so a summary stays one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from notifier.ingest.normalise import local, marked_cancelled, status, time_known
from notifier.sources.base import Record

SUMMARY_LIMIT = 200
_TITLE_LIMIT = 110
_PHRASE_LIMIT = 60
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# What each field the diff compares is called, in the diff's order of fields (_MEETING_FIELDS and _DECISION_FIELDS
# in diff.py): "venue and agenda changed" lists them in this order.
_MEETING_LABELS = {
    "title": "title",
    "committee": "committee",
    "location": "venue",
    "status": "status",
    "status_text": "status",
    "starts_at": "time",
    "body": "agenda",
}
_DECISION_LABELS = {
    "title": "title",
    "status": "status",
    "body": "decision text",
    "starts_at": "decision date",
    "committee": "decision maker",
    "key_decision": "key decision",
    "call_in": "call-in",
}


def clip_summary(summary: str) -> str:
    """A summary as it is stored: one line of at most `SUMMARY_LIMIT` characters."""
    return _clip(summary, SUMMARY_LIMIT)


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def _when(dt: datetime, tz: ZoneInfo, *, with_time: bool) -> str:
    day = local(dt, tz)
    text = f"{day.day} {_MONTHS[day.month - 1]} {day.year}"
    return f"{text} {day:%H:%M}" if with_time else text


def _meeting_name(r: Record) -> str:
    return _clip(r.title or r.committee or "Meeting", _TITLE_LIMIT)


def _meeting_label(r: Record, tz: ZoneInfo) -> str:
    """Name and start, as in "Health and Wellbeing Board, 4 Dec 2025 14:00" (the date alone if the time is unknown)."""
    if r.starts_at is None:
        return _meeting_name(r)
    return f"{_meeting_name(r)}, {_when(r.starts_at, tz, with_time=time_known(r))}"


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _phrase_list(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


# ---- meetings --------------------------------------------------------------------------------------------------------


def meeting_scheduled(r: Record, tz: ZoneInfo) -> str:
    return f"{_meeting_label(r, tz)}: meeting scheduled"


def meeting_cancelled(r: Record, tz: ZoneInfo) -> str:
    word = "postponed" if status(r) == "postponed" else "cancelled"
    return f"{_meeting_label(r, tz)}: meeting {word}"


def published(r: Record, what: str, tz: ZoneInfo) -> str:
    """An agenda or minutes publication; `with_documents` adds the count of documents folded into it."""
    return f"{_meeting_label(r, tz)}: {what} published"


def with_documents(summary: str, n: int) -> str:
    return f"{summary} ({_count(n, 'document')})"


def meeting_moved(old: Record, new: Record, tz: ZoneInfo) -> str:
    before = _when(old.starts_at, tz, with_time=time_known(old)) if old.starts_at else "no date"
    after = _when(new.starts_at, tz, with_time=time_known(new)) if new.starts_at else "no date"
    return f"{_meeting_name(new)}, {before} moved to {after}"


def meeting_updated(old: Record, new: Record, fields: Sequence[str], reinstated: bool, tz: ZoneInfo) -> str:
    """A `meeting.updated` whose changed `fields` are named as the diff names them."""
    parts: list[str] = []
    if reinstated:
        parts.append("meeting reinstated")
    # A reinstatement explains its status and a title losing its "cancelled" marker.
    explained = {"status", "status_text"}
    if marked_cancelled(old.title) and not marked_cancelled(new.title):
        explained.add("title")
    rest = [f for f in fields if not (reinstated and f in explained)]
    if rest:
        parts.append(_describe_meeting_update(old, new, rest))
    return f"{_meeting_label(new, tz)}: {'; '.join(parts)}"


def _describe_meeting_update(old: Record, new: Record, fields: Sequence[str]) -> str:
    if len(fields) == 1:
        only = fields[0]
        if only == "location":
            return f"venue changed to {_clip(str(new.data.get('location')), _PHRASE_LIMIT)}"
        if only == "body":
            return "agenda updated"
        if only == "title":
            return f"renamed (was {_clip(old.title, _PHRASE_LIMIT)})"
        if only == "starts_at":
            return "date and time set" if old.starts_at is None else "time set"
    if set(fields) <= {"status", "status_text"}:
        text = (new.data.get("status_text") if "status_text" in fields else None) or new.status or "unknown"
        return f"status now {_clip(str(text), _PHRASE_LIMIT)}"
    names = list(dict.fromkeys(label for name, label in _MEETING_LABELS.items() if name in fields))
    return f"{_phrase_list(names)} changed"


# ---- decisions and documents -----------------------------------------------------------------------------------------


def decision_published(r: Record) -> str:
    title = _clip(r.title or "Untitled decision", _TITLE_LIMIT)
    state = f" ({_clip(r.status, _PHRASE_LIMIT)})" if r.status and r.status.strip() else ""
    return f"Decision: {title}{state}"


def decision_updated(new: Record, fields: Sequence[str]) -> str:
    """A `decision.updated` whose changed `fields` are named as the diff names them."""
    parts = []
    if "status" in fields:
        parts.append(f"now {_clip(str(new.status), _PHRASE_LIMIT)}")
    others = [label for name, label in _DECISION_LABELS.items() if name in fields and name != "status"]
    if others:
        parts.append(f"{_phrase_list(others)} changed")
    title = _clip(new.title or "Untitled decision", _TITLE_LIMIT)
    return f"Decision updated: {title} ({'; '.join(parts)})"


def _document_title(r: Record) -> str:
    return _clip(r.title or "Untitled document", _TITLE_LIMIT + 40)


def document_published(r: Record) -> str:
    return f"Document published: {_document_title(r)}"


def document_retitled(old: Record, new: Record) -> str:
    """A stored document announced again under a new title."""
    was = _clip(old.title, _PHRASE_LIMIT)
    return f"Document published: {_document_title(new)} (previously \u201c{was}\u201d)"
