"""The test harness: real PostgreSQL and Redis, a real SMTP server, fake council servers, an in-process worker.

PostgreSQL and Redis come from NOTIFIER_TEST_DATABASE_URL / NOTIFIER_TEST_REDIS_URL, defaulting to the local servers
(127.0.0.1:5432 with trust auth, 127.0.0.1:6379); when those do not answer, embedded ones are started instead, so the
suite passes on any machine with Python. Each run gets a fresh database built by the migration runner; each test
starts from empty tables.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from arq import create_pool as create_arq_pool
from arq.connections import ArqRedis, RedisSettings

from notifier.db import create_pool, migrate
from notifier.embedded import EmbeddedPostgres, EmbeddedRedis
from notifier.settings import Settings
from tests.servers import CouncilServer, SmtpServer, WebhookReceiver

DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/0"

# Tables emptied between tests; schema_migrations stays.
TABLES = [
    "webhook_attempts",
    "deliveries",
    "subscriptions",
    "webhook_endpoints",
    "suppressions",
    "subscribers",
    "partners",
    "events",
    "items",
    "poll_runs",
    "sources",
    "councils",
    "cursors",
    "subscription_changes",
    "worker_heartbeats",
    "websub_requests",
]


async def _answers_postgres(url: str) -> bool:
    try:
        conn = await asyncio.wait_for(asyncpg.connect(url), 3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


async def _answers_redis(url: str) -> bool:
    try:
        redis = await create_arq_pool(_quick(url))
    except Exception:
        return False
    try:
        await redis.ping()
        return True
    except Exception:
        return False
    finally:
        await redis.aclose()


def _quick(url: str) -> RedisSettings:
    s = RedisSettings.from_dsn(url)
    s.conn_retries = 0
    s.conn_timeout = 2
    return s


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture(scope="session")
def embedded_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="notifier-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
async def database_url(embedded_dir: Path) -> AsyncIterator[str]:
    """A fresh database for this run, migrated by the same runner the service uses."""
    base = os.environ.get("NOTIFIER_TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)
    embedded: EmbeddedPostgres | None = None
    if not await _answers_postgres(base):
        embedded = EmbeddedPostgres(embedded_dir)
        base = await asyncio.to_thread(embedded.start)
    name = f"notifier_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(base)
    await admin.execute(f'create database "{name}"')
    await admin.close()
    if "host=" in base:  # a unix-socket URL (embedded): keep the query, swap the path
        parts = urlsplit(base)
        url = urlunsplit(parts._replace(path="/" + name))
    else:
        url = _with_database(base, name)
    await migrate(url)
    yield url
    admin = await asyncpg.connect(base)
    await admin.execute(f'drop database if exists "{name}" with (force)')
    await admin.close()
    if embedded is not None:
        await asyncio.to_thread(embedded.stop)


@pytest.fixture(scope="session")
async def redis_url(embedded_dir: Path) -> AsyncIterator[str]:
    url = os.environ.get("NOTIFIER_TEST_REDIS_URL", DEFAULT_TEST_REDIS_URL)
    embedded: EmbeddedRedis | None = None
    if not await _answers_redis(url):
        embedded = EmbeddedRedis(embedded_dir)
        url = await asyncio.to_thread(embedded.start)
    yield url
    if embedded is not None:
        await asyncio.to_thread(embedded.stop)


@pytest.fixture(scope="session")
async def session_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, min_size=1, max_size=10)
    yield pool
    await pool.close()


@pytest.fixture
async def pool(session_pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Pool]:
    """The database pool, with every table empty at the start of the test."""
    await session_pool.execute(f"truncate {', '.join(TABLES)} restart identity cascade")
    yield session_pool


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[ArqRedis]:
    r = await create_arq_pool(RedisSettings.from_dsn(redis_url))
    await r.flushdb()
    yield r
    await r.aclose()


@pytest.fixture
async def queue(redis_url: str) -> AsyncIterator[tuple[str, ArqRedis]]:
    """The run's Redis database as a queue for worker processes the test starts: (its URL, a client). A worker
    process takes whatever jobs it finds, so the database is emptied before and after; tests in a run go one at a
    time, and each run is given its own database."""
    redis = await create_arq_pool(RedisSettings.from_dsn(redis_url))
    await redis.flushdb()
    yield redis_url, redis
    await redis.flushdb()
    await redis.aclose()


@pytest.fixture
async def smtp_server() -> AsyncIterator[SmtpServer]:
    server = SmtpServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def council_server() -> AsyncIterator[CouncilServer]:
    server = CouncilServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    """A partner's server that verifies every webhook request with the `standardwebhooks` reference library."""
    r = WebhookReceiver()
    await r.start()
    yield r
    await r.stop()


@pytest.fixture
def settings(database_url: str, redis_url: str, smtp_server: SmtpServer, tmp_path: Path) -> Settings:
    return make_settings(database_url, redis_url, smtp_server.url, tmp_path)


def make_settings(database_url: str, redis_url: str, smtp_url: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": redis_url,
        "smtp_url": smtp_url,
        "data_dir": data_dir,
        "base_url": "http://notifier.test",
        "secret_key": "test-secret-key-" + "x" * 32,
        "mail_from": "Council alerts <alerts@notifier.test>",
        "webhook_allow_private_targets": True,
        "poll_connect_timeout": 2.0,
        "poll_total_timeout": 5.0,
        "alert_batch_seconds": 0,
        # No documents job runs in most tests: their document events are matched at once rather than held for
        # text that never comes. The documents' own tests (tests/ingest/test_documents*.py) wait as a service does.
        "document_text_wait_seconds": 0,
        "feed_fresh_seconds": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def run_jobs(settings: Settings, redis: ArqRedis) -> Any:
    """Run the worker in-process in burst mode until the queue is empty: `await run_jobs()`.

    Cron jobs are off (tests enqueue what they need); the worker's context is built and torn down each call, as a
    fresh worker process would.
    """
    from notifier.worker import build_worker

    async def run(**overrides: Any) -> int:
        worker = build_worker(
            settings.model_copy(update=overrides) if overrides else settings,
            burst=True,
            with_cron=False,
            redis_pool=redis,
        )
        try:
            await worker.async_run()
            return worker.jobs_complete
        finally:
            # not worker.close(): that would close the test's Redis pool too
            if worker.on_shutdown is not None:
                await worker.on_shutdown(worker.ctx)

    return run


@pytest.fixture
def factory(pool: asyncpg.Pool) -> Any:
    from tests.factories import Factory

    return Factory(pool)
