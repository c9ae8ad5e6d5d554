"""Sentences and list entries of a paragraph, found by offsets so that every piece is a slice of the paragraph.

A paragraph here is whitespace-folded text (runs of whitespace are one space). A unit is a sentence, except that a
list entry ("A.", "1.", "(a)", "(ii)", "1)", "a.", a bullet) always starts a new unit: at the start of the
paragraph, or inside it after a semicolon, colon or full stop and a space ("...; and, 2) Adopt ..."). Nothing is
reworded: a unit is `text[start:end]`, stripped, and only a bullet glyph in front of it is left out.
"""

from __future__ import annotations

import itertools
import re
from typing import NamedTuple

MAX_CHARS = 400
ELLIPSIS = "…"
# Marks where a paragraph was interrupted (a page footer and header, an item number) in joined text: a unit that
# runs across it is cut there, so that what is kept stays a verbatim run of the page text.
GAP = "\ue000"

_WS = re.compile(r"\s+")
# Words whose full stop does not end a sentence (compared lower-cased, without the stop).
ABBREVIATIONS = frozenset(
    {
        "no", "nos", "cr", "cllr", "clr", "mr", "mrs", "ms", "dr", "st", "inc", "ltd", "pty", "co", "corp", "vs", "etc",
        "approx", "sec", "sect", "ord", "gov", "dept", "ave", "blvd", "rd", "mt", "excl", "incl", "e.g", "i.e", "cf",
        "fig", "para", "paras", "ref", "est", "jr", "sr", "assoc", "univ", "govt", "qld", "nsw", "vic", "cal", "calif"
    }
)
BULLETS = "•·▪◦‣∙●○■□➢➤►▶§*\uf0b7\uf0a7\uf0d8\uf076\uf0fc-–—"
# A list marker: "A.", "1.", "12.", "(a)", "(iv)", "1)", "a)", "iii.", "1.1" is not one (a section number).
_MARKER = r"(?:\(\s*(?:[0-9]{1,2}|[a-zA-Z]|[ivxIVX]{1,4})\s*\)|(?:[0-9]{1,2}|[a-zA-Z]|[ivx]{1,4}|[IVX]{1,4})[.)](?!\d))"
MARKER = re.compile(_MARKER)
# A marker opening a line or paragraph: followed by a space, or glued to a capital ("1.Conduct", "A.Review").
LEADING_MARKER = re.compile(rf"^(?:{_MARKER}\s+(?=\S)|(?:[0-9]{{1,2}}|[A-Za-z]|[IVX]{{1,4}})\.(?=[A-Z]))")
# Dashes and "o" are bullets only before a space; the other glyphs also when glued to the text.
LEADING_BULLET = re.compile(rf"^[{re.escape(BULLETS)}o](?=\s)\s*|^[{re.escape(BULLETS[:-3])}]\s*")
# A marker inside a paragraph, after ";", ":" or "." and a space (and an optional "and,"/"or,").
_INLINE = re.compile(rf"(?<=[;:.]) (?:(?:and|or),? )?(?={_MARKER} \S)")
_SENTENCE_END = re.compile(r"(?<=[.?!])[\"”’)]? (?=[\"“‘(]?[A-Z0-9])")
_WORD_BEFORE = re.compile(r"(\S+)$")


class Unit(NamedTuple):
    """One sentence or list entry: its text and where it starts in the paragraph."""

    text: str
    start: int


def fold(text: str) -> str:
    """Collapse runs of whitespace to one space and strip the ends."""
    return _WS.sub(" ", text).strip()


def is_abbreviation(word: str) -> bool:
    """Whether a word ending in a full stop is an abbreviation or an initial rather than a sentence's end."""
    core = word.rstrip(".").lstrip("(\"“‘").lower()
    if not core:
        return False
    if core in ABBREVIATIONS:
        return True
    # Initials ("K. Bares", "U.S.", "P.M.") and single letters.
    return (len(core) == 1 and core.isalpha()) or bool(re.fullmatch(r"(?:[a-z]\.)+[a-z]?", core))


def ends_sentence(text: str) -> bool:
    """Whether a text ends a sentence: a full stop (not after an abbreviation), "?", "!", or ":" / ";"."""
    text = text.rstrip(" \"”’)")
    if not text or text[-1] not in ".?!:;":
        return False
    if text[-1] != ".":
        return True
    match = _WORD_BEFORE.search(text)
    return match is None or not is_abbreviation(match.group(1))


def _boundaries(text: str) -> list[int]:
    cuts: set[int] = set()
    for m in (*_INLINE.finditer(text), *_SENTENCE_END.finditer(text)):
        word = _WORD_BEFORE.search(text, 0, m.start())
        before = word.group(1).rstrip("\"”’)") if word else ""
        if before.endswith(".") and is_abbreviation(before):
            continue
        cuts.add(m.end())
    return sorted(cuts)


def split_units(text: str) -> list[Unit]:
    """The units of a folded paragraph, in order, each a stripped slice of it (bullet glyphs left out)."""
    units: list[Unit] = []
    edges = [0, *_boundaries(text), len(text)]
    for start, end in itertools.pairwise(edges):
        piece = text[start:end]
        bullet = LEADING_BULLET.match(piece)
        skip = bullet.end() if bullet else 0
        body = piece[skip:].strip()
        if body:
            units.append(Unit(body, start + skip + (len(piece[skip:]) - len(piece[skip:].lstrip()))))
    return units


def cut(text: str, limit: int = MAX_CHARS) -> str:
    """A unit cut to `limit` characters at a word boundary with an ellipsis, and at a GAP (see above)."""
    gap = text.find(GAP)
    if gap >= 0:
        return text[:gap].rstrip() + ELLIPSIS
    if len(text) <= limit:
        return text
    head = text[:limit]
    space = head.rfind(" ")
    if space > limit // 2:
        head = head[:space]
    return head.rstrip(" ,;:") + ELLIPSIS


def strip_marker(text: str) -> str:
    """A unit without its leading list marker or bullet (for comparing entries, not for showing them)."""
    text = LEADING_BULLET.sub("", text)
    return LEADING_MARKER.sub("", text).strip()


_MARKER_PARTS = re.compile(r"^(\(?)\s*([0-9]{1,2}|[A-Za-z]|[ivxIVX]{1,4})\s*([.)])")
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8, "ix": 9, "x": 10}


def marker(text: str) -> tuple[str, str] | None:
    """The list marker a unit starts with, as (shape, label): "(a)" is ("()", "a"), "1." is (".", "1")."""
    match = _MARKER_PARTS.match(text) if LEADING_MARKER.match(text) else None
    return (match.group(1) + match.group(3), match.group(2)) if match else None


def follows(previous: tuple[str, str], following: tuple[str, str]) -> bool:
    """Whether one list marker comes next after another: 1. → 2., (a) → (b), B. → C., (iii) → (iv)."""
    (shape, a), (next_shape, b) = previous, following
    if shape != next_shape:
        return False
    if a.isdigit() and b.isdigit():
        return int(b) == int(a) + 1
    if len(a) == 1 and len(b) == 1 and ord(b) == ord(a) + 1:
        return True
    return a.lower() in _ROMAN and b.lower() in _ROMAN and _ROMAN[b.lower()] == _ROMAN[a.lower()] + 1
