"""Parsing helpers shared by the source adapters: HTML to text, UK dates and times, local time to UTC.

Untrusted XML is parsed by `safe_xml.parse_xml`.

Everything here is pure and raises on input it cannot read: `SourceError` for a response that is not the document it
claims to be, `ValueError` for a single value (a date, a time, a flag) that is not what it should be.
"""

from __future__ import annotations

import asyncio
import html
import re
import threading
from collections.abc import Awaitable, Iterable, Mapping
from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

from selectolax.lexbor import LexborHTMLParser

from notifier.sources.base import SourceError, SourceState
from notifier.zones import time_zone

T = TypeVar("T")

__all__ = [
    "absolute_url",
    "clean_line",
    "clean_text",
    "day_start_utc",
    "decode_html",
    "gather_limited",
    "html_to_text",
    "int_option",
    "iso_instant",
    "local_to_utc",
    "parse_bool",
    "parse_clock_time",
    "parse_uk_date",
]

# ASCII without control characters other than tab, line feed and carriage return (which are whitespace).
_PLAIN_ASCII = re.compile(r"[\t\n\r\x20-\x7e]*")
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\ufeff]")
_ENTITY = re.compile(r"&(?:#\d+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]{1,31});")
_MAX_UNESCAPE_ROUNDS = 5
_NUMERIC_REF = re.compile(r"&#(?:\d+|[xX][0-9a-fA-F]+);")


def _unescape_fully(s: str) -> str:
    # Councils' systems escape on the way in and again on the way out; `Chair&amp;#39;s` needs two rounds.
    for _ in range(_MAX_UNESCAPE_ROUNDS):
        if "&" not in s or not _ENTITY.search(s):
            break
        unescaped = html.unescape(s)
        if unescaped == s:
            break
        s = unescaped
    return s


def clean_text(s: str | None) -> str:
    """Tidy a text value: entities decoded (repeatedly), CRLF to LF, spaces collapsed, blank lines dropped.

    Line breaks survive (as single `\\n`); use `clean_line` for a value that must be one line. `None` gives "".
    """
    if s is None:
        return ""
    s = _unescape_fully(s)
    s = _without_controls(s.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " "))
    # str.split() splits on exactly the whitespace `\s` matches: each line's runs collapse, its ends go.
    return "\n".join([kept for line in s.split("\n") if (kept := " ".join(line.split()))])


def _without_controls(s: str) -> str:
    # Most text is ASCII without a control character, which a match tells in a third of a substitution's time.
    if s.isascii() and _PLAIN_ASCII.fullmatch(s):
        return s
    return _CONTROL_CHARS.sub("", s)


def clean_line(s: str | None) -> str:
    """Like `clean_text`, but all whitespace (line breaks too) collapses to single spaces: for titles and names."""
    if s is None:
        return ""
    if s.isascii() and "&" not in s and (s.isprintable() or _PLAIN_ASCII.fullmatch(s)):
        # Most values (ids, dates, flags, plain titles) have nothing to decode or drop: `clean_text` would only
        # collapse their whitespace, which this does on its own.
        return " ".join(s.split())
    return " ".join(clean_text(s).split())


_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "caption", "dd", "div", "dl", "dt", "fieldset", "figcaption",
        "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol",
        "p", "pre", "section", "table", "tbody", "tfoot", "thead", "tr", "ul",
    }
)  # fmt: skip
# In HTML a line break in the source is just a space; only the structure makes lines. Only the characters that
# clean_text would otherwise read as line breaks (or drop) are replaced here: it collapses the other whitespace.
_TEXT_BREAKS = re.compile(r"[\n\r\x0b\x0c\x1c-\x1f]")
_SEPARATORS = {tag: "\n" for tag in _BLOCK_TAGS} | {"td": " ", "th": " ", "br": "\n"}
# The structure's line breaks while `_flatten` gathers the text: a character no text node holds (the fragment has
# lost its NULs to _CONTROL_CHARS, and a reference to U+0000 parses as U+FFFD), so the text's own breaks can all be
# replaced in one pass at the end rather than node by node.
_LINE = "\x00"
_OPENING = {tag: _LINE if sep == "\n" else sep for tag, sep in _SEPARATORS.items()}
_CLOSING = {tag: sep for tag, sep in _OPENING.items() if tag != "br"}
# Not text a reader sees: code, metadata, and what is shown only to browsers without scripts, objects or frames.
_DROP_TAGS = frozenset(
    {"script", "style", "head", "title", "template", "noscript", "xml", "object", "iframe", "noframes"}
)
_ESCAPED_TAG = re.compile(r"&lt;\s*/?\s*[A-Za-z][\w:.-]*(?:\s[^<>]*?)?\s*/?&gt;")
_REAL_TAG = re.compile(r"<\s*/?\s*[A-Za-z!?][^<>]*>")
_PI = re.compile(r"<\?.*?\?>", re.S)
# Word's "downlevel-revealed" conditionals (`<![if !supportLists]>`) wrap real content: keep it, lose the markers.
_WORD_CONDITIONAL = re.compile(r"<!\[\s*(?:end)?if[^\]]*\]>", re.I)


