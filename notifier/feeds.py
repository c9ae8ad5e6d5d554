"""Atom, RSS (feedgen) and JSON Feed 1.1 renderings of change events. Pure: rows in, bytes out.

Each entry is one event: its id (a tag URI on the event id) never changes, `published` is when the change was seen
and `updated` moves when the entry's item changes later. A feed page carries RFC 5005 paging: a `next` link to older
entries while there are more, and WebSub discovery (`rel="hub"`, `rel="self"`). iCalendar is in `feed_calendar`.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from feedgen.feed import FeedGenerator
from lxml import etree

from notifier.zones import time_zone

CONTENT_TYPES = {
    "atom": "application/atom+xml; charset=utf-8",
    "rss": "application/rss+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
    "ics": "text/calendar; charset=utf-8",
}
EVENT_FORMATS = ("atom", "rss", "json")
ATOM_NS = "http://www.w3.org/2005/Atom"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
# When a feed has no entries, its `updated` is this fixed time (not "now"), so the same feed is the same bytes.
EMPTY_FEED_UPDATED = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class FeedPage:
    """What a feed document says about itself."""

    title: str
    subtitle: str
    self_url: str
    base_url: str
    hub_url: str
    next_url: str | None = None


def tag(base_url: str, kind: str, ident: object) -> str:
    host = urlsplit(base_url).hostname or "localhost"
    return f"tag:{host},2025:{kind}:{ident}"


def safe_url(url: str | None) -> str | None:
    """Only http(s) links reach a reader: a council page could carry `javascript:`."""
    return url if url and url.startswith(("http://", "https://")) else None


def entry_updated(e: Mapping[str, Any]) -> datetime:
    """An entry moves when its item changes after the event."""
    changed = e.get("item_updated_at")
    occurred: datetime = e["occurred_at"]
    return max(occurred, changed) if changed is not None else occurred


def _local(when: datetime, zone: str | None) -> str:
    try:
        tz = time_zone(zone or "Europe/London")
    except ValueError:
        tz = time_zone("Europe/London")
    return when.astimezone(tz).strftime("%-d %b %Y %H:%M")


def _documents(e: Mapping[str, Any]) -> list[dict[str, str]]:
    docs = e.get("documents") or []
    if isinstance(docs, str):
        docs = json.loads(docs)
    out = []
    for d in docs:
        url = safe_url(d.get("url"))
        if url:
            out.append({"title": str(d.get("title") or url), "url": url})
    return out


def entry_text(e: Mapping[str, Any]) -> str:
    """One line about the item: title, council, committee and (local) time."""
    details = [e["council_name"]]
    if e.get("committee"):
        details.append(e["committee"])
    if e.get("starts_at"):
        details.append(_local(e["starts_at"], e.get("timezone")))
    return f"{e['title']} ({', '.join(details)})"


def entry_html(e: Mapping[str, Any], text: str | None = None) -> str:
    """The entry's content: the human summary, the item (`entry_text`), links to the council's page and every
    document, and the matched terms."""
    parts = [f"<p>{html.escape(e['summary'])}</p>", f"<p>{html.escape(text or entry_text(e))}</p>"]
    link = safe_url(e.get("url"))
    links = [f'<li><a href="{html.escape(link)}">On the council\'s website</a></li>'] if link else []
    links += [f'<li><a href="{html.escape(d["url"])}">{html.escape(d["title"])}</a></li>' for d in _documents(e)]
    if links:
        parts.append(f"<ul>{''.join(links)}</ul>")
    if e.get("matched"):
        parts.append(f"<p>Matched: {html.escape(', '.join(e['matched']))}</p>")
    for heading, doc, page, sentence in e.get("brief") or ():
        where = f"{doc}, p. {page}" if doc and doc != e["title"] else f"p. {page}"
        parts.append(f"<p><strong>{html.escape(heading)}</strong> ({html.escape(where)}): {html.escape(sentence)}</p>")
    for s in e.get("snippets") or ():
        where = f"{s['document']}, p. {s['page']}" if s.get("document") and s["document"] != e["title"] else \
            f"p. {s['page']}"
        parts.append(f"<p>{html.escape(where)}: {html.escape(s['text'])}</p>")
    return "".join(parts)


def categories(e: Mapping[str, Any]) -> list[str]:
    """Council, committee and event type, as readers group and filter by them."""
    out = [e["council_name"]]
    if e.get("committee"):
        out.append(e["committee"])
    out.append(e["type"])
    return out


def render_events_feed(fmt: str, events: Sequence[Mapping[str, Any]], page: FeedPage) -> bytes:
    """A feed of change events, newest first: `fmt` is atom, rss or json."""
    if fmt == "json":
        return render_json_feed(events, page)
    fg = FeedGenerator()
    fg.id(tag(page.base_url, "feed", hashlib.sha256(page.self_url.encode()).hexdigest()[:16]))
    fg.title(page.title)
    fg.subtitle(page.subtitle)
    fg.link(href=page.self_url, rel="self")
    fg.link(href=page.hub_url, rel="hub")
    if page.next_url:
        fg.link(href=page.next_url, rel="next")
    fg.link(href=page.base_url, rel="alternate")  # last: feedgen makes it RSS's <link>
    fg.language("en-GB")
    fg.generator("notifier")
    updated = max((entry_updated(e) for e in events), default=EMPTY_FEED_UPDATED)
    fg.updated(updated)
    fg.lastBuildDate(updated)
    # feedgen prepends entries: add oldest first so the newest ends up first
    for e in reversed(events):
        _add_entry(fg, e, page.base_url)
    if fmt == "atom":
        return _atom_with_documents(fg.atom_str(pretty=False), events)
    return _rss_with_links(fg.rss_str(pretty=False), page)


def _add_entry(fg: FeedGenerator, e: Mapping[str, Any], base_url: str) -> None:
    entry = fg.add_entry()
    ident = tag(base_url, "event", e["id"])
    entry.id(ident)
    entry.guid(ident, permalink=False)
    entry.title(e["summary"])
    link = safe_url(e.get("url"))
    if link:
        entry.link(href=link, rel="alternate")
    entry.updated(entry_updated(e))
    entry.published(e["occurred_at"])
    entry.author({"name": e["council_name"]})
    for term in categories(e):
        entry.category(term=term)
    text = entry_text(e)
    entry.summary(text)
    entry.content(entry_html(e, text), type="html")


def _atom_with_documents(body: bytes, events: Sequence[Mapping[str, Any]]) -> bytes:
    """Each entry's documents as `rel="related"` links (feedgen drops an entry link's rel and title)."""
    root = etree.fromstring(body)
    for element, e in zip(root.iterfind(f"{{{ATOM_NS}}}entry"), events, strict=True):
        for d in _documents(e):
            etree.SubElement(element, f"{{{ATOM_NS}}}link", href=d["url"], rel="related", title=d["title"])
    out: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return out


def _rss_with_links(body: bytes, page: FeedPage) -> bytes:
    """feedgen writes only the `self` atom:link into RSS; add `hub` and `next` beside it."""
    root = etree.fromstring(body)
    channel = root.find("channel")
    assert channel is not None  # feedgen always writes one
    self_link = channel.find(f"{{{ATOM_NS}}}link")
    at = list(channel).index(self_link) + 1 if self_link is not None else len(channel)
    extra = [("hub", page.hub_url)] + ([("next", page.next_url)] if page.next_url else [])
    for offset, (rel, href) in enumerate(extra):
        channel.insert(at + offset, etree.Element(f"{{{ATOM_NS}}}link", href=href, rel=rel))
    out: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return out


def render_json_feed(events: Sequence[Mapping[str, Any]], page: FeedPage) -> bytes:
    """JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/), with the same entries as Atom and RSS."""
    feed: dict[str, Any] = {
        "version": JSON_FEED_VERSION,
        "title": page.title,
        "description": page.subtitle,
        "home_page_url": page.base_url,
        "feed_url": page.self_url,
        "language": "en-GB",
        "hubs": [{"type": "WebSub", "url": page.hub_url}],
        "items": [_json_item(e, page.base_url) for e in events],
    }
    if page.next_url:
        feed["next_url"] = page.next_url
    return json.dumps(feed, ensure_ascii=False, separators=(",", ":")).encode()


def _json_item(e: Mapping[str, Any], base_url: str) -> dict[str, Any]:
    text = entry_text(e)
    item: dict[str, Any] = {
        "id": tag(base_url, "event", e["id"]),
        "title": e["summary"],
        "summary": text,
        "content_html": entry_html(e, text),
        "date_published": e["occurred_at"].isoformat(),
        "date_modified": entry_updated(e).isoformat(),
        "authors": [{"name": e["council_name"]}],
        "tags": categories(e),
    }
    link = safe_url(e.get("url"))
    if link:
        item["url"] = link
    docs = _documents(e)
    if docs:
        item["attachments"] = [{"url": d["url"], "mime_type": _mime(d["url"]), "title": d["title"]} for d in docs]
    # extensions start with an underscore (JSON Feed 1.1, "Extensions")
    item["_notifier"] = {"event_id": e["id"], "type": e["type"], "council": e["council"],
                         "item_id": e["item_id"], "matched_terms": list(e.get("matched") or [])}
    return item


def _mime(url: str) -> str:
    path = urlsplit(url).path.lower()
    if path.endswith(".pdf"):
        return "application/pdf"
    if path.endswith(".docx"):
        return "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    return "text/html"
