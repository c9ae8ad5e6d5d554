"""The Legistar Web API (`https://webapi.legistar.com/v1/{client}`; the source url is that base).

What is read:

- events (`{base}/events`): on the first poll those dated inside a window around today (options `days_back`, default
  30, and `days_ahead`, default 120, in the client's zone); once a poll has succeeded, every event modified since
  that poll started less `lookback_hours` (default 24), so edits to old meetings (minutes added) are seen too;
- each event's items (`{base}/events/{id}/eventitems?AgendaNote=1&MinutesNote=1&Attachments=1`), fetched again only
  when the event changed or the last fetch is more than `detail_refresh_hours` (default 24) old;
- matters (`{base}/matters`) modified since the same point (the window's start on a first poll), with their
  attachments (`{base}/matters/{id}/attachments`), again only when the matter changed. `matters: false` skips them.

Lists are paged with OData `$top`/`$skip` (1000 rows, the API's maximum, or the `page_size` option) until a short
page. Detail requests are capped per poll (`max_detail_requests`, default 200, nearest meetings first); what is left
waits for the next poll. A detail request that fails is skipped and retried next poll; the lists must not fail.

Records: a meeting per event (the body's name is the committee); an agenda item per event item, under its meeting;
a document per published agenda or minutes file and per attachment; a matter with a passed/adopted/approved status
is a decision, any other matter a document (a matter is a report or a proposal until a body has decided it: it is
then published a second time, as a decision). Matters restricted from the web are skipped.

Times: `EventDate` is local midnight with no zone and `EventTime` free text ("10:00 AM", may be null), both in the
client's zone (option `timezone`, else the council's); `*Utc` fields are UTC without a `Z`. A meeting with no
readable time starts at local midnight with `time_known: False`. A decision's `starts_at` is the day it passed.

Options not named above: `token` (an API token; New York City needs one), `insite_url` (e.g.
`https://metro.legistar.com`, giving matters a link to their Legistar page), `page_size`, `max_bytes`.

The options, the OData queries, paging and detail requests are in `legistar_api.py`; this module turns what they
return into records.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from notifier.models import ItemKind
from notifier.sources.base import Fetch, Record, SourceError, SourceState
from notifier.sources.common import clean_line, clean_text, html_to_text, local_to_utc, parse_clock_time
from notifier.sources.legistar_api import (
    DetailBudget,
    DetailGetter,
    LegistarConfig,
    Rows,
    detail_getter,
    event_filter,
    fetch_list,
    matter_filter,
    run_details,
)

__all__ = ["LegistarAdapter"]

# A handful of detail requests all failing is the server failing, not a few bad rows.
_ALL_DETAILS_FAILED_MIN = 3

_DECIDED = re.compile(r"\b(?:passed|adopted|approved|enacted|carried|ratified|agreed|accepted)\b", re.I)
_NOT_DECIDED = re.compile(r"\b(?:not|failed|rejected|withdrawn|vetoed)\b", re.I)
_CANCELLED = re.compile(r"\b(?:cancell?ed|postponed)\b", re.I)
_HIDDEN_STATUS = re.compile(r"not\s+viewable|hidden|private|cancel", re.I)
_HTML_TAG = re.compile(r"<\s*/?\s*[A-Za-z][^<>]*>")


class LegistarAdapter:
    """A Legistar Web API client: meetings, their items and documents, and matters."""

    async def collect(self, url: str, fetch: Fetch, state: SourceState) -> list[Record] | None:
        """Records for the client at `url` (the API base); None if the first events request answered 304."""
        cfg = LegistarConfig.from_state(url, state)
        events = await fetch_list(fetch, cfg, "events", event_filter(cfg), "EventId", conditional=True)
        if events is None:
            return None
        matters: Rows = []
        if cfg.matters:
            fetched = await fetch_list(fetch, cfg, "matters", matter_filter(cfg), "MatterId", conditional=False)
            matters = fetched or []
        return await _Collector(cfg, fetch, state).run(events, matters)


# ---- values ---------------------------------------------------------------------------------------------------------


def _naive(raw: Any) -> datetime | None:
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        value = datetime.fromisoformat(raw.strip().removesuffix("Z"))
    except ValueError:
        return None
    return value.replace(tzinfo=None)


def _utc(raw: Any) -> datetime | None:
    """A `*Utc` field: UTC with no zone marker."""
    value = _naive(raw)
    return value.replace(tzinfo=UTC) if value else None


def _local_midnight(raw: Any, zone: str) -> datetime | None:
    value = _naive(raw)
    return local_to_utc(datetime.combine(value.date(), time()), zone) if value else None


def _iso_date(raw: Any) -> str | None:
    value = _naive(raw)
    return value.date().isoformat() if value else None


def _http(raw: Any) -> str | None:
    if not isinstance(raw, str):
        return None
    url = raw.strip()
    return url if urlsplit(url).scheme in ("http", "https") else None


def _line(raw: Any) -> str:
    """A one-line text field; numbers are written as text, anything else that is not a string is blank."""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        raw = str(raw)
    return clean_line(raw) if isinstance(raw, str) else ""


def _text(raw: Any) -> str:
    if not isinstance(raw, str):
        return ""
    return html_to_text(raw) if _HTML_TAG.search(raw) else clean_text(raw)


def _id(raw: Any) -> str | None:
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        return None
    text = str(raw).strip()
    return text or None


# ---- meetings -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Paper:
    """A meeting's agenda or minutes file, as its event describes it."""

    kind: str  # "agenda" or "minutes"
    status: str
    url: str | None
    published_at: datetime | None

    @property
    def published(self) -> bool:
        return bool(self.url) and not _HIDDEN_STATUS.search(self.status)


