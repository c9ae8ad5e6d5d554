"""Time zones in iCalendar: which zone each time is in, and the calendar's own VTIMEZONE definitions.

A TZID is read with the IANA rules whenever the name is (or maps to) an IANA or Windows zone, else with the
calendar's own VTIMEZONE; a TZID whose VTIMEZONE is missing or broken, and a floating time, is wall-clock time in the
calendar's `X-WR-TIMEZONE` or else the council's zone. VTIMEZONE blocks are read here, with dateutil, and taken out
of the text before icalendar sees it (see notifier/sources/ical.py for why).
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
from dateutil.tz import tzical
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from notifier.sources.base import SourceError
from notifier.zones import time_zone

_VTIMEZONE_BLOCK = re.compile(r"^BEGIN:VTIMEZONE[ \t]*\r?\n.*?^END:VTIMEZONE[ \t]*(?:\r?\n|$)", re.M | re.S | re.I)
# The VTIMEZONE properties dateutil understands; anything else (X-LIC-LOCATION, TZUNTIL) makes it give up.
_TZICAL_PROPERTIES = frozenset({
    "BEGIN", "END", "TZID", "TZURL", "LAST-MODIFIED", "COMMENT", "DTSTART", "RRULE", "RDATE", "EXRULE", "EXDATE",
    "TZOFFSETFROM", "TZOFFSETTO", "TZNAME",
})  # fmt: skip
_IANA_TAIL = re.compile(r"([A-Za-z]+(?:/[A-Za-z0-9_+-]+){1,2})$")


@dataclass(frozen=True, slots=True)
class Zones:
    floating: tzinfo  # for floating and all-day times: X-WR-TIMEZONE when the calendar names one, else the council's
    custom: Mapping[str, tzinfo]  # this calendar's own VTIMEZONE definitions, by TZID


def take_timezones(text: str) -> tuple[str, dict[str, tzinfo]]:
    """The calendar without its VTIMEZONE blocks, and the zones those blocks define (broken ones left out)."""
    zones: dict[str, tzinfo] = {}

    def take(m: re.Match[str]) -> str:
        block = m[0]
        tzid = location = ""
        kept = []
        for line in block.splitlines():
            name, _, value = line.partition(":")
            name = name.split(";", 1)[0].strip().upper()
            if name == "TZID":
                tzid = value.strip()
            elif name == "X-LIC-LOCATION":
                location = value.strip()
            if name in _TZICAL_PROPERTIES:
                kept.append(line)
        if not tzid:
            return ""
        # Exporters that invent a TZID often say which IANA zone they mean.
        zone: tzinfo | None = zone_for(location)
        if zone is None:
            try:
                zone = tzical(io.StringIO("\n".join(kept))).get(tzid)
            except (ValueError, TypeError, KeyError, IndexError, AttributeError):
                zone = None  # broken: the TZID falls back to the calendar's or the council's zone
        if zone is not None:
            zones.setdefault(tzid, zone)
        return ""

    return _VTIMEZONE_BLOCK.sub(take, text), zones


def canonical_tzid(m: re.Match[str]) -> str:
    zone = zone_for(m[2])
    return f"{m[1]}{zone.key}" if zone is not None else m[0]


def zones_of(cal: icalendar.Component, council_tz: str, custom: Mapping[str, tzinfo]) -> Zones:
    try:
        council = time_zone(council_tz)
    except ValueError as e:
        raise SourceError(f"unknown council time zone {council_tz!r}") from e
    named = zone_for(str(cal.get("X-WR-TIMEZONE", "")))
    return Zones(floating=named or council, custom=custom)


def zone_for(tzid: str) -> ZoneInfo | None:
    """The IANA zone a TZID means: an IANA name, a vendor-prefixed one (`/mozilla.org/.../Europe/London`) or a
    Windows name (`GMT Standard Time`); None for anything else."""
    name = tzid.strip().strip('"')
    if not name:
        return None
    candidates = [name, WINDOWS_TO_OLSON.get(name, "")]
    if m := _IANA_TAIL.search(name):
        candidates.append(m[1])
    for candidate in candidates:
        if not candidate:
            continue
        try:
            return time_zone(candidate)
        except ValueError:
            continue
    return None


def localize(prop: Any, zones: Zones) -> date | datetime:
    """The property's value as an aware datetime in its zone (wall clock as written), or a date for all-day."""
    value = prop.dt
    if not isinstance(value, datetime):
        return value  # type: ignore[no-any-return]
    tzid = str(prop.params.get("TZID") or "").strip().strip('"') if hasattr(prop, "params") else ""
    if tzid:
        # The wall clock as written, in the zone resolved here (whatever icalendar made of the TZID).
        zone = zone_for(tzid) or zones.custom.get(tzid) or zones.floating
        return value.replace(tzinfo=zone, fold=0)
    if value.tzinfo is not None:
        return value  # UTC
    return value.replace(tzinfo=zones.floating, fold=0)


def to_utc(value: date | datetime, zones: Zones) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=zones.floating).astimezone(UTC)