def html_to_text(html_text: str) -> str:
    """Turn an HTML or Word-HTML fragment into plain text: blocks, `<br>` and `<li>` become line breaks.

    A fragment still escaped once (`&lt;p&gt;...`) is unescaped first. Scripts, styles and comments are dropped,
    entities decoded, whitespace collapsed and blank lines removed.
    """
    if not html_text or not html_text.strip():
        return ""
    text = html_text
    if _ESCAPED_TAG.search(text) and not _REAL_TAG.search(text):
        text = html.unescape(text)
    text = _without_controls(text)
    text = _PI.sub("", text)
    text = _WORD_CONDITIONAL.sub("", text)
    if not text.strip():
        return ""
    if _DOCUMENT_MARKUP.search(text):
        root = LexborHTMLParser(text).root
        return clean_text(_flatten(root)) if root is not None else ""
    try:
        return clean_text(_flatten(_fragments().parse(text)))
    except UnicodeEncodeError:  # lone surrogates: let the parser's own input handling deal with them
        root = LexborHTMLParser(text).root
        return clean_text(_flatten(root)) if root is not None else ""


# Markup that only means something to a whole document (what goes into <head>, a <noscript> read there, a doctype's
# parsing mode): a fragment with any of it is parsed as a document of its own.
_DOCUMENT_MARKUP = re.compile(r"<\s*/?\s*(?:html|head|body|frameset|frame|noscript|!doctype)\b", re.I)
# Fragments parsed into one document before it is replaced: a replaced fragment's nodes stay allocated (detached)
# until their document goes.
_FRAGMENTS_PER_DOCUMENT = 256


class _FragmentParser:
    """Parses HTML fragments into the body of one reused document.

    Creating a Lexbor document costs ten times as much as parsing a typical agenda fragment into one. Parsed as
    the body's content (the HTML fragment parsing algorithm, in the same quirks mode as a document without a
    doctype), a fragment without document-level markup gives the same body as parsing it as a whole document.
    """

    def __init__(self) -> None:
        self._body: Any = None
        self._parsed = _FRAGMENTS_PER_DOCUMENT

    def parse(self, text: str) -> Any:
        if self._parsed >= _FRAGMENTS_PER_DOCUMENT:
            self._body = LexborHTMLParser("").body
            self._parsed = 0
        self._parsed += 1
        self._body.inner_html = text
        return self._body


_thread = threading.local()


def _fragments() -> _FragmentParser:
    # One per thread: the document is mutated by every parse.
    parser: _FragmentParser | None = getattr(_thread, "fragments", None)
    if parser is None:
        parser = _thread.fragments = _FragmentParser()
    return parser


def _flatten(root: Any) -> str:
    """The text of an HTML tree with line breaks around blocks.

    Walks sibling and parent links rather than recursing, so no nesting depth (unclosed `<span>`s pile up fast in
    pasted Word HTML) overflows the stack or loses text. Every link read makes a node object, so each is read once
    and the way back up is counted rather than told by comparing nodes with the root.
    """
    parts: list[str] = []
    append = parts.append
    depth = 0  # elements gone into below the root
    node = root.child
    while node is not None:
        tag: str = node.tag or ""
        if tag == "-text":
            append(node.text_content or "")
        elif not tag.startswith("-") and tag not in _DROP_TAGS:
            append(_OPENING.get(tag, ""))
            child = node.child
            if child is not None:
                node = child
                depth += 1
                continue
            append(_CLOSING.get(tag, ""))
        following = node.next
        while following is None and depth:
            # Climbing out of elements we went into: close each one's block.
            node = node.parent
            depth -= 1
            append(_CLOSING.get(node.tag or "", ""))
            following = node.next
        node = following
    return _TEXT_BREAKS.sub(" ", "".join(parts)).replace(_LINE, "\n")


