"""Webhook endpoints as partners manage them: each endpoint owns one webhook subscription holding its filter.

Every function takes the partner's id and touches only that partner's rows, so one partner can neither see nor
change another's endpoints (the API answers 404 for both "not yours" and "no such endpoint").
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

import asyncpg

from notifier.delivery.webhooks import signing
from notifier.delivery.webhooks.payload import ping_payload
from notifier.models import Channel, FilterModel

Db: TypeAlias = asyncpg.Pool | asyncpg.Connection

_SELECT = """
    select w.id, w.partner_id, w.url, w.description, w.status, w.disabled_reason, w.disabled_at, w.failure_streak,
           w.failing_since, w.created_at, w.updated_at, w.previous_secret_expires_at,
           s.id as subscription_id, s.query, s.councils, s.regions, s.committees, s.kinds, s.event_types
    from webhook_endpoints w
    join subscriptions s on s.endpoint_id = w.id
"""


async def create(
    pool: asyncpg.Pool, partner_id: int, url: str, f: FilterModel, description: str | None
) -> tuple[dict[str, Any], str]:
    """A new endpoint and its subscription; returns the endpoint and its secret (the only time it is shown)."""
    secret = signing.new_secret()
    async with pool.acquire() as conn, conn.transaction():
        endpoint_id = await conn.fetchval(
            """
            insert into webhook_endpoints (partner_id, url, description, secret) values ($1, $2, $3, $4)
            returning id
            """,
            partner_id, url, description, secret,
        )
        await conn.execute(
            """
            insert into subscriptions (endpoint_id, partner_id, query, councils, regions, committees, kinds,
                                       event_types, channel, frequency, feed_token, confirmed_at)
            values ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'immediate', $10, now())
            """,
            endpoint_id, partner_id, *_filter_values(f), Channel.WEBHOOK.value, secrets.token_urlsafe(24),
        )
        row = await get(conn, partner_id, endpoint_id)
    assert row is not None  # made in this transaction
    return row, secret


def _filter_values(f: FilterModel) -> list[Any]:
    return [f.query, f.councils, f.regions, f.committees, [k.value for k in f.kinds], [e.value for e in f.event_types]]


async def get(db: Db, partner_id: int, endpoint_id: int) -> dict[str, Any] | None:
    row = await db.fetchrow(f"{_SELECT} where w.id = $1 and w.partner_id = $2", endpoint_id, partner_id)
    return dict(row) if row is not None else None


async def list_for(db: Db, partner_id: int, *, after: int, limit: int) -> list[dict[str, Any]]:
    rows = await db.fetch(
        f"{_SELECT} where w.partner_id = $1 and w.id > $2 order by w.id limit $3", partner_id, after, limit
    )
    return [dict(r) for r in rows]


async def update(
    pool: asyncpg.Pool, partner_id: int, endpoint_id: int, *, url: str | None, f: FilterModel | None,
    description: str | None, set_description: bool,
) -> dict[str, Any] | None:
    async with pool.acquire() as conn, conn.transaction():
        found = await conn.fetchval(
            """
            update webhook_endpoints
            set url = coalesce($3, url), description = case when $4 then $5 else description end, updated_at = now()
            where id = $1 and partner_id = $2
            returning id
            """,
            endpoint_id, partner_id, url, set_description, description,
        )
        if found is None:
            return None
        if f is not None:
            await conn.execute(
                """
                update subscriptions set query = $2, councils = $3, regions = $4, committees = $5, kinds = $6,
                                         event_types = $7, updated_at = now()
                where endpoint_id = $1
                """,
                endpoint_id, *_filter_values(f),
            )
        return await get(conn, partner_id, endpoint_id)


async def delete(pool: asyncpg.Pool, partner_id: int, endpoint_id: int) -> bool:
    """Remove an endpoint with its subscription, deliveries and attempts."""
    async with pool.acquire() as conn, conn.transaction():
        found = await conn.fetchval(
            "select id from webhook_endpoints where id = $1 and partner_id = $2 for update", endpoint_id, partner_id
        )
        if found is None:
            return False
        # the subscription first, so the matcher's index hears of its end before the endpoint goes
        await conn.execute("delete from subscriptions where endpoint_id = $1", endpoint_id)
        await conn.execute("delete from webhook_endpoints where id = $1", endpoint_id)
    return True


async def rotate_secret(pool: asyncpg.Pool, partner_id: int, endpoint_id: int, *, grace: timedelta) -> str | None:
    """A new secret; the current one keeps signing (as a second signature) for `grace`. Rotating again within the
    grace period retires the oldest: at most two secrets sign."""
    secret = signing.new_secret()
    found = await pool.fetchval(
        """
        update webhook_endpoints
        set previous_secret = secret, previous_secret_expires_at = now() + $4::interval, secret = $3,
            updated_at = now()
        where id = $1 and partner_id = $2
        returning id
        """,
        endpoint_id, partner_id, secret, grace,
    )
    return secret if found is not None else None


async def enable(pool: asyncpg.Pool, partner_id: int, endpoint_id: int) -> dict[str, Any] | None:
    """Re-enable a disabled endpoint: its failure streak starts again, and what is pending goes out."""
    async with pool.acquire() as conn, conn.transaction():
        found = await conn.fetchval(
            """
            update webhook_endpoints
            set status = 'active', disabled_reason = null, disabled_at = null, disabled_by = null, failure_streak = 0,
                failing_since = null, updated_at = now()
            where id = $1 and partner_id = $2
            returning id
            """,
            endpoint_id, partner_id,
        )
        if found is None:
            return None
        await conn.execute(
            """
            update deliveries d set next_attempt_at = now()
            from subscriptions s
            where s.endpoint_id = $1 and d.subscription_id = s.id and d.status = 'pending'
            """,
            endpoint_id,
        )
        return await get(conn, partner_id, endpoint_id)


async def ping(pool: asyncpg.Pool, endpoint: dict[str, Any]) -> str:
    """Queue a signed test delivery; returns its webhook-id."""
    delivery_id: int = await pool.fetchval(
        """
        insert into deliveries (subscription_id, event_id, payload, next_attempt_at) values ($1, null, $2, now())
        returning id
        """,
        endpoint["subscription_id"], ping_payload(endpoint["id"], datetime.now(UTC)),
    )
    return signing.webhook_id(delivery_id)


async def requeue(pool: asyncpg.Pool, subscription_id: int, event_ids: Sequence[int]) -> int:
    """Send these events again. A delivery that exists goes again under its own webhook-id; an event never
    delivered (from before the endpoint, say) gets a new delivery. Returns how many were queued."""
    rows = await pool.fetch(
        """
        insert into deliveries (subscription_id, event_id, next_attempt_at)
        select $1, e, now() from unnest($2::bigint[]) as e
        on conflict (subscription_id, event_id) do update
            set status = 'pending', next_attempt_at = now(), attempts = 0, last_error = null, lease_until = null
            where deliveries.status <> 'sending'
        returning id
        """,
        subscription_id, list(event_ids),
    )
    return len(rows)


async def attempts(
    db: Db, partner_id: int, endpoint_id: int, *, before: int | None, limit: int
) -> list[dict[str, Any]]:
    """The attempts log, newest first."""
    rows = await db.fetch(
        """
        select a.id, a.at, a.status_code, a.duration_ms, a.error, a.webhook_id, a.event_id
        from webhook_attempts a
        join webhook_endpoints w on w.id = a.endpoint_id
        where a.endpoint_id = $1 and w.partner_id = $2 and ($3::bigint is null or a.id < $3)
        order by a.id desc
        limit $4
        """,
        endpoint_id, partner_id, before, limit,
    )
    return [dict(r) for r in rows]


# An endpoint owed a notice: disabled for failing (not for a 410), its partner not yet told, and a contact to tell.
_NOTICE_OWED = """
    w.status = 'disabled' and w.disabled_by = 'failures' and w.disabled_notice_sent_at is null
    and p.id = w.partner_id and p.contact_email is not null
