"""iCalendar (.ics) meeting calendars: every VEVENT becomes a meeting record.

Times: `Z` times are UTC; a TZID names its zone, read with the IANA rules whenever the name is (or maps to) an IANA
or Windows zone, else with the calendar's own VTIMEZONE; a TZID whose VTIMEZONE is missing or broken, and a floating
time, is wall-clock time in the calendar's `X-WR-TIMEZONE` or else the council's zone. All-day events start at local
midnight.

VTIMEZONE blocks are read here (with dateutil) and taken out before icalendar sees the calendar: icalendar keeps
every custom VTIMEZONE it meets in a process-wide cache, first definition wins, so one council's "Customized Time
Zone" would otherwise decide another's times; and one broken block makes it refuse the whole calendar. TZIDs that
name a known zone are rewritten to its IANA name first, so icalendar has nothing to guess (or warn) about.

Recurring events (RRULE/RDATE) are expanded into one record per occurrence, but only for occurrences inside a window
around now (options `days_back`, default 30, and `days_ahead`, default 120) and at most `max_occurrences` (default
100) per series; each occurrence's external id is `UID#<original start>`, the same id a RECURRENCE-ID override of
that occurrence gets, so an override replaces the generated occurrence. EXDATEs are honoured. Single events are kept
whatever their date: the window only bounds what expansion invents.

Options: `days_back`, `days_ahead`, `max_occurrences`, `committee` (for a committee's own calendar), `max_bytes`.
"""

from __future__ import annotations

import asyncio
import codecs
import hashlib
import itertools
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import icalendar
from dateutil.rrule import rrule, rruleset, rrulestr

from notifier.models import ItemKind
from notifier.sources.base import Fetch, Record, SourceError, SourceState
from notifier.sources.common import clean_line, clean_text, html_to_text
from notifier.sources.ical_zones import Zones, canonical_tzid, localize, take_timezones, to_utc, zones_of

__all__ = ["IcalAdapter", "parse_calendar", "split_cancelled"]

DEFAULT_DAYS_BACK = 30
DEFAULT_DAYS_AHEAD = 120
DEFAULT_MAX_OCCURRENCES = 100
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
# Occurrences looked at (not kept) per series before giving up: bounds the work of a rule that started long ago.
MAX_SCANNED_OCCURRENCES = 20_000
# Meetings do not recur by the second, minute or hour; such a rule is noise (or an attack) and is not expanded.
_EXPANDABLE_FREQS = frozenset({"DAILY", "WEEKLY", "MONTHLY", "YEARLY"})

_FOLD = re.compile(r"\r?\n[ \t]")
# A TZID parameter (not the text "\;TZID=" inside an escaped value).
_TZID_PARAM = re.compile(r'(?<!\\)(;TZID=)("[^"\r\n]*"|[^;:\r\n]*)', re.I)
_HTML_TAG = re.compile(r"<\s*/?\s*[A-Za-z][^<>]*>")


class IcalAdapter:
    """An iCalendar feed of meetings."""

    async def collect(self, url: str, fetch: Fetch, state: SourceState) -> list[Record] | None:
        """Meeting records from the calendar at `url`; None if it answered 304."""
        response = await fetch(url, conditional=True)
        if response is None:
            return None
        # A large calendar takes seconds to parse: not on the event loop.
        return await asyncio.to_thread(parse_calendar, response.body, state=state)


# ---- cancellation markers -------------------------------------------------------------------------------------------

_CANCEL_WORD = r"(?:cancell?ed|postponed)"
_CANCEL_BRACKETED = re.compile(rf"[(\[][^()\[\]]*\b{_CANCEL_WORD}\b[^()\[\]]*[)\]]", re.I)
_CANCEL_PREFIX = re.compile(rf"^\W*(?:meeting\s+)?{_CANCEL_WORD}\b(?:\s*[-:–—|]+)?\s*", re.I)
_CANCEL_SUFFIX = re.compile(
    rf"(?:\s*[-:–—|,]+)?\s*(?:this\s+)?(?:meeting\s+)?(?:(?:has\s+been|is)\s+)?{_CANCEL_WORD}\W*$", re.I
)
_CANCEL_SHOUTED = re.compile(r"(?:\s*[-:–—|]+)?\s*\b(?:CANCELL?ED|POSTPONED)\b(?:\s*[-:–—|]+)?\s*")
_EDGE_PUNCTUATION = " \t-:–—|,;"


