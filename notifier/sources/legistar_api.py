"""Talking to the Legistar Web API: a source's options, the OData queries, paged lists and detail requests.

`legistar.py` turns what these calls return into records; this module knows only the API's shape: a base URL with
an optional `token`, lists paged with `$top`/`$skip` and narrowed with `$filter` (a date window on a first poll,
"modified since" afterwards), and answers that must be a JSON array of objects. Pure: every request goes through
the `Fetch` callable ingest hands over.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from notifier.sources.base import Fetch, SourceError, SourceState
from notifier.sources.common import clean_line
from notifier.zones import time_zone

__all__ = [
    "DetailBudget",
    "DetailGetter",
    "LegistarConfig",
    "Rows",
    "detail_getter",
    "event_filter",
    "fetch_list",
    "json_rows",
    "matter_filter",
    "run_details",
]

API_MAX_PAGE = 1000
DEFAULT_DAYS_BACK = 30
DEFAULT_DAYS_AHEAD = 120
DEFAULT_LOOKBACK_HOURS = 24
DEFAULT_MAX_DETAIL_REQUESTS = 200
DEFAULT_DETAIL_REFRESH_HOURS = 24
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
# A list longer than this many pages means the server ignores $skip or something is badly wrong.
MAX_PAGES = 200
DETAIL_CONCURRENCY = 4

Rows = list[dict[str, Any]]
DetailGetter = Callable[[], Awaitable[Rows | None]]


@dataclass(frozen=True, slots=True)
class LegistarConfig:
    """A Legistar source's url and options, read and checked once per poll."""

    base: str
    zone: str
    now: datetime
    page_size: int
    lookback: timedelta
    days_back: int
    days_ahead: int
    max_details: int
    detail_refresh: timedelta
    max_bytes: int
    matters: bool
    token: str | None
    insite_url: str | None
    last_success_at: datetime | None

    @classmethod
    def from_state(cls, url: str, state: SourceState) -> LegistarConfig:
        base = url.strip().rstrip("/")
        if urlsplit(base).scheme not in ("http", "https") or not urlsplit(base).netloc:
            raise SourceError(f"Legistar source url {url!r} is not an http(s) URL")
        options = state.options
        zone = str(options.get("timezone") or state.timezone)
        try:
            time_zone(zone)
        except ValueError as e:
            raise SourceError(f"{e} for this Legistar client") from e
        insite = str(options.get("insite_url") or "").strip().rstrip("/") or None
        return cls(
            base=base,
            zone=zone,
            now=state.now.astimezone(UTC),
            page_size=min(_int(options, "page_size", API_MAX_PAGE, minimum=1), API_MAX_PAGE),
            lookback=timedelta(hours=_int(options, "lookback_hours", DEFAULT_LOOKBACK_HOURS)),
            days_back=_int(options, "days_back", DEFAULT_DAYS_BACK),
            days_ahead=_int(options, "days_ahead", DEFAULT_DAYS_AHEAD),
            max_details=_int(options, "max_detail_requests", DEFAULT_MAX_DETAIL_REQUESTS),
            detail_refresh=timedelta(hours=_int(options, "detail_refresh_hours", DEFAULT_DETAIL_REFRESH_HOURS)),
            max_bytes=_int(options, "max_bytes", DEFAULT_MAX_BYTES, minimum=1),
            matters=_flag(options, "matters", default=True),
            token=str(options["token"]) if options.get("token") else None,
            insite_url=insite,
            last_success_at=state.last_success_at.astimezone(UTC) if state.last_success_at else None,
        )

    def url(self, path: str, params: Sequence[tuple[str, str]] = ()) -> str:
        """`{base}/{path}?...` with every value percent-encoded (OData filters hold spaces and quotes)."""
        pairs = list(params)
        if self.token:
            pairs.append(("token", self.token))
        if not pairs:
            return f"{self.base}/{path}"
        query = "&".join(f"{name}={quote(value, safe='')}" for name, value in pairs)
        return f"{self.base}/{path}?{query}"

    @property
    def since(self) -> datetime | None:
        """Start of the incremental filter; None on a first poll."""
        return self.last_success_at - self.lookback if self.last_success_at else None


def _int(options: Mapping[str, Any], name: str, default: int, *, minimum: int = 0) -> int:
    raw = options.get(name, default)
    try:
        value = int(raw)
    except (TypeError, ValueError) as e:
        raise SourceError(f"source option {name}={raw!r} is not a whole number") from e
    if value < minimum:
        raise SourceError(f"source option {name}={raw!r} must be at least {minimum}")
    return value


def _flag(options: Mapping[str, Any], name: str, *, default: bool) -> bool:
    raw = options.get(name, default)
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise SourceError(f"source option {name}={raw!r} is not true or false")


# ---- OData filters --------------------------------------------------------------------------------------------------


def _odata_datetime(value: datetime | date) -> str:
    if isinstance(value, datetime):
        return f"datetime'{value.astimezone(UTC).replace(tzinfo=None):%Y-%m-%dT%H:%M:%S}'"
    return f"datetime'{value:%Y-%m-%d}'"


