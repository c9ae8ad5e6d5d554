"""Page texts → content lines (page headers, footers and numbering left out) → paragraphs.

Text comes from PDFs (lines wrapped at the page's width, no blank lines between paragraphs), from Word and HTML
(a paragraph per line, or paragraphs separated by blank lines) and from scrapers (a paragraph per line). The
paragraphs are rebuilt from the lines: a blank line, a heading, a list entry or the end of a sentence ends one;
in wrapped text a line well short of the page's width ends one too, and a full line that ends a sentence does not.

A paragraph's text is its lines joined with spaces and folded, so it is a verbatim run of the page text (modulo
whitespace) unless a header or footer was left out between two of its lines; `sentences.GAP` marks that place.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from notifier.documents.sentences import GAP, LEADING_MARKER, ends_sentence, fold, is_abbreviation

EDGE_LINES = 5
_DIGITS = re.compile(r"\d+")
_PAGE_NUMBER = re.compile(
    r"^(?:page\s*\d+(?:\s*(?:of|/)\s*\d+)?|\d+\s*(?:of|/)\s*\d+|-?\s*\d{1,3}\s*-?|\d+(?:\.\d+)*\.?)$", re.I
)
# Legistar file numbers with the item number, glued on after it as pypdf reads them ("2017-034633.") or before it
# on a line of their own as PDFium does ("33. 2017-0346"): agenda numbering, not text.
_FILE_NUMBER = re.compile(r"^(?:\d{4}-\d{4,}\.?|\d{1,3}\.\s*\d{4}-\d{4,})$")
_WORD = re.compile(r"[^\W\d_][\w'’]*")
_LIST_LINK = re.compile(r"(?:,|\band|\bor)$")


class Kind(Enum):
    """How a line stands in the flow of paragraphs."""

    TEXT = 0
    ENTRY = 1  # a list entry: starts a paragraph, unless it carries on a wrapped sentence ("(10) years of ...")
    BULLET = 4  # a bulleted entry: always starts a paragraph
    START = 2  # starts a paragraph (an inline heading "Recommendation: ...", "SUBJECT: ...")
    ALONE = 3  # a paragraph by itself (a heading, a mover or seconder line, a vote)


@dataclass(frozen=True, slots=True)
class Line:
    """A content line: its text (stripped), its page (1-based), and what lies between it and the line before."""

    text: str
    page: int
    blank_before: bool
    gap_before: bool


@dataclass(frozen=True, slots=True)
class Paragraph:
    """Folded text of consecutive lines; `starts` gives the offset and page of each line in it."""

    text: str
    starts: tuple[tuple[int, int], ...]
    kind: Kind

    @property
    def page(self) -> int:
        return self.starts[0][1]

    def page_at(self, offset: int) -> int:
        page = self.starts[0][1]
        for start, line_page in self.starts:
            if start > offset:
                break
            page = line_page
        return page


def _signature(text: str) -> str:
    return _DIGITS.sub("#", fold(text).lower())


def repeated_edges(pages: Sequence[Sequence[str]], keep: Callable[[str], bool]) -> set[str]:
    """Signatures (digits as #) of lines found near the top or bottom of most pages: running headers and footers."""
    with_text = [lines for lines in pages if lines]
    if len(with_text) < 2:
        return set()
    seen: Counter[str] = Counter()
    for lines in with_text:
        edges = {_signature(t) for t in (*lines[:EDGE_LINES], *lines[-EDGE_LINES:])}
        seen.update(edges)
    need = max(2, (len(with_text) + 1) // 2)
    return {s for s, n in seen.items() if n >= need and len(s) > 2 and keep(s)}


def content_lines(pages: Sequence[str], keep: Callable[[str], bool]) -> list[Line]:
    """The document's lines without blank lines, page numbers, item numbers and running headers and footers.

    `keep(text)` protects lines that must never count as a running header (the section headings).
    """
    split = [[line.strip() for line in page.splitlines()] for page in pages]
    repeated = repeated_edges([[t for t in lines if t] for lines in split], keep)
    out: list[Line] = []
    blank = gap = False
    for page_number, lines in enumerate(split, 1):
        for text in lines:
            if not text:
                blank = True
            elif _PAGE_NUMBER.match(text) or _FILE_NUMBER.match(text) or _signature(text) in repeated:
                # Blank lines before a header or footer set it apart from the page (PDFium gives them; pypdf does
                # not): only a blank line after it says the next line starts a paragraph.
                gap = True
                blank = False
            else:
                out.append(Line(text, page_number, blank, gap))
                blank = gap = False
    return out


def is_wrapped(lines: Sequence[Line]) -> bool:
    """Whether the lines are wrapped at a width (PDF text) rather than one paragraph per line.

    The sign is sentences carried on to the next line: a line that starts in lower case right after another.
    """
    carried = sum(
        1
        for a, b in itertools.pairwise(lines)
        if not b.blank_before and b.text[:1].islower() and b.text[1:2].isalpha() and not ends_sentence(a.text)
    )
    return carried >= max(3, len(lines) // 10)


def widths(lines: Sequence[Line]) -> dict[int, int]:
    """The usual length of a full line on each page (the 80th percentile)."""
    by_page: dict[int, list[int]] = {}
    for line in lines:
        by_page.setdefault(line.page, []).append(len(line.text))
    return {page: sorted(n)[len(n) * 4 // 5] for page, n in by_page.items()}


def heading_like(text: str) -> bool:
    """A short line whose significant words are all capitalised, without a sentence's punctuation at its end."""
    if len(text) > 60 or text.startswith(("That ", "THAT ")) or text.rstrip()[-1:] in ".;,":
        return False
    words = [w for w in _WORD.findall(text) if len(w) > 3 or w[0].isupper()]
    return 0 < len(words) <= 8 and all(w[0].isupper() for w in words)


def _breaks(a: Line, b: Line, kind_a: Kind, kind_b: Kind, wrapped: bool, short: int) -> bool:
    if kind_b in (Kind.START, Kind.ALONE) or kind_a is Kind.ALONE:
        return True
    ended = ends_sentence(a.text)
    if not wrapped:
        # One paragraph a line, but a line can be broken inside a sentence ("... of the Committee\nNo. 2025(11) of
        # 2 December 2025.", "... for the period ending\n31 August 2025, ..."): only such a line carries on.
        return kind_b in (Kind.ENTRY, Kind.BULLET) or ended or heading_like(a.text) or not _carried_on(b.text)
    if kind_b is Kind.BULLET:
        return True
    is_short = len(a.text) < short
    if kind_b is Kind.ENTRY:
        # "... a minimum of ten\n(10) years of experience" carries on; "...\n2.Schedule a hearing" does not.
        after = LEADING_MARKER.sub("", b.text)[:1]
        return ended or is_short or bool(_LIST_LINK.search(a.text)) or not after.islower()
    # Capitals are wide: a line of them is short in characters though full on the page.
    carried = not ended and (b.text[:1].islower() or (a.text.isupper() and b.text.isupper()))
    if is_short and not carried:
        return True
    # A heading is a short line; and a colon introduces what follows, so a capitalised line after it carries on
    # ("Act of 2006:\nMarket-Based ...").
    if carried or not heading_like(b.text) or len(b.text) >= short:
        return False
    return (ended and not a.text.endswith(":")) or is_short


def _carried_on(text: str) -> bool:
    first = text.split(" ", 1)[0]
    return first[:1].islower() or first[:1].isdigit() or is_abbreviation(first)


def _separator(a: Line, b: Line, kind_a: Kind, kind_b: Kind, wrapped: bool, short: int) -> str | None:
    """What joins line b to line a in one paragraph: a space, a GAP, or None when b starts a new paragraph."""
    if b.blank_before:
        # PDFium's text has a blank line wherever lines stand further apart than usual, even inside a sentence
        # ("2) Authorize" / "the Mayor and City Clerk to ..."): a sentence carried on in lower case is not a new
        # paragraph.
        carried = kind_b is Kind.TEXT and kind_a is not Kind.ALONE and b.text[:1].islower()
        return " " if carried and wrapped and not ends_sentence(a.text) and not a.text.endswith(":") else None
    if b.gap_before:
        carried = kind_b is Kind.TEXT and kind_a is not Kind.ALONE and b.text[:1].islower()
        return f" {GAP} " if carried and not ends_sentence(a.text) else None
    return None if _breaks(a, b, kind_a, kind_b, wrapped, short) else " "


def paragraphs(lines: Sequence[Line], classify: Callable[[str], Kind]) -> list[Paragraph]:
    """Group content lines into paragraphs (see the module docstring for the rules)."""
    wrapped = is_wrapped(lines)
    short = {page: width * 13 // 20 for page, width in widths(lines).items()}
    kinds = [classify(line.text) for line in lines]
    out: list[Paragraph] = []
    text, starts, kind = "", list[tuple[int, int]](), Kind.TEXT
    for i, line in enumerate(lines):
        sep = _separator(lines[i - 1], line, kinds[i - 1], kinds[i], wrapped, short[lines[i - 1].page]) if i else None
        if sep is None:
            if starts:
                out.append(Paragraph(text, tuple(starts), kind))
            text, starts, kind = "", [], kinds[i]
        else:
            text += sep
        starts.append((len(text), line.page))
        text += fold(line.text)
    if starts:
        out.append(Paragraph(text, tuple(starts), kind))
    return out
