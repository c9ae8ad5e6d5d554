"""Answers an index entry keeps ready behind one cheap condition, so that the groups behind them are not touched.

Most groups the percolator verifies pass, and at a million filters what costs is touching them (group → test →
sets: a few cache misses each), not the tests. Four common shapes need one condition beside the entry's key, which
the event settles for all the entry's filters sharing it; their subscription ids are kept in arrays per set of
terms, as the entry's ready answers are, in a dict by condition (`Held`):

- `""`, *guarded*: an AND of the key's word and negated words ("planning -appeal", or "-appeal" alone under a
  scope's every-event key): it holds unless the event has one of those words. Its chunk carries them (the filter's
  own shared set): one `isdisjoint` in C settles it, without touching a group.
- a stem, *paired*: an AND of exactly the key and that stem (negated words allowed), taken when the event has it.
- a scope name, *scoped*: a fixed answer (no query, or a word) with one structural check of one dimension ("from
  this council", "of this committee"): taken when the event is in that scope.
- `ALTERNATIVES` → stem → ids, *alternatives*: an OR of words under a scope's every-event key ("trams OR buses"
  of decisions anywhere): taken, as alternatives (a subscription found under two words is merged), for the
  event's stems.
- `PREFIXES` → prefix → ids, *prefixed*: an AND of one prefix longer than its key ("environm*", negated words
  allowed): taken when a word of the event starts with it (one look per distinct prefix, however many filters).

Stems hold no control characters, scope names hold `\\x00`, so the conditions never clash. A condition's value is
its one chunk when that is all it holds; a chunk is (terms, ids), or (terms, ids, negated words) for subscriptions
of equal terms and equal negated words. Several chunks are a list when none has negated words, else a `Guard`. Ids
are an int when there is one (most of them), an array otherwise: the smallest forms that serve, since a million
filters make over a hundred thousand of these.
"""

from __future__ import annotations

from array import array
from typing import Any, TypeAlias

from notifier.topics.evaluate import ANY, EMPTY, PREFIX_MARK, Document
from notifier.topics.parse import Or, Prefix, Word
from notifier.topics.plan import one_per_event
from notifier.topics.verify import COLLECT, CONJ, FIXED, VERIFY, Chunk, Group, IdChunk, Subs

# How a group's answers are kept (`holding`): as ready ids in its entries (or alternatives), verified when offered,
# or held behind one condition: guarded, paired, prefixed, scoped, or an OR's words as alternatives.
READY, VERIFIED, GUARDED, PAIRED, PREFIXED, SCOPED, ALTERNATIVE = range(7)

PREFIXES = PREFIX_MARK  # the condition under which prefixed answers are kept, by prefix
ALTERNATIVES = "\x02"  # the condition under which ORs of words are kept, by stem

# A chunk kept behind a condition: (terms, ids), or (terms, ids, negated words) when the event must have none of
# those words; ids are an int when there is one.
Kept: TypeAlias = "tuple[tuple[str, ...], Subs] | tuple[tuple[str, ...], Subs, frozenset[str]]"
# By condition (see the module's docstring): one chunk, or a list of them; under PREFIXES and ALTERNATIVES, a dict
# of those by prefix or by stem.
Held: TypeAlias = "dict[str, Any]"


def holding(group: Group) -> int:
    """How a group's answers are kept: ready in its entries, held behind one condition, or verified."""
    test = group.test
    if not group.checks and (test.mode == FIXED or test.mode == COLLECT):
        return READY
    if len(group.keys) > 1:
        return VERIFIED  # held answers live under one key
    if test.mode == FIXED:
        return SCOPED if len(group.checks) == 1 and one_per_event(group.checks[0]) else VERIFIED
    if group.checks:
        return VERIFIED
    if test.mode == VERIFY:
        # An OR of words filed under a structural key (its words would make it a candidate too often): held as
        # alternatives under its words within that key.
        q = test.data
        words_or = type(q) is Or and all(type(item) is Word for item in q.items)
        return ALTERNATIVE if words_or and group.keys[0][1] == ANY else VERIFIED
    if test.mode != CONJ:
        return VERIFIED
    # An AND of words and negated words: held if it needs at most one stem beside its key, or one prefix.
    required = test.required
    extra = len(required) - (group.keys[0][1] in required)
    if test.data is not None:
        positive, negative = test.data
        one_prefix = len(positive) == 1 and type(positive[0]) is Prefix and not negative
        return PREFIXED if one_prefix and extra == 0 else VERIFIED
    return GUARDED if extra == 0 else PAIRED if extra == 1 else VERIFIED


