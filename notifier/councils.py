"""Councils and their sources: the registry operators manage from the command line and partners read via the API."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from typing import Any

import asyncpg

from notifier.models import SourceKind
from notifier.zones import time_zone

REGISTRY_CSV = "moderngov-councils.csv"


class RegistryError(Exception):
    """Bad input for the council registry (unknown council, bad slug, malformed CSV...)."""


def slugify(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    folded = folded.replace("&", " and ")
    return re.sub(r"[^a-z0-9]+", "-", folded).strip("-")


def _check_slug(slug: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", slug):
        raise RegistryError(f"bad council slug {slug!r}: use lowercase letters, digits and hyphens")
    return slug


def _check_zone(tz: str) -> str:
    try:
        time_zone(tz)
    except ValueError as e:
        raise RegistryError(str(e)) from e
    return tz


async def add_council(
    conn: asyncpg.Connection | asyncpg.Pool,
    slug: str,
    name: str,
    *,
    region: str | None = None,
    nation: str | None = None,
    timezone: str = "Europe/London",
    website: str | None = None,
) -> bool:
    """Add a council, or update its name, region and website if it exists. True if it was new."""
    inserted: bool = await conn.fetchval(
        """
        insert into councils (slug, name, region, nation, timezone, website)
        values ($1, $2, $3, $4, $5, $6)
        on conflict (slug) do update
        set name = excluded.name, region = coalesce(excluded.region, councils.region),
            nation = coalesce(excluded.nation, councils.nation), timezone = excluded.timezone,
            website = coalesce(excluded.website, councils.website)
        returning (xmax = 0)
        """,
        _check_slug(slug),
        name,
        region,
        nation,
        _check_zone(timezone),
        website,
    )
    return inserted


async def add_source(
    conn: asyncpg.Connection | asyncpg.Pool,
    council: str,
    kind: str,
    url: str,
    *,
    interval_minutes: int = 30,
    options: dict[str, Any] | None = None,
    enabled: bool = True,
) -> int:
    """Add a source (or return the existing one with the same council, kind and URL). Returns its id."""
    try:
        kind = SourceKind(kind).value
    except ValueError as e:
        raise RegistryError(f"unknown source kind {kind!r}; one of {', '.join(k.value for k in SourceKind)}") from e
    if not url.startswith(("http://", "https://")):
        raise RegistryError(f"source URL must be http(s): {url!r}")
    if interval_minutes < 1:
        raise RegistryError("interval must be at least 1 minute")
    if await conn.fetchval("select 1 from councils where slug = $1", council) is None:
        raise RegistryError(f"no council {council!r}; add it first with `notifier councils add`")
    source_id: int = await conn.fetchval(
        """
        insert into sources (council, kind, url, options, poll_interval, enabled)
        values ($1, $2, $3, $4, $5, $6)
        on conflict (council, kind, url) do update set poll_interval = excluded.poll_interval
        returning id
        """,
        council,
        kind,
        url.rstrip("/"),
        options or {},
        timedelta(minutes=interval_minutes),
        enabled,
    )
    return source_id


@dataclass(frozen=True)
class RegistryRow:
    name: str
    url: str
    nation: str | None
    region: str | None

    @property
    def slug(self) -> str:
        return slugify(self.name)


def read_registry(text: str) -> list[RegistryRow]:
    """Parse a registry CSV (`name,moderngov_url,nation,region`), with a clear error naming the bad line."""
    # A spreadsheet's UTF-8 export starts with a byte order mark, and headers come in any case and spacing.
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    if reader.fieldnames is not None:
        reader.fieldnames = [(f or "").strip().lower() for f in reader.fieldnames]
    required = {"name", "moderngov_url"}
    if reader.fieldnames is None or not required <= set(reader.fieldnames):
        raise RegistryError(f"registry CSV needs the columns {sorted(required)} (and optionally nation, region)")
    rows = []
    for n, raw in enumerate(reader, start=2):
        name = (raw.get("name") or "").strip()
        url = (raw.get("moderngov_url") or "").strip().rstrip("/")
        if not name or not url.startswith(("http://", "https://")):
            raise RegistryError(f"line {n}: needs a name and an http(s) moderngov_url, got {raw!r}")
        rows.append(
            RegistryRow(name, url, (raw.get("nation") or "").strip() or None, (raw.get("region") or "").strip() or None)
        )
    return rows


def bundled_registry() -> str:
    return resources.files("notifier.data").joinpath(REGISTRY_CSV).read_text(encoding="utf-8")


async def import_registry(pool: asyncpg.Pool, text: str) -> tuple[int, int]:
    """Load councils, each with a ModernGov source and a decisions source, disabled until an operator enables them.

    Returns (councils added, sources added). Running it again changes nothing that an operator set.
    """
    rows = read_registry(text)
    councils_added = sources_added = 0
    async with pool.acquire() as conn, conn.transaction():
        for row in rows:
            # A council already registered keeps its name and time zone; the registry only fills in what is missing.
            added: bool = await conn.fetchval(
                """
                insert into councils (slug, name, region, nation, website)
                values ($1, $2, $3, $4, $5)
                on conflict (slug) do update
                set region = coalesce(councils.region, excluded.region),
                    nation = coalesce(councils.nation, excluded.nation),
                    website = coalesce(councils.website, excluded.website)
                returning (xmax = 0)
                """,
                _check_slug(row.slug),
                row.name,
                row.region,
                row.nation,
                row.url,
            )
            councils_added += added
            for kind in (SourceKind.MODERNGOV, SourceKind.MODERNGOV_DECISIONS):
                new = await conn.fetchval(
                    """
                    insert into sources (council, kind, url, enabled) values ($1, $2, $3, false)
                    on conflict (council, kind, url) do nothing
                    returning id
                    """,
                    row.slug,
                    kind.value,
                    row.url,
                )
                sources_added += new is not None
    return councils_added, sources_added


async def set_sources_enabled(
    pool: asyncpg.Pool,
    enabled: bool,
    *,
    council: str | None = None,
    source_id: int | None = None,
    all_sources: bool = False,
) -> int:
    """Enable or disable the sources of one council, one source or every source; returns how many changed."""
    if sum(x is not None and x is not False for x in (council, source_id, all_sources or None)) != 1:
        raise RegistryError("name exactly one of --council, --id or --all")
    if council is not None and await pool.fetchval("select 1 from councils where slug = $1", council) is None:
        raise RegistryError(f"no council {council!r}")
    if source_id is not None and await pool.fetchval("select 1 from sources where id = $1", source_id) is None:
        raise RegistryError(f"no source {source_id}")
    result: str = await pool.execute(
        """
        update sources set enabled = $1, next_poll_at = case when $1 then now() else next_poll_at end
        where ($2::text is null or council = $2) and ($3::bigint is null or id = $3) and enabled <> $1
        """,
        enabled,
        council,
        source_id,
    )
    return int(result.split()[-1])


async def list_sources(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        """
        select s.id, s.council, s.kind, s.url, s.enabled, extract(epoch from s.poll_interval)::int / 60 as interval,
               s.next_poll_at, s.last_success_at, s.last_error, s.last_error_at, s.consecutive_failures,
               (select count(*) from items i where i.source_id = s.id) as items
        from sources s
        order by s.council, s.kind, s.id
        """
    )
    return [dict(r) for r in rows]


async def list_councils(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        """
        select c.slug, c.name, c.region, c.nation, c.timezone, c.website,
               count(s.id) as sources, count(s.id) filter (where s.enabled) as enabled_sources,
               max(s.last_success_at) as last_success_at,
               coalesce(max(s.consecutive_failures), 0) as worst_failure_streak
        from councils c left join sources s on s.council = c.slug
        group by c.slug
        order by c.slug
        """
    )
    return [dict(r) for r in rows]
