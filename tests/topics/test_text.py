"""The tokeniser shared by documents and queries, and the tsvector literal built from it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifier.topics.text import (
    MAX_LEXEME_BYTES,
    MAX_POSITION,
    MAX_POSITIONS_PER_LEXEME,
    MAX_WORD_CHARS,
    RAW_MARK,
    Token,
    _bounded_postings,
    fold,
    postings,
    postings_of,
    quote_lexeme,
    tokenize,
    tsvector_literal,
    tsvector_literal_of,
    words,
)


def raws(text: str) -> list[str]:
    return [t.raw for t in tokenize(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dementia", ["dementia"]),
        ("MENTAL-HEALTH", ["mental", "health"]),
        ("mental\u2013health", ["mental", "health"]),  # en dash
        ("council's", ["councils"]),
        ("council\u2019s", ["councils"]),  # curly apostrophe
        ("councilʼs", ["councils"]),  # modifier-letter apostrophe
        ("parents' evening", ["parents", "evening"]),
        ("O'Neill", ["oneill"]),
        ("'quoted'", ["quoted"]),
        ("\u201cquoted\u201d", ["quoted"]),
        ("2025/26", ["2025", "26"]),
        ("Q2", ["q", "2"]),
        ("COVID-19", ["covid", "19"]),
        ("covid19", ["covid", "19"]),
        ("S106", ["s", "106"]),
        ("£1,000.50", ["1", "000", "50"]),
        ("Café Église", ["cafe", "eglise"]),
        ("Ynys Môn", ["ynys", "mon"]),
        ("Straße", ["strasse"]),
        ("ﬁnance", ["finance"]),  # ligature
        ("ＦＵＬＬ ｗｉｄｔｈ", ["full", "width"]),
        ("x²", ["x", "2"]),
        ("infor\u00admation", ["information"]),  # soft hyphen
        ("snake_case", ["snake", "case"]),
        ("tab\there\x00nul\x1bescape", ["tab", "here", "nul", "escape"]),
        ("e.g. U.K.", ["e", "g", "u", "k"]),
        ("and the of", ["and", "the", "of"]),  # no stopwords
        ("--- ... !!!", []),
        ("", []),
    ],
)
def test_tokenize_folds_and_splits(text: str, expected: list[str]) -> None:
    assert raws(text) == expected


@pytest.mark.parametrize(
    ("word", "stem"),
    [
        ("dementias", "dementia"),
        ("dementia", "dementia"),
        ("councils", "council"),
        ("Council's", "council"),
        ("planning", "plan"),
        ("children", "children"),
        ("2025", "2025"),
    ],
)
def test_tokenize_stems(word: str, stem: str) -> None:
    assert [t.stem for t in tokenize(word)] == [stem]


def test_tokenize_positions_count_words_from_one() -> None:
    assert tokenize("Health & Wellbeing, 2025/26") == [
        Token("health", "health", 1),
        Token("wellbeing", "wellb", 2),
        Token("2025", "2025", 3),
        Token("26", "26", 4),
    ]


def test_tokenize_long_word_cut() -> None:
    (token,) = tokenize("x" * 10_000)
    assert token.raw == "x" * MAX_WORD_CHARS


def test_tokenize_long_text_every_word() -> None:
    tokens = tokenize("alpha beta " * 20_000)
    assert len(tokens) == 40_000
    assert tokens[-1] == Token("beta", "beta", 40_000)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ABC", "abc"),
        ("\u2018a\u2019 \u201cb\u201d c\u2014d", "'a' \"b\" c-d"),
        ("Ångström", "angstrom"),
        ("ℌello", "hello"),
    ],
)
def test_fold_table(text: str, expected: str) -> None:
    assert fold(text) == expected


@settings(max_examples=200)
@given(st.text())
def test_tokenize_raw_words_are_fixed_points(text: str) -> None:
    """A folded word tokenises to itself: what queries store re-parses to the same words."""
    for token in tokenize(text):
        assert tokenize(token.raw) == [Token(token.raw, token.stem, 1)]
    assert fold(fold(text)) == fold(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("Dementias", "'dementia':1 '=dementias':1"),
        (
            "Dementia; dementias!",
            "'dementia':1,2 '=dementia':1 '=dementias':2",
        ),
        ("Children's services", "'children':1 'servic':2 '=childrens':1 '=services':2"),
    ],
)
def test_tsvector_literal_table(text: str, expected: str) -> None:
    assert tsvector_literal(text) == expected


def test_postings_clamps_positions() -> None:
    p = postings("filler " * (MAX_POSITION + 10) + "late tail")
    assert p.stems["late"] == [MAX_POSITION]
    assert p.stems["tail"] == [MAX_POSITION]
    assert len(p.stems["filler"]) == MAX_POSITIONS_PER_LEXEME
    assert p.stems["filler"][-1] == MAX_POSITIONS_PER_LEXEME
    assert not p.truncated


def _letters(n: int) -> str:
    """Four letters spelling n in base 26: distinct words without digits (digits would split them)."""
    out = ""
    for _ in range(4):
        n, r = divmod(n, 26)
        out += chr(ord("a") + r)
    return out


def test_postings_lexeme_budget_truncates() -> None:
    # Distinct 100-character words: each costs 100 bytes as a stem and 101 as a raw word.
    distinct = [_letters(i) + "a" * (MAX_WORD_CHARS - 4) for i in range(6000)]
    p = postings(" ".join(distinct))
    used = sum(len(s) for s in p.stems) + sum(len(r) + 1 for r in p.raws)
    assert p.truncated
    assert MAX_LEXEME_BYTES - 201 < used <= MAX_LEXEME_BYTES
    # The words kept are the first ones: later text can only repeat words seen before.
    assert distinct[0] in p.raws
    assert distinct[-1] not in p.raws


def test_words_pairs() -> None:
    assert words("Running councils") == [("running", "run"), ("councils", "council")]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12), max_size=MAX_POSITIONS_PER_LEXEME + 40))
def test_short_texts_take_a_shortcut_to_the_same_postings(texts: list[str]) -> None:
    # Texts too short for any limit skip the checks; the answer must be what the checked path gives.
    pairs = words(" ".join(texts))
    assert postings_of(pairs) == _bounded_postings(pairs)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_tsvector_literal_quotes_as_quote_lexeme_does(text: str) -> None:
    p = postings(text)
    expected = [f"{quote_lexeme(s)}:{','.join(map(str, pos))}" for s, pos in p.stems.items()]
    expected += [f"{quote_lexeme(RAW_MARK + r)}:{','.join(map(str, pos))}" for r, pos in p.raws.items()]
    assert tsvector_literal(text) == " ".join(expected)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["council", "Councils", "budget", "plan", "café", "£5", "A1", "x" * 120]),
                min_size=MAX_POSITIONS_PER_LEXEME, max_size=3 * MAX_POSITIONS_PER_LEXEME))
def test_long_texts_capped_afterwards_give_the_same_postings(texts: list[str]) -> None:
    # A long text whose lexemes repeat past the positions a lexeme keeps: capped after the fact, the same postings.
    pairs = words(" ".join(texts))
    assert postings_of(pairs) == _bounded_postings(pairs)


def test_long_text_over_the_byte_limit_gives_the_same_postings() -> None:
    distinct = [_letters(i) + "a" * (MAX_WORD_CHARS - 4) for i in range(6000)]
    pairs = words(" ".join(distinct + distinct[:10]))
    assert postings_of(pairs) == _bounded_postings(pairs)
    assert postings_of(pairs).truncated


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=60), max_size=12))
def test_a_texts_words_are_its_lines_words(lines: list[str]) -> None:
    # What lets a writer split each line of many texts once: line breaks always separate words.
    text = "\n".join(lines)
    pairs = [pair for line in text.split("\n") for pair in words(line)]
    assert pairs == words(text)
    assert tsvector_literal_of(pairs) == tsvector_literal(text)
