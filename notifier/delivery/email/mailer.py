"""The email channel: turning claimed deliveries into one message per subscriber, sending it, and recording how it
went; and the confirmation email of the double opt-in.

Rules kept here: only active, confirmed subscribers are mailed (a confirmation excepted); a suppressed address is
never mailed, nor a paused subscription; a temporary SMTP failure retries on EMAIL_RETRY_DELAYS; a permanent one
fails the deliveries and, when the server says the address is bad, suppresses it.

How a pass goes: one task claims batches (one subscriber's due deliveries each) just in time and reads everything
they need in one query; a few tasks send them, each message marked `sent` within a few hundredths of a second of
the server taking it, in statements shared with the messages taken meanwhile (`outbox.SentMarks`), so a worker that
dies can only leave the messages then in flight, or taken in those last moments, to be sent twice. A claim that
waited so long that its lease may have run out is not sent.

Many subscribers get the same news in the same words: everyone following a council hears of its new meeting. So the
content is rendered once per distinct content (the same events, matched terms, followed filters, time zone and day)
and merged per recipient, mail-merge style: the template is rendered and built by `compose` with placeholders where
each recipient's links, address and Message-ID go, and each message is that template with the placeholders filled
in and its two parts quoted-printable encoded. Only what differs per recipient is computed per recipient.
"""

from __future__ import annotations

import asyncio
import binascii
import logging
import re
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import parseaddr
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import asyncpg
from aiosmtplib.email import flatten_message
from jinja2 import Environment

from notifier import subscriptions as subs
from notifier.delivery import outbox
from notifier.delivery.email.bounces import verp_address
from notifier.delivery.email.message import build_message
from notifier.delivery.email.render import email_environment, render_alert, render_confirm, render_digest, render_weekly
from notifier.delivery.email.replies import SendResult, next_retry
from notifier.delivery.email.sender import SmtpSender
from notifier.delivery.email.smtp_config import SmtpConfig
from notifier.delivery.email.views import EntryView, Following, Links, Rendered, SourceWarning, WeeklyCouncil
from notifier.delivery.email.words import describe_event, documents_from_changes
from notifier.metrics import Metrics
from notifier.settings import Settings
from notifier.tokens import Tokens
from notifier.topics.highlight import make_excerpt

log = logging.getLogger(__name__)

