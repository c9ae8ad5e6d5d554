"""What the end-to-end scenarios share: the councils registered and polled, the partner's API, the residents (made
through the API and through the pages) and what each of them, the partner's endpoint and the WebSub callbacks
should hear of, and the report each scenario prints.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from arq.connections import ArqRedis

from notifier.councils import add_council, add_source
from notifier.partners import create_partner
from tests.e2e.councils import FakeCouncils
from tests.e2e.pages import forged_posts_refused, subscribe_through_pages
from tests.e2e.stack import Api, Stack, counts, wait_for
from tests.e2e.websub import WebSubSubscriber
from tests.servers import SmtpServer, WebhookReceiver


@dataclass
class World:
    """What a scenario set up: the councils' sources, the partner's API, who follows what."""

    sources: list[int]
    api: Api
    redis: ArqRedis
    recipients: dict[str, dict[str, Any]] = field(default_factory=dict)  # email → {"filter", "frequency"}
    endpoint: dict[str, Any] | None = None
    websub: WebSubSubscriber | None = None
    topics: dict[str, str] = field(default_factory=dict)  # WebSub callback name → the SQL `where` its topic follows
    pushes_after: int = 0  # the last event before the WebSub subscriptions began


async def poll_all(world: World, pool: asyncpg.Pool, tag: str) -> None:
    """Every council polled now (as the scheduler would), and every poll finished."""
    before = await pool.fetchval("select count(*) from poll_runs")
    for source_id in world.sources:
        await world.redis.enqueue_job("poll_source", source_id, _job_id=f"poll:{source_id}:{tag}")

    async def done() -> bool:
        return bool(await pool.fetchval("select count(*) from poll_runs") >= before + len(world.sources))

    await wait_for(f"the {tag} polls", done)


async def build_world(pool: asyncpg.Pool, councils: FakeCouncils, stack: Stack, redis: ArqRedis,
                      receiver: WebhookReceiver | None = None, websub: WebSubSubscriber | None = None,
                      smtp: SmtpServer | None = None) -> World:
    """The councils polled once, then who follows what: residents through the API (and through the pages when an
    SMTP server is given, for their confirmation), the partner's endpoint and WebSub callbacks when given."""
    sources = []
    for n, council in enumerate(councils.councils):
        await add_council(pool, council.slug, council.name, region=council.region, nation=council.nation)
        sources.append(await add_source(pool, council.slug, "moderngov", councils.base(n), interval_minutes=1440))
    # the scheduler leaves them to the test: each poll is asked for
    await pool.execute("update sources set next_poll_at = now() + interval '1 day'")
    _, key = await create_partner(pool, "Local newsroom", contact_email="tech@news.example",
                                  rate_limit_per_minute=100_000)
    world = World(sources, Api(stack.base_url, key), redis)
    await poll_all(world, pool, "first")
    assert await pool.fetchval("select count(*) from poll_runs where error is not null") == 0
    c0, c1, c2 = (c.slug for c in councils.councils)
    follows = {
        "amy@example.org": ({"councils": [c0]}, "immediate"),
        "bob@example.org": ({"regions": ["East Midlands"]}, "immediate"),
        "cat@example.org": ({"query": '"wellbeing board"'}, "immediate"),
        "dan@example.org": ({"councils": [c1]}, "daily"),
        "eve@example.org": ({"councils": [c2]}, "weekly"),
    }
    for email, (f, frequency) in follows.items():
        subscriber = await world.api.call("POST", "/api/v1/subscribers", {"email": email, "consent": "vouched"},
                                          expect=201)
        made = await world.api.call("POST", "/api/v1/subscriptions",
                                    {"subscriber_id": subscriber["id"], "filter": f, "frequency": frequency},
                                    expect=201)
        world.recipients[email] = {"filter": f, "frequency": frequency, "feed_url": made["feed_url"]}
    if receiver is not None:
        world.endpoint = await world.api.call(
            "POST", "/api/v1/webhooks", {"url": receiver.endpoint("news"), "filter": {"councils": [c0, c1]}},
            expect=201,
        )
        receiver.secrets["news"] = [world.endpoint["secret"]]
    if smtp is not None:
        await residents_through_pages(world, stack.base_url, smtp, c2)
    if websub is not None:
        await subscribe_websub(world, pool, stack.base_url, websub, c0)
    return world


async def residents_through_pages(world: World, base_url: str, smtp: SmtpServer, slug: str) -> None:
    """Two residents subscribe with the form and confirm from the email: one council, and a region."""
    await forged_posts_refused(base_url, "mallory@example.org")
    follows = {"pat@example.org": ("council", slug), "quinn@example.org": ("region", "North West")}
    for email, (name, value) in follows.items():
        await subscribe_through_pages(base_url, smtp, email, [(name, value), ("frequency", "immediate")])
        world.recipients[email] = {"filter": {f"{name}s": [value]}, "frequency": "immediate"}


async def subscribe_websub(world: World, pool: asyncpg.Pool, base_url: str, websub: WebSubSubscriber,
                           slug: str) -> None:
    """Two feed readers subscribe at the hub: one council's Atom feed, and a region's search feed as RSS."""
    world.websub = websub
    world.pushes_after = await pool.fetchval("select coalesce(max(id), 0) from events")
    topics = {
        "council": (f"{base_url}/feeds/councils/{slug}.atom", f"e.council = '{slug}'"),
        "region": (f"{base_url}/feeds/search.rss?region=East+Midlands", "c.region = 'East Midlands'"),
    }
    for name, (topic, where) in topics.items():
        await websub.subscribe(base_url, name, topic)
        world.topics[name] = where

    async def verified() -> bool:
        pending = await pool.fetchval("select count(*) from websub_requests where done_at is null")
        return pending == 0 and all(websub.verified(n) for n in topics)

    await wait_for("the hub to verify the WebSub callbacks", verified)
    assert await pool.fetchval("select count(*) from subscriptions where channel = 'websub'") == len(topics)


