"""Meeting briefs: building each document's brief once its text is ready, and reading a meeting's brief back.

A brief is made only of the council's own sentences (`notifier.documents.briefs`): each report's purpose and
recommendations and each resolution, with its page. It is built by `build_due_briefs` after extraction, stored with
the hash of the text it came from, and built again when that text changes; it never holds up an alert (matching does
not wait for it). Claims are row locks inside the building transaction: a worker that dies mid-way leaves nothing
claimed, and the next pass builds what it did not.

A meeting's topics are the few phrases of its papers that are rare across every council's documents
(`phrase_counts`, kept as briefs are built).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from notifier.documents.briefs import build_brief
from notifier.documents.phrases import key_phrases, phrase_candidates

BATCH = 50
PHRASE_PAGES = 5  # the pages a document's phrases are counted from: a report says what it is about early
TOPICS = 5


async def build_due_briefs(pool: asyncpg.Pool, *, batch: int = BATCH) -> list[int]:
    """Build the brief of every document whose text is ready and has no brief of that text; returns the documents."""
    built: list[int] = []
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """
                select t.item_id, t.content_hash, t.pages, i.title, b.phrases as old_phrases
                from document_texts t
                join items i on i.id = t.item_id
                left join document_briefs b on b.item_id = t.item_id
                where t.state = 'ready' and t.content_hash is not null
                  and (b.item_id is null or b.text_hash <> t.content_hash)
                order by t.item_id
                limit $1
                for update of t skip locked
                """,
                batch,
            )
            for row in rows:
                await _store(conn, row)
        built += [r["item_id"] for r in rows]
        if len(rows) < batch:
            return built


async def _store(conn: asyncpg.Connection, row: asyncpg.Record) -> None:
    pages = list(row["pages"])
    brief = build_brief(pages, title=row["title"])
    phrases = sorted(set().union(*(phrase_candidates(p) for p in pages[:PHRASE_PAGES])))
    await conn.execute(
        """
        insert into document_briefs (item_id, text_hash, brief, phrases) values ($1, $2, $3, $4)
        on conflict (item_id) do update
        set text_hash = excluded.text_hash, brief = excluded.brief, phrases = excluded.phrases, built_at = now()
        """,
        row["item_id"], row["content_hash"], brief.to_dict(), phrases,
    )
    old = set(row["old_phrases"] or ())
    new = set(phrases)
    await conn.execute(
        """
        insert into phrase_counts (phrase, documents)
        select p, 1 from unnest($1::text[]) p
        on conflict (phrase) do update set documents = phrase_counts.documents + 1
        """,
        sorted(new - old),
    )
    await conn.execute(
        "update phrase_counts set documents = greatest(documents - 1, 0) where phrase = any($1::text[])",
        sorted(old - new),
    )


@dataclass
class DocumentBrief:
    """One document of a meeting with its brief (empty lists where it has no such sections)."""

    document_id: int
    title: str
    url: str | None
    purpose: list[dict[str, Any]] = field(default_factory=list)
    recommendations: list[dict[str, Any]] = field(default_factory=list)
    resolutions: list[dict[str, Any]] = field(default_factory=list)
    first_paragraph: dict[str, Any] | None = None
    read: bool = False  # its text has been read and briefed
    meeting_id: int | None = None  # the meeting it is filed under (directly or under one of its agenda items)

    @property
    def empty(self) -> bool:
        return not (self.purpose or self.recommendations or self.resolutions)


@dataclass
class MeetingBrief:
    """A meeting's papers, each with its brief, and the meeting's topics."""

    documents: list[DocumentBrief]
    topics: list[str]

    def as_api(self) -> dict[str, Any]:
        """`{"purpose", "recommendations", "resolutions"}` as lists of {text, page, document_id}, and `topics`."""
        out: dict[str, Any] = {"purpose": [], "recommendations": [], "resolutions": [], "topics": self.topics}
        for d in self.documents:
            for name in ("purpose", "recommendations", "resolutions"):
                out[name] += [{**s, "document_id": d.document_id} for s in getattr(d, name)]
        return out


# The documents of one or more meetings: filed under the meeting or under one of its agenda items. (As a union of
# two indexed lookups by parent: an OR across the two in one join makes PostgreSQL scan every document.)
_PAPERS = """
    with parents as (
        select m.id as meeting_id, m.id as parent from items m where m.id = any($1::bigint[])
        union all
        select a.parent_id, a.id from items a where a.parent_id = any($1::bigint[]) and a.kind = 'agenda_item'
    )
    select p.meeting_id, d.id, d.title, d.url, b.brief
    from parents p
    join items d on d.parent_id = p.parent and d.kind = 'document'
    left join document_briefs b on b.item_id = d.id
    order by p.meeting_id, d.id
