"""The public page of a meeting: when and where (with its history of changes), the agenda, each paper with its
brief in the council's own words, the meeting's topics, and ways to follow the committee or a topic.

Everything a council wrote is escaped (the templates autoescape); the page is plain HTML and works without
JavaScript.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from notifier.ingest.briefs import meeting_briefs
from notifier.web.keys import POOL
from notifier.zones import time_zone

routes = web.RouteTableDef()


def _local(value: datetime | None, timezone: str) -> str:
    if value is None:
        return ""
    local = value.astimezone(time_zone(timezone))
    return f"{local:%A} {local.day} {local:%B %Y}, {local:%H:%M}"


async def _meeting(request: web.Request) -> dict[str, Any]:
    try:
        meeting_id = int(request.match_info["id"])
    except ValueError as e:
        raise web.HTTPNotFound(text="No such meeting") from e
    if not 0 < meeting_id < 2**63:
        raise web.HTTPNotFound(text="No such meeting")
    row = await request.app[POOL].fetchrow(
        """
        select i.id, i.title, i.committee, i.committee_id, i.starts_at, i.status, i.url, i.data, i.council,
               c.name as council_name, c.timezone
        from items i join councils c on c.slug = i.council
        where i.id = $1 and i.kind = 'meeting'
        """,
        meeting_id,
    )
    if row is None:
        raise web.HTTPNotFound(text="No such meeting")
    return dict(row)


@routes.get("/meetings/{id}")
async def meeting_page(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    meeting = await _meeting(request)
    tz = meeting["timezone"]
    agenda = await pool.fetch(
        "select id, title, body from items where parent_id = $1 and kind = 'agenda_item' order by id", meeting["id"]
    )
    history = await pool.fetch(
        "select type, occurred_at, summary from events where item_id = $1 order by id", meeting["id"]
    )
    brief = (await meeting_briefs(pool, [meeting["id"]]))[meeting["id"]]
    context = {
        "meeting": meeting,
        "when": _local(meeting["starts_at"], tz),
        "location": (meeting["data"] or {}).get("location") or "",
        "agenda": agenda,
        "history": [{"when": _local(h["occurred_at"], tz), "summary": h["summary"]} for h in history],
        "documents": brief.documents,
        "topics": brief.topics,
    }
    return aiohttp_jinja2.render_template("meeting.html", request, context)
