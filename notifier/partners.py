"""Partner organisations and their API keys.

A key is shown once when made and stored only as its SHA-256: keys are long random strings, so a fast hash is
enough (there is nothing to brute-force), and it lets every request be checked with one indexed lookup.

Rotating a key makes a new one at once and keeps the old one working for a grace period (`NOTIFIER_API_KEY_GRACE_
HOURS`, 24 by default), long enough to roll the new key out to every server that calls the API; rotating again
within the grace period ends the older key at once. Revoking stops every key of the partner at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any

import asyncpg

KEY_PREFIX = "nk_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


async def create_partner(
    pool: asyncpg.Pool | asyncpg.Connection,
    name: str,
    *,
    contact_email: str | None = None,
    rate_limit_per_minute: int = 600,
) -> tuple[int, str]:
    """Create a partner; returns its id and its API key (the only time the key exists in clear)."""
    name = name.strip()
    if not name:
        raise ValueError("a partner needs a name")
    key = new_key()
    partner_id: int = await pool.fetchval(
        """
        insert into partners (name, contact_email, api_key_hash, api_key_prefix, rate_limit_per_minute)
        values ($1, $2, $3, $4, $5)
        returning id
        """,
        name,
        contact_email,
        hash_key(key),
        key[: len(KEY_PREFIX) + 6],
        rate_limit_per_minute,
    )
    return partner_id, key


async def partner_for_key(pool: asyncpg.Pool, key: str) -> dict[str, Any] | None:
    """The active partner owning this API key, or None."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    digest = hash_key(key)
    row = await pool.fetchrow(
        """
        select id, name, rate_limit_per_minute,
               case when api_key_hash = $1 then api_key_hash else previous_key_hash end as matched_hash
        from partners
        where disabled_at is null
          and (api_key_hash = $1 or (previous_key_hash = $1 and previous_key_expires_at > now()))
        """,
        digest,
    )
    # the lookup is by the hash already; compare again in constant time so timing says nothing either way
    if row is None or not hmac.compare_digest(row["matched_hash"], digest):
        return None
    return {"id": row["id"], "name": row["name"], "rate_limit_per_minute": row["rate_limit_per_minute"]}


class PartnerNotFound(LookupError):
    pass


async def find_partner(pool: asyncpg.Pool | asyncpg.Connection, ref: str) -> int:
    """A partner's id from its name (case folded) or its id; refuses a name two partners share."""
    ref = ref.strip()
    rows = await pool.fetch(
        "select id from partners where lower(name) = lower($1) or id::text = $1 order by id", ref
    )
    if not rows:
        raise PartnerNotFound(f"no partner named {ref!r}")
    if len(rows) > 1:
        raise PartnerNotFound(f"{len(rows)} partners match {ref!r}; give the id instead")
    partner_id: int = rows[0]["id"]
    return partner_id


async def rotate_key(pool: asyncpg.Pool | asyncpg.Connection, partner_id: int, *, grace: timedelta) -> str:
    """A new key for the partner; the current one keeps working for `grace` (zero ends it at once)."""
    key = new_key()
    await pool.execute(
        """
        update partners
        set previous_key_hash = case when $4 > interval '0' then api_key_hash end,
            previous_key_expires_at = case when $4 > interval '0' then now() + $4 end,
            api_key_hash = $2, api_key_prefix = $3, key_rotated_at = now()
        where id = $1
        """,
        partner_id,
        hash_key(key),
        key[: len(KEY_PREFIX) + 6],
        grace,
    )
    return key


async def revoke(pool: asyncpg.Pool | asyncpg.Connection, partner_id: int) -> None:
    """Every key of the partner stops working now; its data stays."""
    await pool.execute(
        """
        update partners set disabled_at = coalesce(disabled_at, now()), previous_key_hash = null,
                            previous_key_expires_at = null
        where id = $1
        """,
        partner_id,
    )


async def list_partners(pool: asyncpg.Pool | asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        """
        select p.id, p.name, p.contact_email, p.api_key_prefix as key_prefix, p.created_at, p.key_rotated_at,
               p.previous_key_expires_at as old_key_expires_at,
               case when p.disabled_at is null then 'active' else 'revoked' end as status,
               (select count(*) from webhook_endpoints w where w.partner_id = p.id) as endpoints,
               (select count(*) from subscribers s where s.partner_id = p.id) as subscribers
        from partners p order by p.id
        """
    )
    return [dict(r) for r in rows]
