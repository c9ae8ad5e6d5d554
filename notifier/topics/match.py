"""The percolator: which stored filters match an event.

A `Document` is built once per event from its text. `evaluate` and `matched_terms` hold one query against one
document. The `Percolator` holds every subscription's `Filter` in an index keyed by what an event must contain for
the filter to match, so an event only looks at a small set of candidates and verifies those in full.

Index layout. Each distinct filter is a `_Group` (subscriptions with equal filters share one). A group is filed
under a few keys in `scope → key → entry`:

- scope `""` (every event), `c␀<council>` or `r␀<region>` (events of that council or region), `k␀<kind>`,
  `t␀<event type>`, `m␀<committee name or id>`;
- key: a stem (the event contains that stem), `␁` and 3 to 6 letters (a word of the event starts with them: for
  prefixes), or `""` (every event of the scope).

An entry holds groups to verify, and ready-made `Match`es for filters that hold whenever the key fires (no query,
or a query that is the key itself, and nothing else to check): most answers are copied out without a look at
their filter. ANDs of terms are verified with set operations; only queries nesting OR inside AND (or similar) are
walked in full.

A filter whose query has required terms is filed under its *anchors*: the rarest required term of an AND, every
branch's anchor for an OR. When the filter names councils or regions as well, the anchors are filed inside those
scopes, so "planning" in Leicester is never a candidate for a planning event in Kent. A filter with no required
term (no query, or only negations) is filed under its most selective structural key: its councils or regions,
committees, kinds, event types, or the `""` scope when it has none. Rarity comes from term and value frequencies
learnt with `observe`; anchors chosen before better estimates stay until `reanchor`.

Loading many subscriptions at once (a worker's start) goes through `Percolator.bulk()`: the cyclic garbage
collector is paused meanwhile (otherwise it walks the growing index again and again: about half the build time at
a million filters) and the result is frozen out of its sight; filters sharing a query share its anchors and
verification plan.
"""

from __future__ import annotations

import gc
import operator
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Final, NamedTuple

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
_EMPTY: Final[frozenset[str]] = frozenset()  # CPython makes a new empty frozenset each time: share one
_FILTER_SETS: Final = ("councils", "regions", "committees", "kinds", "event_types")
MAX_KEYS: Final = 32  # more keys than this for one filter and a coarser plan is cheaper to hold

# Share of events assumed to carry one value of each structural field before `observe` has seen any.
_PRIORS: Final = {"c": 1 / 400, "r": 1 / 12, "m": 1 / 4000, "k": 1 / 4, "t": 1 / 9}
_PRIOR_WEIGHT: Final = 20.0


class Document:
    """The searchable form of one event's text: its stems, its folded words, and (when a phrase asks) positions.

    Built with the same tokeniser and limits as `tsvector_literal`, so matching here and in SQL agree.
    """

    __slots__ = ("_pairs", "_positions", "keys", "raws", "stems")

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
        keys = set(stems)
        for n in range(MIN_PREFIX_CHARS, PREFIX_KEY_CHARS + 1):
            keys.update([PREFIX_MARK + r[:n] for r in raws if len(r) >= n])
        keys.add(ANY)
        # Every index key this document can fire, for the percolator's lookups.
        self.keys: frozenset[str] = frozenset(keys)

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


def _positive_terms(q: Query, doc: Document, out: list[str]) -> None:
    """Append the text of every leaf of q not under NOT that the document contains (once each)."""
    t = type(q)
    if t is And or t is Or:
        for item in q.items:  # type: ignore[union-attr]
            _positive_terms(item, doc, out)
    elif t is not Not and t is not MatchAll and evaluate(q, doc):
        text = q.text  # type: ignore[union-attr]
        if text not in out:
            out.append(text)


def matched_terms(q: Query, doc: Document) -> list[str] | None:
    """The positive terms of a matching query that the document contains, in query order; None if no match.

    "Positive" leaves out anything under NOT: those are reasons not to match. A query of only negations, or the
    empty query, matches with no terms (`[]`).
    """
    if not evaluate(q, doc):
        return None
    out: list[str] = []
    _positive_terms(q, doc, out)
    return out


