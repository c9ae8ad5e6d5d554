"""match_events: from change events to deliveries, exactly once, for the right subscriptions."""

from __future__ import annotations

import contextlib
import gc
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from notifier.matching.matcher import NO_COUNCIL, FilterLoader, SubscriptionIndex, filter_from_row, match_events
from notifier.settings import Settings
from tests.factories import Factory


async def _deliveries(pool: asyncpg.Pool) -> list[tuple[int, int, str, list[str]]]:
    rows = await pool.fetch(
        "select subscription_id, event_id, status, matched_terms from deliveries order by subscription_id, event_id"
    )
    return [(r["subscription_id"], r["event_id"], r["status"], list(r["matched_terms"])) for r in rows]


async def test_match_events_topic_across_councils(pool: asyncpg.Pool, factory: Factory, settings: Settings) -> None:
    await factory.council("rutland", region="East Midlands")
    await factory.council("kent", region="South East")
    alice = await factory.subscriber("alice@example.org")
    em = await factory.subscription(alice, query='dementia OR "mental health"', regions=["East Midlands"])
    everywhere = await factory.subscription(alice, query="dementia")
    e1 = await factory.event(council="leicestershire", title="LLR Joint Living Well Dementia Strategy 2024-2028")
    e2 = await factory.event(council="kent", title="Dementias in Kent", committee="Cabinet")
    await factory.event(council="rutland", title="Planning applications", committee="Planning")
    result = await match_events(pool, SubscriptionIndex(), settings)
    assert result.events == 3
    assert await _deliveries(pool) == [
        (em, e1, "pending", ["dementia"]),
        (everywhere, e1, "pending", ["dementia"]),
        (everywhere, e2, "pending", ["dementia"]),
    ]


async def test_match_events_twice_writes_nothing_twice(
    pool: asyncpg.Pool, factory: Factory, settings: Settings
) -> None:
    sub = await factory.subscription(await factory.subscriber(), councils=[await factory.council()])
    await factory.event()
    index = SubscriptionIndex()
    assert (await match_events(pool, index, settings)).deliveries == 1
    # the cursor moved: a second run sees nothing; and with the cursor rewound, ON CONFLICT keeps one row
    assert (await match_events(pool, index, settings)).events == 0
    await pool.execute("update cursors set position = 0")
    again = await match_events(pool, SubscriptionIndex(), settings)
    assert again.events == 1 and again.deliveries == 0
    assert len(await _deliveries(pool)) == 1
    assert (await _deliveries(pool))[0][0] == sub


async def test_match_events_no_flood_of_the_past(pool: asyncpg.Pool, factory: Factory, settings: Settings) -> None:
    council = await factory.council()
    old = await factory.event(occurred_at=datetime.now(UTC) - timedelta(hours=2))
    sub = await factory.subscription(
        await factory.subscriber(), councils=[council], created_at=datetime.now(UTC) - timedelta(hours=1)
    )
    new = await factory.event()
    await match_events(pool, SubscriptionIndex(), settings)
    assert [(s, e) for s, e, _, _ in await _deliveries(pool)] == [(sub, new)]
    assert old < new


async def test_match_events_skips_unconfirmed_and_inactive(
    pool: asyncpg.Pool, factory: Factory, settings: Settings
) -> None:
    council = await factory.council()
    await factory.subscription(await factory.subscriber("p@example.org", status="pending"), councils=[council])
    await factory.subscription(await factory.subscriber("u@example.org"), councils=[council], confirmed=False)
    await factory.subscription(await factory.subscriber("x@example.org", status="unsubscribed"), councils=[council])
    paused = await factory.subscription(await factory.subscriber("z@example.org"), councils=[council])
    await pool.execute("update subscriptions set paused_until = now() + interval '1 day' where id = $1", paused)
    await factory.event()
    await match_events(pool, SubscriptionIndex(), settings)
    assert [(s, status) for s, _, status, _ in await _deliveries(pool)] == [(paused, "skipped")]


