"""Sending push deliveries, for both push channels: partners' webhooks and WebSub subscribers' callbacks. Claim from
the outbox, sign, POST, log the attempt, mark; only the body and its signature differ by channel (Standard Webhooks
JSON here, the topic feed's own format from `delivery.websub`).

A pass claims due deliveries in chunks (`outbox.claim_webhook_deliveries`, at most a few dozen waiting per endpoint
across every worker), holds their short leases with a `LeaseKeeper`, and sends them concurrently: at most
`webhook_endpoint_concurrency` requests in flight to one endpoint from this worker, so one slow partner fills only
its own slots while the others' deliveries flow past. Outcomes are written as they come (`OutcomeWriter`), in one
transaction per group: the attempts log, the delivery marks and the endpoints' health.

A worker killed mid-pass leaves its claims `sending`; their leases (`NOTIFIER_WEBHOOK_LEASE_SECONDS`) run out soon
after renewals stop and the sweeper hands them back. The requests that were answered but not yet marked are sent
again, with the same `webhook-id`, which is what a receiver deduplicates by.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import asyncpg
from aiohttp.abc import AbstractResolver

from notifier.delivery import outbox, websub
from notifier.delivery.webhooks import signing
from notifier.delivery.webhooks.outcomes import Outcome, OutcomeWriter
from notifier.delivery.webhooks.payload import EventBodies, stored_body
from notifier.delivery.webhooks.targets import CheckingResolver, Target, TargetRefused, check_url
from notifier.leases import LeaseKeeper
from notifier.metrics import Metrics
from notifier.models import Channel
from notifier.settings import Settings

log = logging.getLogger(__name__)

# Seconds to wait after each failed attempt (Standard Webhooks' schedule): the first attempt goes at once, then
# 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h later; after the eighth attempt the delivery has failed.
WEBHOOK_RETRY_DELAYS = [5, 300, 1800, 7200, 18000, 36000, 36000]
MAX_ATTEMPTS = len(WEBHOOK_RETRY_DELAYS) + 1
MAX_RETRY_AFTER = 3600  # a Retry-After further off than this is held to it
CLAIM_SIZE = 400
CLAIMS_PER_SLOT = 5  # deliveries claimed ahead for an endpoint, per request it may have in flight
ERROR_SNIPPET = 200


def retry_delay(attempts: int, retry_after: float | None) -> float | None:
    """Seconds until the next attempt after `attempts` failed ones, or None when they are used up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    if retry_after is not None:
        return min(max(retry_after, 1.0), MAX_RETRY_AFTER)
    return float(WEBHOOK_RETRY_DELAYS[attempts - 1])


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


@dataclass
class PassResult:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    disabled: list[int] = field(default_factory=list)  # endpoints disabled in this pass


_LOAD = """
    select d.id, d.attempts, d.payload, d.matched_terms, d.snippets, d.event_id, s.id as subscription_id,
           s.endpoint_id, s.query as sub_query, s.councils as sub_councils, s.regions as sub_regions,
           s.committees as sub_committees,
           w.url, w.secret, w.previous_secret, w.previous_secret_expires_at, w.channel, w.topic, c.timezone,
           e.type as event_type, e.occurred_at, e.summary, e.changes, e.council,
           i.id as item_id, i.kind as item_kind, i.external_id, i.title, i.committee, i.committee_id, i.starts_at,
           i.published_at, i.status as item_status, i.url as item_url, i.parent_id, i.body,
           c.name as council_name, c.region, c.nation
    from deliveries d
    join subscriptions s on s.id = d.subscription_id
    join webhook_endpoints w on w.id = s.endpoint_id
    left join events e on e.id = d.event_id
    left join items i on i.id = e.item_id
    left join councils c on c.slug = e.council
    where d.id = any($1::bigint[])
"""


