from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from notifier import models
from notifier.db import MIGRATIONS_DIR, MigrationError, load_migrations, migrate


@pytest.fixture
async def empty_database(database_url: str):  # type: ignore[no-untyped-def]
    """A brand-new empty database next to the test database."""
    name = f"notifier_mig_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f'create database "{name}"')
    await admin.close()
    url = urlunsplit(urlsplit(database_url)._replace(path="/" + name))
    yield url
    admin = await asyncpg.connect(database_url)
    await admin.execute(f'drop database "{name}" with (force)')
    await admin.close()


async def test_migrate_applies_each_file_once(empty_database: str) -> None:
    first = await migrate(empty_database)
    assert first == [m.name for m in load_migrations()]
    assert await migrate(empty_database) == []
    conn = await asyncpg.connect(empty_database)
    rows = await conn.fetch("select name, checksum from schema_migrations order by name")
    await conn.close()
    assert [r["name"] for r in rows] == first
    assert all(len(r["checksum"]) == 64 for r in rows)


async def test_migrate_concurrent_runs_apply_once(empty_database: str) -> None:
    results = await asyncio.gather(*(migrate(empty_database) for _ in range(4)))
    applied = [name for r in results for name in r]
    assert sorted(applied) == sorted(m.name for m in load_migrations())


async def test_migrate_refuses_changed_applied_file(empty_database: str, tmp_path: Path) -> None:
    for m in load_migrations():
        (tmp_path / m.name).write_text(m.sql)
    await migrate(empty_database, tmp_path)
    first = sorted(tmp_path.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="has changed"):
        await migrate(empty_database, tmp_path)


async def test_migrate_applies_new_file_and_rolls_back_a_broken_one(empty_database: str, tmp_path: Path) -> None:
    for m in load_migrations():
        (tmp_path / m.name).write_text(m.sql)
    await migrate(empty_database, tmp_path)
    (tmp_path / "9998_good.sql").write_text("create table t_good (id int);")
    (tmp_path / "9999_bad.sql").write_text("create table t_half (id int); select nonsense_function();")
    with pytest.raises(asyncpg.PostgresError):
        await migrate(empty_database, tmp_path)
    conn = await asyncpg.connect(empty_database)
    names = {r["name"] for r in await conn.fetch("select name from schema_migrations")}
    half = await conn.fetchval("select to_regclass('t_half')")
    await conn.close()
    assert "9998_good.sql" in names and "9999_bad.sql" not in names
    assert half is None  # the failed file left nothing behind


@pytest.mark.parametrize(
    ("table_column", "enum"),
    [
        ("kind in ('moderngov'", models.SourceKind),
        ("kind in ('meeting'", models.ItemKind),
        ("status in ('pending', 'active'", models.SubscriberStatus),
        ("channel in (", models.Channel),
        ("frequency in (", models.Frequency),
        ("status in ('pending', 'sending'", models.DeliveryStatus),
        ("status in ('active', 'disabled'", models.EndpointStatus),
    ],
)
def test_schema_checks_match_python_enums(table_column: str, enum: type) -> None:
    import re

    # the newest migration that states the CHECK (a later one may widen it)
    sql = next(text for path in sorted(MIGRATIONS_DIR.glob("*.sql"), reverse=True)
               if table_column in (text := path.read_text()))
    start = sql.index(table_column)
    values = set(re.findall(r"'([^']+)'", sql[start : sql.index(")", start)]))
    assert values == {e.value for e in enum}  # type: ignore[attr-defined]


def test_schema_event_types_match_python_enum() -> None:
    import re

    sql = (MIGRATIONS_DIR / "0001_initial.sql").read_text()
    start = sql.index("type in (")
    values = set(re.findall(r"'([^']+)'", sql[start : sql.index("))", start)]))
    assert values == {e.value for e in models.EventType}


async def test_schema_delivery_unique_per_subscription_and_event(pool: asyncpg.Pool) -> None:
    await pool.execute("insert into councils (slug, name) values ('rutland', 'Rutland')")
    source = await pool.fetchval(
        "insert into sources (council, kind, url) values ('rutland', 'moderngov', 'https://x') returning id"
    )
    item = await pool.fetchval(
        "insert into items (source_id, kind, external_id, council, title, content_hash) "
        "values ($1, 'meeting', '1', 'rutland', 'Cabinet', 'h') returning id",
        source,
    )
    event = await pool.fetchval(
        "insert into events (type, item_id, council, summary) values ('meeting.scheduled', $1, 'rutland', 's') "
        "returning id",
        item,
    )
    sub = await pool.fetchval("insert into subscriptions (channel, feed_token) values ('feed', 'tok') returning id")
    insert = "insert into deliveries (subscription_id, event_id) values ($1, $2) on conflict do nothing returning id"
    assert await pool.fetchval(insert, sub, event) is not None
    assert await pool.fetchval(insert, sub, event) is None
    with pytest.raises(asyncpg.UniqueViolationError):
        await pool.execute(
            "insert into items (source_id, kind, external_id, council, title, content_hash) "
            "values ($1, 'meeting', '1', 'rutland', 'Again', 'h')",
            source,
        )
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute("update deliveries set status = 'lost'")
