"""Meeting briefs: the labelled set of real council papers, and each convention the extractor reads."""

from __future__ import annotations

import pytest

from notifier.documents.briefs import Brief, BriefSentence, build_brief
from notifier.documents.sentences import ELLIPSIS, MAX_CHARS, fold, split_units
from tests.documents.labelled import Document, Score, documents, verbatim

DOCUMENTS = documents()
NEGATIVE = [d for d in DOCUMENTS if not any(d.labels.values())]


def doc(name: str) -> Document:
    return next(d for d in DOCUMENTS if d.name == name)


def texts(sentences: tuple[BriefSentence, ...]) -> list[str]:
    return [s.text for s in sentences]


def test_labelled_set_is_large_enough_and_has_its_hard_cases() -> None:
    assert len(DOCUMENTS) >= 30
    assert len(NEGATIVE) >= 3
    assert doc("la_metro_board_minutes_2024-09-26_p1_scanned_no_text_layer").pages == ("",)


def test_labelled_set_recall_and_precision() -> None:
    score = Score()
    for d in DOCUMENTS:
        score.add(d, build_brief(d.pages))
    assert score.recall() >= 0.90, score.misses
    assert score.precision() >= 0.95, score.extras
    for field in ("recommendations", "resolutions"):
        assert score.recall([field]) >= 0.90, score.misses
        assert score.precision([field]) >= 0.95, score.extras


@pytest.mark.parametrize("d", DOCUMENTS, ids=lambda d: d.name)
def test_labelled_document_is_quoted_verbatim(d: Document) -> None:
    brief = build_brief(d.pages)
    for sentence in (*brief.purpose, *brief.recommendations, *brief.resolutions):
        assert verbatim(sentence, d.pages), sentence
        assert len(sentence.text) <= MAX_CHARS + 1
    if brief.first_paragraph is not None:
        assert verbatim(brief.first_paragraph, d.pages)


@pytest.mark.parametrize("d", NEGATIVE, ids=lambda d: d.name)
def test_document_without_sections_gets_no_invented_brief(d: Document) -> None:
    brief = build_brief(d.pages)
    assert brief.empty
    assert brief.purpose == brief.recommendations == brief.resolutions == ()


def test_scanned_document_has_nothing_at_all() -> None:
    brief = build_brief(doc("la_metro_board_minutes_2024-09-26_p1_scanned_no_text_layer").pages)
    assert brief == Brief()
    assert brief.to_dict() == {"purpose": [], "recommendations": [], "resolutions": [], "first_paragraph": None}


def test_recommendation_differs_from_resolution() -> None:
    brief = build_brief(doc("ipswich_extraordinary_council_minutes_2026-06-30_item6.1_annual_plan").pages)
    assert [t[:3] for t in texts(brief.recommendations)] == ["A. ", "B. "]
    assert [t[:3] for t in texts(brief.resolutions)] == ["A. ", "B. ", "C. "]
    assert "Core Business Services document be prepared" in brief.resolutions[1].text


def test_recommendation_heading_twice_and_amended_resolution() -> None:
    brief = build_brief(doc("ipswich_council_minutes_2025-07-30_redbank_plains_intersection").pages)
    recommendations = texts(brief.recommendations)
    assert recommendations.count("A. That the report be received.") == 1  # the same text on the same page, once
    assert any("briefing session" in t for t in recommendations)
    assert any("State controlled infrastructure" in t for t in recommendations)
    amended = next(t for t in texts(brief.resolutions) if t.startswith("C. "))
    assert amended.startswith("C. That council has a workshop")


# Each convention, on a short paper written the way councils write them.

UK_REPORT = """Cabinet
12 March 2026
Report of the Director of Place

1. Purpose of the report

1.1 To seek approval for the Local Cycling and Walking Infrastructure Plan. The plan sets out routes for the next
ten years.

1.2 It also reports on the consultation.

2. Recommendations

2.1 That Cabinet approves the Local Cycling and Walking Infrastructure Plan.

2.2 That the Director of Place be authorised to make minor changes.

3. Reasons for the recommendations

3.1 The plan is needed to bid for funding.
"""