# ---- filters and events --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Filter:
    """A subscription's filter. An empty set places no restriction; no councils and no regions means every council.

    Councils and regions together are the places a subscriber follows: an event matches when its council is one of
    `councils` or its region one of `regions`. Committees compare casefolded with the event's committee name and
    its committee id. The empty query (`MatchAll`) is stored as None.
    """

    query: Query | None = None
    councils: frozenset[str] = _EMPTY
    regions: frozenset[str] = _EMPTY
    committees: frozenset[str] = _EMPTY
    kinds: frozenset[str] = _EMPTY
    event_types: frozenset[str] = _EMPTY
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
        for name in _FILTER_SETS:
            values = getattr(self, name)
            if type(values) is frozenset and (values is _EMPTY or (values and _all_str(values))):
                continue  # the common case, checked cheaply: a filter is made per distinct stored filter
            if not values and not isinstance(values, str):
                if values is not _EMPTY:
                    object.__setattr__(self, name, _EMPTY)
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


class Match(NamedTuple):
    """A subscription an event matched, and the query's terms found in it (empty for filters with no query)."""

    sub_id: int
    terms: tuple[str, ...]


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


# ---- the percolator ------------------------------------------------------------------------------------------------

# How a group offered as a candidate is verified (after its structural checks).
_FIXED = 0  # offered means matched: the index key is the query (a word, a short prefix) or there is no query
# An AND of terms and negated terms (or one of those alone): data = (stems that must all be present, word stems
# that must all be absent, other terms that must match, other terms that must not); the terms are fixed.
_CONJ = 1
_COLLECT = 2  # an OR of words and short prefixes offered under one of them: data = ((is word, key, text), ...)
_VERIFY = 3  # anything else: evaluate the query, then find the terms


class _Group:
    """Subscriptions sharing one filter, and what is left to check when the index offers it as a candidate."""

    __slots__ = ("checks", "data", "filt", "keys", "mode", "multi", "subs", "terms")

    def __init__(self, filt: Filter, sub_id: int) -> None:
        self.filt = filt
        self.subs: int | list[int] = sub_id  # one subscription (the common case) without a list
        self.keys: tuple[tuple[str, str], ...] = ()
        self.multi = False  # filed under several keys: an event may offer it more than once
        # Sets of scopes the index does not already guarantee: the event must be in one scope of each.
        self.checks: tuple[frozenset[str], ...] = ()
        self.mode = _FIXED
        # Per mode: None, (required, forbidden), ((is word, key, text), ...) or the Query. Any: read in the hot loop.
        self.data: Any = None
        self.terms: tuple[str, ...] = ()


class _Entry(NamedTuple):
    """What one (scope, key) offers: answers ready to emit, and groups still to verify."""

    # Matches of filters that hold whenever this key fires (no query, or the query is this key, and no other check):
    # emitted as they are, without touching their groups.
    ready: list[Match]
    # The same for filters filed under several keys (an OR of words, several councils): an event firing two of
    # them offers a subscription twice, so these are merged before they are returned.
    alternatives: list[Match]
    groups: list[_Group]


class _Plan(NamedTuple):
    cost: float  # expected share of events for which the filter is a candidate
    keys: tuple[tuple[str, str], ...]
    by_terms: bool  # filed under query terms
    dimension: str  # the structural field the keys guarantee: "p" (places), "m", "k", "t" or ""


@dataclass(slots=True)
class _Stats:
    """Frequency estimates: how many observed events fired each key and belonged to each scope."""

    events: int = 0
    keys: Counter[str] = field(default_factory=Counter)
    scopes: Counter[str] = field(default_factory=Counter)


class _Conj(NamedTuple):
    required: frozenset[str]
    forbidden: frozenset[str]
    positive: tuple[Phrase | Prefix, ...]
    negative: tuple[Phrase | Prefix, ...]


