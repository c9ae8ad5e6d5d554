"""A WebSub subscriber as a feed reader runs one: a real HTTP server whose callbacks ask the stack's hub for a feed
topic, confirm only the intents they asked for (the GET challenge), and keep each push whose `X-Hub-Signature`
verifies under their own hub.secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
import feedparser
from aiohttp import web

EVENT_ID = re.compile(r":event:(\d+)$")


@dataclass
class Push:
    """One push a callback got: the event ids of its entries, the meetings they link to, and whether it verified."""

    name: str
    events: list[int]
    meetings: list[int]
    verified: bool


@dataclass
class Callback:
    topic: str
    secret: str
    challenges: list[dict[str, str]] = field(default_factory=list)


class WebSubSubscriber:
    def __init__(self) -> None:
        self.callbacks: dict[str, Callback] = {}
        self.pushes: list[Push] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    def callback(self, name: str) -> str:
        return f"{self.url}/callback/{name}"

    async def subscribe(self, hub_base: str, name: str, topic: str, lease_seconds: int = 86400) -> None:
        """Ask the hub for `topic` at callback `name`, with a fresh secret; the hub answers 202 and the worker then
        checks the intent with a GET to the callback."""
        self.callbacks[name] = Callback(topic, secrets.token_urlsafe(24))
        form = {"hub.mode": "subscribe", "hub.topic": topic, "hub.callback": self.callback(name),
                "hub.secret": self.callbacks[name].secret, "hub.lease_seconds": str(lease_seconds)}
        async with aiohttp.ClientSession() as s, s.post(f"{hub_base}/websub", data=form) as resp:
            assert resp.status == 202, (resp.status, await resp.text())

    def verified(self, name: str) -> bool:
        return any(c.get("hub.mode") == "subscribe" for c in self.callbacks[name].challenges)

    async def _intent(self, request: web.Request) -> web.Response:
        own = self.callbacks.get(request.match_info["name"])
        if own is None or request.query.get("hub.topic") != own.topic:
            return web.Response(status=404)  # not an intent of ours
        own.challenges.append(dict(request.query))
        return web.Response(text=request.query["hub.challenge"])

    async def _push(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await request.read()
        own = self.callbacks.get(name)
        sent = request.headers.get("X-Hub-Signature", "")
        good = own is not None and hmac.compare_digest(
            sent, "sha256=" + hmac.new(own.secret.encode(), body, hashlib.sha256).hexdigest())
        feed = feedparser.parse(body)
        events = [int(m[1]) for e in feed.entries if (m := EVENT_ID.search(e.get("id", "")))]
        meetings = [int(x) for e in feed.entries for x in re.findall(r"MId=(\d+)", e.get("link", ""))]
        self.pushes.append(Push(name, events, meetings, good and not feed.bozo))
        # the spec: a push with a bad signature is ignored, but still answered 2xx
        return web.Response(status=202)

    def entries(self, name: str) -> Counter[int]:
        """How many verified pushes to `name` carried each event."""
        return Counter(e for p in self.pushes if p.name == name and p.verified for e in p.events)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/callback/{name}", self._intent)
        app.router.add_post("/callback/{name}", self._push)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