_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


def decode_html(body: bytes, content_type: str = "") -> str:
    """Decode an HTML page: BOM, then the Content-Type charset, then a `<meta>` charset, then UTF-8, then cp1252."""
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if body.startswith(bom):
            return body[len(bom) :].decode(codec, errors="replace")
    declared = re.search(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", content_type or "", re.I)
    meta = _CHARSET.search(body[:4096])
    for name in (declared[1] if declared else None, meta[1].decode("ascii") if meta else None):
        if not name:
            continue
        try:
            return body.decode(name, errors="replace")
        except LookupError:
            continue
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        # Windows-1252 is what a page without a charset usually means (and what browsers assume in the UK).
        return body.decode("cp1252", errors="replace")


def absolute_url(base: str, href: str) -> str:
    """`href` made absolute against `base` (a page URL, or a site root taken as a folder), spaces and other unsafe
    characters percent-encoded (`documents/s7942/polc2 - 23.09.2015.pdf`); existing escapes are kept."""
    # Only `&amp;` and numeric references: a full HTML unescape would turn "?a=1&copy=2" into "?a=1©=2".
    href = href.strip()
    for _ in range(_MAX_UNESCAPE_ROUNDS if "&" in href else 0):
        unescaped = _NUMERIC_REF.sub(lambda m: html.unescape(m[0]), href.replace("&amp;", "&"))
        if unescaped == href:
            break
        href = unescaped
    # Browsers drop tabs and line breaks inside URLs; so do we.
    if "\t" in href or "\r" in href or "\n" in href:
        href = _URL_BREAKS.sub("", href)
    href = href.strip()
    if not href:
        return base
    if _PLAIN_ABSOLUTE.fullmatch(href):
        return href
    joined = urljoin(_join_base(base), href)
    if not _URL_UNSAFE.search(joined):
        return joined
    # What `quote(joined, safe=_URL_SAFE)` gives, without Python code run for every byte of the URL.
    if joined.isascii():
        return joined.translate(_ASCII_ESCAPES)
    return _URL_UNSAFE.sub(_percent_encoded, joined)


_URL_BREAKS = re.compile(r"[\t\r\n]")
_URL_SAFE = ":/?#[]@!$&'()*+,;=%~"
# A character `quote` would escape with the safe characters above: a URL without any is returned as it is.
_URL_UNSAFE = re.compile(r"[^A-Za-z0-9_.~:/?#\[\]@!$&'()*+,;=%-]")
# An absolute http(s) URL that `urljoin` would give back unchanged whatever the base (a lower-case scheme, a plain
# host, no ";" in the path, no empty query, no fragment) and `quote` would leave alone: most links in an answer.
_PLAIN_ABSOLUTE = re.compile(
    r"https?://[A-Za-z0-9.-]+(?::[0-9]+)?(?:/[A-Za-z0-9_.~:/@!$&'()*+,=%-]*)?(?:\?[A-Za-z0-9_.~:/?@!$&'()*+,;=%-]+)?"
)
_ASCII_ESCAPES = {c: f"%{c:02X}" for c in range(128) if _URL_UNSAFE.match(chr(c))}


def _percent_encoded(m: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in m[0].encode("utf-8"))


@lru_cache(maxsize=256)
def _join_base(base: str) -> str:
    """`base` as urljoin should see it: a site root (no file name, no query) is a folder. Cached: an adapter joins
    every link of a page against the same base."""
    page = urlsplit(base)
    if not page.query and "." not in page.path.rsplit("/", 1)[-1]:
        return base.rstrip("/") + "/"
    return base


def local_to_utc(naive: datetime, tz: str) -> datetime:
    """A wall-clock time in zone `tz` (e.g. "Europe/London") to an aware UTC datetime.

    On the autumn change a wall time that happens twice (01:30 on the last Sunday of October) is read as the first
    one (summer time); on the spring change a wall time that never happens (01:30 on the last Sunday of March) is
    read with the offset in force before the change, so it lands an hour later on the clock (02:30 BST). An aware
    datetime is simply converted to UTC.
    """
    if naive.tzinfo is not None and naive.utcoffset() is not None:
        return naive.astimezone(UTC)
    return naive.replace(tzinfo=time_zone(tz), fold=0).astimezone(UTC)


@lru_cache(maxsize=512)
def day_start_utc(text: str, tz: str) -> datetime:
    """The start (midnight) of the UK-style date `text` in zone `tz`, in UTC; `ValueError` as `parse_uk_date`.
    Cached: a source's papers share a handful of publication dates."""
    return local_to_utc(datetime.combine(parse_uk_date(text), time(0)), tz)


def source_zone(state: SourceState) -> ZoneInfo:
    """The council's zone a source's local dates and times are read in; a bad name fails the poll."""
    try:
        return time_zone(state.timezone)
    except ValueError as e:
        raise SourceError(str(e)) from e


_MONTHS = {
    "jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3, "apr": 4, "april": 4, "may": 5,
    "jun": 6, "june": 6, "jul": 7, "july": 7, "aug": 8, "august": 8, "sep": 9, "sept": 9, "september": 9,
    "oct": 10, "october": 10, "nov": 11, "november": 11, "dec": 12, "december": 12,
}  # fmt: skip
_NUMERIC_DATE = re.compile(
    r"(\d{1,2})\s*[/.-]\s*(\d{1,2})\s*[/.-]\s*(\d{4}|\d{2})(?:[ T]+\d{1,2}[:.]\d{2}(?:[:.]\d{2})?)?"
)
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?")
_WEEKDAY = r"(?:(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)[a-z]*\.?,?\s+)?"
_DAY_MONTH_YEAR = re.compile(_WEEKDAY + r"(\d{1,2})(?:st|nd|rd|th)?\s+([a-z]+)\.?,?\s+(\d{4})", re.I)
_MONTH_DAY_YEAR = re.compile(_WEEKDAY + r"([a-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})", re.I)


def parse_uk_date(s: str) -> date:
    """A UK-style date: `22/10/2015`, `2/3/2025`, `22&#47;10&#47;2015`, `2025-10-22`, `4 December 2025`.

    Day comes before month in numeric dates (UK order); a two-digit year is in this century. A trailing time
    (`22/10/2015 00:00:00`) is ignored. Anything else raises `ValueError` quoting the text.
    """
    text = " ".join(_unescape_fully(s or "").replace("\xa0", " ").split())
    try:
        if m := _NUMERIC_DATE.fullmatch(text):
            year = int(m[3]) + (2000 if len(m[3]) == 2 else 0)
            return date(year, int(m[2]), int(m[1]))
        if m := _ISO_DATE.fullmatch(text):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if (m := _DAY_MONTH_YEAR.fullmatch(text)) and m[2].lower() in _MONTHS:
            return date(int(m[3]), _MONTHS[m[2].lower()], int(m[1]))
        if (m := _MONTH_DAY_YEAR.fullmatch(text)) and m[1].lower() in _MONTHS:
            return date(int(m[3]), _MONTHS[m[1].lower()], int(m[2]))
    except ValueError as e:
        raise ValueError(f"not a valid date: {s!r} ({e})") from e
    raise ValueError(f"not a date: {s!r}")


_CLOCK = re.compile(
    r"(\d{1,2})(?:\s*[:.]\s*(\d{2}))?(?:[:.](\d{2}))?\s*(?:([ap])\.?\s*m\.?|(noon|midday|hrs|hours|h))?"
)
_NOON = frozenset({"noon", "midday", "12 noon", "12noon", "12 midday", "12.00 noon", "12:00 noon", "12.00 midday"})
_MIDNIGHT = frozenset({"midnight", "12 midnight", "12.00 midnight", "12:00 midnight"})


def parse_clock_time(s: str) -> time | None:
    """A clock time as councils write it: `10.00 am`, `10:00am`, `2 pm`, `13:30`, `1330`, `noon`; blank gives None.

    Raises `ValueError` quoting the text for anything else, including impossible times (`13.00 pm`, `25:00`).
    """
    text = " ".join(_unescape_fully(s or "").replace("\xa0", " ").split()).lower()
    if not text:
        return None
    if text in _NOON:
        return time(12, 0)
    if text in _MIDNIGHT:
        return time(0, 0)
    if re.fullmatch(r"\d{4}", text):
        # 24-hour "1330", as some councils write it.
        text = f"{text[:2]}:{text[2:]}"
    m = _CLOCK.fullmatch(text)
    if not m:
        raise ValueError(f"not a time: {s!r}")
    hour = int(m[1])
    minute = int(m[2]) if m[2] else 0
    second = int(m[3]) if m[3] else 0
    meridiem, word = m[4], m[5]
    if meridiem:
        if not 1 <= hour <= 12 and not (hour == 0 and meridiem == "a"):
            raise ValueError(f"not a valid time: {s!r}")
        hour = hour % 12 + (12 if meridiem == "p" else 0)
    elif word in ("noon", "midday"):
        if hour != 12:
            raise ValueError(f"not a valid time: {s!r}")
    elif m[2] is None and word is None:
        # A bare number ("10") is not a time anybody should guess at.
        raise ValueError(f"not a time: {s!r}")
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"not a valid time: {s!r}")
    return time(hour, minute, second)


