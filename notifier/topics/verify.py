"""What the percolator checks when the index offers a filter as a candidate: each query compiled once into a test.

A `Group` is one distinct filter (the subscriptions sharing it) as the index holds it. Its query is compiled into a
`Test`, shared by every group of that query: stems the event must all contain, word stems it must not contain,
then what is left to check, if anything (phrases and prefixes of an AND, the branches of an OR, or the whole query
for anything else). The two set tests come first because they settle most candidates: at a million subscriptions
a 200-word event is offered about a thousand groups, most of which lack a second word they need, and every
candidate costs a few cache misses; the cheaper the first look, the better. A query's necessary stems are found
for any shape (an AND needs what any of its parts needs, an OR what all its branches need), so even a nested query
is rarely walked in full.

`verify` is the inner loop of the service: plain statements, ordered by how often each case comes up.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator
from itertools import chain
from typing import Any, Final, NamedTuple, TypeAlias

import numpy as np
from numpy.typing import NDArray

from notifier.topics.evaluate import EMPTY, PREFIX_KEY_CHARS, Document, Filter, matched_terms
from notifier.topics.parse import And, Not, Or, Phrase, Prefix, Query, Word


class Match(NamedTuple):
    """A subscription an event matched, and the query's terms found in it (empty for filters with no query)."""

    sub_id: int
    terms: tuple[str, ...]


# Subscription ids: one as an int (the common case, no container), several in an array of 64-bit ints.
Subs: TypeAlias = "int | array[int]"
# Subscriptions that matched with the same terms: the terms, and the ids.
Chunk: TypeAlias = "tuple[tuple[str, ...], Subs]"
IdChunk: TypeAlias = "tuple[tuple[str, ...], array[int]]"


def new_ids(first: int, second: int) -> array[int]:
    return array("q", (first, second))


class Matches:
    """Every subscription an event matched, in chunks that share their matched terms.

    The index keeps its answers as arrays of ids, per group of subscriptions and per index key, and the answer is
    a list of references to them: nothing is made per matching subscription. `ids()` gives every id in one array,
    `by_terms()` the chunks (what the matcher needs: one snippet search per distinct terms), and iterating gives a
    `Match` per subscription. Read it before the index changes: the chunks are the index's own arrays.

    `alternatives` are the chunks of filters filed under several keys (or an OR's words kept under one, see
    topics.held): a subscription the event found under two of them is in two chunks, with the terms of each; it is
    answered once, with the terms of both in query order (`merge` gives them).
    """

    __slots__ = ("_alternatives", "_chunks", "_merge")

    def __init__(
        self, chunks: list[Chunk], alternatives: list[IdChunk], merge: Callable[[int, set[str]], tuple[str, ...]]
    ) -> None:
        self._chunks = chunks
        self._alternatives = alternatives
        self._merge = merge

    def __len__(self) -> int:
        return len(self.ids())

    def __iter__(self) -> Iterator[Match]:
        for terms, ids in self.by_terms():
            for sub in ids:
                yield Match(sub, terms)

    def ids(self) -> array[int]:
        """Every matched subscription's id (each once)."""
        every = [subs for _, subs in self._chunks]
        # Many chunks are one subscription: converted in one call; the arrays' contents joined in C and added.
        out = array("q", [subs for subs in every if type(subs) is int])
        out.frombytes(b"".join([subs for subs in every if type(subs) is not int]))  # type: ignore[misc]
        alternatives = self._alternatives
        if len(alternatives) == 1:
            out += alternatives[0][1]
        elif alternatives:
            # Each alternative id once: sorted and deduplicated in C (a Python set made an int object per id: about
            # a tenth of a 2,000-word event's time).
            found = _sorted_ids(alternatives)
            out.frombytes(found[_firsts(found)].tobytes())
        return out

    def by_terms(self) -> Iterator[tuple[tuple[str, ...], array[int]]]:
        """(terms, ids) for every distinct set of matched terms."""
        merged: dict[tuple[str, ...], array[int]] = {}
        for terms, subs in chain(self._chunks, self._alternative_chunks()):
            found = merged.get(terms)
            if found is None:
                found = merged[terms] = array("q")
            if isinstance(subs, int):
                found.append(subs)
            else:
                found += subs
        for terms, ids in merged.items():
            if ids:
                yield terms, ids

    def _alternative_chunks(self) -> list[Chunk]:
        """The alternatives, each subscription once: those found more than once apart, with their merged terms."""
        out: list[Chunk] = []
        ids = _sorted_ids(self._alternatives) if len(self._alternatives) > 1 else None
        twice = set(ids[1:][ids[1:] == ids[:-1]].tolist()) if ids is not None else None  # ids found more than once
        if not twice:
            out += self._alternatives
            return out
        found: dict[int, set[str]] = {sub: set() for sub in twice}
        for terms, subs in self._alternatives:
            hit = twice.intersection(subs)
            if not hit:
                out.append((terms, subs))
                continue
            out.append((terms, array("q", [sub for sub in subs if sub not in twice])))
            for sub in hit:
                found[sub].update(terms)
        out += [(self._merge(sub, texts), sub) for sub, texts in found.items()]
        return out


def _sorted_ids(chunks: list[IdChunk]) -> NDArray[np.int64]:
    """Every id of these chunks (arrays of 64-bit ints), sorted: joined and sorted in C, no object per id."""
    found = np.frombuffer(b"".join([subs for _, subs in chunks]), dtype=np.int64).copy()
    found.sort()
    return found


