"""Claiming deliveries, marking them, and recovering claims that a dead worker left behind.

A sender claims due rows (`pending`, `next_attempt_at <= now`) with FOR UPDATE SKIP LOCKED, marks them `sending` with
a lease, sends, then marks them `sent`. A worker that dies mid-send leaves rows in `sending`; once the lease runs
out the sweeper makes them `pending` again, so nothing is lost. The only possible duplicates are the messages that
were in flight at the moment of death, or accepted by the mail server in the moments before it, whose marks were
still waiting to be written or being written: no more of those than twice the former (see `SentMarks`).

Leases are short (tens of seconds) and renewed by the live sender (`notifier.leases.LeaseKeeper`); each claim names
its holder, the claiming session's `application_name` (the worker's id, see `notifier.leases`), so the claims of a
worker that has gone are handed back as soon as its heartbeat stops (`release_orphaned_leases`), and those of any
other holder once their lease runs out (`release_expired_leases`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import asyncpg.pool

log = logging.getLogger(__name__)

# How long a `sent` mark may wait for others to share its statement, and how many may wait (see `SentMarks`): the
# email sender lets as many wait as it has SMTP connections (4 by default). A worker killed outright then leaves
# at most that many accepted messages unmarked, and as many in the statement being written, to be sent again: the
# same order as the messages it may have in flight anyway, one a connection. Before, with no wait, it was one or
# two. Shared four ways, PostgreSQL spends 0.13-0.15 ms of CPU an alert instead of 0.21-0.26, and the sender 0.40-0.43
# instead of 0.50-0.59 (`bench/results/email_send.md`).
MARK_LINGER = 0.02
MARK_BATCH = 4
# A claim reads up to this many due deliveries for each group it may claim: a digest's group has 5-20 of them, and a
# claim that stopped at `limit` deliveries took a handful of digests, each claim and its reads costing a statement.
CLAIM_SCAN = 8


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
    from the partial index on `next_attempt_at`, `CLAIM_SCAN` times `limit` email ones at most, and the groups' other
    deliveries through the subscriber's subscriptions.
    """
    # one statement, so its own transaction: no BEGIN and COMMIT round trips around it
    rows = await pool.fetch(
        """
        with due as (
            select s.subscriber_id, s.frequency, d.next_attempt_at
            from deliveries d
            join subscriptions s on s.id = d.subscription_id
            where d.status = 'pending' and d.next_attempt_at <= $1 and s.channel = 'email'
            order by d.next_attempt_at
            limit $3 * $4::int
        ),
        due_groups as (
            select subscriber_id, frequency from due
            group by subscriber_id, frequency
            order by min(next_attempt_at)
            limit $3
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
        set status = 'sending', lease_until = $1 + $2::interval, attempts = d.attempts + 1,
            lease_holder = nullif(current_setting('application_name'), '')
        from claimable c, subscriptions s
        where d.id = c.id and s.id = d.subscription_id
        returning d.id, d.attempts, s.subscriber_id, s.frequency
        """,
        now,
        lease,
        limit,
        CLAIM_SCAN,
    )
    groups: dict[tuple[int, str], list[asyncpg.Record]] = defaultdict(list)
    for r in rows:
        groups[(r["subscriber_id"], r["frequency"])].append(r)
    return [
        ClaimedBatch(sub, freq, sorted(r["id"] for r in rs), max(r["attempts"] for r in rs))
        for (sub, freq), rs in sorted(groups.items())
    ]


