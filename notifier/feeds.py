"""Atom, RSS (feedgen) and iCal (icalendar) renderings of events and meetings. Pure: rows in, bytes out."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from feedgen.feed import FeedGenerator
from icalendar import Calendar, Event

# A meeting with no published end is shown as lasting this long in calendars.
DEFAULT_MEETING_LENGTH = timedelta(hours=2)
CONTENT_TYPES = {
    "atom": "application/atom+xml; charset=utf-8",
    "rss": "application/rss+xml; charset=utf-8",
    "ics": "text/calendar; charset=utf-8",
}


def _tag(base_url: str, kind: str, ident: object) -> str:
    host = urlsplit(base_url).hostname or "localhost"
    return f"tag:{host},2025:{kind}:{ident}"


def _safe_url(url: str | None) -> str | None:
    return url if url and url.startswith(("http://", "https://")) else None


def render_events_feed(
    fmt: str, events: Sequence[Mapping[str, Any]], *, title: str, self_url: str, base_url: str, subtitle: str
) -> bytes:
    """An Atom or RSS feed of change events, newest first."""
    fg = FeedGenerator()
    fg.id(_tag(base_url, "feed", hashlib.sha256(self_url.encode()).hexdigest()[:16]))
    fg.title(title)
    fg.subtitle(subtitle)
    fg.link(href=self_url, rel="self")
    fg.link(href=base_url, rel="alternate")
    fg.language("en-GB")
    fg.generator("notifier")
    updated = max((e["occurred_at"] for e in events), default=datetime(2025, 1, 1, tzinfo=UTC))
    fg.updated(updated)
    fg.lastBuildDate(updated)
    # feedgen prepends entries: add oldest first so the newest ends up first
    for e in reversed(events):
        entry = fg.add_entry()
        entry.id(_tag(base_url, "event", e["id"]))
        entry.guid(_tag(base_url, "event", e["id"]), permalink=False)
        entry.title(e["summary"])
        link = _safe_url(e.get("url"))
        if link:
            entry.link(href=link)
        entry.updated(e["occurred_at"])
        entry.published(e["occurred_at"])
        entry.author({"name": e["council_name"]})
        entry.category(term=e["type"])
        details = [e["council_name"]]
        if e.get("committee"):
            details.append(e["committee"])
        if e.get("starts_at"):
            details.append(e["starts_at"].astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"))
        # where in its documents the feed's query was found ("p. 12: …the respite centre…")
        found = "".join(f" {s['document'] + ', ' if s.get('document') and s['document'] != e['title'] else ''}"
                        f"p. {s['page']}: {s['text']}" for s in e.get("snippets") or ())
        entry.description(f"{e['title']} ({', '.join(details)}){found}")
    out: bytes = fg.atom_str(pretty=True) if fmt == "atom" else fg.rss_str(pretty=True)
    return out


def render_calendar(
    meetings: Sequence[Mapping[str, Any]], *, title: str, base_url: str, now: datetime | None = None
) -> bytes:
    """An iCalendar of meetings; cancelled ones stay in it with STATUS:CANCELLED so calendars drop them."""
    cal = Calendar()
    cal.add("prodid", "-//notifier//council meetings//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", title)
    host = urlsplit(base_url).hostname or "localhost"
    stamp = now or datetime.now(UTC)
    for m in meetings:
        starts = m["starts_at"]
        if starts is None:
            continue
        ev = Event()
        ev.add("uid", f"item-{m['id']}@{host}")
        ev.add("dtstamp", stamp)
        ev.add("dtstart", starts.astimezone(UTC))
        ev.add("dtend", starts.astimezone(UTC) + DEFAULT_MEETING_LENGTH)
        ev.add("summary", f"{m['title']} ({m['council_name']})")
        ev.add("last-modified", m["updated_at"])
        data = m.get("data") or {}
        if data.get("location"):
            ev.add("location", str(data["location"]))
        link = _safe_url(m.get("url"))
        if link:
            ev.add("url", link)
        ev.add(
            "description", f"{m['council_name']}: {m.get('committee') or m['title']}" + (f"\n{link}" if link else "")
        )
        ev.add("status", "CANCELLED" if m.get("status") == "cancelled" else "CONFIRMED")
        cal.add_component(ev)
    out: bytes = cal.to_ical()
    return out
