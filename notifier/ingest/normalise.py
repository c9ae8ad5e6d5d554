"""Pure: reading records the same way everywhere: the content hash, values in canonical JSON form, and the fields
whose meaning needs working out (flags given as text, status spellings, whether a start time is known), and a
poll's records kept once each with their search text.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from notifier.models import ItemKind
from notifier.sources.base import Record
from notifier.topics.text import tsvector_literal_of, words

# Matches both datetime.isoformat() and str(datetime): stored `data` went through json.dumps(default=str).
_DATETIME_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?")
_CANCEL_MARKER = re.compile(r"cancel|postpone", re.IGNORECASE)


# ---- content hash ----------------------------------------------------------------------------------------------------


def content_hash(r: Record) -> str:
    """sha256 hex of everything that matters about a record; `_` data keys (adapter bookkeeping) are left out.

    Stable across runs, dict ordering and time zones (datetimes are hashed as UTC), and equal for a record and the
    same record read back from the database (where `data` went through JSON, datetimes in it as text).
    """
    payload = {
        "kind": str(r.kind),
        "external_id": r.external_id,
        "title": r.title,
        "committee": r.committee,
        "committee_id": r.committee_id,
        "body": r.body,
        "starts_at": iso(r.starts_at),
        "status": r.status,
        "url": r.url,
        "parent": [str(r.parent[0]), r.parent[1]] if r.parent is not None else None,
        "published_at": iso(r.published_at),
        "data": _public_data(r.data),
    }
    return hashlib.sha256(_HASH_JSON.encode(payload).encode("utf-8")).hexdigest()


# One encoder for every hash: json.dumps builds a new one per call when given options.
_HASH_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))
# Values that come back from the JSON round trip below exactly as they went in (exact types: a str or int
# subclass, such as an enum, may serialise as something else).
_JSON_SCALARS = (str, int, bool, type(None))


def _public_data(data: Mapping[str, Any]) -> dict[str, Any]:
    public = {str(k): v for k, v in data.items() if not str(k).startswith("_")}
    if all(type(v) in _JSON_SCALARS for v in public.values()):
        # Flat data of plain scalars (what adapters give): the round trip would change nothing, so only the
        # datetime-looking strings need making canonical.
        for k, v in public.items():
            if type(v) is str and v[:1].isdigit() and _DATETIME_TEXT.fullmatch(v):
                public[k] = canonical(v)
        return public
    # The same round trip the database applies, so stored and fresh records compare equal.
    loaded = json.loads(json.dumps(public, default=str))
    result: dict[str, Any] = canonical(loaded)
    return result


# ---- canonical values ------------------------------------------------------------------------------------------------


def canonical(value: Any) -> Any:
    """A JSON value with every datetime-looking string rewritten as `iso` writes it, so equal instants compare equal."""
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    if isinstance(value, str) and _DATETIME_TEXT.fullmatch(value):
        try:
            return iso(datetime.fromisoformat(value))
        except (ValueError, OverflowError):  # looked like a datetime but is not one, or is out of range in UTC
            return value
    return value


def iso(dt: datetime | None) -> str | None:
    """ISO 8601 text of a datetime, in UTC when it is aware."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        return dt.isoformat()
    return dt.astimezone(UTC).isoformat()


def jsonable(value: Any) -> Any:
    """A value as it may appear in `changes`: JSON types only, datetimes as ISO strings."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((jsonable(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True, default=str))
    return str(value)


# ---- reading record fields -------------------------------------------------------------------------------------------


def flag(value: Any, default: bool = False) -> bool:
    """A yes/no `data` value, which feeds give as booleans, numbers or text ("True", "1", "yes")."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().casefold()
        if not text:
            return default
        return text in {"true", "1", "yes", "y"}
    return bool(value)


def status(r: Record) -> str:
    """A record's status folded to one spelling; "unknown" when it has none."""
    s = (r.status or "").strip().casefold()
    if s == "canceled":
        return "cancelled"
    return s or "unknown"


def time_known(r: Record) -> bool:
    """Whether a record's start has a time of day, not only a date."""
    return flag(r.data.get("time_known"), default=True) and not flag(r.data.get("all_day"))


def marked_cancelled(title: str | None) -> bool:
    """Whether a title says the meeting is cancelled or postponed, as councils often add to it."""
    return bool(_CANCEL_MARKER.search(title or ""))


def local(dt: datetime, tz: ZoneInfo) -> datetime:
    """A record's datetime in the council's zone."""
    # Records promise aware UTC datetimes; a naive one is read as UTC rather than as the server's local time.
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(tz)


# ---- a poll's records: one of each, and their search text ------------------------------------------------------------


# A record's identity within its source.
Key = tuple[ItemKind, str]


def dedupe(records: Sequence[Record]) -> list[Record]:
    """Keep the last record for each (kind, external_id): a feed listing an item twice is not two items."""
    seen: dict[Key, Record] = {}
    for r in records:
        seen[(r.kind, r.external_id)] = r
    return list(seen.values())


def search_text(r: Record) -> str:
    return "\n".join(part for part in (r.title, r.committee or "", r.body) if part)


# The words of each line of text written in one poll, split once: a meeting's body is its agenda items' headings
# and texts, and every record of a meeting names its committee, so most lines are searched text more than once
# (a long agenda was split twice, once for its items and once for its meeting).
Lines = dict[str, list[tuple[str, str]]]


def search_vectors(records: Sequence[Record], lines: Lines) -> dict[Key, str]:
    """The `search` tsvector literal of each record: its title, committee and body (as `tsvector_literal` of that
    text: the words of a text are the words of its lines one after another)."""
    vectors: dict[Key, str] = {}
    for r in records:
        pairs: list[tuple[str, str]] = []
        for line in search_text(r).split("\n"):
            split = lines.get(line)
            if split is None:
                split = lines[line] = words(line)
            pairs += split
        vectors[(r.kind, r.external_id)] = tsvector_literal_of(pairs)
    return vectors
