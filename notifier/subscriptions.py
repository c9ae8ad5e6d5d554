"""Subscribers and their subscriptions: consent, changes, unsubscribing, suppression, export and erasure.

Used by the pages (public subscribers) and the API (partners acting for their users). Rules that hold whoever asks:
- nothing but a confirmation is mailed to an address before its owner confirms (unless a partner vouches that it
  already has consent);
- a suppressed address (unsubscribed everywhere, hard bounce, complaint) is never mailed again, whoever re-adds it;
- asking for an address that exists answers exactly as for a new one, so the form reveals nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from notifier.models import Channel, FilterModel, Frequency, SubscriberStatus
from notifier.topics.describe import describe_filter
from notifier.topics.parse import QueryError, canonical, parse
from notifier.topics.tsquery import to_tsquery
from notifier.zones import time_zone


class FilterError(ValueError):
    """A filter that cannot be followed: a bad query, an unknown council or region."""

    def __init__(self, field: str, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.position = position


def normalise_email(address: str) -> str:
    """Addresses compare case-insensitively here (the local part is case-sensitive in theory, never in practice)."""
    return address.strip().lower()


def check_timezone(tz: str | None, default: str) -> str:
    if not tz:
        return default
    try:
        time_zone(tz)
    except ValueError as e:
        raise FilterError("timezone", str(e)) from e
    return tz


async def validate_filter(conn: asyncpg.Pool | asyncpg.Connection, f: FilterModel) -> FilterModel:
    """Check a filter against the language and the registry; return it with the query in canonical form."""
    query = ""
    if f.query.strip():
        try:
            query = canonical(parse(f.query))
        except QueryError as e:
            raise FilterError("query", str(e), getattr(e, "position", None)) from e
    if f.councils:
        known = {r["slug"] for r in await conn.fetch("select slug from councils where slug = any($1)", f.councils)}
        unknown = [c for c in f.councils if c not in known]
        if unknown:
            raise FilterError("councils", f"unknown council(s): {', '.join(unknown)}")
    if f.regions:
        rows = await conn.fetch("select distinct region from councils where region is not null")
        known_regions = {r["region"].casefold(): r["region"] for r in rows}
        regions = []
        for region in f.regions:
            if region.casefold() not in known_regions:
                raise FilterError(
                    "regions", f"unknown region {region!r}; known: {', '.join(sorted(known_regions.values()))}"
                )
            regions.append(known_regions[region.casefold()])
        f = f.model_copy(update={"regions": regions})
    return f.model_copy(update={"query": query})



def compile_query(query: str) -> str | None:
    """A tsquery text for `query`, or None when it matches everything (empty, or only negations handled in SQL)."""
    if not query.strip():
        return None
    try:
        return to_tsquery(parse(query))
    except QueryError as e:
        raise FilterError("query", str(e), getattr(e, "position", None)) from e

@dataclass(frozen=True)
class SubscriberResult:
    id: int
    email: str
    status: str
    created: bool
    suppressed: bool


async def is_suppressed(conn: asyncpg.Pool | asyncpg.Connection, email: str) -> bool:
    return bool(await conn.fetchval("select 1 from suppressions where email = $1", normalise_email(email)))


async def get_or_create_subscriber(
    conn: asyncpg.Pool | asyncpg.Connection,
    email: str,
    *,
    timezone: str,
    partner_id: int | None = None,
    vouched: bool = False,
) -> SubscriberResult:
    """The subscriber for this address (per partner, or public), created pending (or active when vouched)."""
    address = normalise_email(email)
    suppressed = await is_suppressed(conn, address)
    status = SubscriberStatus.ACTIVE if vouched and not suppressed else SubscriberStatus.PENDING
    if suppressed:
        status = SubscriberStatus.UNSUBSCRIBED
    row = await conn.fetchrow(
        """
        insert into subscribers (email, status, partner_id, timezone, confirmed_at)
        values ($1, $2, $3, $4, case when $2 = 'active' then now() end)
        on conflict do nothing
        returning id, email, status
        """,
        address,
        status.value,
        partner_id,
        timezone,
    )
    created = row is not None
    if row is None:
        row = await conn.fetchrow(
            "select id, email, status from subscribers where lower(email) = $1 and partner_id is not distinct from $2",
            address,
            partner_id,
        )
        if row is None:  # raced with an erase: try once more
            return await get_or_create_subscriber(
                conn, email, timezone=timezone, partner_id=partner_id, vouched=vouched
            )
        if vouched and row["status"] == SubscriberStatus.PENDING and not suppressed:
            row = await conn.fetchrow(
                "update subscribers set status = 'active', confirmed_at = now() where id = $1 "
                "returning id, email, status",
                row["id"],
            )
    assert row is not None
    return SubscriberResult(row["id"], row["email"], row["status"], created, suppressed)


async def create_subscription(
    conn: asyncpg.Pool | asyncpg.Connection,
    subscriber_id: int,
    f: FilterModel,
    *,
    frequency: Frequency,
    hour: int | None = None,
    weekday: int | None = None,
    partner_id: int | None = None,
    confirmed: bool,
    reuse_identical: bool = False,
) -> dict[str, Any]:
    """Add an email subscription. Unconfirmed ones wait for the address owner's click.

    With `reuse_identical`, a subscription of this subscriber with the same filter and schedule is returned instead
    of a second one (the form submitted twice), which would list every matching event twice in each email.
    """
    if reuse_identical:
        existing = await conn.fetchrow(
            """
            select * from subscriptions
            where subscriber_id = $1 and channel = 'email' and query = $2 and councils = $3 and regions = $4
              and committees = $5 and kinds = $6 and event_types = $7 and frequency = $8
              and hour is not distinct from $9 and weekday is not distinct from $10
            order by id limit 1
            """,
            subscriber_id, f.query, f.councils, f.regions, f.committees, [k.value for k in f.kinds],
            [e.value for e in f.event_types], frequency.value, hour, weekday,
        )
        if existing is not None:
            return dict(existing)
    row = await conn.fetchrow(
        """
        insert into subscriptions (subscriber_id, partner_id, query, councils, regions, committees, kinds,
                                   event_types, channel, frequency, hour, weekday, feed_token, confirmed_at)
        values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, case when $14 then now() end)
        returning *
        """,
        subscriber_id,
        partner_id,
        f.query,
        f.councils,
        f.regions,
        f.committees,
        [k.value for k in f.kinds],
        [e.value for e in f.event_types],
        Channel.EMAIL.value,
        frequency.value,
        hour,
        weekday,
        secrets.token_urlsafe(24),
        confirmed,
    )
    return dict(row)


async def change_subscription(
    conn: asyncpg.Pool | asyncpg.Connection,
    subscription_id: int,
    f: FilterModel,
    *,
    frequency: Frequency,
    hour: int | None = None,
    weekday: int | None = None,
) -> bool:
    """Replace a subscription's filter and schedule (a validated filter). False when it no longer exists."""
    result: str = await conn.execute(
        """
        update subscriptions set query = $2, councils = $3, regions = $4, committees = $5, kinds = $6,
               event_types = $7, frequency = $8, hour = $9, weekday = $10, updated_at = now()
        where id = $1
        """,
        subscription_id, f.query, f.councils, f.regions, f.committees, [k.value for k in f.kinds],
        [e.value for e in f.event_types], frequency.value, hour, weekday,
    )
    return result != "UPDATE 0"


