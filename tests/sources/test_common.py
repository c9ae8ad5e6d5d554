"""Tests for the shared parsing helpers in notifier.sources.common (untrusted XML: test_safe_xml.py)."""

from __future__ import annotations

import asyncio
import contextlib
import html as html_module
import re
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from lxml import etree
from selectolax.lexbor import LexborHTMLParser

from notifier.sources import common
from notifier.sources.base import SourceError
from notifier.sources.common import (
    absolute_url,
    clean_line,
    clean_text,
    day_start_utc,
    decode_html,
    gather_limited,
    html_to_text,
    int_option,
    iso_instant,
    local_to_utc,
    parse_bool,
    parse_clock_time,
    parse_uk_date,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "moderngov"


# ---- text ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("", ""),
        ("   \n ", ""),
        ("<p>&nbsp;</p>", ""),
        ("<br>", ""),
        ("<!-- only a comment -->", ""),
        ("plain text & more", "plain text & more"),
        ("<p>One</p><p>Two</p>", "One\nTwo"),
        ("<p>hard\nwrapped   line</p>", "hard wrapped line"),
        ("line one<br>line two<br/>line three", "line one\nline two\nline three"),
        ("<ul><li>first</li><li>second</li></ul>", "first\nsecond"),
        ("<p>a&nbsp;&nbsp;b &amp; c &ndash; d &#39;e&#39;</p>", "a b & c – d 'e'"),
        ("<p>Hi<script>alert(1)</script> there</p><style>p {color: red}</style>", "Hi there"),
        ("<table><tr><td>Item</td><td>Cost</td></tr><tr><td>A</td><td>1</td></tr></table>", "Item Cost\nA 1"),
        ("&lt;p&gt;Escaped &amp;amp; once&lt;/p&gt;&lt;p&gt;Second&lt;/p&gt;", "Escaped & once\nSecond"),
        ('&lt;div class="WordSection1"&gt;&lt;p class="MsoNormal"&gt;Text&lt;/p&gt;&lt;/div&gt;', "Text"),
        ("Use &lt; and &gt; in maths", "Use < and > in maths"),
        (
            "<p class=MsoListParagraph><![if !supportLists]><span>1.<span>&nbsp;&nbsp; </span></span><![endif]>"
            "Budget<o:p></o:p></p>",
            "1. Budget",
        ),
        (
            "<!--[if gte mso 9]><xml><w:WordDocument><w:View>Normal</w:View></w:WordDocument></xml><![endif]-->"
            "<p class=MsoNormal>Body</p>",
            "Body",
        ),
        ('<?xml version="1.0" encoding="utf-8"?><p>With a declaration</p>', "With a declaration"),
        ("<p>Title: Chair&amp;#39;s report</p>", "Title: Chair's report"),
        ("<div><h2>Heading</h2>text after</div>tail", "Heading\ntext after\ntail"),
        ("bad\x00control\x0bchars", "badcontrolchars"),
    ],
)
def test_html_to_text_cases(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_html_to_text_recorded_agenda_text() -> None:
    from lxml import etree

    root = etree.fromstring((FIXTURES / "meeting_with_minutes.xml").read_bytes())
    agenda = root.find(".//agendaitem/agendatext")
    assert agenda is not None
    assert html_to_text(agenda.text or "") == (
        "To approve as a correct record the minutes of the meeting held on 25 November 2025."
    )


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>/&;#ap bdiv!-[]x\n\"'=")) | st.characters(), max_size=300))
def test_html_to_text_arbitrary_markup_gives_clean_text(html: str) -> None:
    text = html_to_text(html)
    assert text == text.strip()
    assert "\n\n" not in text


def test_html_to_text_deep_nesting_does_not_overflow() -> None:
    html = "<div>" * 5000 + "deep" + "</div>" * 5000
    assert html_to_text(html) == "deep"


def _as_whole_document(html_text: str) -> str:
    """`html_to_text` as it was before fragments were parsed into a reused document: each one a document."""
    text = html_text
    if common._ESCAPED_TAG.search(text) and not common._REAL_TAG.search(text):
        text = html_module.unescape(text)
    text = common._PI.sub("", common._CONTROL_CHARS.sub("", text))
    text = common._WORD_CONDITIONAL.sub("", text)
    root = LexborHTMLParser(text).root if text.strip() else None
    return _reference_clean_text(_reference_flatten(root)) if root is not None else ""


def _reference_closing(tag: str) -> str:
    return "" if tag == "br" else common._SEPARATORS.get(tag, "")


def _reference_flatten(root: Any) -> str:
    """The tree walk as first written (every whitespace run of a text node a space)."""
    parts: list[str] = []
    node = root.child
    while node is not None:
        tag: str = node.tag or ""
        if tag == "-text":
            parts.append(re.sub(r"\s+", " ", node.text_content or ""))
        elif not tag.startswith("-") and tag not in common._DROP_TAGS:
            parts.append(common._SEPARATORS.get(tag, ""))
            if node.child is not None:
                node = node.child
                continue
            parts.append(_reference_closing(tag))
        while node.next is None:
            node = node.parent
            if node is None or node.mem_id == root.mem_id:
                return "".join(parts)
            parts.append(_reference_closing(node.tag or ""))
        node = node.next
    return "".join(parts)


# Fragments whose place in a document differs from their place in a body (head content, table parts, raw text).
FRAGMENTS = [
    "<p>one</p><p>two</p>", "<li>one<li>two", "<table><tr><td>a<td>b</table>after", "<p>x<table><p>y</table>",
    "<tr><td>a</td></tr>", "<td>x</td><td>y</td>", "<caption>c</caption>x", "<col>a", "<tbody><tr><td>z",
    "<style>p {}</style>text", "<title>T</title>body", "<script>var a</script>b", "<template>t</template>u",
    "<meta charset=utf-8>hello", "<link rel=x>hi", "<base href=x>hi", "<noscript>n</noscript>z",
    "<textarea>t<p>x</textarea>", "<xmp><b>x</b></xmp>", "<plaintext><b>x", "<!-- c -->t", "<b><p>x</b>y</p>",
    "<svg><title>s</title></svg>q", "<select><option>a<option>b</select>", "  lead<br>next", "<option>o",
    "<html><head><title>t</title><style>x</style></head><body><p>Body</p></body></html>",
    "<!DOCTYPE html><p>a<table><tr><td>b</td></tr></table>", "<frameset><frame></frameset>", "<head>h</head>t",
    "<body><p>only body</p>", "<header>kept</header>",
    "<noframes>Please use a frames browser</noframes><p>Item 1: Budget</p>", "<noframes><p>Hidden &amp; text</p>",
]


@pytest.mark.parametrize("html", FRAGMENTS)
def test_html_to_text_fragments_read_as_whole_documents(html: str) -> None:
    assert html_to_text(html) == _as_whole_document(html)


def test_html_to_text_drops_noframes_wherever_it_is() -> None:
    # alternative content for browsers without frames, not text of the page, before or after the body's text
    assert html_to_text("<noframes>Use a frames browser</noframes><p>Item 1</p>") == "Item 1"
    assert html_to_text("<p>Item 1</p><noframes>Use a frames browser</noframes>") == "Item 1"


def test_html_to_text_fixture_texts_read_as_whole_documents() -> None:
    texts = []
    for path in sorted(FIXTURES.parent.rglob("*")):
        if path.suffix in {".xml", ".html", ".htm"}:
            texts.append(path.read_text("utf-8", errors="replace"))
            with contextlib.suppress(etree.XMLSyntaxError):
                root = etree.fromstring(path.read_bytes(), etree.XMLParser(resolve_entities=False, recover=True))
                texts.extend(el.text for el in root.iter() if isinstance(el.tag, str) and el.text and el.text.strip())
    assert len(texts) > 100
    assert [html_to_text(t) for t in texts] == [_as_whole_document(t) for t in texts]


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>a&#0;b</p>c", "a\ufffdb\nc"),
        ("a&#x0;b<br>c&#10;d", "a\ufffdb\nc d"),
        ("<table><tr><td>x</td><td>&#0;</td></tr></table>", "x \ufffd"),
        ("<p>one&#11;two&#28;three</p>", "one two three"),
    ],
)
def test_html_to_text_references_to_nul_and_breaks_are_text_not_structure(html: str, text: str) -> None:
    # The tree walk marks the structure's line breaks with a NUL, which no text node can hold.
    assert html_to_text(html) == text


