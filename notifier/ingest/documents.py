"""Documents' text: download a published document with the polling client, extract its text page by page in a
limited child process, and store it where matching and history search read it.

A document item with a URL gets a `document_texts` row from a trigger on `items` (migrations/0003_documents.sql),
set pending when the item is new or its URL or declared size changes. `fetch_due_documents` claims pending rows
with `FOR UPDATE SKIP LOCKED` and a short lease that a `LeaseKeeper` renews while the worker lives: a worker killed
mid-download or mid-extraction stops renewing, `release_expired_documents` hands the row back, and the next claim
starts it again; nothing was stored half-way, so nothing is lost or doubled.

Unchanged documents cost nothing: the download is conditional (the last answer's ETag and Last-Modified), and bytes
whose sha256 is the one last extracted are not extracted again. A download or extraction that fails is retried on
`DOCUMENT_RETRY_DELAYS` (`out_of_memory` only once), then the row is marked `failed` with the reason (`encrypted`,
`no_text_layer`, `corrupt`, `too_large`, `timed_out`, `out_of_memory`, `download`, ...). A failure holds back
nothing: the matcher waits a bounded time for a document's text, never for ever (see `notifier.matching.documents`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from urllib.parse import unquote, urlsplit

import asyncpg

from notifier.documents.child import extract_in_subprocess
from notifier.documents.extract import ExtractedText, ExtractionError, OutOfMemory, TooLarge
from notifier.ingest.fetch import Fetcher, ResponseTooLarge
from notifier.leases import LeaseKeeper
from notifier.settings import Settings
from notifier.sources.base import SourceError
from notifier.topics.text import tsvector_literal

log = logging.getLogger(__name__)


class DocumentState(StrEnum):
    """`document_texts.state`; should match the CHECK in migrations/0003_documents.sql."""

    PENDING = "pending"
    FETCHING = "fetching"
    READY = "ready"
    FAILED = "failed"


# Seconds before each retry of a document that failed to download or extract; one more failure marks it failed.
DOCUMENT_RETRY_DELAYS = [60, 300, 1800, 7200, 21600]
MAX_ATTEMPTS = len(DOCUMENT_RETRY_DELAYS) + 1
# Reasons that no retry can change: the same bytes give the same answer.
# (`too_large`: over `document_max_bytes`, downloaded or unpacked.)
_FINAL_REASONS = frozenset(
    {"encrypted", "no_text_layer", "unsupported_type", "too_many_pages", "empty", TooLarge.reason}
)
# Reasons tried fewer times than the schedule allows. Out of memory is most likely the file itself (a decompression
# bomb), and each try costs a child process up to `document_memory_bytes`: one retry, in case the pressure was
# elsewhere on the machine.
_ATTEMPTS_BY_REASON = {OutOfMemory.reason: 2}
CLAIM_BATCH = 20
# A pass stops claiming after this long, so that it is over before the sweep queues the next one a minute later and
# extractions at once stay near `document_concurrency` (what is left is the next pass's).
PASS_SECONDS = 45.0


@dataclass
class DocumentsResult:
    """What one pass of `fetch_due_documents` did, by outcome."""

    extracted: int = 0
    unchanged: int = 0
    retried: int = 0
    failed: int = 0
    item_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {"extracted": self.extracted, "unchanged": self.unchanged, "retried": self.retried,
                "failed": self.failed}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Outcome:
    """How one claimed document ended: stored text (or unchanged), or an error to retry or record."""

    status: int = 0
    text: ExtractedText | None = None
    content_hash: str | None = None
    size: int | None = None
    etag: str | None = None
    last_modified: str | None = None
    reason: str | None = None
    error: str | None = None


async def fetch_due_documents(
    pool: asyncpg.Pool, fetcher: Fetcher, settings: Settings, *, now: datetime | None = None
) -> DocumentsResult:
    """Claim the documents due, download and extract each (`settings.document_concurrency` at once), store what
    came of it; returns what happened. Safe to run on many workers at once and to kill at any point."""
    lease = timedelta(seconds=settings.document_lease_seconds)
    result = DocumentsResult()
    keeper = LeaseKeeper(pool, lease, renew_document_leases)
    limit = asyncio.Semaphore(settings.document_concurrency)

    async def one(row: asyncpg.Record) -> None:
        try:
            if row["reindex"] and row["pages"] is not None:  # only its words back into the item's search vector
                outcome = _Outcome(status=304, etag=row["etag"], last_modified=row["last_modified"])
            else:
                async with limit:
                    outcome = await _download_and_extract(fetcher, settings, row)
            await _store(pool, row, outcome, result, now=now or datetime.now(UTC))
        finally:
            keeper.release([row["item_id"]])

    deadline = time.monotonic() + PASS_SECONDS
    try:
        while time.monotonic() < deadline and (
            rows := await claim_documents(pool, now=now or datetime.now(UTC), lease=lease, limit=CLAIM_BATCH)
        ):
            keeper.hold([r["item_id"] for r in rows])
            for row, outcome in zip(rows, await asyncio.gather(*(one(r) for r in rows), return_exceptions=True),
                                    strict=True):  # fmt: skip
                if isinstance(outcome, Exception):
                    # Left `fetching`: its lease runs out and the sweep hands it to the next pass.
                    log.error("document %s (%s) could not be stored", row["item_id"], row["url"], exc_info=outcome)
    finally:
        await keeper.close()
    return result


async def claim_documents(
    pool: asyncpg.Pool, *, now: datetime, lease: timedelta, limit: int
) -> list[asyncpg.Record]:
    """Claim up to `limit` pending documents that are due: `fetching`, leased until now + `lease`."""
    rows: list[asyncpg.Record] = await pool.fetch(
        """
        update document_texts t
        set state = 'fetching', lease_until = $1::timestamptz + $2::interval, attempts = t.attempts + 1,
            updated_at = $1
        where t.item_id in (
            select item_id from document_texts
            where state = 'pending' and next_attempt_at <= $1
            order by next_attempt_at, item_id
            limit $3
            for update skip locked
        )
        returning t.item_id, t.url, t.etag, t.last_modified, t.content_hash, t.attempts, t.pages, t.kind, t.reindex
        """,
        now,
        lease,
        limit,
    )
    return rows


async def renew_document_leases(pool: asyncpg.Pool, ids: Sequence[int], lease: timedelta) -> int:
    """Extend the leases of the documents this worker still holds."""
    rows = await pool.fetch(
        """
        update document_texts set lease_until = now() + $2::interval
        where item_id = any($1::bigint[]) and state = 'fetching'
        returning item_id
        """,
        list(ids),
        lease,
    )
    return len(rows)


async def release_expired_documents(pool: asyncpg.Pool, *, now: datetime) -> int:
    """Hand back the claims of workers that stopped renewing them (killed, or cut off): pending again, at once."""
    rows = await pool.fetch(
        """
        update document_texts set state = 'pending', lease_until = null, next_attempt_at = $1, updated_at = $1
        where state = 'fetching' and lease_until < $1
        returning item_id
        """,
        now,
    )
    return len(rows)


async def _download_and_extract(fetcher: Fetcher, settings: Settings, row: asyncpg.Record) -> _Outcome:
    headers: dict[str, str] = {}
    # A conditional GET only when there is text to fall back on: otherwise a 304 would leave nothing.
    if row["content_hash"] is not None:
        if row["etag"]:
            headers["If-None-Match"] = row["etag"]
        if row["last_modified"]:
            headers["If-Modified-Since"] = row["last_modified"]
    try:
        status, body, answer, final_url = await fetcher.get(row["url"], headers, max_bytes=settings.document_max_bytes)
    except ResponseTooLarge as e:
        return _Outcome(reason=TooLarge.reason, error=str(e))
    except SourceError as e:
        return _Outcome(reason="download", error=str(e))
    etag, modified = answer.get("ETag"), answer.get("Last-Modified")
    if status == 304:
        return _Outcome(status=304, etag=etag or row["etag"], last_modified=modified or row["last_modified"])
    digest = hashlib.sha256(body).hexdigest()
    if digest == row["content_hash"]:
        return _Outcome(status=status, content_hash=digest, size=len(body), etag=etag, last_modified=modified)
    try:
        text = await extract_in_subprocess(
            body, content_type=answer.get("Content-Type"), filename=_file_name(final_url),
            timeout=settings.document_timeout, memory_bytes=settings.document_memory_bytes,
            max_bytes=settings.document_max_bytes,
        )  # fmt: skip
    except ExtractionError as e:
        return _Outcome(status=status, content_hash=digest, size=len(body), reason=e.reason, error=str(e))
    return _Outcome(status=status, text=text, content_hash=digest, size=len(body), etag=etag, last_modified=modified)


def _file_name(url: str) -> str | None:
    path = unquote(urlsplit(url).path)
    return path.rsplit("/", 1)[-1] or None


async def _store(
    pool: asyncpg.Pool, row: asyncpg.Record, outcome: _Outcome, result: DocumentsResult, *, now: datetime
) -> None:
    """Store how one claimed document ended, if this worker still holds it (a claim lost to the sweeper is the
    next worker's to finish)."""
    item_id: int = row["item_id"]
    async with pool.acquire() as conn, conn.transaction():
        held = await conn.fetchval(
            "select 1 from document_texts where item_id = $1 and state = 'fetching' for update", item_id
        )
        if held is None:
            return
        if outcome.reason is None:
            await _store_text(conn, row, outcome, now=now)
            if outcome.text is not None:
                result.extracted += 1
            else:
                result.unchanged += 1
        elif _will_retry(row["attempts"], outcome.reason):
            await _store_retry(conn, row, outcome, now=now)
            result.retried += 1
        else:
            await _store_failure(conn, item_id, outcome, now=now)
            result.failed += 1
        result.item_ids.append(item_id)
    if outcome.reason is not None:
        log.warning("document %s (%s): %s: %s", item_id, row["url"], outcome.reason, outcome.error)


def _will_retry(attempts: int, reason: str) -> bool:
    return reason not in _FINAL_REASONS and attempts < _ATTEMPTS_BY_REASON.get(reason, MAX_ATTEMPTS)


async def _store_text(conn: asyncpg.Connection, row: asyncpg.Record, outcome: _Outcome, *, now: datetime) -> None:
    """New text (or the same text, unchanged), its hash and validators; the item's search vector gets its words."""
    pages: Sequence[str] = outcome.text.pages if outcome.text is not None else row["pages"]
    await _update_search(conn, row["item_id"], pages)
    await conn.execute(
        """
        update document_texts
        set state = 'ready', lease_until = null, error = null, error_reason = null, attempts = 0, reindex = false,
            etag = $2, last_modified = $3, content_hash = coalesce($4, content_hash), bytes = coalesce($5, bytes),
            kind = coalesce($6, kind), pages = coalesce($7::text[], pages), truncated = coalesce($8, truncated),
            extracted_at = case when $7::text[] is null then extracted_at else $9 end, updated_at = $9
        where item_id = $1
        """,
        row["item_id"],
        outcome.etag,
        outcome.last_modified,
        outcome.content_hash,
        outcome.size,
        outcome.text.kind if outcome.text is not None else None,
        list(outcome.text.pages) if outcome.text is not None else None,
        outcome.text.truncated if outcome.text is not None else None,
        now,
    )


async def _update_search(conn: asyncpg.Connection, item_id: int, pages: Sequence[str]) -> None:
    """The item's search vector from its own text and its document's (within PostgreSQL's tsvector limits: see
    `tsvector_literal`; words past them are left out, as for any long text)."""
    item = await conn.fetchrow("select title, committee, body from items where id = $1", item_id)
    if item is None:
        return
    own = [item["title"], item["committee"] or "", item["body"]]
    text = "\n".join(part for part in [*own, *pages] if part)
    await conn.execute("update items set search = $2::tsvector where id = $1", item_id, tsvector_literal(text))


async def _store_retry(conn: asyncpg.Connection, row: asyncpg.Record, outcome: _Outcome, *, now: datetime) -> None:
    delay = DOCUMENT_RETRY_DELAYS[min(row["attempts"], len(DOCUMENT_RETRY_DELAYS)) - 1]
    await conn.execute(
        """
        update document_texts
        set state = 'pending', lease_until = null, next_attempt_at = $2::timestamptz + $3::interval,
            error_reason = $4, error = $5, updated_at = $2
        where item_id = $1
        """,
        row["item_id"],
        now,
        timedelta(seconds=delay),
        outcome.reason,
        outcome.error,
    )


async def _store_failure(conn: asyncpg.Connection, item_id: int, outcome: _Outcome, *, now: datetime) -> None:
    """Marked failed with its reason; any text stored before (an earlier version) stays, as does its hash."""
    await conn.execute(
        """
        update document_texts
        set state = 'failed', lease_until = null, error_reason = $2, error = $3, updated_at = $4
        where item_id = $1
        """,
        item_id,
        outcome.reason,
        outcome.error,
        now,
    )


async def next_document_due(pool: asyncpg.Pool) -> datetime | None:
    """When the next pending document falls due (for scheduling the next pass), if any is pending."""
    due: datetime | None = await pool.fetchval(
        "select min(next_attempt_at) from document_texts where state = 'pending'"
    )
    return due