def split_cancelled(title: str) -> tuple[str, bool]:
    """A meeting title without its cancellation marker, and whether it had one.

    Markers: `(Cancelled)`, `[POSTPONED]`, `CANCELLED: ...`, `Cancelled - ...`, `... - Meeting cancelled`, and the
    word in capitals anywhere (`Cabinet CANCELLED 4 Dec`). A lower-case word inside a title ("Review of cancelled
    bus routes") is not a marker.
    """
    original = title
    for pattern in (_CANCEL_BRACKETED, _CANCEL_PREFIX, _CANCEL_SUFFIX):
        title = pattern.sub(" ", title)
    title = _CANCEL_SHOUTED.sub(" ", title)
    if title == original:
        return original, False
    return " ".join(title.split()).strip(_EDGE_PUNCTUATION), True


# ---- the calendar ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Window:
    start: datetime
    end: datetime
    max_occurrences: int


def parse_calendar(body: bytes, *, state: SourceState) -> list[Record]:
    """Meeting records for every VEVENT of an iCalendar document; raises `SourceError` for anything that is not one."""
    options = state.options
    max_bytes = _int_option(options, "max_bytes", DEFAULT_MAX_BYTES)
    if len(body) > max_bytes:
        raise SourceError(f"calendar is {len(body)} bytes, over the {max_bytes}-byte limit for a calendar")
    text, custom = take_timezones(_FOLD.sub("", _decode(body)))
    calendars = _parse(_TZID_PARAM.sub(canonical_tzid, text))
    zones = zones_of(calendars[0], state.timezone, custom)
    window = _Window(
        start=state.now - timedelta(days=_int_option(options, "days_back", DEFAULT_DAYS_BACK)),
        end=state.now + timedelta(days=_int_option(options, "days_ahead", DEFAULT_DAYS_AHEAD)),
        max_occurrences=_int_option(options, "max_occurrences", DEFAULT_MAX_OCCURRENCES),
    )
    committee = clean_line(str(options.get("committee") or "")) or None

    events: list[tuple[icalendar.Component, bool]] = []
    for cal in calendars:
        method_cancel = str(cal.get("METHOD", "")).strip().upper() == "CANCEL"
        events.extend((ev, method_cancel) for ev in cal.walk("VEVENT"))
    usable = [(ev, cancel) for ev, cancel in events if _start_prop(ev) is not None]
    if events and not usable:
        raise SourceError(f"calendar has {len(events)} events and none with a readable start (DTSTART)")

    uid_counts = Counter(_uid(ev) for ev, _ in usable if "RECURRENCE-ID" not in ev)
    records: dict[str, Record] = {}
    overrides: list[Record] = []
    for ev, method_cancel in usable:
        uid = _uid(ev)
        if "RECURRENCE-ID" in ev:
            rid = _recurrence_id(ev, zones)
            if rid is not None:
                overrides.append(_record(ev, f"{uid}#{rid}", zones, committee, method_cancel))
            continue
        if "RRULE" in ev or "RDATE" in ev:
            for occurrence in _expand(ev, uid, zones, window, committee, method_cancel):
                records[occurrence.external_id] = occurrence
            continue
        external_id = uid
        if uid_counts[uid] > 1:
            # Some publishers reuse one UID for many events; the start tells them apart.
            external_id = f"{uid}#{_instance_key(localize(_start_prop(ev), zones))}"
        records[external_id] = _record(ev, external_id, zones, committee, method_cancel)
    for override in overrides:
        records[override.external_id] = override
    return list(records.values())


def _int_option(options: Mapping[str, Any], name: str, default: int) -> int:
    raw = options.get(name, default)
    try:
        value = int(raw)
    except (TypeError, ValueError) as e:
        raise SourceError(f"source option {name}={raw!r} is not a whole number") from e
    if value < 0:
        raise SourceError(f"source option {name}={raw!r} must not be negative")
    return value


def _decode(body: bytes) -> str:
    if not body.strip():
        raise SourceError("calendar is empty")
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Some Windows exporters write UTF-16; the byte-order mark says so.
        text = body.decode("utf-16", errors="replace")
    else:
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError:
            # Calendars exported from Windows software are often Windows-1252 whatever they claim.
            text = body.decode("windows-1252", errors="replace")
    text = text.lstrip("\ufeff \t\r\n")
    head = text[:200].lower()
    if text.startswith("<") or "<html" in head or "<!doctype" in head:
        raise SourceError(f"calendar is HTML, not iCalendar (starts {text[:40]!r})")
    if not text[:15].upper() == "BEGIN:VCALENDAR":
        raise SourceError(f"not an iCalendar document (starts {text[:40]!r})")
    last = text.rstrip().rsplit("\n", 1)[-1].strip().upper()
    if last != "END:VCALENDAR":
        raise SourceError("calendar is truncated: it does not end with END:VCALENDAR")
    return text


