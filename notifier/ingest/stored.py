"""What is stored of a poll's records, read back in one query for the diff and the bookkeeping."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from notifier.ingest.normalise import Key, content_hash
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
    conn: asyncpg.Connection, source_id: int, records: Sequence[Record], hashes: dict[Key, str]
) -> dict[Key, Stored]:
    """What is stored of this poll's records, and the content hash of each of them that is stored (added to
    `hashes`; a record seen for the first time is hashed when it is written, so on a first sight the hashing is
    done while PostgreSQL inserts). The text of an item whose hash matches is not read: it is not needed, and it
    is most of the bytes."""
    if not records:
        return {}
    read = asyncio.ensure_future(
        conn.fetch(
            """
            select i.id, i.kind, i.external_id, i.content_hash, i.data, i.parent_id
            from unnest($2::text[], $3::text[]) as t(kind, external_id)
            join items i on i.source_id = $1 and i.kind = t.kind and i.external_id = t.external_id
            """,
            source_id,
            [r.kind.value for r in records],
            [r.external_id for r in records],
        )
    )
    try:
        await _hash_while(read, records, hashes)
    except BaseException:
        # The connection must not be left mid-query.
        with contextlib.suppress(Exception):
            await read
        raise
    rows = await read
    by_key = {(r.kind, r.external_id): r for r in records}
    changed: list[int] = []
    for row in rows:
        key = (ItemKind(row["kind"]), row["external_id"])
        if hashes.get(key) is None:
            hashes[key] = content_hash(by_key[key])
        if hashes[key] != row["content_hash"]:
            changed.append(row["id"])
    texts: dict[int, asyncpg.Record] = {}
    if changed:
        for text in await conn.fetch(
            """
            select i.id, i.title, i.body, i.committee, i.committee_id, i.starts_at, i.status, i.url, i.published_at,
                   p.kind as parent_kind, p.external_id as parent_external_id, p.source_id = $2 as parent_here
            from items i left join items p on p.id = i.parent_id
            where i.id = any($1::bigint[])
            """,
            changed,
            source_id,
        ):
            texts[text["id"]] = text
    stored: dict[Key, Stored] = {}
    for row in rows:
        record = parent = None
        if (text := texts.get(row["id"])) is not None:
            record = _row_to_record(row, text)
            parent = record.parent if text["parent_here"] else None
        stored[(ItemKind(row["kind"]), row["external_id"])] = Stored(
            row["id"], row["content_hash"], row["data"], row["parent_id"] is None, record, parent
        )
    return stored


async def _hash_while(read: asyncio.Future[Any], records: Sequence[Record], hashes: dict[Key, str]) -> None:
    """Hash records while PostgreSQL answers `read`, and no longer: on a re-poll the answer is every record's row
    and the hashing is done by the time it has come; on a first sight it comes at once, and the records left are
    hashed as they are inserted, while PostgreSQL works."""
    for n in range(0, len(records), _HASHED_BETWEEN_LOOKS):
        # Let the event loop take in what has come of the answer.
        await asyncio.sleep(0)
        if read.done():
            return
        for r in records[n : n + _HASHED_BETWEEN_LOOKS]:
            hashes[(r.kind, r.external_id)] = content_hash(r)


# About a millisecond of hashing between looks at the answer.
_HASHED_BETWEEN_LOOKS = 64


def _row_to_record(row: Mapping[str, Any], text: Mapping[str, Any]) -> Record:
    kind = text["parent_kind"]
    return Record(
        kind=ItemKind(row["kind"]),
        external_id=row["external_id"],
        title=text["title"],
        committee=text["committee"],
        committee_id=text["committee_id"],
        body=text["body"],
        starts_at=text["starts_at"],
        status=text["status"],
        url=text["url"],
        parent=(ItemKind(kind), text["parent_external_id"]) if kind is not None else None,
        published_at=text["published_at"],
        data=row["data"],
    )