_TRUE = frozenset({"true", "1", "yes", "y", "on", "t", "-1"})
_FALSE = frozenset({"false", "0", "no", "n", "off", "f", ""})


def parse_bool(s: str | None) -> bool:
    """A flag as the source writes it: `True`/`False`, `true`, `1`/`0`, `yes`/`no`; blank or None is False.

    Raises `ValueError` on anything else rather than guessing.
    """
    text = (s or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"not a boolean: {s!r}")


def iso_instant(value: object) -> datetime | None:
    """An ISO 8601 timestamp as adapters keep it in bookkeeping data, made aware (naive is read as UTC); None when
    the value is missing or not a timestamp, which callers treat as "never"."""
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def int_option(options: Mapping[str, Any], name: str, default: int, *, low: int = 0, high: int = 3660) -> int:
    """A whole-number source option (`days_back`), as a number or a numeric string; `SourceError` when it is not
    one or is out of range, so a misconfigured source fails its polls with a message saying why."""
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise SourceError(f"option {name} must be a whole number, not {value!r}")
    try:
        number = int(value)
    except ValueError as e:
        raise SourceError(f"option {name} must be a whole number, not {value!r}") from e
    if not low <= number <= high:
        raise SourceError(f"option {name} must be from {low} to {high}, not {number}")
    return number


