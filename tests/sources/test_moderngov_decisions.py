"""Tests for the ModernGov decisions adapter: the register, decision pages and the refresh policy."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from notifier.models import ItemKind
from notifier.sources.base import Record, Response, SourceError, SourceState
from notifier.sources.moderngov_decisions import (
    ModernGovDecisionsAdapter,
    RegisterRow,
    needs_details,
    parse_decision,
    parse_register,
    register_url,
)
from tests.sources.test_moderngov import Answer, FakeFetch, fixture, known_from, merged

KIRKLEES = "https://democracy.kirklees.gov.uk"
SHIRE = "https://democracy.example-shire.gov.uk"
NOW = datetime(2025, 11, 20, 10, 0, tzinfo=UTC)


def html(name: str, url: str = f"{KIRKLEES}/page.aspx") -> Response:
    return Response(url=url, status=200, body=fixture(name), content_type="text/html; charset=utf-8")


def routes(**overrides: Answer) -> dict[str, Answer]:
    return merged(
        overrides,
        {
            r"/mgDelegatedDecisions\.aspx\?": fixture("modgov_decisions_list.html"),
            r"/ieDecisionDetails\.aspx\?ID=13567$": fixture("modgov_decision_detail.html"),
            r"/ieDecisionDetails\.aspx\?ID=13149$": fixture("decision_detail_full.html"),
        },
    )


async def collect(answers: Mapping[str, Answer], url: str = KIRKLEES, **state: Any) -> tuple[list[Record], FakeFetch]:
    fetch = FakeFetch(answers)
    records = await ModernGovDecisionsAdapter().collect(url, fetch, SourceState(**{"now": NOW, **state}))
    assert records is not None
    return records, fetch


# ---- the register ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "url"),
    [
        (
            KIRKLEES,
            f"{KIRKLEES}/mgDelegatedDecisions.aspx?XXR=0&bDD=true&DR=21%2F09%2F2025-20%2F11%2F2025&ACT=Find&RP=0&K=0"
            "&V=0&DM=0&HD=0&DS=2&Next=true&META=mgdelegateddecisions",
        ),
        (
            f"{KIRKLEES}/mgDelegatedDecisions.aspx?bDD=true",
            f"{KIRKLEES}/mgDelegatedDecisions.aspx?XXR=0&bDD=true&DR=21%2F09%2F2025-20%2F11%2F2025&ACT=Find&RP=0&K=0"
            "&V=0&DM=0&HD=0&DS=2&Next=true&META=mgdelegateddecisions",
        ),
        (
            "https://www.example.gov.uk/democracy/mgListOfficerDecisions.aspx",
            "https://www.example.gov.uk/democracy/mgListOfficerDecisions.aspx?XXR=0&FULL=1&BAM=1"
            "&DR=21%2F09%2F2025-20%2F11%2F2025&ACT=Find&K=0&DM=0&DEP=0&PH=0&LO=0&C3=0&Next=true",
        ),
    ],
)
def test_register_url_query(source: str, url: str) -> None:
    assert register_url(source, datetime(2025, 9, 21).date(), datetime(2025, 11, 20).date()) == url


async def test_collect_register_window_from_options() -> None:
    # 23:30 UTC on 29 March 2026 is already 30 March in London.
    _, fetch = await collect(routes(), now=datetime(2026, 3, 29, 23, 30, tzinfo=UTC), options={"days_back": 7})
    assert fetch.asked[0] == (
        f"{KIRKLEES}/mgDelegatedDecisions.aspx?XXR=0&bDD=true&DR=23%2F03%2F2026-30%2F03%2F2026&ACT=Find&RP=0&K=0"
        "&V=0&DM=0&HD=0&DS=2&Next=true&META=mgdelegateddecisions"
    )


@pytest.mark.parametrize("days_back", [-1, "sixty", True, 10_000, 1.5])
async def test_collect_bad_days_back(days_back: Any) -> None:
    with pytest.raises(SourceError, match=r"^option days_back must be "):
        await collect(routes(), options={"days_back": days_back})


def test_parse_register_skips_rows_that_are_not_decisions() -> None:
    assert parse_register(html("modgov_decisions_list.html")) == [
        RegisterRow(
            id="13567",
            title=(
                "Settlement Agreement with Network Rail Infrastructure Limited (NRIL) in respect of land adjacent to "
                "the George Hotel, Railway Street, Huddersfield"
            ),
            date_text="01/04/2025",
            effective_text="01/04/2025",
            call_in_text="Not for call-in",
        ),
        RegisterRow(
            id="13149",
            title="Admission of the Public",
            date_text="03/11/2025",
            effective_text="03/11/2025",
            call_in_text="Not for call-in",
        ),
    ]


def test_parse_register_officer_list() -> None:
    assert parse_register(html("modgov_officer_decisions_list.html")) == [
        RegisterRow(
            id="13149", title="Admission of the Public", date_text="03/11/2025", effective_text="", call_in_text=""
        )
    ]


@pytest.mark.parametrize(
    "body",
    [
        fixture("decisions_register_empty.html"),
        b'<table class="mgTabTable" summary="Table of decision summary data"><tbody></tbody></table>',
        b'<table class="mgTabTable"><caption class="mgSectionTitle">Officer decisions</caption></table>',
        b'<form action="mgDelegatedDecisions.aspx?XXR=0" method="post"><p>No results.</p></form>',
        b'<div id="modgov"><h1 class="mgMainTitleTxt">Delegated Decisions</h1><p>None found.</p></div>',
    ],
)
def test_parse_register_empty_register_is_valid(body: bytes) -> None:
    assert parse_register(Response(url="https://x.gov.uk/r", status=200, body=body)) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "ModernGov decisions register page (https://x.gov.uk/r) is empty"),
        (b"  \n ", "ModernGov decisions register page (https://x.gov.uk/r) is empty"),
        (
            fixture("error_page_200.html"),
            "ModernGov decisions register page (https://x.gov.uk/r) is not a decisions register "
            "(no decisions table or search form)",
        ),
        (
            b'<div id="modgov"><h1 class="mgMainTitleTxt">Committee details</h1><p>Audit Committee</p></div>',
            "ModernGov decisions register page (https://x.gov.uk/r) is not a decisions register "
            "(no decisions table or search form)",
        ),
        (
            b'<div id="modgov"><h1 class="mgMainTitleTxt">Decision details</h1>'
            b'<table class="mgTabTable"><caption>Meetings</caption></table></div>',
            "ModernGov decisions register page (https://x.gov.uk/r) is not a decisions register "
            "(no decisions table or search form)",
        ),
        (
            fixture("committees.xml"),
            "ModernGov decisions register page (https://x.gov.uk/r) is not a decisions register "
            "(no decisions table or search form)",
        ),
    ],
)
def test_parse_register_refuses_what_is_not_a_register(body: bytes, message: str) -> None:
    with pytest.raises(SourceError) as e:
        parse_register(Response(url="https://x.gov.uk/r", status=200, body=body))
    assert str(e.value) == message


async def test_collect_register_error_page_fails_the_poll() -> None:
    with pytest.raises(SourceError, match="is not a decisions register"):
        await collect(routes(**{r"/mgDelegatedDecisions\.aspx\?": fixture("error_page_200.html")}))


async def test_collect_empty_register_gives_nothing() -> None:
    records, fetch = await collect(
        routes(**{r"/mgDelegatedDecisions\.aspx\?": fixture("decisions_register_empty.html")})
    )
    assert records == []
    assert len(fetch.asked) == 1


# ---- decision pages --------------------------------------------------------------------------------------------------

ROW_13567 = RegisterRow("13567", "Settlement Agreement", "01/04/2025", "01/04/2025", "Not for call-in")
ROW_13149 = RegisterRow("13149", "Admission of the Public", "03/11/2025", "03/11/2025", "Not for call-in")


def test_parse_decision_recorded_page() -> None:
    record = parse_decision(
        html("modgov_decision_detail.html"), row=ROW_13567, base=KIRKLEES, tz="Europe/London", fetched_at=NOW
    )
    assert record == Record(
        kind=ItemKind.DECISION,
        external_id="13567",
        title="Minutes of Previous Meeting",
        committee="Policy Committee",
        committee_id="151",
        body="The Minutes of the Policy Committee meeting on 23 September 2015 were approved as a correct record.",
        starts_at=datetime(2015, 10, 18, 23, 0, tzinfo=UTC),  # 19/10/2015 local midnight, BST
        status="Recommendations Approved",
        url=f"{KIRKLEES}/ieDecisionDetails.aspx?ID=13567",
        published_at=datetime(2015, 10, 21, 23, 0, tzinfo=UTC),  # 22/10/2015
        data={
            "key_decision": False,
            "call_in": False,
            "decision_maker": "Policy Committee",
            "decision_date": "2015-10-19",
            "documents": [
                {"title": "polc2 - 23.09.2015", "url": f"{KIRKLEES}/documents/s7942/polc2%20-%2023.09.2015.pdf"}
            ],
            "effective_from": "2025-04-01",
            "call_in_status": "Not for call-in",
            "meeting_id": "4832",
            "meeting_url": f"{KIRKLEES}/ieListDocuments.aspx?CId=151&MID=4832",
            "_summary": "Settlement Agreement|01/04/2025|01/04/2025|Not for call-in",
            "_detail_at": "2025-11-20T10:00:00+00:00",
        },
    )


def test_parse_decision_full_page() -> None:
    row = RegisterRow("190", "Adult social care charging policy 2026/27", "03/03/2026", "", "Call-in period open")
    record = parse_decision(html("decision_detail_full.html"), row=row, base=SHIRE, tz="Europe/London", fetched_at=NOW)
    assert record == Record(
        kind=ItemKind.DECISION,
        external_id="190",
        title="Adult social care charging policy 2026/27",
        committee="Cabinet Lead Member for Adults and Communities",
        body=(
            "(a) That the revised charging policy for non-residential care, including dementia day services, be "
            "approved;\n"
            "(b) That the Director of Adults and Communities be authorised to implement the policy from 6 April 2026.\n"
            "Purpose:\n"
            "To agree the charging policy for non-residential adult social care from April 2026.\n"
            "Reasons for the decision:\n"
            "To ensure charging is fair and consistent with the Care Act 2014.\n"
            "Alternative options considered:\n"
            "Retaining the current policy was rejected."
        ),
        starts_at=datetime(2026, 3, 2, 0, 0, tzinfo=UTC),  # GMT
        status="For Determination",
        url=f"{SHIRE}/ieDecisionDetails.aspx?ID=190",
        published_at=datetime(2026, 3, 3, 0, 0, tzinfo=UTC),
        data={
            "key_decision": True,
            "call_in": True,
            "call_in_deadline": "2026-03-10",
            "call_in_status": "Call-in period open",
            "decision_maker": "Cabinet Lead Member for Adults and Communities",
            "decision_date": "2026-03-02",
            "effective_from": "2026-03-11",
            "documents": [
                {"title": "Charging policy report", "url": f"{SHIRE}/documents/s190001/Charging%20policy%20report.pdf"},
                {
                    "title": "Appendix A – equality impact assessment",
                    "url": f"{SHIRE}/documents/s190002/Appendix%20A%20EIA.pdf",
                },
            ],
            "_summary": "Adult social care charging policy 2026/27|03/03/2026||Call-in period open",
            "_detail_at": "2025-11-20T10:00:00+00:00",
        },
    )


def test_parse_decision_falls_back_to_the_register() -> None:
    page = (
        b'<div id="modgov"><div class="mgContent"><p><span class="mgLabel">Decision status: </span>Called In</p>'
        b'<p><span class="mgLabel">Is subject to call in?: </span>Urgent - exempt from call-in</p></div></div>'
    )
    record = parse_decision(
        Response(url="u", status=200, body=page), row=ROW_13149, base=KIRKLEES, tz="Europe/London", fetched_at=NOW
    )
    assert (record.title, record.status, record.starts_at, record.published_at, record.committee) == (
        "Admission of the Public",
        "Called In",
        datetime(2025, 11, 3, 0, 0, tzinfo=UTC),
        datetime(2025, 11, 3, 0, 0, tzinfo=UTC),
        None,
    )
    assert record.data["call_in"] == "Urgent - exempt from call-in"
    assert record.data["documents"] == []
    assert "meeting_id" not in record.data


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "ModernGov decision page 13149 is empty"),
        (fixture("error_page_200.html"), "ModernGov decision page 13149 is not a ModernGov decision page"),
        (
            b'<div id="modgov"><h2 class="mgSubTitleTxt">X</h2><p><span class="mgLabel">Date of decision: </span>'
            b"31/02/2025</p></div>",
            "ModernGov decision page 13149: date of decision: not a valid date: '31/02/2025'",
        ),
    ],
)
async def test_collect_bad_decision_page_fails_the_poll(body: bytes, message: str) -> None:
    with pytest.raises(SourceError) as e:
        await collect(routes(**{r"/ieDecisionDetails\.aspx\?ID=13149$": body}))
    assert str(e.value).startswith(message), str(e.value)


async def test_collect_decision_fetch_failing_fails_the_poll() -> None:
    failing = routes(**{r"/ieDecisionDetails\.aspx\?ID=13567$": SourceError("HTTP 503 Service Unavailable")})
    with pytest.raises(SourceError, match=r"^HTTP 503 Service Unavailable$"):
        await collect(failing)


# ---- collect and the refresh policy ----------------------------------------------------------------------------------


async def test_collect_recorded_register_and_pages() -> None:
    records, fetch = await collect(routes())
    assert sorted(fetch.asked[1:]) == [
        f"{KIRKLEES}/ieDecisionDetails.aspx?ID=13149",
        f"{KIRKLEES}/ieDecisionDetails.aspx?ID=13567",
    ]
    assert not any("mgIssueHistoryHome" in u for u in fetch.asked)
    assert [(r.kind, r.external_id, r.title) for r in records] == [
        (ItemKind.DECISION, "13567", "Minutes of Previous Meeting"),
        (ItemKind.DECISION, "13149", "Adult social care charging policy 2026/27"),
    ]


async def test_collect_second_poll_skips_fresh_decisions() -> None:
    first, _ = await collect(routes())
    second, fetch = await collect(routes(), now=NOW + timedelta(hours=23), known=known_from(first))
    assert second == []
    assert fetch.asked_matching("ieDecisionDetails") == []


async def test_collect_refetches_after_a_day_or_a_changed_row() -> None:
    first, _ = await collect(routes())
    known = known_from(first)
    later, fetch = await collect(routes(), now=NOW + timedelta(hours=24), known=known)
    assert sorted(fetch.asked_matching("ieDecisionDetails")) == [
        f"{KIRKLEES}/ieDecisionDetails.aspx?ID=13149",
        f"{KIRKLEES}/ieDecisionDetails.aspx?ID=13567",
    ]
    assert len(later) == 2
    # The first row (13567) is now called in.
    called_in = fixture("modgov_decisions_list.html").replace(b"Not for call-in", b"Called in", 1)
    assert called_in != fixture("modgov_decisions_list.html")
    changed, fetch = await collect(
        routes(**{r"/mgDelegatedDecisions\.aspx\?": called_in}), now=NOW + timedelta(hours=1), known=known
    )
    assert fetch.asked_matching("ieDecisionDetails") == [f"{KIRKLEES}/ieDecisionDetails.aspx?ID=13567"]
    assert [(r.external_id, r.data["call_in_status"]) for r in changed] == [("13567", "Called in")]


ROW = RegisterRow("1", "T", "03/11/2025", "03/11/2025", "")


@pytest.mark.parametrize(
    ("known", "needed"),
    [
        (None, True),
        ({}, True),
        ({"_summary": "T|03/11/2025|03/11/2025|Called in", "_detail_at": "2025-11-20T09:00:00+00:00"}, True),
        ({"_summary": ROW.summary}, True),
        ({"_summary": ROW.summary, "_detail_at": "not a time"}, True),
        ({"_summary": ROW.summary, "_detail_at": "2025-11-19T10:00:01+00:00"}, False),
        ({"_summary": ROW.summary, "_detail_at": "2025-11-19T10:00:00+00:00"}, True),
        ({"_summary": ROW.summary, "_detail_at": "2025-11-19T10:00:01"}, False),
    ],
)
def test_needs_details_policy(known: dict[str, Any] | None, needed: bool) -> None:
    assert needs_details(ROW, known, now=NOW) is needed


def register_of(n: int) -> dict[str, Answer]:
    """A register listing decisions 1 to `n`, every page answered with the recorded decision."""
    rows = "".join(
        f'<tr><td class="mgMainTxt"><a href="ieDecisionDetails.aspx?ID={i}">Decision {i}</a></td>'
        f'<td class="mgMainTxt">03&#47;11&#47;2025</td></tr>'
        for i in range(1, n + 1)
    )
    register = f'<table class="mgTabTable" summary="Table of decision summary data"><tbody>{rows}</tbody></table>'
    return {
        r"/mgDelegatedDecisions\.aspx\?": register.encode(),
        r"/ieDecisionDetails\.aspx\?ID=": fixture("modgov_decision_detail.html"),
    }


async def test_collect_pages_within_the_hosts_budget_the_unread_first() -> None:
    """40 new decisions, polled every minute, on a host read by two sources at one request every 2 s: each poll
    may ask 15 times (60 s / 4 s), the register and 14 pages; the pages left wait for the next polls, unread first."""
    answers = register_of(40)
    known: dict[tuple[ItemKind, str], Mapping[str, Any]] = {}
    read: list[list[str]] = []
    for minute in range(4):
        records, fetch = await collect(answers, now=NOW + timedelta(minutes=minute), known=dict(known),
                                       poll_interval=timedelta(minutes=1), host_sources=2)
        assert len(fetch.asked) <= 15
        read.append([r.external_id for r in records])
        known.update(known_from(records))
    assert [len(r) for r in read] == [14, 14, 12, 0]
    assert sorted((i for r in read for i in r), key=int) == [str(i) for i in range(1, 41)]
    # alone on its host, the source may ask twice as often; a poll by hand (no interval) has no limit
    _, fetch = await collect(answers, poll_interval=timedelta(minutes=1))
    assert len(fetch.asked) == 30
    records, _ = await collect(answers)
    assert len(records) == 40


async def test_collect_limits_its_own_concurrency() -> None:
    answers = register_of(10)
    fetch = FakeFetch(answers, delay=0.005)
    records = await ModernGovDecisionsAdapter().collect(KIRKLEES, fetch, SourceState(now=NOW))
    assert [r.external_id for r in records or []] == [str(n) for n in range(1, 11)]
    assert fetch.peak == 4
