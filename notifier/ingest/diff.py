"""Pure diff of one poll's records against the stored ones: what is new or changed becomes change events.

Rules (the "Events" section of DESIGN.md, made precise):

- A record missing from the poll is never an event: feeds truncate and break. A record whose `content_hash` is
  unchanged is never an event, so an unchanged re-poll and bookkeeping-only (`_` data keys) changes write none.
- Only material changes are events. Text is compared word by word, after folding case, Unicode forms, HTML escaping,
  whitespace and punctuation, so an adapter that starts cleaning text better does not announce every meeting as
  updated. A field that becomes empty (a feed that lost a description or a date) is not material either.
- Meetings: new → `meeting.scheduled`, or `meeting.cancelled` when the council already shows it cancelled or
  postponed; a moved start → `meeting.rescheduled` (a date/time that was unknown and becomes known on the same day
  is a `meeting.updated`); a status that becomes cancelled or postponed → `meeting.cancelled`; agenda or minutes
  flags turning true → `agenda.published` / `minutes.published`; every other material change (title, committee,
  venue, status, status text, agenda text; a cancelled meeting coming back is "reinstated") → one
  `meeting.updated`. Each changed field is reported by exactly one event: the status text and status of a
  rescheduling belong to `meeting.rescheduled`, those of a cancellation (and a title that gains a "cancelled"
  marker) to `meeting.cancelled`, and new agenda text that comes with a publication to that publication. A meeting
  that stays cancelled is not rescheduled, however its date moves.
- Agenda items are never events of their own: their text is part of their meeting's body.
- Documents: new → `document.published`, except that new documents of a meeting (directly or through an agenda
  item in this poll or stored) that gets `agenda.published` or `minutes.published` in this same poll are folded
  into that event, so a new agenda pack is one event. When a meeting gets both, documents whose title says
  minutes (but not "previous"/"last" minutes, which belong to agendas) go with the minutes. A stored document whose
  title changes is announced again as `document.published` (with `title: [old, new]`); a new url alone is silent.
- Decisions: new → `decision.published`; a material change (title, status, decision text, decision date, decision
  maker, key decision, call-in) → `decision.updated`.

`Change.changes` maps a field to `[old, new]`, JSON-serialisable (datetimes as ISO 8601 UTC strings; body text
clipped to `CHANGE_TEXT_LIMIT` characters). New records report their key fields as `[None, value]`. Folded
documents are listed as `"documents": [[], [{"title": ..., "url": ...}, ...]]`: the meeting's own documents first,
then by agenda item number, then by document id.

Events come in a fixed order whatever the order of the input: meetings (by start time), then decisions, then
documents, each group by external id (numbers compared as numbers), and for one item: scheduled, cancelled,
rescheduled, updated, agenda, minutes.

How records are read for comparing (the content hash, canonical values, flags) is in `normalise.py`; how events are
worded is in `summaries.py`.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from notifier.ingest import summaries
from notifier.ingest.normalise import (
    Key,
    canonical,
    content_hash,
    flag,
    iso,
    jsonable,
    local,
    marked_cancelled,
    status,
    time_known,
)
from notifier.models import EventType, ItemKind
from notifier.sources.base import Record
from notifier.zones import time_zone

# Body text in `changes` is clipped: the item row holds the full text, an event only says what changed.
CHANGE_TEXT_LIMIT = 500

CANCELLED_STATUSES = frozenset({"cancelled", "postponed"})
# Statuses that mean the meeting is on; a cancelled meeting reaching one of these has been reinstated.
ACTIVE_STATUSES = frozenset({"confirmed", "rescheduled", "provisional"})

_TYPE_ORDER = {
    t: i
    for i, t in enumerate((
        EventType.MEETING_SCHEDULED, EventType.MEETING_CANCELLED, EventType.MEETING_RESCHEDULED,
        EventType.MEETING_UPDATED, EventType.AGENDA_PUBLISHED, EventType.MINUTES_PUBLISHED,
        EventType.DOCUMENT_PUBLISHED, EventType.DECISION_PUBLISHED, EventType.DECISION_UPDATED,
    ))
}
_KIND_ORDER = {ItemKind.MEETING: 0, ItemKind.DECISION: 1, ItemKind.DOCUMENT: 2, ItemKind.AGENDA_ITEM: 3}

_WORD = re.compile(r"\w+")
_MINUTES_TITLE = re.compile(r"\bminutes?\b", re.IGNORECASE)
_PREVIOUS_MINUTES = re.compile(r"\b(previous|last|prior)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Change:
    """One event to write: which item, what happened, what changed (`field -> [old, new]`) and a human line."""

    key: tuple[ItemKind, str]
    type: EventType
    changes: dict[str, list[Any]]
    summary: str


# ---- comparisons -----------------------------------------------------------------------------------------------------


def _fold_text(s: str) -> list[str]:
    # Twice: council titles arrive HTML-escaped twice ("Chair&amp;#39;s").
    s = html.unescape(html.unescape(s))
    return _WORD.findall(unicodedata.normalize("NFKC", s).casefold())


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, list | tuple | dict | set | frozenset) and not value


def _materially_changed(old: Any, new: Any) -> bool:
    """Whether a value changed in a way a reader would notice. A value that becomes empty is not a change."""
    if _blank(new):
        return False
    if isinstance(old, str) and isinstance(new, str):
        # Most compared texts are the same text (a moved meeting keeps its agenda): no need to fold them.
        return old != new and _fold_text(old) != _fold_text(new)
    return bool(canonical(jsonable(old)) != canonical(jsonable(new)))


def _clip_change(value: Any) -> Any:
    if isinstance(value, str) and len(value) > CHANGE_TEXT_LIMIT:
        return value[: CHANGE_TEXT_LIMIT - 1].rstrip() + "…"
    return value


def _pair(old: Any, new: Any) -> list[Any]:
    return [_clip_change(jsonable(old)), _clip_change(jsonable(new))]


# ---- drafts ----------------------------------------------------------------------------------------------------------


@dataclass
class _Draft:
    record: Record
    type: EventType
    changes: dict[str, list[Any]]
    summary: str
    documents: list[Record] = field(default_factory=list)

    @property
    def key(self) -> Key:
        return (self.record.kind, self.record.external_id)


def _order(d: _Draft) -> tuple[Any, ...]:
    r = d.record
    start = (0, iso(r.starts_at)) if r.kind is ItemKind.MEETING and r.starts_at is not None else (1, "")
    return (_KIND_ORDER[r.kind], start, _natural(r.external_id), _TYPE_ORDER[d.type])


def _natural(s: str) -> tuple[tuple[int | str, ...], str]:
    # Digit runs compare as numbers ("9" before "10"). re.split puts text at even and digits at odd positions, so
    # two keys never compare an int with a str; the whole string breaks ties such as "07" and "7".
    parts = re.split(r"(\d+)", s)
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), s


# ---- meetings --------------------------------------------------------------------------------------------------------

# The meeting fields compared, in the order they are reported (their names in words: _MEETING_LABELS in
# summaries.py).
_MEETING_FIELDS = ("title", "committee", "location", "status", "status_text", "starts_at", "body")


def _meeting_value(r: Record, name: str) -> Any:
    if name in {"location", "status_text"}:
        return r.data.get(name)
    if name == "status":
        return r.status
    value: Any = getattr(r, name)
    return value


def _new_meeting(r: Record, tz: ZoneInfo) -> list[_Draft]:
    if status(r) in CANCELLED_STATUSES:
        drafts = [
            _Draft(r, EventType.MEETING_CANCELLED, {"status": [None, r.status]}, summaries.meeting_cancelled(r, tz))
        ]
    else:
        changes = {"starts_at": [None, iso(r.starts_at)]} if r.starts_at is not None else {}
        drafts = [_Draft(r, EventType.MEETING_SCHEDULED, changes, summaries.meeting_scheduled(r, tz))]
    drafts.extend(_publications(None, r, tz))
    return drafts


def _publications(old: Record | None, new: Record, tz: ZoneInfo) -> list[_Draft]:
    drafts = []
    for name, event, what in (
        ("agenda_published", EventType.AGENDA_PUBLISHED, "agenda"),
        ("minutes_published", EventType.MINUTES_PUBLISHED, "minutes"),
    ):
        was = None if old is None else flag(old.data.get(name))
        if flag(new.data.get(name)) and not was:
            # The summary gets its document count once documents are folded in (see _finish_publication).
            drafts.append(_Draft(new, event, {name: [was, True]}, summaries.published(new, what, tz)))
    return drafts


def _start_change(old: Record, new: Record, tz: ZoneInfo) -> str | None:
    """How the start changed: "moved" (rescheduled), "set" (an unknown date, or time that day, became known) or None."""
    if new.starts_at is None or old.starts_at == new.starts_at:
        return None
    if old.starts_at is None:
        return "set"
    old_known, new_known = time_known(old), time_known(new)
    same_day = local(old.starts_at, tz).date() == local(new.starts_at, tz).date()
    if same_day and not old_known and new_known:
        return "set"
    if same_day and old_known and not new_known:
        return None  # the feed lost the time: not news
    if not old_known and not new_known and same_day:
        return None
    return "moved"


def _changed_meeting(old: Record, new: Record, tz: ZoneInfo) -> list[_Draft]:
    drafts: list[_Draft] = []
    claimed: set[str] = set()
    old_status, new_status = status(old), status(new)
    cancelled_now = new_status in CANCELLED_STATUSES and old_status not in CANCELLED_STATUSES
    reinstated = old_status in CANCELLED_STATUSES and new_status in ACTIVE_STATUSES
    start = _start_change(old, new, tz)
    if old_status in CANCELLED_STATUSES and new_status in CANCELLED_STATUSES:
        start = None  # moving a meeting that is not happening is not news
    changed = {name for name in _MEETING_FIELDS if _meeting_field_changed(old, new, name, start)}

    if cancelled_now:
        drafts.append(_cancellation(old, new, changed, claimed, tz))
    elif start == "moved":
        drafts.append(_rescheduling(old, new, new_status, reinstated, changed, claimed, tz))

    publications = _publications(old, new, tz)
    if publications:
        claimed.add("body")  # new agenda text arriving with its publication is that publication
    rest = [name for name in _MEETING_FIELDS if name in changed and name not in claimed]
    if rest or reinstated:
        drafts.append(_update(old, new, rest, reinstated, tz))
    drafts.extend(publications)
    return drafts


def _meeting_field_changed(old: Record, new: Record, name: str, start: str | None) -> bool:
    if name == "starts_at":
        return start is not None
    if name == "status":
        return status(old) != status(new) and not (new.status is None or status(new) == "unknown")
    return _materially_changed(_meeting_value(old, name), _meeting_value(new, name))


def _cancellation(old: Record, new: Record, changed: set[str], claimed: set[str], tz: ZoneInfo) -> _Draft:
    changes = {"status": _pair(old.status, new.status)}
    claimed.update({"status", "status_text", "starts_at"})
    for name in ("status_text", "starts_at"):
        if name in changed:
            changes[name] = _pair(_meeting_value(old, name), _meeting_value(new, name))
    if "title" in changed and marked_cancelled(new.title):
        changes["title"] = _pair(old.title, new.title)
        claimed.add("title")
    return _Draft(new, EventType.MEETING_CANCELLED, changes, summaries.meeting_cancelled(new, tz))


def _rescheduling(
    old: Record, new: Record, new_status: str, reinstated: bool, changed: set[str], claimed: set[str], tz: ZoneInfo
) -> _Draft:
    changes = {"starts_at": _pair(old.starts_at, new.starts_at)}
    claimed.add("starts_at")
    if time_known(old) != time_known(new):
        changes["time_known"] = [time_known(old), time_known(new)]
    # A reinstatement reports its own status; otherwise the "Rescheduled from ..." status belongs here.
    if not reinstated:
        if "status" in changed and new_status == "rescheduled":
            changes["status"] = _pair(old.status, new.status)
            claimed.add("status")
        if "status_text" in changed:
            changes["status_text"] = _pair(old.data.get("status_text"), new.data.get("status_text"))
            claimed.add("status_text")
    return _Draft(new, EventType.MEETING_RESCHEDULED, changes, summaries.meeting_moved(old, new, tz))


def _update(old: Record, new: Record, fields: Sequence[str], reinstated: bool, tz: ZoneInfo) -> _Draft:
    changes = {name: _pair(_meeting_value(old, name), _meeting_value(new, name)) for name in fields}
    if reinstated and "status" not in changes:
        changes["status"] = _pair(old.status, new.status)
    summary = summaries.meeting_updated(old, new, fields, reinstated, tz)
    return _Draft(new, EventType.MEETING_UPDATED, changes, summary)


# ---- decisions and documents -----------------------------------------------------------------------------------------

# The decision fields compared, in the order they are reported (their names in words: _DECISION_LABELS in
# summaries.py).
_DECISION_FIELDS = ("title", "status", "body", "starts_at", "committee", "key_decision", "call_in")


def _decision_value(r: Record, name: str) -> Any:
    if name in {"key_decision", "call_in"}:
        return r.data.get(name)
    value: Any = getattr(r, name)
    return value


def _new_decision(r: Record) -> _Draft:
    changes = {"status": [None, r.status]} if r.status else {}
    return _Draft(r, EventType.DECISION_PUBLISHED, changes, summaries.decision_published(r))


def _changed_decision(old: Record, new: Record) -> list[_Draft]:
    fields = [
        name for name in _DECISION_FIELDS if _materially_changed(_decision_value(old, name), _decision_value(new, name))
    ]
    if not fields:
        return []
    changes = {name: _pair(_decision_value(old, name), _decision_value(new, name)) for name in fields}
    return [_Draft(new, EventType.DECISION_UPDATED, changes, summaries.decision_updated(new, fields))]


def _new_document(r: Record) -> _Draft:
    changes = {"title": [None, r.title]}
    if r.url:
        changes["url"] = [None, r.url]
    return _Draft(r, EventType.DOCUMENT_PUBLISHED, changes, summaries.document_published(r))


def _changed_document(old: Record, new: Record) -> list[_Draft]:
    if not _materially_changed(old.title, new.title):
        return []
    changes = {"title": _pair(old.title, new.title)}
    if new.url != old.url:
        changes["url"] = _pair(old.url, new.url)
    return [_Draft(new, EventType.DOCUMENT_PUBLISHED, changes, summaries.document_retitled(old, new))]


def _meeting_of(r: Record, lookup: Callable[[Key], Record | None]) -> Key | None:
    """The meeting a document belongs to: its parent, or its parent agenda item's parent."""
    parent = r.parent
    for _ in range(3):  # document → agenda item → meeting, with room for one more level; never loops
        if parent is None:
            return None
        if parent[0] is ItemKind.MEETING:
            return parent
        up = lookup(parent)
        parent = up.parent if up is not None else None
    return None


