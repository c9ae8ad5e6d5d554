"""The percolator: which stored filters match an event.

The `Percolator` holds every subscription's `Filter` in an index keyed by what an event must contain for the filter
to match, so an event only looks at a small set of candidates and verifies those in full; topics.plan chooses the
keys, topics.evaluate defines what a match is.

Index layout. Each distinct filter is a `Group` (subscriptions with equal filters share one). A group is filed
under a few keys in `scope → key → entry`:

- scope `""` (every event), `c␀<council>` or `r␀<region>` (events of that council or region), `k␀<kind>`,
  `t␀<event type>`, `m␀<committee name or id>`;
- key: a stem (the event contains that stem), `␁` and 3 to 6 letters (a word of the event starts with them: for
  prefixes), or `""` (every event of the scope).

An entry holds groups to verify, and arrays of subscription ids for filters that hold whenever the key fires (no
query, or a query that is the key itself, and nothing else to check): most answers are referenced as they are,
without a look at their filter, and an event's answer (`Matches`) is a list of such arrays, each with its terms:
nothing is made per matching subscription. Filters that need one more check beside the key (negated words, a
second stem, a long prefix, one structural check, or an OR's words under a structural key) are kept the same way,
as ids behind that check (topics.held): the event settles the check once for all of them, and their groups are not
touched. Groups still to verify carry their query compiled once (topics.verify): set tests first, so most
candidates are settled without walking a query; those whose query needs a second stem are filed under it inside the
entry, and offered only when the event has it too.

Loading many subscriptions at once (a worker's start) goes through `Percolator.bulk()`: the cyclic garbage
collector is paused meanwhile (otherwise it walks the growing index again and again: about half the build time at
a million filters) and the result is frozen out of its sight; filters sharing a query share its anchors and
verification plan.
"""

from __future__ import annotations

import gc
import operator
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeAlias

from notifier.topics.evaluate import ANY, EMPTY, FILTER_SETS, PREFIX_MARK, Document, EventFacts, Filter
from notifier.topics.held import READY, VERIFIED, Held, add_id, drop_id, holding, update
from notifier.topics.held import answer as answer_held
from notifier.topics.parse import Query
from notifier.topics.plan import Planner, event_scopes, one_per_event
from notifier.topics.verify import (
    COLLECT,
    NO_TEST,
    VERIFY,
    Chunk,
    Group,
    IdChunk,
    Match,
    Matches,
    Test,
    compile_query,
    new_ids,
    verify,
)

__all__ = ["Match", "Matches", "Percolator", "event_keys"]


# Groups an entry verifies when the event has a stem: one as it is, several in a list.
Paired: TypeAlias = "Group | list[Group]"


class _Entry:
    """What one (scope, key) offers; each part is made when first needed (most entries have one)."""

    __slots__ = ("alternatives", "groups", "held", "pairs", "ready")

    def __init__(self) -> None:
        # Ids of filters that hold whenever this key fires (no query, or the query is this key, and no other
        # check), in one chunk per set of terms (an int when one id, as most are: a word in one council; else an
        # array): answered as they are, without touching their groups.
        self.ready: list[Chunk] | None = None
        # The same for filters filed under several keys (an OR of words, several councils), with the terms this key
        # stands for: an event firing two of a filter's keys finds it twice, so these are merged in the answer.
        self.alternatives: list[tuple[tuple[str, ...], array[int]]] | None = None
        self.groups: list[Group] | None = None  # groups to verify whenever this key fires
        # Groups to verify, by another stem their query needs (its rarest but this key): offered only when the
        # event has that stem too. Most candidates are turned away here, by one lookup in the event's stems,
        # before their group is touched: at a million filters a touch is a few cache misses. One group is kept
        # as it is, without a list, and one stem's (stem, groups) pair without a dict: most entries that have
        # pairs have one of each, and a dict and a list cost about 250 bytes where a pair costs 56.
        self.pairs: dict[str, Paired] | tuple[str, Paired] | None = None
        # Ids of filters that hold when one more condition does, by that condition (topics.held); one
        # (condition, answers) pair as it is, without a dict, when there is one (most entries that have any).
        self.held: Held | tuple[str, Any] | None = None

    def empty(self) -> bool:
        return not self.ready and not self.alternatives and not self.groups and not self.pairs and not self.held

    def add_group(self, group: Group, second: str) -> None:
        """Add a group to verify, offered when the event has the stem `second` as well (always for "")."""
        if not second:
            if self.groups is None:
                self.groups = []
            self.groups.append(group)
            return
        pairs = self._pairs()
        paired = pairs.get(second)
        if paired is None:
            pairs[second] = group
        elif type(paired) is list:
            paired.append(group)
        else:
            pairs[second] = [paired, group]  # type: ignore[list-item]
        self._set_pairs(pairs)

    def remove_group(self, group: Group) -> None:
        """Take a group out, wherever it was filed (its pairing stem may have been chosen on other estimates)."""
        if self.groups is not None and group in self.groups:
            self.groups.remove(group)
            return
        pairs = self._pairs()
        for second, paired in pairs.items():
            if paired is group:
                del pairs[second]
                break
            if type(paired) is list and group in paired:
                paired.remove(group)
                if len(paired) == 1:
                    pairs[second] = paired[0]
                break
        self._set_pairs(pairs)

    def _pairs(self) -> dict[str, Paired]:
        pairs = self.pairs
        return {} if pairs is None else dict([pairs]) if type(pairs) is tuple else pairs  # type: ignore[return-value]

    def _set_pairs(self, pairs: dict[str, Paired]) -> None:
        self.pairs = None if not pairs else next(iter(pairs.items())) if len(pairs) == 1 else pairs


