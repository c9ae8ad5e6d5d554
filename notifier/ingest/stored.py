"""What is stored of a poll's records, read back in one query for the diff and the bookkeeping."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from notifier.ingest.diff import Key
from notifier.models import ItemKind
from notifier.sources.base import Record


@dataclass(frozen=True, slots=True)
class Stored:
    """A stored item this poll has a record for: its id, hash and data, and, when its content changed, the whole
    stored record (for the diff)."""

    id: int
    content_hash: str
    data: Any
    parent_missing: bool
    record: Record | None
    # When the content changed: the key of its stored parent, when that parent is an item of the same source (the
    # only parent `write_poll` links to), so a record whose parent stayed the same is not linked again.
    parent: Key | None = None


async def read_stored(
    conn: asyncpg.Connection, source_id: int, records: Sequence[Record], hashes: Mapping[Key, str]
) -> dict[Key, Stored]:
    """What is stored of this poll's records, in one read. The text of an item whose hash matches this poll's is
    not sent back: it is not needed, and it is most of the bytes."""
    if not records:
        return {}
    rows = await conn.fetch(
        """
        select i.id, i.kind, i.external_id, i.content_hash, i.data, i.parent_id, i.content_hash = t.hash as same,
               case when i.content_hash = t.hash then null else i.title end as title,
               case when i.content_hash = t.hash then null else i.body end as body,
               i.committee, i.committee_id, i.starts_at, i.status, i.url, i.published_at
        from unnest($2::text[], $3::text[], $4::text[]) as t(kind, external_id, hash)
        join items i on i.source_id = $1 and i.kind = t.kind and i.external_id = t.external_id
        """,
        source_id,
        [r.kind.value for r in records],
        [r.external_id for r in records],
        [hashes[(r.kind, r.external_id)] for r in records],
    )
    parent_ids = {r["parent_id"] for r in rows if r["parent_id"] is not None and not r["same"]}
    parents: dict[int, tuple[str, str]] = {}
    linked: set[int] = set()
    if parent_ids:
        for p in await conn.fetch(
            "select id, kind, external_id, source_id from items where id = any($1::bigint[])", list(parent_ids)
        ):
            parents[p["id"]] = (p["kind"], p["external_id"])
            if p["source_id"] == source_id:
                linked.add(p["id"])
    stored: dict[Key, Stored] = {}
    for row in rows:
        record = None if row["same"] else _row_to_record(row, parents)
        parent = record.parent if record is not None and row["parent_id"] in linked else None
        stored[(ItemKind(row["kind"]), row["external_id"])] = Stored(
            row["id"], row["content_hash"], row["data"], row["parent_id"] is None, record, parent
        )
    return stored


def _row_to_record(row: Mapping[str, Any], parents: Mapping[int, tuple[str, str]]) -> Record:
    parent = parents.get(row["parent_id"]) if row["parent_id"] is not None else None
    return Record(
        kind=ItemKind(row["kind"]),
        external_id=row["external_id"],
        title=row["title"],
        committee=row["committee"],
        committee_id=row["committee_id"],
        body=row["body"],
        starts_at=row["starts_at"],
        status=row["status"],
        url=row["url"],
        parent=(ItemKind(parent[0]), parent[1]) if parent else None,
        published_at=row["published_at"],
        data=row["data"],
    )
