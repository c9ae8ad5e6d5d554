"""The WebSub hub's side of delivery (https://www.w3.org/TR/websub/): what a push carries, verifying a callback's
intent, and ending subscriptions whose lease has run out.

A WebSub subscription is a push endpoint without a partner (see migrations/0004_feeds_websub.sql), so its pushes go
through the webhook sender: the same outbox claims, target checks, retries and health. Only the request differs:
the body is the new entry as a one-entry document of the topic's own format (Atom, RSS or JSON Feed; for a
calendar, the whole calendar as it now stands), signed with
`X-Hub-Signature: sha256=<hex HMAC of the body>` under the subscriber's hub.secret, with the hub and topic in `Link`
headers. A callback that fails every push for days is disabled by the endpoint health rules, and then dropped here
with the expired ones.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import asyncpg
from multidict import MultiDict

from notifier.delivery.calendars import meetings_matching
from notifier.delivery.feed_urls import FeedNotFound, FeedQueryError, resolve, subscription_feed_title
from notifier.delivery.webhooks.targets import TargetRefused, check_url
from notifier.feed_calendar import render_calendar
from notifier.feeds import CONTENT_TYPES, EVENT_FORMATS, FeedPage, render_events_feed
from notifier.models import Channel, FilterModel

log = logging.getLogger(__name__)

HUB_PATH = "/websub"
DEFAULT_LEASE = timedelta(days=10)
MIN_LEASE = timedelta(hours=1)
MAX_LEASE = timedelta(days=30)
CHALLENGE_BYTES = 24
MAX_SECRET_BYTES = 200  # the spec's limit on hub.secret
KEEP_SETTLED_REQUESTS = timedelta(days=7)  # settled requests are kept this long, to tell what became of one


def topic_format(topic: str) -> str:
    """atom, rss, json or ics: the format of the feed a topic URL names."""
    fmt = urlsplit(topic).path.rsplit(".", 1)[-1]
    return fmt if fmt in EVENT_FORMATS or fmt == "ics" else "atom"


def clamp_lease(requested: int | None) -> timedelta:
    if requested is None:
        return DEFAULT_LEASE
    return min(max(timedelta(seconds=requested), MIN_LEASE), MAX_LEASE)


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def push_request(row: Mapping[str, Any], *, base_url: str) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one push: the delivery's event as an entry of the topic's feed."""
    topic: str = row["topic"]
    fmt = topic_format(topic)
    entry = {
        "id": row["event_id"], "type": row["event_type"], "council": row["council"],
        "council_name": row["council_name"], "occurred_at": row["occurred_at"], "summary": row["summary"],
        "item_id": row["item_id"], "title": row["title"], "committee": row["committee"],
        "starts_at": row["starts_at"], "status": row["item_status"], "url": row["item_url"],
        "timezone": row["timezone"], "matched": list(row["matched_terms"] or []),
    }
    hub = f"{base_url}{HUB_PATH}"
    page = FeedPage(title="New entries", subtitle=f"New entries of {topic}", self_url=topic, base_url=base_url,
                    hub_url=hub)
    body = render_events_feed(fmt, [entry], page)
    headers = {"Content-Type": CONTENT_TYPES[fmt], "Link": f'<{hub}>; rel="hub", <{topic}>; rel="self"'}
    if row["secret"]:
        headers["X-Hub-Signature"] = signature(row["secret"], body)
    return body, headers


