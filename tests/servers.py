"""Real servers that play the outside world in tests: council systems, an SMTP server, partner receivers."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_bytes(relative: str) -> bytes:
    return (FIXTURES / relative).read_bytes()


@dataclass
class Reply:
    """What a fake council server answers for one path (and query)."""

    body: bytes = b""
    status: int = 200
    content_type: str = "text/xml; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    etag: str | None = None


class CouncilServer:
    """An HTTP server on 127.0.0.1 answering each path (with its query string, or without) from a table.

    Tests change `routes` between polls to play a council publishing, rescheduling or breaking. Every request is
    recorded with its headers, so conditional GET and the User-Agent can be checked.
    """

    def __init__(self) -> None:
        self.routes: dict[str, Reply | Callable[[web.Request], Awaitable[web.StreamResponse]]] = {}
        self.requests: list[web.Request] = []
        self.hits: Counter[str] = Counter()
        self._runner: web.AppRunner | None = None
        self.url = ""

    def set(self, path: str, body: bytes | str, **kwargs: Any) -> None:
        self.routes[path] = Reply(body.encode() if isinstance(body, str) else body, **kwargs)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        key = request.path_qs if request.path_qs in self.routes else request.path
        self.hits[key] += 1
        route = self.routes.get(key)
        if route is None:
            return web.Response(status=404, text=f"no route for {request.path_qs}")
        if callable(route):
            return await route(request)
        if route.delay:
            await asyncio.sleep(route.delay)
        headers = dict(route.headers)
        if route.etag is not None:
            headers["ETag"] = route.etag
            if request.headers.get("If-None-Match") == route.etag:
                return web.Response(status=304, headers=headers)
        return web.Response(
            status=route.status, body=route.body, headers={**headers, "Content-Type": route.content_type}
        )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        code = self.server.rcpt_faults.get(address.lower())
        if code:
            return code
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        mode = self.server.fault
        if mode == "drop":
            assert server.transport is not None
            server.transport.close()
            return "421 closing"
        if mode == "slow":
            await asyncio.sleep(self.server.slow_seconds)
        if mode and mode[:3].isdigit():
            if self.server.fault_count is not None:
                self.server.fault_count -= 1
                if self.server.fault_count <= 0:
                    self.server.fault = None
            return mode
        raw = envelope.original_content or envelope.content or b""
        assert isinstance(raw, bytes)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        self.server.messages.append(ReceivedMail(str(envelope.mail_from), list(envelope.rcpt_tos), msg, raw))
        return "250 Message accepted"


class SmtpServer:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that records every message.

    Fault modes: `fault = "451 4.3.0 try later"` (or any reply) answers DATA with it (for `fault_count` messages, or
    until cleared), `"drop"` closes the connection mid-transaction, `"slow"` waits `slow_seconds` before accepting;
    `rcpt_faults[address] = "550 5.1.1 no such user"` refuses one recipient.
    """

    def __init__(self) -> None:
        self.messages: list[ReceivedMail] = []
        self.fault: str | None = None
        self.fault_count: int | None = None
        self.slow_seconds = 2.0
        self.rcpt_faults: dict[str, str] = {}
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listen (again, on the same port once it has one: a mail server that went away and came back)."""
        loop = asyncio.get_running_loop()
        handler = _Handler(self)
        self._server = await loop.create_server(
            lambda: SMTP(handler, hostname="smtp.test"), "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def to(self, address: str) -> list[EmailMessage]:
        return [m.message for m in self.messages if address in m.rcpt_tos]


@dataclass
class Received:
    """One request a partner receiver got, and whether its signature verified (with which of the secrets)."""

    name: str
    headers: dict[str, str]
    body: bytes
    verified_by: list[str]
    status: int

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")

    def json(self) -> Any:
        import json

        return json.loads(self.body)


class WebhookReceiver:
    """A partner's webhook receiver on 127.0.0.1: `/hooks/{name}` answers from a per-name plan, then 204.

    Every request is verified with the `standardwebhooks` reference implementation against each secret set for its
    name (`secrets[name]`), and recorded. A plan entry is a status code (with `Retry-After: 1` for 429 and 503),
    `("sleep", seconds)`, or `("redirect", path)`. The most requests open at once for a name is `peak_in_flight`.
    """

    def __init__(self) -> None:
        self.secrets: dict[str, list[str]] = {}
        self.plans: dict[str, list[Any]] = {}
        self.received: list[Received] = []
        self.in_flight: dict[str, int] = {}  # requests being answered, by name
        self.peak_in_flight: dict[str, int] = {}  # the most open at once, by name
        self._runner: web.AppRunner | None = None
        self.url = ""

    def endpoint(self, name: str) -> str:
        return f"{self.url}/hooks/{name}"

    def ok(self, name: str | None = None) -> list[Received]:
        """Requests answered 2xx whose signature verified."""
        return [r for r in self.received if 200 <= r.status < 300 and r.verified_by and name in (None, r.name)]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.in_flight[name] = self.in_flight.get(name, 0) + 1
        self.peak_in_flight[name] = max(self.peak_in_flight.get(name, 0), self.in_flight[name])
        try:
            return await self._answer(request, name)
        finally:
            self.in_flight[name] -= 1

    async def _answer(self, request: web.Request, name: str) -> web.StreamResponse:
        from standardwebhooks.webhooks import Webhook, WebhookVerificationError

        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        verified = []
        for secret in self.secrets.get(name, []):
            try:
                Webhook(secret).verify(body, headers)
                verified.append(secret)
            except WebhookVerificationError:
                pass
        got = Received(name, headers, body, verified, status=0)  # 0: no answer (still working, or cut off)
        self.received.append(got)
        plan = self.plans.get(name) or []
        action = plan.pop(0) if plan else 204
        response: web.StreamResponse
        if isinstance(action, tuple) and action[0] == "sleep":
            await asyncio.sleep(action[1])
            response = web.Response(status=204)
        elif isinstance(action, tuple) and action[0] == "redirect":
            response = web.Response(status=302, headers={"Location": action[1]})
        else:
            extra = {"Retry-After": "1"} if action in (429, 503) else {}
            response = web.Response(status=action, text="" if action < 300 else f"plan says {action}",
                                    headers=extra)
        got.status = response.status
        return response

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks/{name}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