async def claim_webhook_deliveries(
    pool: asyncpg.Pool, *, now: datetime, lease: timedelta, limit: int, per_endpoint: int
) -> list[asyncpg.Record]:
    """Claim up to `limit` due push deliveries (webhooks and WebSub: both go to an endpoint), the longest due
    first, and no more for one endpoint than bring its claimed-but-unfinished deliveries (across every worker) to
    `per_endpoint`: a slow partner's backlog waits in the table, not in a worker's memory, and cannot crowd out the
    others.

    Window functions and row locks do not mix, so the candidates are read unlocked and the UPDATE re-checks each
    row's status: of two workers picking the same row, the second finds it no longer pending and passes it by.
    """
    rows: list[asyncpg.Record] = await pool.fetch(
        """
        with due as (
            select d.id, s.endpoint_id, d.next_attempt_at
            from deliveries d
            join subscriptions s on s.id = d.subscription_id
            where d.status = 'pending' and d.next_attempt_at <= $1 and s.channel in ('webhook', 'websub')
            order by d.next_attempt_at
            limit $3 * 4
        ),
        busy as (
            select s.endpoint_id, count(*) as n
            from deliveries d
            join subscriptions s on s.id = d.subscription_id
            where d.status = 'sending' and s.endpoint_id in (select endpoint_id from due)
            group by s.endpoint_id
        ),
        ranked as (
            select due.id, due.next_attempt_at,
                   row_number() over (partition by due.endpoint_id order by due.next_attempt_at, due.id)
                       + coalesce(busy.n, 0) as place
            from due
            join webhook_endpoints w on w.id = due.endpoint_id and w.status = 'active'
                 and (w.lease_expires_at is null or w.lease_expires_at > $1)
            left join busy on busy.endpoint_id = due.endpoint_id
        ),
        chosen as (
            select id from ranked where place <= $4 order by next_attempt_at, id limit $3
        )
        update deliveries d
        set status = 'sending', lease_until = $1 + $2::interval, attempts = d.attempts + 1,
            lease_holder = nullif(current_setting('application_name'), '')
        from chosen
        where d.id = chosen.id and d.status = 'pending'
        returning d.id, d.attempts
        """,
        now,
        lease,
        limit,
        per_endpoint,
    )
    return rows


async def renew_leases(pool: asyncpg.Pool, ids: Sequence[int], lease: timedelta) -> int:
    """Extend the leases of deliveries this worker is still working on; returns how many it still holds."""
    result: str = await pool.execute(
        """
        update deliveries set lease_until = now() + $2::interval
        where id = any($1::bigint[]) and status = 'sending'
          and lease_holder is not distinct from nullif(current_setting('application_name'), '')
        """,
        list(ids),
        lease,
    )
    return int(result.split()[-1])


async def mark_sent_many(
    db: asyncpg.Pool | asyncpg.pool.PoolConnectionProxy, marks: Sequence[tuple[Sequence[int], str | None, datetime]]
) -> int:
    """Mark deliveries `sent`: (delivery ids, Message-ID, sent at) for each message sent, in one statement. Only
    rows still `sending` change: a claim the sweeper has taken back is not marked from here. `db` is the pool or a
    connection taken from it."""
    # `(d.status = 'sending') is true`, the same test as `d.status = 'sending'` (status is never null), keeps the
    # planner off the partial index of `sending` rows: it takes that index for the smallest way in, as the table's
    # statistics see few such rows, and then reads every row claimed (by every worker) for each statement, where the
    # primary key finds the few marked here. This was most of PostgreSQL's CPU a message.
    ids: list[int] = []
    message_ids: list[str | None] = []
    times: list[datetime] = []
    for delivery_ids, message_id, at in marks:
        ids += delivery_ids
        message_ids += [message_id] * len(delivery_ids)
        times += [at] * len(delivery_ids)
    result: str = await db.execute(
        """
        update deliveries d
        set status = 'sent', sent_at = m.at, message_id = m.message_id, lease_until = null, last_error = null
        from unnest($1::bigint[], $2::text[], $3::timestamptz[]) as m(id, message_id, at)
        where d.id = m.id and (d.status = 'sending') is true
        """,
        ids,
        message_ids,
        times,
    )
    return int(result.split()[-1])