async def calendar_push(pool: asyncpg.Pool, row: Mapping[str, Any], *, base_url: str) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one push to a calendar topic: the whole calendar as it is now (a calendar has no
    entries to send one of; WebSub sends the topic's full content for such formats), signed like the others. It is
    what fetching the topic gives: its meetings under its title. A topic that names no feed any more (a council
    gone) keeps the filter it was subscribed with, under the title of a subscription's feed."""
    topic: str = row["topic"]
    parts = urlsplit(topic)
    try:
        spec = await resolve(pool, parts.path, MultiDict(parse_qsl(parts.query)))
        f, title, self_url = spec.filter, spec.title, spec.url(base_url)
    except (FeedNotFound, FeedQueryError):
        f = FilterModel(query=row["sub_query"], councils=row["sub_councils"], regions=row["sub_regions"],
                        committees=row["sub_committees"])
        title, self_url = subscription_feed_title(f), topic
    meetings = await meetings_matching(pool, f, datetime.now(UTC))
    body = render_calendar(meetings, title=title, base_url=base_url, self_url=self_url)
    hub = f"{base_url}{HUB_PATH}"
    headers = {"Content-Type": CONTENT_TYPES["ics"], "Link": f'<{hub}>; rel="hub", <{topic}>; rel="self"'}
    if row["secret"]:
        headers["X-Hub-Signature"] = signature(row["secret"], body)
    return body, headers


async def request(
    pool: asyncpg.Pool, *, mode: str, topic: str, callback: str, secret: str | None, lease_seconds: int | None,
    f: FilterModel,
) -> int:
    """Record a subscribe or unsubscribe request for `verify` to settle; returns its id."""
    request_id: int = await pool.fetchval(
        """
        insert into websub_requests (mode, topic, callback, secret, lease_seconds, filter)
        values ($1, $2, $3, $4, $5, $6) returning id
        """,
        mode, topic, callback, secret or None, int(clamp_lease(lease_seconds).total_seconds()),
        f.model_dump(mode="json"),
    )
    return request_id


@dataclass(frozen=True)
class Verified:
    outcome: str
    ok: bool


async def verify(
    pool: asyncpg.Pool, http: aiohttp.ClientSession, request_id: int, *, allow_private: bool, timeout: float
) -> Verified:
    """Verify a request's intent with the GET challenge to its callback, then apply it. Settled requests are left
    alone, so the job may run twice; a challenge answered but not yet applied is simply asked again."""
    req = await pool.fetchrow("select * from websub_requests where id = $1 and done_at is null", request_id)
    if req is None:
        return Verified("already settled", False)
    lease = timedelta(seconds=req["lease_seconds"])
    refusal = await _challenge(http, req, lease, allow_private=allow_private, timeout=timeout)
    async with pool.acquire() as conn, conn.transaction():
        settled = await conn.fetchval(
            "update websub_requests set done_at = now(), outcome = $2 where id = $1 and done_at is null returning id",
            request_id, refusal or "verified",
        )
        if settled is None or refusal is not None:
            return Verified(refusal or "already settled", False)
        if req["mode"] == "subscribe":
            await _subscribe(conn, req, lease)
        else:
            await _unsubscribe(conn, req["topic"], req["callback"])
    return Verified("verified", True)


async def _challenge(
    http: aiohttp.ClientSession, req: Mapping[str, Any], lease: timedelta, *, allow_private: bool, timeout: float
) -> str | None:
    """None when the callback echoes the challenge; otherwise why not."""
    challenge = secrets.token_urlsafe(CHALLENGE_BYTES)
    params = {"hub.mode": req["mode"], "hub.topic": req["topic"], "hub.challenge": challenge}
    if req["mode"] == "subscribe":
        params["hub.lease_seconds"] = str(int(lease.total_seconds()))
    try:
        target = check_url(req["callback"], allow_private=allow_private)
        async with http.get(target.url.extend_query(params), allow_redirects=False,
                            timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            answer = await resp.content.read(len(challenge) + 2)
            if not 200 <= resp.status < 300:
                return f"the callback answered HTTP {resp.status}"
    except TargetRefused as e:
        return f"refused: {e}"
    except TimeoutError:
        return f"the callback did not answer within {timeout:g} s"
    except aiohttp.ClientError as e:
        return f"{type(e).__name__}: {e}"[:500]
    if answer.strip() != challenge.encode():
        return "the callback did not echo the challenge"
    return None


async def _subscribe(conn: asyncpg.Connection, req: Mapping[str, Any], lease: timedelta) -> None:
    """A new subscription, or a renewal (new lease and secret, failures forgotten) of the same callback and topic."""
    expires = datetime.now(UTC) + lease
    endpoint_id = await conn.fetchval(
        """
        insert into webhook_endpoints (url, secret, channel, topic, lease_expires_at)
        values ($1, $2, $3, $4, $5)
        on conflict (topic, url) where channel = 'websub' do update
            set secret = excluded.secret, lease_expires_at = excluded.lease_expires_at, status = 'active',
                disabled_reason = null, disabled_at = null, disabled_by = null, failure_streak = 0,
                failing_since = null, updated_at = now()
        returning id
        """,
        req["callback"], req["secret"] or "", Channel.WEBSUB.value, req["topic"], expires,
    )
    raw = req["filter"]
    f = FilterModel(**(json.loads(raw) if isinstance(raw, str) else raw))
    await conn.execute(
        """
        insert into subscriptions (endpoint_id, query, councils, regions, committees, kinds, event_types, channel,
                                   frequency, feed_token, confirmed_at)
        select $1, $2, $3, $4, $5, $6, $7, $8, 'immediate', $9, now()
        where not exists (select 1 from subscriptions where endpoint_id = $1)
        """,
        endpoint_id, f.query, f.councils, f.regions, f.committees, [k.value for k in f.kinds],
        [e.value for e in f.event_types], Channel.WEBSUB.value, secrets.token_urlsafe(24),
    )


async def _unsubscribe(conn: asyncpg.Connection | asyncpg.Pool, topic: str, callback: str) -> None:
    # the subscription first, so the matcher's index hears of its end before the endpoint goes
    await conn.execute(
        """
        delete from subscriptions where channel = 'websub' and endpoint_id in (
            select id from webhook_endpoints where channel = 'websub' and topic = $1 and url = $2)
        """,
        topic, callback,
    )
    await conn.execute("delete from webhook_endpoints where channel = 'websub' and topic = $1 and url = $2",
                       topic, callback)


# WebSub subscriptions to private subscription feeds (/feeds/s/{token}), with the subscription each follows (null
# when it is gone) and whether the copy of its filter differs.
# The kinds a WebSub subscription follows for the subscription `s` behind its topic `w`: a calendar follows its
# meetings and their agendas (see web/websub_hub.py), unless the subscription chose kinds of its own.
_FOLLOWED_KINDS = r"""
    case when w.topic ~ '\.ics(\?|$)' and cardinality(s.kinds) = 0 then '{meeting,agenda_item}'::text[]
         else s.kinds end
"""

_PRIVATE_TOPICS = r"""
    select w.id as endpoint_id, s.id as source_id,
           (c.query, c.councils, c.regions, c.committees, c.kinds, c.event_types)
               is distinct from (s.query, s.councils, s.regions, s.committees, """ + _FOLLOWED_KINDS + r""",
                                 s.event_types) as changed
    from webhook_endpoints w
    join subscriptions c on c.endpoint_id = w.id
    left join subscriptions s
      on s.channel <> 'websub'
     and s.feed_token = substring(split_part(w.topic, '?', 1) from '/feeds/s/([A-Za-z0-9_-]+)\.[a-z]+$')
    where w.channel = 'websub' and w.topic like '%/feeds/s/%'
"""


async def follow_private_feeds(pool: asyncpg.Pool) -> int:
    """Keep WebSub subscriptions to private feeds in step with the subscription behind each feed: its filter
    copied again when it changed, the WebSub subscription dropped when it is gone. Returns how many changed."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(_PRIVATE_TOPICS)
        gone = [r["endpoint_id"] for r in rows if r["source_id"] is None]
        changed = [(r["endpoint_id"], r["source_id"]) for r in rows if r["source_id"] is not None and r["changed"]]
        if gone:
            await conn.execute("delete from subscriptions where endpoint_id = any($1::bigint[])", gone)
            await conn.execute("delete from webhook_endpoints where id = any($1::bigint[])", gone)
        if changed:
            await conn.execute(
                """
                update subscriptions c
                set query = s.query, councils = s.councils, regions = s.regions, committees = s.committees,
                    kinds = """ + _FOLLOWED_KINDS + """, event_types = s.event_types, updated_at = now()
                from unnest($1::bigint[], $2::bigint[]) as m(endpoint_id, source_id), subscriptions s,
                     webhook_endpoints w
                where c.endpoint_id = m.endpoint_id and s.id = m.source_id and w.id = m.endpoint_id
                """,
                [e for e, _ in changed], [s for _, s in changed],
            )
    return len(gone) + len(changed)


async def expire(pool: asyncpg.Pool, *, now: datetime) -> int:
    """Drop the subscriptions whose lease has run out, and those whose callback was disabled for failing every
    push for days (and requests settled a week ago). Returns how many subscriptions went."""
    async with pool.acquire() as conn, conn.transaction():
        ids = [r["id"] for r in await conn.fetch(
            """
            select id from webhook_endpoints
            where channel = 'websub' and (lease_expires_at <= $1 or status = 'disabled')
            for update skip locked
            """,
            now,
        )]
        if ids:
            await conn.execute("delete from subscriptions where endpoint_id = any($1::bigint[])", ids)
            await conn.execute("delete from webhook_endpoints where id = any($1::bigint[])", ids)
        await conn.execute("delete from websub_requests where done_at < $1", now - KEEP_SETTLED_REQUESTS)
    if ids:
        log.info("dropped %d WebSub subscriptions (lease ended or callback failing)", len(ids))
    return len(ids)
