"""Meeting briefs end to end: built from the documents' stored text, rebuilt when it changes, shown on the meeting
page, in the API and in the weekly summary and alerts; no invented text for a paper without such sections."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import feedparser
import pytest
from aiohttp.test_utils import TestClient, TestServer
from arq.connections import ArqRedis

from notifier.delivery.email.mailer import Mailer
from notifier.ingest.briefs import brief_lines, build_due_briefs, document_briefs, meeting_briefs
from notifier.matching.matcher import SubscriptionIndex, match_events
from notifier.partners import create_partner
from notifier.settings import Settings
from notifier.web.app import create_app
from tests.factories import Factory
from tests.servers import SmtpServer
from tests.web.test_pages import html_part, text_part

STRATEGY = [
    "Report of the Director of Public Health\n\nPurpose of the Report\n\n1. The purpose of this report is to update "
    "the Board on progress with the Living Well with Dementia strategy.\n\nBackground\n\n2. The strategy was agreed "
    "in 2024 and runs to 2028.",
    "Recommendations\n\n3. The Board is asked to:\n\n(a) note the progress made in the first year;\n\n(b) approve "
    "the revised respite care action plan.",
]
BCF = [
    "Better Care Fund Quarter Two Return\n\nSummary\n\nThe purpose of this report is to seek the Board's approval of "
    "the quarter two return.",
    "Background\n\nThe return was submitted to NHS England on 31 October.",
    "Recommendation\n\nIt is recommended that the Board approves the Better Care Fund quarter two return.",
]
APPENDIX = ["Appendix A\n\nTable of figures for the quarter, by district and by month, with the totals for the county."]
MINUTES = ["Minutes of the Health and Wellbeing Board\n\n5. Better Care Fund\n\nRESOLVED: That the Better Care Fund "
           "quarter two return be approved."]


async def paper(pool: asyncpg.Pool, factory: Factory, parent: int, title: str, pages: list[str]) -> int:
    """A document filed under `parent`, its text read (as the documents job leaves it)."""
    doc = await factory.item(kind="document", title=title, url=f"https://leics.example/{title.replace(' ', '-')}.pdf")
    await pool.execute("update items set parent_id = $2 where id = $1", doc, parent)
    await set_text(pool, doc, pages)
    return doc


async def set_text(pool: asyncpg.Pool, doc: int, pages: list[str]) -> None:
    digest = hashlib.sha256("\f".join(pages).encode()).hexdigest()
    await pool.execute(
        """
        insert into document_texts (item_id, url, state, pages, content_hash, kind, extracted_at)
        values ($1, 'https://leics.example/x.pdf', 'ready', $2, $3, 'pdf', now())
        on conflict (item_id) do update set state = 'ready', pages = $2, content_hash = $3
        """,
        doc, pages, digest,
    )


@pytest.fixture
async def meeting(pool: asyncpg.Pool, factory: Factory) -> dict[str, int]:
    starts = datetime.now(UTC) + timedelta(days=3)
    meeting = await factory.item(kind="meeting", title="Health and Wellbeing Board", starts_at=starts,
                                 data={"location": "County Hall, Glenfield"})
    agenda = await factory.item(kind="agenda_item", title="Dementia <strategy> update")
    await pool.execute("update items set parent_id = $2 where id = $1", agenda, meeting)
    return {
        "meeting": meeting,
        "strategy": await paper(pool, factory, agenda, "Dementia strategy progress report", STRATEGY),
        "bcf": await paper(pool, factory, meeting, "Better Care Fund Q2 report", BCF),
        "appendix": await paper(pool, factory, meeting, "Appendix A", APPENDIX),
    }


async def match_and_send(pool: asyncpg.Pool, settings: Settings) -> int:
    """Match the events written so far and send every delivery now, digests included; returns the emails sent."""
    await match_events(pool, SubscriptionIndex(), settings)
    now = datetime.now(UTC)
    await pool.execute("update deliveries set next_attempt_at = $1", now)
    mailer = Mailer.create(settings, pool)
    try:
        return await mailer.send_due(now=now)
    finally:
        await mailer.close()


async def test_briefs_a_meeting_with_three_reports(pool: asyncpg.Pool, meeting: dict[str, int]) -> None:
    assert sorted(await build_due_briefs(pool)) == sorted([meeting["strategy"], meeting["bcf"], meeting["appendix"]])
    assert await build_due_briefs(pool) == []  # nothing changed: nothing built again
    brief = (await meeting_briefs(pool, [meeting["meeting"]]))[meeting["meeting"]]
    docs = {d.title: d for d in brief.documents}
    assert [(s["text"], s["page"]) for s in docs["Dementia strategy progress report"].recommendations] == [
        ("The Board is asked to:", 2), ("(a) note the progress made in the first year;", 2),
        ("(b) approve the revised respite care action plan.", 2),
    ]
    assert [(s["text"], s["page"]) for s in docs["Better Care Fund Q2 report"].recommendations] == [
        ("It is recommended that the Board approves the Better Care Fund quarter two return.", 3),
    ]
    assert docs["Better Care Fund Q2 report"].purpose[0]["page"] == 1
    appendix = docs["Appendix A"]
    assert appendix.empty and not appendix.purpose and not appendix.recommendations  # nothing invented
    assert appendix.first_paragraph is not None and appendix.first_paragraph["page"] == 1
    assert brief.topics and all(isinstance(t, str) for t in brief.topics)
    # a paper's meeting, whether filed under the meeting or under one of its agenda items
    papers = await document_briefs(pool, [meeting["strategy"], meeting["bcf"]])
    assert {d.meeting_id for d in papers} == {meeting["meeting"]}


async def test_briefs_rebuilt_when_the_text_changes(pool: asyncpg.Pool, meeting: dict[str, int]) -> None:
    await build_due_briefs(pool)
    await set_text(pool, meeting["bcf"], MINUTES)
    assert await build_due_briefs(pool) == [meeting["bcf"]]
    brief = (await meeting_briefs(pool, [meeting["meeting"]], topics=False))[meeting["meeting"]]
    bcf = next(d for d in brief.documents if d.document_id == meeting["bcf"])
    assert bcf.recommendations == []
    assert [s["text"] for s in bcf.resolutions] == ["That the Better Care Fund quarter two return be approved."]
    counts = dict(await pool.fetch("select phrase, documents from phrase_counts"))
    assert all(n >= 0 for n in counts.values())


@pytest.fixture
async def client(settings: Settings, pool: asyncpg.Pool, redis: ArqRedis) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_app(settings))) as c:
        yield c


async def test_briefs_on_the_meeting_page_escaped_and_without_script(
    client: TestClient[Any, Any], pool: asyncpg.Pool, meeting: dict[str, int]
) -> None:
    await build_due_briefs(pool)
    resp = await client.get(f"/meetings/{meeting['meeting']}")
    assert resp.status == 200
    html = await resp.text()
    assert "(b) approve the revised respite care action plan." in html and "(p. 2)" in html
    assert "County Hall, Glenfield" in html
    assert "Dementia &lt;strategy&gt; update" in html and "<strategy>" not in html
    # everything above is in the HTML itself; the site's one script (progressive enhancement) is the only one
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/site.js" defer>']
    assert 'href="/?query=' in html  # each topic opens the subscribe form with it filled in
    assert "Follow Health and Wellbeing Board" in html
    for missing in ("/meetings/999999", "/meetings/abc", f"/meetings/{meeting['strategy']}"):
        assert (await client.get(missing)).status == 404


async def test_briefs_in_the_api(client: TestClient[Any, Any], pool: asyncpg.Pool, meeting: dict[str, int]) -> None:
    _, key = await create_partner(pool, "Newsroom")
    headers = {"Authorization": f"Bearer {key}"}
    got = await (await client.get(f"/api/v1/items/{meeting['bcf']}", headers=headers)).json()
    assert got["brief"] is None  # its text is read, but not yet briefed
    await build_due_briefs(pool)
    got = await (await client.get(f"/api/v1/items/{meeting['meeting']}", headers=headers)).json()
    recs = got["brief"]["recommendations"]
    assert {"text": "It is recommended that the Board approves the Better Care Fund quarter two return.",
            "page": 3, "document_id": meeting["bcf"]} in recs
    assert got["brief"]["topics"]
    got = await (await client.get(f"/api/v1/items/{meeting['strategy']}", headers=headers)).json()
    assert [s["page"] for s in got["brief"]["purpose"]] == [1] and got["brief"]["topics"] == []


async def test_briefs_in_the_weekly_summary_and_the_alert(
    pool: asyncpg.Pool, factory: Factory, meeting: dict[str, int], settings: Settings, smtp_server: SmtpServer
) -> None:
    await build_due_briefs(pool)
    weekly = await factory.subscription(await factory.subscriber("amy@example.org"), councils=["leicestershire"],
                                        frequency="weekly", weekday=0, hour=7)
    await factory.subscription(await factory.subscriber("bob@example.org"), query="respite")
    await factory.event(item_id=meeting["meeting"], type="agenda.published", summary="Agenda published")
    await factory.event(item_id=meeting["strategy"], type="document.published", summary="Report published",
                        title="Dementia strategy progress report")
    assert await match_and_send(pool, settings) == 2
    by_to = {m.rcpt_tos[0]: m.message for m in smtp_server.messages}
    summary = " ".join(text_part(by_to["amy@example.org"]).split())
    assert "Recommendation (Better Care Fund Q2 report, p. 3): It is recommended that the Board approves" in summary
    assert f"{settings.base_url}/meetings/{meeting['meeting']}" in summary
    assert "approve the revised respite care action plan." in html_part(by_to["amy@example.org"])
    alert = " ".join(text_part(by_to["bob@example.org"]).split())
    assert "Recommendation (p. 2): (b) approve the revised respite care action plan." in alert
    # the report is filed under an agenda item of the meeting: its alert links to the meeting's page
    page = f"{settings.base_url}/meetings/{meeting['meeting']}"
    assert f"Papers: {page}" in alert and f'href="{page}"' in html_part(by_to["bob@example.org"])
    assert weekly


async def test_briefs_in_the_feed_entries(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory, meeting: dict[str, int]
) -> None:
    await build_due_briefs(pool)
    await factory.event(item_id=meeting["bcf"], type="document.published", summary="Better Care Fund report published",
                        title="Better Care Fund Q2 report")
    resp = await client.get("/feeds/councils/leicestershire.atom")
    [entry] = feedparser.parse(await resp.read()).entries
    content = " ".join(entry.content[0].value.split())
    assert ("<strong>Recommendation</strong> (p. 3): It is recommended that the Board approves the Better Care Fund "
            "quarter two return.") in content


async def test_briefs_a_decision_says_what_was_decided(
    pool: asyncpg.Pool, factory: Factory, settings: Settings, smtp_server: SmtpServer
) -> None:
    await factory.subscription(await factory.subscriber("amy@example.org"), councils=["leicestershire"],
                               frequency="weekly", weekday=0, hour=7)
    await factory.event(type="decision.published", kind="decision", title="Library opening hours",
                        body="The Cabinet agreed to extend the opening hours of Loughborough Library on Saturdays.",
                        summary="Decision: Library opening hours")
    assert await match_and_send(pool, settings) == 1
    text = " ".join(text_part(smtp_server.messages[0].message).split())
    assert "The Cabinet agreed to extend the opening hours of Loughborough Library on Saturdays." in text


async def test_briefs_weekly_summary_of_a_held_meeting_and_a_decision(
    pool: asyncpg.Pool, factory: Factory, settings: Settings, smtp_server: SmtpServer
) -> None:
    held = await factory.item(kind="meeting", starts_at=datetime.now(UTC) - timedelta(days=2))
    minutes = await paper(pool, factory, held, "Minutes", MINUTES)
    await build_due_briefs(pool)
    decision = ("The Cabinet agreed to extend the opening hours of Loughborough Library on Saturdays and Sundays "
                "from April, to fund the extra hours from the libraries reserve, and to review the change after "
                "twelve months with a report to the Scrutiny Commission on visits, costs and the views of residents.")
    await factory.item(kind="decision", title="Library opening hours", body=decision)
    await factory.subscription(await factory.subscriber("amy@example.org"), councils=["leicestershire"],
                               frequency="weekly", weekday=0, hour=7)
    # the week's one matched event: the meeting and the decision come from the council's items
    await factory.event(item_id=minutes, type="document.published", summary="Minutes published", title="Minutes")
    assert await match_and_send(pool, settings) == 1
    message = smtp_server.messages[0].message
    text = " ".join(text_part(message).split())
    assert ("Item 5: Better Care Fund \u2014 Resolved (Minutes, p. 1): That the Better Care Fund quarter two return "
            "be approved.") in text
    assert f"{settings.base_url}/meetings/{held}" in text
    # the decision's own words, cut at a word with "…"
    assert "The Cabinet agreed to extend the opening hours of Loughborough Library" in text
    excerpt = re.search(r"(The Cabinet agreed[^…]*)…", text)
    assert excerpt is not None and decision.startswith(excerpt[1]) and decision[len(excerpt[1])] == " "
    assert "The Cabinet agreed to extend" in html_part(message)


async def test_briefs_resolutions_by_agenda_item_on_the_meeting_page(
    client: TestClient[Any, Any], pool: asyncpg.Pool, factory: Factory
) -> None:
    held = await factory.item(kind="meeting", starts_at=datetime.now(UTC) - timedelta(days=2))
    await paper(pool, factory, held, "Minutes", MINUTES)
    await build_due_briefs(pool)
    # a brief stored before resolutions had their agenda item: shown as before
    old = await factory.item(kind="document", title="Earlier minutes")
    await pool.execute("update items set parent_id = $2 where id = $1", old, held)
    await pool.execute(
        "insert into document_briefs (item_id, text_hash, brief, phrases) values ($1, 'x', $2, '{}')",
        old, {"purpose": [], "recommendations": [], "resolutions": [{"text": "That the minutes be signed.", "page": 2}],
              "first_paragraph": None},
    )
    html = " ".join((await (await client.get(f"/meetings/{held}")).text()).split())
    assert ("<strong>Item 5: Better Care Fund</strong> — That the Better Care Fund quarter two return be approved."
            in html)
    assert "<li>That the minutes be signed. <span" in html
    docs = (await meeting_briefs(pool, [held], topics=False))[held].documents
    assert [line[0] for line in brief_lines(docs, resolutions=True)] == [
        "Item 5: Better Care Fund \u2014 Resolved", "Resolved"]
