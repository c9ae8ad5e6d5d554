"""RSS 0.9x/1.0/2.0 and Atom feeds, such as ModernGov's "what's new" feed (`mgRss.aspx?XXR=0`).

feedparser reads the entries, but only after the body has been checked: feedparser is built to make the best of
anything, and a poll must fail on an HTML error page, a truncated feed or a document declaring entities rather than
report whatever entries survived. So the body is decoded to UTF-8 here, parsed once by the safe XML parser (which
refuses entities, DTDs, HTML and malformed documents), its root element checked, and only then handed to feedparser
as bytes (never as a URL or a path, so it cannot fetch or open anything). Any feedparser complaint other than an
encoding override then fails the poll.

Options: `item_kind` (`document`, the default for a "what's new" feed; `meeting` for a feed of meetings; `decision`),
`committee` (a committee for every entry of a committee's own feed), `max_bytes`.
"""

from __future__ import annotations

import asyncio
import codecs
import hashlib
import html.entities
import io
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
from lxml import etree

from notifier.models import ItemKind
from notifier.sources.base import Fetch, Record, SourceError, SourceState
from notifier.sources.common import clean_line, clean_text, html_to_text, local_to_utc
from notifier.sources.ical import split_cancelled
from notifier.sources.safe_xml import parse_xml

__all__ = ["RssAdapter", "parse_feed", "parse_feed_date"]

# feedparser is slow on very large inputs and no council feed comes near this; the fetcher has its own, larger cap.
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
ALLOWED_KINDS = frozenset({ItemKind.DOCUMENT, ItemKind.MEETING, ItemKind.DECISION})
_FEED_ROOTS = frozenset({"rss", "rdf", "feed"})
_XML_PREDEFINED = frozenset({"amp", "lt", "gt", "quot", "apos"})
_NAMED_ENTITY = re.compile(rb"&([A-Za-z][A-Za-z0-9]{1,31});")
_BARE_AMPERSAND = re.compile(rb"&(?!#[0-9]{1,8};|#[xX][0-9a-fA-F]{1,6};|[A-Za-z][A-Za-z0-9._-]{0,31};)")
_XML_DECLARATION = re.compile(rb"^<\?xml[^>]*\?>", re.S)
_DECLARED_ENCODING = re.compile(rb"^<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']", re.S)
_HTML_TAG = re.compile(r"<\s*/?\s*[A-Za-z][^<>]*>")
# feedparser exceptions that say only "the declared encoding was wrong, another one worked".
_HARMLESS_BOZO = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)


class RssAdapter:
    """An RSS or Atom feed: one record per entry."""

    async def collect(self, url: str, fetch: Fetch, state: SourceState) -> list[Record] | None:
        """Records for the entries of the feed at `url`; None if it answered 304."""
        response = await fetch(url, conditional=True)
        if response is None:
            return None
        # feedparser takes seconds over a large feed: not on the event loop.
        return await asyncio.to_thread(
            parse_feed, response.body, base_url=response.url or url, state=state, content_type=response.content_type
        )


def parse_feed(body: bytes, *, base_url: str, state: SourceState, content_type: str = "") -> list[Record]:
    """Records for every entry of an RSS/Atom document; raises `SourceError` for anything that is not one."""
    kind = _item_kind(state.options)
    max_bytes = _max_bytes(state.options)
    if len(body) > max_bytes:
        raise SourceError(f"feed is {len(body)} bytes, over the {max_bytes}-byte limit for a feed")
    if not body.strip():
        raise SourceError("feed is empty")
    data = _to_utf8(body, content_type)
    data = _repair_entities(data)
    root = parse_xml(data, what="feed")
    _check_root(root)

    # No base URI for feedparser: it would "resolve" a non-URL guid against it; links are joined here instead.
    parsed = feedparser.parse(io.BytesIO(data), response_headers={"content-type": "application/xml; charset=utf-8"})
    if parsed.get("bozo"):
        exc = parsed.get("bozo_exception")
        if not isinstance(exc, _HARMLESS_BOZO):
            raise SourceError(f"feed could not be read cleanly: {type(exc).__name__}: {exc}")
    # An Atom feed's author is every entry's author unless the entry names its own.
    feed_author = clean_line(parsed.feed.get("author"))
    return [
        _record(entry, kind=kind, base_url=base_url, state=state, position=position, feed_author=feed_author)
        for position, entry in enumerate(parsed.entries)
    ]