def _firsts(ids: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Where each distinct value of sorted ids first occurs."""
    keep = np.empty(ids.size, dtype=np.bool_)
    keep[:1] = True
    np.not_equal(ids[1:], ids[:-1], out=keep[1:])
    return keep


# How a group offered as a candidate is verified once its set tests pass.
FIXED: Final = 0  # nothing left: the index key is the query (a word, a short prefix), or there is no query
CONJ: Final = 1  # an AND of terms and negated terms: data = (phrases and prefixes that must hold, that must not)
COLLECT: Final = 2  # an OR of words and short prefixes: data = ((is word, key, text), ...); terms are what is found
VERIFY: Final = 3  # anything else: data = the query, evaluated, then its terms found


class Test(NamedTuple):
    """A compiled query: cheap set tests first, then what `mode` says (see the modes above)."""

    required: frozenset[str]  # stems the event must all contain
    forbidden: frozenset[str]  # word stems the event must not contain
    mode: int
    data: Any


NO_TEST: Final = Test(EMPTY, EMPTY, FIXED, None)


class Group:
    """Subscriptions sharing one filter, and what is left to check when the index offers it as a candidate."""

    __slots__ = ("checks", "filt", "keys", "multi", "special", "subs", "terms", "test")

    def __init__(self, filt: Filter, sub_id: int) -> None:
        self.filt = filt
        self.subs: Subs = sub_id  # one subscription (the common case) without a container
        self.keys: tuple[tuple[str, str], ...] = ()
        self.multi = False  # filed under several keys an event may fire together: it may be offered twice
        # Sets of scopes the index does not already guarantee: the event must be in one scope of each.
        self.checks: tuple[frozenset[str], ...] = ()
        self.special = False  # multi or checks: the rare path of the inner loop
        self.test = NO_TEST
        self.terms: tuple[str, ...] = ()  # the terms of a match, for modes whose terms are fixed


def exact(q: Query) -> bool:
    """Whether a query holds whenever one of its anchor keys fires (a word, a short prefix, an OR of those)."""
    if isinstance(q, Word):
        return True
    if isinstance(q, Prefix):
        return len(q.prefix) <= PREFIX_KEY_CHARS
    return isinstance(q, Or) and all(exact(i) for i in q.items)


def compile_query(q: Query, by_terms: bool) -> tuple[Test, tuple[str, ...]]:
    """A query's test, and the terms of a match when they are fixed (empty otherwise)."""
    if by_terms and isinstance(q, Word | Prefix) and exact(q):
        return NO_TEST, (q.text,)
    conj = _conjunction(q)
    if conj is not None:
        return conj
    if by_terms and isinstance(q, Or) and exact(q):
        data = tuple(
            (True, i.stem, i.text) if isinstance(i, Word) else (False, i.prefix, i.text)  # type: ignore[union-attr]
            for i in q.items
        )
        return Test(EMPTY, EMPTY, COLLECT, data), ()
    return Test(frozenset(_necessary(q)), frozenset(_excluded(q)), VERIFY, q), ()


def _conjunction(q: Query) -> tuple[Test, tuple[str, ...]] | None:
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
    rest = (tuple(positive), tuple(negative)) if positive or negative else None
    return Test(frozenset(required), frozenset(forbidden), CONJ, rest), tuple(dict.fromkeys(terms))


def _necessary(q: Query) -> set[str]:
    """Stems every document matching q contains."""
    if isinstance(q, Word):
        return {q.stem}
    if isinstance(q, Phrase):
        return set(q.stems)
    if isinstance(q, And):
        return set().union(*map(_necessary, q.items))
    if isinstance(q, Or):
        return set.intersection(*map(_necessary, q.items))
    return set()  # Prefix, Not


def _excluded(q: Query) -> set[str]:
    """Word stems no document matching q contains."""
    if isinstance(q, Not):
        return {q.item.stem} if isinstance(q.item, Word) else set()
    if isinstance(q, And):
        return set().union(*map(_excluded, q.items))
    if isinstance(q, Or):
        return set.intersection(*map(_excluded, q.items))
    return set()


def _holds(term: Phrase | Prefix, doc: Document) -> bool:
    return doc.has_phrase(term.stems) if type(term) is Phrase else doc.has_prefix(term.prefix)  # type: ignore[union-attr]


def collect(data: tuple[tuple[bool, str, str], ...], doc: Document) -> tuple[str, ...]:
    """The texts of an OR's words and short prefixes the document has, in query order."""
    stems = doc.stems
    found = [text for is_word, key, text in data if (key in stems if is_word else doc.has_prefix(key))]
    return tuple(dict.fromkeys(found))


def verify(  # noqa: C901
    offered: list[Group], doc: Document, in_scopes: frozenset[str], out: list[Chunk]
) -> None:
    """Append (terms, subscriptions) for every offered group that holds for the document."""
    stems = doc.stems
    seen: set[int] = set()
    for g in offered:
        required, forbidden, mode, data = g.test
        if not required <= stems or (forbidden and not forbidden.isdisjoint(stems)):
            continue
        if g.special:
            if g.multi:
                if id(g) in seen:
                    continue
                seen.add(id(g))
            checked = True
            for needed in g.checks:
                if needed.isdisjoint(in_scopes):
                    checked = False
                    break
            if not checked:
                continue
        if mode == CONJ:
            if data is not None:
                positive, negative = data
                if positive and not all([_holds(t, doc) for t in positive]):
                    continue
                if negative and any([_holds(t, doc) for t in negative]):
                    continue
            terms = g.terms
        elif mode == FIXED:
            terms = g.terms
        elif mode == COLLECT:
            terms = collect(data, doc)
        else:
            found = matched_terms(data, doc)
            if found is None:
                continue
            terms = tuple(found)
        out.append((terms, g.subs))
