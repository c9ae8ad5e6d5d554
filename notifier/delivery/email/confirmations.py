"""The double opt-in: the confirmation email, sent once per request and never to a suppressed address."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import asyncpg
from arq.connections import ArqRedis

log = logging.getLogger(__name__)

# A second request for the same subscription within this window sends nothing more (form double-submits, bots).
RESEND_AFTER = "10 minutes"


async def enqueue_confirmation(
    pool: asyncpg.Pool, redis: ArqRedis, subscriber_id: int, subscription_id: int | None, *, force: bool = False
) -> None:
    """Ask the worker to send a confirmation. `force` (a fresh link was requested) lifts the resend window."""
    if subscription_id is None:
        subscription_id = await pool.fetchval(
            "select id from subscriptions where subscriber_id = $1 order by id desc limit 1", subscriber_id
        )
        if subscription_id is None:
            return
    if force:
        await pool.execute(
            """
            update subscriptions set confirm_sent_at = null
            where id = $1 and confirm_sent_at < now() - interval '1 minute'
            """,
            subscription_id,
        )
    slot = datetime.now(UTC).strftime("%Y%m%dT%H%M")
    await redis.enqueue_job("send_confirmation", subscription_id, _job_id=f"confirm:{subscription_id}:{slot}")
