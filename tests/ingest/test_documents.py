"""Documents' text end to end: polled from a ModernGov site (or stored by a factory), downloaded from a real HTTP
server, extracted in a child process, stored in real PostgreSQL, matched and sent.

The documents are made here: PDFs by fpdf2 (tests/documents/makers.py), a Word file by python-docx, HTML by hand.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any, get_args

import asyncpg
import pytest
from aiohttp import web
from arq.connections import ArqRedis

from notifier.db import MIGRATIONS_DIR
from notifier.documents.extract import Kind
from notifier.ingest.documents import (
    MAX_ATTEMPTS,
    DocumentsResult,
    DocumentState,
    fetch_due_documents,
    release_expired_documents,
)
from notifier.matching.documents import DocumentText, EventDocuments
from notifier.matching.matcher import SubscriptionIndex, match_events
from notifier.matching.search import preview_filter
from notifier.models import FilterModel
from notifier.settings import Settings
from tests.documents.makers import docx_bytes, encrypted_pdf, page_with_contents, pdf_pages, scanned_pdf, zlib_bomb
from tests.factories import Factory
from tests.ingest.helpers import WS, ModernGovSite, fetcher, found, poll
from tests.servers import CouncilServer, SmtpServer, fixture_bytes

MIB = 1024 * 1024
MANCHESTER = b"https://democracy.manchester.gov.uk"
PAPER = "/mgConvert2PDF.aspx?ID=60909"
MINUTES = "/mgConvert2PDF.aspx?ID=60860"
CLOSURE = "The respite centre at Hastings Road will close on 31 March, and carers will be offered short breaks."
REPORT = pdf_pages([
    ["Work programme", "A report of the City Solicitor to the Audit Committee."],
    ["1. Purpose", "To set out the committee's work programme for the year."],
    ["2. Background", "The programme was agreed with the chair.", CLOSURE],
    ["3. Recommendations", "The committee is asked to note the work programme."],
])  # fmt: skip


def manchester_here(server: CouncilServer) -> ModernGovSite:
    """The recorded Manchester answers, with their documents' links pointing at the test server."""
    site = ModernGovSite(server)
    here = server.url.encode()
    site.committees(fixture_bytes("moderngov/committees.xml"))
    site.meetings["144"] = fixture_bytes("moderngov/meetings.xml")
    site.meeting("4966", fixture_bytes("moderngov/meeting_no_minutes.xml").replace(MANCHESTER, here))
    site.meeting("4967", fixture_bytes("moderngov/meeting_with_minutes.xml").replace(MANCHESTER, here))
    server.set(PAPER, REPORT, content_type="application/pdf")
    server.set(MINUTES, docx_bytes(["The minutes of the meeting were approved."], heading="Minutes"),
               content_type="application/vnd.openxmlformats-officedocument.wordprocessingml.document")  # fmt: skip
    return site


async def fetch(pool: asyncpg.Pool, settings: Settings, *, now: datetime | None = None) -> DocumentsResult:
    async with fetcher(settings) as f:
        return await fetch_due_documents(pool, f, settings, now=now)


async def texts(pool: asyncpg.Pool) -> dict[str, dict[str, Any]]:
    """Every document's stored text and state, by the item's external id."""
    rows = await pool.fetch(
        "select i.external_id, t.* from document_texts t join items i on i.id = t.item_id order by i.external_id"
    )
    return {r["external_id"]: dict(r) for r in rows}


async def polled_and_read(
    pool: asyncpg.Pool, factory: Factory, council_server: CouncilServer, settings: Settings
) -> tuple[ModernGovSite, int, dict[str, dict[str, Any]]]:
    """Manchester polled once and its papers read: the site, the source and the stored texts."""
    site = manchester_here(council_server)
    source_id = await factory.source("manchester", url=council_server.url)
    await poll(pool, settings, source_id)
    await fetch(pool, settings)
    return site, source_id, await texts(pool)


def republish(site: ModernGovSite, old: bytes, new: bytes) -> None:
    """The meeting with minutes as the council now publishes it: `old` replaced with `new` in its details."""
    here = site.server.url.encode()
    site.meeting("4967", fixture_bytes("moderngov/meeting_with_minutes.xml").replace(MANCHESTER, here)
                 .replace(old, new))  # fmt: skip


def counts(result: DocumentsResult) -> dict[str, int]:
    return result.as_dict()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The tests' settings, with the service's own wait for documents' text."""
    return settings.model_copy(update={"document_text_wait_seconds": 900})


