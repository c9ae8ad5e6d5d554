"""Benchmark: the webhook sender (claim, sign, send, record the attempt, mark) against the ceiling of bare signed
POSTs to the same receiver.

Run from the repository root as `.venv/bin/python bench/webhooks.py [--deliveries 6000] [--endpoints 20]
[--rounds 5]`.

One command does everything: a fresh database (migrated by the service's own runner, dropped at the end) on the
PostgreSQL server of NOTIFIER_TEST_DATABASE_URL, a receiver in another process (aiohttp, answering 204 to every
POST and counting), and then, each round:

1. the sender: N pending deliveries of real events (council, item with a few hundred words, matched terms) spread
   over `--endpoints` endpoints of one partner on the receiver; one `WebhookSender` (the worker's) claims them in
   chunks, builds and signs each body, POSTs it, writes the attempts log and marks them `sent`;
2. the ceiling: N bodies of the same size, signed just before sending, POSTed by one aiohttp client with the same
   number of connections to the same receiver: no database, no claiming, no log.

Rounds alternate which goes first; the figures are the medians of the rounds. Each round checks that every delivery
ended `sent` and that the receiver counted every request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import aiohttp
import asyncpg
from email_send import _cpu_seconds, drop_database, make_database

from notifier.db import create_pool
from notifier.delivery.webhooks import signing
from notifier.delivery.webhooks.sender import WebhookSender
from notifier.settings import Settings

TARGET_RATE = 2000.0
TARGET_RATIO = 0.40
BODY = ("The report sets out progress against the dementia strategy agreed last year, the spending to date and "
        "the risks the board asked officers to keep under review. ") * 8


def run_receiver() -> None:
    """Answers 204 to every POST; prints its port, then the count on SIGUSR1."""
    from aiohttp import web

    count = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal count
        await request.read()
        count += 1
        return web.Response(status=204)

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/hooks/{name}", hook)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        print(site._server.sockets[0].getsockname()[1], flush=True)  # type: ignore[union-attr]
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, lambda: print(count, flush=True))
        await asyncio.Event().wait()

    asyncio.run(main())


class Receiver:
    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--receiver"], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def count(self) -> int:
        assert self.proc.stdout is not None
        self.proc.send_signal(signal.SIGUSR1)
        return int(self.proc.stdout.readline())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


async def load_workload(pool: asyncpg.Pool, receiver: Receiver, n: int, endpoints: int) -> list[str]:
    """N pending deliveries over `endpoints` endpoints; returns the endpoints' secrets."""
    await pool.execute("insert into councils (slug, name, region) values ('leicestershire', "
                       "'Leicestershire County Council', 'East Midlands')")
    source = await pool.fetchval("insert into sources (council, kind, url) values ('leicestershire', 'moderngov', "
                                 "'https://democracy.leics.gov.uk') returning id")
    partner = await pool.fetchval("insert into partners (name, api_key_hash, api_key_prefix) values ('Bench', 'x', "
                                  "'nk_x') returning id")
    keys = []
    subscriptions = []
    for e in range(endpoints):
        secret = signing.new_secret()
        keys.append(secret)
        endpoint = await pool.fetchval(
            "insert into webhook_endpoints (partner_id, url, secret) values ($1, $2, $3) returning id",
            partner, f"http://127.0.0.1:{receiver.port}/hooks/e{e}", secret,
        )
        subscriptions.append(await pool.fetchval(
            "insert into subscriptions (endpoint_id, partner_id, channel, feed_token, councils) "
            "values ($1, $2, 'webhook', $3, '{leicestershire}') returning id",
            endpoint, partner, secrets.token_urlsafe(16),
        ))
    events_needed = -(-n // endpoints)
    items = await pool.fetch(
        "insert into items (source_id, kind, external_id, council, committee, title, body, url, content_hash) "
        "select $1, 'document', 'doc' || g, 'leicestershire', 'Health and Wellbeing Board', "
        "'Dementia strategy progress report ' || g, $2, 'https://democracy.leics.gov.uk/doc/' || g, 'h' "
        "from generate_series(1, $3) g returning id",
        source, BODY, events_needed,
    )
    events = await pool.fetch(
        "insert into events (type, item_id, council, summary, changes) "
        "select 'document.published', id, 'leicestershire', 'Dementia strategy progress report published', '{}' "
        "from unnest($1::bigint[]) id returning id",
        [r["id"] for r in items],
    )
    pairs = [(subscriptions[i % endpoints], events[i // endpoints]["id"]) for i in range(n)]
    await pool.execute(
        "insert into deliveries (subscription_id, event_id, matched_terms) "
        "select s, e, '{dementia}' from unnest($1::bigint[], $2::bigint[]) as t(s, e)",
        [p[0] for p in pairs], [p[1] for p in pairs],
    )
    return keys


@dataclass
class Run:
    seconds: float
    cpu_ms: float  # this process's CPU a delivery


async def run_sender(pool: asyncpg.Pool, settings: Settings, receiver: Receiver, n: int) -> Run:
    await pool.execute("update deliveries set status = 'pending', attempts = 0, next_attempt_at = now(), "
                       "sent_at = null, message_id = null")
    await pool.execute("truncate webhook_attempts")
    await pool.execute("vacuum analyze deliveries")
    before_count = receiver.count()
    sender = WebhookSender.create(settings, pool)
    cpu, start = _cpu_seconds(os.getpid()), time.perf_counter()
    result = await sender.send_due()
    seconds, cpu = time.perf_counter() - start, _cpu_seconds(os.getpid()) - cpu
    await sender.close()
    sent = await pool.fetchval("select count(*) from deliveries where status = 'sent'")
    assert result.sent == n == sent, (result, sent)
    assert receiver.count() - before_count == n
    return Run(seconds, cpu * 1000 / n)


async def run_ceiling(receiver: Receiver, keys: list[str], n: int, concurrency: int) -> Run:
    before_count = receiver.count()
    body = (BODY * 2).encode()
    url = f"http://127.0.0.1:{receiver.port}/hooks/"
    connector = aiohttp.TCPConnector(limit=concurrency)
    queue = list(range(n))

    async def worker(session: aiohttp.ClientSession) -> None:
        while queue:
            i = queue.pop()
            key = signing.secret_key(keys[i % len(keys)])
            headers = signing.headers([key], f"msg_{i}", int(time.time()), body)
            async with session.post(f"{url}e{i % len(keys)}", data=body, headers=headers) as resp:
                await resp.read()
                assert resp.status == 204

    async with aiohttp.ClientSession(connector=connector) as session:
        cpu, start = _cpu_seconds(os.getpid()), time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        seconds, cpu = time.perf_counter() - start, _cpu_seconds(os.getpid()) - cpu
    assert receiver.count() - before_count == n
    return Run(seconds, cpu * 1000 / n)


async def main(args: argparse.Namespace) -> None:
    n = args.deliveries
    receiver = Receiver()
    name, url = await make_database()
    settings = Settings(_env_file=None, database_url=url, redis_url="redis://127.0.0.1:6379/15",  # type: ignore[call-arg]
                        webhook_allow_private_targets=True, base_url="https://alerts.example.org")
    pool = await create_pool(url, min_size=2, max_size=10)
    senders: list[Run] = []
    ceilings: list[Run] = []
    try:
        keys = await load_workload(pool, receiver, n, args.endpoints)
        print(f"{'round':<7}{'sender/s':>10}{'ceiling/s':>11}{'ratio':>7}   CPU ms a delivery (sender; ceiling)")
        for r in range(args.rounds):
            if r % 2:
                ceilings.append(await run_ceiling(receiver, keys, n, settings.webhook_concurrency))
                senders.append(await run_sender(pool, settings, receiver, n))
            else:
                senders.append(await run_sender(pool, settings, receiver, n))
                ceilings.append(await run_ceiling(receiver, keys, n, settings.webhook_concurrency))
            s, c = senders[-1], ceilings[-1]
            print(f"{r + 1:<7}{n / s.seconds:>10.0f}{n / c.seconds:>11.0f}{c.seconds / s.seconds:>7.0%}   "
                  f"{s.cpu_ms:.2f}; {c.cpu_ms:.2f}", flush=True)
    finally:
        await pool.close()
        receiver.stop()
        await drop_database(name)
    rate = statistics.median(n / s.seconds for s in senders)
    ceiling = statistics.median(n / c.seconds for c in ceilings)
    ratio = statistics.median(c.seconds / s.seconds for s, c in zip(senders, ceilings, strict=True))
    print()
    print(f"date        {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine     {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"workload    {n} deliveries a round over {args.endpoints} endpoints, {settings.webhook_concurrency} "
          f"connections, {args.rounds} rounds")
    print()
    print(f"{'figure (median of the rounds)':<52}{'result':>10}{'target':>10}")
    print(f"{'sender: claim, sign, send, log, mark (deliveries/s)':<52}{rate:>10.0f}{TARGET_RATE:>10.0f}")
    print(f"{'ceiling: bare signed POSTs, one aiohttp client (/s)':<52}{ceiling:>10.0f}{'':>10}")
    print(f"{'sender / ceiling (same round)':<52}{ratio:>10.0%}{TARGET_RATIO:>10.0%}")
    print()
    print("targets met" if rate >= TARGET_RATE and ratio >= TARGET_RATIO else "targets MISSED")


if __name__ == "__main__":
    if sys.argv[1:] == ["--receiver"]:
        run_receiver()
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=6000, help="deliveries a round, for each of the two runs")
    parser.add_argument("--endpoints", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
