"""PostgreSQL: the connection pool, the migration runner and a few small helpers."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

# Any fixed number works; it only has to be the same for every process that migrates this database.
MIGRATION_LOCK_KEY = 0x6E6F7469  # "noti"


class MigrationError(Exception):
    """The database's migration history does not agree with the files on disk."""


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb in and out as Python objects, so callers never json.dumps by hand.
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10, application_name: str | None = None
) -> asyncpg.Pool:
    """A pool; `application_name` names its sessions (a worker's id: what its claims record as their holder)."""
    settings = {"application_name": application_name} if application_name else None
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, server_settings=settings
    )
    if pool is None:  # only when the event loop is closing
        raise RuntimeError("could not create a database pool")
    return pool


async def connect(dsn: str) -> asyncpg.Connection:
    conn: asyncpg.Connection = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    files = sorted(p for p in directory.glob("*.sql") if p.name[:4].isdigit())
    return [Migration(p.name, p.read_text(encoding="utf-8")) for p in files]


async def migrate(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations in order, each in its own transaction; return the names applied.

    Safe to run from several processes at once: a session advisory lock serialises them, and each re-reads what is
    applied after taking it. Refuses to run if an applied file has since been edited.
    """
    migrations = load_migrations(directory)
    conn = await connect(dsn)
    applied_now: list[str] = []
    try:
        await conn.execute("select pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        try:
            await conn.execute(
                """
                create table if not exists schema_migrations (
                    name        text primary key,
                    checksum    text not null,
                    applied_at  timestamptz not null default now()
                )
                """
            )
            rows = await conn.fetch("select name, checksum from schema_migrations")
            applied = {r["name"]: r["checksum"] for r in rows}
            known = {m.name for m in migrations}
            for name in applied:
                if name not in known:
                    raise MigrationError(f"migration {name} is applied but its file is missing from {directory}")
            for m in migrations:
                if m.name in applied:
                    if applied[m.name] != m.checksum:
                        raise MigrationError(
                            f"migration {m.name} has changed since it was applied; migrations are forward-only, "
                            "add a new file instead"
                        )
                    continue
                async with conn.transaction():
                    await conn.execute(m.sql)
                    await conn.execute(
                        "insert into schema_migrations (name, checksum) values ($1, $2)", m.name, m.checksum
                    )
                log.info("applied migration %s", m.name)
                applied_now.append(m.name)
        finally:
            await conn.execute("select pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    finally:
        await conn.close()
    return applied_now


def record_dict(row: asyncpg.Record | None) -> dict[str, Any] | None:
    return dict(row) if row is not None else None
