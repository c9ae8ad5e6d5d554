"""The one tokeniser for documents and queries: fold, split into words, stem; and the tsvector built from it.

Folding: curly quotes and dashes become their ASCII forms, Unicode is decomposed (NFKD, so ligatures, full-width
and superscript characters become plain ones), accents and other combining marks are dropped, and case is folded
(`casefold`, so "Straße" is "strasse"). Soft hyphens and zero-width joiners vanish.

Splitting: a word is a run of letters and digits; everything else separates words. In detail:

- Apostrophes are dropped, joining what they separate: "council's" is `councils` (stem `council`), "O'Neill" is
  `oneill`, "parents'" is `parents`. Possessives therefore match their plain forms, and a name with an apostrophe
  is one word.
- Hyphens, slashes, dots and all other punctuation separate words: "mental-health" is `mental health`,
  "2025/26" is `2025 26`, "U.K." is `u k`.
- Letters and digits are separate words: "Q2" is `q 2`, "covid19" and "COVID-19" are both `covid 19`, "S106" is
  `s 106`. Numbers are digit runs, so "1,000" is `1 000` and "3.5" is `3 5`; a query written the same way matches.
- A word longer than MAX_WORD_CHARS characters is cut to its first MAX_WORD_CHARS (the same for documents and
  queries, so they still meet, and no lexeme can reach PostgreSQL's 2 KB limit).
- No stopwords are removed: "health and wellbeing" must match as a phrase, and "and" is a word when quoted.

Each word keeps its folded form (`raw`) and its English Snowball stem (`stem`); positions count words from 1.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import snowballstemmer

MAX_WORD_CHARS = 100
# PostgreSQL's tsvector limits: positions above 16383 are stored as 16383, a lexeme keeps at most 256 positions
# (the lowest ones), and the lexeme strings together must stay under 1 MB. We apply the same limits ourselves so
# the in-memory matcher and SQL see exactly the same document.
MAX_POSITION = 16383
MAX_POSITIONS_PER_LEXEME = 256
MAX_LEXEME_BYTES = 1_000_000
# Marks the unstemmed form of a word in a tsvector; a stem never starts with it (words are letters and digits).
RAW_MARK = "="

_TRANSLATE = str.maketrans(
    {
        **dict.fromkeys("\u2018\u2019\u201a\u201b\u02bc\u2032\uff07", "'"),
        **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\uff02", '"'),
        **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\ufe58\ufe63\uff0d", "-"),
        **dict.fromkeys("\u00ad\u200c\u200d\u2060\ufeff"),
    }
)
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")
# Letters and digits (`\w` without `_`).
_WORD = re.compile(r"[^\W_]+")
_LETTERS_OR_DIGITS = re.compile(r"\d+|[^\W\d_]+")
# For ASCII text, the same split done by bytes.translate: letters and digits stay, apostrophes go, the rest is space.
_ASCII_SEPARATE = bytes(c if chr(c).isalnum() and c < 128 else 32 for c in range(256))


class Token(NamedTuple):
    """One word of a text: its folded form, its stem, and its 1-based position."""

    raw: str
    stem: str
    pos: int


@dataclass(frozen=True, slots=True)
class Postings:
    """Where each stem and each folded word occurs, within PostgreSQL's tsvector limits.

    Positions are clamped to MAX_POSITION, each lexeme keeps its first MAX_POSITIONS_PER_LEXEME positions, and
    once the distinct lexemes reach MAX_LEXEME_BYTES any further new word is left out (`truncated` is then true).
    """

    stems: dict[str, list[int]]
    raws: dict[str, list[int]]
    truncated: bool = False


def _strip_marks(run: re.Match[str]) -> str:
    return "".join(c for c in run.group() if not unicodedata.category(c).startswith("M"))


def fold(text: str) -> str:
    """Fold case, accents, compatibility forms, curly quotes and dashes; see the module docstring."""
    if text.isascii():
        return text.lower()
    text = unicodedata.normalize("NFKD", text.translate(_TRANSLATE))
    text = _NON_ASCII_RUN.sub(_strip_marks, text).casefold()
    if not text.isascii():
        # Case folding can produce characters that decompose further ("ℌ" → "H" only after NFKD).
        text = _NON_ASCII_RUN.sub(_strip_marks, unicodedata.normalize("NFKD", text)).casefold()
    return text


_local = threading.local()


def _stemmer() -> snowballstemmer.stemmer:
    # Snowball stemmers keep state while they work: one per thread.
    s = getattr(_local, "stemmer", None)
    if s is None:
        s = _local.stemmer = snowballstemmer.stemmer("english")
    return s


@lru_cache(maxsize=1 << 17)
def stem(word: str) -> str:
    """The English Snowball stem of a folded word (digits are their own stem)."""
    if word.isdigit():
        return word
    result: str = _stemmer().stemWord(word)
    return result


@lru_cache(maxsize=1 << 17)
def _split(word: str) -> tuple[tuple[str, str], ...]:
    """A run of folded letters and digits → its (raw, stem) tokens."""
    parts = [word] if word.isalpha() or word.isdecimal() else _LETTERS_OR_DIGITS.findall(word)
    return tuple((p[:MAX_WORD_CHARS], stem(p[:MAX_WORD_CHARS])) for p in parts)


def _runs(text: str) -> list[str]:
    """The runs of letters and digits of a text, folded, apostrophes dropped."""
    folded = fold(text)
    if folded.isascii():
        return folded.encode("ascii").translate(_ASCII_SEPARATE, b"'").decode("ascii").split()
    return _WORD.findall(folded.replace("'", ""))


def words(text: str) -> list[tuple[str, str]]:
    """The (raw, stem) pairs of a text in order, without positions."""
    out: list[tuple[str, str]] = []
    for run in _runs(text):
        out.extend(_split(run))
    return out


def tokenize(text: str) -> list[Token]:
    """Split a text into folded, stemmed, numbered words; see the module docstring for the rules."""
    return [Token(raw, st, i) for i, (raw, st) in enumerate(words(text), 1)]


def _lexeme_bytes(lexeme: str) -> int:
    return len(lexeme) if lexeme.isascii() else len(lexeme.encode())


def postings(text: str) -> Postings:
    """The positions of every stem and every folded word of a text, within PostgreSQL's limits."""
    return postings_of(words(text))


