"""Matching queries against documents, and the percolator against a plain loop over every filter."""

from __future__ import annotations

import contextlib
import gc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifier.topics.match import (
    Document,
    EventFacts,
    Filter,
    Match,
    Percolator,
    evaluate,
    event_keys,
    filter_matches,
    matched_terms,
)
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


# ---- the percolator: structure -----------------------------------------------------------------------------------


def event(text: str = AGENDA, **overrides: str | None) -> EventFacts:
    values: dict[str, str | None] = {
        "council": "leicestershire",
        "region": "East Midlands",
        "committee": "Health and Wellbeing Board",
        "committee_id": "144",
        "kind": "agenda_item",
        "event_type": "agenda.published",
    }
    values.update(overrides)
    return EventFacts(doc=Document.from_text(text), **values)  # type: ignore[arg-type]


def fs(*values: str) -> frozenset[str]:
    return frozenset(values)


@pytest.mark.parametrize(
    ("f", "ev", "expected"),
    [
        (Filter(), event(), ()),
        (Filter(councils=fs("leicestershire")), event(), ()),
        (Filter(councils=fs("Leicestershire")), event(), ()),  # compared casefolded
        (Filter(councils=fs("kent")), event(), None),
        (Filter(councils=fs("kent", "leicestershire")), event(), ()),
        (Filter(regions=fs("east midlands")), event(), ()),
        (Filter(regions=fs("South East")), event(), None),
        (Filter(regions=fs("South East")), event(region=None), None),
        (Filter(councils=fs("kent"), regions=fs("East Midlands")), event(), ()),  # places are a union
        (Filter(committees=fs("health and wellbeing board")), event(), ()),
        (Filter(committees=fs("144")), event(), ()),
        (Filter(committees=fs("144")), event(committee_id=None), None),
        (Filter(committees=fs("Cabinet")), event(), None),
        (Filter(committees=fs("Cabinet")), event(committee=None, committee_id=None), None),
        (Filter(kinds=fs("agenda_item", "decision")), event(), ()),
        (Filter(kinds=fs("decision")), event(), None),
        (Filter(event_types=fs("agenda.published")), event(), ()),
        (Filter(event_types=fs("meeting.cancelled")), event(), None),
        (Filter(parse("dementia")), event(), ("dementia",)),
        (Filter(parse("dementia")), event(council="kent", region="South East"), ("dementia",)),
        (Filter(parse("dementia"), councils=fs("kent")), event(), None),
        (Filter(parse("dementia"), councils=fs("leicestershire")), event(), ("dementia",)),
        (Filter(parse("dementia"), regions=fs("East Midlands")), event(), ("dementia",)),
        (Filter(parse("asthma"), councils=fs("leicestershire")), event(), None),
        (Filter(parse("dementia"), kinds=fs("decision")), event(), None),
        (Filter(parse("-parking"), councils=fs("leicestershire")), event(), None),
        (Filter(parse("-asthma"), councils=fs("leicestershire")), event(), ()),
        (Filter(parse("-asthma")), event(), ()),
        (Filter(parse("child*"), event_types=fs("agenda.published")), event(), ("child*",)),
        (Filter(parse("")), event(), ()),
    ],
)
def test_percolator_structured_filters(f: Filter, ev: EventFacts, expected: tuple[str, ...] | None) -> None:
    assert filter_matches(f, ev) == expected
    p = Percolator()
    p.add(7, f)
    assert p.match(ev) == ([] if expected is None else [Match(7, expected)])


def test_percolator_add_replace_remove() -> None:
    p = Percolator()
    p.add(1, Filter(parse("dementia")))
    p.add(2, Filter(parse("dementia")))
    p.add(3, Filter(parse("asthma")))
    assert len(p) == 3
    assert sorted(p.match(event())) == [Match(1, ("dementia",)), Match(2, ("dementia",))]
    p.add(2, Filter(parse("parking")))  # replaces sub 2's filter
    assert len(p) == 3
    assert sorted(p.match(event())) == [Match(1, ("dementia",)), Match(2, ("parking",))]
    p.remove(1)
    p.remove(1)  # unknown ids are ignored
    assert len(p) == 2
    assert 1 not in p
    assert 2 in p
    assert p.match(event()) == [Match(2, ("parking",))]
    p.remove(2)
    p.remove(3)
    assert len(p) == 0
    assert p.match(event()) == []
    assert p._index == {}  # nothing left behind


def test_percolator_observe_and_reanchor_keep_answers() -> None:
    p = Percolator()
    p.add(1, Filter(parse('"health and wellbeing" dementia')))
    p.add(2, Filter(parse("older people"), councils=fs("leicestershire", "rutland")))
    for text in ["health and wellbeing", "health", "dementia care", "older"]:
        p.observe(event(text))
    p.reanchor()
    p.add(3, Filter(parse("health dementia")))
    assert sorted(p.match(event())) == [
        Match(1, ('"health and wellbeing"', "dementia")),
        Match(2, ("older", "people")),
        Match(3, ("health", "dementia")),
    ]


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