class Percolator:
    """An in-memory index of subscription filters: `add`, `remove`, and `match` an event to the subscriptions it hits.

    Subscriptions with equal filters share one entry, and query leaves and value sets are shared across filters, so
    a million subscriptions stay compact (value sets and cached scope names outlive their last filter: they are few).
    After loading a large index, `gc.freeze()` keeps the garbage collector from walking it again and again while
    events are matched. Not thread-safe: one percolator per worker task.
    """

    def __init__(self) -> None:
        self._subs: dict[int, Group] = {}
        self._groups: dict[Filter, Group] = {}
        self._index: dict[str, dict[str, _Entry]] = {}
        # The entries of prefix keys again, per scope: an event's prefix keys (most of its keys) are looked up
        # only among these.
        self._prefixed: dict[str, dict[str, _Entry]] = {}
        self._planner = Planner()
        self._interned: dict[object, object] = {}
        # Per query, during bulk(): how its groups are verified. Filters repeat queries across places ("dementia" in
        # a hundred councils): each is worked out once. Dropped after the load: kept, it would hold an entry per
        # distinct query for good.
        self._mode_cache: dict[tuple[int, bool], tuple[Query, Test, tuple[str, ...]]] | None = None

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
            group = self._groups[shared] = Group(shared, sub_id)
            self._file(group)
        else:
            if isinstance(group.subs, int):
                group.subs = new_ids(group.subs, sub_id)
            else:
                group.subs.append(sub_id)
            self._keep(group, [sub_id], True)
        self._subs[sub_id] = group

    def remove(self, sub_id: int) -> None:
        """Forget a subscription; unknown ids are ignored."""
        group = self._subs.pop(sub_id, None)
        if group is None:
            return
        if not isinstance(group.subs, int) and len(group.subs) > 1:
            group.subs.remove(sub_id)
            if len(group.subs) == 1:
                group.subs = group.subs[0]
            self._keep(group, [sub_id], False)
            return
        self._unfile(group)
        del self._groups[group.filt]

    def reanchor(self) -> None:
        """Re-file every filter with the current frequency estimates."""
        self._index, self._prefixed = {}, {}
        for group in self._groups.values():
            self._file(group)

    def _file(self, group: Group) -> None:
        f = group.filt
        plan = self._planner.plan(f)
        keys: tuple[tuple[str, str], ...] = self._interned.setdefault(plan.keys, plan.keys)  # type: ignore[assignment]
        group.keys = keys
        group.multi = len(keys) > 1 and not _one_fires(keys)
        checks = []
        if plan.dimension != "p" and (f.councils or f.regions):
            checks.append(frozenset(self._planner.places(f)))
        for dimension, values in (("m", f.committees), ("k", f.kinds), ("t", f.event_types)):
            if values and dimension != plan.dimension:
                checks.append(self._planner.scopes_of(dimension, values))
        group.checks = tuple([self._shared(c) for c in checks]) if checks else ()
        group.special = group.multi or bool(checks)
        self._set_test(group, f.query, plan.by_terms)
        for scope, key in keys:
            keyed = self._index.get(scope)
            if keyed is None:
                keyed = self._index[scope] = {}
            if key not in keyed:
                keyed[key] = _Entry()
                if key.startswith(PREFIX_MARK):
                    self._prefixed.setdefault(scope, {})[key] = keyed[key]
        if holding(group) == VERIFIED:
            for scope, key in keys:
                self._index[scope][key].add_group(group, self._second(group, key))
            return
        self._keep(group, [group.subs] if isinstance(group.subs, int) else list(group.subs), True)

    def _second(self, group: Group, key: str) -> str:
        """The stem a group filed under key is paired with: the rarest other stem its query needs, or ""."""
        others = group.test.required - {key}
        if not others:
            return ""
        return min(others, key=lambda stem: (self._planner.key_rate(stem), stem))

    def _key_terms(self, group: Group) -> list[tuple[str, ...]]:
        """For a group answered without verification: the terms each of its keys stands for."""
        if group.test.mode != COLLECT:
            return [group.terms] * len(group.keys)
        # An OR of words and short prefixes: each key stands for the branches filed under it.
        return [
            tuple(dict.fromkeys(
                text for is_word, value, text in group.test.data if (value if is_word else PREFIX_MARK + value) == key
            ))
            for _, key in group.keys
        ]

    def _keep_ready(self, group: Group, subs: list[int], keep: bool) -> None:
        """For a group answered without verification and without a condition: add (or take out) subscriptions in
        each of its entries, with the terms of that key. Ready ids are an int when one (most chunks: a word in one
        council); alternatives are always arrays, as `Matches` reads them."""
        for (scope, key), terms in zip(group.keys, self._key_terms(group), strict=True):
            entry = self._index[scope][key]
            if not group.multi:
                chunks: list[Chunk] = entry.ready or []
                for sub in subs:
                    (add_id if keep else drop_id)(chunks, terms, sub)
                entry.ready = chunks or None
                continue
            if entry.alternatives is None:
                entry.alternatives = []
            found = [ids for chunk_terms, ids in entry.alternatives if chunk_terms == terms]
            if not found:
                found.append(array("q"))
                entry.alternatives.append((terms, found[0]))
            if keep:
                found[0].extend(subs)
            else:
                for sub in subs:
                    found[0].remove(sub)

    def _keep(self, group: Group, subs: list[int], keep: bool) -> None:
        """Add (or take out) subscriptions of a group answered without verification where its ids are kept: its
        entries' ready ids, or behind its condition (topics.held). Nothing for groups to verify."""
        how = holding(group)
        if how == VERIFIED:
            return
        if how == READY:
            self._keep_ready(group, subs, keep)
            return
        ((scope, key),) = group.keys
        entry = self._index[scope][key]
        for sub in subs:
            entry.held = update(entry.held, group, how, sub, keep)

    def _merged_terms(self, sub_id: int, found: set[str]) -> tuple[str, ...]:
        """The terms of a subscription found under several of its keys, in query order."""
        group = self._subs[sub_id]
        test = group.test
        if test.mode == COLLECT:
            order = [text for _, _, text in test.data]
        elif test.mode == VERIFY:  # an OR of words held as alternatives
            order = [item.text for item in test.data.items]
        else:
            order = list(group.terms)
        return tuple(t for t in dict.fromkeys(order) if t in found)

    def _set_test(self, group: Group, q: Query | None, by_terms: bool) -> None:
        if q is None:
            group.test, group.terms = NO_TEST, ()
            return
        cache = self._mode_cache
        if cache is not None:
            found = cache.get((id(q), by_terms))  # by identity, as in _plan
            if found is not None and found[0] is q:
                # Groups of one query share its (immutable) test, which saves memory as well.
                _, group.test, group.terms = found
                return
        test, terms = compile_query(q, by_terms)
        group.test = test._replace(required=self._shared(test.required), forbidden=self._shared(test.forbidden))
        group.terms = terms
        if cache is not None:
            cache[(id(q), by_terms)] = (q, group.test, group.terms)

    def _unfile(self, group: Group) -> None:
        """Take the last subscription of a group out of the index."""
        how = holding(group)
        self._keep(group, [group.subs], False)  # type: ignore[list-item]  # the last one: an int
        for scope, key in group.keys:
            keyed = self._index[scope]
            entry = keyed[key]
            if how == VERIFIED:
                entry.remove_group(group)
            elif how == READY:
                entry.alternatives = [chunk for chunk in entry.alternatives or () if chunk[1]] or None
            if entry.empty():
                del keyed[key]
                if not keyed:
                    del self._index[scope]
                if key.startswith(PREFIX_MARK):
                    prefixed = self._prefixed[scope]
                    del prefixed[key]
                    if not prefixed:
                        del self._prefixed[scope]

    # -- matching

    def match(self, event: EventFacts) -> list[Match]:
        """Every subscription whose filter matches the event, with the terms that matched (in no particular order)."""
        return list(self.matches(event))

    def matches(self, event: EventFacts) -> Matches:
        """Every subscription whose filter matches the event, in chunks of equal terms: nothing made per match."""
        doc = event.doc
        stems = doc.stems
        scopes = event_scopes(event)
        in_scopes = frozenset(scopes)
        chunks: list[Chunk] = []
        alternatives: list[IdChunk] = []
        pending: list[Group] = []
        for scope in scopes:
            keyed = self._index.get(scope)
            if keyed is None:
                continue
            for entry in _hits(scope, keyed, self._prefixed.get(scope), doc):
                if entry.ready:
                    chunks += entry.ready
                if entry.alternatives:
                    alternatives += entry.alternatives
                if entry.groups:
                    pending += entry.groups
                if entry.held is not None:
                    answer_held(entry.held, doc, in_scopes, chunks, alternatives)
                pairs = entry.pairs
                if pairs is not None:
                    if isinstance(pairs, tuple):
                        if pairs[0] in stems:
                            paired = pairs[1]
                            if isinstance(paired, list):
                                pending += paired
                            else:
                                pending.append(paired)
                        continue
                    if len(pairs) <= len(stems):
                        found = [paired for stem, paired in pairs.items() if stem in stems]
                    else:
                        found = [paired for paired in map(pairs.get, stems) if paired is not None]
                    for paired in found:
                        if isinstance(paired, list):
                            pending += paired
                        else:
                            pending.append(paired)
        verify(pending, doc, in_scopes, chunks)
        return Matches(chunks, alternatives, self._merged_terms)