def update(
    kept: Held | tuple[str, Any] | None, group: Group, how: int, sub: int, keep: bool
) -> Held | tuple[str, Any] | None:
    """An entry's held answers (or its one condition's pair, or None) with one subscription of a group held there
    (`how`, from `holding`) kept or forgotten."""
    held: Held = {} if kept is None else dict([kept]) if isinstance(kept, tuple) else kept
    test = group.test
    forbidden = test.forbidden
    change = hold if keep else release
    if how == ALTERNATIVE:
        by_stem = held.setdefault(ALTERNATIVES, {})
        texts: dict[str, list[str]] = {}
        for item in test.data.items:
            texts.setdefault(item.stem, []).append(item.text)
        for stem, found in texts.items():
            alternative(by_stem, stem, tuple(dict.fromkeys(found)), sub, keep)
        if not by_stem:
            del held[ALTERNATIVES]
    elif how == SCOPED:
        for scope in group.checks[0]:
            change(held, scope, group.terms, forbidden, sub)
    elif how == PREFIXED:
        by_prefix = held.setdefault(PREFIXES, {})
        change(by_prefix, test.data[0][0].prefix, group.terms, forbidden, sub)
        if not by_prefix:
            del held[PREFIXES]
    else:
        condition = "" if how == GUARDED else next(iter(test.required - {group.keys[0][1]}))
        change(held, condition, group.terms, forbidden, sub)
    return None if not held else next(iter(held.items())) if len(held) == 1 else held


def _chunk_ids(chunks: list[IdChunk], terms: tuple[str, ...]) -> array[int]:
    for chunk_terms, ids in chunks:
        if chunk_terms == terms:
            return ids
    ids = array("q")
    chunks.append((terms, ids))
    return ids


def alternative(by_stem: dict[str, Any], stem: str, terms: tuple[str, ...], sub: int, keep: bool) -> None:
    """Keep (or forget) a subscription found under a stem with these terms, as alternatives: always in arrays, as
    `Matches` reads alternatives."""
    value = by_stem.get(stem)
    chunks: list[IdChunk] = [] if value is None else [value] if type(value) is tuple else value
    ids = _chunk_ids(chunks, terms)
    if keep:
        ids.append(sub)
    else:
        ids.remove(sub)
        chunks = [chunk for chunk in chunks if chunk[1]]
    if chunks:
        by_stem[stem] = chunks[0] if len(chunks) == 1 else chunks
    else:
        del by_stem[stem]


def _without(ids: Subs, sub: int) -> Subs | None:
    """ids less sub: an int when one is left, None when none is."""
    if isinstance(ids, int):
        return None
    ids.remove(sub)
    return ids if len(ids) > 1 else ids[0] if ids else None


def _chunk(terms: tuple[str, ...], ids: Subs, forbidden: frozenset[str]) -> Kept:
    return (terms, ids) if not forbidden else (terms, ids, forbidden)


def add_id(chunks: list[Chunk], terms: tuple[str, ...], sub: int) -> None:
    """Add sub to the chunk of these terms (made if missing)."""
    for i, (chunk_terms, ids) in enumerate(chunks):
        if chunk_terms == terms:
            if isinstance(ids, int):
                chunks[i] = (terms, array("q", (ids, sub)))
            else:
                ids.append(sub)
            return
    chunks.append((terms, sub))


def drop_id(chunks: list[Chunk], terms: tuple[str, ...], sub: int) -> None:
    """Take sub out of the chunk of these terms (the chunk dropped when it is left with none)."""
    for i, (chunk_terms, ids) in enumerate(chunks):
        if chunk_terms == terms:
            rest = _without(ids, sub)
            if rest is None:
                del chunks[i]
            else:
                chunks[i] = (terms, rest)
            return


class Guard:
    """Several chunks behind negated words (the answers of "planning -appeal", "planning -parking", ... under one
    key): one chunk per terms, and per negated word the ids it excludes. One set operation in C settles the common
    case; a list of guarded chunks would cost a step in Python, and a few cache misses, per chunk."""

    __slots__ = ("chunks", "unless", "words")

    def __init__(self) -> None:
        self.chunks: list[Chunk] = []
        self.unless: dict[str, Subs] = {}  # a negated stem → the ids it excludes
        self.words: frozenset[str] = EMPTY  # the keys of unless

    def add(self, terms: tuple[str, ...], forbidden: frozenset[str], sub: int) -> None:
        add_id(self.chunks, terms, sub)
        unless = self.unless
        for stem in forbidden:
            ids = unless.get(stem)
            if ids is None:
                unless[stem] = sub
            elif isinstance(ids, int):
                unless[stem] = array("q", (ids, sub))
            else:
                ids.append(sub)
        if not forbidden <= self.words:
            self.words = frozenset(unless)

    def remove(self, terms: tuple[str, ...], forbidden: frozenset[str], sub: int) -> None:
        drop_id(self.chunks, terms, sub)
        for stem in forbidden:
            rest = _without(self.unless[stem], sub)
            if rest is None:
                del self.unless[stem]
            else:
                self.unless[stem] = rest
        if len(self.unless) < len(self.words):
            self.words = frozenset(self.unless)

    def answer(self, stems: frozenset[str], out: list[Chunk]) -> None:
        found = self.words.intersection(stems)
        if not found:
            out += self.chunks  # the common case: no excluding word, the ids as they are
            return
        excluded: set[int] = set()
        for stem in found:
            ids = self.unless[stem]
            if isinstance(ids, int):
                excluded.add(ids)
            else:
                excluded.update(ids)
        for terms, ids in self.chunks:
            if isinstance(ids, int):
                if ids not in excluded:
                    out.append((terms, ids))
            else:
                out.append((terms, array("q", [i for i in ids if i not in excluded])))


