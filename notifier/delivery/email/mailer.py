"""The email channel's sender: turning claimed deliveries into one message per subscriber, sending it, and recording
how it went; and the confirmation email of the double opt-in.

Rules kept: only active, confirmed subscribers are mailed (a confirmation excepted); a suppressed address is never
mailed, nor a paused subscription (`batches.prepare` holds deliveries to these, `send_confirmation` confirmations);
a temporary SMTP failure retries on EMAIL_RETRY_DELAYS; a permanent one fails the deliveries and, when the server
says the address is bad, suppresses it.

How a pass goes: one task claims batches (one subscriber's due deliveries each) just in time and reads everything
they need in one query; a few tasks send them, each message marked `sent` within a few hundredths of a second of
the server taking it, in statements shared with the messages taken meanwhile (`outbox.SentMarks`, at most as many as
there are SMTP connections), so a worker that dies can only leave the messages then in flight, and a few taken in
those last moments, to be sent twice. Claims have short
leases that a `LeaseKeeper` renews while the pass works on them, so a slow but live pass keeps its claims and a dead
worker's are handed back within a minute; a claim whose renewals have failed for so long that its lease may have
run out is not sent.

Many subscribers get the same news in the same words, so each distinct content is rendered once and merged per
recipient (see `merge`): only what differs per recipient is computed per recipient.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from urllib.parse import urlsplit

import asyncpg
from jinja2 import Environment

from notifier import subscriptions as subs
from notifier.delivery import outbox
from notifier.delivery.email.batches import KeptEntries, PreparedBatch, content_key, prepare, render_batch
from notifier.delivery.email.bounces import verp_address
from notifier.delivery.email.merge import (
    MergeTemplate,
    Placeholders,
    Skeleton,
    join_parts,
    link_holes,
    link_tokens,
)
from notifier.delivery.email.message import build_message, subject_line
from notifier.delivery.email.render import email_environment, render_confirm
from notifier.delivery.email.replies import SendResult, next_retry
from notifier.delivery.email.sender import SmtpSender
from notifier.delivery.email.smtp_config import SmtpConfig
from notifier.delivery.email.views import Links, Rendered
from notifier.leases import LeaseKeeper
from notifier.metrics import Metrics
from notifier.settings import Settings
from notifier.tokens import Tokens

log = logging.getLogger(__name__)

# How long a claimed batch may stay `sending` without a renewal before the sweeper hands it to another worker.
DEFAULT_LEASE = timedelta(seconds=30)
# A claim is only used while this share of its lease is left since it was made or last renewed: sending starts well
# before another worker may take it.
LEASE_USABLE = 0.5
# Distinct contents kept rendered during a pass; the claim order keeps recipients of the same news close together.
TEMPLATE_CACHE_SIZE = 256
# Addresses the merge writes into the To header as they are; anything else goes through `build_message`.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9.-]{1,253}")


@dataclass
class Mailer:
    """What sending email needs, built once per worker."""

    settings: Settings
    pool: asyncpg.Pool
    sender: SmtpSender
    tokens: Tokens
    env: Environment
    metrics: Metrics | None = None
    lease: timedelta = DEFAULT_LEASE
    concurrency: int = 8
    claim_size: int = 100
    _secret: bytes = field(init=False)
    domain: str = field(init=False)
    _holes: Placeholders = field(init=False, default_factory=Placeholders)
    _skeletons: dict[tuple[str | None, str | None, Links], Skeleton] = field(init=False, default_factory=dict)
    # `link_holes` for each number of subscriptions: the same for every message (each checks its links)
    _link_holes: dict[int, tuple[Links, tuple[str | None, ...]]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._secret = self.settings.ensure_secret_key().encode()
        sender_domain = parseaddr(self.settings.mail_from)[1].rpartition("@")[2]
        self.domain = sender_domain or urlsplit(self.settings.base_url).hostname or "localhost"

    @classmethod
    def create(
        cls, settings: Settings, pool: asyncpg.Pool, *, metrics: Metrics | None = None, lease: timedelta | None = None
    ) -> Mailer:
        sender = SmtpSender(
            SmtpConfig.from_url(settings.smtp_url),
            connections=settings.smtp_connections,
            rate_per_second=settings.smtp_rate_per_second,
        )
        tokens = Tokens(settings.ensure_secret_key(), confirm_max_age_seconds=settings.confirm_token_days * 86400)
        lease = lease or DEFAULT_LEASE
        # no more claimed at once than the rate limit can send in a small part of the lease
        claim_size = max(1, min(100, int(settings.smtp_rate_per_second * lease.total_seconds() * LEASE_USABLE / 4)))
        return cls(
            settings, pool, sender, tokens, email_environment(), metrics, lease,
            concurrency=settings.smtp_connections * 2, claim_size=claim_size,
        )

    async def close(self) -> None:
        await self.sender.close()

    # ---- addresses and links ----

    def url(self, path: str) -> str:
        return f"{self.settings.base_url}{path}"

    def _build(self, rendered: Rendered, to: str, links: Links | None, now: datetime | None = None) -> EmailMessage:
        # The VERP return path goes in the envelope only: RFC 5321 4.4 leaves Return-Path to the delivering server.
        return build_message(
            rendered,
            to=to,
            mail_from=self.settings.mail_from,
            links=links,
            list_id=f"Council alerts <alerts.{self.domain}>",
            message_id_domain=self.domain,
            now=now,
        )

    def _return_path(self, to: str) -> str:
        """The VERP envelope sender that brings a bounce back naming `to`; the plain bounce address for the rare
        address VERP cannot carry (a quoted local part with spaces)."""
        try:
            return verp_address("bounces", self.domain, to, self._secret)
        except ValueError:
            return f"bounces@{self.domain}"

    async def send_notice(self, rendered: Rendered, to: str) -> SendResult:
        """A message to one person about their own account (a partner's endpoint disabled): no list headers."""
        return await self._send(rendered, to, None)

    async def _send(self, rendered: Rendered, to: str, links: Links | None) -> SendResult:
        return await self.sender.send(self._build(rendered, to, links), sender=self._return_path(to), recipients=[to])

    # ---- deliveries ----

    async def send_due(self, *, now: datetime | None = None) -> int:
        """Claim and send everything due, batch by batch, until nothing is left. Returns the messages sent.

        `now` (default: the clock) is the moment the sender acts at: what is due, the digest's day, the weekly
        summary's week and the time of the next retry all follow from it.
        """
        marks = outbox.SentMarks(self.pool, batch=self.sender.connections)
        run = _Run(now, marks, LeaseKeeper(self.pool, self.lease, outbox.renew_leases))
        queue: asyncio.Queue[PreparedBatch | None] = asyncio.Queue()
        # claims are made just in time: once the senders are down to their last round, so nothing waits long
        low = asyncio.Event()
        sent = 0

        async def send() -> None:
            nonlocal sent
            while (work := await queue.get()) is not None:
                if queue.qsize() <= self.concurrency:
                    low.set()
                if self._claim_too_old(work, run):
                    continue
                try:
                    ok = await self._deliver_or_retry(work, run)
                except Exception:  # the database is gone too: the claim runs out and the sweeper brings it back
                    log.exception("could not record how sending deliveries %s went", work.batch.delivery_ids)
                    continue
                finally:
                    run.keeper.release(work.batch.delivery_ids)
                sent += ok  # not `sent += await ...`: that reads `sent` before the await and loses others' counts

        try:
            outcomes = await asyncio.gather(self._claim(run, queue, low), *(send() for _ in range(self.concurrency)),
                                            return_exceptions=True)
        finally:
            await run.marks.close()
            await run.keeper.close()
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return sent

    async def _claim(self, run: _Run, queue: asyncio.Queue[PreparedBatch | None], low: asyncio.Event) -> None:
        """Claim and prepare batches onto `queue` while the senders run low (`low` is set when they do); when
        nothing is left, one None for each sender to stop on."""
        try:
            while True:
                while queue.qsize() > self.concurrency:
                    low.clear()
                    await low.wait()
                claimed_at = time.monotonic()
                batches = await outbox.claim_email_batches(
                    self.pool, now=run.at(), lease=self.lease, limit=self.claim_size
                )
                if not batches:
                    return
                run.keeper.hold([i for b in batches for i in b.delivery_ids])
                works = await prepare(self.pool, batches, run.at(), claimed_at)
                # what `prepare` held back is already marked: nothing of it is worked on any more
                kept = {i for w in works for i in w.batch.delivery_ids}
                run.keeper.release([i for b in batches for i in b.delivery_ids if i not in kept])
                for work in works:
                    queue.put_nowait(work)
        finally:
            for _ in range(self.concurrency):
                queue.put_nowait(None)

    def _claim_too_old(self, work: PreparedBatch, run: _Run) -> bool:
        """Renewals have failed so long that the claim may have run out and gone to another worker: leave it to the
        sweeper rather than risk sending it twice."""
        held_for = time.monotonic() - max(work.claimed_at, run.keeper.renewed_at)
        if held_for <= self.lease.total_seconds() * LEASE_USABLE:
            return False
        log.warning("claim on deliveries %s too old to send; left for the sweeper", work.batch.delivery_ids)
        run.keeper.release(work.batch.delivery_ids)
        return True

    async def _deliver_or_retry(self, work: PreparedBatch, run: _Run) -> bool:
        try:
            return await self._deliver(work, run)
        except Exception as e:  # a bug in one batch must not strand it in `sending` until the lease runs out
            log.exception("sending deliveries %s failed", work.batch.delivery_ids)
            ids = [r["delivery_id"] for r in work.rows]
            error = f"internal error: {type(e).__name__}: {e}"
            delay = next_retry(work.batch.attempts)
            if delay is None:
                await outbox.mark_final(self.pool, ids, status="failed", error=error)
            else:
                await outbox.mark_retry(self.pool, ids, error=error, at=run.at() + delay)
            return False

    async def _deliver(self, work: PreparedBatch, run: _Run) -> bool:
        now = run.at()
        tz = work.timezone or self.settings.default_timezone
        subscription_ids = sorted({r["subscription_id"] for r in work.rows})
        template = await run.template(content_key(work, tz, subscription_ids, now),
                                      lambda: self._template(work, tz, subscription_ids, now, run))
        values = link_tokens(self.tokens, work.subscriber_id, subscription_ids)
        return_path = self._return_path(work.email)
        data: EmailMessage | bytes
        message_id: str | None = None
        if _PLAIN_ADDRESS.fullmatch(work.email):
            message_id = f"<{secrets.token_hex(16)}@{self.domain}>"
            data = template.merge({**values, "to": work.email, "msgid": message_id})
        else:  # quoted local parts, internationalised addresses: the email package writes those
            r, holes = template.rendered, template.links
            filled = Rendered(r.subject, join_parts(template.text, values), join_parts(template.html, values), r.kind)
            links = Links(
                manage=self._holes.fill(holes.manage, values),
                unsubscribe=self._holes.fill(holes.unsubscribe, values),
                one_click=self._holes.fill(holes.one_click, values) if holes.one_click else None,
                unsubscribe_subscription=(
                    self._holes.fill(holes.unsubscribe_subscription, values) if holes.unsubscribe_subscription else None
                ),
            )
            data = self._build(filled, work.email, links)
        result = await self.sender.send(data, sender=return_path, recipients=[work.email], message_id=message_id)
        ids = [r["delivery_id"] for r in work.rows]
        return await self._record(ids, work.email, result, work.batch.attempts, run)

    async def _record(self, ids: list[int], email: str, result: SendResult, attempts: int, run: _Run) -> bool:
        now = run.at()
        if result.ok:
            await run.marks.sent(ids, result.message_id, now)
            self._count("sent", len(ids))
            return True
        if result.permanent:
            await outbox.mark_final(self.pool, ids, status="failed", error=result.message)
            if result.address_bad:
                await subs.suppress(self.pool, email, "bounced", result.message)
            self._count("failed", len(ids))
            log.warning("permanent failure mailing %s: %s", email, result.message)
            return False
        delay = next_retry(attempts)
        if delay is None:
            await outbox.mark_final(self.pool, ids, status="failed", error=f"gave up: {result.message}")
            self._count("failed", len(ids))
        else:
            await outbox.mark_retry(self.pool, ids, error=result.message, at=now + delay)
            self._count("retried", len(ids))
        return False

    def _count(self, outcome: str, n: int) -> None:
        if self.metrics is not None:
            self.metrics.deliveries.labels("email", outcome).inc(n)

    # ---- rendering ----

    async def _template(
        self, work: PreparedBatch, tz: str, subscription_ids: Sequence[int], now: datetime, run: _Run
    ) -> MergeTemplate:
        """The content of `work`'s email with placeholders for the recipient's own values, ready to merge."""
        links, stops = self._link_holes.get(len(subscription_ids)) or self._holes_for(len(subscription_ids))
        rendered = await render_batch(self.pool, self.env, work, tz=tz, subscription_ids=subscription_ids, now=now,
                                      links=links, stops=stops, base_url=self.settings.base_url, kept=run.entries)
        return MergeTemplate.assemble(rendered, links, self._skeleton(rendered, links), hole=self._holes.hole,
                                      split=self._holes.split, date=format_datetime(datetime.now(UTC)))

    def _holes_for(self, subscriptions: int) -> tuple[Links, tuple[str | None, ...]]:
        links, stops = link_holes(self.url, self._holes, subscriptions)
        found = self._link_holes[subscriptions] = (links, tuple(stops))
        return found

    def _skeleton(self, rendered: Rendered, links: Links) -> Skeleton:
        """The MIME skeleton for `rendered`'s subject and kind with `links` (placeholders), kept: contents differ
        far more often than subjects do (a day's digests have a handful). Each is made from one built by
        `build_message` for the kind and links with a placeholder subject, with the subject's own header line:
        alerts about one event each have a subject each, and building a whole message costs several times that."""
        key = (rendered.subject, rendered.kind, links)
        skeleton = self._skeletons.get(key)
        if skeleton is None:
            base_key = (None, rendered.kind, links)
            base = self._skeletons.get(base_key)
            if base is None:
                holes = MergeTemplate.holes(Rendered(self._holes.hole("subject"), "", "", rendered.kind))
                base = self._keep(base_key, Skeleton.of(self._build(holes, MergeTemplate.TO, links), self._holes.hole))
            skeleton = self._keep(key, base.with_subject(subject_line(rendered.subject), self._holes.hole))
        return skeleton

    def _keep(self, key: tuple[str | None, str | None, Links], skeleton: Skeleton) -> Skeleton:
        self._skeletons[key] = skeleton
        if len(self._skeletons) > TEMPLATE_CACHE_SIZE:
            del self._skeletons[next(iter(self._skeletons))]
        return skeleton

    # ---- confirmation ----

    async def send_confirmation(self, subscription_id: int) -> str:
        """Send the confirmation for a subscription unless one went out recently. Returns what happened."""
        row = await self.pool.fetchrow(
            f"""
            update subscriptions s set confirm_sent_at = now()
            from subscribers b
            where s.id = $1 and b.id = s.subscriber_id
              and (b.status = 'pending' or s.confirmed_at is null) and b.status in ('pending', 'active')
              and (s.confirm_sent_at is null or s.confirm_sent_at < now() - interval '{RESEND_WINDOW}')
              and not exists (select 1 from suppressions x where x.email = lower(b.email))
            returning b.id as subscriber_id, b.email, s.query, s.councils, s.regions, s.committees, s.event_types
            """,
            subscription_id,
        )
        if row is None:
            return "nothing to send"
        names = {
            r["slug"]: r["name"]
            for r in await self.pool.fetch("select slug, name from councils where slug = any($1)", row["councils"])
        }
        token = self.tokens.make("confirm", row["subscriber_id"], subscription_id)
        rendered = render_confirm(
            confirm_url=self.url(f"/confirm/{token}"),
            following=[subs.describe_subscription(row, names)],
            expires_days=self.settings.confirm_token_days,
            env=self.env,
        )
        # list headers here too: whoever did not ask for this can stop it from their mail client, for good
        everything = self.url("/unsubscribe/" + self.tokens.make("unsubscribe", row["subscriber_id"]))
        links = Links(manage=self.url("/manage/" + self.tokens.make("manage", row["subscriber_id"])),
                      unsubscribe=everything, one_click=everything)
        result = await self._send(rendered, row["email"], links)
        if result.ok:
            return "sent"
        # let a retry (or a fresh request) send it again
        await self.pool.execute("update subscriptions set confirm_sent_at = null where id = $1", subscription_id)
        if result.permanent:
            if result.address_bad:
                await subs.suppress(self.pool, row["email"], "bounced", result.message)
            return f"failed: {result.message}"
        raise TemporaryFailure(result.message)


class TemporaryFailure(Exception):
    """The mail server could not take a message now; the job retries later."""


RESEND_WINDOW = "10 minutes"


@dataclass
class _Run:
    """One pass of the sender: the moment it acts at (None: the clock), its marks, and the contents rendered so far."""

    now: datetime | None
    marks: outbox.SentMarks
    keeper: LeaseKeeper
    templates: OrderedDict[Hashable, asyncio.Future[MergeTemplate]] = field(default_factory=OrderedDict)
    entries: KeptEntries = field(default_factory=KeptEntries)

    def at(self) -> datetime:
        return self.now or datetime.now(UTC)

    async def template(self, key: Hashable, make: Callable[[], Awaitable[MergeTemplate]]) -> MergeTemplate:
        """The content for `key`, rendered once however many recipients ask for it at the same time: the first to
        ask renders it itself (a task started for each content cost about 10 us, and most contents of personal
        digests are asked for once), and the others wait for what it makes."""
        future = self.templates.get(key)
        if future is not None:
            self.templates.move_to_end(key)
            try:
                return await asyncio.shield(future)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if future.cancelled() and task is not None and not task.cancelling():
                    # the one rendering it was cut short, and this asker was not: it renders the content itself
                    return await self.template(key, make)
                raise
        future = self.templates[key] = asyncio.get_running_loop().create_future()
        if len(self.templates) > TEMPLATE_CACHE_SIZE:
            self.templates.popitem(last=False)
        try:
            template = await make()
        except asyncio.CancelledError:
            # not rendered: whoever asks next renders it, and so does each of those waiting for it now
            if self.templates.get(key) is future:
                del self.templates[key]
            future.cancel()
            raise
        except Exception as e:
            future.set_exception(e)
            future.exception()  # retrieved: raised here, and to whoever waits for it
            raise
        future.set_result(template)
        return template
