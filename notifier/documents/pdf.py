"""A PDF page's text with its paragraphs, read with PDFium (pypdfium2).

PDFium gives a page's text in reading order with one `\\r\\n` per line, but no paragraphs. The line geometry gives
them back: each line's first character has a box, and a vertical gap of more than about half a line between two
lines (or a jump back up the page, to a new column or a footer printed out of order) starts a new paragraph.

PDFium also joins a word hyphenated across a line break itself, leaving U+FFFE where the hyphen and the break were
("recom\\ufffemendation"). `join_hyphenated` decides per document whether that hyphen was only typographic.

This module does not decide what a failure means: PDFium's errors (`pypdfium2.PdfiumError`) reach the caller.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

__all__ = ["join_hyphenated", "page_has_objects", "page_text"]

# A gap between lines larger than this share of the taller line's height is a paragraph break. Single-spaced text
# has gaps of 0.05-0.5 of a line (measured on the council agendas in tests/fixtures/reports); a blank line or the
# space after a heading is 0.7 and up.
_PARAGRAPH_GAP = 0.6
# A page where even the tightest tenth of the gaps is wider than that is set double-spaced: there, a paragraph
# break is a gap clearly wider than the usual one.
_DOUBLE_SPACED_FACTOR = 1.5
_MIN_LINES_FOR_SPACING = 8
# A line that starts this many line heights above the previous one's top is a new column or a block placed out of
# order; moving back up less than that is part of the same line (a table row, a page number on the right).
_JUMP_UP = 1.5
_HYPHEN_MARK = "\ufffe"


@dataclass(frozen=True, slots=True)
class _Line:
    text: str
    bottom: float | None
    top: float | None


def page_text(page: pdfium.PdfPage) -> str:
    """The text of one page: lines separated by `\\n`, paragraphs by a blank line; U+FFFE marks a hyphenated join.

    The text is not yet tidied (see `notifier.documents.text.tidy`).
    """
    textpage = page.get_textpage()
    try:
        text = textpage.get_text_range()
        if not text.strip():
            return ""
        return _paragraphs(_lines(textpage, text))
    finally:
        textpage.close()


def page_has_objects(page: pdfium.PdfPage) -> bool:
    """Whether a page draws anything at all (an image, a path, text): a page without text but with objects is a scan
    or text turned into outlines; a page without objects is blank."""
    return bool(pdfium_c.FPDFPage_CountObjects(page.raw) > 0)


def _lines(textpage: pdfium.PdfTextPage, text: str) -> list[_Line]:
    """Each non-blank line of `text` with the vertical extent of its first visible character."""
    lines: list[_Line] = []
    # Offsets into PDFium's text are in UTF-16 code units: a character outside the BMP counts twice.
    offset = 0
    for line in text.split("\r\n"):
        visible = len(line) - len(line.lstrip())
        if visible < len(line):
            bottom = top = None
            lead = len(line[:visible].encode("utf-16-le")) // 2
            index = pdfium_c.FPDFText_GetCharIndexFromTextIndex(textpage.raw, offset + lead)
            if index >= 0:
                _left, bottom, _right, top = textpage.get_charbox(index, loose=True)
            lines.append(_Line(line, bottom, top))
        offset += len(line.encode("utf-16-le")) // 2 + 2
    return lines


def _paragraphs(lines: list[_Line]) -> str:
    gaps = _gaps(lines)
    threshold = _PARAGRAPH_GAP
    positive = sorted(g for g in gaps.values() if g >= 0)
    if len(positive) >= _MIN_LINES_FOR_SPACING:
        tightest = statistics.quantiles(positive, n=10)[0]
        threshold = max(threshold, tightest * _DOUBLE_SPACED_FACTOR)
    parts: list[str] = []
    for i, line in enumerate(lines):
        gap = gaps.get(i)
        if parts and gap is not None and (gap > threshold or gap < -_JUMP_UP):
            parts.append("\n\n")
        elif parts:
            parts.append("\n")
        parts.append(line.text)
    return "".join(parts)


def _gaps(lines: list[_Line]) -> dict[int, float]:
    """The gap above each line that has a box, down from the previous line with one, in line heights."""
    gaps: dict[int, float] = {}
    previous: _Line | None = None
    for i, line in enumerate(lines):
        if line.top is None or line.bottom is None:
            continue
        if previous is not None and previous.top is not None and previous.bottom is not None:
            height = max(previous.top - previous.bottom, line.top - line.bottom)
            if height > 0:
                gaps[i] = (previous.bottom - line.top) / height
        previous = line
    return gaps


# The left part with any hyphenated words before it: "not-to-" / "exceed" ends a compound, and keeps its hyphen.
_HYPHENATED = re.compile(r"((?:\w+-)*\w+)" + _HYPHEN_MARK + r"(\w+)")
_COMPOUND = re.compile(r"\b(\w+-\w+)\b")


def join_hyphenated(pages: list[str]) -> list[str]:
    """Resolve PDFium's hyphenation marks across a document's pages.

    A word split between two lower-case letters ("recom-" / "mendation") is joined, unless the document also spells
    the hyphenated form on one line ("well-being"), which shows the hyphen belongs to the word, or the split ends a
    compound ("not-to-" / "exceed"). Anything else ("COVID-" / "19", "2022-" / "23", "Anti-" / "Social") keeps its
    hyphen.
    """
    if not any(_HYPHEN_MARK in page for page in pages):
        return pages
    compounds = {match.lower() for page in pages for match in _COMPOUND.findall(page)}

    def resolve(match: re.Match[str]) -> str:
        left, right = match[1], match[2]
        if "-" not in left and left[-1].islower() and right[0].islower() and f"{left}-{right}".lower() not in compounds:
            return left + right
        return f"{left}-{right}"

    return [_HYPHENATED.sub(resolve, page).replace(_HYPHEN_MARK, "-") for page in pages]