async def rotate_feed_token(conn: asyncpg.Pool | asyncpg.Connection, subscription_id: int) -> str:
    """Give a subscription new private feed links (Atom, RSS, iCal and JSON share the token): the old ones answer
    404 from now on, and WebSub subscriptions to them end. Raises LookupError when there is no such subscription."""
    token = secrets.token_urlsafe(24)
    # one statement, so one transaction: the token and the WebSub subscriptions to the old one change together
    found: bool | None = await conn.fetchval(
        r"""
        with old as (
            select feed_token from subscriptions where id = $1
        ),
        rotated as (
            update subscriptions set feed_token = $2, updated_at = now() where id = $1 returning id
        ),
        pushed as (
            select w.id from webhook_endpoints w, old
            where w.channel = 'websub'
              and split_part(w.topic, '?', 1) ~ ('/feeds/s/' || old.feed_token || '\.(atom|rss|json|ics)$')
        ),
        ended as (
            delete from subscriptions where channel = 'websub' and endpoint_id in (select id from pushed)
        ),
        gone as (
            delete from webhook_endpoints where id in (select id from pushed)
        )
        select exists (select 1 from rotated)
        """,
        subscription_id, token,
    )
    if not found:
        raise LookupError(f"no subscription {subscription_id}")
    return token


