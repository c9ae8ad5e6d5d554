"""The polite HTTP client every source is fetched with: one shared session that names itself (User-Agent) and
accepts compressed answers, limits on requests in flight (overall and per host), a cap on the size of an answer
(counted after decompression), and conditional GET with the validators of the source's last answer.

Every failure to fetch (a timeout, a refused connection, a status other than 2xx or 304, an answer over the cap)
is raised as a `SourceError` whose message says what happened, for the poll to record.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from notifier.settings import Settings
from notifier.sources.base import Response, SourceError


def client_session(settings: Settings) -> aiohttp.ClientSession:
    """The one shared client session for fetching council systems."""
    timeout = aiohttp.ClientTimeout(
        total=settings.poll_total_timeout,
        connect=settings.poll_connect_timeout,
        sock_read=settings.poll_total_timeout,
    )
    connector = aiohttp.TCPConnector(limit=settings.poll_concurrency * 2, ttl_dns_cache=300)
    return aiohttp.ClientSession(
        timeout=timeout,
        connector=connector,
        headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate"},
    )


class HttpStatusError(SourceError):
    """The source answered with a status other than 2xx or 304."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ResponseTooLarge(SourceError):
    """The answer is over the size cap: declared so (Content-Length) or counted so (after decompression). The same
    URL gives the same answer, so retrying is pointless while the cap stays."""


class Fetcher:
    """HTTP for adapters: concurrency limits (overall and per host), a size cap, and conditional GET."""

    def __init__(self, session: aiohttp.ClientSession, settings: Settings) -> None:
        self.session = session
        self.max_bytes = settings.poll_max_response_bytes
        self.total_timeout = settings.poll_total_timeout
        self._overall = asyncio.Semaphore(settings.poll_concurrency)
        self._per_host_limit = settings.poll_per_host_concurrency
        self._per_host: dict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(self._per_host_limit))

    def for_source(self, etag: str | None, last_modified: str | None) -> SourceFetch:
        return SourceFetch(self, etag, last_modified)

    async def get(
        self, url: str, headers: Mapping[str, str], *, max_bytes: int | None = None
    ) -> tuple[int, bytes, Mapping[str, str], str]:
        """One GET within the limits; `max_bytes` overrides the size cap (documents have their own)."""
        cap = self.max_bytes if max_bytes is None else max_bytes
        host = urlsplit(url).netloc
        # The host's slot first, then one of the overall ones: a request waiting for its host (another request to
        # it is in flight) must not hold an overall slot that a request to an idle host could be using. Taken the
        # other way round, polls of many hosts left up to half the overall slots idle.
        async with self._per_host[host], self._overall:
            try:
                async with self.session.get(url, headers=dict(headers), allow_redirects=True, max_redirects=5) as resp:
                    if resp.status == 304:
                        return 304, b"", resp.headers, str(resp.url)
                    if not 200 <= resp.status < 300:
                        snippet = (await resp.content.read(200)).decode("utf-8", "replace")
                        raise HttpStatusError(
                            resp.status, f"HTTP {resp.status} {resp.reason} from {url}: {snippet.strip()[:120]!r}"
                        )
                    declared = resp.content_length
                    if declared is not None and declared > cap:
                        raise ResponseTooLarge(f"response from {url} is {declared} bytes, over the {cap} cap")
                    body = await self._read_capped(resp, url, cap)
                    return resp.status, body, resp.headers, str(resp.url)
            except TimeoutError as e:
                raise SourceError(f"timed out after {self.total_timeout:.0f}s fetching {url}") from e
            except aiohttp.ClientError as e:
                raise SourceError(f"could not fetch {url}: {type(e).__name__}: {e}") from e

    async def _read_capped(self, resp: aiohttp.ClientResponse, url: str, cap: int) -> bytes:
        # Count decompressed bytes: a small gzip body can expand to gigabytes.
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > cap:
                raise ResponseTooLarge(f"response from {url} exceeds the {cap}-byte cap")
            chunks.append(chunk)
        return b"".join(chunks)


@dataclass
class SourceFetch:
    """The `Fetch` an adapter gets for one poll; remembers the validators of the conditional request."""

    fetcher: Fetcher
    etag: str | None
    last_modified: str | None
    new_etag: str | None = None
    new_last_modified: str | None = None
    http_status: int | None = None
    requests: int = 0

    async def __call__(self, url: str, *, conditional: bool = False) -> Response | None:
        headers: dict[str, str] = {}
        if conditional:
            if self.etag:
                headers["If-None-Match"] = self.etag
            if self.last_modified:
                headers["If-Modified-Since"] = self.last_modified
        self.requests += 1
        try:
            status, body, resp_headers, final_url = await self.fetcher.get(url, headers)
        except HttpStatusError as e:
            # the status of the answer that failed the poll, for poll_runs
            self.http_status = e.status
            raise
        if conditional:
            self.http_status = status
            self.new_etag = resp_headers.get("ETag") or self.etag
            self.new_last_modified = resp_headers.get("Last-Modified") or self.last_modified
        elif self.http_status is None:
            self.http_status = status
        if status == 304:
            if conditional:
                return None
            raise SourceError(f"unexpected 304 Not Modified from {url}")
        return Response(
            url=final_url,
            status=status,
            body=body,
            content_type=resp_headers.get("Content-Type", ""),
            headers=dict(resp_headers),
        )
