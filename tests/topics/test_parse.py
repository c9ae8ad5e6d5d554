"""The topic filter language: parsing, precedence, errors, limits and the canonical form."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifier.topics.parse import (
    MATCH_ALL,
    MAX_QUERY_CHARS,
    And,
    Not,
    Or,
    Phrase,
    Prefix,
    Query,
    QueryError,
    Word,
    _parse_full,
    _parse_simple,
    canonical,
    parse,
)

W = Word


def P(*words: str) -> Phrase:
    return Phrase(words)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("dementia", W("dementia")),
        ("Dementias", W("dementias")),
        ('"mental health"', P("mental", "health")),
        ("mental-health", P("mental", "health")),
        ("\u201cmental health\u201d", P("mental", "health")),
        ('"dementia"', W("dementia")),
        ("child*", Prefix("child")),
        ("CHILD**", Prefix("child")),
        ("social AND care", And((W("social"), W("care")))),
        ("social care", And((W("social"), W("care")))),
        ("social & care", And((W("social"), W("care")))),
        ("housing OR homelessness", Or((W("housing"), W("homelessness")))),
        ("housing | homelessness", Or((W("housing"), W("homelessness")))),
        ("housing or homelessness", Or((W("housing"), W("homelessness")))),
        ("planning -parking", And((W("planning"), Not(W("parking"))))),
        ("planning NOT parking", And((W("planning"), Not(W("parking"))))),
        ("planning !parking", And((W("planning"), Not(W("parking"))))),
        ("planning \u2013parking", And((W("planning"), Not(W("parking"))))),
        ("planning - parking", And((W("planning"), W("parking")))),  # a spaced dash is punctuation
        ("-parking", Not(W("parking"))),
        ('-"car parks"', Not(P("car", "parks"))),
        ("-(a OR b)", Not(Or((W("a"), W("b"))))),
        ("--parking", Not(W("parking"))),
        ("NOT NOT parking", W("parking")),
        ("-(-parking)", W("parking")),
        (
            '(respiratory OR asthma) AND "west leicestershire"',
            And((Or((W("respiratory"), W("asthma"))), P("west", "leicestershire"))),
        ),
        # NOT binds tighter than AND, AND tighter than OR.
        ("a b OR c", Or((And((W("a"), W("b"))), W("c")))),
        ("a OR b c", Or((W("a"), And((W("b"), W("c")))))),
        ("NOT a b", And((Not(W("a")), W("b")))),
        ("NOT a OR b", Or((Not(W("a")), W("b")))),
        ("a AND b OR c AND d", Or((And((W("a"), W("b"))), And((W("c"), W("d")))))),
        # Nested operators of one kind flatten; repeats collapse.
        ("a (b c)", And((W("a"), W("b"), W("c")))),
        ("(a OR b) OR (c OR a)", Or((W("a"), W("b"), W("c")))),
        ("a a", W("a")),
        ("((a))", W("a")),
        # Quoted operators are words.
        ('"and"', W("and")),
        ('"Health and Wellbeing"', P("health", "and", "wellbeing")),
        ('"or" OR "not"', Or((W("or"), W("not")))),
        ("AND*", Prefix("and")),
        # Stray punctuation inside and between words.
        ("covid-19", P("covid", "19")),
        ("2025/26", P("2025", "26")),
        ("council's", W("councils")),
        ("+housing", W("housing")),
        ("a & . , b", And((W("a"), W("b")))),
        ("Café", W("cafe")),
        ('"mental heal*"', P("mental", "heal")),  # '*' inside quotes is text
        ("a\x00b", And((W("a"), W("b")))),  # control characters separate
        ("", MATCH_ALL),
        ("   \t\n", MATCH_ALL),
    ],
)
def test_parse_language(query: str, expected: Query) -> None:
    assert parse(query) == expected


@pytest.mark.parametrize(
    ("query", "message", "position"),
    [
        ('dementia "mental', "unclosed quote", 9),
        ("a) b", "')' without '('", 1),
        (")", "')' without '('", 0),
        ("(a OR b", "unclosed '('", 0),
        ("x (", "unclosed '('", 2),
        ("()", "empty parentheses", 0),
        ("a ( - )", "empty parentheses", 2),
        ('""', "empty phrase", 0),
        ('a " -- "', "empty phrase", 2),
        ("housing OR", "operator OR with nothing after it", 8),
        ("housing AND", "operator AND with nothing after it", 8),
        ("NOT", "operator NOT with nothing after it", 0),
        ("a NOT", "operator NOT with nothing after it", 2),
        ("(a OR) b", "operator OR with nothing after it", 3),
        ("OR housing", "operator OR with nothing before it", 0),
        ("(AND a)", "operator AND with nothing before it", 1),
        ("a AND OR b", "expected a word, phrase or '(' after AND, found OR", 6),
        ("NOT AND a", "expected a word, phrase or '(' after NOT, found AND", 4),
        ("AND", "operator AND with nothing before it", 0),
        ("AND OR NOT", "operator AND with nothing before it", 0),
        ("ab*", "a prefix needs at least 3 letters or digits before '*'", 0),
        ("x -ch*", "a prefix needs at least 3 letters or digits before '*'", 3),
        ("q2*", "a prefix must be a single word, but 'q2' is 2 words", 0),
        ("...", "no words to search for", 0),
        ("- . *", "no words to search for", 0),
        ("- & *", "operator AND with nothing before it", 2),
        ("a" * (MAX_QUERY_CHARS + 1), "query is longer than 1000 characters", 1000),
        ("(" * 11 + "a" + ")" * 11, "parentheses nested deeper than 10", 10),
        (" ".join(["w"] * 65), "too many terms (the limit is 64 words)", 128),
        ('"' + " ".join(["w"] * 65) + '"', "too many terms (the limit is 64 words)", 0),
    ],
)
def test_parse_errors(query: str, message: str, position: int) -> None:
    with pytest.raises(QueryError) as e:
        parse(query)
    assert (e.value.message, e.value.position) == (message, position)
    assert str(e.value) == f"{message} at {position}"


@pytest.mark.parametrize(
    "query",
    [
        "(" * 10 + "a" + ")" * 10,  # the deepest nesting allowed
        " ".join(["w"] * 64),  # the most terms allowed
        "a" * MAX_QUERY_CHARS,  # the longest query allowed
        "-" * 998 + "a",  # a long run of NOT marks is one NOT, without recursion
        "NOT " * 240 + "a",
        "x" * 999 + "*",
    ],
)
def test_parse_limits_accepted(query: str) -> None:
    parse(query)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("a" * MAX_QUERY_CHARS, W("a" * 100)),  # words are cut like document words
        ("-" * 998 + "a", Not(W("a"))),
        ("NOT " * 240 + "a", W("a")),
        ("x" * 999 + "*", Prefix("x" * 100)),
    ],
)
def test_parse_hostile_shapes(query: str, expected: Query) -> None:
    assert parse(query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ""),
        ("Dementia", "dementia"),
        ("social care", "social AND care"),
        ("planning -parking", "planning AND NOT parking"),
        ("(a OR b) c", "(a OR b) AND c"),
        ("a b OR c", "a AND b OR c"),
        ("-(a b)", "NOT (a AND b)"),
        ("-(a OR b)", "NOT (a OR b)"),
        ('-"car park"', 'NOT "car park"'),
        ("Mental-Health", '"mental health"'),
        ('"and" OR x', '"and" OR x'),
        ("CHILD*", "child*"),
        ("((x))", "x"),
        ("Ynys Môn’s", "ynys AND mons"),
    ],
)
def test_canonical_table(query: str, expected: str) -> None:
    assert canonical(parse(query)) == expected


_PIECES = st.sampled_from(
    [
        "AND", "OR", "NOT", "and", "or", "&", "|", "(", ")", "-", "!", '"', "*", "...", "\u201c", "\u201d",
        "dementia", "Mental", "health", "child*", "care*", "covid-19", "2025/26", "council's", "Café", "and*",
        "-parking", '"west leicestershire"', "q2", "\u2013", "\x07",
    ]
)


@settings(max_examples=300)
@given(st.lists(_PIECES | st.text(max_size=6), max_size=14).map(" ".join))
def test_canonical_round_trip(query: str) -> None:
    """Anything that parses has a canonical text that parses back to the same tree and the same text."""
    try:
        q = parse(query)
    except QueryError as e:
        assert 0 <= e.position <= len(query)
        return
    text = canonical(q)
    assert parse(text) == q
    assert canonical(parse(text)) == text


@settings(max_examples=200)
@given(st.text(max_size=200))
def test_parse_any_text_is_a_query_or_a_query_error(query: str) -> None:
    try:
        parse(query)
    except QueryError as e:
        assert 0 <= e.position <= len(query)


_SIMPLE_PIECES = st.sampled_from(
    [
        "AND", "OR", "NOT", "and", "Or", "&", "&&", "|", "||", "-", "!", "--", "*", "dementia", "Dementias", "care",
        "CARE", "child*", "chi*", "ch*", "car**", "-parking", "!parking", "-!care*", "2025", "q2", "x" * 120,
        "x" * 120 + "*", "-", "a-b", "(", '"',
    ]
)


@settings(max_examples=400)
@given(
    st.lists(_SIMPLE_PIECES | st.text(alphabet="ab*-!& ", max_size=4), max_size=70),
    st.sampled_from([" ", "  ", "\t", "\n", "\x1f", "\x00"]),
)
def test_simple_parse_agrees_with_the_full_parser(pieces: list[str], sep: str) -> None:
    """The shortcut for plain queries gives the full parser's tree, or leaves the query (and any error) to it."""
    query = sep.join(pieces)
    simple = _parse_simple(query)
    try:
        full = _parse_full(query)
    except QueryError:
        assert simple is None
        return
    assert simple is None or simple == full


@pytest.mark.parametrize(
    "query", ["dementia", "social care", "housing OR homelessness", "planning -parking", "child*", "a AND b OR c"]
)
def test_simple_parse_takes_plain_queries(query: str) -> None:
    assert _parse_simple(query) is not None
    assert _parse_simple(query) == _parse_full(query)
