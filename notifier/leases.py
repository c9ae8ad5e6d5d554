"""Short leases kept alive by the worker that holds them.

Every claimed resource (a delivery being sent, a document being downloaded) is claimed with a short lease, tens of
seconds, so the claims of a worker that dies are released soon after it stops renewing them; a slow but live
worker renews every third of the lease and is never overtaken by a second copy of its work. What a renewal updates
is the caller's: `renew(pool, ids, lease)` extends the leases of the rows it still holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
            except Exception:  # the next renewal tries again; a lease lost meanwhile is only a possible duplicate
                log.warning("could not renew %d leases", len(self._held), exc_info=True)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