async def gather_limited(aws: Iterable[Awaitable[T]], *, limit: int) -> list[T]:
    """Await all of `aws`, at most `limit` at a time, results in order.

    `aws` is consumed lazily (pass a generator and each request is only made when a slot is free). The first
    failure cancels the rest and is raised as itself, not as an ExceptionGroup, so a `SourceError` from one
    request fails the poll with its own message.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    pending = enumerate(aws)
    results: dict[int, T] = {}

    async def worker() -> None:
        # Each worker takes the next awaitable when it is free; `next` on the shared iterator never yields.
        for index, aw in pending:
            results[index] = await aw

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(limit):
                group.create_task(worker())
    except BaseExceptionGroup as eg:
        raise _first_leaf(eg)  # noqa: B904 (the group only wraps it; its own cause and traceback are kept)
    finally:
        for _, aw in pending:
            # Never started (a failure or a cancellation came first): close them so they do not warn.
            if asyncio.iscoroutine(aw):
                aw.close()
    return [results[i] for i in range(len(results))]


def _first_leaf(eg: BaseExceptionGroup[BaseException]) -> BaseException:
    # Prefer a SourceError: it is the message an operator needs, the rest are usually its consequences.
    leaves: list[BaseException] = []
    stack: list[BaseException] = [eg]
    while stack:
        exc = stack.pop(0)
        if isinstance(exc, BaseExceptionGroup):
            stack[:0] = list(exc.exceptions)
        else:
            leaves.append(exc)
    return next((e for e in leaves if isinstance(e, SourceError)), leaves[0])
