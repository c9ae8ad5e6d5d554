"""The percolator: its structure, its filing, and its answers against a plain loop over every filter."""

from __future__ import annotations

import contextlib
import gc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifier.topics.evaluate import Document, EventFacts, Filter, filter_matches
from notifier.topics.held import ALTERNATIVE, GUARDED, PAIRED, PREFIXED, SCOPED, holding
from notifier.topics.index import Match, Percolator, event_keys
from notifier.topics.parse import canonical, parse
from tests.topics.test_evaluate import AGENDA, fs, query_trees, texts

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


# ---- the percolator against a plain loop ------------------------------------------------------------------------

COUNCILS = ["leicestershire", "kent", "york"]
REGIONS = ["East Midlands", "South East"]
COMMITTEES = ["Health Board", "Cabinet", "c42"]
KINDS = ["meeting", "agenda_item", "decision"]
TYPES = ["meeting.scheduled", "agenda.published", "decision.published"]

# Random trees, and the shapes the index holds behind one condition, which random trees seldom are: a prefix longer
# than a key, alone or beside a word; a word with a negated word or one more word; an OR of words.
HELD_SHAPES = ["childre*", "leicest* board", "board -housing", "mental health", "dementia OR care OR parking"]
queries = st.one_of(
    st.none(), query_trees.map(lambda q: parse(canonical(q))), st.sampled_from(HELD_SHAPES).map(parse)
)


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


def test_percolator_matches_answers_in_chunks_of_equal_terms() -> None:
    """`matches` gives each subscription once, as ids and as (terms, ids) chunks, the same answer as `match`."""
    p = Percolator()
    p.add(1, Filter(parse("dementia OR asthma")))  # both words in the event: found under two keys, merged
    p.add(2, Filter(parse("dementia OR asthma")))
    p.add(3, Filter(parse("dementia")))
    p.add(4, Filter(parse("dementia"), councils=fs("leicestershire", "rutland")))
    p.add(5, Filter(councils=fs("leicestershire"), regions=fs("East Midlands")))  # two places the event is in
    p.add(6, Filter(parse("dementia care -parking")))
    p.add(7, Filter(parse("asthma"), councils=fs("kent")))  # not this event
    found = p.matches(event("asthma, dementia and care"))
    assert sorted(found.ids()) == [1, 2, 3, 4, 5, 6]
    assert len(found) == 6
    chunks = {terms: sorted(ids) for terms, ids in found.by_terms()}
    assert chunks == {
        ("dementia", "asthma"): [1, 2],
        ("dementia",): [3, 4],
        (): [5],
        ("dementia", "care"): [6],
    }
    assert sorted(found) == sorted(p.match(event("asthma, dementia and care")))
    p.remove(1)
    assert sorted(p.matches(event("asthma")).ids()) == [2, 5]


def _brute(table: dict[int, Filter], ev: EventFacts) -> set[Match]:
    return {Match(sub_id, terms) for sub_id, f in table.items() if (terms := filter_matches(f, ev)) is not None}