def _fold_documents(
    documents: Iterable[Record], publications: Mapping[Key, list[_Draft]], lookup: Callable[[Key], Record | None]
) -> list[_Draft]:
    """Attach new documents to their meeting's publication in this poll; the rest are published on their own."""
    loose = []
    for doc in documents:
        meeting = _meeting_of(doc, lookup)
        targets = publications.get(meeting) if meeting is not None else None
        if not targets:
            loose.append(_new_document(doc))
            continue
        _publication_for(doc, targets).documents.append(doc)
    return loose


def _publication_for(doc: Record, targets: Sequence[_Draft]) -> _Draft:
    by_type = {d.type: d for d in targets}
    agenda = by_type.get(EventType.AGENDA_PUBLISHED)
    minutes = by_type.get(EventType.MINUTES_PUBLISHED)
    if agenda is None or minutes is None:
        return agenda or minutes or targets[0]
    title = doc.title or ""
    if _MINUTES_TITLE.search(title) and not _PREVIOUS_MINUTES.search(title):
        return minutes
    return agenda


def _document_position(doc: Record, lookup: Callable[[Key], Record | None]) -> tuple[Any, ...]:
    """Where a document sits in its meeting: the meeting's own documents first, then by agenda item number."""
    if doc.parent is None or doc.parent[0] is ItemKind.MEETING:
        return (0, _natural(""), _natural(""), _natural(doc.external_id))
    item = lookup(doc.parent)
    number = str(item.data.get("number") or "") if item is not None else ""
    return (1, _natural(number), _natural(doc.parent[1]), _natural(doc.external_id))