async def confirm(conn: asyncpg.Pool | asyncpg.Connection, subscriber_id: int, subscription_id: int | None) -> bool:
    """The address owner clicked a confirmation link. False when there is nothing (left) to confirm."""
    row = await conn.fetchrow("select status from subscribers where id = $1", subscriber_id)
    if row is None or row["status"] in (SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED):
        return False
    if row["status"] == SubscriberStatus.UNSUBSCRIBED and await conn.fetchval(
        "select 1 from suppressions s join subscribers b on s.email = lower(b.email) where b.id = $1", subscriber_id
    ):
        return False
    await conn.execute(
        "update subscribers set status = 'active', confirmed_at = coalesce(confirmed_at, now()) where id = $1",
        subscriber_id,
    )
    await conn.execute(
        """
        update subscriptions set confirmed_at = coalesce(confirmed_at, now())
        where subscriber_id = $1 and ($2::bigint is null or id = $2)
        """,
        subscriber_id,
        subscription_id,
    )
    return True


async def unsubscribe(
    conn: asyncpg.Pool | asyncpg.Connection, subscriber_id: int, subscription_id: int | None = None
) -> bool:
    """Leave one subscription (delete it) or everything (suppress the address). True if something changed."""
    if subscription_id is not None:
        result: str = await conn.execute(
            "delete from subscriptions where id = $1 and subscriber_id = $2", subscription_id, subscriber_id
        )
        changed = result != "DELETE 0"
    else:
        email = await conn.fetchval(
            "update subscribers set status = 'unsubscribed' where id = $1 returning email", subscriber_id
        )
        if email is None:
            return False
        await suppress(conn, email, "unsubscribed")
        changed = True
    return changed


async def suppress(conn: asyncpg.Pool | asyncpg.Connection, email: str, reason: str, detail: str | None = None) -> None:
    """Never mail this address again; pending deliveries to it are skipped."""
    address = normalise_email(email)
    await conn.execute(
        "insert into suppressions (email, reason, detail) values ($1, $2, $3) on conflict (email) do nothing",
        address,
        reason,
        detail,
    )
    status = {"bounced": "bounced", "complained": "complained"}.get(reason, "unsubscribed")
    await conn.execute(
        "update subscribers set status = $2 where lower(email) = $1 and status in ('pending', 'active')",
        address,
        status,
    )
    await conn.execute(
        """
        update deliveries d set status = 'skipped', last_error = 'address suppressed: ' || $2
        from subscriptions s join subscribers b on b.id = s.subscriber_id
        where d.subscription_id = s.id and lower(b.email) = $1 and d.status = 'pending'
        """,
        address,
        reason,
    )


async def export(conn: asyncpg.Pool | asyncpg.Connection, subscriber_id: int) -> dict[str, Any] | None:
    """Everything held about a subscriber, as JSON-ready data."""
    subscriber = await conn.fetchrow(
        "select id, email, status, timezone, created_at, confirmed_at from subscribers where id = $1", subscriber_id
    )
    if subscriber is None:
        return None
    subscriptions = await conn.fetch(
        """
        select id, query, councils, regions, committees, kinds, event_types, frequency, hour, weekday,
               paused_until, created_at, confirmed_at
        from subscriptions where subscriber_id = $1 order by id
        """,
        subscriber_id,
    )
    deliveries = await conn.fetch(
        """
        select d.id, d.subscription_id, d.event_id, e.summary, d.status, d.sent_at, d.matched_terms
        from deliveries d join subscriptions s on s.id = d.subscription_id join events e on e.id = d.event_id
        where s.subscriber_id = $1 order by d.id
        """,
        subscriber_id,
    )
    suppression = await conn.fetchrow(
        "select reason, at from suppressions where email = $1", normalise_email(subscriber["email"])
    )
    return {
        "subscriber": dict(subscriber),
        "subscriptions": [dict(r) for r in subscriptions],
        "deliveries": [dict(r) for r in deliveries],
        "suppression": dict(suppression) if suppression else None,
        "exported_at": datetime.now(UTC),
    }


async def erase(conn: asyncpg.Pool | asyncpg.Connection, subscriber_id: int) -> bool:
    """Delete a subscriber and everything hanging off them. A suppression stays: it is what keeps the promise."""
    result: str = await conn.execute("delete from subscribers where id = $1", subscriber_id)
    return result != "DELETE 0"


def describe_subscription(f: FilterModel | Mapping[str, Any], council_names: Mapping[str, str] | None = None) -> str:
    """A subscription's filter in words, for emails and pages, with council slugs shown by name."""
    data = f.model_dump() if isinstance(f, FilterModel) else f
    names = council_names or {}
    return describe_filter(
        data.get("query") or "",
        councils=[names.get(c, c) for c in data.get("councils") or ()],
        regions=list(data.get("regions") or ()),
        committees=list(data.get("committees") or ()),
        event_types=[str(e) for e in data.get("event_types") or ()],
    )