def test_html_to_text_many_fragments_in_a_row() -> None:
    # More fragments than one reused document takes: each is read on its own, nothing of the last one leaks in.
    for n in range(common._FRAGMENTS_PER_DOCUMENT * 2 + 3):
        assert html_to_text(f"<p>item {n}<span>unclosed") == f"item {n}unclosed"


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("<>/&;#ap bdivtrlhe!-[]x\n\r\t\x0c\x1c\x85\xa0\u2028\"'=")) | st.characters(),
        max_size=200,
    )
)
def test_html_to_text_arbitrary_markup_reads_as_a_whole_document(html: str) -> None:
    assert html_to_text(html) == _as_whole_document(html)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (None, ""),
        ("", ""),
        ("  Audit   Committee \t", "Audit Committee"),
        ("Chair&amp;#39;s Announcements", "Chair's Announcements"),
        ("Chair&amp;amp;#39;s", "Chair's"),
        ("Fish &amp; Chips", "Fish & Chips"),
        ("Fish & Chips", "Fish & Chips"),
        ("R&D budget", "R&D budget"),
        ("line one\r\nline two\rline three", "line one\nline two\nline three"),
        ("para one\r\n\r\n\r\npara two", "para one\npara two"),
        ("a\xa0b\u200bc\ufeff", "a bc"),
        ("\x00nul\x07", "nul"),
    ],
)
def test_clean_text_cases(raw: str | None, clean: str) -> None:
    assert clean_text(raw) == clean