def _conjunction(q: Query) -> tuple[_Conj, tuple[str, ...]] | None:
    """A query that is an AND of terms and negated terms, split for quick checks (and its terms); else None."""
    required: set[str] = set()
    forbidden: set[str] = set()
    positive: list[Phrase | Prefix] = []
    negative: list[Phrase | Prefix] = []
    terms: list[str] = []
    for item in q.items if isinstance(q, And) else (q,):
        if isinstance(item, Word | Phrase | Prefix):
            terms.append(item.text)
            if isinstance(item, Word):
                required.add(item.stem)
                continue
            if isinstance(item, Phrase):
                required.update(item.stems)  # a phrase needs all its words: a cheap test before positions
            positive.append(item)
        elif isinstance(item, Not) and isinstance(item.item, Word):
            forbidden.add(item.item.stem)
        elif isinstance(item, Not) and isinstance(item.item, Phrase | Prefix):
            negative.append(item.item)
        else:
            return None
    conj = _Conj(frozenset(required), frozenset(forbidden), tuple(positive), tuple(negative))
    return conj, tuple(dict.fromkeys(terms))


def _holds(term: Phrase | Prefix, doc: Document) -> bool:
    return doc.has_phrase(term.stems) if type(term) is Phrase else doc.has_prefix(term.prefix)  # type: ignore[union-attr]


def _exact(q: Query) -> bool:
    """Whether a query holds whenever one of its anchor keys fires (a word, a short prefix, an OR of those)."""
    if isinstance(q, Word):
        return True
    if isinstance(q, Prefix):
        return len(q.prefix) <= PREFIX_KEY_CHARS
    return isinstance(q, Or) and all(_exact(i) for i in q.items)