# ---- the percolator against a plain loop ------------------------------------------------------------------------

VOCAB = ["dementia", "care", "health", "mental", "child", "children", "housing", "planning", "parking", "board",
         "west", "leicestershire", "2025", "and"]
COUNCILS = ["leicestershire", "kent", "york"]
REGIONS = ["East Midlands", "South East"]
COMMITTEES = ["Health Board", "Cabinet", "c42"]
KINDS = ["meeting", "agenda_item", "decision"]
TYPES = ["meeting.scheduled", "agenda.published", "decision.published"]

_leaf = st.one_of(
    st.sampled_from(VOCAB).map(Word),
    st.lists(st.sampled_from(VOCAB), min_size=2, max_size=3).map(lambda ws: Phrase(tuple(ws))),
    st.sampled_from(["chi", "child", "hea", "par", "park", "lei", "202"]).map(Prefix),
)
_tree = st.recursive(
    _leaf,
    lambda kids: st.one_of(
        st.lists(kids, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
        st.lists(kids, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs))),
        kids.map(Not),
    ),
    max_leaves=5,
)
queries = st.one_of(st.none(), _tree.map(lambda q: parse(canonical(q))))


def _subset(values: list[str]) -> st.SearchStrategy[frozenset[str]]:
    return st.one_of(st.just(frozenset()), st.frozensets(st.sampled_from(values), min_size=1, max_size=2))


filters = st.builds(
    Filter,
    query=queries,
    councils=_subset(COUNCILS),
    regions=st.one_of(st.just(frozenset()), _subset(REGIONS)),
    committees=st.one_of(st.just(frozenset()), st.just(frozenset()), _subset(COMMITTEES)),
    kinds=st.one_of(st.just(frozenset()), _subset(KINDS)),
    event_types=st.one_of(st.just(frozenset()), _subset(TYPES)),
)
texts = st.lists(st.sampled_from([*VOCAB, "Children's", "PARKING", "mental-health", "x"]), max_size=12).map(" ".join)
events = st.builds(
    lambda text, council, region, committee, committee_id, kind, etype: EventFacts(
        council=council, region=region, committee=committee, committee_id=committee_id, kind=kind, event_type=etype,
        doc=Document.from_text(text),
    ),
    texts,
    st.sampled_from(COUNCILS),
    st.one_of(st.none(), st.sampled_from(REGIONS)),
    st.one_of(st.none(), st.sampled_from(COMMITTEES)),
    st.one_of(st.none(), st.sampled_from(["c42", "c7"])),
    st.sampled_from(KINDS),
    st.sampled_from(TYPES),
)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(filters, min_size=1, max_size=40),
    st.lists(events, min_size=1, max_size=5),
    st.lists(st.integers(0, 39), max_size=10),
    st.lists(filters, max_size=5),
    st.booleans(),
    st.booleans(),
)
def test_percolator_agrees_with_brute_force(
    subs: list[Filter], evs: list[EventFacts], removed: list[int], replaced: list[Filter], learn: bool, bulk: bool,
) -> None:
    p = Percolator()
    table = dict(enumerate(subs))
    with p.bulk() if bulk else contextlib.nullcontext():
        for sub_id, f in table.items():
            p.add(sub_id, f)
        for sub_id in removed:
            p.remove(sub_id)
            table.pop(sub_id, None)
    if bulk:
        gc.unfreeze()
    for sub_id, f in enumerate(replaced):
        p.add(sub_id, f)
        table[sub_id] = f
    if learn:
        for ev in evs:
            p.observe(ev)
        p.reanchor()
    assert len(p) == len(table)
    for ev in evs:
        expected = set()
        for sub_id, f in table.items():
            terms = filter_matches(f, ev)
            if terms is not None:
                expected.add(Match(sub_id, terms))
        got = p.match(ev)
        assert len(got) == len(set(got))
        assert set(got) == expected


@settings(max_examples=100, deadline=None)
@given(_tree, texts)
def test_canonical_keeps_meaning(q: Query, text: str) -> None:
    doc = Document.from_text(text)
    assert evaluate(parse(canonical(q)), doc) == evaluate(q, doc)


# ---- the index itself --------------------------------------------------------------------------------------------


def test_percolator_anchors_under_the_rarest_term() -> None:
    p = Percolator()
    for text in ["planning report", "planning committee", "planning and dementia", "planning"]:
        p.observe(event(text))
    p.add(1, Filter(parse("planning dementia")))
    p.add(2, Filter(parse("planning OR dementia")))
    p.add(3, Filter(parse('"mental health"')))
    assert p.index_keys(1) == (("", "dementia"),)
    assert p.index_keys(2) == (("", "dementia"), ("", "plan"))
    assert p.index_keys(3) in ((("", "mental"),), (("", "health"),))