def test_clean_line_collapses_line_breaks() -> None:
    assert clean_line("Health and\r\n  Wellbeing\nBoard ") == "Health and Wellbeing Board"


def _reference_clean_text(s: str) -> str:
    """clean_text as first written: whitespace runs collapsed by a regular expression."""
    s = common._unescape_fully(s)
    s = s.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
    s = common._CONTROL_CHARS.sub("", s)
    lines = (re.sub(r"[^\S\n]+", " ", line).strip() for line in s.split("\n"))
    return "\n".join(line for line in lines if line)


@settings(max_examples=500, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("ab &;#39\t\r\n\x0b\x0c\x1c\x1f\x85\xa0\u2028\u2029\u3000\u200b"))
        | st.characters(),
        max_size=60,
    )
)
def test_clean_text_collapses_the_whitespace_a_regex_would(raw: str) -> None:
    assert clean_text(raw) == _reference_clean_text(raw)


@settings(max_examples=500, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("ab &;#39\t\r\n\x0b\x0c\x00\x85\xa0\u200b")) | st.characters(), max_size=60)
)
def test_clean_line_is_clean_text_on_one_line(raw: str) -> None:
    # clean_line skips clean_text for plain values; the result must be the same.
    assert clean_line(raw) == " ".join(clean_text(raw).split())


@given(st.text(max_size=200))
def test_clean_text_is_idempotent(s: str) -> None:
    once = clean_text(s)
    assert clean_text(once) == once or "&" in once