# ---- download and extract -----------------------------------------------------------------------------------------


async def test_documents_of_a_poll_are_downloaded_extracted_and_searched(
    pool: asyncpg.Pool, factory: Factory, council_server: CouncilServer, settings: Settings
) -> None:
    manchester_here(council_server)
    source_id = await factory.source("manchester", url=council_server.url)
    await poll(pool, settings, source_id)
    assert {k: v["state"] for k, v in (await texts(pool)).items()} == {"60860": "pending", "60909": "pending"}
    assert await found(pool, "respite") == []

    assert counts(await fetch(pool, settings)) == {"extracted": 2, "unchanged": 0, "retried": 0, "failed": 0}

    stored = await texts(pool)
    paper, minutes = stored["60909"], stored["60860"]
    assert (paper["state"], paper["kind"], len(paper["pages"]), paper["error"]) == ("ready", "pdf", 4, None)
    assert [("respite" in page) for page in paper["pages"]] == [False, False, True, False]
    assert paper["content_hash"] == hashlib.sha256(REPORT).hexdigest()
    assert (minutes["state"], minutes["kind"], minutes["pages"]) == (
        "ready", "docx", ["Minutes\n\nThe minutes of the meeting were approved."])
    assert council_server.requests[-1].headers["User-Agent"] == settings.user_agent
    # History search finds the paper by its text, and the meeting's event that published it.
    assert await found(pool, "respite") == [("document", "60909")]
    preview = await preview_filter(pool, FilterModel(query="respite"))
    [event] = preview["items"]
    assert (event["kind"], event["type"]) == ("meeting", "agenda.published")  # the event that listed the paper
    [snippet] = event["snippets"]
    assert (snippet["document"], snippet["page"]) == ("DRAFT WP FEBRUARY 2026", 3)
    assert "respite centre at Hastings Road" in snippet["text"]


async def test_documents_repoll_of_unchanged_documents_downloads_and_extracts_nothing(
    pool: asyncpg.Pool, factory: Factory, council_server: CouncilServer, settings: Settings
) -> None:
    site, source_id, before = await polled_and_read(pool, factory, council_server, settings)
    assert (council_server.hits[PAPER], council_server.hits[MINUTES]) == (1, 1)

    details = council_server.hits[f"{WS}/GetMeeting?lMeetingId=4967"]
    await stale_details(pool)
    await poll(pool, settings, source_id, force=True)
    assert council_server.hits[f"{WS}/GetMeeting?lMeetingId=4967"] == details + 1  # the documents listed again
    assert counts(await fetch(pool, settings)) == {"extracted": 0, "unchanged": 0, "retried": 0, "failed": 0}
    assert (council_server.hits[PAPER], council_server.hits[MINUTES]) == (1, 1)
    assert await texts(pool) == before

    # The same paper at a new address: downloaded once more, but the same bytes are not extracted again.
    moved = PAPER + "&v=2"
    council_server.set(moved, REPORT, content_type="application/pdf")
    republish(site, PAPER.encode() + b"<", moved.replace("&", "&amp;").encode() + b"<")
    await stale_details(pool)
    await poll(pool, settings, source_id, force=True)
    assert counts(await fetch(pool, settings)) == {"extracted": 0, "unchanged": 1, "retried": 0, "failed": 0}
    assert council_server.hits[moved] == 1
    after = (await texts(pool))["60909"]
    assert (after["url"], after["state"], after["extracted_at"]) == (
        council_server.url + moved, "ready", before["60909"]["extracted_at"])


async def test_documents_a_renamed_paper_keeps_its_words_without_a_second_download(
    pool: asyncpg.Pool, factory: Factory, council_server: CouncilServer, settings: Settings
) -> None:
    # The paper's server sends no validators, so a download could not be a conditional GET: it would be the whole
    # file again. A new title rewrites the item's search vector from its own text; the paper's words go back in
    # from the stored text.
    site, source_id, before = await polled_and_read(pool, factory, council_server, settings)
    republish(site, b"DRAFT WP  FEBRUARY 2026", b"Work programme February 2026")
    await stale_details(pool)
    await poll(pool, settings, source_id, force=True)
    assert (await texts(pool))["60909"]["reindex"] is True
    assert counts(await fetch(pool, settings)) == {"extracted": 0, "unchanged": 1, "retried": 0, "failed": 0}
    assert (council_server.hits[PAPER], council_server.hits[MINUTES]) == (1, 1)
    after = (await texts(pool))["60909"]
    assert (after["state"], after["reindex"], after["pages"]) == ("ready", False, before["60909"]["pages"])
    assert await found(pool, "respite") == [("document", "60909")]
    assert await pool.fetchval("select title from items where external_id = '60909'") == "Work programme February 2026"


