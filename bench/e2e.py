"""Benchmark: the whole pipeline on a busy day, as operators run it, with two workers beside one.

Run as `.venv/bin/python bench/e2e.py [--scale 1.0] [--waves 4] [--seed 1] [--batch-seconds 0]`; `--scale 0.05`
is a quick run (5,000 subscribers, 20 councils).

Each run starts from an empty database on the PostgreSQL server of NOTIFIER_TEST_DATABASE_URL (default the local
one) and the Redis database of NOTIFIER_BENCH_REDIS_URL (default redis://127.0.0.1:6379/15, emptied first), and
runs the real processes: `notifier web` and `notifier worker` (tests/e2e/stack.py), with the outside world in other
processes: the ModernGov councils (tests/e2e/councils.py, served by this one), an SMTP sink that counts
(bench/email_send.py) and a webhook receiver that answers 204 (bench/webhooks.py).

The workload, at scale 1:

- 400 councils in 12 regions, 3 committees and 9 meetings each, registered and polled once (the day before);
- 100,000 subscribers, written straight into PostgreSQL (made one by one through the API they would take longer
  than the run itself; the service reads them exactly as it reads the API's): 90% email, of them 30% immediate,
  50% daily (at an hour that is not now), 20% weekly (another day); filters: 40% one council, 20% one council's
  committee, 20% a region and a topic, 10% a topic across every council (a phrase, one of 100); and 10% are
  partners' webhook endpoints (one each, immediate: half one council, half a region and a topic);
- the busy day: `--waves` rounds in which every council moves a meeting and adds one (on one of the 100 topics),
  and in the first round half of them cancel one; after each round every council is polled at once (the scheduler's
  work, asked for by the benchmark) and the next round starts when the polls are done: about 5,000 events.

Reported, for two workers and for one (the baseline, same workload, same run): the time from the last change (the
start of the last round) to the last immediate delivery sent, immediate deliveries a second (from the first change
to the last sent), emails and webhook requests received, deliveries written, peak memory (VmHWM) of each process,
and the database's size at the end. The SMTP rate cap is raised (NOTIFIER_SMTP_RATE_PER_SECOND=1000) and the
per-host poll limit too (every council is one local server here, 400 hosts in life).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import resource
import secrets
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import asyncpg
from arq import create_pool as create_arq_pool
from arq.connections import ArqRedis, RedisSettings
from email_send import Sink, _cpu_seconds, drop_database, make_database
from webhooks import Receiver

from notifier.councils import add_council, add_source
from notifier.db import create_pool
from notifier.delivery.webhooks import signing
from notifier.settings import Settings
from tests.e2e.councils import FakeCouncils
from tests.e2e.stack import Stack

REDIS_URL = os.environ.get("NOTIFIER_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
REGIONS = ["East Midlands", "West Midlands", "North West", "North East", "Yorkshire and the Humber", "London",
           "South East", "South West", "East of England", "Wales", "Scotland", "Northern Ireland"]
SUBJECTS = ["library", "flood", "bus", "school", "housing", "parks", "waste", "cycling", "heritage", "youth"]
ASPECTS = ["strategy", "funding", "review", "consultation", "contract", "budget", "plan", "charges", "survey",
           "partnership"]
TOPICS = [f"{s} {a}" for s in SUBJECTS for a in ASPECTS]
TARGET_SECONDS = 300.0


@dataclass
class Figures:
    workers: int
    finished: bool = True  # every immediate delivery sent before the run's deadline
    events: int = 0
    deliveries: int = 0
    immediate: int = 0
    emails: int = 0
    webhook_requests: int = 0
    poll_seconds: list[float] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)  # seconds from the last change to each stage's end
    last_change_to_last_sent: float = 0.0
    first_change_to_last_sent: float = 0.0
    memory_mb: dict[str, float] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)
    database_mb: float = 0.0

    @property
    def rate(self) -> float:
        return self.immediate / self.first_change_to_last_sent if self.first_change_to_last_sent else 0.0


def peak_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


# ---- the workload -----------------------------------------------------------------------------------------------


async def register_councils(pool: asyncpg.Pool, councils: FakeCouncils) -> list[int]:
    sources = []
    for n, council in enumerate(councils.councils):
        await add_council(pool, council.slug, council.name, region=council.region, nation=council.nation)
        sources.append(await add_source(pool, council.slug, "moderngov", councils.base(n), interval_minutes=1440))
    # the benchmark asks for each round's polls, as the scheduler would when they fall due
    await pool.execute("update sources set next_poll_at = now() + interval '1 day'")
    return sources


def email_filter(rng: random.Random, councils: FakeCouncils) -> tuple[str, list[str], list[str], list[str]]:
    """(query, councils, regions, committees) of one resident's alert, by the mix in the module's docstring."""
    council = rng.choice(councils.councils)
    pick = rng.random()
    if pick < 4 / 9:
        return "", [council.slug], [], []
    if pick < 6 / 9:
        return "", [council.slug], [], [rng.choice(council.committees).title]
    if pick < 8 / 9:
        return f'"{rng.choice(TOPICS)}"', [], [rng.choice(REGIONS)], []
    return f'"{rng.choice(TOPICS)}"', [], [], []


def schedule(rng: random.Random, now: datetime) -> tuple[str, int | None, int | None]:
    """(frequency, hour, weekday): digests at an hour and on a day the run does not reach."""
    pick = rng.random()
    if pick < 0.3:
        return "immediate", None, None
    if pick < 0.8:
        return "daily", (now.hour + 12) % 24, None
    return "weekly", None, (now.weekday() + 3) % 7


async def load_people(pool: asyncpg.Pool, councils: FakeCouncils, n: int, receiver_port: int,
                      rng: random.Random) -> dict[str, int]:
    """`n` subscribers and their subscriptions, 10% of them partners' webhook endpoints, written with COPY."""
    now = datetime.now(UTC)
    endpoints = n // 10
    residents = n - endpoints
    await pool.copy_records_to_table(
        "subscribers", columns=["email", "status", "confirmed_at"],
        records=[(f"r{i}@bench.example", "active", now) for i in range(residents)],
    )
    ids = [r["id"] for r in await pool.fetch("select id from subscribers order by id")]
    rows = []
    mix: dict[str, int] = {}
    for subscriber_id in ids:
        query, slugs, regions, committees = email_filter(rng, councils)
        frequency, hour, weekday = schedule(rng, now)
        mix[frequency] = mix.get(frequency, 0) + 1
        rows.append((subscriber_id, None, None, query, slugs, regions, committees, "email", frequency, hour, weekday,
                     secrets.token_urlsafe(16), now))
    partner = await pool.fetchval("insert into partners (name, api_key_hash, api_key_prefix) "
                                  "values ('Bench partner', 'x', 'nk_x') returning id")
    await pool.copy_records_to_table(
        "webhook_endpoints", columns=["partner_id", "url", "secret"],
        records=[(partner, f"http://127.0.0.1:{receiver_port}/hooks/e{i}", signing.new_secret())
                 for i in range(endpoints)],
    )
    for endpoint_id in [r["id"] for r in await pool.fetch("select id from webhook_endpoints order by id")]:
        council = rng.choice(councils.councils)
        if rng.random() < 0.5:
            query, slugs, regions = "", [council.slug], []
        else:
            query, slugs, regions = f'"{rng.choice(TOPICS)}"', [], [rng.choice(REGIONS)]
        rows.append((None, endpoint_id, partner, query, slugs, regions, [], "webhook", "immediate", None, None,
                     secrets.token_urlsafe(16), now))
    mix["webhook"] = endpoints
    await pool.copy_records_to_table(
        "subscriptions",
        columns=["subscriber_id", "endpoint_id", "partner_id", "query", "councils", "regions", "committees",
                 "channel", "frequency", "hour", "weekday", "feed_token", "confirmed_at"],
        records=rows,
    )
    return mix