# ---- dates and times -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("naive", "utc"),
    [
        (datetime(2026, 1, 13, 10, 0), datetime(2026, 1, 13, 10, 0, tzinfo=UTC)),  # GMT
        (datetime(2026, 7, 2, 14, 0), datetime(2026, 7, 2, 13, 0, tzinfo=UTC)),  # BST
        (datetime(2026, 3, 29, 0, 30), datetime(2026, 3, 29, 0, 30, tzinfo=UTC)),  # before the spring change
        (datetime(2026, 3, 29, 1, 30), datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),  # does not exist: 02:30 BST
        (datetime(2026, 3, 29, 2, 0), datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),  # first BST minute
        (datetime(2026, 10, 25, 1, 30), datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),  # happens twice: the first
        (datetime(2026, 10, 25, 2, 0), datetime(2026, 10, 25, 2, 0, tzinfo=UTC)),  # back on GMT
        (datetime(2026, 10, 24, 23, 59), datetime(2026, 10, 24, 22, 59, tzinfo=UTC)),
    ],
)
def test_local_to_utc_london(naive: datetime, utc: datetime) -> None:
    result = local_to_utc(naive, "Europe/London")
    assert result == utc
    assert result.tzinfo == UTC


def test_local_to_utc_other_zone() -> None:
    assert local_to_utc(datetime(2026, 7, 1, 9, 0), "America/Los_Angeles") == datetime(2026, 7, 1, 16, 0, tzinfo=UTC)


def test_local_to_utc_aware_input_is_converted() -> None:
    aware = datetime(2026, 7, 1, 10, 0, tzinfo=timezone(timedelta(hours=2)))
    assert local_to_utc(aware, "Europe/London") == datetime(2026, 7, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../../etc/passwd"])
def test_local_to_utc_unknown_zone(zone: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        local_to_utc(datetime(2026, 1, 1), zone)


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("22/10/2015", date(2015, 10, 22)),
        ("2/3/2025", date(2025, 3, 2)),
        (" 02/03/2025 ", date(2025, 3, 2)),
        ("22&#47;10&#47;2015", date(2015, 10, 22)),
        ("22&amp;#47;10&amp;#47;2015", date(2015, 10, 22)),
        ("22/10/2015 00:00:00", date(2015, 10, 22)),
        ("22.10.2015", date(2015, 10, 22)),
        ("22-10-2015", date(2015, 10, 22)),
        ("22/10/15", date(2015, 10, 22)),
        ("2025-12-04", date(2025, 12, 4)),
        ("2025-12-04T10:00:00", date(2025, 12, 4)),
        ("2025-12-04T10:00:00Z", date(2025, 12, 4)),
        ("4 December 2025", date(2025, 12, 4)),
        ("4th December 2025", date(2025, 12, 4)),
        ("Thursday, 4 December 2025", date(2025, 12, 4)),
        ("Thu 4 Dec 2025", date(2025, 12, 4)),
        ("4 Sept 2025", date(2025, 9, 4)),
        ("December 4, 2025", date(2025, 12, 4)),
        ("29/02/2024", date(2024, 2, 29)),
    ],
)
def test_parse_uk_date_formats(text: str, day: date) -> None:
    assert parse_uk_date(text) == day


@pytest.mark.parametrize("text", ["", "  ", "soon", "31/02/2025", "13/13/2025", "4 Smarch 2025", "2025/12/04x", "12"])
def test_parse_uk_date_garbage(text: str) -> None:
    with pytest.raises(ValueError) as e:
        parse_uk_date(text)
    assert repr(text) in str(e.value)


@pytest.mark.parametrize(
    ("text", "clock"),
    [
        ("10.00 am", time(10, 0)),
        ("10:00am", time(10, 0)),
        ("10.30am", time(10, 30)),
        ("10.30 a.m.", time(10, 30)),
        ("2 pm", time(14, 0)),
        ("2pm", time(14, 0)),
        ("2.15 PM", time(14, 15)),
        ("12.30 pm", time(12, 30)),
        ("12 am", time(0, 0)),
        ("12.15 am", time(0, 15)),
        ("13:30", time(13, 30)),
        ("09:05", time(9, 5)),
        ("13.30", time(13, 30)),
        ("1330", time(13, 30)),
        ("18:00:00", time(18, 0)),
        ("18:00 hrs", time(18, 0)),
        ("noon", time(12, 0)),
        ("12 noon", time(12, 0)),
        ("Midday", time(12, 0)),
        ("midnight", time(0, 0)),
        ("", None),
        ("   ", None),
        ("\n      ", None),
    ],
)
def test_parse_clock_time_formats(text: str, clock: time | None) -> None:
    assert parse_clock_time(text) == clock