# A council whose source has failed this many polls in a row is named in emails as possibly missing updates.
FAILING_SOURCE_STREAK = 3
# How long a claimed batch may stay `sending` before the sweeper hands it to another worker.
DEFAULT_LEASE = timedelta(minutes=5)
# Gmail clips messages over ~100 KB: an email lists at most this many entries.
MAX_ENTRIES = 100
WEEKLY_SECTION_LIMIT = 30
# A claim is only used while this share of its lease is left: sending starts well before another worker may take it.
LEASE_USABLE = 0.5
# Distinct contents kept rendered during a pass; the claim order keeps recipients of the same news close together.
TEMPLATE_CACHE_SIZE = 256
# Line ends as `build_message` reads a body's: CR, LF or CRLF.
_LINE_END = re.compile(r"\r\n|\r|\n")
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
    # placeholders of the merge: random per process, so no council's text can contain one
    _mark: str = field(init=False, default_factory=lambda: "m" + secrets.token_hex(6))

    def __post_init__(self) -> None:
        self._secret = self.settings.ensure_secret_key().encode()
        sender_domain = parseaddr(self.settings.mail_from)[1].rpartition("@")[2]
        self.domain = sender_domain or urlsplit(self.settings.base_url).hostname or "localhost"
        self._placeholder = re.compile(re.escape(self._mark) + r"_([a-z0-9]+)_")

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

    def _hole(self, name: str) -> str:
        return f"{self._mark}_{name}_"

    def _link_holes(self, subscriptions: int) -> tuple[Links, list[str | None]]:
        """Links with placeholders for tokens: "manage", "all", "one" (a message about one subscription) or "stopN"
        (the N-th of several), and the stop links for the footer's list of what is followed."""
        one = self.url("/unsubscribe/" + self._hole("one")) if subscriptions == 1 else None
        everything = self.url("/unsubscribe/" + self._hole("all"))
        links = Links(
            manage=self.url("/manage/" + self._hole("manage")),
            unsubscribe=everything,
            # RFC 8058 one-click stops what this message is about: its one subscription, or everything
            one_click=one or everything,
            unsubscribe_subscription=one,
        )
        stops: list[str | None] = (
            [self.url("/unsubscribe/" + self._hole(f"stop{i}")) for i in range(subscriptions)]
            if subscriptions > 1 else [None]
        )
        return links, stops

    def _link_tokens(self, subscriber_id: int, subscription_ids: Sequence[int]) -> dict[str, str]:
        manage, everything, each = self.tokens.email_links(subscriber_id, subscription_ids)
        tokens = {"manage": manage, "all": everything}
        if len(each) == 1:
            tokens["one"] = each[0]
        else:
            for i, token in enumerate(each):
                tokens[f"stop{i}"] = token
        return tokens

    def _fill(self, text: str, values: Mapping[str, str]) -> str:
        return self._placeholder.sub(lambda m: values[m[1]], text)

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

    async def _send(self, rendered: Rendered, to: str, links: Links | None) -> SendResult:
        return await self.sender.send(self._build(rendered, to, links), sender=self._return_path(to), recipients=[to])

    # ---- deliveries ----

    async def send_due(self, *, now: datetime | None = None) -> int:
        """Claim and send everything due, batch by batch, until nothing is left. Returns the messages sent.

        `now` (default: the clock) is the moment the sender acts at: what is due, the digest's day, the weekly
        summary's week and the time of the next retry all follow from it.
        """
        run = _Run(now, outbox.SentMarks(self.pool))
        queue: asyncio.Queue[_Work | None] = asyncio.Queue()
        # claims are made just in time: once the senders are down to their last round, so nothing waits long
        low = asyncio.Event()
        sent = 0

        async def claim() -> None:
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
                    for work in await self._prepare(batches, run.at(), claimed_at):
                        queue.put_nowait(work)
            finally:
                for _ in range(self.concurrency):
                    queue.put_nowait(None)

        async def send() -> None:
            nonlocal sent
            while (work := await queue.get()) is not None:
                if queue.qsize() <= self.concurrency:
                    low.set()
                if time.monotonic() - work.claimed_at > self.lease.total_seconds() * LEASE_USABLE:
                    # the mail server is so slow that the claim may have run out and gone to another worker:
                    # leave it to the sweeper rather than risk sending it twice
                    log.warning("claim on deliveries %s too old to send; left for the sweeper", work.batch.delivery_ids)
                    continue
                try:
                    ok = await self._deliver_or_retry(work, run)
                except Exception:  # the database is gone too: the claim runs out and the sweeper brings it back
                    log.exception("could not record how sending deliveries %s went", work.batch.delivery_ids)
                    continue
                sent += ok  # not `sent += await ...`: that reads `sent` before the await and loses others' counts

        try:
            outcomes = await asyncio.gather(claim(), *(send() for _ in range(self.concurrency)),
                                            return_exceptions=True)
        finally:
            await run.marks.close()
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return sent

    async def _prepare(
        self, batches: list[outbox.ClaimedBatch], now: datetime, claimed_at: float
    ) -> list[_Work]:
        """Read what the claimed batches need in one query; skip what must not be sent (and say why)."""
        rows = await self.pool.fetch(_BATCH_ROWS, [i for b in batches for i in b.delivery_ids])
        batch_of = {i: n for n, b in enumerate(batches) for i in b.delivery_ids}
        rows_of: list[list[asyncpg.Record]] = [[] for _ in batches]
        for r in rows:  # in the query's order, which is the email's
            rows_of[batch_of[r["delivery_id"]]].append(r)
        failing = await self._failing(sorted({r["council"] for r in rows}))
        skipped: dict[str, list[int]] = {}
        work = []
        for batch, found in zip(batches, rows_of, strict=True):
            gone = sorted(set(batch.delivery_ids) - {r["delivery_id"] for r in found})
            if gone:
                skipped.setdefault("subscription deleted", []).extend(gone)
            if not found:
                continue
            first = found[0]
            if first["suppressed"] or first["subscriber_status"] != "active":
                reason = "address suppressed" if first["suppressed"] else "subscriber not active"
                skipped.setdefault(reason, []).extend(r["delivery_id"] for r in found)
                continue
            live = []
            for r in found:
                if r["confirmed_at"] is None:
                    skipped.setdefault("subscription not confirmed", []).append(r["delivery_id"])
                elif r["paused_until"] is not None and r["paused_until"] > now:
                    skipped.setdefault("subscription paused", []).append(r["delivery_id"])
                else:
                    live.append(r)
            if live:
                work.append(
                    _Work(batch, first["subscriber_id"], first["email"], first["timezone"], live, claimed_at, failing)
                )
        for reason, ids in skipped.items():
            await outbox.mark_final(self.pool, ids, status="skipped", error=reason)
        return work

    async def _deliver_or_retry(self, work: _Work, run: _Run) -> bool:
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

    async def _deliver(self, work: _Work, run: _Run) -> bool:
        now = run.at()
        tz = work.timezone or self.settings.default_timezone
        subscription_ids = sorted({r["subscription_id"] for r in work.rows})
        template = await run.template(self._content_key(work, tz, subscription_ids, now),
                                      lambda: self._template(work, tz, subscription_ids, now))
        values = self._link_tokens(work.subscriber_id, subscription_ids)
        return_path = self._return_path(work.email)
        data: EmailMessage | bytes
        message_id: str | None = None
        if _PLAIN_ADDRESS.fullmatch(work.email):
            message_id = f"<{uuid.uuid4().hex}@{self.domain}>"
            data = template.merge({**values, "to": work.email, "msgid": message_id})
        else:  # quoted local parts, internationalised addresses: the email package writes those
            r, holes = template.rendered, template.links
            filled = Rendered(r.subject, _join(template.text, values), _join(template.html, values), r.kind)
            links = Links(
                manage=self._fill(holes.manage, values),
                unsubscribe=self._fill(holes.unsubscribe, values),
                one_click=self._fill(holes.one_click, values) if holes.one_click else None,
                unsubscribe_subscription=(
                    self._fill(holes.unsubscribe_subscription, values) if holes.unsubscribe_subscription else None
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

    @staticmethod
    def _content_key(work: _Work, tz: str, subscription_ids: Sequence[int], now: datetime) -> Hashable:
        """Everything the rendered content depends on, except the recipient's own links."""
        filters = {
            r["subscription_id"]: (r["query"], *(tuple(r[k]) for k in ("councils", "regions", "committees", "kinds",
                                                                         "event_types")))
            for r in work.rows
        }
        return (
            work.batch.frequency,
            tz,
            now.astimezone(ZoneInfo(tz)).date(),
            tuple((r["event_id"], tuple(r["matched_terms"] or ())) for r in work.rows),
            tuple(filters[s] for s in subscription_ids),
        )

    async def _template(self, work: _Work, tz: str, subscription_ids: Sequence[int], now: datetime) -> _Template:
        rows = work.rows
        links, stops = self._link_holes(len(subscription_ids))
        names = {r["council"]: r["council_name"] for r in rows}
        following = []
        for sub_id, stop in zip(subscription_ids, stops, strict=True):
            row = next(r for r in rows if r["subscription_id"] == sub_id)
            following.append(Following(subs.describe_subscription(row, names), work.batch.frequency, stop))
        warnings = sorted((work.failing[c] for c in names if c in work.failing), key=lambda w: w.council)
        # an event that several of the subscriber's subscriptions matched is listed once, with all their terms
        first: dict[int, asyncpg.Record] = {}
        terms: dict[int, list[str]] = {}
        for r in rows:
            first.setdefault(r["event_id"], r)
            seen = terms.setdefault(r["event_id"], [])
            seen += [t for t in r["matched_terms"] or () if t not in seen]
        events = list(first.values())[:MAX_ENTRIES]
        entries = [self._entry(r, tz, terms[r["event_id"]]) for r in events]
        if work.batch.frequency == "weekly":
            councils = await self._weekly(events, entries, warnings, now)
            week_start = now.astimezone(ZoneInfo(tz)).date() - timedelta(days=7)
            rendered = render_weekly(councils, week_start=week_start, links=links, following=following, timezone=tz,
                                     env=self.env)
        elif work.batch.frequency == "daily":
            day = now.astimezone(ZoneInfo(tz)).date()
            rendered = render_digest(entries, day=day, links=links, following=following, warnings=warnings,
                                     timezone=tz, env=self.env)
        else:
            rendered = render_alert(entries, links=links, following=following, warnings=warnings, timezone=tz,
                                    env=self.env)
        message = self._build(_Template.holes(rendered), _Template.TO, links)
        return _Template.make(rendered, links, message, hole=self._hole, split=self._placeholder.split)

    def _entry(self, r: asyncpg.Record, tz: str, terms: list[str]) -> EntryView:
        return EntryView(
            event_type=r["type"],
            council=r["council_name"],
            title=r["title"],
            what=describe_event(r["type"], r["changes"], timezone=tz),
            summary=r["summary"],
            committee=r["committee"],
            url=r["url"],
            when=r["starts_at"],
            time_known=(r["data"] or {}).get("time_known", True) is not False,
            documents=documents_from_changes(r["changes"]),
            matched_terms=terms,
            excerpt=make_excerpt(r["body"] or "", terms) if terms else "",
        )

    async def _failing(self, councils: list[str]) -> dict[str, SourceWarning]:
        """The councils (of these) whose feed has been failing, with what to say about it."""
        rows = await self.pool.fetch(
            """
            select c.slug, c.name, min(coalesce(s.last_success_at, s.created_at)) as since,
                   max(s.last_error) as detail
            from sources s join councils c on c.slug = s.council
            where s.council = any($1) and s.enabled and s.consecutive_failures >= $2
            group by c.slug, c.name
            """,
            councils, FAILING_SOURCE_STREAK,
        )
        return {r["slug"]: SourceWarning(r["name"], r["since"], r["detail"] or "") for r in rows}

    async def _weekly(
        self, rows: Sequence[asyncpg.Record], entries: list[EntryView], warnings: list[SourceWarning], now: datetime
    ) -> list[WeeklyCouncil]:
        """Each followed council's week: the matched events, and for whole-council subscriptions the council's
        meetings held and coming, decisions and documents from its items."""
        by_council: dict[str, dict[str, list[EntryView]]] = {}
        seen: set[tuple[int, str]] = set()  # an item already in a section as an event is not listed there again
        for r, entry in zip(rows, entries, strict=False):
            section = _weekly_section(r["type"], r["starts_at"], now)
            by_council.setdefault(r["council"], {}).setdefault(section, []).append(entry)
            seen.add((r["item_id"], section))
        names = {r["council"]: r["council_name"] for r in rows}
        whole = sorted({c for r in rows if not r["query"] for c in (r["councils"] or [r["council"]])})
        if whole:
            items = await self.pool.fetch(_WEEK_ITEMS, whole, now - timedelta(days=7), now + timedelta(days=7),
                                          WEEKLY_SECTION_LIMIT, now)
            for item in items:
                if (item["id"], item["section"]) in seen:
                    continue
                names.setdefault(item["council"], item["council_name"])
                by_council.setdefault(item["council"], {}).setdefault(item["section"], []).append(
                    EntryView(
                        event_type=_ITEM_EVENT[item["kind"]], council=item["council_name"], title=item["title"],
                        what=item["status"] or "", committee=item["committee"], url=item["url"],
                        when=item["starts_at"],
                    )
                )
        warning_for = {w.council: w for w in warnings}
        return [
            WeeklyCouncil(
                names[c], upcoming=s.get("upcoming", []), held=s.get("held", []), decisions=s.get("decisions", []),
                documents=s.get("documents", []), warning=warning_for.get(names[c]),
            )
            for c, s in sorted(by_council.items(), key=lambda kv: names[kv[0]])
        ]

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


@dataclass(frozen=True, slots=True)
class _Work:
    """A claimed batch with what sending it needs: its subscriber and its deliveries still to send."""

    batch: outbox.ClaimedBatch
    subscriber_id: int
    email: str
    timezone: str | None
    rows: list[asyncpg.Record]
    claimed_at: float  # time.monotonic() when claimed
    failing: Mapping[str, SourceWarning]  # councils whose feeds are failing, by slug


@dataclass
class _Run:
    """One pass of the sender: the moment it acts at (None: the clock), its marks, and the contents rendered so far."""

    now: datetime | None
    marks: outbox.SentMarks
    templates: OrderedDict[Hashable, asyncio.Future[_Template]] = field(default_factory=OrderedDict)

    def at(self) -> datetime:
        return self.now or datetime.now(UTC)

    async def template(self, key: Hashable, make: Callable[[], Awaitable[_Template]]) -> _Template:
        """The content for `key`, rendered once however many recipients ask for it at the same time."""
        future = self.templates.get(key)
        if future is None:
            future = asyncio.ensure_future(make())
            self.templates[key] = future
            if len(self.templates) > TEMPLATE_CACHE_SIZE:
                self.templates.popitem(last=False)
        else:
            self.templates.move_to_end(key)
        return await asyncio.shield(future)


@dataclass(frozen=True, slots=True)
class _Template:
    """A rendered email with placeholders, and its MIME form from `build_message` made ready for the merge.

    `text` and `html` are the rendered bodies split around their placeholders: literal text at even places, the
    names of the values that go in between at odd ones ("to", "msgid" and the links' tokens). `pieces` is the whole
    message on the wire: bytes where it is the same for every recipient (the bodies' lines without placeholders
    already quoted-printable encoded), and between them `_Fill`s, the header lines and body lines that hold
    placeholders, filled in and encoded per recipient. Quoted-printable encodes each line on its own (soft breaks
    and the escaping of trailing white space and of a lone dot never reach past a line end), so encoding a body's
    lines in runs gives the same bytes as encoding it whole, and a recipient's message costs only the few lines
    with their links.
    """

    TO = "recipient@merge.invalid"
    TEXT = "mergetextbody"
    HTML = "mergehtmlbody"

    rendered: Rendered
    links: Links
    text: list[str]
    html: list[str]
    pieces: list[bytes | _Fill]

    @classmethod
    def holes(cls, rendered: Rendered) -> Rendered:
        return Rendered(rendered.subject, cls.TEXT, cls.HTML, rendered.kind)

    @classmethod
    def make(
        cls, rendered: Rendered, links: Links, message: EmailMessage, *, hole: Callable[[str], str],
        split: Callable[[str], list[str]],
    ) -> _Template:
        # ASCII whatever the server takes: quoted-printable bodies and RFC 2047 headers need no 8BITMIME
        data = flatten_message(message, cte_type="7bit")
        head, text_mark, rest = data.partition(b"\r\n" + cls.TEXT.encode() + b"\r\n")
        middle, html_mark, tail = rest.partition(b"\r\n" + cls.HTML.encode() + b"\r\n")
        message_id = str(message["Message-ID"]).encode()
        if not (text_mark and html_mark) or head.count(message_id) != 1 or head.count(b" " + cls.TO.encode()) != 1:
            raise RuntimeError("the message template does not have the shape the merge expects")
        head = head.replace(b" " + cls.TO.encode(), b" " + hole("to").encode())
        head = head.replace(message_id, hole("msgid").encode())
        pieces = [
            *_pieces(head.decode("ascii") + "\r\n", split, qp=False),
            *_pieces(_tidy(rendered.text), split, qp=True),
            middle + b"\r\n",
            *_pieces(_tidy(rendered.html), split, qp=True),
            tail,
        ]
        # adjacent literals joined once here rather than for every recipient
        joined: list[bytes | _Fill] = []
        for piece in pieces:
            if isinstance(piece, bytes) and joined and isinstance(joined[-1], bytes):
                joined[-1] += piece
            else:
                joined.append(piece)
        return cls(rendered, links, split(rendered.text), split(rendered.html), joined)

    def merge(self, values: Mapping[str, str]) -> bytes:
        """The message for one recipient: `values` has their address ("to"), its Message-ID ("msgid") and the
        tokens of their links."""
        return b"".join(p if isinstance(p, bytes) else p.fill(values) for p in self.pieces)


@dataclass(frozen=True, slots=True)
class _Fill:
    """Lines of the merged message that hold placeholders, as a `str.format` template (filled in C, where joining
    the parts in Python would cost several times as much); quoted-printable encoded (a body's lines) or ASCII as
    they are (a header's)."""

    template: str
    qp: bool

    @classmethod
    def of(cls, parts: list[str], *, qp: bool) -> _Fill:
        """From `parts` as in `_Template.text`: literal text at even places, value names at odd ones."""
        template = "".join(
            "{" + p + "}" if i % 2 else p.replace("{", "{{").replace("}", "}}") for i, p in enumerate(parts)
        )
        return cls(template, qp)

    def fill(self, values: Mapping[str, str]) -> bytes:
        text = self.template.format_map(values)
        return _qp(text) if self.qp else text.encode("ascii")


def _pieces(text: str, split: Callable[[str], list[str]], *, qp: bool) -> list[bytes | _Fill]:
    """`text` (whole lines) as the merge writes it: runs of lines without placeholders encoded now, runs of lines
    with them left to fill. Runs break only at line ends, where quoted-printable starts afresh."""
    pieces: list[bytes | _Fill] = []

    def flush(run: list[str], holes: bool) -> None:
        chunk = "".join(run)
        if holes:
            pieces.append(_Fill.of(split(chunk), qp=qp))
        else:
            pieces.append(_qp(chunk) if qp else chunk.encode("ascii"))

    run: list[str] = []
    run_holes = False
    for line in text.split("\n")[:-1]:  # text ends with a line end
        holes = len(split(line)) > 1
        if run and holes != run_holes:
            flush(run, run_holes)
            run = []
        run.append(line + "\n")
        run_holes = holes
    if run:
        flush(run, run_holes)
    return pieces


def _join(parts: list[str], values: Mapping[str, str]) -> str:
    return "".join(values[p] if i % 2 else p for i, p in enumerate(parts))


def _tidy(text: str) -> str:
    """A body's line ends as `build_message` leaves them: plain newlines, and one at the end. Rendered text has
    them already (compose tidies it so); placeholders' values hold no line breaks, so this holds for the filled
    text too."""
    if "\r" in text or not text.endswith("\n"):
        # line ends as bytes.splitlines sees them (CR, LF, CRLF), not str.splitlines's wider set
        lines = _LINE_END.split(text)
        if lines[-1] == "":
            lines.pop()
        text = "\n".join(lines) + "\n"
    return text


def _qp(text: str) -> bytes:
    """Lines of a body as `build_message` encodes them: UTF-8, quoted-printable, CRLF line ends. `text` is tidy
    (see `_tidy`)."""
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")


def _weekly_section(event_type: str, starts_at: datetime | None, now: datetime) -> str:
    if event_type.startswith("decision."):
        return "decisions"
    if event_type.startswith("meeting."):
        return "upcoming" if starts_at is not None and starts_at >= now else "held"
    return "documents"


_ITEM_EVENT = {
    "meeting": "meeting.scheduled",
    "decision": "decision.published",
    "document": "document.published",
    "agenda_item": "agenda.published",
}

# What a claimed set of deliveries needs, in the order emails list them.
_BATCH_ROWS = """
    select d.id as delivery_id, d.subscription_id, d.matched_terms, e.id as event_id, e.type, e.changes, e.summary,
           e.council, c.name as council_name, i.id as item_id, i.kind, i.title, i.body, i.committee, i.starts_at,
           i.url, i.data, s.query, s.councils, s.regions, s.committees, s.kinds, s.event_types, s.confirmed_at,
           s.paused_until, b.id as subscriber_id, b.email, b.status as subscriber_status, b.timezone,
           exists (select 1 from suppressions x where x.email = lower(b.email)) as suppressed
    from deliveries d
    join subscriptions s on s.id = d.subscription_id
    join subscribers b on b.id = s.subscriber_id
    join events e on e.id = d.event_id
    join items i on i.id = e.item_id
    join councils c on c.slug = e.council
    where d.id = any($1::bigint[])
    order by c.name, i.committee nulls last, coalesce(i.starts_at, e.occurred_at), e.id
"""

# A council's week from its items: meetings in the past 7 days (held) and the next 7 (upcoming), decisions and
# documents first seen in the past 7 days.
_WEEK_ITEMS = """
    select * from (
        select i.id, i.kind, i.council, c.name as council_name, i.title, i.committee, i.starts_at, i.url, i.status,
               case
                   when i.kind = 'meeting' and i.starts_at >= $5 then 'upcoming'
                   when i.kind = 'meeting' then 'held'
                   when i.kind = 'decision' then 'decisions'
                   else 'documents'
               end as section,
               row_number() over (partition by i.council, i.kind order by i.starts_at, i.id) as n
        from items i join councils c on c.slug = i.council
        where i.council = any($1)
          and (
              (i.kind = 'meeting' and i.starts_at >= $2 and i.starts_at < $3 and coalesce(i.status, '') <> 'cancelled')
              or (i.kind in ('decision', 'document') and i.first_seen_at >= $2 and i.first_seen_at <= $5)
          )
    ) x
    where n <= $4
    order by council_name, committee nulls last, starts_at
"""