async def stale_details(pool: asyncpg.Pool) -> None:
    """Make the meetings' details due to be read again at the next poll (as time passing would)."""
    await pool.execute(
        """update items set data = data || '{"_detail_at": "2020-01-01T00:00:00+00:00"}' where kind = 'meeting'"""
    )


async def test_documents_a_changed_size_is_checked_with_a_conditional_get(
    pool: asyncpg.Pool, factory: Factory, council_server: CouncilServer, settings: Settings
) -> None:
    council_server.set("/paper.pdf", REPORT, content_type="application/pdf", etag='"v1"')
    item_id = await factory.item(kind="document", title="Work programme", url=f"{council_server.url}/paper.pdf",
                                 data={"size": 1000})  # fmt: skip
    assert counts(await fetch(pool, settings))["extracted"] == 1

    await pool.execute("""update items set data = '{"size": 2000}' where id = $1""", item_id)
    assert (await texts(pool))[await external_id(pool, item_id)]["state"] == "pending"
    assert counts(await fetch(pool, settings)) == {"extracted": 0, "unchanged": 1, "retried": 0, "failed": 0}
    first, second = [r for r in council_server.requests if r.path == "/paper.pdf"]
    assert ("If-None-Match" not in first.headers, second.headers.get("If-None-Match")) == (True, '"v1"')
    assert await found(pool, "respite") == [("document", await external_id(pool, item_id))]


async def external_id(pool: asyncpg.Pool, item_id: int) -> str:
    value: str = await pool.fetchval("select external_id from items where id = $1", item_id)
    return value


HTML_PAPER = (b"<!DOCTYPE html><html><head><title>Notice</title></head><body><h1>Notice of closure</h1>"
              b"<p>The respite centre will close.</p></body></html>")  # fmt: skip


