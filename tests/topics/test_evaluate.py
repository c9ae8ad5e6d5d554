"""Matching one query against one document, and one filter against one event."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifier.topics.evaluate import Document, Filter, evaluate, matched_terms, positive_terms
from notifier.topics.parse import And, Not, Or, Phrase, Prefix, Query, Word, canonical, parse

AGENDA = (
    "Health and Wellbeing Board. Item 5: Dementia services for older people in North West Leicestershire; "
    "children's mental-health support, 2025/26. COVID-19 recovery. Respiratory clinics. Parking charges at "
    "the Civic Centre."
)


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("dementia", AGENDA, True),
        ("dementias", AGENDA, True),  # stemming, query side
        ("dementia", "Two dementias", True),  # stemming, document side
        ("DEMENTIA", "démentia", True),
        ('"mental health"', AGENDA, True),  # phrase across a hyphen
        ('"mental health"', "Mental Health", True),
        ('"mental health"', "mental and physical health", False),
        ('"health mental"', "mental health", False),
        ('"west leicestershire"', AGENDA, True),
        ('"north west leicestershire"', AGENDA, True),
        ('"west north"', AGENDA, False),
        ('"health and wellbeing board"', AGENDA, True),  # no stopwords: 'and' counts
        ('"health wellbeing"', AGENDA, False),
        ("child*", AGENDA, True),  # "children's"
        ("childr*", AGENDA, True),
        ("childs*", AGENDA, False),
        ("chi*", "chimney", True),
        ("chim*", "children", False),
        ("social care", "social work and care", True),
        ("social care", "social work", False),
        ("housing OR homelessness", "homelessness strategy", True),
        ("housing OR homelessness", "planning", False),
        ("planning -parking", "planning committee", True),
        ("planning -parking", "planning and parking", False),
        ("planning NOT parking", "planning, car parking", False),
        ("-parking", "anything at all", True),
        ("-parking", "", True),
        ("-parking", "parking", False),
        ("(respiratory OR asthma) AND \"west leicestershire\"", AGENDA, True),
        ("(respiratory OR asthma) AND \"west leicestershire\"", "asthma in East Leicestershire", False),
        ("covid-19", AGENDA, True),
        ("covid19", AGENDA, True),
        ("2025/26", AGENDA, True),
        ('"2025 26"', AGENDA, True),
        ("2026/27", AGENDA, False),
        ("council's", "the councils", True),
        ("councils", "the council's budget", True),
        ("", "", True),
        ("", AGENDA, True),
        ("NOT (a OR b)", "c", True),
        ("NOT (a OR b)", "b", False),
        ('"a a"', "a b a", False),
        ('"a a"', "b a a", True),
        ('"a b a"', "a b a", True),
        ('"a b a"', "a b b a", False),
    ],
)
def test_evaluate_table(query: str, text: str, expected: bool) -> None:
    assert evaluate(parse(query), Document.from_text(text)) is expected


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("dementia", AGENDA, ["dementia"]),
        ("dementias OR asthma", AGENDA, ["dementias"]),
        ('"mental health" OR child* OR asthma', AGENDA, ['"mental health"', "child*"]),
        ("planning -parking", "planning", ["planning"]),
        ("planning -parking", "planning parking", None),
        ("-parking", "other", []),
        ("", "anything", []),
        ("(dementia OR asthma) (care OR dementia)", "dementia care", ["dementia", "care"]),
        ("NOT (asthma AND care) dementia", "dementia care", ["dementia"]),
    ],
)
def test_matched_terms_table(query: str, text: str, expected: list[str] | None) -> None:
    assert matched_terms(parse(query), Document.from_text(text)) == expected


def test_document_phrase_limits_match_postgres() -> None:
    """Beyond position 16383 words still match, but every later word sits at 16383: no phrases there."""
    doc = Document.from_text("filler " * 16_400 + "mental health")
    assert evaluate(parse("mental"), doc)
    assert evaluate(parse("health"), doc)
    assert not evaluate(parse('"mental health"'), doc)


def fs(*values: str) -> frozenset[str]:
    return frozenset(values)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"councils": "leicestershire"}, "Filter.councils must be a set of strings"),
        ({"kinds": [1]}, "Filter.kinds must be a set of strings"),
        ({"query": "dementia"}, "Filter.query must be a parsed Query or None, not str"),
    ],
)
def test_filter_rejects_wrong_types(kwargs: dict[str, object], error: str) -> None:
    with pytest.raises(TypeError, match=error):
        Filter(**kwargs)  # type: ignore[arg-type]


def test_filter_accepts_any_iterable_of_strings() -> None:
    assert Filter(councils=["kent"], kinds={"meeting"}) == Filter(councils=fs("kent"), kinds=fs("meeting"))  # type: ignore[arg-type]


# ---- random queries and texts ----------------------------------------------------------------------------------

VOCAB = ["dementia", "care", "health", "mental", "child", "children", "housing", "planning", "parking", "board",
         "west", "leicestershire", "2025", "and"]

_leaf = st.one_of(
    st.sampled_from(VOCAB).map(Word),
    st.lists(st.sampled_from(VOCAB), min_size=2, max_size=3).map(lambda ws: Phrase(tuple(ws))),
    # prefixes longer than an index key (6 characters) too, which the index holds behind their key
    st.sampled_from(["chi", "child", "childre", "hea", "par", "park", "lei", "leicest", "202"]).map(Prefix),
)
query_trees = st.recursive(
    _leaf,
    lambda kids: st.one_of(
        st.lists(kids, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
        st.lists(kids, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs))),
        kids.map(Not),
    ),
    max_leaves=5,
)
texts = st.lists(st.sampled_from([*VOCAB, "Children's", "PARKING", "mental-health", "x"]), max_size=12).map(" ".join)


@settings(max_examples=100, deadline=None)
@given(query_trees, texts)
def test_canonical_keeps_meaning(q: Query, text: str) -> None:
    doc = Document.from_text(text)
    assert evaluate(parse(canonical(q)), doc) == evaluate(q, doc)



@settings(max_examples=300, deadline=None)
@given(query_trees, texts)
def test_matched_terms_walks_a_query_once_for_its_terms(q: Query, text: str) -> None:
    """`matched_terms`'s one walk over a query gives what `evaluate`, then `positive_terms`, give."""
    doc = Document.from_text(text)
    found: list[str] = []
    positive_terms(q, doc, found)
    assert matched_terms(q, doc) == (found if evaluate(q, doc) else None)