def postings_of(pairs: list[tuple[str, str]]) -> Postings:
    """`postings` for (raw, stem) pairs already split from a text."""
    if len(pairs) <= MAX_POSITIONS_PER_LEXEME and _UTF8_BOUND * sum(len(r) + len(s) + 1 for r, s in pairs) <= (
        MAX_LEXEME_BYTES
    ):
        return _short_postings(pairs)
    return _long_postings(pairs)


def _long_postings(pairs: list[tuple[str, str]]) -> Postings:
    """`postings_of` for a long text (a meeting's whole agenda): usually only the positions a lexeme may keep bite,
    so the postings are made by the short path, capped, and checked against the byte limit afterwards, rather than
    checking every limit at every word. The same postings as `_bounded_postings`: with fewer words than
    MAX_POSITION no position is clamped, a lexeme's first positions are the ones kept, and lexemes that fit the
    byte limit together are all kept, whatever their order."""
    if len(pairs) >= MAX_POSITION:
        return _bounded_postings(pairs)
    p = _short_postings(pairs)
    for table in (p.stems, p.raws):
        for positions in table.values():
            if len(positions) > MAX_POSITIONS_PER_LEXEME:
                del positions[MAX_POSITIONS_PER_LEXEME:]
    if lexeme_bytes(p.stems, p.raws) > MAX_LEXEME_BYTES:
        return _bounded_postings(pairs)
    return p


def _bounded_postings(pairs: list[tuple[str, str]]) -> Postings:
    """`postings_of` with every limit checked, for long texts."""
    stems: dict[str, list[int]] = {}
    raws: dict[str, list[int]] = {}
    budget = MAX_LEXEME_BYTES
    truncated = False
    for i, (raw, st) in enumerate(pairs, 1):
        pos = i if i < MAX_POSITION else MAX_POSITION
        for table, lexeme, cost in ((stems, st, 0), (raws, raw, 1)):
            seen = table.get(lexeme)
            if seen is None:
                size = _lexeme_bytes(lexeme) + cost
                if size > budget:
                    truncated = True
                    continue
                budget -= size
                table[lexeme] = [pos]
            elif len(seen) < MAX_POSITIONS_PER_LEXEME and seen[-1] != pos:
                seen.append(pos)
    return Postings(stems, raws, truncated)


# The most bytes one character takes in UTF-8: a text whose characters are this many times under a limit is under it.
_UTF8_BOUND = 4


def _short_postings(pairs: list[tuple[str, str]]) -> Postings:
    """`postings_of` for most texts (items, papers, agendas): too few words for any of PostgreSQL's limits to bite,
    so every position is kept as it is, without the checks."""
    stems: dict[str, list[int]] = {}
    raws: dict[str, list[int]] = {}
    stem_at, raw_at = stems.get, raws.get
    for i, (raw, st) in enumerate(pairs, 1):
        seen = stem_at(st)
        if seen is None:
            stems[st] = [i]
        else:
            seen.append(i)
        seen = raw_at(raw)
        if seen is None:
            raws[raw] = [i]
        else:
            seen.append(i)
    return Postings(stems, raws)


def lexeme_bytes(stems: Iterable[str], raws: Collection[str]) -> int:
    """The size PostgreSQL counts for these distinct stems and raw words (with their marks) in a tsvector."""
    return sum(map(_lexeme_bytes, stems)) + sum(map(_lexeme_bytes, raws)) + len(raws)


def quote_lexeme(lexeme: str) -> str:
    """A lexeme quoted for tsvector and tsquery input."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def tsvector_literal(text: str) -> str:
    """A PostgreSQL tsvector input literal for a text: each stem, and each folded word marked with RAW_MARK.

    `'dementia':3 '=dementias':3` lets SQL match stems (`'dementia'`), phrases (`'mental' <-> 'health'`) and
    prefixes of the unstemmed word (`'=child':*`). What PostgreSQL would drop or refuse is left out here first (see
    `Postings`), so a cast with `::tsvector` never fails and agrees with the in-memory matcher.
    """
    return tsvector_literal_of(words(text))


def tsvector_literal_of(pairs: list[tuple[str, str]]) -> str:
    """`tsvector_literal` of a text whose (raw, stem) pairs are already split (`words`): the words of a text are
    those of its lines one after another, so a caller writing many texts that share lines (a meeting's agenda is
    its items' texts) splits each line once."""
    p = postings_of(pairs)
    # Words are letters and digits, so a lexeme needs no escaping; `quote_lexeme` stays for what might.
    number = _POSITION_TEXT.__getitem__
    parts = [
        ("'" + s if s.isalnum() else quote_lexeme(s)[:-1]) + "':" + ",".join(map(number, pos))
        for s, pos in p.stems.items()
    ]
    parts.extend(
        ("'=" + r if r.isalnum() else quote_lexeme(RAW_MARK + r)[:-1]) + "':" + ",".join(map(number, pos))
        for r, pos in p.raws.items()
    )
    return " ".join(parts)


# The text of every position a tsvector can hold, made once rather than for every position of every document.
_POSITION_TEXT = [str(i) for i in range(MAX_POSITION + 1)]