@pytest.mark.parametrize(
    ("body", "content_type", "state", "reason", "text"),
    [
        (docx_bytes(["The respite centre will close."]), "application/octet-stream", "ready", None,
         ["The respite centre will close."]),
        (HTML_PAPER, "text/html; charset=utf-8", "ready", None,
         ["Notice of closure\n\nThe respite centre will close."]),
        (scanned_pdf(2), "application/pdf", "failed", "no_text_layer", []),
        (encrypted_pdf(CLOSURE, user_password="secret"), "application/pdf", "failed", "encrypted", []),
        (REPORT[: len(REPORT) // 2], "application/pdf", "pending", "corrupt", []),
        (page_with_contents(zlib_bomb(4 * 1024 * MIB)), "application/pdf", "pending", "out_of_memory", []),
        (b"", "application/pdf", "failed", "empty", []),
    ],
    ids=["docx", "html", "scanned", "encrypted", "truncated", "decompression-bomb", "empty"],
)
async def test_documents_each_kind_and_each_failure_is_recorded(
    pool: asyncpg.Pool, factory: Factory, council_server: CouncilServer, settings: Settings,
    body: bytes, content_type: str, state: str, reason: str | None, text: list[str],
) -> None:
    council_server.set("/paper", body, content_type=content_type)
    await factory.item(kind="document", title="Paper", url=f"{council_server.url}/paper")
    now = datetime.now(UTC)
    await fetch(pool, settings.model_copy(update={"document_memory_bytes": 256 * MIB}), now=now)

    [stored] = (await texts(pool)).values()
    assert (stored["state"], stored["error_reason"], stored["pages"]) == (state, reason, text)
    assert (stored["error"] is None) == (reason is None)
    if state == "pending":  # retried after the first delay of the schedule
        assert (stored["attempts"], stored["next_attempt_at"]) == (1, now + timedelta(seconds=60))


OVER_CAP = b"%PDF-1.4\n" + b" " * (64 * 1024)


async def _gzipped_in_chunks(request: web.Request) -> web.StreamResponse:
    """A small compressed answer with no Content-Length that inflates past the cap: only counting catches it."""
    response = web.StreamResponse(headers={"Content-Type": "application/pdf", "Content-Encoding": "gzip"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    packed = gzip.compress(OVER_CAP)
    for start in range(0, len(packed), 32):
        await response.write(packed[start : start + 32])
    await response.write_eof()
    return response


@pytest.mark.parametrize("chunked", [False, True], ids=["declared-length", "chunked-gzip"])
async def test_documents_over_the_size_cap_fail_at_once(
    pool: asyncpg.Pool, factory: Factory, council_server: CouncilServer, settings: Settings, chunked: bool
) -> None:
    if chunked:
        council_server.routes["/paper.pdf"] = _gzipped_in_chunks
    else:
        council_server.set("/paper.pdf", OVER_CAP, content_type="application/pdf")
    await factory.item(kind="document", title="Paper", url=f"{council_server.url}/paper.pdf")
    result = await fetch(pool, settings.model_copy(update={"document_max_bytes": 4096}))

    assert (result.retried, result.failed) == (0, 1)
    [stored] = (await texts(pool)).values()
    assert (stored["state"], stored["attempts"], stored["error_reason"]) == ("failed", 1, "too_large")
    expected = "exceeds the 4096-byte cap" if chunked else f"is {len(OVER_CAP)} bytes, over the 4096 cap"
    assert expected in stored["error"]


async def test_documents_failures_back_off_then_are_marked_failed(
    pool: asyncpg.Pool, factory: Factory, council_server: CouncilServer, settings: Settings
) -> None:
    await factory.item(kind="document", title="Paper", url=f"{council_server.url}/missing.pdf")
    now = datetime.now(UTC)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        result = await fetch(pool, settings, now=now)
        assert (result.retried, result.failed) == ((1, 0) if attempt < MAX_ATTEMPTS else (0, 1))
        assert counts(await fetch(pool, settings, now=now))["retried"] == 0  # not due again yet
        [stored] = (await texts(pool)).values()
        now = stored["next_attempt_at"]
    assert (stored["state"], stored["attempts"], stored["error_reason"]) == ("failed", MAX_ATTEMPTS, "download")
    assert "HTTP 404" in stored["error"]
    assert council_server.hits["/missing.pdf"] == MAX_ATTEMPTS


async def test_documents_out_of_memory_is_tried_twice_then_marked_failed(
    pool: asyncpg.Pool, factory: Factory, council_server: CouncilServer, settings: Settings
) -> None:
    council_server.set("/paper.pdf", page_with_contents(zlib_bomb(4 * 1024 * MIB)), content_type="application/pdf")
    await factory.item(kind="document", title="Paper", url=f"{council_server.url}/paper.pdf")
    limited = settings.model_copy(update={"document_memory_bytes": 256 * MIB})
    assert counts(await fetch(pool, limited))["retried"] == 1
    [stored] = (await texts(pool)).values()
    assert (stored["state"], stored["error_reason"]) == ("pending", "out_of_memory")

    result = await fetch(pool, limited, now=stored["next_attempt_at"])
    assert (result.retried, result.failed) == (0, 1)
    [stored] = (await texts(pool)).values()
    assert (stored["state"], stored["attempts"], stored["error_reason"]) == ("failed", 2, "out_of_memory")
    assert council_server.hits["/paper.pdf"] == 2


async def test_documents_an_expired_claim_is_released_and_done_again(
    pool: asyncpg.Pool, factory: Factory, council_server: CouncilServer, settings: Settings
) -> None:
    council_server.set("/paper.pdf", REPORT, content_type="application/pdf")
    await factory.item(kind="document", title="Paper", url=f"{council_server.url}/paper.pdf")
    # A worker claimed it and died: the row is `fetching` with a lease nobody renews.
    await pool.execute("update document_texts set state = 'fetching', lease_until = now() + interval '30 seconds'")
    assert counts(await fetch(pool, settings))["extracted"] == 0
    assert await release_expired_documents(pool, now=datetime.now(UTC)) == 0  # the lease is still running
    later = datetime.now(UTC) + timedelta(seconds=31)
    assert await release_expired_documents(pool, now=later) == 1
    assert counts(await fetch(pool, settings, now=later))["extracted"] == 1


# ---- matching -----------------------------------------------------------------------------------------------------


def text_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def html_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


async def test_documents_a_word_only_inside_a_paper_gives_one_alert_with_page_and_snippet(
    pool: asyncpg.Pool, factory: Factory, council_server: CouncilServer, settings: Settings, redis: ArqRedis,
    smtp_server: SmtpServer, run_jobs: Any,
) -> None:
    council_server.set("/paper.pdf", REPORT, content_type="application/pdf")
    subscriber = await factory.subscriber("carer@example.org")
    subscription = await factory.subscription(subscriber, query="respite")
    await factory.event(type="document.published", kind="document", title="Dementia Strategy progress report",
                        url=f"{council_server.url}/paper.pdf", summary="Dementia Strategy progress report published")
    index = SubscriptionIndex()

    # Matched before its text is in, the event is held back rather than matched on its title alone.
    result = await match_events(pool, index, settings)
    assert (result.events, result.deliveries, result.held) == (1, 0, 1)
    await fetch(pool, settings)
    result = await match_events(pool, index, settings)
    assert (result.deliveries, result.held) == (1, 0)
    assert (await match_events(pool, index, settings)).deliveries == 0

    delivery = await pool.fetchrow("select subscription_id, matched_terms, snippets from deliveries")
    assert (delivery["subscription_id"], delivery["matched_terms"]) == (subscription, ["respite"])
    [snippet] = delivery["snippets"]
    assert (snippet["document"], snippet["page"]) == ("Dementia Strategy progress report", 3)
    assert snippet["text"].startswith("2. Background The programme was agreed with the chair. The respite centre")

    await redis.enqueue_job("send_emails")
    await run_jobs()
    [message] = smtp_server.to("carer@example.org")
    text = " ".join(text_part(message).split())
    assert "p. 3: 2. Background The programme was agreed with the chair. The *respite* centre at" in text
    assert "p.&#160;3:</span> 2. Background" in html_part(message)
    assert "<mark>respite</mark> centre" in html_part(message)


async def test_documents_an_event_waits_for_its_text_a_bounded_time(
    pool: asyncpg.Pool, factory: Factory, council_server: CouncilServer, settings: Settings
) -> None:
    subscriber = await factory.subscriber()
    await factory.subscription(subscriber, query="respite")
    by_title = await factory.subscription(subscriber, query="dementia")
    occurred = datetime.now(UTC)
    await factory.event(type="document.published", kind="document", title="Dementia Strategy progress report",
                        url=f"{council_server.url}/missing.pdf", occurred_at=occurred)  # fmt: skip
    index = SubscriptionIndex()
    wait = timedelta(seconds=settings.document_text_wait_seconds)
    assert (await match_events(pool, index, settings)).held == 1
    await fetch(pool, settings, now=occurred)  # a 404: retried later, still coming
    result = await match_events(pool, index, settings, now=occurred + wait - timedelta(seconds=1))
    assert (result.deliveries, result.held) == (0, 1)

    # The wait has run out: matched on what there is (its title), once.
    result = await match_events(pool, index, settings, now=occurred + wait)
    assert (result.deliveries, result.held) == (1, 0)
    assert [tuple(r) for r in await pool.fetch("select subscription_id, snippets from deliveries")] == [(by_title, [])]


async def test_documents_events_without_documents_are_never_held(
    pool: asyncpg.Pool, factory: Factory, settings: Settings
) -> None:
    subscriber = await factory.subscriber()
    await factory.subscription(subscriber, query="dementia")
    await factory.event(type="document.published", kind="document", title="Dementia strategy")  # no URL: no text
    await factory.event(title="Dementia friendly communities")
    result = await match_events(pool, SubscriptionIndex(), settings)
    assert (result.events, result.deliveries, result.held) == (2, 2, 0)



@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("state in (", {s.value for s in DocumentState}),
        ("kind in (", set(get_args(Kind))),
    ],
)
def test_documents_schema_checks_match_python(column: str, values: set[str]) -> None:
    sql = (MIGRATIONS_DIR / "0003_documents.sql").read_text()
    start = sql.index(column)
    assert set(re.findall(r"'([^']+)'", sql[start : sql.index(")", start)])) == values


PAGES = ("Cover page", "The respite centre will close.", "Under the Mental Health Act, children's services apply.")


@pytest.mark.parametrize(
    ("terms", "found"),
    [
        (["respite"], [(2, "The respite centre will close.")]),
        (['"mental health"', "child*"], [(3, "Under the Mental Health Act, children's services apply.")]),
        (["respite", "respit*"], [(2, "The respite centre will close.")]),  # one place, said once
        (["dementia"], []),
        (['"close under"'], []),  # a phrase across two pages is on neither
    ],
)
def test_documents_snippets_name_the_first_page_of_each_term(terms: list[str], found: list[tuple[int, str]]) -> None:
    docs = EventDocuments([DocumentText("Cabinet report", ()), DocumentText("Respite review", PAGES)])
    snippets = docs.snippets(terms)
    assert [(s["page"], s["text"]) for s in snippets] == found
    assert all(s["document"] == "Respite review" for s in snippets)
