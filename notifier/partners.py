"""Partner organisations and their API keys.

A key is shown once when made and stored only as its SHA-256: keys are long random strings, so a fast hash is
enough (there is nothing to brute-force), and it lets every request be checked with one indexed lookup.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
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
        "select id, name, api_key_hash, rate_limit_per_minute from partners where api_key_hash = $1 "
        "and disabled_at is null",
        digest,
    )
    # the lookup is by the hash already; compare again in constant time so timing says nothing either way
    if row is None or not hmac.compare_digest(row["api_key_hash"], digest):
        return None
    return dict(row)