class SentMarks:
    """The `sent` marks of one sending pass, written in batches.

    Each statement that marks deliveries costs PostgreSQL a commit and about 0.15 ms of CPU, and the sender a round
    trip, whether it marks one row or fifty. So a mark is not written the moment its message is accepted: it waits
    up to `linger` seconds for others to share its statement, or until `batch` are waiting, and the sender goes on
    meanwhile. A sender waits for its mark only when `batch` marks are already waiting, so however slow the
    database, no more than `batch` accepted messages wait unmarked, besides those of the statement being written.
    That is the cost: a worker that dies leaves those unmarked, and they are sent again once their claim is handed
    back. The email sender's `batch` is its number of SMTP connections, as many messages as may be in flight on
    them (each accepted, or not, by a reply still on its way) when a worker dies.

    The statements go over one connection kept from the first mark until `close()`: a connection taken from the
    pool and given back for each would cost a second round trip every time, the session reset asyncpg runs when
    a connection goes back. A statement that fails is tried once more on a fresh connection; marks that still
    cannot be written are logged and left `sending`, for the sweeper.
    """

    def __init__(self, pool: asyncpg.Pool, *, linger: float = MARK_LINGER, batch: int = MARK_BATCH) -> None:
        if linger < 0 or batch < 1:
            raise ValueError(f"linger must be >= 0 and batch >= 1, got {linger} and {batch}")
        self._pool = pool
        self._linger = linger
        self._batch = batch
        self._waiting: list[tuple[Sequence[int], str | None, datetime]] = []
        self._first_at = 0.0  # loop time the oldest waiting mark came
        self._full = asyncio.Event()  # write now: a batch is waiting, or the pass is over
        self._room = asyncio.Event()  # the waiting marks were taken for writing
        self._writer: asyncio.Task[None] | None = None
        self._conn: asyncpg.pool.PoolConnectionProxy | None = None
        self._closed = False
        self.statements = 0  # UPDATEs run
        self.unwritten: list[int] = []  # deliveries whose mark could not be written

    async def sent(self, ids: Sequence[int], message_id: str | None, at: datetime) -> None:
        """Mark deliveries `sent` (as accepted at `at`, as `message_id`): soon, along with others. Returns at once
        unless a whole batch is waiting to be written."""
        if self._closed:
            raise RuntimeError("these marks are closed")
        while len(self._waiting) >= self._batch:
            self._full.set()
            self._room.clear()
            await self._room.wait()
        loop = asyncio.get_running_loop()
        if not self._waiting:
            self._first_at = loop.time()
        self._waiting.append((ids, message_id, at))
        if len(self._waiting) >= self._batch:
            self._full.set()
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write())

    async def close(self) -> None:
        """Write the marks still waiting, at once, then give the connection back to the pool.

        Cancelled while it waits (a worker shutting down past its grace period), it stops the writer too: the marks
        not yet written stay `sending`, for the sweeper, and the connection still goes back to the pool.
        """
        self._closed = True
        self._full.set()
        try:
            if self._writer is not None:
                await asyncio.wait([self._writer])
        finally:
            if self._writer is not None and not self._writer.done():
                self._writer.cancel()
                await asyncio.wait([self._writer])
            await self._give_back()

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            due = self._first_at + self._linger
            if not self._full.is_set() and loop.time() < due:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(due):
                        await self._full.wait()
            if not self._closed:
                self._full.clear()
            marks, self._waiting = self._waiting, []
            self._room.set()
            await self._write_batch(marks)

    async def _write_batch(self, marks: list[tuple[Sequence[int], str | None, datetime]]) -> None:
        for attempt in (1, 2):
            try:
                if self._conn is None:
                    self._conn = await self._pool.acquire()
                    # The mark's plan for a few ids (a nested loop on the primary key) suits any number of them, but
                    # PostgreSQL, estimating ten ids for the generic plan, keeps planning each statement afresh for
                    # its actual few: a fifth of the statement's CPU. The pool's reset (RESET ALL) undoes this when
                    # the connection goes back.
                    await self._conn.execute("set plan_cache_mode = force_generic_plan")
                self.statements += 1
                await mark_sent_many(self._conn, marks)
                return
            except Exception:
                # the connection may be broken: back to the pool (which replaces a closed one), a fresh one next
                await self._give_back()
                ids = [i for delivery_ids, _, _ in marks for i in delivery_ids]
                if attempt == 1:
                    log.warning("could not mark deliveries %s sent; trying again", ids, exc_info=True)
                else:
                    log.exception("could not mark deliveries %s sent; they go out again when their claim runs "
                                  "out", ids)
                    self.unwritten += ids

    async def _give_back(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await self._pool.release(conn)
            except Exception:  # the pool terminates a connection it cannot reset; nothing is lost
                log.warning("could not return the marks' connection to the pool", exc_info=True)


async def mark_retry(pool: asyncpg.Pool, ids: list[int], *, error: str, at: datetime) -> None:
    # `(status = 'sending') is true`: by primary key, not by reading every claimed row (see `mark_sent_many`)
    await pool.execute(
        """
        update deliveries set status = 'pending', next_attempt_at = $2, last_error = $3, lease_until = null
        where id = any($1::bigint[]) and (status = 'sending') is true
        """,
        ids,
        at,
        error[:1000],
    )


async def mark_final(pool: asyncpg.Pool, ids: list[int], *, status: str, error: str | None) -> None:
    """`failed` (gave up) or `skipped` (nothing to send: suppressed, unsubscribed, not confirmed)."""
    # `(status = 'sending') is true`: by primary key, not by reading every claimed row (see `mark_sent_many`)
    await pool.execute(
        """
        update deliveries set status = $2, last_error = $3, lease_until = null
        where id = any($1::bigint[]) and (status = 'sending') is true
        """,
        ids,
        status,
        error[:1000] if error else None,
    )


async def release_expired_leases(pool: asyncpg.Pool, *, now: datetime) -> int:
    """Claims whose worker died: back to pending, due at once."""
    result: str = await pool.execute(
        """
        update deliveries set status = 'pending', next_attempt_at = $1, lease_until = null, lease_holder = null,
                              last_error = 'lease expired: the sender stopped before finishing'
        where status = 'sending' and lease_until < $1
        """,
        now,
    )
    return int(result.split()[-1])


async def release_orphaned_leases(pool: asyncpg.Pool, *, now: datetime, stale_after: timedelta,
                                  quiet_after: timedelta) -> int:
    """Claims whose holder has gone, whatever their lease says: back to pending, due at once.

    A holder has gone when its heartbeat is older than `stale_after`, or when it has not beaten for `quiet_after`
    (about one beat) and no session of its name is connected: a worker killed outright loses its connections at
    once, so the worker started in its place finds its claims straight away. Heartbeats are read on the database's
    clock (the one they were written with); `now` is when the claims fall due again.
    """
    result: str = await pool.execute(
        """
        update deliveries d set status = 'pending', next_attempt_at = $1, lease_until = null, lease_holder = null,
                                last_error = 'released: the sender ' || h.worker_id || ' has gone'
        from worker_heartbeats h
        where d.status = 'sending' and d.lease_holder = h.worker_id
          and (h.beat_at < now() - $2::interval
               or (h.beat_at < now() - $3::interval
                   and not exists (select 1 from pg_stat_activity a where a.application_name = h.worker_id)))
        """,
        now,
        stale_after,
        quiet_after,
    )
    return int(result.split()[-1])


async def forget_gone_workers(pool: asyncpg.Pool, *, older_than: timedelta) -> int:
    """Heartbeats of workers long gone, once nothing they held is left."""
    result: str = await pool.execute(
        """
        delete from worker_heartbeats h
        where h.beat_at < now() - $1::interval
          and not exists (select 1 from deliveries d where d.status = 'sending' and d.lease_holder = h.worker_id)
        """,
        older_than,
    )
    return int(result.split()[-1])
