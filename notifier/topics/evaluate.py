"""One query, or one whole filter, against one event: the definition of a match.

A `Document` is built once per event from its text. `evaluate` and `matched_terms` hold one query against one
document; `filter_matches` holds one `Filter` (the query and the structured fields) against one event's
`EventFacts`. The percolator (topics.index) files filters so that an event meets only a few candidates, and must
give the same answers as `filter_matches` run over every filter.

A document also names every index key it fires (`Document.keys`): its stems, `PREFIX_MARK` and the first 3 to 6
letters of each of its words (for prefixes), and `ANY`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Final

from notifier.topics.parse import MIN_PREFIX_CHARS, And, MatchAll, Not, Or, Phrase, Prefix, Query, Word
from notifier.topics.text import (
    MAX_LEXEME_BYTES,
    MAX_POSITION,
    MAX_POSITIONS_PER_LEXEME,
    lexeme_bytes,
    postings_of,
    words,
)

PREFIX_MARK: Final = "\x01"
# A prefix is filed under its first (up to) PREFIX_KEY_CHARS characters, and a document fires the keys of each of
# its words' first MIN_PREFIX_CHARS to PREFIX_KEY_CHARS characters: a prefix that short is matched by its key alone.
PREFIX_KEY_CHARS: Final = 6
ANY: Final = ""  # the key (and the scope) that every event has
EMPTY: Final[frozenset[str]] = frozenset()  # CPython makes a new empty frozenset each time: share one
FILTER_SETS: Final = ("councils", "regions", "committees", "kinds", "event_types")


class Document:
    """The searchable form of one event's text: its stems, its folded words, and (when a phrase asks) positions.

    Built with the same tokeniser and limits as `tsvector_literal`, so matching here and in SQL agree.
    """

    __slots__ = ("_pairs", "_positions", "keys", "prefixes", "raws", "stems")

    def __init__(self, text: str) -> None:
        pairs = words(text)
        stems = set(map(itemgetter(1), pairs))
        raws = set(map(itemgetter(0), pairs))
        self._positions: dict[str, frozenset[int]] | None = None
        if len(pairs) >= MAX_POSITION or lexeme_bytes(stems, raws) > MAX_LEXEME_BYTES:
            # Near PostgreSQL's limits: take the exact, clamped and truncated postings at once.
            p = postings_of(pairs)
            stems, raws = set(p.stems), set(p.raws)
            self._positions = {st: frozenset(pos) for st, pos in p.stems.items()}
        self._pairs = pairs
        self.stems: frozenset[str] = frozenset(stems)
        self.raws: list[str] = sorted(raws)
        prefixes: set[str] = set()
        for n in range(MIN_PREFIX_CHARS, PREFIX_KEY_CHARS + 1):
            prefixes.update([PREFIX_MARK + r[:n] for r in raws if len(r) >= n])
        # The prefix keys apart as well: the percolator looks them up only where prefixes are filed.
        self.prefixes: frozenset[str] = frozenset(prefixes)
        # Every index key this document can fire, for the percolator's lookups.
        self.keys: frozenset[str] = self.stems | self.prefixes | {ANY}

    @classmethod
    def from_text(cls, text: str) -> Document:
        """The document of a text: an event's title, body, committee and council name joined."""
        return cls(text)

    def has_prefix(self, prefix: str) -> bool:
        """Whether a folded, unstemmed word of the text starts with prefix."""
        i = bisect_left(self.raws, prefix)
        return i < len(self.raws) and self.raws[i].startswith(prefix)

    def has_phrase(self, stems: tuple[str, ...]) -> bool:
        """Whether the text has words with these stems at consecutive positions."""
        positions = self._positions
        if positions is None:
            found: dict[str, list[int]] = {}
            for i, st in enumerate(map(itemgetter(1), self._pairs), 1):
                seen = found.get(st)
                if seen is None:
                    found[st] = [i]
                elif len(seen) < MAX_POSITIONS_PER_LEXEME:
                    seen.append(i)
            positions = self._positions = {st: frozenset(pos) for st, pos in found.items()}
        first = positions.get(stems[0])
        if first is None:
            return False
        rest: list[frozenset[int]] = []
        for s in stems[1:]:
            later = positions.get(s)
            if later is None:
                return False
            rest.append(later)
        for p in first:
            for i, later in enumerate(rest, 1):
                if p + i not in later:
                    break
            else:
                return True
        return False


def evaluate(q: Query, doc: Document) -> bool:
    """Whether a query matches a document."""
    t = type(q)
    if t is Word:
        return q.stem in doc.stems  # type: ignore[union-attr]
    if t is Phrase:
        return doc.has_phrase(q.stems)  # type: ignore[union-attr]
    if t is Prefix:
        return doc.has_prefix(q.prefix)  # type: ignore[union-attr]
    # Loops rather than all() / any() over generators: this is the percolator's inner loop.
    if t is And:
        for item in q.items:  # type: ignore[union-attr]  # noqa: SIM110
            if not evaluate(item, doc):
                return False
        return True
    if t is Or:
        for item in q.items:  # type: ignore[union-attr]  # noqa: SIM110
            if evaluate(item, doc):
                return True
        return False
    if t is Not:
        return not evaluate(q.item, doc)  # type: ignore[union-attr]
    return True  # MatchAll


def positive_terms(q: Query, doc: Document, out: list[str]) -> None:
    """Append the text of every leaf of q not under NOT that the document contains (once each)."""
    t = type(q)
    if t is And or t is Or:
        for item in q.items:  # type: ignore[union-attr]
            positive_terms(item, doc, out)
    elif t is not Not and t is not MatchAll and evaluate(q, doc):
        text = q.text  # type: ignore[union-attr]
        if text not in out:
            out.append(text)