def _parse(text: str) -> list[icalendar.Component]:
    try:
        # Bytes, not str: a str without a line break would be tried as a file path.
        components = icalendar.Calendar.from_ical(text.encode("utf-8"), multiple=True)
    except ValueError as e:
        raise SourceError(f"calendar cannot be parsed: {e}") from e
    calendars: list[icalendar.Component] = [c for c in components if c.name == "VCALENDAR"]
    if not calendars:
        raise SourceError("calendar cannot be parsed: no VCALENDAR component")
    return calendars


# ---- one event ------------------------------------------------------------------------------------------------------


def _props(ev: icalendar.Component, name: str) -> list[Any]:
    """Every readable value of a property: icalendar keeps an unparsable one as `vBroken`, which raises on use."""
    value = ev.get(name)
    values = value if isinstance(value, list) else [value] if value is not None else []
    return [v for v in values if not isinstance(v, icalendar.vBroken)]


def _prop(ev: icalendar.Component, name: str) -> Any:
    values = _props(ev, name)
    return values[0] if values else None


def _text(ev: icalendar.Component, name: str) -> str:
    prop = _prop(ev, name)
    return str(prop) if prop is not None else ""


def _date_prop(ev: icalendar.Component, name: str) -> Any:
    prop = _prop(ev, name)
    return prop if isinstance(getattr(prop, "dt", None), date) else None


def _start_prop(ev: icalendar.Component) -> Any:
    return _date_prop(ev, "DTSTART")


def _uid(ev: icalendar.Component) -> str:
    uid = clean_line(_text(ev, "UID"))
    if uid:
        return uid
    # No UID (the RFC requires one; not every exporter obliges): the summary and start are the identity.
    seed = f"{_text(ev, 'SUMMARY')}\n{getattr(_start_prop(ev), 'dt', '')}"
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()[:32]


def _instance_key(value: date | datetime) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return value.strftime("%Y%m%d")


def _recurrence_id(ev: icalendar.Component, zones: Zones) -> str | None:
    prop = _date_prop(ev, "RECURRENCE-ID")
    return _instance_key(localize(prop, zones)) if prop is not None else None


def _duration(ev: icalendar.Component, start: date | datetime, zones: Zones) -> timedelta | None:
    end_prop = _date_prop(ev, "DTEND")
    if end_prop is not None:
        end = localize(end_prop, zones)
        if isinstance(start, datetime) and isinstance(end, datetime):
            delta = end.astimezone(UTC) - start.astimezone(UTC)
        elif not isinstance(start, datetime) and not isinstance(end, datetime):
            delta = end - start
        else:
            return None  # a date end for a timed start (or the reverse) says nothing reliable
        return delta if delta >= timedelta(0) else None
    value = getattr(_prop(ev, "DURATION"), "dt", None)
    if isinstance(value, timedelta) and value >= timedelta(0):
        return value
    return None


def _record(
    ev: icalendar.Component,
    external_id: str,
    zones: Zones,
    committee: str | None,
    method_cancel: bool,
    start: date | datetime | None = None,
) -> Record:
    if start is None:
        start = localize(_start_prop(ev), zones)
    all_day = not isinstance(start, datetime)
    starts_at = to_utc(start, zones)
    duration = _duration(ev, localize(_start_prop(ev), zones), zones)
    ends_at: datetime | None = None
    if duration is not None:
        ends_at = to_utc(start + duration, zones) if all_day else starts_at + duration

    title, marked = split_cancelled(clean_line(_text(ev, "SUMMARY")))
    status_prop = _text(ev, "STATUS").strip().upper()
    if marked or method_cancel or status_prop == "CANCELLED":
        status = "cancelled"
    elif status_prop == "TENTATIVE":
        status = "provisional"
    else:
        status = "confirmed"
    description = _text(ev, "DESCRIPTION")
    body = html_to_text(description) if _HTML_TAG.search(description) else clean_text(description)
    return Record(
        kind=ItemKind.MEETING,
        external_id=external_id,
        title=title or committee or "Meeting",
        committee=committee,
        body=body,
        starts_at=starts_at,
        status=status,
        url=_http_url(_prop(ev, "URL")),
        published_at=_created(ev),
        data={
            "ends_at": ends_at.isoformat() if ends_at else None,
            "location": clean_line(_text(ev, "LOCATION")),
            "all_day": all_day,
            "categories": _categories(ev),
        },
    )


def _http_url(prop: Any) -> str | None:
    if prop is None:
        return None
    url = str(prop).strip()
    return url if urlsplit(url).scheme in ("http", "https") else None


def _created(ev: icalendar.Component) -> datetime | None:
    value = getattr(_prop(ev, "CREATED"), "dt", None)
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def _categories(ev: icalendar.Component) -> list[str]:
    found: list[str] = []
    for prop in _props(ev, "CATEGORIES"):
        for cat in getattr(prop, "cats", []):
            text = clean_line(str(cat))
            if text and text not in found:
                found.append(text)
    return found