def event_filter(cfg: LegistarConfig) -> str:
    """Events modified since the last poll, or on a first poll those dated inside the window around today."""
    if cfg.since is not None:
        return f"EventLastModifiedUtc gt {_odata_datetime(cfg.since)}"
    today = cfg.now.astimezone(ZoneInfo(cfg.zone)).date()
    first, last = today - timedelta(days=cfg.days_back), today + timedelta(days=cfg.days_ahead)
    return f"EventDate ge {_odata_datetime(first)} and EventDate lt {_odata_datetime(last)}"


def matter_filter(cfg: LegistarConfig) -> str:
    """Matters modified since the last poll, or on a first poll since the window's start."""
    since = cfg.since or cfg.now - timedelta(days=cfg.days_back)
    return f"MatterLastModifiedUtc gt {_odata_datetime(since)}"


# ---- lists ----------------------------------------------------------------------------------------------------------


async def fetch_list(
    fetch: Fetch, cfg: LegistarConfig, path: str, odata_filter: str, order_by: str, *, conditional: bool
) -> Rows | None:
    """Every row of a paged list; None only when its first page was asked conditionally and answered 304."""
    rows: Rows = []
    previous: Rows | None = None
    for page_number in range(MAX_PAGES):
        params = [
            ("$filter", odata_filter),
            ("$orderby", order_by),
            ("$top", str(cfg.page_size)),
            ("$skip", str(page_number * cfg.page_size)),
        ]
        url = cfg.url(path, params)
        response = await fetch(url, conditional=conditional and page_number == 0)
        if response is None:
            if conditional and page_number == 0:
                return None
            raise SourceError(f"Legistar answered 304 Not Modified to an unconditional request: {url}")
        page = json_rows(response.body, what=f"Legistar {path} (page {page_number + 1})", max_bytes=cfg.max_bytes)
        if page and page == previous:
            raise SourceError(f"Legistar returned the same {path} page twice: it seems to ignore $skip")
        rows.extend(page)
        if len(page) < cfg.page_size:
            return rows
        previous = page
    raise SourceError(f"Legistar {path} list is longer than {MAX_PAGES} pages of {cfg.page_size}")


def json_rows(body: bytes, *, what: str, max_bytes: int) -> Rows:
    """A JSON array of objects, or `SourceError` saying what came instead (HTML, an error object, truncation)."""
    if len(body) > max_bytes:
        raise SourceError(f"{what} is {len(body)} bytes, over the {max_bytes}-byte limit")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        # JSON is UTF-8 by definition; a server that sent Windows-1252 anyway still meant its characters.
        text = body.decode("windows-1252", errors="replace")
    text = text.strip()
    if not text:
        raise SourceError(f"{what} is empty")
    if text.startswith("<"):
        kind = "HTML" if re.match(r"<(?:!doctype\s+html|html)\b", text, re.I) else "XML or HTML"
        raise SourceError(f"{what} is {kind}, not JSON (starts {text[:40]!r})")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise SourceError(f"{what} is not valid JSON ({e.msg} at character {e.pos} of {len(text)})") from e
    except RecursionError as e:
        raise SourceError(f"{what} is JSON nested too deeply to read") from e
    if isinstance(value, dict):
        raise SourceError(f"{what} is an error, not a list: {_error_message(value)}")
    if not isinstance(value, list):
        raise SourceError(f"{what} is a JSON {type(value).__name__}, not a list")
    if not all(isinstance(row, dict) for row in value):
        raise SourceError(f"{what} holds something other than objects")
    return value


def _error_message(obj: Mapping[str, Any]) -> str:
    odata = obj.get("odata.error") or obj.get("error")
    if isinstance(odata, Mapping):
        message = odata.get("message")
        if isinstance(message, Mapping):
            message = message.get("value")
        if message:
            return clean_line(str(message))[:300]
    for key in ("Message", "message", "ExceptionMessage", "error_description", "Error"):
        if obj.get(key):
            return clean_line(str(obj[key]))[:300]
    return clean_line(json.dumps(obj))[:300]


# ---- detail requests ------------------------------------------------------------------------------------------------


@dataclass
class DetailBudget:
    """Detail requests still allowed this poll, and how those made so far went."""

    left: int
    attempted: int = 0
    failed: int = 0


def detail_getter(fetch: Fetch, url: str, what: str, *, max_bytes: int) -> DetailGetter:
    """A deferred request for one detail list (an event's items, a matter's attachments)."""

    async def get() -> Rows | None:
        response = await fetch(url)
        if response is None:
            raise SourceError(f"{what}: unexpected 304 Not Modified")
        return json_rows(response.body, what=what, max_bytes=max_bytes)

    return get


async def run_details(getters: Sequence[DetailGetter], budget: DetailBudget) -> list[Rows | None]:
    """Run detail requests a few at a time; a failed one gives None (retried next poll) instead of failing."""
    limit = asyncio.Semaphore(DETAIL_CONCURRENCY)

    async def one(getter: DetailGetter) -> Rows | None:
        async with limit:
            try:
                return await getter()
            except SourceError:
                budget.failed += 1
                return None

    budget.attempted += len(getters)
    return list(await asyncio.gather(*(one(g) for g in getters)))