def _papers(event: Mapping[str, Any]) -> tuple[_Paper, _Paper]:
    """The event's agenda and its minutes."""
    agenda = _Paper(
        kind="agenda",
        status=_line(event.get("EventAgendaStatusName")),
        url=_http(event.get("EventAgendaFile")),
        published_at=_utc(event.get("EventAgendaLastPublishedUTC")),
    )
    minutes = _Paper(
        kind="minutes",
        status=_line(event.get("EventMinutesStatusName")),
        url=_http(event.get("EventMinutesFile")),
        published_at=_utc(event.get("EventMinutesLastPublishedUTC")),
    )
    return agenda, minutes


def _meeting_start(event: Mapping[str, Any], event_id: str, zone: str) -> tuple[datetime, str, bool]:
    """When the meeting starts (UTC), its time as written, and whether that time could be read."""
    day = _naive(event.get("EventDate"))
    if day is None:
        raise SourceError(f"Legistar event {event_id} has no readable EventDate: {event.get('EventDate')!r}")
    time_text = _line(event.get("EventTime"))
    try:
        clock = parse_clock_time(time_text)
    except ValueError:
        clock = None  # "TBD", "Recess": keep the text, start at midnight
    return local_to_utc(datetime.combine(day.date(), clock or time()), zone), time_text, clock is not None


def _location(event: Mapping[str, Any]) -> str:
    # Locations are written over several lines, often with their own trailing commas.
    return ", ".join(line.rstrip(",; ") for line in _text(event.get("EventLocation")).split("\n"))


def _cancelled(agenda: _Paper, minutes: _Paper, comment: str, location: str) -> bool:
    # Legistar has no cancellation field: clients say it in the agenda status, the comment or the location.
    return bool(re.search(r"cancel|postpon", agenda.status, re.I)) or any(
        _CANCELLED.search(text) for text in (minutes.status, comment, location)
    )


# ---- records --------------------------------------------------------------------------------------------------------


