"""Answers kept behind one condition (topics.held): the forms a condition's answers take, and what they answer."""

from __future__ import annotations

from notifier.topics.evaluate import Document
from notifier.topics.held import ALTERNATIVES, PREFIXES, Guard, Held, alternative, answer, hold, release
from notifier.topics.text import stem


def _answer(held: Held, text: str, scopes: frozenset[str] = frozenset({""})) -> dict[tuple[str, ...], list[int]]:
    out: list = []  # type: ignore[type-arg]
    alternatives: list = []  # type: ignore[type-arg]
    answer(held, Document.from_text(text), scopes, out, alternatives)
    found: dict[tuple[str, ...], list[int]] = {}
    for terms, ids in out + alternatives:
        found.setdefault(terms, []).extend([ids] if isinstance(ids, int) else ids)
    return {terms: sorted(ids) for terms, ids in found.items() if ids}


def test_held_guarded_answers_grow_from_one_chunk_to_a_guard_and_back() -> None:
    held: Held = {}
    appeal, hearing = frozenset({"appeal"}), frozenset({"appeal", "hear"})
    hold(held, "", ("planning",), appeal, 1)
    assert held[""] == (("planning",), 1, appeal)  # one subscription: an int, with its negated words
    hold(held, "", ("planning",), appeal, 2)
    assert held[""][1].tolist() == [1, 2]
    assert _answer(held, "planning committee") == {("planning",): [1, 2]}
    assert _answer(held, "planning appeal") == {}
    hold(held, "", ("plans",), hearing, 3)  # other terms and other words: a guard for the lot
    assert type(held[""]) is Guard
    assert _answer(held, "planning and plans") == {("planning",): [1, 2], ("plans",): [3]}
    assert _answer(held, "planning hearing") == {("planning",): [1, 2]}
    assert _answer(held, "planning appeal") == {}
    release(held, "", ("planning",), appeal, 1)
    release(held, "", ("planning",), appeal, 2)
    assert _answer(held, "planning appeal plans") == {}
    assert _answer(held, "plans") == {("plans",): [3]}
    release(held, "", ("plans",), hearing, 3)
    assert held == {}


def test_held_plain_chunks_by_condition_and_scope() -> None:
    held: Held = {}
    none: frozenset[str] = frozenset()
    hold(held, "care", ("dementia", "care"), none, 1)  # paired: taken when the event has "care"
    hold(held, "c\x00kent", (), none, 2)  # scoped: taken when the event is in that scope
    hold(held, "c\x00kent", ("x",), none, 3)
    assert type(held["c\x00kent"]) is list
    assert _answer(held, "dementia care") == {("dementia", "care"): [1]}
    assert _answer(held, "dementia", frozenset({"", "c\x00kent"})) == {(): [2], ("x",): [3]}
    for condition, terms, sub in [("care", ("dementia", "care"), 1), ("c\x00kent", (), 2), ("c\x00kent", ("x",), 3)]:
        release(held, condition, terms, none, sub)
    assert held == {}


def test_held_prefixes_and_alternatives() -> None:
    held: Held = {PREFIXES: {}, ALTERNATIVES: {}}
    hold(held[PREFIXES], "environm", ("environm*",), frozenset(), 1)
    alternative(held[ALTERNATIVES], stem("trams"), ("trams",), 2, True)
    alternative(held[ALTERNATIVES], stem("buses"), ("buses",), 2, True)
    assert _answer(held, "environmental trams") == {("environm*",): [1], ("trams",): [2]}
    out: list = []  # type: ignore[type-arg]
    alternatives: list = []  # type: ignore[type-arg]
    answer(held, Document.from_text("trams and buses"), frozenset({""}), out, alternatives)
    assert out == [] and sorted(terms for terms, _ in alternatives) == [("buses",), ("trams",)]  # merged by Matches
    alternative(held[ALTERNATIVES], stem("trams"), ("trams",), 2, False)
    assert _answer(held, "trams") == {}