def hold(held: Held, condition: str, terms: tuple[str, ...], forbidden: frozenset[str], sub: int) -> None:
    """Keep a subscription under condition, answered with terms unless the event has one of the forbidden stems."""
    value = held.get(condition)
    if type(value) is Guard:
        value.add(terms, forbidden, sub)
        return
    chunks: list[Kept] = [] if value is None else [value] if type(value) is tuple else value
    for i, chunk in enumerate(chunks):
        if chunk[0] == terms and (chunk[2] if len(chunk) == 3 else EMPTY) == forbidden:
            ids = chunk[1]
            if isinstance(ids, int):
                chunks[i] = _chunk(terms, array("q", (ids, sub)), forbidden)
            else:
                ids.append(sub)
            break
    else:
        chunks.append(_chunk(terms, sub, forbidden))
    if len(chunks) > 1 and any(len(chunk) == 3 for chunk in chunks):
        # Several chunks, some behind negated words: one guard for them all.
        guard = held[condition] = Guard()
        for chunk in chunks:
            subs = chunk[1]
            for one in [subs] if isinstance(subs, int) else subs:
                guard.add(chunk[0], chunk[2] if len(chunk) == 3 else EMPTY, one)
        return
    held[condition] = chunks[0] if len(chunks) == 1 else chunks


def release(held: Held, condition: str, terms: tuple[str, ...], forbidden: frozenset[str], sub: int) -> None:
    """Forget a subscription `hold` kept (the condition dropped when it is left with nothing)."""
    value = held[condition]
    if type(value) is Guard:
        value.remove(terms, forbidden, sub)
        if not value.chunks:
            del held[condition]
        return
    chunks: list[Kept] = [value] if type(value) is tuple else value
    for i, chunk in enumerate(chunks):
        if chunk[0] == terms and (chunk[2] if len(chunk) == 3 else EMPTY) == forbidden:
            rest = _without(chunk[1], sub)
            if rest is None:
                del chunks[i]
            else:
                chunks[i] = _chunk(terms, rest, forbidden)
            break
    if not chunks:
        del held[condition]
    else:
        held[condition] = chunks[0] if len(chunks) == 1 else chunks


def answer(
    held: Held | tuple[str, Any], doc: Document, in_scopes: frozenset[str], out: list[Chunk],
    alternatives: list[IdChunk],
) -> None:
    """Append the chunks of held (or of one condition's pair) that hold for an event with this document, in these
    scopes, to out (the alternatives to alternatives)."""
    stems = doc.stems
    if isinstance(held, tuple):
        condition, value = held
        if not condition or condition in stems or condition in in_scopes:
            if type(value) is tuple and len(value) == 2:
                out.append(value)  # the commonest case of all: one chunk, nothing more to check
            else:
                _take(value, stems, out)
        else:
            _nested(condition, value, doc, out, alternatives)
        return
    if len(held) <= len(stems):
        for condition, value in held.items():
            if not condition or condition in stems or condition in in_scopes:
                _take(value, stems, out)
            elif condition in (PREFIXES, ALTERNATIVES):
                _nested(condition, value, doc, out, alternatives)
        return
    # An entry with more conditions than the event has stems (many second stems): the event's are looked up.
    for condition in in_scopes if ANY in in_scopes else in_scopes | {ANY}:  # "", the guarded, once
        value = held.get(condition)
        if value is not None:
            _take(value, stems, out)
    for condition in (PREFIXES, ALTERNATIVES):
        value = held.get(condition)
        if value is not None:
            _nested(condition, value, doc, out, alternatives)
    for value in map(held.get, stems):
        if value is not None:
            _take(value, stems, out)


def _nested(condition: str, value: Any, doc: Document, out: list[Chunk], alternatives: list[IdChunk]) -> None:
    """The answers kept by prefix or by stem under PREFIXES and ALTERNATIVES (nothing for another condition)."""
    if condition == PREFIXES:
        for prefix, kept in value.items():
            if doc.has_prefix(prefix):
                _take(kept, doc.stems, out)
    elif condition == ALTERNATIVES:
        _found(value, doc.stems, alternatives)


def _found(by_stem: dict[str, Any], stems: frozenset[str], alternatives: list[IdChunk]) -> None:
    if len(by_stem) <= len(stems):
        values = [value for stem, value in by_stem.items() if stem in stems]
    else:
        values = [value for value in map(by_stem.get, stems) if value is not None]
    for value in values:
        if type(value) is tuple:
            alternatives.append(value)
        else:
            alternatives += value


def _take(value: Any, stems: frozenset[str], out: list[Chunk]) -> None:
    """Append a condition's chunks, those behind negated words only for the subscriptions the event keeps."""
    kind = type(value)
    if kind is tuple:
        if len(value) == 2:
            out.append(value)
        elif value[2].isdisjoint(stems):
            out.append(value[:2])
    elif kind is list:
        out += value  # several chunks, none behind negated words
    else:
        value.answer(stems, out)