def test_uk_purpose_and_numbered_recommendations() -> None:
    brief = build_brief([UK_REPORT])
    assert texts(brief.purpose) == [
        "1.1 To seek approval for the Local Cycling and Walking Infrastructure Plan.",
        "The plan sets out routes for the next ten years.",
    ]
    assert texts(brief.recommendations) == [
        "2.1 That Cabinet approves the Local Cycling and Walking Infrastructure Plan.",
        "2.2 That the Director of Place be authorised to make minor changes.",
    ]
    assert brief.resolutions == ()


@pytest.mark.parametrize(
    ("text", "purpose"),
    [
        ("Purpose of report: To update members on the budget.\n", "To update members on the budget."),
        ("Executive Summary\nThis report sets out the budget.\nNext heading\n", "This report sets out the budget."),
        ("SUMMARY\n\nThe budget is balanced.\n", "The budget is balanced."),
        (
            "Some text.\nThe purpose of this report is to agree fees. Fees rise.\n",
            "The purpose of this report is to agree fees.",
        ),
        ("This is a report concerning waste contracts.\n", "This is a report concerning waste contracts."),
    ],
)
def test_purpose_patterns(text: str, purpose: str) -> None:
    assert texts(build_brief([text]).purpose)[0] == purpose


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "It is recommended that the Committee:\n(a) notes the report; and\n(b) approves the fees.\nBackground\n",
            ["It is recommended that the Committee:", "(a) notes the report; and", "(b) approves the fees."],
        ),
        (
            "The Board is asked to:\n1. note the position;\n2. agree the plan.\n",
            ["The Board is asked to:", "1. note the position;", "2. agree the plan."],
        ),
        (
            "Recommendation: That the City Council receive and file this report.\nStaff Report\n",
            ["That the City Council receive and file this report."],
        ),
        (
            "Recommendation: 1) Receive the report; and, 2) Provide direction to staff.\nAgenda Report\n",
            ["1) Receive the report; and,", "2) Provide direction to staff."],
        ),
        (
            "PROPOSED ACTION\nRecommend that the City Council Approve the Project\n\nDEPARTMENT RECOMMENDATION\n"
            "Recommend that the City Council Deny the Project\n\nITEM 2: NEXT\n",
            ["Recommend that the City Council Approve the Project", "Recommend that the City Council Deny the Project"],
        ),
        (
            "SUBJECT: BUS LANES\nAPPROVE:\nA. the bus lane on Main Street; and\nB. the budget of $1,000.\n2017-0001.\n",
            ["APPROVE:", "A. the bus lane on Main Street; and", "B. the budget of $1,000."],
        ),
    ],
)
def test_recommendation_patterns(text: str, expected: list[str]) -> None:
    brief = build_brief([text])
    assert texts(brief.recommendations) == expected
    assert brief.resolutions == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("RESOLVED: That the minutes be approved.\n", ["That the minutes be approved."]),
        ("RESOLVED – that the fees be agreed.\n", ["that the fees be agreed."]),
        (
            "Resolution C2026/00/214\nMoved by Mayor Harding:\nSeconded by Councillor Tully:\nA. That the plan be "
            "adopted.\nB. That the CEO be authorised.\nAFFIRMATIVE NEGATIVE\nThe motion was put and carried.\n",
            ["A. That the plan be adopted.", "B. That the CEO be authorised."],
        ),
        (
            "Item 4 Parks\nMoved by Cllr Smith, seconded by Cllr Jones\nThat the parks strategy be adopted.\nCARRIED\n",
            ["That the parks strategy be adopted."],
        ),
        (
            "• Meeting called to order – A. Lee (motion), B. Ray (second)\n"
            "• Budget approved – A. Lee (motion), B. Ray (second)\n",
            ["Budget approved – A. Lee (motion), B. Ray (second)"],
        ),
    ],
)
def test_resolution_patterns(text: str, expected: list[str]) -> None:
    brief = build_brief([text])
    assert texts(brief.resolutions) == expected
    assert brief.recommendations == ()


