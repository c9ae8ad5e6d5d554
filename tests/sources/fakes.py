"""A `Fetch` for adapter tests: answers from bytes by URL pattern, records what was asked."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from notifier.sources.base import Response, SourceError

# A body, or a function of the URL that makes one.
Body = bytes | Callable[[str], bytes]


@dataclass
class FakeFetch:
    """URL pattern -> body: the first pattern found in the URL answers 200 with it, no pattern is a 404. Records
    every request as (url, conditional); answers a conditional request with 304 (None) when `not_modified`."""

    routes: Mapping[str, Body]
    content_type: str = "application/octet-stream"
    not_modified: bool = False
    asked: list[tuple[str, bool]] = field(default_factory=list)

    async def __call__(self, url: str, *, conditional: bool = False) -> Response | None:
        self.asked.append((url, conditional))
        if conditional and self.not_modified:
            return None
        for pattern, body in self.routes.items():
            if re.search(pattern, url):
                content = body(url) if callable(body) else body
                return Response(url=url, status=200, body=content, content_type=self.content_type)
        raise SourceError(f"HTTP 404 Not Found from {url}")
