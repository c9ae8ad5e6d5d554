"""Writing what became of each webhook request: the attempts log, the delivery's mark, the endpoint's health.

Outcomes are written as they come, in one transaction per group: while one group is being written the next
gathers, so at a few thousand deliveries a second the database sees a few statements per group rather than
several per delivery. A delivery's lease is let go only once its outcome is written: until then a renewal keeps
the sweeper from handing it to another worker.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

import asyncpg

from notifier.delivery import outbox
from notifier.leases import LeaseKeeper
from notifier.models import DisabledBy

if TYPE_CHECKING:
    from notifier.delivery.webhooks.sender import PassResult

log = logging.getLogger(__name__)

# An endpoint that has failed every delivery for this long is disabled and its partner told.
DISABLE_AFTER = timedelta(days=5)

OutcomeKind = Literal["sent", "retry", "failed", "gone", ""]


@dataclass
class Outcome:
    delivery_id: int
    endpoint_id: int
    webhook_id: str
    event_id: int | None
    at: datetime
    status_code: int | None
    duration_ms: int
    error: str | None
    kind: OutcomeKind = ""
    retry_at: datetime | None = None


class OutcomeWriter:
    def __init__(self, pool: asyncpg.Pool, keeper: LeaseKeeper, result: PassResult) -> None:
        self._pool = pool
        self._keeper = keeper
        self._result = result
        self._waiting: list[Outcome] = []
        self._writer: asyncio.Task[None] | None = None

    def add(self, outcome: Outcome) -> None:
        self._waiting.append(outcome)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def close(self) -> None:
        """Write what is still waiting."""
        while self._writer is not None and not self._writer.done():
            await asyncio.wait([self._writer])
        if self._waiting:
            await self._write()

    async def _write(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            try:
                disabled = await _write_group(self._pool, group)
            except Exception:  # left `sending`: the sweeper hands them back once the lease is let go and runs out
                log.exception("could not record %d webhook outcomes", len(group))
            else:
                self._count(group, disabled)
            self._keeper.release([o.delivery_id for o in group])

    def _count(self, group: list[Outcome], disabled: list[int]) -> None:
        for o in group:
            if o.kind == "sent":
                self._result.sent += 1
            elif o.kind == "retry":
                self._result.retried += 1
            else:
                self._result.failed += 1
        self._result.disabled += disabled


async def _write_group(pool: asyncpg.Pool, group: list[Outcome]) -> list[int]:
    """Record one group of outcomes; returns the endpoints it disabled."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """
            insert into webhook_attempts (delivery_id, endpoint_id, at, status_code, duration_ms, error, webhook_id,
                                          event_id)
            select * from unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::int[], $5::int[], $6::text[],
                                 $7::text[], $8::bigint[])
            """,
            [o.delivery_id for o in group], [o.endpoint_id for o in group], [o.at for o in group],
            [o.status_code for o in group], [o.duration_ms for o in group], [o.error for o in group],
            [o.webhook_id for o in group], [o.event_id for o in group],
        )
        sent = [o for o in group if o.kind == "sent"]
        if sent:
            await outbox.mark_sent_many(conn, [([o.delivery_id], o.webhook_id, o.at) for o in sent])
        await _mark_retries(conn, [o for o in group if o.kind == "retry"])
        failed = [o for o in group if o.kind in ("failed", "gone")]
        if failed:
            await conn.execute(
                """
                update deliveries d set status = 'failed', last_error = m.error, lease_until = null
                from unnest($1::bigint[], $2::text[]) as m(id, error)
                where d.id = m.id and d.status = 'sending'
                """,
                [o.delivery_id for o in failed], [(o.error or "")[:1000] for o in failed],
            )
        return await _endpoint_health(conn, group)


async def _mark_retries(conn: asyncpg.Connection, retries: list[Outcome]) -> None:
    if not retries:
        return
    await conn.execute(
        """
        update deliveries d set status = 'pending', next_attempt_at = m.at, last_error = m.error, lease_until = null
        from unnest($1::bigint[], $2::timestamptz[], $3::text[]) as m(id, at, error)
        where d.id = m.id and d.status = 'sending'
        """,
        [o.delivery_id for o in retries], [o.retry_at for o in retries], [(o.error or "")[:1000] for o in retries],
    )


async def _endpoint_health(conn: asyncpg.Connection, group: list[Outcome]) -> list[int]:
    """A success clears an endpoint's failure streak; failures lengthen it; a 410, or failing everything for
    `DISABLE_AFTER`, disables it (only the latter is owed a notice to the partner: a 410 is the receiver's own
    word). Returns the endpoints disabled here."""
    ok = {o.endpoint_id for o in group if o.kind == "sent"}
    failing: dict[int, list[Outcome]] = {}
    for o in group:
        if o.kind != "sent" and o.endpoint_id not in ok:
            failing.setdefault(o.endpoint_id, []).append(o)
    if ok:
        await conn.execute(
            """
            update webhook_endpoints set failure_streak = 0, failing_since = null
            where id = any($1::bigint[]) and (failure_streak > 0 or failing_since is not null)
            """,
            sorted(ok),
        )
    if not failing:
        return []
    ids = sorted(failing)
    await conn.execute(
        """
        update webhook_endpoints w set failure_streak = w.failure_streak + m.n,
                                       failing_since = coalesce(w.failing_since, m.first_at)
        from unnest($1::bigint[], $2::int[], $3::timestamptz[]) as m(id, n, first_at)
        where w.id = m.id
        """,
        ids, [len(failing[i]) for i in ids], [min(o.at for o in failing[i]) for i in ids],
    )
    gone = sorted({o.endpoint_id for os in failing.values() for o in os if o.kind == "gone"})
    now = max(o.at for os in failing.values() for o in os)
    rows = await conn.fetch(
        """
        update webhook_endpoints
        set status = 'disabled', disabled_at = $3, disabled_notice_sent_at = null, updated_at = $3,
            disabled_by = case when id = any($2::bigint[]) then $5 else $6 end,
            disabled_reason = case when id = any($2::bigint[]) then 'the endpoint answered 410 Gone'
                                   else 'every delivery failed for 5 days' end
        where status = 'active' and (id = any($2::bigint[]) or (id = any($1::bigint[]) and failing_since <= $4))
        returning id
        """,
        ids, gone, now, now - DISABLE_AFTER, DisabledBy.GONE.value, DisabledBy.FAILURES.value,
    )
    return [r["id"] for r in rows]