class WebhookSender:
    """Sends due webhook deliveries; one per worker process, shared by its passes."""

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        http: aiohttp.ClientSession,
        *,
        metrics: Metrics | None = None,
        lease: timedelta = timedelta(seconds=30),
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.http = http
        self.metrics = metrics or Metrics()
        self.lease = lease
        self.timeout = aiohttp.ClientTimeout(total=settings.webhook_timeout)
        self.slots_per_endpoint = settings.webhook_endpoint_concurrency
        self._slots: dict[int, asyncio.Semaphore] = {}
        self._targets: dict[str, Target] = {}
        self._secret_keys: dict[str, bytes] = {}
        self._bodies = EventBodies(settings.base_url)

    @classmethod
    def create(
        cls,
        settings: Settings,
        pool: asyncpg.Pool,
        *,
        metrics: Metrics | None = None,
        resolver: AbstractResolver | None = None,
    ) -> WebhookSender:
        """A sender with its own HTTP client, whose connections go only where `targets` allows."""
        checking = CheckingResolver(resolver, allow_private=settings.webhook_allow_private_targets)
        connector = aiohttp.TCPConnector(resolver=checking, limit=settings.webhook_concurrency, ttl_dns_cache=10)
        http = aiohttp.ClientSession(
            connector=connector, headers={"User-Agent": settings.user_agent}, auto_decompress=False
        )
        return cls(settings, pool, http, metrics=metrics, lease=timedelta(seconds=settings.webhook_lease_seconds))

    async def close(self) -> None:
        await self.http.close()

    async def send_due(self) -> PassResult:
        """Send every webhook delivery that is due, until none is left."""
        result = PassResult()
        keeper = LeaseKeeper(self.pool, self.lease, outbox.renew_leases)
        writer = OutcomeWriter(self.pool, keeper, result)
        tasks: set[asyncio.Task[None]] = set()
        try:
            await self._run(tasks, keeper, writer)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await writer.close()
            await keeper.close()
        for kind, n in (("sent", result.sent), ("retry", result.retried), ("failed", result.failed)):
            if n:
                self.metrics.deliveries.labels("webhook", kind).inc(n)
        return result

    async def _run(self, tasks: set[asyncio.Task[None]], keeper: LeaseKeeper, writer: OutcomeWriter) -> None:
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()  # a delivery finished

        def finished(task: asyncio.Task[None]) -> None:
            tasks.discard(task)
            changed.set()

        while True:
            room = CLAIM_SIZE - len(tasks)
            claimed = 0
            if room >= CLAIM_SIZE // 2:
                rows = await self._claim(room)
                claimed = len(rows)
                keeper.hold([r["id"] for r in rows])
                for row in rows:
                    task = loop.create_task(self._deliver(row, writer))
                    tasks.add(task)
                    task.add_done_callback(finished)
            if not tasks:
                return
            # More to claim: go on once half the chunk is done. Drained: wait for the rest (a second at most, so
            # retries falling due meanwhile are picked up).
            drained = claimed < room
            deadline = loop.time() + 1.0
            while tasks and (drained or len(tasks) > CLAIM_SIZE // 2):
                changed.clear()
                try:
                    async with asyncio.timeout_at(deadline if drained else None):
                        await changed.wait()
                except TimeoutError:
                    break

    async def _claim(self, limit: int) -> list[Mapping[str, Any]]:
        claimed = await outbox.claim_webhook_deliveries(
            self.pool, now=datetime.now(UTC), lease=self.lease, limit=limit,
            per_endpoint=self.slots_per_endpoint * CLAIMS_PER_SLOT,
        )
        if not claimed:
            return []
        self._bodies = EventBodies(self.settings.base_url)  # items may have changed since the last chunk
        rows: list[Mapping[str, Any]] = await self.pool.fetch(_LOAD, [r["id"] for r in claimed])
        return rows

    async def _deliver(self, row: Mapping[str, Any], writer: OutcomeWriter) -> None:
        try:
            slot = self._slots.get(row["endpoint_id"])
            if slot is None:
                slot = self._slots[row["endpoint_id"]] = asyncio.Semaphore(self.slots_per_endpoint)
            async with slot:
                outcome = await self._post(row)
        except Exception as e:  # a bug must not strand the delivery in `sending` until its lease runs out
            log.exception("webhook delivery %s failed unexpectedly", row["id"])
            outcome = self._judge(row, None, f"internal error: {type(e).__name__}", None, 0)
        writer.add(outcome)

    async def _post(self, row: Mapping[str, Any]) -> Outcome:
        start = time.perf_counter()
        status: int | None = None
        retry_after: float | None = None
        try:
            target = self._target(row["url"])
            body, hdrs = await self._request(row)
            async with self.http.post(
                target.url, data=body, headers=hdrs, allow_redirects=False, timeout=self.timeout
            ) as resp:
                status = resp.status
                snippet = await resp.content.read(ERROR_SNIPPET)
                error = None if 200 <= status < 300 else _describe(resp, snippet)
                if status in (429, 503):
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"), datetime.now(UTC))
        except TargetRefused as e:
            error = f"refused: {e}"
        except TimeoutError:
            error = f"no answer within {self.settings.webhook_timeout:g} s"
        except aiohttp.ClientError as e:
            error = f"{type(e).__name__}: {e}"[:500]
        duration = int((time.perf_counter() - start) * 1000)
        return self._judge(row, status, error, retry_after, duration)

    def _judge(
        self, row: Mapping[str, Any], status: int | None, error: str | None, retry_after: float | None,
        duration_ms: int,
    ) -> Outcome:
        now = datetime.now(UTC)
        outcome = Outcome(
            delivery_id=row["id"], endpoint_id=row["endpoint_id"], webhook_id=signing.webhook_id(row["id"]),
            event_id=row["event_id"], at=now, status_code=status, duration_ms=duration_ms, error=error,
        )
        if error is None:
            outcome.kind = "sent"
        elif status == 410:
            outcome.kind = "gone"
        else:
            delay = retry_delay(row["attempts"], retry_after)
            if delay is None:
                outcome.kind = "failed"
            else:
                outcome.kind = "retry"
                outcome.retry_at = now + timedelta(seconds=delay)
        return outcome

    def _target(self, url: str) -> Target:
        """The checked form of an endpoint's URL, parsed once per URL (the address is checked at each connection)."""
        target = self._targets.get(url)
        if target is None:
            if len(self._targets) > 10_000:
                self._targets.clear()
            target = self._targets[url] = check_url(url, allow_private=self.settings.webhook_allow_private_targets)
        return target

    async def _request(self, row: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
        """The body and headers of one delivery, as its channel signs it."""
        if row["channel"] == Channel.WEBSUB:
            if websub.topic_format(row["topic"]) == "ics":
                return await websub.calendar_push(self.pool, row, base_url=self.settings.base_url)
            return websub.push_request(row, base_url=self.settings.base_url)
        body = stored_body(row["payload"]) if row["event_id"] is None else self._bodies.body(row)
        return body, signing.headers(self._keys(row), signing.webhook_id(row["id"]), int(time.time()), body)

    def _keys(self, row: Mapping[str, Any]) -> list[bytes]:
        keys = [self._key(row["secret"])]
        expires = row["previous_secret_expires_at"]
        if row["previous_secret"] and expires is not None and expires > datetime.now(UTC):
            keys.append(self._key(row["previous_secret"]))
        return keys

    def _key(self, secret: str) -> bytes:
        key = self._secret_keys.get(secret)
        if key is None:
            if len(self._secret_keys) > 10_000:
                self._secret_keys.clear()
            key = self._secret_keys[secret] = signing.secret_key(secret)
        return key


def _describe(resp: aiohttp.ClientResponse, snippet: bytes) -> str:
    text = f"HTTP {resp.status}"
    if 300 <= resp.status < 400:
        return f"{text}: redirect to {resp.headers.get('Location', '?')} not followed"
    body = snippet.decode("utf-8", "replace").strip()
    return f"{text}: {body}" if body else text


async def next_due(pool: asyncpg.Pool) -> datetime | None:
    """When the next pending push delivery falls due, so a pass can be scheduled for then."""
    value: datetime | None = await pool.fetchval(
        """
        select min(d.next_attempt_at) from deliveries d
        join subscriptions s on s.id = d.subscription_id
        join webhook_endpoints w on w.id = s.endpoint_id and w.status = 'active'
        where d.status = 'pending' and s.channel in ('webhook', 'websub')
        """
    )
    return value