@pytest.mark.parametrize(
    ("f", "keys"),
    [
        (Filter(parse("dementia"), councils=fs("Leicestershire")), (("c\x00leicestershire", "dementia"),)),
        (Filter(councils=fs("kent")), (("c\x00kent", ""),)),
        (Filter(regions=fs("South East")), (("r\x00south east", ""),)),
        (Filter(parse("-parking")), (("", ""),)),
        (Filter(parse("-parking"), event_types=fs("meeting.cancelled")), (("t\x00meeting.cancelled", ""),)),
        (Filter(parse("childr*")), (("", "\x01childr"),)),
        (Filter(parse("children*")), (("", "\x01childr"),)),
    ],
)
def test_percolator_files_filters_under_their_keys(f: Filter, keys: tuple[tuple[str, str], ...]) -> None:
    p = Percolator()
    p.add(1, f)
    assert p.index_keys(1) == keys


def test_percolator_shared_filters_and_merged_alternatives() -> None:
    p = Percolator()
    either = Filter(parse("dementia OR asthma OR respiratory"))
    places = Filter(councils=fs("leicestershire", "rutland"), regions=fs("East Midlands"))
    for sub_id in (1, 2, 3):
        p.add(sub_id, either)
    p.add(4, places)
    p.add(5, places)
    both = event("asthma, dementia and respiratory care")
    assert sorted(p.match(both)) == [
        Match(1, ("dementia", "asthma", "respiratory")),
        Match(2, ("dementia", "asthma", "respiratory")),
        Match(3, ("dementia", "asthma", "respiratory")),
        Match(4, ()),
        Match(5, ()),
    ]
    p.remove(2)
    p.remove(4)
    assert sorted(p.match(event("asthma"))) == [Match(1, ("asthma",)), Match(3, ("asthma",)), Match(5, ())]
    assert sorted(p.match(event("asthma", council="kent", region="South East"))) == [
        Match(1, ("asthma",)),
        Match(3, ("asthma",)),
    ]
    for sub_id in (1, 3, 5):
        p.remove(sub_id)
    assert len(p) == 0
    assert p._index == {}


def test_event_keys_cover_every_scope() -> None:
    ev = event("Child care", committee="Cabinet", committee_id="7")
    keys = set(event_keys(ev))
    assert ("", "child") in keys
    assert ("c\x00leicestershire", "care") in keys
    assert ("r\x00east midlands", "\x01chi") in keys
    assert ("m\x00cabinet", "") in keys
    assert ("m\x007", "") in keys
    assert ("k\x00agenda_item", "") in keys
    assert ("t\x00agenda.published", "") in keys
    assert ("m\x00cabinet", "child") not in keys


def test_percolator_bulk_pauses_and_freezes_the_collector() -> None:
    p = Percolator()
    was_enabled = gc.isenabled()
    try:
        gc.enable()
        with p.bulk():
            assert not gc.isenabled()
            p.add(1, Filter(parse("dementia")))
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
        gc.disable()
        with p.bulk():
            pass
        assert not gc.isenabled()  # the state it was in before, not always on
    finally:
        gc.unfreeze()
        if was_enabled:
            gc.enable()


def test_percolator_bulk_shares_a_query_across_places_and_removal_still_works() -> None:
    """Filters of one query in different councils share its plan; identical filters share one group."""
    p = Percolator()
    query = parse("dementia care -parking")
    leicestershire = Filter(query, councils=fs("leicestershire"))
    kent = Filter(query, councils=fs("kent"))
    try:
        with p.bulk():
            p.add(1, leicestershire)
            p.add(2, Filter(parse("dementia care -parking"), councils=fs("leicestershire")))  # equal, not the same
            p.add(3, kent)
            p.add(4, Filter(parse("dementia OR asthma")))
            p.add(5, Filter(parse("dementia OR asthma")))
    finally:
        gc.unfreeze()
    assert p.distinct_filters == 3
    text = "Dementia care services"
    assert sorted(p.match(event(text))) == [
        Match(1, ("dementia", "care")), Match(2, ("dementia", "care")), Match(4, ("dementia",)),
        Match(5, ("dementia",)),
    ]
    assert sorted(p.match(event(text, council="kent", region="South East"))) == [
        Match(3, ("dementia", "care")), Match(4, ("dementia",)), Match(5, ("dementia",)),
    ]
    p.remove(1)
    p.remove(5)
    assert sorted(p.match(event(text))) == [Match(2, ("dementia", "care")), Match(4, ("dementia",))]
    assert p.match(event("dementia care and parking")) == [Match(4, ("dementia",))]
    p.remove(2)
    p.remove(4)
    assert p.match(event(text)) == []
    assert p.match(event(text, council="kent", region="South East")) == [Match(3, ("dementia", "care"))]
    assert p.distinct_filters == 1
