"""`outbox.SentMarks`: the `sent` marks of a sending pass, written in batches on one connection."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from notifier.delivery import outbox
from tests.factories import Factory

# long enough that nothing in these tests reaches it unless it is meant to
NEVER = 3600.0


async def sending(pool: asyncpg.Pool, factory: Factory, n: int) -> list[int]:
    """`n` deliveries in `sending`, each for its own subscriber."""
    council = await factory.council()
    event = await factory.event(council=council)
    ids = []
    for i in range(n):
        subscriber = await factory.subscriber(f"reader{i}@example.org")
        subscription = await factory.subscription(subscriber, councils=[council])
        ids.append(await pool.fetchval(
            "insert into deliveries (subscription_id, event_id, status, next_attempt_at) "
            "values ($1, $2, 'sending', now()) returning id",
            subscription, event,
        ))
    return ids


async def statuses(pool: asyncpg.Pool) -> dict[int, tuple[str, str | None]]:
    rows = await pool.fetch("select id, status, message_id from deliveries")
    return {r["id"]: (r["status"], r["message_id"]) for r in rows}


async def test_marks_given_together_share_one_statement_and_close_writes_them(
    pool: asyncpg.Pool, factory: Factory
) -> None:
    ids = await sending(pool, factory, 5)
    marks = outbox.SentMarks(pool, linger=NEVER, batch=5)
    at = datetime.now(UTC)
    for i in ids:
        await marks.sent([i], f"<{i}@notifier.test>", at)
    # waiting for company: nothing written yet, and the senders were not held up
    assert {s for s, _ in (await statuses(pool)).values()} == {"sending"}
    await marks.close()
    assert await statuses(pool) == {i: ("sent", f"<{i}@notifier.test>") for i in ids}
    assert marks.statements == 1
    assert marks.unwritten == []


async def test_a_mark_is_written_once_its_linger_is_over(pool: asyncpg.Pool, factory: Factory) -> None:
    [delivery] = await sending(pool, factory, 1)
    marks = outbox.SentMarks(pool, linger=0.01)
    await marks.sent([delivery], "<a@notifier.test>", datetime.now(UTC))
    for _ in range(500):  # well past the linger, however busy the machine
        if (await statuses(pool))[delivery][0] == "sent":
            break
        await asyncio.sleep(0.01)
    assert (await statuses(pool))[delivery] == ("sent", "<a@notifier.test>")
    assert marks.statements == 1
    await marks.close()
    assert marks.statements == 1


async def test_a_full_batch_is_written_at_once_and_holds_up_the_next_sender(
    pool: asyncpg.Pool, factory: Factory
) -> None:
    ids = await sending(pool, factory, 3)
    marks = outbox.SentMarks(pool, linger=NEVER, batch=2)
    at = datetime.now(UTC)
    await marks.sent([ids[0]], None, at)
    await marks.sent([ids[1]], None, at)  # a whole batch: written without waiting for the linger
    # the third waits until the batch has been taken for writing, so no more than a batch is ever unmarked
    await marks.sent([ids[2]], None, at)
    for _ in range(500):
        if [s for s, _ in (await statuses(pool)).values()].count("sent") == 2:
            break
        await asyncio.sleep(0.01)
    assert {i: s for i, (s, _) in (await statuses(pool)).items()} == {
        ids[0]: "sent", ids[1]: "sent", ids[2]: "sending"
    }
    await marks.close()
    assert {s for s, _ in (await statuses(pool)).values()} == {"sent"}
    assert marks.statements == 2


async def test_only_deliveries_still_sending_are_marked(pool: asyncpg.Pool, factory: Factory) -> None:
    ids = await sending(pool, factory, 2)
    # the sweeper took this claim back meanwhile
    await pool.execute("update deliveries set status = 'pending' where id = $1", ids[1])
    marks = outbox.SentMarks(pool)
    await marks.sent(ids, "<both@notifier.test>", datetime.now(UTC))
    await marks.close()
    assert {i: s for i, (s, _) in (await statuses(pool)).items()} == {ids[0]: "sent", ids[1]: "pending"}


async def test_a_failed_statement_is_tried_again_on_a_fresh_connection(
    pool: asyncpg.Pool, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await sending(pool, factory, 2)
    real = outbox.mark_sent_many
    calls: list[Any] = []

    async def flaky(db: Any, marks: Any) -> int:
        calls.append(db)
        if len(calls) == 1:
            db.terminate()  # as a connection lost mid-statement
            raise asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation")
        return await real(db, marks)

    monkeypatch.setattr(outbox, "mark_sent_many", flaky)
    marks = outbox.SentMarks(pool, linger=NEVER)
    for i in ids:
        await marks.sent([i], None, datetime.now(UTC))
    await marks.close()
    assert {s for s, _ in (await statuses(pool)).values()} == {"sent"}
    assert len(calls) == 2 and calls[0] is not calls[1]
    assert marks.unwritten == []


async def test_marks_that_cannot_be_written_are_left_sending_and_reported(
    pool: asyncpg.Pool, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await sending(pool, factory, 2)

    async def down(db: Any, marks: Any) -> int:
        raise OSError("the database is gone")

    monkeypatch.setattr(outbox, "mark_sent_many", down)
    marks = outbox.SentMarks(pool, linger=NEVER)
    for i in ids:
        await marks.sent([i], None, datetime.now(UTC))
    await marks.close()  # does not raise: the sweeper brings them back once their claim runs out
    assert {s for s, _ in (await statuses(pool)).values()} == {"sending"}
    assert sorted(marks.unwritten) == sorted(ids)
    with pytest.raises(RuntimeError):
        await marks.sent([ids[0]], None, datetime.now(UTC))


async def test_the_marks_connection_goes_back_to_the_pool(pool: asyncpg.Pool, factory: Factory) -> None:
    ids = await sending(pool, factory, 1)
    free = pool.get_idle_size()
    marks = outbox.SentMarks(pool, linger=NEVER)
    await marks.sent(ids, None, datetime.now(UTC))
    await marks.close()
    assert pool.get_idle_size() >= free
    assert pool.get_size() - pool.get_idle_size() == 0


def test_marks_refuse_a_negative_linger_or_an_empty_batch() -> None:
    with pytest.raises(ValueError):
        outbox.SentMarks(None, linger=-1)
    with pytest.raises(ValueError):
        outbox.SentMarks(None, batch=0)


async def test_close_cancelled_while_a_statement_waits_gives_the_connection_back(
    pool: asyncpg.Pool, factory: Factory
) -> None:
    [delivery] = await sending(pool, factory, 1)
    idle_before = pool.get_idle_size()
    async with pool.acquire() as holder, holder.transaction():
        # another transaction holds the row, so the marks' UPDATE waits for it
        await holder.execute("select 1 from deliveries where id = $1 for update", delivery)
        marks = outbox.SentMarks(pool, linger=NEVER)
        await marks.sent([delivery], "<a@example.org>", datetime.now(UTC))
        closing = asyncio.create_task(marks.close())
        while marks._conn is None:  # the writer has its connection and is waiting on the lock
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closing
        assert marks._conn is None
    assert (await statuses(pool))[delivery] == ("sending", None)  # left for the sweeper
    assert pool.get_idle_size() >= idle_before


async def test_the_marks_connection_goes_back_to_the_pool_with_its_settings_reset(
    pool: asyncpg.Pool, factory: Factory
) -> None:
    """The marks' connection plans its statements generically (see `SentMarks._write_batch`); once given back, the
    next user of that connection has the server's default again."""
    ids = await sending(pool, factory, 3)
    marks = outbox.SentMarks(pool, linger=NEVER)
    for i in ids:
        await marks.sent([i], f"<{i}@notifier.test>", datetime.now(UTC))
    await marks.close()
    assert await statuses(pool) == {i: ("sent", f"<{i}@notifier.test>") for i in ids}
    connections = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        assert {await c.fetchval("show plan_cache_mode") for c in connections} == {"auto"}
    finally:
        for c in connections:
            await pool.release(c)
