"""Which feed a URL names: `resolve` turns a feed path and its query string into a `FeedSpec` (the filter, title,
format and whether it is public) with one query, which also reads the newest event id: the rendered bytes are
cached under both, so a new event anywhere makes the next request render again.

The feed routes, the WebSub hub (a topic is a feed URL) and the WebSub pushes all resolve through here, so a topic
follows exactly what its feed shows, under the same title.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

import asyncpg
from multidict import MultiMapping
from pydantic import ValidationError

from notifier.models import FilterModel
from notifier.subscriptions import FilterError, compile_query, describe_subscription

FEED_PATH = re.compile(
    r"/feeds/(?:councils/(?P<slug>[a-z0-9-]+)(?:/committees/(?P<committee>[^/.]+))?|(?P<search>search)"
    r"|s/(?P<token>[A-Za-z0-9_-]+))\.(?P<fmt>atom|rss|json|ics)"
)


class FeedNotFound(LookupError):
    """No such council, committee or feed token."""


class FeedQueryError(ValueError):
    """A search feed's parameters that cannot be followed, with the position in the query when known."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


@dataclass(frozen=True)
class FeedSpec:
    kind: str  # council, committee, search, subscription
    fmt: str
    filter: FilterModel
    title: str
    public: bool
    path: str  # the feed's path, without paging parameters
    params: tuple[tuple[str, str], ...]  # the search parameters, canonical order
    latest: int  # the newest event id when resolved (0: none yet)

    @property
    def subtitle(self) -> str:
        return subscription_feed_title(self.filter)

    def url(self, base_url: str) -> str:
        """The feed's own URL: its path and its search parameters in their canonical order."""
        return feed_url(base_url, self.path, self.params)


def feed_url(base_url: str, path: str, params: Sequence[tuple[str, str]]) -> str:
    """A feed's URL: its path, then its parameters (search, paging) as given."""
    return f"{base_url}{path}" + (f"?{urlencode(params)}" if params else "")


def subscription_feed_title(f: FilterModel) -> str:
    """The title of a subscription's own feed, and every feed's subtitle: what it follows, in words."""
    return f"Council alerts: {describe_subscription(f)}"


async def resolve(pool: asyncpg.Pool, path: str, query: MultiMapping[str]) -> FeedSpec:
    """The feed at `path` (`/feeds/...`) with `query`; FeedNotFound or FeedQueryError when there is none."""
    m = FEED_PATH.fullmatch(path)
    if m is None:
        raise FeedNotFound("not a feed URL: feeds are /feeds/councils/{slug}, /feeds/search or /feeds/s/{token}, "
                           "as .atom, .rss, .json or .ics")
    fmt = m["fmt"]
    if m["search"]:
        f, params = _search_filter(query)
        latest = await pool.fetchval("select coalesce(max(id), 0) from events")
        title = f"Search: {f.query}" if f.query else "Council alerts"
        return FeedSpec("search", fmt, f, title, True, path, params, latest)
    if m["token"]:
        row = await pool.fetchrow(
            """
            select query, councils, regions, committees, kinds, event_types,
                   (select coalesce(max(id), 0) from events) as latest
            from subscriptions where feed_token = $1
            """,
            m["token"],
        )
        if row is None:
            raise FeedNotFound("no such feed")
        f = FilterModel(**{k: v for k, v in dict(row).items() if k != "latest"})
        return FeedSpec("subscription", fmt, f, subscription_feed_title(f), False, path, (),
                        row["latest"])
    return await _council_spec(pool, m, path)


async def _council_spec(pool: asyncpg.Pool, m: re.Match[str], path: str) -> FeedSpec:
    committee = m["committee"]
    row = await pool.fetchrow(
        """
        select c.slug, c.name,
               (select i.committee from items i where i.council = c.slug and i.committee_id = $2 limit 1) as committee,
               (select coalesce(max(id), 0) from events) as latest
        from councils c where c.slug = $1
        """,
        m["slug"], committee,
    )
    if row is None:
        raise FeedNotFound("no such council")
    if committee is None:
        return FeedSpec("council", m["fmt"], FilterModel(councils=[row["slug"]]), row["name"], True, path, (),
                        row["latest"])
    if row["committee"] is None:
        raise FeedNotFound("no such committee")
    f = FilterModel(councils=[row["slug"]], committees=[committee])
    return FeedSpec("committee", m["fmt"], f, f"{row['committee']}, {row['name']}", True, path, (), row["latest"])


def _search_filter(query: MultiMapping[str]) -> tuple[FilterModel, tuple[tuple[str, str], ...]]:
    try:
        f = FilterModel(
            query=query.get("q", ""),
            councils=query.getall("council", []),
            regions=query.getall("region", []),
            committees=query.getall("committee", []),
        )
    except ValidationError as e:
        err = e.errors()[0]
        raise FeedQueryError(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}") from e
    try:
        compile_query(f.query)
    except FilterError as e:
        raise FeedQueryError(f"bad query: {e}", e.position) from e
    params = tuple(
        ([("q", f.query)] if f.query else []) + [("council", c) for c in f.councils]
        + [("region", r) for r in f.regions] + [("committee", c) for c in f.committees]
    )
    return f, params
