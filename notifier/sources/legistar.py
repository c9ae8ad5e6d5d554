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
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from notifier.models import ItemKind
from notifier.sources.base import Fetch, Record, SourceError, SourceState
from notifier.sources.common import clean_line, clean_text, html_to_text, local_to_utc, parse_clock_time
from notifier.zones import time_zone

__all__ = ["LegistarAdapter"]

API_MAX_PAGE = 1000
DEFAULT_DAYS_BACK = 30
DEFAULT_DAYS_AHEAD = 120
DEFAULT_LOOKBACK_HOURS = 24
DEFAULT_MAX_DETAIL_REQUESTS = 200
DEFAULT_DETAIL_REFRESH_HOURS = 24
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
# A list longer than this many pages means the server ignores $skip or something is badly wrong.
MAX_PAGES = 200
DETAIL_CONCURRENCY = 4
# A handful of detail requests all failing is the server failing, not a few bad rows.
_ALL_DETAILS_FAILED_MIN = 3

_DECIDED = re.compile(r"\b(?:passed|adopted|approved|enacted|carried|ratified|agreed|accepted)\b", re.I)
_NOT_DECIDED = re.compile(r"\b(?:not|failed|rejected|withdrawn|vetoed)\b", re.I)
_CANCELLED = re.compile(r"\b(?:cancell?ed|postponed)\b", re.I)
_HIDDEN_STATUS = re.compile(r"not\s+viewable|hidden|private|cancel", re.I)
_HTML_TAG = re.compile(r"<\s*/?\s*[A-Za-z][^<>]*>")


@dataclass(frozen=True, slots=True)
class _Config:
    base: str
    zone: str
    now: datetime
    page_size: int
    lookback: timedelta
    days_back: int
    days_ahead: int
    max_details: int
    detail_refresh: timedelta
    max_bytes: int
    matters: bool
    token: str | None
    insite_url: str | None
    last_success_at: datetime | None

    @classmethod
    def from_state(cls, url: str, state: SourceState) -> _Config:
        base = url.strip().rstrip("/")
        if urlsplit(base).scheme not in ("http", "https") or not urlsplit(base).netloc:
            raise SourceError(f"Legistar source url {url!r} is not an http(s) URL")
        options = state.options
        zone = str(options.get("timezone") or state.timezone)
        try:
            time_zone(zone)
        except ValueError as e:
            raise SourceError(f"{e} for this Legistar client") from e
        insite = str(options.get("insite_url") or "").strip().rstrip("/") or None
        return cls(
            base=base,
            zone=zone,
            now=state.now.astimezone(UTC),
            page_size=min(_int(options, "page_size", API_MAX_PAGE, minimum=1), API_MAX_PAGE),
            lookback=timedelta(hours=_int(options, "lookback_hours", DEFAULT_LOOKBACK_HOURS)),
            days_back=_int(options, "days_back", DEFAULT_DAYS_BACK),
            days_ahead=_int(options, "days_ahead", DEFAULT_DAYS_AHEAD),
            max_details=_int(options, "max_detail_requests", DEFAULT_MAX_DETAIL_REQUESTS),
            detail_refresh=timedelta(hours=_int(options, "detail_refresh_hours", DEFAULT_DETAIL_REFRESH_HOURS)),
            max_bytes=_int(options, "max_bytes", DEFAULT_MAX_BYTES, minimum=1),
            matters=_flag(options, "matters", default=True),
            token=str(options["token"]) if options.get("token") else None,
            insite_url=insite,
            last_success_at=state.last_success_at.astimezone(UTC) if state.last_success_at else None,
        )

    def url(self, path: str, params: Sequence[tuple[str, str]] = ()) -> str:
        """`{base}/{path}?...` with every value percent-encoded (OData filters hold spaces and quotes)."""
        pairs = list(params)
        if self.token:
            pairs.append(("token", self.token))
        if not pairs:
            return f"{self.base}/{path}"
        query = "&".join(f"{name}={quote(value, safe='')}" for name, value in pairs)
        return f"{self.base}/{path}?{query}"

    @property
    def since(self) -> datetime | None:
        """Start of the incremental filter; None on a first poll."""
        return self.last_success_at - self.lookback if self.last_success_at else None


def _int(options: Mapping[str, Any], name: str, default: int, *, minimum: int = 0) -> int:
    raw = options.get(name, default)
    try:
        value = int(raw)
    except (TypeError, ValueError) as e:
        raise SourceError(f"source option {name}={raw!r} is not a whole number") from e
    if value < minimum:
        raise SourceError(f"source option {name}={raw!r} must be at least {minimum}")
    return value


def _flag(options: Mapping[str, Any], name: str, *, default: bool) -> bool:
    raw = options.get(name, default)
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise SourceError(f"source option {name}={raw!r} is not true or false")


def _odata_datetime(value: datetime | date) -> str:
    if isinstance(value, datetime):
        return f"datetime'{value.astimezone(UTC).replace(tzinfo=None):%Y-%m-%dT%H:%M:%S}'"
    return f"datetime'{value:%Y-%m-%d}'"


