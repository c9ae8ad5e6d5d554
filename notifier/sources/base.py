"""The contract between ingest and the council-system adapters.

An adapter turns what a council system publishes into `Record`s. Adapters are pure: they never open a socket or a
database connection themselves. Ingest hands them a `Fetch` callable (which does the HTTP, with timeouts, size caps
and conditional GET) and a `SourceState` (what is already known, so an adapter can skip work it need not repeat).
Anything that is not what the source promised raises `SourceError`, so a broken response is a failed poll and
never an empty result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from notifier.models import ItemKind


class SourceError(Exception):
    """The source answered with something we cannot trust: the poll fails and nothing is written."""


@dataclass(frozen=True, slots=True)
class Record:
    """One thing a council published, as an adapter saw it in one poll.

    `(kind, external_id)` is unique within a source. Datetimes are timezone-aware UTC. `data` holds kind-specific
    detail (location, published flags, key decision, ...); keys starting with `_` are bookkeeping for the adapter
    (for example when details were last fetched) and are ignored when deciding whether a record changed.
    """

    kind: ItemKind
    external_id: str
    title: str
    committee: str | None = None
    committee_id: str | None = None
    body: str = ""
    starts_at: datetime | None = None
    status: str | None = None
    url: str | None = None
    parent: tuple[ItemKind, str] | None = None
    published_at: datetime | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Response:
    """A successful (2xx) HTTP answer, already size-capped and decompressed."""

    url: str
    status: int
    body: bytes
    content_type: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)


class Fetch(Protocol):
    """Fetches a URL for an adapter.

    With `conditional=True` the source's stored ETag / Last-Modified are sent, and `None` means 304 Not Modified
    (nothing changed since the last successful poll). Non-2xx answers, timeouts and oversize bodies raise
    `SourceError`.
    """

    async def __call__(self, url: str, *, conditional: bool = False) -> Response | None: ...


@dataclass(frozen=True, slots=True)
class SourceState:
    """What ingest already knows about a source when a poll starts."""

    now: datetime
    timezone: str = "Europe/London"
    options: Mapping[str, Any] = field(default_factory=dict)
    # (kind, external_id) -> the stored item's `data`, for adapters that skip unchanged details; only items of the
    # kinds the adapter names in a `known_kinds` attribute, when it has one (a source's stored items pile up over
    # the years, and most adapters need the bookkeeping of one kind).
    known: Mapping[tuple[ItemKind, str], Mapping[str, Any]] = field(default_factory=dict)
    # Start of the last successful poll, for sources with incremental ("modified since") queries.
    last_success_at: datetime | None = None
    # How often the source is polled, for adapters that spread their requests over it (None: a poll by hand, or
    # a test: no request budget applies).
    poll_interval: timedelta | None = None
    # How many enabled sources read this source's host: they share the host's request budget equally.
    host_sources: int = 1


class Adapter(Protocol):
    """One council system. `collect` returns every record the source currently shows (or the changed ones for
    incremental sources); `None` means the source answered 304 and nothing needs looking at."""

    async def collect(self, url: str, fetch: Fetch, state: SourceState) -> list[Record] | None: ...
