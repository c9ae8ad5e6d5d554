"""A worker process killed (SIGKILL) while it extracts a document loses nothing: its claim runs out, the document is
downloaded and extracted again by the next worker, and its event is matched once, with the text.

The worker is a real process running one pass of the documents job on real PostgreSQL; it is killed once its
extraction child is running (the child is frozen first, so the extraction is certainly under way and unfinished).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from notifier.ingest.documents import release_expired_documents
from notifier.matching.matcher import SubscriptionIndex, match_events
from notifier.settings import Settings
from tests.factories import Factory
from tests.ingest.test_documents import REPORT, fetch
from tests.servers import CouncilServer

LEASE_SECONDS = 3
_PASS = """
import asyncio

from notifier.db import create_pool
from notifier.ingest.documents import fetch_due_documents
from notifier.ingest.fetch import Fetcher, client_session
from notifier.settings import Settings


async def main() -> None:
    settings = Settings(_env_file=None)
    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    async with client_session(settings) as session:
        print(await fetch_due_documents(pool, Fetcher(session, settings), settings), flush=True)


asyncio.run(main())
"""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The tests' settings, with the service's own wait for documents' text."""
    return settings.model_copy(update={"document_text_wait_seconds": 900})


def extraction_child(parent: int) -> int | None:
    """The id of `parent`'s child running the extraction module, if it has one (from /proc)."""
    for task in Path(f"/proc/{parent}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except FileNotFoundError:
            continue
        for pid in children:
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            if b"notifier.documents.child" in command:
                return int(pid)
    return None


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """One pass of the documents job in a process of its own, its output kept in `log`."""
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-c", _PASS], env=env, stdout=out, stderr=out)  # our own command


async def wait_for_child(worker: subprocess.Popen[bytes], timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while (child := extraction_child(worker.pid)) is None:
        if worker.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"the worker started no extraction (exit status {worker.poll()})")
        await asyncio.sleep(0.002)
    return child


async def test_documents_worker_killed_mid_extraction_loses_nothing(
    pool: asyncpg.Pool, factory: Factory, council_server: CouncilServer, settings: Settings, tmp_path: Path
) -> None:
    council_server.set("/paper.pdf", REPORT, content_type="application/pdf")
    subscriber = await factory.subscriber()
    await factory.subscription(subscriber, query="respite")
    await factory.event(type="document.published", kind="document", title="Work programme",
                        url=f"{council_server.url}/paper.pdf")  # fmt: skip
    index = SubscriptionIndex()
    assert (await match_events(pool, index, settings)).held == 1

    env = {**os.environ, "NOTIFIER_DATABASE_URL": settings.database_url, "NOTIFIER_REDIS_URL": settings.redis_url,
           "NOTIFIER_DATA_DIR": str(tmp_path), "NOTIFIER_DOCUMENT_LEASE_SECONDS": str(LEASE_SECONDS)}  # fmt: skip
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        child = await wait_for_child(worker)
        os.kill(child, signal.SIGSTOP)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    os.kill(child, signal.SIGKILL)  # an orphan now; a stopped process still dies of SIGKILL

    claim = await pool.fetchrow("select state, attempts, pages, content_hash, lease_until from document_texts")
    assert (claim["state"], claim["attempts"], claim["pages"], claim["content_hash"]) == ("fetching", 1, [], None)
    assert (await match_events(pool, index, settings)).deliveries == 0  # still waiting for the text

    # Nobody renews the dead worker's lease: once it runs out, the document is the next worker's.
    assert await release_expired_documents(pool, now=claim["lease_until"] - timedelta(seconds=1)) == 0
    later = claim["lease_until"] + timedelta(seconds=1)
    assert await release_expired_documents(pool, now=later) == 1
    done = await fetch(pool, settings, now=later)
    assert done.as_dict() == {"extracted": 1, "unchanged": 0, "retried": 0, "failed": 0}
    assert council_server.hits["/paper.pdf"] == 2
    result = await match_events(pool, index, settings)
    assert (result.deliveries, result.held) == (1, 0)
    snippets = await pool.fetchval("select snippets from deliveries")
    assert [(s["page"], "respite" in s["text"]) for s in snippets] == [(3, True)]