class LegistarAdapter:
    """A Legistar Web API client: meetings, their items and documents, and matters."""

    async def collect(self, url: str, fetch: Fetch, state: SourceState) -> list[Record] | None:
        """Records for the client at `url` (the API base); None if the first events request answered 304."""
        cfg = _Config.from_state(url, state)
        events = await _fetch_list(fetch, cfg, "events", _event_filter(cfg), "EventId", conditional=True)
        if events is None:
            return None
        matters: list[dict[str, Any]] = []
        if cfg.matters:
            since = cfg.since or cfg.now - timedelta(days=cfg.days_back)
            matter_filter = f"MatterLastModifiedUtc gt {_odata_datetime(since)}"
            fetched = await _fetch_list(fetch, cfg, "matters", matter_filter, "MatterId", conditional=False)
            matters = fetched or []
        return await _Collector(cfg, fetch, state).run(events, matters)


def _event_filter(cfg: _Config) -> str:
    if cfg.since is not None:
        return f"EventLastModifiedUtc gt {_odata_datetime(cfg.since)}"
    today = cfg.now.astimezone(ZoneInfo(cfg.zone)).date()
    first, last = today - timedelta(days=cfg.days_back), today + timedelta(days=cfg.days_ahead)
    return f"EventDate ge {_odata_datetime(first)} and EventDate lt {_odata_datetime(last)}"


# ---- HTTP and JSON --------------------------------------------------------------------------------------------------


async def _fetch_list(
    fetch: Fetch, cfg: _Config, path: str, odata_filter: str, order_by: str, *, conditional: bool
) -> list[dict[str, Any]] | None:
    """Every row of a paged list; None only when its first page was asked conditionally and answered 304."""
    rows: list[dict[str, Any]] = []
    previous: list[dict[str, Any]] | None = None
    for page_number in range(MAX_PAGES):
        params = [
            ("$filter", odata_filter),
            ("$orderby", order_by),
            ("$top", str(cfg.page_size)),
            ("$skip", str(page_number * cfg.page_size)),
        ]
        url = cfg.url(path, params)
        response = await fetch(url, conditional=conditional and page_number == 0)
        if response is None:
            if conditional and page_number == 0:
                return None
            raise SourceError(f"Legistar answered 304 Not Modified to an unconditional request: {url}")
        page = _json_rows(response.body, what=f"Legistar {path} (page {page_number + 1})", max_bytes=cfg.max_bytes)
        if page and page == previous:
            raise SourceError(f"Legistar returned the same {path} page twice: it seems to ignore $skip")
        rows.extend(page)
        if len(page) < cfg.page_size:
            return rows
        previous = page
    raise SourceError(f"Legistar {path} list is longer than {MAX_PAGES} pages of {cfg.page_size}")


def _json_rows(body: bytes, *, what: str, max_bytes: int) -> list[dict[str, Any]]:
    """A JSON array of objects, or `SourceError` saying what came instead (HTML, an error object, truncation)."""
    if len(body) > max_bytes:
        raise SourceError(f"{what} is {len(body)} bytes, over the {max_bytes}-byte limit")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        # JSON is UTF-8 by definition; a server that sent Windows-1252 anyway still meant its characters.
        text = body.decode("windows-1252", errors="replace")
    text = text.strip()
    if not text:
        raise SourceError(f"{what} is empty")
    if text.startswith("<"):
        kind = "HTML" if re.match(r"<(?:!doctype\s+html|html)\b", text, re.I) else "XML or HTML"
        raise SourceError(f"{what} is {kind}, not JSON (starts {text[:40]!r})")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise SourceError(f"{what} is not valid JSON ({e.msg} at character {e.pos} of {len(text)})") from e
    except RecursionError as e:
        raise SourceError(f"{what} is JSON nested too deeply to read") from e
    if isinstance(value, dict):
        raise SourceError(f"{what} is an error, not a list: {_error_message(value)}")
    if not isinstance(value, list):
        raise SourceError(f"{what} is a JSON {type(value).__name__}, not a list")
    if not all(isinstance(row, dict) for row in value):
        raise SourceError(f"{what} holds something other than objects")
    return value


def _error_message(obj: Mapping[str, Any]) -> str:
    odata = obj.get("odata.error") or obj.get("error")
    if isinstance(odata, Mapping):
        message = odata.get("message")
        if isinstance(message, Mapping):
            message = message.get("value")
        if message:
            return clean_line(str(message))[:300]
    for key in ("Message", "message", "ExceptionMessage", "error_description", "Error"):
        if obj.get(key):
            return clean_line(str(obj[key]))[:300]
    return clean_line(json.dumps(obj))[:300]


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


# ---- records --------------------------------------------------------------------------------------------------------


@dataclass
class _Budget:
    left: int
    attempted: int = 0
    failed: int = 0


