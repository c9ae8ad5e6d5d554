"""Key phrases of a meeting's papers: candidates bounded by stop words, ranked by TF-IDF against a corpus."""

from __future__ import annotations

from collections import Counter

import pytest

from notifier.documents.phrases import key_phrases, phrase_candidates

CORPUS = [
    "The council noted the budget report and the parking review.",
    "Parking charges in the town centre were approved by the committee.",
    "The budget for adult social care was agreed.",
    "Library opening hours and the budget for libraries.",
]


def frequencies(texts: list[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(phrase_candidates(text))
    return counts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Adult social care", {"adult", "social", "care", "adult social", "social care", "adult social care"}),
        ("The cost of the Bus Lane", {"cost", "bus", "lane", "bus lane"}),
        ("Parking, libraries.", {"park", "librari"}),
        ("Item 4: 2025 budget", {"budget"}),
        ("Mental health and wellbeing strategy for carers", {"mental", "health", "mental health", "wellb",
                                                             "strategi", "wellb strategi", "carer"}),
    ],
)
def test_candidates_are_stop_word_bounded_ngrams_of_stems(text: str, expected: set[str]) -> None:
    assert phrase_candidates(text) == expected


def test_candidates_of_nothing() -> None:
    assert phrase_candidates("") == set()
    assert key_phrases([], {}, 0) == []


def test_phrase_rare_in_the_corpus_outranks_a_common_one() -> None:
    df = frequencies(CORPUS)
    text = "The budget and the budget again: the dementia strategy, the dementia strategy budget."
    # "budget" comes three times here but is in most of the corpus; "dementia strategy" twice and in none of it.
    assert key_phrases([text], df, len(CORPUS), limit=1) == ["dementia strategy"]
    assert key_phrases([text], {}, len(CORPUS), limit=1) == ["dementia strategy"]
    # Frequency still counts: a common word said often beats a rare one said once.
    assert key_phrases(["Budget. Budget. Budget. Dementia."], df, len(CORPUS), limit=1) == ["budget"]


def test_longer_phrase_leaves_out_its_words_and_shows_its_usual_form() -> None:
    texts = ["Working groups met.", "The working group reported.", "Working groups and the working group chair."]
    phrases = key_phrases(texts, {}, 10, limit=3)
    assert phrases[0] in ("working group", "working groups")
    assert not {"working", "group", "groups"} & set(phrases)


def test_limit_and_stable_order() -> None:
    text = "Alpha beta. Gamma delta. Epsilon zeta. Eta theta."
    first = key_phrases([text], {}, 5, limit=3)
    assert len(first) == 3
    assert first == key_phrases([text], {}, 5, limit=3)
    assert key_phrases([text], {}, 5, limit=0) == []