async def expected_pushes(pool: asyncpg.Pool, world: World) -> dict[str, set[int]]:
    """Each WebSub callback's expected pushes: every event its topic shows that happened after it subscribed."""
    out: dict[str, set[int]] = {}
    for name, where in world.topics.items():
        rows = await pool.fetch(f"select e.id from events e join councils c on c.slug = e.council "
                                f"where e.id > $1 and {where}", world.pushes_after)
        out[f"websub:{name}"] = {r["id"] for r in rows}
    return out


async def add_residents(world: World, slug: str, n: int) -> None:
    """`n` more residents, each with an immediate alert for one council, made through the API."""
    for k in range(n):
        email = f"resident{k}@example.org"
        subscriber = await world.api.call("POST", "/api/v1/subscribers", {"email": email, "consent": "vouched"},
                                          expect=201)
        await world.api.call("POST", "/api/v1/subscriptions",
                             {"subscriber_id": subscriber["id"], "filter": {"councils": [slug]}}, expect=201)
        world.recipients[email] = {"filter": {"councils": [slug]}, "frequency": "immediate"}


def _follows(f: dict[str, Any], council: Any, committee: str) -> bool:
    if "councils" in f:
        return council.slug in f["councils"]
    if "regions" in f:
        return council.region in f["regions"]
    return "wellbeing board" in committee.lower()


def expected(councils: FakeCouncils, world: World, changed: list[tuple[int, int]]) -> dict[str, set[int]]:
    """Which meetings (ids) each immediate recipient, and the webhook endpoint, should hear of."""
    out: dict[str, set[int]] = {}
    for email, follow in world.recipients.items():
        if follow["frequency"] != "immediate":
            continue
        out[email] = set()
        for n, meeting_id in changed:
            council = councils.councils[n]
            meeting = council.meeting(meeting_id)
            assert meeting is not None
            committee = next(c.title for c in council.committees if c.id == meeting.committee_id)
            if _follows(follow["filter"], council, committee):
                out[email].add(meeting_id)
    if world.endpoint is not None:
        out["webhook"] = {m for n, m in changed if n in (0, 1)}
    return out


def mentions(smtp: SmtpServer, email: str) -> Counter[int]:
    """How many messages to `email` mention each meeting (by its ModernGov id in the council's page link)."""
    found: Counter[int] = Counter()
    for m in smtp.messages:
        if m.rcpt_tos != [email]:
            continue
        text = m.raw.decode(errors="replace").replace("=\r\n", "").replace("=\n", "").replace("=3D", "=")
        for meeting_id in {int(x) for x in re.findall(r"MId=(\d+)", text)}:
            found[meeting_id] += 1
    return found


def report(name: str, want: dict[str, set[int]], smtp: SmtpServer, receiver: WebhookReceiver | None,
           recovered_s: float | None = None, websub: WebSubSubscriber | None = None) -> tuple[int, int, int]:
    """Print and return (expected, delivered, duplicated); every expected delivery must have arrived.

    `want` maps each email address, "webhook" (the partner's endpoint) to the meetings it should hear of, and each
    "websub:{callback}" to the events it should be pushed."""
    total = delivered = duplicated = 0
    lost: list[tuple[str, int]] = []
    for who, meetings in want.items():
        got: Counter[int]
        if who.startswith("websub:"):
            assert websub is not None
            got = websub.entries(who.removeprefix("websub:"))
            duplicated += sum(n - 1 for n in got.values())
        elif who == "webhook":
            assert receiver is not None
            got = Counter(r.json()["data"]["item"]["external_id"] for r in receiver.ok("news"))
            got = Counter({int(k): v for k, v in got.items()})
            ids = Counter(r.webhook_id for r in receiver.ok("news"))
            duplicated += sum(n - 1 for n in ids.values())
        else:
            got = mentions(smtp, who)
            duplicated += sum(max(got[m] - 1, 0) for m in meetings)
        total += len(meetings)
        delivered += sum(1 for m in meetings if got[m] >= 1)
        lost += [(who, m) for m in meetings if got[m] == 0]
        assert set(got) <= meetings, (who, set(got) - meetings)  # nothing that was not theirs
    recovery = f", recovered in {recovered_s:.1f} s" if recovered_s is not None else ""
    kinds = Counter("WebSub pushes" if w.startswith("websub:") else "webhooks" if w == "webhook" else "emails"
                    for w, meetings in want.items() for _ in meetings)
    print(f"\n{name}: expected {total} ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}), "
          f"delivered {delivered}, lost {len(lost)}, duplicated {duplicated}{recovery}")
    assert lost == []
    return total, delivered, duplicated


def change(councils: FakeCouncils) -> list[tuple[int, int]]:
    """A busy moment: a meeting moved in council 0, one cancelled in council 1, one added in council 2."""
    hwb0 = next(m for m in councils.meetings(0) if m.committee_id == 101)
    cabinet1 = next(m for m in councils.meetings(1) if m.committee_id == 100)
    councils.reschedule(0, hwb0.id, 7)
    councils.cancel(1, cabinet1.id)
    added = councils.add_meeting(2, 1, 30)
    return [(0, hwb0.id), (1, cabinet1.id), (2, added.id)]


async def settled(pool: asyncpg.Pool) -> bool:
    """Every immediate delivery (email and webhook) is sent."""
    c = await counts(pool, "s.frequency = 'immediate'")
    return set(c) == {"sent"}
