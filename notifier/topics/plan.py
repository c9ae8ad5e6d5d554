"""Where the percolator files a filter: keys an event must fire for the filter to be a candidate, chosen rare.

A filter whose query has required terms is filed under its *anchors*: the rarest required term of an AND, every
branch's anchor for an OR. When the filter names councils or regions as well, the anchors are filed inside those
scopes, so "planning" in Leicester is never a candidate for a planning event in Kent. A filter with no required
term (no query, or only negations) is filed under its most selective structural key: its councils or regions,
committees, kinds, event types, or the `""` scope when it has none. Rarity comes from term and value frequencies
learnt with `observe`; anchors chosen before better estimates stay until `Percolator.reanchor`.

Scope and key names are those of the index layout (see topics.index); `event_scopes` names an event's scopes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Set
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Final, NamedTuple

from notifier.topics.evaluate import ANY, PREFIX_KEY_CHARS, PREFIX_MARK, EventFacts, Filter
from notifier.topics.parse import And, Or, Phrase, Prefix, Query, Word

MAX_KEYS: Final = 32  # more keys than this for one filter and a coarser plan is cheaper to hold

# Share of events assumed to carry one value of each structural field before `observe` has seen any.
_PRIORS: Final = {"c": 1 / 400, "r": 1 / 12, "m": 1 / 4000, "k": 1 / 4, "t": 1 / 9}
_PRIOR_WEIGHT: Final = 20.0


class Plan(NamedTuple):
    """How to file one filter."""

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


def event_scopes(event: EventFacts) -> list[str]:
    """Every scope an event belongs to: the global one first, then its council, region, committee, kind and type."""
    scopes = [ANY, _scope("c", event.council)]
    if event.region is not None:
        scopes.append(_scope("r", event.region))
    for value in {v.casefold() for v in (event.committee, event.committee_id) if v is not None}:
        scopes.append(_scope("m", value))
    scopes.append(_scope("k", event.kind))
    scopes.append(_scope("t", event.event_type))
    return scopes


def one_per_event(scopes: Set[str]) -> bool:
    """Whether an event is in at most one of these scopes: one scope, or scopes of one dimension an event has one
    of (its council, region, kind or type; not its committee, which it may name twice, by name and by id)."""
    if len(scopes) == 1:
        return True
    dimensions = {scope[:1] for scope in scopes}
    return len(dimensions) == 1 and "m" not in dimensions


def _scope(dimension: str, value: str) -> str:
    return f"{dimension}\x00{value.casefold()}"


class Planner:
    """Key and scope frequencies learnt from observed events, and the cheapest plan for a filter under them.

    Scope names are cached per (interned) set of values: they outlive their last filter, being few.
    """

    __slots__ = ("_anchor_cache", "_place_names", "_rates", "_scope_names", "_stats")

    def __init__(self) -> None:
        self._stats = _Stats()
        self._scope_names: dict[tuple[str, frozenset[str]], frozenset[str]] = {}
        self._place_names: dict[tuple[frozenset[str], frozenset[str]], tuple[str, ...]] = {}
        self._rates: dict[str, float] = {}  # key and scope rates, until the next observe()
        # Per query, during a bulk load: its anchors (until the next observe). Filters repeat queries across places
        # ("dementia" in a hundred councils): each is worked out once. Dropped after the load: kept, it would hold
        # an entry per distinct query for good.
        self._anchor_cache: dict[int, tuple[Query, tuple[float, tuple[str, ...]] | None]] | None = None

    @property
    def observed(self) -> int:
        """How many events `observe` has counted."""
        return self._stats.events

    def remember_anchors(self, on: bool) -> None:
        """Start (or stop and forget) remembering each query's anchors, for a bulk load."""
        self._anchor_cache = {} if on else None

    # -- frequency estimates

    def observe(self, event: EventFacts) -> None:
        """Count an event's keys and scopes, improving anchor choices for filters planned later."""
        s = self._stats
        s.events += 1
        s.keys.update(event.doc.keys)
        s.scopes.update(event_scopes(event))
        self._rates.clear()
        if self._anchor_cache:
            self._anchor_cache.clear()

    def key_rate(self, key: str) -> float:
        """The estimated share of events that fire a key."""
        return self._key_rate(key)

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

    # -- scopes and plans

    def scopes_of(self, dimension: str, values: frozenset[str]) -> frozenset[str]:
        """Scope names for a filter's values, cached per (interned) set of values."""
        found = self._scope_names.get((dimension, values))
        if found is None:
            found = self._scope_names[(dimension, values)] = frozenset(_scope(dimension, v) for v in values)
        return found

    def places(self, f: Filter) -> tuple[str, ...]:
        """The council and region scopes of a filter, sorted, cached per (interned) pair of sets."""
        key = (f.councils, f.regions)
        found = self._place_names.get(key)
        if found is None:
            found = self._place_names[key] = tuple(
                sorted(self.scopes_of("c", f.councils) | self.scopes_of("r", f.regions))
            )
        return found

    def _query_anchors(self, q: Query) -> tuple[float, tuple[str, ...]] | None:
        """`_anchors`, remembered per query during a bulk load."""
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

    def plan(self, f: Filter) -> Plan:
        """The cheapest way to file a filter: the fewest expected candidacies, within MAX_KEYS keys."""
        places = self.places(f)
        anchors = self._query_anchors(f.query) if f.query is not None else None
        if anchors is not None and not (places or f.committees or f.kinds or f.event_types):
            rate, keys = anchors  # the commonest case: a query alone
            if len(keys) <= MAX_KEYS:
                return Plan(rate, tuple([(ANY, k) for k in keys]), True, "")
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
                scopes = scopes_by_dimension[dimension] = sorted(self.scopes_of(dimension, values))
                if len(scopes) <= MAX_KEYS:
                    cost = self._scope_rate(scopes)
                    if cost < best_cost:
                        best_cost, best = cost, dimension
        if places and len(places) <= MAX_KEYS and place_rate < best_cost:
            best_cost, best = place_rate, "p"
            scopes_by_dimension["p"] = places
        if best == "":
            return Plan(2.0, ((ANY, ANY),), False, "")
        if best == "anchors":
            return Plan(best_cost, tuple([(ANY, k) for k in anchors[1]]), True, "")  # type: ignore[index]
        if best == "anchors in places":
            return Plan(best_cost, tuple([(p, k) for p in places for k in anchors[1]]), True, "p")  # type: ignore[index]
        return Plan(best_cost, tuple([(s, ANY) for s in scopes_by_dimension[best]]), False, best)
