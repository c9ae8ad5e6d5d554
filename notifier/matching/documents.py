"""The documents an event is matched with: their text, whether it is still coming, and where a term was found.

A `document.published` event is matched on its document's text as well as its title; a meeting's event that
publishes documents (an agenda pack, folded into `agenda.published` or `minutes.published` with its documents
listed in `changes.documents`) is matched on the text of those documents too.

The text arrives after the event: the poll writes the event, then the `fetch_documents` job downloads and extracts
the document. Rather than match the event on its title alone and again once the text is in (two alerts for one
paper), the matcher holds such an event back (`held_events`) until every one of its documents is `ready` or
`failed`, or until `settings.document_text_wait_seconds` after the event, whichever comes first; then it matches
the event once, with whatever text there is. Events without documents are never held, so a slow or broken document
delays only its own event, by a bounded time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import asyncpg

from notifier.topics.evaluate import Document, positive_terms
from notifier.topics.highlight import Page, find_snippet
from notifier.topics.parse import Query

# Snippets kept for one delivery: the first page of each matched term, up to this many.
MAX_SNIPPETS = 3


@dataclass(frozen=True, slots=True)
class DocumentText:
    """One document's stored text, page by page (empty when it is not ready)."""

    title: str
    pages: tuple[str, ...]


@dataclass
class EventDocuments:
    """The documents of one event: their texts, and whether any is still to be downloaded or extracted.

    Snippets are found page by page: each page is tokenised once (on the first snippet asked for) with an index of
    where each stem is, so an event that matched thousands of subscriptions' terms costs one pass over its pages
    and a lookup a term, not a pass a term.
    """

    texts: list[DocumentText] = field(default_factory=list)
    waiting: bool = False
    _snippets: dict[str, list[dict[str, Any]]] = field(default_factory=dict, init=False, repr=False)
    _pages: list[list[Page]] | None = field(default=None, init=False, repr=False)

    @property
    def text(self) -> str:
        """Every page of every document, for matching."""
        return "\n".join(page for doc in self.texts for page in doc.pages)

    def snippets(self, terms: Iterable[str]) -> list[dict[str, Any]]:
        """Where the terms first appear: `{"document", "page", "text"}` for up to MAX_SNIPPETS of them."""
        out: list[dict[str, Any]] = []
        for term in terms:
            found = self._snippets.get(term)
            if found is None:
                found = self._snippets[term] = self._find(term)
            out.extend(s for s in found if s not in out)
        return out[:MAX_SNIPPETS]

    def _find(self, term: str) -> list[dict[str, Any]]:
        if self._pages is None:
            self._pages = [[Page(page) for page in doc.pages] for doc in self.texts]
        for doc, pages in zip(self.texts, self._pages, strict=True):
            hit = find_snippet(pages, term)
            if hit is not None:
                return [{"document": doc.title, "page": hit[0], "text": hit[1]}]
        return []


_DOCUMENTS = """
    with wanted as (
        select (w ->> 'event')::bigint as event_id, (w ->> 'item')::bigint as item_id, w -> 'urls' as urls
        from jsonb_array_elements($1::text::jsonb) w
    ),
    found as (
        -- a document's own event
        select w.event_id, d.id, d.title
        from wanted w join items d on d.id = w.item_id
        where w.urls is null and d.kind = 'document'
        union all
        -- a meeting's event that lists documents: those of them under the meeting or one of its agenda items
        select w.event_id, d.id, d.title
        from wanted w
        cross join lateral (select w.item_id as id union all select a.id from items a where a.parent_id = w.item_id) p
        join items d on d.parent_id = p.id
        where w.urls is not null and d.kind = 'document'
          and d.url in (select jsonb_array_elements_text(w.urls))
    )
    select f.event_id, f.id, f.title, t.state, case when t.state = 'ready' then t.pages end as pages
    from found f join document_texts t on t.item_id = f.id
    order by f.event_id, f.id
"""


def _wanted(ev: Mapping[str, Any]) -> dict[str, Any] | None:
    """Which documents an event row (with `id`, `kind`, `item_id`, `changes`) is matched with, as `_DOCUMENTS` reads."""
    if ev["kind"] == "document":
        return {"event": ev["id"], "item": ev["item_id"]}  # no "urls": SQL null
    changes = ev["changes"]
    if isinstance(changes, str):
        changes = json.loads(changes)
    listed = (changes or {}).get("documents")
    if not isinstance(listed, list) or len(listed) != 2 or not isinstance(listed[1], list):
        return None
    urls = [d["url"] for d in listed[1] if isinstance(d, dict) and d.get("url")]
    return {"event": ev["id"], "item": ev["item_id"], "urls": urls} if urls else None


async def event_documents(
    conn: asyncpg.Connection, events: Sequence[Mapping[str, Any]]
) -> dict[int, EventDocuments]:
    """The documents of each event that has any, by event id."""
    wanted = [w for w in map(_wanted, events) if w is not None]
    if not wanted:
        return {}
    found: dict[int, EventDocuments] = {}
    for row in await conn.fetch(_DOCUMENTS, json.dumps(wanted)):
        docs = found.setdefault(row["event_id"], EventDocuments())
        if row["state"] in ("pending", "fetching"):
            docs.waiting = True
        docs.texts.append(DocumentText(row["title"], tuple(row["pages"] or ())))
    return found


def must_wait(occurred_at: datetime, docs: EventDocuments | None, *, now: datetime, wait: timedelta) -> bool:
    """Whether an event is held back: some of its text is still coming and the bounded wait has not run out."""
    return docs is not None and docs.waiting and now < occurred_at + wait


async def hold_events(conn: asyncpg.Connection, held: Sequence[tuple[int, datetime]]) -> None:
    """Hold these events (id, until) back from matching; holding one twice changes nothing."""
    if held:
        await conn.execute(
            """
            insert into held_events (event_id, until)
            select * from unnest($1::bigint[], $2::timestamptz[])
            on conflict (event_id) do nothing
            """,
            [h[0] for h in held],
            [h[1] for h in held],
        )


async def held_event_ids(conn: asyncpg.Connection) -> list[int]:
    ids: list[int] = [r["event_id"] for r in await conn.fetch("select event_id from held_events order by event_id")]
    return ids


async def release_events(conn: asyncpg.Connection, ids: Sequence[int]) -> None:
    if ids:
        await conn.execute("delete from held_events where event_id = any($1::bigint[])", list(ids))


async def next_release(pool: asyncpg.Pool | asyncpg.Connection) -> datetime | None:
    """When the held event that waits longest runs out of waiting, if any is held."""
    until: datetime | None = await pool.fetchval("select min(until) from held_events")
    return until


class QueryHits(NamedTuple):
    """The query's terms found in an event's documents (query order), and where the first of them are."""

    terms: list[str]
    snippets: list[dict[str, Any]]


async def query_snippets(
    conn: asyncpg.Connection | asyncpg.Pool, events: Sequence[Mapping[str, Any]], query: Query | None
) -> dict[int, QueryHits]:
    """For history search (feeds, the preview): which of the query's terms each event's documents hold, and where,
    by event id (only events whose documents hold one).

    Event rows need `id`, `kind`, `item_id` and `changes`. Terms under NOT are never shown, as in alerts.
    """
    if query is None or not events:
        return {}
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as c:
            return await query_snippets(c, events, query)
    out: dict[int, QueryHits] = {}
    for event_id, docs in (await event_documents(conn, events)).items():
        terms: list[str] = []
        positive_terms(query, Document.from_text(docs.text), terms)
        if terms:
            out[event_id] = QueryHits(terms, docs.snippets(terms))
    return out
