"""The percolator: which stored filters match an event.

The `Percolator` holds every subscription's `Filter` in an index keyed by what an event must contain for the filter
to match, so an event only looks at a small set of candidates and verifies those in full; topics.plan chooses the
keys, topics.evaluate defines what a match is.

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

Loading many subscriptions at once (a worker's start) goes through `Percolator.bulk()`: the cyclic garbage
collector is paused meanwhile (otherwise it walks the growing index again and again: about half the build time at
a million filters) and the result is frozen out of its sight; filters sharing a query share its anchors and
verification plan.
"""

from __future__ import annotations

import gc
import operator
from collections.abc import Iterator
from contextlib import contextmanager
from operator import itemgetter
from typing import Any, NamedTuple

from notifier.topics.evaluate import (
    ANY,
    EMPTY,
    FILTER_SETS,
    PREFIX_KEY_CHARS,
    PREFIX_MARK,
    Document,
    EventFacts,
    Filter,
    evaluate,
    positive_terms,
)
from notifier.topics.parse import And, Not, Or, Phrase, Prefix, Query, Word
from notifier.topics.plan import Planner, event_scopes


class Match(NamedTuple):
    """A subscription an event matched, and the query's terms found in it (empty for filters with no query)."""

    sub_id: int
    terms: tuple[str, ...]


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
        self._planner = Planner()
        self._interned: dict[object, object] = {}
        # Per query, during bulk(): how its groups are verified. Filters repeat queries across places ("dementia" in
        # a hundred councils): each is worked out once. Dropped after the load: kept, it would hold an entry per
        # distinct query for good.
        self._mode_cache: dict[tuple[int, bool], tuple[Query, int, Any, tuple[str, ...]]] | None = None

    def __len__(self) -> int:
        return len(self._subs)

    def __contains__(self, sub_id: object) -> bool:
        return sub_id in self._subs

    @property
    def distinct_filters(self) -> int:
        """How many distinct filters the subscriptions have (each is filed once, whoever shares it)."""
        return len(self._groups)

    @property
    def observed_events(self) -> int:
        """How many events `observe` has counted for the frequency estimates."""
        return self._planner.observed

    def index_keys(self, sub_id: int) -> tuple[tuple[str, str], ...]:
        """The (scope, key) pairs a subscription is filed under (for diagnostics, and to mirror the index in SQL)."""
        return self._subs[sub_id].keys

    # -- frequency estimates

    def observe(self, event: EventFacts) -> None:
        """Count an event's keys and scopes, improving anchor choices for filters added (or re-anchored) later."""
        self._planner.observe(event)

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
        self._planner.remember_anchors(True)
        self._mode_cache = {}
        try:
            yield self
        finally:
            self._planner.remember_anchors(False)
            self._mode_cache = None
            gc.freeze()
            if enabled:
                gc.enable()

    def _shared(self, values: frozenset[str]) -> frozenset[str]:
        if not values:
            return EMPTY
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
            shared_values = [self._shared(v) if v else EMPTY for v in values]
            if all(map(operator.is_, shared_values, values)):
                shared = f  # its value sets are the shared ones already (a loader that interns them)
            else:
                # A copy holding shared value sets (and already validated: no __post_init__).
                shared = object.__new__(Filter)
                put = object.__setattr__
                put(shared, "_hash", hash(f))
                put(shared, "query", f.query)  # parse() already shares equal leaves between queries
                for name, v in zip(FILTER_SETS, shared_values, strict=True):
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
        plan = self._planner.plan(f)
        keys: tuple[tuple[str, str], ...] = self._interned.setdefault(plan.keys, plan.keys)  # type: ignore[assignment]
        group.keys = keys
        group.multi = len(keys) > 1
        checks = []
        if plan.dimension != "p" and (f.councils or f.regions):
            checks.append(frozenset(self._planner.places(f)))
        for dimension, values in (("m", f.committees), ("k", f.kinds), ("t", f.event_types)):
            if values and dimension != plan.dimension:
                checks.append(self._planner.scopes_of(dimension, values))
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

    def match(self, event: EventFacts) -> list[Match]:
        """Every subscription whose filter matches the event, with the terms that matched (in no particular order)."""
        doc = event.doc
        scopes = event_scopes(event)
        entries: list[_Entry] = []
        for scope in scopes:
            keyed = self._index.get(scope)
            if keyed is not None:
                entries += _hits(scope, keyed, doc.keys)
        out, alternatives = _answer(entries, doc, frozenset(scopes))
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


def _answer(  # noqa: C901
    entries: list[_Entry], doc: Document, in_scopes: frozenset[str]
) -> tuple[list[Match], list[Match]]:
    """The matches the entries an event hit offer: ready answers and verified groups, and alternatives to merge."""
    stems = doc.stems
    out: list[Match] = []
    alternatives: list[Match] = []
    seen: set[int] = set()
    for ready, offered, groups in entries:
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
                positive_terms(g.data, doc, found)
                terms = tuple(found)
            else:
                continue
            subs = g.subs
            if type(subs) is int:
                out.append(Match(subs, terms))
            else:
                out.extend([Match(sub, terms) for sub in subs])  # type: ignore[union-attr]
    return out, alternatives


def event_keys(event: EventFacts) -> list[tuple[str, str]]:
    """Every (scope, key) pair an event probes: a filter filed under any of them is a candidate for it."""
    out: list[tuple[str, str]] = []
    for scope in event_scopes(event):
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