def test_motion_amended_before_the_vote_is_not_a_resolution() -> None:
    text = (
        "Recommendation\nMoved by Mayor Harding:\nSeconded by Councillor Madden:\nThat the petition be referred.\n"
        "Mayor Harding proposed that the motion be amended as follows:\nThat the petition be received.\n"
        "Resolution C2025/00/388\nThat the petition be received.\nThe motion was put and carried.\n"
    )
    brief = build_brief([text])
    assert texts(brief.recommendations) == ["That the petition be referred."]
    assert texts(brief.resolutions) == ["That the petition be received."]


def test_pages_are_numbered_from_one() -> None:
    pages = ["Agenda\nItem 1 Budget\n", "Recommendation\nThat the budget be agreed.\n", "Resolved: That it was."]
    brief = build_brief(pages)
    assert brief.recommendations == (BriefSentence("That the budget be agreed.", 2),)
    assert brief.resolutions == (BriefSentence("That it was.", 3, "Item 1: Budget"),)


def test_page_furniture_is_left_out_and_an_interrupted_entry_is_cut() -> None:
    footer = "Page {} of 3\nCity of Example Printed on 1/2/2023"
    pages = [
        f"Council Agenda\nRecommendation: That the Council adopt the plan\n{footer.format(1)}",
        f"Council Agenda\nand the budget for the year.\n{footer.format(2)}",
        f"Council Agenda\nNothing further.\n{footer.format(3)}",
    ]
    brief = build_brief(pages)
    assert texts(brief.recommendations) == ["That the Council adopt the plan" + ELLIPSIS]
    everything = " ".join(s.text for s in brief.recommendations)
    assert "Page" not in everything and "Printed" not in everything


def test_list_carries_on_past_page_furniture_set_apart_by_blank_lines() -> None:
    # As PDFium reads a Legistar agenda: blank lines around the footer and the item and file number ("44. 2017-0426")
    footer = "\n\n{}. 2017-04{}\n\nMetro Page {} Printed on 6/13/2017"
    pages = [
        "Committee Agenda - Final June 15, 2017\nSUBJECT: COMMITTEE SELECTIONS\n\nAPPROVE:\n\nA. Emilie Elias, the "
        "recommended nominee for Retired Federal or\nState judge;\n\nB. Carlos Bohorquez, the recommended nominee for "
        "Professional" + footer.format(44, 26, 5),
        "Committee Agenda - Final June 15, 2017\nfrom the field of municipal finance with a\nminimum of ten (10) years "
        "of relevant experience; and\n\nC. Ryan Campbell, the recommended nominee for Professional with a\nminimum "
        "of ten (10) years of experience in management.\n\nAttachments:" + footer.format(45, 32, 6),
    ]
    brief = build_brief(pages)
    assert [t[:20] for t in texts(brief.recommendations)] == [
        "APPROVE:", "A. Emilie Elias, the", "B. Carlos Bohorquez,", "C. Ryan Campbell, th"]
    assert brief.recommendations[2].text.endswith(f"Professional{ELLIPSIS}")  # cut where the footer was
    assert "2017-04" not in " ".join(texts(brief.recommendations))


def test_sentence_carried_on_in_lower_case_across_a_blank_line() -> None:
    # PDFium puts a blank line where lines stand apart, even inside a sentence
    page = ("Consideration and possible action to amend the existing agreement with the consultant for the\n"
            "additional temporary planning services requested by the department. (Garrett)\n"
            "Recommendation: 1) Approve Amendment No. 1 to the Professional Services Agreement with the\n"
            "consultant, increasing the agreement sum by $85,000; and, 2) Authorize\n\n"
            "the Mayor and City Clerk to execute the amendment in a form approved by the City Attorney.\n\n"
            "Agenda Report\n\nF. Consideration and possible action to receive and file the October 2022 cash\n"
            "balances and the monthly treasurer's reports for the city and the authority, as\n"
            "presented by the finance department. (Lin)\n")
    brief = build_brief([page])
    assert texts(brief.recommendations)[-1] == (
        "2) Authorize the Mayor and City Clerk to execute the amendment in a form approved by the City Attorney.")