@pytest.mark.parametrize("text", ["TBC", "10", "13 pm", "25:00", "10:61", "0 pm", "after Cabinet", "10.00 xm"])
def test_parse_clock_time_garbage(text: str) -> None:
    with pytest.raises(ValueError) as e:
        parse_clock_time(text)
    assert repr(text) in str(e.value)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("True", True),
        ("true", True),
        (" TRUE ", True),
        ("1", True),
        ("Yes", True),
        ("False", False),
        ("false", False),
        ("0", False),
        ("No", False),
        ("", False),
        ("\n   ", False),
        (None, False),
    ],
)
def test_parse_bool_values(text: str | None, value: bool) -> None:
    assert parse_bool(text) is value


def test_parse_bool_garbage() -> None:
    with pytest.raises(ValueError, match="not a boolean: 'maybe'"):
        parse_bool("maybe")


# ---- URLs and decoding -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "href", "url"),
    [
        (
            "https://democracy.leics.gov.uk",
            "mgConvert2PDF.aspx?ID=60860",
            "https://democracy.leics.gov.uk/mgConvert2PDF.aspx?ID=60860",
        ),
        (
            "https://democracy.leics.gov.uk",
            "https://democracy.manchester.gov.uk/mgConvert2PDF.aspx?ID=60860",
            "https://democracy.manchester.gov.uk/mgConvert2PDF.aspx?ID=60860",
        ),
        (
            "https://www.example.gov.uk/democracy",
            "documents/s7942/polc2 - 23.09.2015.pdf",
            "https://www.example.gov.uk/democracy/documents/s7942/polc2%20-%2023.09.2015.pdf",
        ),
        ("https://x.gov.uk/", "/documents/a%20b.pdf", "https://x.gov.uk/documents/a%20b.pdf"),
        ("https://x.gov.uk", "&#32;a.pdf&#32;", "https://x.gov.uk/a.pdf"),
        ("https://x.gov.uk", "a\t.pdf\r\n", "https://x.gov.uk/a.pdf"),
        (
            "https://x.gov.uk/democracy/ieDecisionDetails.aspx?ID=1",
            "ieListDocuments.aspx?CId=151&amp;MID=4832",
            "https://x.gov.uk/democracy/ieListDocuments.aspx?CId=151&MID=4832",
        ),
        ("https://x.gov.uk", "page.aspx?a=1&copy=2", "https://x.gov.uk/page.aspx?a=1&copy=2"),
        ("https://x.gov.uk", " documents/s1/\r\nfile.pdf ", "https://x.gov.uk/documents/s1/file.pdf"),
    ],
)
def test_absolute_url_cases(base: str, href: str, url: str) -> None:
    assert absolute_url(base, href) == url


_URL_PIECES = ["https://", "http://", "HTTP://", "x.gov.uk", "X.gov.uk", ":8080", ":", "/", "//", "..", "?", "#", ";",
               "=", "&", "&copy", " ", "%20", "é", "a", "[", "]", "@", "~", "'", "-", "\u2028"]  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(["https://x.gov.uk", "https://x.gov.uk/mg/", "http://x.gov.uk/a/page.aspx?b=1", "ftp://h/p"]),
    st.lists(st.sampled_from(_URL_PIECES), min_size=1, max_size=10).map("".join),
)
def test_absolute_url_is_urljoin_then_quote(base: str, href: str) -> None:
    # Plain absolute links are given back without urljoin, and only unsafe characters go through the escaping: the
    # same URLs as joining and quoting every link.
    href = href.strip()
    assume(href)
    try:
        expected = quote(urljoin(common._join_base(base), href), safe=common._URL_SAFE)
    except ValueError:
        with pytest.raises(ValueError):
            absolute_url(base, href)
        return
    assert absolute_url(base, href) == expected


