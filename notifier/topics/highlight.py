"""Matched terms as snippets: highlighting them in a text, and an excerpt around the first.

Pure. Matched terms are highlighted with the matcher's own tokeniser (`notifier.topics.text.tokenize`), so a word is
highlighted exactly when the matcher would match it: by stem (`dementia` highlights "Dementias"), as a run of
consecutive words (`"mental health"`), or by prefix of the folded word (`child*` highlights "Children's"). HTML
uses `<mark>`; plain text wraps the matched words in asterisks (`*dementia*`), the usual plain-text emphasis, which
keeps names in their own case.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from notifier.topics.text import tokenize

EXCERPT_CHARS = 220

# A word as the matcher's tokeniser sees one, found in the original text so that its position is known.
_SURFACE = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")


@dataclass(frozen=True, slots=True)
class _Term:
    stems: tuple[str, ...]  # words matched by stem, in order
    prefix: str | None  # a last word matched by prefix of its folded form (`child*`)


def _parse_term(term: str) -> _Term | None:
    text = term.strip().strip('"\u201c\u201d').strip()
    is_prefix = text.endswith("*")
    tokens = tokenize(text.rstrip("*"))
    if not tokens:
        return None
    if is_prefix:
        return _Term(tuple(t.stem for t in tokens[:-1]), tokens[-1].raw)
    return _Term(tuple(t.stem for t in tokens), None)


def _match_spans(text: str, terms: Sequence[str]) -> list[tuple[int, int]]:
    """Where in `text` the terms match, as merged (start, end) character spans."""
    parsed = [p for p in map(_parse_term, terms) if p is not None]
    if not parsed or not text:
        return []
    # (raw, stem, start, end): each token with the span of the word it came from.
    words = [(t.raw, t.stem, m.start(), m.end()) for m in _SURFACE.finditer(text) for t in tokenize(m.group())]
    spans = []
    for term in parsed:
        n = len(term.stems) + (term.prefix is not None)
        for i in range(len(words) - n + 1):
            window = words[i : i + n]
            if any(word[1] != stem for word, stem in zip(window, term.stems, strict=False)):
                continue
            if term.prefix is not None and not window[-1][0].startswith(term.prefix):
                continue
            spans.append((window[0][2], window[-1][3]))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def highlight_html(text: str, terms: Sequence[str]) -> Markup:
    """`text` escaped for HTML, with each match of `terms` in `<mark>`."""
    out = []
    pos = 0
    for start, end in _match_spans(text, terms):
        out.append(escape(text[pos:start]))
        out.append(Markup("<mark>%s</mark>") % text[start:end])
        pos = end
    out.append(escape(text[pos:]))
    return Markup("").join(out)


def highlight_text(text: str, terms: Sequence[str]) -> str:
    """`text` with each match of `terms` wrapped in asterisks, for the plain-text part."""
    out = []
    pos = 0
    for start, end in _match_spans(text, terms):
        out.append(f"{text[pos:start]}*{text[start:end]}*")
        pos = end
    out.append(text[pos:])
    return "".join(out)


def make_excerpt(text: str, terms: Sequence[str], *, limit: int = EXCERPT_CHARS) -> str:
    """About `limit` characters of `text` around the first match of `terms` (the start when none matches),
    cut at word boundaries, with "…" where text was left out."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    spans = _match_spans(text, terms)
    return _excerpt(text, spans[0][0] if spans else None, limit)


def _excerpt(text: str, first: int | None, limit: int) -> str:
    """`make_excerpt` of a whitespace-normalised text whose first match starts at `first` (None: no match)."""
    if len(text) <= limit:
        return text
    start = max(0, first - limit // 3) if first is not None else 0
    if start:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < (first if first is not None else len(text)) else start
    end = start + limit
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > start else end
    return ("\u2026" if start else "") + text[start:end].strip() + ("\u2026" if end < len(text) else "")


SNIPPET_CHARS = 160


class Page:
    """A page of text tokenised once, to find where each of many terms first matches it (a document's snippets).

    Matches exactly as `highlight_text` and `make_excerpt` do: by stem, as a run of words, or by prefix. Where each
    stem is and where each folded word first is are indexed, so a term costs a lookup rather than a pass.
    """

    __slots__ = ("_at", "_first_raw", "_raws", "text", "words")

    def __init__(self, text: str) -> None:
        self.text = " ".join(text.split())
        # (raw, stem, start, end) of each token.
        self.words = [(t.raw, t.stem, m.start(), m.end()) for m in _SURFACE.finditer(self.text)
                      for t in tokenize(m.group())]  # fmt: skip
        self._at: dict[str, list[int]] = {}
        self._first_raw: dict[str, int] = {}
        for i, word in enumerate(self.words):
            self._at.setdefault(word[1], []).append(i)
            self._first_raw.setdefault(word[0], i)
        self._raws = sorted(self._first_raw)

    def first_match(self, term: str | _Term | None) -> int | None:
        """Where in `text` the first match of `term` starts, if it matches."""
        parsed = _parse_term(term) if isinstance(term, str) else term
        if parsed is None:
            return None
        if not parsed.stems:
            return self._first_prefixed(parsed.prefix or "")
        n = len(parsed.stems) + (parsed.prefix is not None)
        for i in self._at.get(parsed.stems[0], ()):
            window = self.words[i : i + n]
            if len(window) < n:
                break
            if any(word[1] != stem for word, stem in zip(window, parsed.stems, strict=False)):
                continue
            if parsed.prefix is not None and not window[-1][0].startswith(parsed.prefix):
                continue
            return window[0][2]
        return None

    def _first_prefixed(self, prefix: str) -> int | None:
        """Where the first word starting with `prefix` starts."""
        first = None
        for k in range(bisect_left(self._raws, prefix), len(self._raws)):
            raw = self._raws[k]
            if not raw.startswith(prefix):
                break
            i = self._first_raw[raw]
            first = i if first is None else min(first, i)
        return None if first is None else self.words[first][2]

    def excerpt(self, first: int, *, limit: int = SNIPPET_CHARS) -> str:
        """About `limit` characters around the match starting at `first`, as `make_excerpt` cuts them."""
        return _excerpt(self.text, first, limit)


def find_snippet(pages: Sequence[Page], term: str, *, limit: int = SNIPPET_CHARS) -> tuple[int, str] | None:
    """The first page (numbered from 1) where `term` matches, with an excerpt around the match; None if none does."""
    parsed = _parse_term(term)
    if parsed is None:
        return None
    for number, page in enumerate(pages, 1):
        first = page.first_match(parsed)
        if first is not None:
            return number, page.excerpt(first, limit=limit)
    return None
