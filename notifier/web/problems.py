"""RFC 9457 problem details: the one shape every API error takes."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

PROBLEM_CONTENT_TYPE = "application/problem+json"


class Problem(Exception):
    """Raise anywhere in a handler; the middleware answers it as application/problem+json."""

    def __init__(self, status: int, title: str, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.extra = extra

    def response(self, instance: str | None = None) -> web.Response:
        body: dict[str, Any] = {"type": "about:blank", "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        headers = {}
        if "retry_after" in self.extra:
            headers["Retry-After"] = str(self.extra["retry_after"])
        return web.Response(
            status=self.status, text=json.dumps(body), content_type=PROBLEM_CONTENT_TYPE, headers=headers
        )