def test_day_start_utc() -> None:
    assert day_start_utc("24/09/2026", "Europe/London") == datetime(2026, 9, 23, 23, 0, tzinfo=UTC)
    assert day_start_utc("4 December 2025", "Europe/London") == datetime(2025, 12, 4, 0, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="not a date"):
        day_start_utc("soon", "Europe/London")


@pytest.mark.parametrize(
    ("body", "content_type", "text"),
    [
        ("café".encode(), "", "café"),
        ("café".encode("cp1252"), "", "café"),
        ("café".encode("latin-1"), "text/html; charset=iso-8859-1", "café"),
        (b'<meta charset="windows-1252"><p>\x93hi\x94</p>', "", '<meta charset="windows-1252"><p>\u201chi\u201d</p>'),
        (b"\xef\xbb\xbfcaf\xc3\xa9", "text/html; charset=iso-8859-1", "café"),
        ("café".encode(), "text/html; charset=bogus", "café"),
    ],
)
def test_decode_html_cases(body: bytes, content_type: str, text: str) -> None:
    assert decode_html(body, content_type) == text


# ---- bookkeeping and options -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "instant"),
    [
        ("2026-09-10T09:00:00+00:00", datetime(2026, 9, 10, 9, 0, tzinfo=UTC)),
        ("2026-09-10T10:00:00+01:00", datetime(2026, 9, 10, 9, 0, tzinfo=UTC)),
        ("2026-09-10T09:00:00", datetime(2026, 9, 10, 9, 0, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
        (None, None),
        (1757494800, None),
    ],
)
def test_iso_instant_values(value: object, instant: datetime | None) -> None:
    assert iso_instant(value) == instant


@pytest.mark.parametrize(
    ("options", "value"),
    [({}, 30), ({"days_back": 7}, 7), ({"days_back": "7"}, 7), ({"days_back": 0}, 0), ({"days_back": 3660}, 3660)],
)
def test_int_option_values(options: dict[str, object], value: int) -> None:
    assert int_option(options, "days_back", 30) == value


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (-1, "option days_back must be from 0 to 3660, not -1"),
        (3661, "option days_back must be from 0 to 3660, not 3661"),
        ("a week", "option days_back must be a whole number, not 'a week'"),
        (True, "option days_back must be a whole number, not True"),
        (7.5, "option days_back must be a whole number, not 7.5"),
        (None, "option days_back must be a whole number, not None"),
    ],
)
def test_int_option_refuses(raw: object, message: str) -> None:
    with pytest.raises(SourceError) as e:
        int_option({"days_back": raw}, "days_back", 30)
    assert str(e.value) == message


# ---- gather_limited --------------------------------------------------------------------------------------------------


async def test_gather_limited_keeps_order_and_limit() -> None:
    running = 0
    peak = 0

    async def job(n: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001 * (10 - n))
        running -= 1
        return n * n

    assert await gather_limited((job(n) for n in range(10)), limit=3) == [n * n for n in range(10)]
    assert peak == 3


async def test_gather_limited_raises_the_first_error_itself() -> None:
    finished: list[int] = []

    async def job(n: int) -> int:
        if n == 2:
            raise SourceError("committee 2 failed")
        await asyncio.sleep(0.05)
        finished.append(n)
        return n

    with pytest.raises(SourceError, match=r"^committee 2 failed$"):
        await gather_limited((job(n) for n in range(6)), limit=4)
    assert finished == []


async def test_gather_limited_empty() -> None:
    assert await gather_limited([], limit=4) == []


def test_gather_limited_rejects_bad_limit() -> None:
    with pytest.raises(ValueError, match="limit must be at least 1"):
        asyncio.run(gather_limited([], limit=0))