def _item_kind(options: Mapping[str, Any]) -> ItemKind:
    raw = options.get("item_kind", ItemKind.DOCUMENT.value)
    for kind in ALLOWED_KINDS:
        if raw == kind.value:
            return kind
    allowed = ", ".join(sorted(k.value for k in ALLOWED_KINDS))
    raise SourceError(f"source option item_kind={raw!r} is not one of {allowed}")


def _max_bytes(options: Mapping[str, Any]) -> int:
    raw = options.get("max_bytes", DEFAULT_MAX_BYTES)
    try:
        return int(raw)
    except (TypeError, ValueError) as e:
        raise SourceError(f"source option max_bytes={raw!r} is not a whole number") from e


# ---- the document ---------------------------------------------------------------------------------------------------


def _to_utf8(body: bytes, content_type: str) -> bytes:
    """The body re-encoded as UTF-8 with a matching XML declaration.

    Valid UTF-8 wins over what the document or the server declares: a multi-byte UTF-8 sequence practically never
    occurs by accident in Latin-1 text, while feeds that declare one encoding and are written in another are common.
    Then come the declared encodings and, last, Windows-1252 (which reads any Latin-1 text).
    """
    for bom, codec in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                       (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                       (codecs.BOM_UTF16_BE, "utf-16")):  # fmt: skip
        if body.startswith(bom):
            try:
                text = body.decode(codec)
            except UnicodeDecodeError as e:
                raise SourceError(f"feed starts with a {codec} byte-order mark but is not {codec}: {e}") from e
            return _redeclare(text.encode("utf-8"))
    candidates = ["utf-8"]
    if m := _DECLARED_ENCODING.match(body.lstrip()):
        candidates.append(m[1].decode("ascii"))
    if charset := _charset(content_type):
        candidates.append(charset)
    candidates.append("windows-1252")
    for encoding in candidates:
        try:
            text = body.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
        return _redeclare(text.encode("utf-8"))
    # Only bytes Windows-1252 leaves undefined get here; Latin-1 maps them to control characters the XML parser
    # then refuses, which is the right outcome for a body this broken.
    return _redeclare(body.decode("latin-1").encode("utf-8"))


def _charset(content_type: str) -> str | None:
    for part in content_type.split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip("\"'")
    return None


def _redeclare(data: bytes) -> bytes:
    data = data.lstrip(b" \t\r\n")
    if _XML_DECLARATION.match(data):
        return _XML_DECLARATION.sub(b'<?xml version="1.0" encoding="utf-8"?>', data, count=1)
    return data


def _repair_entities(data: bytes) -> bytes:
    """The two entity mistakes feeds commonly make, repaired: HTML named entities (`&nbsp;`, `&pound;`) become
    numeric references, which XML understands without a DTD, and a bare `&` ("Health & Wellbeing") becomes `&amp;`.

    Neither repair can create markup. Documents declaring entities of their own are refused afterwards, so any
    other `&name;` is still an error.
    """

    def replace(m: re.Match[bytes]) -> bytes:
        name = m[1].decode("ascii")
        if name in _XML_PREDEFINED or name not in html.entities.name2codepoint:
            return m[0]
        return b"&#%d;" % html.entities.name2codepoint[name]

    return _BARE_AMPERSAND.sub(b"&amp;", _NAMED_ENTITY.sub(replace, data))


def _check_root(root: etree._Element) -> None:
    name = etree.QName(root).localname
    if name.lower() not in _FEED_ROOTS:
        raise SourceError(f"not an RSS or Atom feed: the document is <{name}>")
    if name == "rss" and not any(etree.QName(child).localname == "channel" for child in root if _is_element(child)):
        raise SourceError("RSS document has no <channel>")


def _is_element(node: Any) -> bool:
    return isinstance(node.tag, str)


# ---- entries --------------------------------------------------------------------------------------------------------