def test_percolator_holds_answers_behind_one_condition() -> None:
    """Filters needing one check beside their key (negated words, a second stem, a long prefix, one structural
    check, an OR's words under a structural key) are answered from ids kept behind that check, shared, grown and
    shrunk like any other answer."""
    p = Percolator()
    for text in ["planning report", "planning committee", "dementia care", "appeal hearing", "environment"]:
        p.observe(event(text))
    shapes = [
        Filter(parse("planning -appeal")),  # guarded: the key's word, unless a negated word
        Filter(parse("plans -appeal -hearing")),  # same stem and guard, other terms
        Filter(parse("-appeal"), councils=fs("leicestershire")),  # guarded under the council's every-event key
        Filter(parse("dementia care")),  # paired: the key and one more stem
        Filter(parse("dementia care -parking")),
        Filter(parse("environm*")),  # prefixed: a prefix longer than its key
        Filter(parse("environme* -appeal")),
        Filter(councils=fs("leicestershire"), committees=fs("Cabinet")),  # scoped: one structural check
        Filter(parse("planning"), kinds=fs("agenda_item", "decision")),
        Filter(councils=fs("leicestershire", "rutland"), kinds=fs("agenda_item")),  # verified: two councils
        Filter(parse("planning OR plans OR dementia OR care"), kinds=fs("agenda_item")),  # alternatives by word
    ]
    table: dict[int, Filter] = {}
    try:
        with p.bulk():  # the load path first, then changes one at a time
            for sub_id in range(2 * len(shapes)):  # two subscriptions per filter: ids as ints, then arrays
                table[sub_id] = shapes[sub_id % len(shapes)]
                p.add(sub_id, table[sub_id])
    finally:
        gc.unfreeze()
    for sub_id in range(2 * len(shapes), 3 * len(shapes)):  # and one more each, after
        table[sub_id] = shapes[sub_id % len(shapes)]
        p.add(sub_id, table[sub_id])
    assert any(entry.held for keyed in p._index.values() for entry in keyed.values())
    ways = {holding(p._subs[sub_id]) for sub_id in table}
    assert {GUARDED, PAIRED, PREFIXED, SCOPED, ALTERNATIVE} <= ways, ways  # each shape held as its comment says
    evs = [
        event("Planning plans for dementia care and the environment"),
        event("Planning appeal: plans, dementia care, parking and the environmental hearing"),
        event("plans and an appeal", committee="Cabinet", kind="decision"),
        event("environmental planning", council="rutland", region=None, committee="Cabinet", committee_id=None),
        event("environmental planning", council="kent", region="South East", committee="Cabinet"),
    ]
    for removing in [*range(len(table)), None]:
        for ev in evs:
            found = p.matches(ev)
            assert sorted(found.ids()) == sorted({m.sub_id for m in _brute(table, ev)})
            assert set(p.match(ev)) == _brute(table, ev)
            assert len(p.match(ev)) == len(found)
        if removing is not None:
            p.remove(removing)
            del table[removing]
    assert p._index == {}  # every condition and array emptied went


def test_compact_forms_of_pairs_and_ready_ids() -> None:
    """Groups paired with a second stem are kept as they are (no list, no dict) when alone, and grow into a list
    and a dict; a word in several councils is answered from ready ids (an int for one), not as alternatives."""
    p = Percolator()
    p.add(1, Filter(parse("dementia care"), councils=fs("kent"), kinds=fs("decision")))  # verified: a kind check
    p.add(2, Filter(parse("dementia care"), councils=fs("kent"), kinds=fs("meeting")))
    p.add(3, Filter(parse("dementia homes"), councils=fs("kent"), kinds=fs("decision")))
    p.add(4, Filter(parse("dementia"), councils=fs("kent", "york")))
    p.add(5, Filter(parse("dementia"), councils=fs("kent", "york")))
    p.remove(5)
    entries = [entry for keyed in p._index.values() for entry in keyed.values()]
    assert all(entry.alternatives is None for entry in entries)
    assert sorted(entry.ready for entry in entries if entry.ready) == [[(("dementia",), 4)]] * 2
    assert any(type(entry.pairs) is dict for entry in entries)

    def ids(text: str, **overrides: str | None) -> list[int]:
        return sorted(p.matches(event(text, **{"council": "kent", **overrides})).ids())

    assert ids("dementia care homes", kind="decision") == [1, 3, 4]
    assert ids("dementia care homes", kind="meeting") == [2, 4]
    assert ids("dementia care homes", kind="decision", council="york") == [4]
    p.remove(3)
    assert ids("dementia care homes", kind="decision") == [1, 4]
    p.remove(1)
    assert ids("dementia care homes", kind="meeting") == [2, 4]
    assert any(type(entry.pairs) is tuple for keyed in p._index.values() for entry in keyed.values())
    for sub in (2, 4):
        p.remove(sub)
    assert p._index == {} and len(p) == 0
