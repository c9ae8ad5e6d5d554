"""iCalendar (RFC 5545, RFC 7986) of meetings, for calendar apps. Pure: rows in, bytes out.

A meeting keeps one UID for life, and its SEQUENCE is the number of changes seen to it (its events after the first),
so a calendar that has it updates the entry in place when it is moved, and drops it when it is cancelled (it stays
in the feed with STATUS:CANCELLED). Times are given in the council's own zone, with its VTIMEZONE.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from icalendar import Calendar, Event, vDuration

from notifier.feeds import EMPTY_FEED_UPDATED, safe_url
from notifier.zones import time_zone

# A meeting with no published end is shown as lasting this long in calendars.
DEFAULT_MEETING_LENGTH = timedelta(hours=2)
# How often calendar apps are asked to look again (REFRESH-INTERVAL, X-PUBLISHED-TTL).
REFRESH = timedelta(hours=1)


def meeting_uid(item_id: int, base_url: str) -> str:
    host = urlsplit(base_url).hostname or "localhost"
    return f"item-{item_id}@{host}"


def render_calendar(meetings: Sequence[Mapping[str, Any]], *, title: str, base_url: str, self_url: str) -> bytes:
    """An iCalendar of meetings.

    Each row: id, title, committee, starts_at, ends_at (or None), status, url, data, updated_at, first_seen_at,
    council_name, timezone, changes (events seen for it), agenda (agenda item titles in order).
    """
    cal = Calendar()
    cal.add("prodid", "-//notifier//council meetings//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("name", title)
    cal.add("x-wr-calname", title)
    cal.add("source", self_url, parameters={"VALUE": "URI"})
    cal.add("refresh-interval", vDuration(REFRESH), parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", vDuration(REFRESH))
    starts = [m["starts_at"] for m in meetings if m["starts_at"] is not None]
    for m in meetings:
        if m["starts_at"] is not None:
            cal.add_component(_event(m, base_url))
    if starts:
        # the zones' rules only for the years the meetings span, not every year since 1970
        cal.add_missing_timezones(first_date=date(min(starts).year, 1, 1), last_date=date(max(starts).year + 1, 12, 31))
    out: bytes = cal.to_ical()
    return out


def _event(m: Mapping[str, Any], base_url: str) -> Event:
    try:
        zone = time_zone(m.get("timezone") or "Europe/London")
    except ValueError:
        zone = time_zone("Europe/London")
    starts: datetime = m["starts_at"].astimezone(zone)
    ends = m.get("ends_at")
    ends = ends.astimezone(zone) if ends is not None and ends > starts else starts + DEFAULT_MEETING_LENGTH
    ev = Event()
    ev.add("uid", meeting_uid(m["id"], base_url))
    # the last change, not the time of rendering: the same meetings make the same bytes (and ETag)
    ev.add("dtstamp", (m["updated_at"] or EMPTY_FEED_UPDATED).astimezone(UTC))
    ev.add("created", (m.get("first_seen_at") or m["updated_at"]).astimezone(UTC))
    ev.add("last-modified", m["updated_at"].astimezone(UTC))
    ev.add("sequence", max(int(m.get("changes") or 0) - 1, 0))
    ev.add("dtstart", starts)
    ev.add("dtend", ends)
    ev.add("summary", f"{m['title']} ({m['council_name']})")
    data = m.get("data") or {}
    if data.get("location"):
        ev.add("location", str(data["location"]))
    link = safe_url(m.get("url"))
    if link:
        ev.add("url", link)
    ev.add("description", _description(m, link))
    cancelled = m.get("status") == "cancelled"
    ev.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    ev.add("transp", "TRANSPARENT" if cancelled else "OPAQUE")
    return ev


def _description(m: Mapping[str, Any], link: str | None) -> str:
    lines = [f"{m['council_name']}: {m.get('committee') or m['title']}"]
    agenda = [a for a in (m.get("agenda") or []) if a]
    if agenda:
        lines += ["", "Agenda:"] + [f"{n}. {a}" for n, a in enumerate(agenda, 1)]
    if link:
        lines += ["", link]
    return "\n".join(lines)