async def test_match_events_index_follows_subscription_changes(
    pool: asyncpg.Pool, factory: Factory, settings: Settings
) -> None:
    council = await factory.council()
    index = SubscriptionIndex()
    await match_events(pool, index, settings)  # builds the (empty) index
    subscriber = await factory.subscriber()
    sub = await factory.subscription(subscriber, query="asthma", councils=[council])
    first = await factory.event(title="Respiratory health and asthma")
    await match_events(pool, index, settings)
    await pool.execute("update subscriptions set query = 'housing' where id = $1", sub)
    await factory.event(title="Asthma again")
    third = await factory.event(title="Housing and homelessness")
    await match_events(pool, index, settings)
    assert [(s, e) for s, e, _, _ in await _deliveries(pool)] == [(sub, first), (sub, third)]
    await pool.execute("delete from subscriptions where id = $1", sub)
    other = await factory.subscription(subscriber, query="homes", councils=[council])
    fifth = await factory.event(title="Housing once more, and new homes")
    await match_events(pool, index, settings)
    assert [(s, e) for s, e, _, _ in await _deliveries(pool)] == [(other, fifth)]
    assert sub not in index.percolator


async def test_match_events_crash_before_cursor_moves_duplicates_nothing(
    pool: asyncpg.Pool, factory: Factory, settings: Settings, monkeypatch: Any
) -> None:
    import notifier.matching.matcher as matching

    await factory.subscription(await factory.subscriber(), councils=[await factory.council()])
    await factory.event()
    real = matching._write_deliveries

    async def write_then_die(*args: Any, **kwargs: Any) -> int:
        await real(*args, **kwargs)
        raise RuntimeError("worker killed between writing deliveries and moving the cursor")

    monkeypatch.setattr(matching, "_write_deliveries", write_then_die)
    with contextlib.suppress(RuntimeError):
        await match_events(pool, SubscriptionIndex(), settings)
    monkeypatch.setattr(matching, "_write_deliveries", real)
    assert await _deliveries(pool) == []  # the transaction rolled back with the cursor
    await match_events(pool, SubscriptionIndex(), settings)
    assert len(await _deliveries(pool)) == 1


async def test_match_events_then_email_sent(
    pool: asyncpg.Pool, factory: Factory, smtp_server: Any, run_jobs: Any, redis: Any
) -> None:
    council = await factory.council()
    await factory.subscription(await factory.subscriber("alice@example.org"), query="dementia", councils=[council])
    await factory.event(title="Dementia strategy progress report", url="https://democracy.leics.gov.uk/x")
    await redis.enqueue_job("match_events")
    await run_jobs()
    [message] = smtp_server.to("alice@example.org")
    assert "Dementia" in str(message["Subject"])
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    rows = await pool.fetch("select status, message_id from deliveries")
    assert [r["status"] for r in rows] == ["sent"]


def _row(sub_id: int, query: str = "", councils: list[str] | None = None) -> dict[str, Any]:
    return {"id": sub_id, "query": query, "councils": councils or [], "regions": [], "committees": [], "kinds": [],
            "event_types": []}


def test_filter_loader_shares_equal_rows_and_keeps_logging_bad_ones(caplog: Any) -> None:
    loader = FilterLoader()
    a = loader.filter(_row(1, "dementia", ["kent"]))
    assert loader.filter(_row(2, "dementia", ["kent"])) is a  # one Filter, so one index entry for both
    other = loader.filter(_row(3, "dementia", ["rutland"]))
    assert other is not a and other.query is a.query  # the query text parsed once
    assert a == filter_from_row(_row(1, "dementia", ["kent"]))
    with caplog.at_level(logging.ERROR, logger="notifier.matching.matcher"):
        bad = [loader.filter(_row(sub_id, "(unclosed")) for sub_id in (4, 5)]
    assert bad[0] is bad[1] and bad[0].councils == frozenset({NO_COUNCIL})
    assert [r.getMessage().split()[1] for r in caplog.records] == ["4", "5"]  # each subscription is reported