def _finish_publication(d: _Draft, lookup: Callable[[Key], Record | None]) -> None:
    if not d.documents:
        return
    d.documents.sort(key=lambda doc: _document_position(doc, lookup))
    d.changes["documents"] = [[], [{"title": doc.title, "url": doc.url} for doc in d.documents]]
    d.summary = summaries.with_documents(d.summary, len(d.documents))


# ---- the poll --------------------------------------------------------------------------------------------------------


def _hash(key: Key, r: Record, known: Mapping[Key, str] | None) -> str:
    found = known.get(key) if known is not None else None
    return found if found is not None else content_hash(r)


def diff_poll(
    old: Mapping[tuple[ItemKind, str], Record],
    new: Sequence[Record],
    *,
    timezone: str,
    old_hashes: Mapping[Key, str] | None = None,
    new_hashes: Mapping[Key, str] | None = None,
) -> list[Change]:
    """The events for one poll: `new` (this poll's records) against `old` (the stored ones, by kind and external id).

    `timezone` is the council's IANA zone, used for the dates in summaries. Raises ValueError for an unknown zone.
    `old_hashes` and `new_hashes` are content hashes the caller already has (the stored column, the ones it
    computed to decide what to write), so they are not computed twice; a key missing from them is hashed here.
    """
    tz = time_zone(timezone)
    current: dict[Key, Record] = {}
    for r in new:
        current[(r.kind, r.external_id)] = r  # a record listed twice counts once: the last one, as ingest keeps

    def lookup(key: Key) -> Record | None:
        return current.get(key) or old.get(key)

    drafts: list[_Draft] = []
    new_documents: list[Record] = []
    for key, r in current.items():
        before = old.get(key)
        if before is not None and _hash(key, before, old_hashes) == _hash(key, r, new_hashes):
            continue
        if r.kind is ItemKind.MEETING:
            drafts.extend(_new_meeting(r, tz) if before is None else _changed_meeting(before, r, tz))
        elif r.kind is ItemKind.DECISION:
            drafts.extend([_new_decision(r)] if before is None else _changed_decision(before, r))
        elif r.kind is ItemKind.DOCUMENT:
            if before is None:
                new_documents.append(r)
            else:
                drafts.extend(_changed_document(before, r))

    publications: dict[Key, list[_Draft]] = {}
    for d in drafts:
        if d.type in (EventType.AGENDA_PUBLISHED, EventType.MINUTES_PUBLISHED):
            publications.setdefault(d.key, []).append(d)
    drafts.extend(_fold_documents(new_documents, publications, lookup))
    for group in publications.values():
        for d in group:
            _finish_publication(d, lookup)

    drafts.sort(key=_order)
    return [
        Change(key=d.key, type=d.type, changes=d.changes, summary=summaries.clip_summary(d.summary)) for d in drafts
    ]