"""


def _document(row: asyncpg.Record) -> DocumentBrief:
    brief = row["brief"] or {}
    return DocumentBrief(
        document_id=row["id"], title=row["title"], url=row["url"], purpose=list(brief.get("purpose", [])),
        recommendations=list(brief.get("recommendations", [])), resolutions=list(brief.get("resolutions", [])),
        first_paragraph=brief.get("first_paragraph"), read=row["brief"] is not None,
        meeting_id=row.get("meeting_id"),
    )


async def meeting_briefs(pool: asyncpg.Pool, meeting_ids: Sequence[int], *, topics: bool = True) -> dict[
        int, MeetingBrief]:
    """Each meeting's papers with their briefs, and (unless `topics` is false) its key phrases."""
    found: dict[int, MeetingBrief] = {m: MeetingBrief([], []) for m in meeting_ids}
    for row in await pool.fetch(_PAPERS, list(meeting_ids)):
        found[row["meeting_id"]].documents.append(_document(row))
    if topics:
        for meeting_id, brief in found.items():
            brief.topics = await _topics(pool, meeting_id)
    return found


async def document_briefs(pool: asyncpg.Pool, document_ids: Sequence[int]) -> list[DocumentBrief]:
    """Documents with their briefs, and the meeting each is filed under (its parent, or its agenda item's)."""
    rows = await pool.fetch(
        """
        select d.id, d.title, d.url, b.brief,
               case when p.kind = 'meeting' then p.id
                    when p.kind = 'agenda_item' and g.kind = 'meeting' then g.id end as meeting_id
        from items d
        left join document_briefs b on b.item_id = d.id
        left join items p on p.id = d.parent_id
        left join items g on g.id = p.parent_id
        where d.id = any($1::bigint[]) and d.kind = 'document'
        """,
        list(document_ids),
    )
    return [_document(r) for r in rows]


async def document_brief(pool: asyncpg.Pool, document_id: int) -> DocumentBrief | None:
    found = await document_briefs(pool, [document_id])
    return found[0] if found else None


async def _topics(pool: asyncpg.Pool, meeting_id: int) -> list[str]:
    """The meeting's key phrases: from its agenda and its papers' first pages, ranked against every council's
    documents."""
    texts: list[str] = [
        r["text"] for r in await pool.fetch(
            """
            select i.title || E'\n\n' || i.body as text from items i where i.parent_id = $1 and i.kind = 'agenda_item'
            union all
            select array_to_string(t.pages[1:$2], E'\n\n') from items d join document_texts t on t.item_id = d.id
            where d.kind = 'document' and t.state = 'ready'
              and d.parent_id in (select $1 union all select a.id from items a where a.parent_id = $1)
            """,
            meeting_id, PHRASE_PAGES,
        ) if r["text"]
    ]
    if not texts:
        return []
    candidates = sorted(set().union(*(phrase_candidates(t) for t in texts)))
    counts = Counter({r["phrase"]: r["documents"] for r in await pool.fetch(
        "select phrase, documents from phrase_counts where phrase = any($1::text[])", candidates)})
    total = await pool.fetchval("select count(*) from document_briefs")
    return key_phrases(texts, counts, max(int(total), 1), limit=TOPICS)


def _resolved(item: str | None) -> str:
    return f"{item} \u2014 Resolved" if item else "Resolved"


def brief_lines(
    documents: Sequence[DocumentBrief], *, resolutions: bool, limit: int = 8
) -> list[tuple[str, str, int, str]]:
    """What the papers say, as (heading, document title, page, sentence): a held meeting's resolutions, or else its
    papers' purposes and recommendations; at most `limit` (the meeting's page has them all)."""
    lines: list[tuple[str, str, int, str]] = []
    for d in documents:
        if resolutions:
            # "Item 5: Budget — Resolved" where the minutes number their items (briefs stored before have no item)
            lines += [(_resolved(s.get("item")), d.title, s["page"], s["text"]) for s in d.resolutions]
        else:
            lines += [("Purpose", d.title, s["page"], s["text"]) for s in d.purpose]
            lines += [("Recommendation", d.title, s["page"], s["text"]) for s in d.recommendations]
    return lines[:limit]


async def briefs_for_events(
    pool: asyncpg.Pool, rows: Sequence[Mapping[str, Any]], *, now: datetime
) -> dict[int, tuple[list[tuple[str, str, int, str]], int | None]]:
    """For event rows (`item_id`, `kind`, `starts_at`): each item's brief lines, and the meeting whose page to link
    (a meeting with papers, or the meeting a paper is filed under), by item id. Two queries, whatever the number of
    rows."""
    meetings = [r["item_id"] for r in rows if r["kind"] == "meeting"]
    papers = [r["item_id"] for r in rows if r["kind"] == "document"]
    by_meeting = await meeting_briefs(pool, meetings, topics=False) if meetings else {}
    by_paper = {d.document_id: d for d in await document_briefs(pool, papers)} if papers else {}
    out: dict[int, tuple[list[tuple[str, str, int, str]], int | None]] = {}
    for r in rows:
        if r["kind"] == "meeting":
            held = r["starts_at"] is not None and r["starts_at"] < now
            docs = by_meeting[r["item_id"]].documents
            out[r["item_id"]] = (brief_lines(docs, resolutions=held), r["item_id"] if docs else None)
        elif r["item_id"] in by_paper:
            paper = by_paper[r["item_id"]]
            out[r["item_id"]] = (brief_lines([paper], resolutions=False), paper.meeting_id)
    return out
