"""Matched terms as snippets: highlighting in HTML and plain text, and excerpts around the first match."""

from __future__ import annotations

import pytest

from notifier.topics.highlight import highlight_html, highlight_text, make_excerpt

MENTAL = "mental health"


@pytest.mark.parametrize(
    ("text", "terms", "expected"),
    [
        ("Dementias and dementia care", ["dementia"], "<mark>Dementias</mark> and <mark>dementia</mark> care"),
        ("Adult Mental-Health services", ['"mental health"'], "Adult <mark>Mental-Health</mark> services"),
        ("mental wellbeing and health", ['"mental health"'], "mental wellbeing and health"),
        ("Children's services and childcare", ["child*"],
         "<mark>Children&#39;s</mark> services and <mark>childcare</mark>"),
        ("Caf\u00e9 licensing", ["cafe"], "<mark>Caf\u00e9</mark> licensing"),
        ("<b>dementia</b> & co", ["dementia"], "&lt;b&gt;<mark>dementia</mark>&lt;/b&gt; &amp; co"),
        ("Parking review", ["dementia"], "Parking review"),
        ("Social care and health", ["social care", "care"], "<mark>Social care</mark> and health"),
        ("COVID-19 recovery", ["covid 19"], "<mark>COVID-19</mark> recovery"),
    ],
)
def test_highlight_html_table(text: str, terms: list[str], expected: str) -> None:
    assert str(highlight_html(text, terms)) == expected


@pytest.mark.parametrize(
    ("text", "terms", "expected"),
    [
        ("Joint Dementia Strategy", ["dementia"], "Joint *Dementia* Strategy"),
        ("Adult mental health services", [MENTAL], "Adult *mental health* services"),
        ("Parking review", ["dementia"], "Parking review"),
    ],
)
def test_highlight_text_table(text: str, terms: list[str], expected: str) -> None:
    assert highlight_text(text, terms) == expected


def test_make_excerpt_around_first_match() -> None:
    budget = ["Budget monitoring and capital programme."] * 8
    text = " ".join([*budget, "The dementia strategy is due.", *["End."] * 30])
    excerpt = make_excerpt(text, ["dementia"], limit=120)
    assert excerpt.startswith("\u2026") and excerpt.endswith("\u2026")
    assert "dementia strategy is due." in excerpt
    assert len(excerpt) <= 122


def test_make_excerpt_short_text_unchanged() -> None:
    assert make_excerpt("  Joint   dementia strategy ", ["dementia"]) == "Joint dementia strategy"
