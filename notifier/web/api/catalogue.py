"""What councils published: councils with their sources' health, items (meetings, agenda items, documents,
decisions) with search, and the change log of events."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from notifier import subscriptions as subs
from notifier.ingest.briefs import MeetingBrief, document_brief, meeting_briefs
from notifier.models import ItemKind
from notifier.subscriptions import compile_query
from notifier.web.api.plumbing import decode_cursor, operation, page_of, path_id, respond
from notifier.web.api.schemas import (
    Council,
    CouncilsQuery,
    Event,
    EventsQuery,
    Item,
    ItemDetail,
    ItemsQuery,
    MeetingsQuery,
    Page,
)
from notifier.web.keys import POOL
from notifier.web.problems import Problem


@operation("GET", "/api/v1/councils", tag="councils", summary="Councils with their sources' health",
           query=CouncilsQuery, response=Page[Council])
async def list_councils(request: web.Request, query: CouncilsQuery) -> web.Response:
    after = decode_cursor(query.cursor)
    rows = await request.app[POOL].fetch(
        """
        select n, slug, name, region, nation, timezone, website from (
            select row_number() over (order by c.slug) as n, c.*
            from councils c where ($1::text is null or c.region = $1)
        ) c
        where n > $2 order by n limit $3
        """,
        query.region, after, query.limit + 1,
    )
    items, next_cursor = page_of([dict(r) for r in rows], query.limit, "n")
    health = await _source_health(request, [i["slug"] for i in items])
    return respond(Page[Council](items=[Council(**i, sources=health.get(i["slug"], [])) for i in items],
                                 next=next_cursor))


async def _source_health(request: web.Request, councils: list[str]) -> dict[str, list[dict[str, Any]]]:
    rows = await request.app[POOL].fetch(
        """
        select council, id, kind, url, enabled, last_success_at, last_error, last_error_at, consecutive_failures
        from sources where council = any($1::text[]) order by id
        """,
        councils,
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        row = dict(r)
        out.setdefault(row.pop("council"), []).append(row)
    return out


@operation("GET", "/api/v1/councils/{slug}", tag="councils", summary="One council with its sources' health",
           response=Council)
async def get_council(request: web.Request) -> web.Response:
    row = await request.app[POOL].fetchrow(
        "select slug, name, region, nation, timezone, website from councils where slug = $1",
        request.match_info["slug"],
    )
    if row is None:
        raise Problem(404, "Not Found", "no such council")
    health = await _source_health(request, [row["slug"]])
    return respond(Council(**dict(row), sources=health.get(row["slug"], [])))


ITEM_FIELDS = """
    i.id, i.kind, i.external_id, i.council, i.committee, i.committee_id, i.title, i.body, i.starts_at,
    i.published_at, i.status, i.url, i.parent_id, i.data - (select coalesce(array_agg(k), '{}')
    from jsonb_object_keys(i.data) k where k like '\\_%') as data, i.first_seen_at, i.updated_at
"""


async def _items(request: web.Request, query: MeetingsQuery, kind: ItemKind | None) -> web.Response:
    try:
        tsquery = compile_query(query.q)
    except subs.FilterError as e:
        raise Problem(422, "Unprocessable Content", str(e),
                      errors=[{"field": "q", "message": str(e), "position": e.position}]) from e
    rows = await request.app[POOL].fetch(
        f"""
        select {ITEM_FIELDS}
        from items i
        where i.id > $1
          and ($2::text is null or i.council = $2)
          and ($3::text is null or i.committee_id = $3 or i.committee ilike $3)
          and ($4::text is null or i.kind = $4)
          and ($5::text is null or i.status = $5)
          and ($6::timestamptz is null or i.starts_at >= $6)
          and ($7::timestamptz is null or i.starts_at < $7)
          and ($8::text is null or i.search @@ $8::tsquery)
        order by i.id
        limit $9
        """,
        decode_cursor(query.cursor), query.council, query.committee, kind.value if kind else None, query.status,
        query.from_, query.to, tsquery, query.limit + 1,
    )
    items, next_cursor = page_of([dict(r) for r in rows], query.limit)
    return respond(Page[Item](items=[Item(**i) for i in items], next=next_cursor))


@operation("GET", "/api/v1/items", tag="items", summary="Meetings, agenda items, documents and decisions",
           query=ItemsQuery, response=Page[Item], problems=(422,))
async def list_items(request: web.Request, query: ItemsQuery) -> web.Response:
    return await _items(request, query, query.kind)


@operation("GET", "/api/v1/meetings", tag="items", summary="Meetings (items of kind meeting)",
           query=MeetingsQuery, response=Page[Item], problems=(422,))
async def list_meetings(request: web.Request, query: MeetingsQuery) -> web.Response:
    return await _items(request, query, ItemKind.MEETING)


@operation("GET", "/api/v1/items/{id}", tag="items", summary="One item; a meeting or a document with its brief",
           response=ItemDetail)
async def get_item(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    row = await pool.fetchrow(f"select {ITEM_FIELDS} from items i where i.id = $1", path_id(request))
    if row is None:
        raise Problem(404, "Not Found", "no such item")
    brief: dict[str, Any] | None = None
    if row["kind"] == "meeting":
        brief = (await meeting_briefs(pool, [row["id"]]))[row["id"]].as_api()
    elif row["kind"] == "document":
        found = await document_brief(pool, row["id"])
        if found is not None and found.read:
            brief = MeetingBrief([found], []).as_api()
    return respond(ItemDetail(**dict(row), brief=brief))


@operation("GET", "/api/v1/events", tag="events", summary="The change log after an event id, oldest first",
           query=EventsQuery, response=Page[Event])
async def list_events(request: web.Request, query: EventsQuery) -> web.Response:
    types = [t.strip() for t in query.types.split(",") if t.strip()]
    rows = await request.app[POOL].fetch(
        """
        select e.id, e.type, e.council, e.occurred_at, e.changes, e.summary,
               json_build_object('id', i.id, 'kind', i.kind, 'title', i.title, 'committee', i.committee,
                                 'starts_at', i.starts_at, 'status', i.status, 'url', i.url) as item
        from events e join items i on i.id = e.item_id
        where e.id > $1 and (cardinality($2::text[]) = 0 or e.type = any($2)) and ($3::text is null or e.council = $3)
        order by e.id
        limit $4
        """,
        max(query.after, decode_cursor(query.cursor)), types, query.council, query.limit + 1,
    )
    items, next_cursor = page_of([dict(r) for r in rows], query.limit)
    return respond(Page[Event](items=[Event(**i) for i in items], next=next_cursor))