def change_council(councils: FakeCouncils, n: int, wave: int, rng: random.Random) -> None:
    """One council's share of a round: a meeting moved, one added on a topic, and (first round, half of the
    councils) one cancelled."""
    meetings = [m for m in councils.meetings(n) if m.status != "Cancelled"]
    councils.reschedule(n, meetings[wave % len(meetings)].id, 7)
    councils.add_meeting(n, wave % 3, 20 + wave, topic=rng.choice(TOPICS))
    if wave == 0 and n % 2:
        councils.cancel(n, meetings[-1].id)


async def poll_round(pool: asyncpg.Pool, redis: ArqRedis, sources: list[int], tag: str) -> float:
    """Every council polled now; returns the seconds until every poll has finished."""
    start = time.monotonic()
    before = await pool.fetchval("select count(*) from poll_runs")
    for source_id in sources:
        await redis.enqueue_job("poll_source", source_id, _job_id=f"poll:{source_id}:{tag}")
    while await pool.fetchval("select count(*) from poll_runs") < before + len(sources):
        await asyncio.sleep(0.5)
    return time.monotonic() - start


async def all_sent(pool: asyncpg.Pool) -> bool:
    """Every event matched (none held for its documents) and every immediate delivery sent."""
    done = await pool.fetchval(
        """
        select (select coalesce(max(id), 0) from events)
                 <= coalesce((select position from cursors where name = 'match_events'), 0)
           and not exists (select 1 from held_events)
           and not exists (select 1 from deliveries d join subscriptions s on s.id = d.subscription_id
                           where s.frequency = 'immediate' and d.status in ('pending', 'sending'))
        """
    )
    return bool(done)