def event_keys(event: EventFacts) -> list[tuple[str, str]]:
    """Every (scope, key) pair an event probes: a filter filed under any of them is a candidate for it."""
    out: list[tuple[str, str]] = []
    for scope in event_scopes(event):
        if scope[:1] in ("", "c", "r"):
            out.extend((scope, key) for key in event.doc.keys)
        else:
            out.append((scope, ANY))
    return out


def _one_fires(keys: tuple[tuple[str, str], ...]) -> bool:
    """Whether an event can fire at most one of these keys: one key, in scopes an event is in at most one of. A
    filter on one word in several councils is then answered as ready ids, not as alternatives to be merged: the
    commonest multi-key filter of all."""
    key = keys[0][1]
    return all(k == key for _, k in keys) and one_per_event({scope for scope, _ in keys})


def _hits(scope: str, keyed: dict[str, _Entry], prefixed: dict[str, _Entry] | None, doc: Document) -> list[_Entry]:
    """The entries a scope offers for an event's keys."""
    if scope[:1] not in ("", "c", "r"):
        only = keyed.get(ANY)
        return [only] if only is not None else []
    # Council, region and global scopes hold term keys: probe whichever side is smaller, and an event's prefix keys
    # only among the scope's prefix entries. Probing the event's keys is a loop in C (`filter` drops the misses; an
    # entry is never false): an event of 2,000 words has ~1,500 stems and ~1,800 prefix keys.
    keys = doc.keys
    if len(keyed) < len(keys):
        return [entry for key, entry in keyed.items() if key in keys]
    out = list(filter(None, map(keyed.get, doc.stems)))
    every = keyed.get(ANY)
    if every is not None:
        out.append(every)
    if prefixed:
        prefixes = doc.prefixes
        if len(prefixed) < len(prefixes):
            out += [entry for key, entry in prefixed.items() if key in prefixes]
        else:
            out += filter(None, map(prefixed.get, prefixes))
    return out
