"""A sending pass's contents (`mailer._Run.template`): each rendered once however many recipients ask for it at the
same time, a failure given to every one of them, and a rendering cut short left for the next to ask (or made by
one of those waiting for it)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from notifier.delivery.email.mailer import _Run
from notifier.delivery.email.merge import MergeTemplate


def a_run() -> _Run:
    return _Run(None, cast(Any, None), cast(Any, None))


async def test_a_content_asked_for_at_once_is_rendered_once() -> None:
    run, made = a_run(), []
    done = asyncio.Event()

    async def make() -> MergeTemplate:
        made.append(1)
        await done.wait()
        return cast(MergeTemplate, "template")

    asks = [asyncio.ensure_future(run.template("key", make)) for _ in range(3)]
    await asyncio.sleep(0)
    done.set()
    assert await asyncio.gather(*asks) == ["template"] * 3
    assert await run.template("key", make) == "template"
    assert made == [1]


async def test_a_failed_rendering_fails_everyone_who_asked() -> None:
    run = a_run()
    done = asyncio.Event()

    async def make() -> MergeTemplate:
        await done.wait()
        raise ValueError("bad row")

    asks = [asyncio.ensure_future(run.template("key", make)) for _ in range(2)]
    await asyncio.sleep(0)
    done.set()
    outcomes = await asyncio.gather(*asks, return_exceptions=True)
    assert [type(o) for o in outcomes] == [ValueError, ValueError]
    with pytest.raises(ValueError, match="bad row"):
        await run.template("key", make)


async def test_a_rendering_cut_short_is_made_by_the_next_to_ask() -> None:
    run = a_run()
    started = asyncio.Event()

    async def stalls() -> MergeTemplate:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("not reached")

    first = asyncio.ensure_future(run.template("key", stalls))
    await started.wait()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first

    async def make() -> MergeTemplate:
        return cast(MergeTemplate, "template")

    assert await run.template("key", make) == "template"


async def test_a_rendering_cut_short_is_made_by_one_of_those_waiting() -> None:
    run, made = a_run(), []
    started = asyncio.Event()

    async def stalls() -> MergeTemplate:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("not reached")

    async def make() -> MergeTemplate:
        made.append(1)
        return cast(MergeTemplate, "template")

    first = asyncio.ensure_future(run.template("key", stalls))
    await started.wait()
    waiting = [asyncio.ensure_future(run.template("key", make)) for _ in range(2)]
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await asyncio.gather(*waiting) == ["template"] * 2
    assert made == [1]  # the first of them to wake renders it; the other waits for that


async def test_an_asker_cancelled_while_waiting_leaves_the_rendering_alone() -> None:
    run = a_run()
    done = asyncio.Event()

    async def make() -> MergeTemplate:
        await done.wait()
        return cast(MergeTemplate, "template")

    first = asyncio.ensure_future(run.template("key", make))
    await asyncio.sleep(0)
    waiting = asyncio.ensure_future(run.template("key", make))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    done.set()
    assert await first == "template"
