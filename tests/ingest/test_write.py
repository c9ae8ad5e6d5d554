"""What one successful poll writes (`notifier.ingest.write.write_poll`): each item row once, nothing for what is
unchanged, rewritten rows that keep their words, and nothing at all when writing fails part way.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from notifier.ingest import write
from notifier.ingest.normalise import content_hash
from notifier.ingest.write import PollResult, write_poll
from notifier.models import ItemKind
from notifier.sources.base import Record
from notifier.sources.moderngov import MeetingSummary, parse_meeting
from notifier.subscriptions import compile_query
from notifier.topics.text import tsvector_literal
from tests.factories import Factory
from tests.servers import fixture_bytes

# ---- write_poll: what one poll writes ------------------------------------------------------------------------------

HWB = "Health and Wellbeing Board"


def meeting_records(
    fixture: str, *, day: str | None = None, fetched_at: datetime = datetime(2026, 9, 20, 8, tzinfo=UTC)
) -> list[Record]:
    """A recorded GetMeeting answer, parsed by the real adapter (moved to `day` when given)."""
    body = fixture_bytes(f"moderngov/{fixture}")
    mid = re.search(rb"<meetingid>(\d+)<", body)[1].decode()  # type: ignore[index]
    recorded = re.search(rb"<meetingdate>([^<]+)<", body)[1].decode()  # type: ignore[index]
    if day is not None:
        body = body.replace(f"<meetingdate>{recorded}<".encode(), f"<meetingdate>{day}<".encode())
    summary = MeetingSummary(mid, "501", HWB, day or recorded, "2.00 pm", "Confirmed", "")
    return parse_meeting(body, summary=summary, base="https://democracy.example.gov.uk", tz="Europe/London",
                         fetched_at=fetched_at)


async def write_counted(conn: asyncpg.Connection, source_id: int, records: list[Record]) -> tuple[PollResult, int, int]:
    """write_poll, and how many item rows it inserted and updated (rows written, whatever their values)."""
    source = await conn.fetchrow(
        "select s.*, c.timezone from sources s join councils c on c.slug = s.council where s.id = $1", source_id
    )
    assert source is not None
    counted = "select n_tup_ins, n_tup_upd from pg_stat_xact_user_tables where relname = 'items'"
    # The counters also hold earlier transactions of this connection that are not reported yet: take the difference.
    async with conn.transaction():
        before = await conn.fetchrow(counted)
        result = await write_poll(conn, source, records, started=datetime.now(UTC))
        after = await conn.fetchrow(counted)
    assert before is not None and after is not None
    return result, after["n_tup_ins"] - before["n_tup_ins"], after["n_tup_upd"] - before["n_tup_upd"]


async def stored_items(conn: asyncpg.Connection) -> dict[tuple[str, str], dict[str, Any]]:
    rows = await conn.fetch(
        """
        select i.*, i.search::text as search_text, p.kind as parent_kind, p.external_id as parent_external_id
        from items i left join items p on p.id = i.parent_id
        """
    )
    return {(r["kind"], r["external_id"]): dict(r) for r in rows}


async def expected_vector(conn: asyncpg.Connection, row: dict[str, Any]) -> str:
    """The search vector of a stored row as tokenising its whole searched text gives it."""
    text = "\n".join(p for p in (row["title"], row["committee"] or "", row["body"]) if p)
    value: str = await conn.fetchval("select $1::tsvector::text", tsvector_literal(text))
    return value


@pytest.mark.parametrize("fixture", ["meeting_with_minutes.xml", "meeting_7001_word_html.xml"])
async def test_write_poll_first_sight_writes_each_item_once_with_its_parent_texts_and_vector(
    pool: asyncpg.Pool, factory: Factory, fixture: str
) -> None:
    records = meeting_records(fixture)
    source_id = await factory.source("leicestershire")
    async with pool.acquire() as conn:
        result, inserted, updated = await write_counted(conn, source_id, records)
        stored = await stored_items(conn)
        # Parents are inserted before their children, so no row is written twice to set its parent.
        assert (inserted, updated) == (len(records), 0)
        assert result.records == len(records) and result.events > 0
        for r in records:
            row = stored[(r.kind.value, r.external_id)]
            assert (row["title"], row["committee"], row["body"], row["url"]) == (r.title, r.committee, r.body, r.url)
            assert (row["parent_kind"], row["parent_external_id"]) == (
                (r.parent[0].value, r.parent[1]) if r.parent is not None else (None, None)
            )
            assert row["content_hash"] == content_hash(r)
            assert row["search_text"] == await expected_vector(conn, row)
    # The meeting is found by words of its agenda text, as every other item is by its own.
    meeting = stored[("meeting", records[0].external_id)]
    assert len(meeting["body"]) > 100
    query = compile_query('"to receive"' if "7001" in fixture else '"correct record"')
    found = await pool.fetchval("select count(*) from items where kind = 'meeting' and search @@ $1::tsquery", query)
    assert found == 1


async def test_write_poll_unchanged_records_write_nothing(pool: asyncpg.Pool, factory: Factory) -> None:
    source_id = await factory.source("leicestershire")
    async with pool.acquire() as conn:
        await write_counted(conn, source_id, meeting_records("meeting_with_minutes.xml"))
        before = await stored_items(conn)

        # The same answer read again later: only the meeting's bookkeeping (when its details were read) is new.
        again = meeting_records("meeting_with_minutes.xml", fetched_at=datetime(2026, 9, 21, 8, tzinfo=UTC))
        result, inserted, updated = await write_counted(conn, source_id, again)
        after = await stored_items(conn)

    assert (result.records, result.events, inserted, updated) == (len(again), 0, 0, 1)
    assert after.keys() == before.keys()
    for key, row in after.items():
        if key[0] == "meeting":
            assert row["data"]["_detail_at"] == "2026-09-21T08:00:00+00:00"
            row = {**row, "data": before[key]["data"]}
        assert row == before[key]


async def test_write_poll_moved_meeting_rewrites_items_and_keeps_their_words(
    pool: asyncpg.Pool, factory: Factory
) -> None:
    source_id = await factory.source("leicestershire")
    async with pool.acquire() as conn:
        first = meeting_records("meeting_7001_word_html.xml")
        await write_counted(conn, source_id, first)
        before = await stored_items(conn)

        moved = meeting_records("meeting_7001_word_html.xml", day="01/10/2026")
        result, inserted, updated = await write_counted(conn, source_id, moved)
        after = await stored_items(conn)
        for row in after.values():
            assert row["search_text"] == await expected_vector(conn, row)

    assert (inserted, updated) == (0, len(moved))
    assert result.event_types == ["meeting.rescheduled"]
    for key, row in after.items():
        assert row["starts_at"] - before[key]["starts_at"] == timedelta(days=7)
        assert (row["title"], row["body"], row["search_text"], row["parent_id"]) == (
            before[key]["title"], before[key]["body"], before[key]["search_text"], before[key]["parent_id"]
        )


async def test_write_poll_new_document_of_a_stored_agenda_item_is_folded_into_its_agenda(
    pool: asyncpg.Pool, factory: Factory
) -> None:
    # The agenda item is unchanged (so not read back in full), and is still what the new paper is filed under.
    source_id = await factory.source("leicestershire")
    records = meeting_records("meeting_with_minutes.xml")
    documents = [r for r in records if r.kind is ItemKind.DOCUMENT and r.parent and r.parent[0] is ItemKind.AGENDA_ITEM]
    withheld = documents[0]
    meeting = records[0]
    unpublished = replace(meeting, data={**meeting.data, "agenda_published": False, "minutes_published": False})
    async with pool.acquire() as conn:
        await write_counted(conn, source_id, [unpublished, *(r for r in records[1:] if r is not withheld)])
        result, inserted, _ = await write_counted(conn, source_id, records)
        stored = await stored_items(conn)
    assert inserted == 1
    assert result.event_types == ["agenda.published", "minutes.published"]
    row = stored[("document", withheld.external_id)]
    assert (row["parent_kind"], row["parent_external_id"]) == ("agenda_item", withheld.parent[1])  # type: ignore[index]
    changes = await pool.fetch("select type, changes from events order by id desc limit 2")
    folded = [d["title"] for c in changes for d in c["changes"].get("documents", [[], []])[1]]
    assert folded == [withheld.title]


async def test_write_poll_failing_while_a_group_is_inserted_stores_nothing_and_leaves_the_connection_usable(
    pool: asyncpg.Pool, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The documents' rows fail to prepare while the agenda items are being inserted.
    real = write.search_vectors
    calls = 0

    def failing_on_the_third_group(records: list[Record], lines: write.Lines) -> dict[tuple[ItemKind, str], str]:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("tokeniser broke")
        return real(records, lines)

    monkeypatch.setattr(write, "search_vectors", failing_on_the_third_group)
    source_id = await factory.source("leicestershire")
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError, match="tokeniser broke"):
            await write_counted(conn, source_id, meeting_records("meeting_with_minutes.xml"))
        assert await conn.fetchval("select count(*) from items") == 0


async def test_write_poll_moved_meeting_leaves_its_papers_texts_alone_and_notes_those_that_changed(
    pool: asyncpg.Pool, factory: Factory
) -> None:
    # A moved meeting rewrites every paper's row; what is noted of each paper's text must be what the documents'
    # trigger makes of it: nothing for a paper whose URL and size stayed, pending again for one whose URL changed,
    # and a row for a paper stored without one (as before 0003).
    source_id = await factory.source("leicestershire")
    first = meeting_records("meeting_7001_word_html.xml")
    papers = [r for r in first if r.kind is ItemKind.DOCUMENT and r.url is not None]
    async with pool.acquire() as conn:
        await write_counted(conn, source_id, first)
        # One pending row for each paper with a URL, from the insert.
        noted = await conn.fetch(
            "select i.external_id, d.state from document_texts d join items i on i.id = d.item_id"
        )
        assert sorted(r["external_id"] for r in noted) == sorted(r.external_id for r in papers)
        assert {r["state"] for r in noted} == {"pending"}
        await conn.execute("update document_texts set state = 'ready', etag = 'e', pages = '{words}'")
        missing, renamed = papers[0], papers[1]
        await conn.execute(
            "delete from document_texts d using items i where i.id = d.item_id and i.kind = 'document'"
            " and i.external_id = $1",
            missing.external_id,
        )
        before = {r["item_id"]: dict(r) for r in await conn.fetch("select * from document_texts")}

        new_url = f"{renamed.url}&v=2"
        moved = [
            replace(r, url=new_url) if r.external_id == renamed.external_id and r.kind is ItemKind.DOCUMENT else r
            for r in meeting_records("meeting_7001_word_html.xml", day="01/10/2026")
        ]
        _, inserted, updated = await write_counted(conn, source_id, moved)
        after = {r["item_id"]: dict(r) for r in await conn.fetch("select * from document_texts")}
        papers_now = await conn.fetch("select id, external_id from items where kind = 'document'")
        ids = {r["external_id"]: r["id"] for r in papers_now}

    assert (inserted, updated) == (0, len(moved))
    assert after[ids[missing.external_id]]["state"] == "pending"
    assert after[ids[renamed.external_id]]["state"] == "pending"
    assert after[ids[renamed.external_id]]["etag"] is None
    assert after[ids[renamed.external_id]]["url"] == new_url
    del after[ids[missing.external_id]], after[ids[renamed.external_id]], before[ids[renamed.external_id]]
    assert after == before


async def test_write_poll_failing_while_rows_are_rewritten_stores_nothing_and_leaves_the_connection_usable(
    pool: asyncpg.Pool, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The diff runs while PostgreSQL rewrites the moved meeting's rows; it fails there.
    def failing(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("diff broke")

    source_id = await factory.source("leicestershire")
    async with pool.acquire() as conn:
        await write_counted(conn, source_id, meeting_records("meeting_with_minutes.xml"))
        before = await stored_items(conn)
        monkeypatch.setattr(write, "diff_poll", failing)
        with pytest.raises(RuntimeError, match="diff broke"):
            await write_counted(conn, source_id, meeting_records("meeting_with_minutes.xml", day="01/10/2026"))
        assert await stored_items(conn) == before