# ---- recurrence -----------------------------------------------------------------------------------------------------


def _expand(
    ev: icalendar.Component,
    uid: str,
    zones: Zones,
    window: _Window,
    committee: str | None,
    method_cancel: bool,
) -> Iterator[Record]:
    """One record per occurrence of a recurring event inside the window."""
    start = localize(_start_prop(ev), zones)
    rules = _rules(ev, start, zones)
    if rules is None:
        # A rule we will not expand still has its first occurrence.
        yield _record(ev, uid, zones, committee, method_cancel)
        return
    lo, hi = _window_bounds(start, window, zones)
    kept = 0
    for occurrence in itertools.islice(rules, MAX_SCANNED_OCCURRENCES):
        if occurrence > hi:
            break
        if occurrence < lo:
            continue
        value: date | datetime = occurrence if isinstance(start, datetime) else occurrence.date()
        yield _record(ev, f"{uid}#{_instance_key(value)}", zones, committee, method_cancel, start=value)
        kept += 1
        if kept >= window.max_occurrences:
            break


def _rules(ev: icalendar.Component, start: date | datetime, zones: Zones) -> rruleset | None:
    """The event's occurrences as a dateutil rule set (DTSTART, RRULEs, RDATEs minus EXDATEs), or None when a rule
    is unreadable or too frequent to be a meeting."""
    dtstart = start if isinstance(start, datetime) else datetime(start.year, start.month, start.day)
    rset = rruleset()
    rset.rdate(dtstart)  # DTSTART is always the first occurrence, whether or not the rule matches it
    rules = _props(ev, "RRULE")
    raw = ev.get("RRULE")
    if len(rules) != (len(raw) if isinstance(raw, list) else 0 if raw is None else 1):
        return None  # an unreadable rule: better its first occurrence alone than wrong ones
    for prop in rules:
        freq = [str(f).upper() for f in prop.get("FREQ", [])]
        if not freq or freq[0] not in _EXPANDABLE_FREQS:
            return None
        text = _until_like_start(prop.to_ical().decode(), dtstart, zones)
        try:
            rule = rrulestr(text, dtstart=dtstart)
        except (ValueError, TypeError):
            return None
        if not isinstance(rule, rrule):
            return None
        rset.rrule(rule)
    for prop in _props(ev, "RDATE"):
        for value in _dates(prop, dtstart, zones):
            rset.rdate(value)
    for prop in _props(ev, "EXDATE"):
        for value in _dates(prop, dtstart, zones):
            rset.exdate(value)
    return rset


_UNTIL = re.compile(r"UNTIL=(\d{8})(?:T(\d{6})(Z?))?", re.I)


def _until_like_start(rule: str, dtstart: datetime, zones: Zones) -> str:
    """dateutil wants UNTIL aware (UTC) when DTSTART is aware and naive when it is naive; exporters mix them."""
    m = _UNTIL.search(rule)
    if not m:
        return rule
    day, clock, zulu = m[1], m[2] or "235959", m[3]
    until = datetime.strptime(day + clock, "%Y%m%d%H%M%S")
    if dtstart.tzinfo is not None:
        aware = until.replace(tzinfo=UTC) if zulu else until.replace(tzinfo=dtstart.tzinfo)
        replacement = "UNTIL=" + aware.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    else:
        if zulu:
            until = until.replace(tzinfo=UTC).astimezone(zones.floating).replace(tzinfo=None)
        replacement = "UNTIL=" + until.strftime("%Y%m%dT%H%M%S")
    return rule[: m.start()] + replacement + rule[m.end() :]


def _dates(prop: Any, dtstart: datetime, zones: Zones) -> Iterable[datetime]:
    """RDATE/EXDATE values in the form the rule set compares: aware for a timed series, naive local for all-day."""
    for item in getattr(prop, "dts", []):
        value = getattr(item, "dt", None)
        if isinstance(value, datetime):
            localized = localize(item, zones)
            if not isinstance(localized, datetime):
                continue
            if dtstart.tzinfo is None:
                localized = localized.astimezone(zones.floating).replace(tzinfo=None)
            yield localized
        elif isinstance(value, date):
            yield dtstart.replace(year=value.year, month=value.month, day=value.day)


def _window_bounds(start: date | datetime, window: _Window, zones: Zones) -> tuple[datetime, datetime]:
    if isinstance(start, datetime):
        return window.start, window.end
    # All-day series run on naive local dates.
    return (
        window.start.astimezone(zones.floating).replace(tzinfo=None),
        window.end.astimezone(zones.floating).replace(tzinfo=None),
    )