def test_long_sentence_is_cut_at_a_word_with_an_ellipsis() -> None:
    long = "That the Council " + " ".join(f"approves scheme number {i}" for i in range(60)) + "."
    brief = build_brief([f"Recommendation\n{long}\n"])
    (sentence,) = brief.recommendations
    assert len(sentence.text) <= MAX_CHARS + 1
    assert sentence.text.endswith(ELLIPSIS)
    head = sentence.text.removesuffix(ELLIPSIS)
    assert long.startswith(head) and long[len(head)] == " "


def test_report_without_sections_offers_its_first_paragraph_only() -> None:
    text = (
        "Library opening hours\n\nThe library will open on Sundays from April, following the survey of users that "
        "ran over the winter.\n\nThe cost is met from the existing budget.\n"
    )
    brief = build_brief([text], title="Library opening hours")
    assert brief.empty
    assert brief.first_paragraph == BriefSentence(
        "The library will open on Sundays from April, following the survey of users that ran over the winter.", 1
    )
    assert brief.to_dict()["first_paragraph"] == {"text": brief.first_paragraph.text, "page": 1}


def test_brief_to_dict_shape() -> None:
    brief = build_brief([UK_REPORT])
    data = brief.to_dict()
    assert set(data) == {"purpose", "recommendations", "resolutions", "first_paragraph"}
    assert data["recommendations"][0] == {"text": brief.recommendations[0].text, "page": 1}
    assert data["first_paragraph"] is None


def test_resolutions_by_agenda_item() -> None:
    minutes = (
        "Minutes of the Cabinet\n\n4. Apologies\n\nNone were received.\n\n5. Budget 2026/27\n\n"
        "RESOLVED: That the budget be approved.\n\nItem 6 - Library opening hours\n\nRESOLVED:\n\n"
        "(a) That the Saturday hours be extended;\n\n(b) That the change be reviewed in a year.\n\n"
        "7. Recommendations\n\nThat the report be noted."
    )
    brief = build_brief([minutes])
    assert [(s.item, s.text) for s in brief.resolutions] == [
        ("Item 5: Budget 2026/27", "That the budget be approved."),
        ("Item 6: Library opening hours", "(a) That the Saturday hours be extended;"),
        ("Item 6: Library opening hours", "(b) That the change be reviewed in a year."),
    ]
    assert all(s.item is None for s in brief.recommendations)  # "7. Recommendations" is the section, no item
    assert brief.to_dict()["resolutions"][0] == {"text": "That the budget be approved.", "page": 1,
                                                 "item": "Item 5: Budget 2026/27"}
    # minutes that do not number their items: no item, and no "item" key in what is stored
    plain = build_brief(["Minutes\n\nRESOLVED: That the budget be approved."])
    assert plain.resolutions[0].item is None and plain.to_dict()["resolutions"][0] == {
        "text": "That the budget be approved.", "page": 1}


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("Approve Resolution No. 2022-60. Then adjourn.", ["Approve Resolution No. 2022-60.", "Then adjourn."]),
        ("Thank Tim K. Murakami for his service.", ["Thank Tim K. Murakami for his service."]),
        ("$5,000 (excl. GST) in support.", ["$5,000 (excl. GST) in support."]),
        ("Adopt the Resolution (No. 1) 2025.", ["Adopt the Resolution (No. 1) 2025."]),
        ("a; b. Plant a vine; and, c. Fence it.", ["a;", "b. Plant a vine; and,", "c. Fence it."]),
        ("• Bullet text here.", ["Bullet text here."]),
    ],
)
def test_sentence_and_entry_splitting(text: str, units: list[str]) -> None:
    found = split_units(fold(text))
    assert [u.text for u in found] == units
    for unit in found:
        assert fold(text)[unit.start :].startswith(unit.text)