# ---- one run ----------------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, workers: int, limit: float) -> Figures:
    """One run with `workers` worker processes; it waits at most `limit` seconds after the first change for the
    last immediate delivery (and then reports how far it got)."""
    figures = Figures(workers)
    rng = random.Random(args.seed)
    n_councils = max(6, round(400 * args.scale))
    name, url = await make_database()
    redis = await create_arq_pool(RedisSettings.from_dsn(REDIS_URL))
    await redis.flushdb()
    councils = FakeCouncils(n_councils, regions=REGIONS)
    await councils.start()
    sink, receiver = Sink(), Receiver()
    pool = await create_pool(url, min_size=1, max_size=4)
    cwd = Path(tempfile.mkdtemp(prefix="notifier-bench-e2e-"))
    settings = Settings(_env_file=None, database_url=url, secret_key="bench-secret-key-" + "x" * 32)
    defaults = Settings.model_fields
    stack = Stack(settings, REDIS_URL, sink.url, cwd,
                  NOTIFIER_ALERT_BATCH_SECONDS=str(args.batch_seconds),
                  NOTIFIER_POLL_PER_HOST_CONCURRENCY="20",
                  NOTIFIER_DELIVERY_LEASE_SECONDS=str(defaults["delivery_lease_seconds"].default),
                  NOTIFIER_WEBHOOK_LEASE_SECONDS=str(defaults["webhook_lease_seconds"].default),
                  NOTIFIER_POLL_TOTAL_TIMEOUT=str(defaults["poll_total_timeout"].default),
                  NOTIFIER_LOG_LEVEL="WARNING", **dict(kv.split("=", 1) for kv in args.env))
    try:
        await stack.start(workers=workers)
        sources = await register_councils(pool, councils)
        first = await poll_round(pool, redis, sources, "first")
        while not await all_sent(pool):
            await asyncio.sleep(0.5)
        print(f"  [{workers} worker(s)] {n_councils} councils registered and polled in {first:.1f} s", flush=True)
        started = time.monotonic()
        mix = await load_people(pool, councils, round(100_000 * args.scale), receiver.port, rng)
        print(f"  [{workers} worker(s)] people written in {time.monotonic() - started:.1f} s: {mix}", flush=True)
        before = await pool.fetchval("select coalesce(max(id), 0) from events")
        first_change = last_change = datetime.now(UTC)
        for wave in range(args.waves):
            last_change = datetime.now(UTC)
            for n in range(n_councils):
                change_council(councils, n, wave, rng)
            figures.poll_seconds.append(await poll_round(pool, redis, sources, f"w{wave}"))
        figures.stages["last round polled"] = (datetime.now(UTC) - last_change).total_seconds()
        deadline = time.monotonic() + limit - (datetime.now(UTC) - first_change).total_seconds()
        while not await all_sent(pool):
            if time.monotonic() > deadline:
                figures.finished = False
                break
            await asyncio.sleep(1.0)
        await measure(pool, figures, before, first_change, last_change)
        figures.emails, _ = sink.count()
        figures.webhook_requests = receiver.count()
        procs = {p.name: p.proc.pid for p in [*([stack.web] if stack.web else []), *stack.workers]}
        procs |= {"smtp sink": sink.proc.pid, "webhook receiver": receiver.proc.pid}
        figures.memory_mb = {k: peak_mb(pid) for k, pid in procs.items()}
        figures.memory_mb["councils (this process)"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        figures.cpu_s = {k: _cpu_seconds(pid) for k, pid in procs.items()}
    finally:
        stack.stop()
        stack.kill_all()
        sink.stop()
        receiver.stop()
        await councils.stop()
        await pool.close()
        await redis.flushdb()
        await redis.aclose()
        if not args.keep:
            await drop_database(name)
            shutil.rmtree(cwd, ignore_errors=True)
    return figures


async def measure(pool: asyncpg.Pool, figures: Figures, before: int, first_change: datetime,
                  last_change: datetime) -> None:
    figures.events = await pool.fetchval("select count(*) from events where id > $1", before)
    row = await pool.fetchrow(
        """
        select count(*) as deliveries, count(*) filter (where s.frequency = 'immediate') as immediate,
               max(d.sent_at) filter (where s.frequency = 'immediate') as last_sent
        from deliveries d join subscriptions s on s.id = d.subscription_id where d.event_id > $1
        """,
        before,
    )
    figures.deliveries, figures.immediate = row["deliveries"], row["immediate"]
    last_sent: datetime = row["last_sent"] or last_change
    if not figures.finished:
        # how far it got by the deadline: the immediate deliveries sent, over the time so far
        figures.immediate = await pool.fetchval(
            "select count(*) from deliveries d join subscriptions s on s.id = d.subscription_id "
            "where d.event_id > $1 and s.frequency = 'immediate' and d.status = 'sent'", before)
        last_sent = await pool.fetchval("select now()")
    figures.last_change_to_last_sent = (last_sent - last_change).total_seconds()
    figures.first_change_to_last_sent = (last_sent - first_change).total_seconds()
    figures.database_mb = await pool.fetchval("select pg_database_size(current_database())") / 2**20
    ends = await pool.fetchrow(
        """
        select max(d.created_at) as matched,
               max(d.sent_at) filter (where s.frequency = 'immediate' and s.channel = 'email') as emails,
               max(d.sent_at) filter (where s.channel = 'webhook') as webhooks
        from deliveries d join subscriptions s on s.id = d.subscription_id where d.event_id > $1
        """,
        before,
    )
    for stage, key in (("last delivery written (matched)", "matched"), ("last immediate email sent", "emails"),
                       ("last webhook sent", "webhooks")):
        if ends[key] is not None:
            figures.stages[stage] = (ends[key] - last_change).total_seconds()


# ---- the report -------------------------------------------------------------------------------------------------


def after(f: Figures) -> str:
    return f"{f.last_change_to_last_sent:.0f} s" if f.finished else f"> {f.last_change_to_last_sent:.0f} s (stopped)"


def table(runs: list[Figures]) -> str:
    main, base = (runs * 2)[:2]
    rows: list[tuple[str, Any, Any]] = [
        ("events in the busy day", f"{main.events:,}", f"{base.events:,}"),
        ("deliveries written (every frequency)", f"{main.deliveries:,}", f"{base.deliveries:,}"),
        ("emails received / webhook requests received", f"{main.emails:,} / {main.webhook_requests:,}",
         f"{base.emails:,} / {base.webhook_requests:,}"),
        ("each round's polls (400 councils at once), s", " / ".join(f"{s:.1f}" for s in main.poll_seconds),
         " / ".join(f"{s:.1f}" for s in base.poll_seconds)),
        ("**last change → last immediate delivery**", f"**{after(main)}**", after(base)),
        *[(f"last change → {stage}", f"{main.stages.get(stage, 0):.0f} s", f"{base.stages.get(stage, 0):.0f} s")
          for stage in main.stages],
        ("first change → last immediate delivery", f"{main.first_change_to_last_sent:.0f} s",
         f"{base.first_change_to_last_sent:.0f} s"),
        ("immediate deliveries sent", f"{main.immediate:,}", f"{base.immediate:,}"),
        ("immediate deliveries a second (first change → last sent)", f"{main.rate:,.0f}", f"{base.rate:,.0f}"),
        ("PostgreSQL database size at the end", f"{main.database_mb:,.0f} MB", f"{base.database_mb:,.0f} MB"),
    ]
    for proc in sorted(set(main.memory_mb) | set(base.memory_mb)):
        rows.append((f"peak memory (VmHWM), {proc}",
                     f"{main.memory_mb[proc]:,.0f} MB" if proc in main.memory_mb else "",
                     f"{base.memory_mb[proc]:,.0f} MB" if proc in base.memory_mb else ""))
    for proc in sorted(set(main.cpu_s) | set(base.cpu_s)):
        rows.append((f"CPU time, {proc}", f"{main.cpu_s[proc]:,.0f} s" if proc in main.cpu_s else "",
                     f"{base.cpu_s[proc]:,.0f} s" if proc in base.cpu_s else ""))
    lines = [f"| figure | {main.workers} worker(s) | {base.workers} worker(s) (baseline) |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    load = os.getloadavg()
    print(f"end to end, scale {args.scale}: {round(100_000 * args.scale):,} subscribers, "
          f"{max(6, round(400 * args.scale))} councils, {args.waves} rounds; {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)  # type: ignore[union-attr]
    runs: list[Figures] = []
    for workers in [int(w) for w in args.workers.split(",")]:
        started = time.monotonic()
        # a baseline is given half as long again as the first run took, then reports how far it got
        limit = args.timeout if not runs else min(args.timeout, 1.5 * runs[0].first_change_to_last_sent + 60)
        runs.append(await run(args, workers, limit))
        print(f"  [{workers} worker(s)] run took {time.monotonic() - started:.0f} s\n{table(runs[-1:])}", flush=True)
    print()
    print(table(runs))
    main_run, base = (runs * 2)[:2]
    print(f"\ntarget: last change → last immediate delivery < {TARGET_SECONDS:.0f} s with {main_run.workers} "
          f"workers: {'met' if main_run.finished and main_run.last_change_to_last_sent < TARGET_SECONDS else 'NOT met'}"
          f" ({after(main_run)}); immediate deliveries a second, {main_run.workers} workers vs "
          f"{base.workers}: {main_run.rate:,.0f} vs {base.rate:,.0f} ({main_run.rate / max(base.rate, 0.001):.2f}x)")
    load = os.getloadavg()
    print(f"load at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0: 100,000 subscribers, 400 councils")
    parser.add_argument("--waves", type=int, default=4, help="rounds of changes in the busy day")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch-seconds", type=int, default=0,
                        help="NOTIFIER_ALERT_BATCH_SECONDS (the service's default is 120)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the last delivery")
    parser.add_argument("--env", action="append", default=[], metavar="NOTIFIER_X=VALUE",
                        help="a setting for the web and worker processes (repeatable)")
    parser.add_argument("--workers", default="2,1", help="worker processes of each run, the first is the main run")
    parser.add_argument("--keep", action="store_true", help="keep each run's database")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