@dataclass
class _Collector:
    cfg: _Config
    fetch: Fetch
    state: SourceState
    records: dict[tuple[ItemKind, str], Record] = field(default_factory=dict)

    def add(self, record: Record) -> None:
        # The first sighting wins: an attachment seen under an agenda item keeps that parent over its matter.
        self.records.setdefault((record.kind, record.external_id), record)

    async def run(self, events: list[dict[str, Any]], matters: list[dict[str, Any]]) -> list[Record]:
        budget = _Budget(self.cfg.max_details)
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
        cfg = self.cfg
        committee = _line(event.get("EventBodyName")) or None
        day = _naive(event.get("EventDate"))
        if day is None:
            raise SourceError(f"Legistar event {event_id} has no readable EventDate: {event.get('EventDate')!r}")
        time_text = _line(event.get("EventTime"))
        try:
            clock = parse_clock_time(time_text)
        except ValueError:
            clock = None  # "TBD", "Recess": keep the text, start at midnight
        starts_at = local_to_utc(datetime.combine(day.date(), clock or time()), cfg.zone)

        agenda_status = _line(event.get("EventAgendaStatusName"))
        minutes_status = _line(event.get("EventMinutesStatusName"))
        agenda_url = _http(event.get("EventAgendaFile"))
        minutes_url = _http(event.get("EventMinutesFile"))
        comment = _text(event.get("EventComment"))
        # Locations are written over several lines, often with their own trailing commas.
        location = ", ".join(line.rstrip(",; ") for line in _text(event.get("EventLocation")).split("\n"))
        # Legistar has no cancellation field: clients say it in the agenda status, the comment or the location.
        cancelled = bool(re.search(r"cancel|postpon", agenda_status, re.I)) or any(
            _CANCELLED.search(text) for text in (minutes_status, comment, location)
        )

        agenda_published = bool(agenda_url) and not _HIDDEN_STATUS.search(agenda_status)
        minutes_published = bool(minutes_url) and not _HIDDEN_STATUS.search(minutes_status)
        meeting = Record(
            kind=ItemKind.MEETING,
            external_id=event_id,
            title=committee or "Meeting",
            committee=committee,
            committee_id=_id(event.get("EventBodyId")),
            body=comment,
            starts_at=starts_at,
            status="cancelled" if cancelled else "confirmed",
            url=_http(event.get("EventInSiteURL")),
            data={
                "location": location,
                "time_known": clock is not None,
                "time_text": time_text,
                "agenda_status": agenda_status,
                "minutes_status": minutes_status,
                "agenda_published": agenda_published,
                "minutes_published": minutes_published,
                "agenda_url": agenda_url,
                "minutes_url": minutes_url,
                "video_url": _http(event.get("EventVideoPath")),
            },
        )
        self.add(meeting)
        local_day = starts_at.astimezone(ZoneInfo(cfg.zone))
        when = f"{local_day.day} {local_day:%b %Y}"
        for kind, published, url, stamp in (
            ("agenda", agenda_published, agenda_url, event.get("EventAgendaLastPublishedUTC")),
            ("minutes", minutes_published, minutes_url, event.get("EventMinutesLastPublishedUTC")),
        ):
            if published and url:
                self.add(
                    Record(
                        kind=ItemKind.DOCUMENT,
                        external_id=f"event:{event_id}:{kind}",
                        title=f"{kind.capitalize()}: {committee or 'Meeting'}, {when}",
                        committee=committee,
                        committee_id=meeting.committee_id,
                        starts_at=starts_at,
                        url=url,
                        parent=(ItemKind.MEETING, event_id),
                        published_at=_utc(stamp),
                        data={"document_type": kind},
                    )
                )
        return meeting

    async def _event_details(self, meetings: list[tuple[dict[str, Any], Record]], budget: _Budget) -> None:
        now = self.cfg.now
        todo: list[tuple[Record, str, Callable[[], Awaitable[list[dict[str, Any]] | None]]]] = []
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
        results = await self._run_details([getter for _, _, getter in todo], budget)
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

    async def _matter_details(self, matters: list[tuple[dict[str, Any], Record]], budget: _Budget) -> None:
        todo: list[tuple[Record, str, Callable[[], Awaitable[list[dict[str, Any]] | None]]]] = []
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
        results = await self._run_details([getter for _, _, getter in todo], budget)
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

    def _getter(self, url: str, what: str) -> Callable[[], Awaitable[list[dict[str, Any]] | None]]:
        async def get() -> list[dict[str, Any]] | None:
            response = await self.fetch(url)
            if response is None:
                raise SourceError(f"{what}: unexpected 304 Not Modified")
            return _json_rows(response.body, what=what, max_bytes=self.cfg.max_bytes)

        return get

    async def _run_details(
        self, getters: Sequence[Callable[[], Awaitable[list[dict[str, Any]] | None]]], budget: _Budget
    ) -> list[list[dict[str, Any]] | None]:
        """Run detail requests a few at a time; a failed one gives None (retried next poll) instead of failing."""
        limit = asyncio.Semaphore(DETAIL_CONCURRENCY)

        async def one(getter: Callable[[], Awaitable[list[dict[str, Any]] | None]]) -> list[dict[str, Any]] | None:
            async with limit:
                try:
                    return await getter()
                except SourceError:
                    budget.failed += 1
                    return None

        budget.attempted += len(getters)
        return list(await asyncio.gather(*(one(g) for g in getters)))
