"""Short leases kept alive by the worker that holds them.

Every claimed resource (a delivery being sent, a document being downloaded) is claimed with a short lease, tens of
seconds, so the claims of a worker that dies are released soon after it stops renewing them; a slow but live
worker renews every third of the lease and is never overtaken by a second copy of its work. What a renewal updates
is the caller's: `renew(pool, ids, lease)` extends the leases of the rows it still holds.

A claim also names its holder: the worker's id (`worker_id()`), which is the `application_name` of every connection
in that worker's pool, so a claiming statement records it with `current_setting('application_name')` whatever module
runs it. A live worker beats in `worker_heartbeats` (`Heartbeat`); a worker that starts, and the sweeper, hand back
the claims of holders whose beat has stopped, long before their leases would run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

import asyncpg

log = logging.getLogger(__name__)

Renew = Callable[[asyncpg.Pool, Sequence[int], timedelta], Awaitable[int]]


class LeaseKeeper:
    """Renews the leases of the rows a live worker holds, every third of the lease, until they are released."""

    def __init__(self, pool: asyncpg.Pool, lease: timedelta, renew: Renew) -> None:
        self._pool = pool
        self._lease = lease
        self._renew_rows = renew
        self._held: set[int] = set()
        self._task: asyncio.Task[None] | None = None
        # loop-independent clock of the last renewal that went through (0: none yet), for callers that must not
        # start work on a claim whose lease may have run out meanwhile
        self.renewed_at = 0.0

    def hold(self, ids: Sequence[int]) -> None:
        self._held.update(ids)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._renew())

    def release(self, ids: Sequence[int]) -> None:
        self._held.difference_update(ids)

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self._lease.total_seconds() / 3)
            if not self._held:
                continue
            try:
                await self._renew_rows(self._pool, sorted(self._held), self._lease)
                self.renewed_at = time.monotonic()
            except Exception:  # the next renewal tries again; a lease lost meanwhile is only a possible duplicate
                log.warning("could not renew %d leases", len(self._held), exc_info=True)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


# A holder whose last beat is older than this many beats is gone: its claims are handed back.
STALE_BEATS = 3


def worker_id() -> str:
    """A new worker's id: unique, and short enough for PostgreSQL's application_name (63 bytes)."""
    return f"notifier-worker {uuid.uuid4().hex[:16]}"


class Heartbeat:
    """A worker's beat in `worker_heartbeats`, every `every` seconds while it lives; gone when it stops cleanly."""

    def __init__(self, pool: asyncpg.Pool, holder: str, every: float) -> None:
        self._pool = pool
        self.holder = holder
        self.every = every
        self._task: asyncio.Task[None] | None = None

    @property
    def stale_after(self) -> timedelta:
        return timedelta(seconds=self.every * STALE_BEATS)

    async def start(self) -> None:
        await self._pool.execute(
            """
            insert into worker_heartbeats (worker_id, host, pid) values ($1, $2, $3)
            on conflict (worker_id) do update set beat_at = now()
            """,
            self.holder,
            socket.gethostname()[:200],
            os.getpid(),
        )
        self._task = asyncio.get_running_loop().create_task(self._beat())

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                await self._pool.execute("update worker_heartbeats set beat_at = now() where worker_id = $1",
                                         self.holder)
            except Exception:  # the next beat tries again; a beat missed for long only hands our claims to others
                log.warning("could not record the worker's heartbeat", exc_info=True)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):  # a worker stopping with the database gone is simply stale later
            await self._pool.execute("delete from worker_heartbeats where worker_id = $1", self.holder)