class Percolator:
    """An in-memory index of subscription filters: `add`, `remove`, and `match` an event to the subscriptions it hits.

    Subscriptions with equal filters share one entry, and query leaves and value sets are shared across filters, so
    a million subscriptions stay compact (value sets and cached scope names outlive their last filter: they are few).
    After loading a large index, `gc.freeze()` keeps the garbage collector from walking it again and again while
    events are matched. Not thread-safe: one percolator per worker task.
    """

    def __init__(self) -> None:
        self._subs: dict[int, _Group] = {}
        self._groups: dict[Filter, _Group] = {}
        self._index: dict[str, dict[str, _Entry]] = {}
        self._stats = _Stats()
        self._interned: dict[object, object] = {}
        self._scope_names: dict[tuple[str, frozenset[str]], frozenset[str]] = {}
        self._place_names: dict[tuple[frozenset[str], frozenset[str]], tuple[str, ...]] = {}
        self._rates: dict[str, float] = {}  # key and scope rates, until the next observe()
        # Per query, during bulk(): its anchors (until the next observe) and how its groups are verified. Filters
        # repeat queries across places ("dementia" in a hundred councils): each is worked out once. Dropped after
        # the load: kept, they would hold an entry per distinct query for good.
        self._anchor_cache: dict[int, tuple[Query, tuple[float, tuple[str, ...]] | None]] | None = None
        self._mode_cache: dict[tuple[int, bool], tuple[Query, int, Any, tuple[str, ...]]] | None = None

    def __len__(self) -> int:
        return len(self._subs)

    def __contains__(self, sub_id: object) -> bool:
        return sub_id in self._subs

    @property
    def distinct_filters(self) -> int:
        """How many distinct filters the subscriptions have (each is filed once, whoever shares it)."""
        return len(self._groups)

    def index_keys(self, sub_id: int) -> tuple[tuple[str, str], ...]:
        """The (scope, key) pairs a subscription is filed under (for diagnostics, and to mirror the index in SQL)."""
        return self._subs[sub_id].keys

    # -- frequency estimates

    def observe(self, event: EventFacts) -> None:
        """Count an event's keys and scopes, improving anchor choices for filters added (or re-anchored) later."""
        s = self._stats
        s.events += 1
        s.keys.update(event.doc.keys)
        s.scopes.update(_scopes(event))
        self._rates.clear()
        if self._anchor_cache:
            self._anchor_cache.clear()

    def _key_rate(self, key: str) -> float:
        rate = self._rates.get(key)
        if rate is None:
            s = self._stats
            # Unseen, a prefix is assumed commoner than any word (so words anchor first), and an unknown word rare;
            # between equals, longer words are preferred (rarer, as a rule).
            prior = 0.9 if key.startswith(PREFIX_MARK) else 0.5 - 0.01 * min(len(key), 20)
            rate = self._rates[key] = (s.keys.get(key, 0) + prior) / (s.events + 1)
        return rate

    def _scope_rate(self, scopes: Iterable[str]) -> float:
        total = 0.0
        for scope in scopes:
            rate = self._rates.get(scope)
            if rate is None:
                s = self._stats
                rate = (s.scopes.get(scope, 0) + _PRIORS[scope[0]] * _PRIOR_WEIGHT) / (s.events + _PRIOR_WEIGHT)
                self._rates[scope] = rate
            total += rate
        return total

    def _anchors(self, q: Query) -> tuple[float, tuple[str, ...]] | None:
        """Keys of which an event must fire at least one for the query to match (sorted), with their summed rate."""
        t = type(q)
        if t is Word:
            return self._key_rate(q.stem), (q.stem,)  # type: ignore[union-attr]
        if t is Prefix:
            key = PREFIX_MARK + q.prefix[:PREFIX_KEY_CHARS]  # type: ignore[union-attr]
            return self._key_rate(key), (key,)
        if t is Phrase:
            return min((self._key_rate(s), (s,)) for s in q.stems)  # type: ignore[union-attr]
        if t is And:
            options = [a for a in map(self._anchors, q.items) if a is not None]  # type: ignore[union-attr]
            return min(options, key=itemgetter(0)) if options else None
        if t is Or:
            keys: set[str] = set()
            for item in q.items:  # type: ignore[union-attr]
                a = self._anchors(item)
                if a is None:
                    return None
                keys.update(a[1])
            return sum(map(self._key_rate, keys)), tuple(sorted(keys))
        return None  # Not, MatchAll

    def _scopes_of(self, dimension: str, values: frozenset[str]) -> frozenset[str]:
        """Scope names for a filter's values, cached per (interned) set of values."""
        found = self._scope_names.get((dimension, values))
        if found is None:
            found = self._scope_names[(dimension, values)] = frozenset(_scope(dimension, v) for v in values)
        return found

    def _places(self, f: Filter) -> tuple[str, ...]:
        """The council and region scopes of a filter, sorted, cached per (interned) pair of sets."""
        key = (f.councils, f.regions)
        found = self._place_names.get(key)
        if found is None:
            found = self._place_names[key] = tuple(
                sorted(self._scopes_of("c", f.councils) | self._scopes_of("r", f.regions))
            )
        return found

    def _query_anchors(self, q: Query) -> tuple[float, tuple[str, ...]] | None:
        """`_anchors`, remembered per query during bulk()."""
        cache = self._anchor_cache
        if cache is None:
            return self._anchors(q)
        # Keyed by identity (hashing a query tree walks all of it); the entry keeps its query alive, and the check
        # makes an id reused by another query a miss rather than a wrong answer.
        cached = cache.get(id(q))
        if cached is not None and cached[0] is q:
            return cached[1]
        anchors = self._anchors(q)
        cache[id(q)] = (q, anchors)
        return anchors

    def _plan(self, f: Filter) -> _Plan:
        """The cheapest way to file a filter: the fewest expected candidacies, within MAX_KEYS keys."""
        places = self._places(f)
        anchors = self._query_anchors(f.query) if f.query is not None else None
        if anchors is not None and not (places or f.committees or f.kinds or f.event_types):
            rate, keys = anchors  # the commonest case: a query alone
            if len(keys) <= MAX_KEYS:
                return _Plan(rate, tuple([(ANY, k) for k in keys]), True, "")
        # Costs are compared first and only the winner's keys are built (this runs once per distinct filter); the
        # order of the comparisons, with strict <, decides ties.
        best_cost, best = 2.0, ""  # every event is a candidate: the last resort
        place_rate = self._scope_rate(places) if places else 0.0
        if anchors is not None:
            rate, keys = anchors
            if len(keys) <= MAX_KEYS and rate < best_cost:
                best_cost, best = rate, "anchors"
            if places and len(keys) * len(places) <= MAX_KEYS:
                cost = rate * place_rate
                if cost < best_cost:
                    best_cost, best = cost, "anchors in places"
        scopes_by_dimension: dict[str, tuple[str, ...] | list[str]] = {}
        for dimension, values in (("m", f.committees), ("k", f.kinds), ("t", f.event_types)):
            if values:
                scopes = scopes_by_dimension[dimension] = sorted(self._scopes_of(dimension, values))
                if len(scopes) <= MAX_KEYS:
                    cost = self._scope_rate(scopes)
                    if cost < best_cost:
                        best_cost, best = cost, dimension
        if places and len(places) <= MAX_KEYS and place_rate < best_cost:
            best_cost, best = place_rate, "p"
            scopes_by_dimension["p"] = places
        if best == "":
            return _Plan(2.0, ((ANY, ANY),), False, "")
        if best == "anchors":
            return _Plan(best_cost, tuple([(ANY, k) for k in anchors[1]]), True, "")  # type: ignore[index]
        if best == "anchors in places":
            return _Plan(best_cost, tuple([(p, k) for p in places for k in anchors[1]]), True, "p")  # type: ignore[index]
        return _Plan(best_cost, tuple([(s, ANY) for s in scopes_by_dimension[best]]), False, best)

    # -- adding and removing

    @contextmanager
    def bulk(self) -> Iterator[Percolator]:
        """A context for adding many subscriptions at once (`add` as usual inside it), as a worker does at start.

        The cyclic garbage collector is paused meanwhile: each collection it would run walks every object made so
        far, and a million filters make millions of objects: the collections would cost about as much as the building.
        On the way out everything made so far is frozen (`gc.freeze()`): the index lives as long as the process, and
        the collections triggered while matching then never walk it. Objects still go as soon as nothing refers
        to them (removal works as ever); only cyclic garbage left behind before the freeze would stay.
        """
        enabled = gc.isenabled()
        gc.disable()
        self._anchor_cache, self._mode_cache = {}, {}
        try:
            yield self
        finally:
            self._anchor_cache = self._mode_cache = None
            gc.freeze()
            if enabled:
                gc.enable()

    def _shared(self, values: frozenset[str]) -> frozenset[str]:
        if not values:
            return _EMPTY
        found = self._interned.setdefault(values, values)
        return found  # type: ignore[return-value]

    def add(self, sub_id: int, f: Filter) -> None:
        """File a subscription's filter, replacing any filter it had."""
        old = self._subs.get(sub_id)
        if old is not None:
            if old.filt == f:
                return
            self.remove(sub_id)
        group = self._groups.get(f)
        if group is None:
            values = (f.councils, f.regions, f.committees, f.kinds, f.event_types)
            shared_values = [self._shared(v) if v else _EMPTY for v in values]
            if all(map(operator.is_, shared_values, values)):
                shared = f  # its value sets are the shared ones already (a loader that interns them)
            else:
                # A copy holding shared value sets (and already validated: no __post_init__).
                shared = object.__new__(Filter)
                put = object.__setattr__
                put(shared, "_hash", hash(f))
                put(shared, "query", f.query)  # parse() already shares equal leaves between queries
                for name, v in zip(_FILTER_SETS, shared_values, strict=True):
                    put(shared, name, v)
            group = self._groups[shared] = _Group(shared, sub_id)
            self._file(group)
        else:
            if isinstance(group.subs, int):
                group.subs = [group.subs, sub_id]
            else:
                group.subs.append(sub_id)
            for answers, terms in self._answer_lists(group):
                answers.append(Match(sub_id, terms))
        self._subs[sub_id] = group

    def remove(self, sub_id: int) -> None:
        """Forget a subscription; unknown ids are ignored."""
        group = self._subs.pop(sub_id, None)
        if group is None:
            return
        if isinstance(group.subs, list) and len(group.subs) > 1:
            group.subs.remove(sub_id)
            if len(group.subs) == 1:
                group.subs = group.subs[0]
            for answers, terms in self._answer_lists(group):
                answers.remove(Match(sub_id, terms))
            return
        self._unfile(group)
        del self._groups[group.filt]

    def reanchor(self) -> None:
        """Re-file every filter with the current frequency estimates."""
        self._index = {}
        for group in self._groups.values():
            self._file(group)

    def _file(self, group: _Group) -> None:
        f = group.filt
        plan = self._plan(f)
        keys: tuple[tuple[str, str], ...] = self._interned.setdefault(plan.keys, plan.keys)  # type: ignore[assignment]
        group.keys = keys
        group.multi = len(keys) > 1
        checks = []
        if plan.dimension != "p" and (f.councils or f.regions):
            checks.append(frozenset(self._places(f)))
        for dimension, values in (("m", f.committees), ("k", f.kinds), ("t", f.event_types)):
            if values and dimension != plan.dimension:
                checks.append(self._scopes_of(dimension, values))
        group.checks = tuple([self._shared(c) for c in checks]) if checks else ()
        self._set_mode(group, f.query, plan.by_terms)
        for scope, key in keys:
            keyed = self._index.get(scope)
            if keyed is None:
                keyed = self._index[scope] = {}
            if key not in keyed:
                keyed[key] = _Entry([], [], [])
        answer_lists = self._answer_lists(group)
        if answer_lists:
            subs = [group.subs] if isinstance(group.subs, int) else group.subs
            for answers, terms in answer_lists:
                answers.extend([Match(sub, terms) for sub in subs])
        else:
            for scope, key in keys:
                self._index[scope][key].groups.append(group)

    def _answer_lists(self, group: _Group) -> list[tuple[list[Match], tuple[str, ...]]]:
        """For a group answered without verification: each of its entries' answer list, with the terms that key
        stands for. Empty when the group must be verified."""
        if group.checks or (group.mode != _FIXED and group.mode != _COLLECT):
            return []
        if group.mode == _FIXED:
            if not group.multi:
                scope, key = group.keys[0]
                return [(self._index[scope][key].ready, group.terms)]
            return [(self._index[scope][key].alternatives, group.terms) for scope, key in group.keys]
        # An OR of words and short prefixes: each key stands for the branches filed under it.
        out = []
        for scope, key in group.keys:
            terms = tuple(dict.fromkeys(
                text for is_word, value, text in group.data if (value if is_word else PREFIX_MARK + value) == key
            ))
            out.append((self._index[scope][key].alternatives, terms))
        return out

    def _set_mode(self, group: _Group, q: Query | None, by_terms: bool) -> None:
        group.data, group.terms = None, ()
        if q is None:
            group.mode = _FIXED
            return
        cache = self._mode_cache
        if cache is not None:
            found = cache.get((id(q), by_terms))  # by identity, as in _plan
            if found is not None and found[0] is q:
                # Groups of one query share its (immutable) verification data, which saves memory as well.
                _, group.mode, group.data, group.terms = found
                return
        self._set_query_mode(group, q, by_terms)
        if cache is not None:
            cache[(id(q), by_terms)] = (q, group.mode, group.data, group.terms)

    def _set_query_mode(self, group: _Group, q: Query, by_terms: bool) -> None:
        if by_terms and isinstance(q, Word | Prefix) and _exact(q):
            group.mode, group.terms = _FIXED, (q.text,)
        elif (conj := _conjunction(q)) is not None:
            split, terms = conj
            group.mode, group.terms = _CONJ, terms
            group.data = split._replace(required=self._shared(split.required), forbidden=self._shared(split.forbidden))
        elif by_terms and isinstance(q, Or) and _exact(q):
            group.mode = _COLLECT
            group.data = tuple(
                (True, i.stem, i.text) if isinstance(i, Word) else (False, i.prefix, i.text)  # type: ignore[union-attr]
                for i in q.items
            )
        else:
            group.mode, group.data = _VERIFY, q

    def _unfile(self, group: _Group) -> None:
        """Take the last subscription of a group out of the index."""
        answer_lists = self._answer_lists(group)
        for answers, terms in answer_lists:
            for sub in [group.subs] if isinstance(group.subs, int) else group.subs:
                answers.remove(Match(sub, terms))
        for scope, key in group.keys:
            keyed = self._index[scope]
            entry = keyed[key]
            if not answer_lists:
                entry.groups.remove(group)
            if not entry.ready and not entry.alternatives and not entry.groups:
                del keyed[key]
                if not keyed:
                    del self._index[scope]

    # -- matching

    def match(self, event: EventFacts) -> list[Match]:  # noqa: C901
        """Every subscription whose filter matches the event, with the terms that matched (in no particular order)."""
        doc = event.doc
        stems = doc.stems
        scopes = _scopes(event)
        in_scopes = frozenset(scopes)
        out: list[Match] = []
        alternatives: list[Match] = []
        seen: set[int] = set()
        for scope in scopes:
            keyed = self._index.get(scope)
            if keyed is None:
                continue
            for ready, offered, groups in _hits(scope, keyed, doc.keys):
                if ready:
                    out += ready
                if offered:
                    alternatives += offered
                for g in groups:
                    # The inner loop of the service: plain statements, ordered by how often each case comes up.
                    if g.multi:
                        if id(g) in seen:
                            continue
                        seen.add(id(g))
                    if g.checks:
                        for needed in g.checks:
                            if needed.isdisjoint(in_scopes):
                                break
                        else:
                            needed = None
                        if needed is not None:
                            continue
                    mode = g.mode
                    if mode == _CONJ:
                        conj = g.data
                        if not (conj.required <= stems and conj.forbidden.isdisjoint(stems)):
                            continue
                        if conj.positive and not all([_holds(t, doc) for t in conj.positive]):
                            continue
                        if conj.negative and any([_holds(t, doc) for t in conj.negative]):
                            continue
                        terms = g.terms
                    elif mode == _COLLECT:
                        terms = tuple([
                            text for is_word, key, text in g.data
                            if (key in stems if is_word else doc.has_prefix(key))
                        ])
                    elif mode == _FIXED:
                        terms = g.terms
                    elif evaluate(g.data, doc):
                        found: list[str] = []
                        _positive_terms(g.data, doc, found)
                        terms = tuple(found)
                    else:
                        continue
                    subs = g.subs
                    if type(subs) is int:
                        out.append(Match(subs, terms))
                    else:
                        out.extend([Match(sub, terms) for sub in subs])  # type: ignore[union-attr]
        if alternatives:
            if len(set(map(itemgetter(0), alternatives))) == len(alternatives):
                out += alternatives
            else:
                out += self._merge(alternatives)
        return out

    def _merge(self, alternatives: list[Match]) -> list[Match]:
        """One match per subscription offered under several keys, its terms in query order."""
        by_sub: dict[int, list[Match]] = {}
        for m in alternatives:
            by_sub.setdefault(m.sub_id, []).append(m)
        out = []
        for sub_id, found in by_sub.items():
            if len(found) == 1:
                out.append(found[0])
                continue
            group = self._subs[sub_id]
            texts = {t for m in found for t in m.terms}
            order = [text for _, _, text in group.data] if group.mode == _COLLECT else group.terms
            out.append(Match(sub_id, tuple(t for t in dict.fromkeys(order) if t in texts)))
        return out