"""


async def disabled_notice_due(conn: asyncpg.Connection, endpoint_id: int) -> dict[str, Any] | None:
    """Lock the one notice owed to a partner whose endpoint was disabled for failing, inside the caller's
    transaction: the endpoint, its partner's name and contact, or None when nothing is owed (already told,
    re-enabled, disabled by a 410, no contact) or another worker holds it. The lock lasts as long as the sending:
    a worker that dies while sending leaves the notice owed, and the sweeper queues it again."""
    row = await conn.fetchrow(
        f"""
        select w.id, w.url, w.disabled_reason, w.disabled_at, p.name as partner_name, p.contact_email
        from webhook_endpoints w, partners p
        where w.id = $1 and {_NOTICE_OWED}
        for update of w skip locked
        """,
        endpoint_id,
    )
    return dict(row) if row is not None else None


async def notice_sent(conn: asyncpg.Connection, endpoint_id: int) -> None:
    """Mark a locked notice as given (sent, or refused for good by the partner's mail server)."""
    await conn.execute("update webhook_endpoints set disabled_notice_sent_at = now() where id = $1", endpoint_id)


async def notices_owed(pool: asyncpg.Pool, *, limit: int = 1000) -> list[tuple[int, datetime]]:
    """The endpoints owed a disabled notice, each with when it was disabled (which names that disablement)."""
    rows = await pool.fetch(
        f"""
        select w.id, w.disabled_at from webhook_endpoints w, partners p
        where {_NOTICE_OWED}
        order by w.id
        limit $1
        """,
        limit,
    )
    return [(r["id"], r["disabled_at"]) for r in rows]