def in_query_order(q: Query, *found: Iterable[str]) -> list[str]:
    """Terms found in several texts (each list from `positive_terms`) as one list, in query order, once each."""
    seen = {t for terms in found for t in terms}
    out: list[str] = []
    _positive_leaves(q, seen, out)
    return out


def _positive_leaves(q: Query, keep: set[str], out: list[str]) -> None:
    t = type(q)
    if t is And or t is Or:
        for item in q.items:  # type: ignore[union-attr]
            _positive_leaves(item, keep, out)
    elif t is not Not and t is not MatchAll:
        text = q.text  # type: ignore[union-attr]
        if text in keep and text not in out:
            out.append(text)


def matched_terms(q: Query, doc: Document) -> list[str] | None:
    """The positive terms of a matching query that the document contains, in query order; None if no match.

    "Positive" leaves out anything under NOT: those are reasons not to match. A query of only negations, or the
    empty query, matches with no terms (`[]`).
    """
    # One walk for both the answer and the terms (`evaluate`, then `positive_terms`, would walk the query twice and
    # look each phrase up twice): the percolator asks this of every nested query it verifies.
    out: list[str] = []
    if type(q) is And:
        for item in q.items:  # an AND fails at its first false part: the terms gathered so far are not needed
            if not _walk(item, doc, out):
                return None
    elif not _walk(q, doc, out):
        return None
    return out


def _walk(q: Query, doc: Document, found: list[str]) -> bool:
    """Whether q holds for the document, appending the text of each leaf not under NOT that it has (once each) to
    found, whether or not q holds: every part is walked, as `positive_terms` walks it."""
    t = type(q)
    if t is Word:
        hit = q.stem in doc.stems  # type: ignore[union-attr]
    elif t is Phrase:
        hit = doc.has_phrase(q.stems)  # type: ignore[union-attr]
    elif t is Prefix:
        hit = doc.has_prefix(q.prefix)  # type: ignore[union-attr]
    elif t is And:
        hit = True
        for item in q.items:  # type: ignore[union-attr]
            if not _walk(item, doc, found):
                hit = False
        return hit
    elif t is Or:
        hit = False
        for item in q.items:  # type: ignore[union-attr]
            if _walk(item, doc, found):
                hit = True
        return hit
    elif t is Not:
        return not evaluate(q.item, doc)  # type: ignore[union-attr]
    else:
        return True  # MatchAll
    if hit and q.text not in found:  # type: ignore[union-attr]
        found.append(q.text)  # type: ignore[union-attr]
    return hit


# ---- filters and events --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Filter:
    """A subscription's filter. An empty set places no restriction; no councils and no regions means every council.

    Councils and regions together are the places a subscriber follows: an event matches when its council is one of
    `councils` or its region one of `regions`. Committees compare casefolded with the event's committee name and
    its committee id. The empty query (`MatchAll`) is stored as None.
    """

    query: Query | None = None
    councils: frozenset[str] = EMPTY
    regions: frozenset[str] = EMPTY
    committees: frozenset[str] = EMPTY
    kinds: frozenset[str] = EMPTY
    event_types: frozenset[str] = EMPTY
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __hash__(self) -> int:
        # Computed once: the percolator hashes every filter it is given, and query trees hash recursively.
        h = self._hash
        if not h:
            h = hash((self.query, self.councils, self.regions, self.committees, self.kinds, self.event_types)) or 1
            object.__setattr__(self, "_hash", h)
        return h

    def __post_init__(self) -> None:
        if isinstance(self.query, MatchAll):
            object.__setattr__(self, "query", None)
        elif self.query is not None and not isinstance(self.query, Word | Phrase | Prefix | And | Or | Not):
            raise TypeError(f"Filter.query must be a parsed Query or None, not {type(self.query).__name__}")
        for name in FILTER_SETS:
            values = getattr(self, name)
            if type(values) is frozenset and (values is EMPTY or (values and _all_str(values))):
                continue  # the common case, checked cheaply: a filter is made per distinct stored filter
            if not values and not isinstance(values, str):
                if values is not EMPTY:
                    object.__setattr__(self, name, EMPTY)
                continue
            if isinstance(values, str) or not all(isinstance(v, str) for v in values):
                raise TypeError(f"Filter.{name} must be a set of strings, not {values!r}")
            if not isinstance(values, frozenset):
                object.__setattr__(self, name, frozenset(values))


@dataclass(frozen=True, slots=True, eq=False)
class EventFacts:
    """What the percolator needs to know about one event."""

    council: str
    event_type: str
    kind: str
    doc: Document
    region: str | None = None
    committee: str | None = None
    committee_id: str | None = None


def filter_matches(f: Filter, event: EventFacts) -> tuple[str, ...] | None:
    """The matched terms if one filter matches one event, else None: the definition the percolator must agree with."""
    if (f.councils or f.regions) and not (
        event.council.casefold() in _casefolded(f.councils)
        or (event.region is not None and event.region.casefold() in _casefolded(f.regions))
    ):
        return None
    if f.committees:
        committees = _casefolded(f.committees)
        if not any(v is not None and v.casefold() in committees for v in (event.committee, event.committee_id)):
            return None
    if f.kinds and event.kind.casefold() not in _casefolded(f.kinds):
        return None
    if f.event_types and event.event_type.casefold() not in _casefolded(f.event_types):
        return None
    if f.query is None:
        return ()
    terms = matched_terms(f.query, event.doc)
    return None if terms is None else tuple(terms)


def _all_str(values: frozenset[str]) -> bool:
    for v in values:  # noqa: SIM110  # a loop: all() over a generator costs more for the few values a filter has
        if type(v) is not str:
            return False
    return True


def _casefolded(values: Iterable[str]) -> frozenset[str]:
    return frozenset(v.casefold() for v in values)