def event_keys(event: EventFacts) -> list[tuple[str, str]]:
    """Every (scope, key) pair an event probes: a filter filed under any of them is a candidate for it."""
    out: list[tuple[str, str]] = []
    for scope in _scopes(event):
        if scope[:1] in ("", "c", "r"):
            out.extend((scope, key) for key in event.doc.keys)
        else:
            out.append((scope, ANY))
    return out


def _hits(scope: str, keyed: dict[str, _Entry], doc_keys: frozenset[str]) -> list[_Entry]:
    """The entries a scope offers for an event's keys."""
    if scope[:1] in ("", "c", "r"):
        # Council, region and global scopes hold term keys: probe whichever side is smaller.
        if len(keyed) < len(doc_keys):
            return [groups for key, groups in keyed.items() if key in doc_keys]
        return [groups for groups in map(keyed.get, doc_keys) if groups is not None]
    only = keyed.get(ANY)
    return [only] if only is not None else []


def _scope(dimension: str, value: str) -> str:
    return f"{dimension}\x00{value.casefold()}"


def _scopes(event: EventFacts) -> list[str]:
    """Every scope an event belongs to: the global one first, then its council, region, committee, kind and type."""
    scopes = [ANY, _scope("c", event.council)]
    if event.region is not None:
        scopes.append(_scope("r", event.region))
    for value in {v.casefold() for v in (event.committee, event.committee_id) if v is not None}:
        scopes.append(_scope("m", value))
    scopes.append(_scope("k", event.kind))
    scopes.append(_scope("t", event.event_type))
    return scopes


def _casefolded(values: Iterable[str]) -> frozenset[str]:
    return frozenset(v.casefold() for v in values)