async def test_match_events_loads_in_chunks_and_shared_filters_stay_apart(
    pool: asyncpg.Pool, factory: Factory, settings: Settings, monkeypatch: Any
) -> None:
    import notifier.matching.matcher as matching

    monkeypatch.setattr(matching, "LOAD_CHUNK", 2)
    council = await factory.council()
    earlier = await factory.event(title="Warm-up", occurred_at=datetime.now(UTC) - timedelta(days=1))
    await match_events(pool, SubscriptionIndex(), settings)  # moves the cursor past the warm-up event
    alice, bob = await factory.subscriber("a@example.org"), await factory.subscriber("b@example.org")
    subs = [await factory.subscription(s, query="dementia", councils=[council]) for s in (alice, bob)]
    subs += [await factory.subscription(alice, query=f"topic{n}", councils=[council]) for n in range(3)]
    index = SubscriptionIndex()
    was_enabled = gc.isenabled()
    try:
        assert await index.refresh(pool) == 5
    finally:
        gc.unfreeze()
    assert gc.isenabled() == was_enabled
    assert index.percolator.observed_events == 1  # the recent event was observed for term frequencies
    assert len(index.percolator) == 5 and index.percolator.distinct_filters == 4
    first = await factory.event(title="Dementia services")
    await match_events(pool, index, settings)
    assert [(s, e) for s, e, _, _ in await _deliveries(pool)] == [(subs[0], first), (subs[1], first)]
    # one of two subscriptions sharing a filter goes (its deliveries with it): the other still matches
    await pool.execute("delete from subscriptions where id = $1", subs[0])
    second = await factory.event(title="Dementia strategy")
    await match_events(pool, index, settings)
    assert [(s, e) for s, e, _, _ in await _deliveries(pool)] == [(subs[1], first), (subs[1], second)]
    assert earlier < first


async def test_index_sees_a_change_that_commits_after_a_later_numbered_one(
    pool: asyncpg.Pool, factory: Factory, settings: Settings
) -> None:
    council = await factory.council()
    subscriber = await factory.subscriber()
    index = SubscriptionIndex()
    await index.refresh(pool)
    async with pool.acquire() as slow:
        tx = slow.transaction()
        await tx.start()
        # takes the lower change number, but commits last
        late = await slow.fetchval(
            """insert into subscriptions (subscriber_id, query, councils, channel, frequency, feed_token, confirmed_at)
               values ($1, 'asthma', $2, 'email', 'immediate', 'late-token', now()) returning id""",
            subscriber, [council],
        )
        early = await factory.subscription(subscriber, query="housing", councils=[council])
        await index.refresh(pool)
        assert early in index.percolator and late not in index.percolator
        await tx.commit()
    await index.refresh(pool)
    assert late in index.percolator
    assert await index.refresh(pool) == 0  # each change is applied once


async def test_index_load_that_fails_half_way_leaves_nothing_behind(
    pool: asyncpg.Pool, factory: Factory, monkeypatch: Any
) -> None:
    council = await factory.council()
    subscriber = await factory.subscriber()
    subs = [await factory.subscription(subscriber, query=f"topic{n}", councils=[council]) for n in range(4)]
    index = SubscriptionIndex()
    real = FilterLoader.filter
    made = 0

    def fail_on_the_third(self: FilterLoader, row: Any) -> Any:
        nonlocal made
        made += 1
        if made == 3:
            raise ConnectionError("the connection dropped mid-load")
        return real(self, row)

    monkeypatch.setattr(FilterLoader, "filter", fail_on_the_third)
    with contextlib.suppress(ConnectionError):
        await index.refresh(pool)
    assert not index.loaded and len(index.percolator) == 0
    monkeypatch.setattr(FilterLoader, "filter", real)
    await pool.execute("delete from subscriptions where id = $1", subs[0])  # deleted between the two loads
    assert await index.refresh(pool) == 3
    assert subs[0] not in index.percolator and all(s in index.percolator for s in subs[1:])