@dataclass
class _Collector:
    cfg: LegistarConfig
    fetch: Fetch
    state: SourceState
    records: dict[tuple[ItemKind, str], Record] = field(default_factory=dict)

    def add(self, record: Record) -> None:
        # The first sighting wins: an attachment seen under an agenda item keeps that parent over its matter.
        self.records.setdefault((record.kind, record.external_id), record)

    async def run(self, events: Rows, matters: Rows) -> list[Record]:
        budget = DetailBudget(self.cfg.max_details)
        seen: set[str] = set()
        meetings: list[tuple[dict[str, Any], Record]] = []
        for event in events:
            event_id = _id(event.get("EventId"))
            if event_id is None:
                raise SourceError(f"Legistar event without an EventId: {clean_line(json.dumps(event))[:120]}")
            if event_id in seen:
                continue
            seen.add(event_id)
            meetings.append((event, self._meeting(event, event_id)))
        await self._event_details(meetings, budget)

        decided = []
        for matter in matters:
            record = self._matter(matter)
            if record is not None:
                decided.append((matter, record))
        await self._matter_details(decided, budget)
        if budget.attempted >= _ALL_DETAILS_FAILED_MIN and budget.failed == budget.attempted:
            raise SourceError(f"all {budget.attempted} Legistar detail requests failed")
        return list(self.records.values())

    # ---- events

    def _meeting(self, event: Mapping[str, Any], event_id: str) -> Record:
        committee = _line(event.get("EventBodyName")) or None
        starts_at, time_text, time_known = _meeting_start(event, event_id, self.cfg.zone)
        agenda, minutes = _papers(event)
        comment = _text(event.get("EventComment"))
        location = _location(event)
        meeting = Record(
            kind=ItemKind.MEETING,
            external_id=event_id,
            title=committee or "Meeting",
            committee=committee,
            committee_id=_id(event.get("EventBodyId")),
            body=comment,
            starts_at=starts_at,
            status="cancelled" if _cancelled(agenda, minutes, comment, location) else "confirmed",
            url=_http(event.get("EventInSiteURL")),
            data={
                "location": location,
                "time_known": time_known,
                "time_text": time_text,
                "agenda_status": agenda.status,
                "minutes_status": minutes.status,
                "agenda_published": agenda.published,
                "minutes_published": minutes.published,
                "agenda_url": agenda.url,
                "minutes_url": minutes.url,
                "video_url": _http(event.get("EventVideoPath")),
            },
        )
        self.add(meeting)
        for paper in (agenda, minutes):
            if paper.published:
                self.add(self._paper_document(meeting, starts_at, paper))
        return meeting

    def _paper_document(self, meeting: Record, starts_at: datetime, paper: _Paper) -> Record:
        """A published agenda or minutes file, as a document under its meeting."""
        local_day = starts_at.astimezone(ZoneInfo(self.cfg.zone))
        when = f"{local_day.day} {local_day:%b %Y}"
        return Record(
            kind=ItemKind.DOCUMENT,
            external_id=f"event:{meeting.external_id}:{paper.kind}",
            title=f"{paper.kind.capitalize()}: {meeting.committee or 'Meeting'}, {when}",
            committee=meeting.committee,
            committee_id=meeting.committee_id,
            starts_at=starts_at,
            url=paper.url,
            parent=(ItemKind.MEETING, meeting.external_id),
            published_at=paper.published_at,
            data={"document_type": paper.kind},
        )

    async def _event_details(self, meetings: list[tuple[dict[str, Any], Record]], budget: DetailBudget) -> None:
        now = self.cfg.now
        todo: list[tuple[Record, str, DetailGetter]] = []
        # Nearest meetings first: when the budget runs out, what is furthest away waits.
        for event, meeting in sorted(meetings, key=lambda pair: abs((pair[1].starts_at or now) - now)):
            inline = event.get("EventItems")
            if isinstance(inline, list) and inline and all(isinstance(i, dict) for i in inline):
                self._items(meeting, inline)
                continue
            key = "|".join(
                str(event.get(k) or "")
                for k in ("EventLastModifiedUtc", "EventAgendaLastPublishedUTC", "EventMinutesLastPublishedUTC")
            )
            known = self.state.known.get((ItemKind.MEETING, meeting.external_id)) or {}
            if not self._stale(known, key):
                self._carry(meeting, known)
                continue
            if budget.left <= 0:
                self._carry(meeting, known)
                continue
            budget.left -= 1
            url = self.cfg.url(
                f"events/{quote(meeting.external_id, safe='')}/eventitems",
                [("AgendaNote", "1"), ("MinutesNote", "1"), ("Attachments", "1")],
            )
            todo.append((meeting, key, self._getter(url, f"Legistar items of event {meeting.external_id}")))
        results = await run_details([getter for _, _, getter in todo], budget)
        for (meeting, key, _), items in zip(todo, results, strict=True):
            known = self.state.known.get((ItemKind.MEETING, meeting.external_id)) or {}
            if items is None:
                self._carry(meeting, known)
                continue
            self._bookkeep(meeting, key)
            self._items(meeting, items)

    def _items(self, meeting: Record, items: Sequence[Mapping[str, Any]]) -> None:
        for item in items:
            item_id = _id(item.get("EventItemId"))
            if item_id is None:
                continue
            agenda_number = _line(item.get("EventItemAgendaNumber"))
            title = (
                _line(item.get("EventItemTitle"))
                or _line(item.get("EventItemMatterName"))
                or (f"Item {agenda_number}" if agenda_number else "")
            )
            if not title:
                continue  # blank separator rows
            parts = (_text(item.get(k)) for k in ("EventItemAgendaNote", "EventItemActionText", "EventItemMinutesNote"))
            self.add(
                Record(
                    kind=ItemKind.AGENDA_ITEM,
                    external_id=item_id,
                    title=title,
                    committee=meeting.committee,
                    committee_id=meeting.committee_id,
                    body="\n\n".join(p for p in parts if p),
                    starts_at=meeting.starts_at,
                    parent=(ItemKind.MEETING, meeting.external_id),
                    data={
                        "number": agenda_number,
                        "sequence": item.get("EventItemAgendaSequence"),
                        "matter_id": _id(item.get("EventItemMatterId")),
                        "matter_file": _line(item.get("EventItemMatterFile")),
                        "matter_type": _line(item.get("EventItemMatterType")),
                        "matter_status": _line(item.get("EventItemMatterStatus")),
                        "action": _line(item.get("EventItemActionName")),
                        "passed": _line(item.get("EventItemPassedFlagName")),
                        "tally": _line(item.get("EventItemTally")),
                    },
                )
            )
            attachments = item.get("EventItemMatterAttachments")
            if isinstance(attachments, list):
                self._attachments(attachments, (ItemKind.AGENDA_ITEM, item_id), meeting.committee,
                                  meeting.committee_id)  # fmt: skip

    def _attachments(
        self, rows: Sequence[Any], parent: tuple[ItemKind, str], committee: str | None, committee_id: str | None
    ) -> None:
        for row in rows:
            if not isinstance(row, Mapping) or row.get("MatterAttachmentShowOnInternetPage") is False:
                continue
            attachment_id = _id(row.get("MatterAttachmentId"))
            url = _http(row.get("MatterAttachmentHyperlink"))
            if attachment_id is None or url is None:
                continue
            self.add(
                Record(
                    kind=ItemKind.DOCUMENT,
                    external_id=f"attachment:{attachment_id}",
                    title=_line(row.get("MatterAttachmentName"))
                    or _line(row.get("MatterAttachmentFileName"))
                    or "Attachment",
                    committee=committee,
                    committee_id=committee_id,
                    url=url,
                    parent=parent,
                    data={
                        "document_type": "attachment",
                        "file_name": _line(row.get("MatterAttachmentFileName")),
                        "supporting": row.get("MatterAttachmentIsSupportingDocument") is True,
                    },
                )
            )

    # ---- matters

    def _matter(self, matter: Mapping[str, Any]) -> Record | None:
        matter_id = _id(matter.get("MatterId"))
        if matter_id is None:
            raise SourceError(f"Legistar matter without a MatterId: {clean_line(json.dumps(matter))[:120]}")
        if matter.get("MatterRestrictViewViaWeb") is True:
            return None
        status = _line(matter.get("MatterStatusName"))
        decided = bool(_DECIDED.search(status)) and not _NOT_DECIDED.search(status)
        title = (
            _line(matter.get("MatterTitle"))
            or _line(matter.get("MatterName"))
            or _line(matter.get("MatterFile"))
            or f"Matter {matter_id}"
        )
        name = _line(matter.get("MatterName"))
        body = "\n\n".join(p for p in (name if name != title else "", _text(matter.get("MatterNotes"))) if p)
        zone = self.cfg.zone
        # A decision's date is when it passed; a matter still in progress was published when it was introduced.
        decided_on = _local_midnight(matter.get("MatterPassedDate") or matter.get("MatterEnactmentDate"), zone)
        if decided:
            published = decided_on
        else:
            published = _local_midnight(matter.get("MatterIntroDate") or matter.get("MatterAgendaDate"), zone)
        url = f"{self.cfg.insite_url}/gateway.aspx?M=L&ID={quote(matter_id)}" if self.cfg.insite_url else None
        record = Record(
            kind=ItemKind.DECISION if decided else ItemKind.DOCUMENT,
            external_id=f"matter:{matter_id}",
            title=title,
            committee=_line(matter.get("MatterBodyName")) or None,
            committee_id=_id(matter.get("MatterBodyId")),
            body=body,
            starts_at=decided_on if decided else None,
            status=status.lower() or None,
            url=url,
            published_at=published,
            data={
                "document_type": "matter",
                "matter_id": matter_id,
                "file": _line(matter.get("MatterFile")),
                "type": _line(matter.get("MatterTypeName")),
                "status": status,
                "intro_date": _iso_date(matter.get("MatterIntroDate")),
                "agenda_date": _iso_date(matter.get("MatterAgendaDate")),
                "passed_date": _iso_date(matter.get("MatterPassedDate")),
                "enactment_date": _iso_date(matter.get("MatterEnactmentDate")),
                "enactment_number": _line(matter.get("MatterEnactmentNumber")),
            },
        )
        self.add(record)
        return record

    async def _matter_details(self, matters: list[tuple[dict[str, Any], Record]], budget: DetailBudget) -> None:
        todo: list[tuple[Record, str, DetailGetter]] = []
        # Most recently changed first.
        for matter, record in sorted(matters, key=lambda pair: str(pair[0].get("MatterLastModifiedUtc") or ""),
                                     reverse=True):  # fmt: skip
            key = str(matter.get("MatterLastModifiedUtc") or "")
            known = self.state.known.get((record.kind, record.external_id)) or {}
            if not self._stale(known, key) or budget.left <= 0:
                self._carry(record, known)
                continue
            budget.left -= 1
            matter_id = str(record.data["matter_id"])
            url = self.cfg.url(f"matters/{quote(matter_id, safe='')}/attachments")
            todo.append((record, key, self._getter(url, f"Legistar attachments of matter {matter_id}")))
        results = await run_details([getter for _, _, getter in todo], budget)
        for (record, key, _), rows in zip(todo, results, strict=True):
            if rows is None:
                self._carry(record, self.state.known.get((record.kind, record.external_id)) or {})
                continue
            self._bookkeep(record, key)
            self._attachments(rows, (record.kind, record.external_id), record.committee, record.committee_id)

    # ---- detail bookkeeping

    def _stale(self, known: Mapping[str, Any], key: str) -> bool:
        if known.get("_detail_key") != key:
            return True
        fetched = _naive(known.get("_detail_at"))
        return fetched is None or self.cfg.now - fetched.replace(tzinfo=UTC) >= self.cfg.detail_refresh

    def _bookkeep(self, record: Record, key: str) -> None:
        stamp = self.cfg.now.replace(tzinfo=None).isoformat(timespec="seconds")
        self._replace_data(record, {"_detail_key": key, "_detail_at": stamp})

    def _carry(self, record: Record, known: Mapping[str, Any]) -> None:
        # Keep the stored bookkeeping, so a skipped or failed fetch is neither forgotten nor counted as done.
        extra = {k: known[k] for k in ("_detail_key", "_detail_at") if k in known}
        if extra:
            self._replace_data(record, extra)

    def _replace_data(self, record: Record, extra: Mapping[str, Any]) -> None:
        key = (record.kind, record.external_id)
        current = self.records.get(key, record)
        self.records[key] = dataclasses.replace(current, data={**current.data, **extra})

    def _getter(self, url: str, what: str) -> DetailGetter:
        return detail_getter(self.fetch, url, what, max_bytes=self.cfg.max_bytes)
