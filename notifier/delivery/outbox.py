"""Claiming deliveries, marking them, and recovering claims that a dead worker left behind.

A sender claims due rows (`pending`, `next_attempt_at <= now`) with FOR UPDATE SKIP LOCKED, marks them `sending` with
a lease, sends, then marks them `sent`. A worker that dies mid-send leaves rows in `sending`; once the lease runs
out the sweeper makes them `pending` again, so nothing is lost. The only possible duplicates are the messages that
were in flight at the moment of death (accepted by the mail server, not yet marked).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg


@dataclass(frozen=True)
class ClaimedBatch:
    """Deliveries for one subscriber and one frequency: they go out as one email."""

    subscriber_id: int
    frequency: str
    delivery_ids: list[int]
    attempts: int  # the highest attempt number among them, for the retry schedule


async def claim_email_batches(
    pool: asyncpg.Pool, *, now: datetime, lease: timedelta, limit: int = 200
) -> list[ClaimedBatch]:
    """Claim up to `limit` (subscriber, frequency) groups with something due, the longest due first.

    Once one delivery of a group is due, every pending delivery of that group goes with it, so events matched a
    little later ride in the same email instead of following it a minute after.

    The cost is that of the rows claimed, whatever the size of the tables: the due deliveries are read in order
    from the partial index on `next_attempt_at` until `limit` email ones are found, and their groups' other
    deliveries through the subscriber's subscriptions.
    """
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            """
            with due_groups as (
                select distinct x.subscriber_id, x.frequency
                from (
                    select s.subscriber_id, s.frequency
                    from deliveries d
                    join subscriptions s on s.id = d.subscription_id
                    where d.status = 'pending' and d.next_attempt_at <= $1 and s.channel = 'email'
                    order by d.next_attempt_at
                    limit $3
                ) x
            ),
            claimable as (
                select d.id
                from due_groups g
                join subscriptions s
                  on s.subscriber_id = g.subscriber_id and s.frequency = g.frequency and s.channel = 'email'
                join deliveries d on d.subscription_id = s.id
                where d.status = 'pending'
                for update of d skip locked
            )
            update deliveries d
            set status = 'sending', lease_until = $1 + $2::interval, attempts = d.attempts + 1
            from claimable c, subscriptions s
            where d.id = c.id and s.id = d.subscription_id
            returning d.id, d.attempts, s.subscriber_id, s.frequency
            """,
            now,
            lease,
            limit,
        )
    groups: dict[tuple[int, str], list[asyncpg.Record]] = defaultdict(list)
    for r in rows:
        groups[(r["subscriber_id"], r["frequency"])].append(r)
    return [
        ClaimedBatch(sub, freq, sorted(r["id"] for r in rs), max(r["attempts"] for r in rs))
        for (sub, freq), rs in sorted(groups.items())
    ]


async def mark_sent_many(pool: asyncpg.Pool, marks: Sequence[tuple[Sequence[int], str | None, datetime]]) -> int:
    """Mark deliveries `sent`: (delivery ids, Message-ID, sent at) for each message sent, in one statement. Only
    rows still `sending` change: a claim the sweeper has taken back is not marked from here."""
    ids: list[int] = []
    message_ids: list[str | None] = []
    times: list[datetime] = []
    for delivery_ids, message_id, at in marks:
        ids += delivery_ids
        message_ids += [message_id] * len(delivery_ids)
        times += [at] * len(delivery_ids)
    result: str = await pool.execute(
        """
        update deliveries d
        set status = 'sent', sent_at = m.at, message_id = m.message_id, lease_until = null, last_error = null
        from unnest($1::bigint[], $2::text[], $3::timestamptz[]) as m(id, message_id, at)
        where d.id = m.id and d.status = 'sending'
        """,
        ids,
        message_ids,
        times,
    )
    return int(result.split()[-1])


class SentMarks:
    """`sent` marks, written at once but together: the marks asked for while one UPDATE runs go into the next, so
    under load there are far fewer statements and commits than messages, and no mark waits on a timer."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._waiting: list[tuple[list[int], str | None, datetime, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def sent(self, ids: list[int], message_id: str | None, at: datetime) -> None:
        """Returns once the deliveries are marked `sent` in the database."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((ids, message_id, at, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        await done

    async def _write(self) -> None:
        while self._waiting:
            marks, self._waiting = self._waiting, []
            error: BaseException | None = None
            try:
                await mark_sent_many(self._pool, [(ids, mid, at) for ids, mid, at, _ in marks])
            except Exception as e:
                error = e
            for *_, done in marks:
                if done.done():  # its sender was cancelled
                    continue
                if error is None:
                    done.set_result(None)
                else:
                    done.set_exception(error)


async def mark_retry(pool: asyncpg.Pool, ids: list[int], *, error: str, at: datetime) -> None:
    await pool.execute(
        """
        update deliveries set status = 'pending', next_attempt_at = $2, last_error = $3, lease_until = null
        where id = any($1::bigint[]) and status = 'sending'
        """,
        ids,
        at,
        error[:1000],
    )


async def mark_final(pool: asyncpg.Pool, ids: list[int], *, status: str, error: str | None) -> None:
    """`failed` (gave up) or `skipped` (nothing to send: suppressed, unsubscribed, not confirmed)."""
    await pool.execute(
        """
        update deliveries set status = $2, last_error = $3, lease_until = null
        where id = any($1::bigint[]) and status = 'sending'
        """,
        ids,
        status,
        error[:1000] if error else None,
    )


async def release_expired_leases(pool: asyncpg.Pool, *, now: datetime) -> int:
    """Claims whose worker died: back to pending, due at once."""
    result: str = await pool.execute(
        """
        update deliveries set status = 'pending', next_attempt_at = $1, lease_until = null,
                              last_error = 'lease expired: the sender stopped before finishing'
        where status = 'sending' and lease_until < $1
        """,
        now,
    )
    return int(result.split()[-1])