def _record(
    entry: Mapping[str, Any], *, kind: ItemKind, base_url: str, state: SourceState, position: int, feed_author: str
) -> Record:
    title = _text(entry.get("title_detail"), entry.get("title"), one_line=True)
    body = _entry_body(entry)
    link = _http_url(entry.get("link"), base_url)
    published = _entry_date(entry, "published", state.timezone) or _entry_date(entry, "updated", state.timezone)
    categories = [c for c in (clean_line(t.get("term") or t.get("label")) for t in entry.get("tags") or []) if c]
    committee = clean_line(str(state.options.get("committee") or "")) or (categories[0] if categories else None)

    status: str | None = None
    starts_at: datetime | None = None
    if kind is ItemKind.MEETING:
        title, cancelled = split_cancelled(title)
        status = "cancelled" if cancelled else None
        starts_at = _event_start(entry, state.timezone) or published
    if not title:
        title = body.split("\n", 1)[0][:200] if body else (link or "Untitled")

    external_id = clean_line(entry.get("id")) or link or _hash_id(title, entry, position)
    data = {
        "author": clean_line(entry.get("author")) or feed_author,
        "categories": categories,
        "enclosures": _enclosures(entry, base_url),
    }
    return Record(
        kind=kind,
        external_id=external_id,
        title=title,
        committee=committee,
        body=body,
        starts_at=starts_at,
        status=status,
        url=link,
        published_at=published,
        data=data,
    )


def _text(detail: Mapping[str, Any] | None, value: Any, *, one_line: bool = False) -> str:
    """Plain text of a feedparser text construct: HTML (as its `type` says, and only if it has tags) is flattened."""
    raw = detail.get("value", value) if detail else value
    if not isinstance(raw, str):
        return ""
    kind = str(detail.get("type") or "") if detail else ""
    text = html_to_text(raw) if ("html" in kind and _HTML_TAG.search(raw)) else clean_text(raw)
    return " ".join(text.split()) if one_line else text


def _entry_body(entry: Mapping[str, Any]) -> str:
    # Atom content is the full text and summary a teaser; RSS puts everything in description (the summary).
    best = ""
    for content in entry.get("content") or []:
        text = _text(content, content.get("value"))
        if len(text) > len(best):
            best = text
    summary = _text(entry.get("summary_detail"), entry.get("summary"))
    return best if len(best) >= len(summary) else summary


def _http_url(raw: Any, base_url: str) -> str | None:
    if not isinstance(raw, str) or not raw.strip():
        return None
    url = urljoin(base_url, raw.strip())
    return url if urlsplit(url).scheme in ("http", "https") else None


def _enclosures(entry: Mapping[str, Any], base_url: str) -> list[dict[str, str]]:
    found = []
    for link in entry.get("links") or []:
        if link.get("rel") != "enclosure":
            continue
        url = _http_url(link.get("href"), base_url)
        if url:
            found.append({"url": url, "type": clean_line(link.get("type"))})
    return found


def _hash_id(title: str, entry: Mapping[str, Any], position: int) -> str:
    date = entry.get("published") or entry.get("updated") or ""
    if not title and not date:
        # Nothing stable to go on: the position is the least bad identity left.
        return f"position:{position}"
    digest = hashlib.sha256(f"{title}\n{date}".encode()).hexdigest()[:32]
    return f"sha256:{digest}"


def _entry_date(entry: Mapping[str, Any], field: str, tz: str) -> datetime | None:
    raw = entry.get(field)
    if isinstance(raw, str) and raw.strip():
        parsed = parse_feed_date(raw, tz)
        if parsed is not None:
            return parsed
    struct = entry.get(f"{field}_parsed")
    if struct:
        # feedparser has normalised whatever format it recognised to UTC.
        return datetime(*struct[:6]).replace(tzinfo=UTC)
    return None


def _event_start(entry: Mapping[str, Any], tz: str) -> datetime | None:
    # The RSS event module (`ev:startdate`) says when a meeting is, as opposed to when the entry was written.
    raw = entry.get("ev_startdate")
    return parse_feed_date(raw, tz) if isinstance(raw, str) else None


def parse_feed_date(raw: str, tz: str) -> datetime | None:
    """An RFC 822 or ISO 8601 feed date in UTC; a date with no zone is wall-clock time in `tz`. None if unreadable."""
    text = " ".join(raw.split())
    if not text:
        return None
    try:
        dt = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        dt = None
    if dt is not None:
        if dt.tzinfo is not None:
            return dt.astimezone(UTC)
        # Python reads "-0000" (UTC, sender's zone unknown) as naive; and a zone name it does not know (BST) too.
        if text.endswith("-0000"):
            return dt.replace(tzinfo=UTC)
        return local_to_utc(dt, tz)
    try:
        iso = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if iso.tzinfo is not None:
        return iso.astimezone(UTC)
    return local_to_utc(iso, tz)
