"""Benchmark: serving feeds. Requests a second and p99 latency for a cached feed (200 and 304), measured by wrk in
another process, beside the ceiling measured in the same run: a bare aiohttp handler returning the same bytes (and
a bare 304); and the cold render of a 50-entry feed (resolve, one query, render) in each format.

Run from the repository root as `.venv/bin/python bench/feeds.py [--seconds 10] [--connections 32] [--rounds 2]
[--uvloop]` (`--uvloop`: a third server, the application on uvloop's event loop, in the same rounds).

One command does everything: wrk (installed with apt-get when missing), a fresh database (migrated by the service's
own runner, dropped at the end) on the PostgreSQL server of NOTIFIER_TEST_DATABASE_URL with a council of 600 events
(items with a few hundred words, each meeting with documents), the Redis of NOTIFIER_TEST_REDIS_URL (only the feed
cache's keys are written), then two servers, each a child process on one port: the service's web application
(`create_app`, as `notifier web` runs it) and the ceiling, a bare aiohttp application with one handler that returns
the feed's bytes with the same headers. Rounds alternate which server goes first; figures are the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import aiohttp
import asyncpg
from email_send import _cpu_seconds, drop_database, make_database

from notifier.db import create_pool
from notifier.settings import Settings

REDIS_URL = os.environ.get("NOTIFIER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TARGET_RATIO = 0.50
TARGET_P99_MS = 50.0
TARGET_COLD_MS = 20.0
FEED = "/feeds/councils/leicestershire.atom"
BODY = ("The report sets out progress against the {topic} strategy agreed last year, the spending to date and the "
        "risks the board asked officers to keep under review. ") * 6
TOPICS = ["dementia", "adult social care", "highways", "libraries", "planning", "schools"]
COMMITTEES = ["Cabinet", "Health and Wellbeing Board", "Scrutiny Commission", "Planning Committee"]


def settings(database_url: str) -> Settings:
    return Settings(_env_file=None, database_url=database_url, redis_url=REDIS_URL,  # type: ignore[call-arg]
                    smtp_url="smtp://127.0.0.1:1", base_url="http://127.0.0.1:8000",
                    secret_key="bench-secret-key-" + "x" * 32)


def serve_app(database_url: str, port: int, loop: str = "asyncio") -> None:
    from aiohttp import web

    from notifier.web.app import create_app

    event_loop = None
    if loop == "uvloop":
        import uvloop

        event_loop = uvloop.new_event_loop()
    web.run_app(create_app(settings(database_url)), host="127.0.0.1", port=port, access_log=None, print=None,
                loop=event_loop)


def serve_ceiling(body_path: str, headers_path: str, port: int) -> None:
    """One handler: the same bytes and headers as the feed, and a 304 when the ETag matches."""
    from aiohttp import web

    body = Path(body_path).read_bytes()
    headers = dict(line.split(": ", 1) for line in Path(headers_path).read_text().splitlines() if line)

    async def feed(request: web.Request) -> web.Response:
        if request.headers.get("If-None-Match") == headers["ETag"]:
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, headers=headers)

    app = web.Application()
    app.router.add_get(FEED, feed)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


async def load_workload(pool: asyncpg.Pool, events: int) -> None:
    await pool.execute("insert into councils (slug, name, region) values ('leicestershire', "
                       "'Leicestershire County Council', 'East Midlands')")
    source = await pool.fetchval("insert into sources (council, kind, url) values ('leicestershire', 'moderngov', "
                                 "'https://democracy.leics.gov.uk') returning id")
    now = datetime.now(UTC)
    for i in range(events):
        topic, committee = TOPICS[i % len(TOPICS)], COMMITTEES[i % len(COMMITTEES)]
        meeting = await pool.fetchval(
            """
            insert into items (source_id, kind, external_id, council, committee, committee_id, title, body,
                               starts_at, status, url, content_hash, updated_at)
            values ($1, 'meeting', $2, 'leicestershire', $3, $4, $5, $6, $7, 'confirmed', $8, 'x', $9) returning id
            """,
            source, f"m{i}", committee, str(i % len(COMMITTEES)), f"{committee}: {topic} progress report {i}",
            BODY.format(topic=topic), now + timedelta(days=i % 90), f"https://democracy.leics.gov.uk/m/{i}",
            now - timedelta(minutes=events - i),
        )
        for d in range(2):
            await pool.execute(
                """
                insert into items (source_id, kind, external_id, council, committee, title, url, parent_id,
                                   content_hash)
                values ($1, 'document', $2, 'leicestershire', $3, $4, $5, $6, 'x')
                """,
                source, f"d{i}-{d}", committee, f"Report {d + 1} on {topic}",
                f"https://democracy.leics.gov.uk/documents/{i}-{d}.pdf", meeting,
            )
        await pool.execute(
            "insert into events (type, item_id, council, occurred_at, summary) values ('agenda.published', $1, "
            "'leicestershire', $2, $3)",
            meeting, now - timedelta(minutes=events - i), f"{committee}, agenda published: {topic} report {i}",
        )


def spawn(*args: str) -> subprocess.Popen[bytes]:
    """A server in its own process (so it has a core of its own, and wrk another)."""
    return subprocess.Popen([sys.executable, *args])


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing: installing it from Debian's packages", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "install", "-y", "-q", "wrk"], check=True)
    return shutil.which("wrk") or "/usr/bin/wrk"


def wrk(binary: str, url: str, seconds: int, connections: int, headers: dict[str, str]) -> tuple[float, float]:
    """Requests a second and p99 latency (ms) of one wrk run, one thread (the other core serves)."""
    args = [binary, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    if "Non-2xx or 3xx responses" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    return rate, p99


async def wait_for(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(url) as resp:
                    if resp.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} never answered")


async def cold_renders(database_url: str, n: int) -> dict[str, list[float]]:
    """Milliseconds to resolve, read and render the newest 50 entries of the feed, uncached, in each format."""
    from multidict import MultiDict

    from notifier.delivery.feed_urls import resolve
    from notifier.feed_calendar import render_calendar
    from notifier.feeds import FeedPage, render_events_feed
    from notifier.web.feed_specs import load_events, load_meetings

    pool = await create_pool(database_url, min_size=1, max_size=2)
    times: dict[str, list[float]] = {}
    try:
        for fmt in ("atom", "rss", "json", "ics"):
            for _ in range(n):
                start = time.perf_counter()
                spec = await resolve(pool, f"/feeds/councils/leicestershire.{fmt}", MultiDict())
                if fmt == "ics":
                    meetings = await load_meetings(pool, spec, datetime.now(UTC))
                    render_calendar(meetings, title=spec.title, base_url="http://b", self_url="http://b/f")
                else:
                    events, _ = await load_events(pool, spec, limit=50, before=None)
                    page = FeedPage(spec.title, spec.subtitle, "http://b/f", "http://b", "http://b/websub")
                    render_events_feed(fmt, events, page)
                times.setdefault(fmt, []).append((time.perf_counter() - start) * 1000)
    finally:
        await pool.close()
    return times


def p(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * q))]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--events", type=int, default=600)
    ap.add_argument("--uvloop", action="store_true",
                    help="also serve the application on uvloop's event loop, measured in the same rounds")
    args = ap.parse_args()
    binary = ensure_wrk()
    print(f"{platform.python_version()} on {os.cpu_count()} cores; load average before: {os.getloadavg()}")
    name, url = await make_database()
    children: list[subprocess.Popen[bytes]] = []
    try:
        pool = await create_pool(url, min_size=1, max_size=2)
        await load_workload(pool, args.events)
        await pool.close()
        await run(args, binary, url, children)
    finally:
        for child in children:
            child.terminate()
            child.wait()
        await drop_database(name)
    print(f"load average after: {os.getloadavg()}")


async def run(args: argparse.Namespace, binary: str, url: str, children: list[subprocess.Popen[bytes]]) -> None:
    cold = await cold_renders(url, 40)
    here = str(Path(__file__).resolve())
    children.append(spawn(here, "--serve-app", url, "8631"))
    app_url = f"http://127.0.0.1:8631{FEED}"
    await wait_for(app_url)
    async with aiohttp.ClientSession() as http, http.get(app_url, headers={"Accept-Encoding": "identity"}) as resp:
        body = await resp.read()
        keep = ("Content-Type", "ETag", "Last-Modified", "Cache-Control", "Vary", "Link",
                "Access-Control-Allow-Origin", "Access-Control-Expose-Headers")
        headers = {k: resp.headers[k] for k in keep}
    tmp = Path(f"/tmp/notifier-bench-feed-{os.getpid()}")
    (tmp.with_suffix(".body")).write_bytes(body)
    (tmp.with_suffix(".headers")).write_text("".join(f"{k}: {v}\n" for k, v in headers.items()))
    children.append(spawn(here, "--serve-ceiling", str(tmp.with_suffix(".body")), str(tmp.with_suffix(".headers")),
                          "8632"))
    ceiling_url = f"http://127.0.0.1:8632{FEED}"
    await wait_for(ceiling_url)
    figures: dict[str, list[tuple[float, float, float]]] = {}
    plain = {"Accept-Encoding": "identity"}
    not_modified = {**plain, "If-None-Match": headers["ETag"]}
    pids = {"app": children[0].pid, "ceiling": children[1].pid}
    order = [("app", app_url), ("ceiling", ceiling_url)]
    if args.uvloop:
        children.append(spawn(here, "--serve-app", url, "8633", "uvloop"))
        await wait_for(f"http://127.0.0.1:8633{FEED}")
        pids["app on uvloop"] = children[-1].pid
        order.append(("app on uvloop", f"http://127.0.0.1:8633{FEED}"))
    for r in range(args.rounds):
        for who, target in order if r % 2 == 0 else order[::-1]:
            for kind, hdrs in (("200", plain), ("304", not_modified)):
                before = _cpu_seconds(pids[who])
                rate, p99 = wrk(binary, target, args.seconds, args.connections, hdrs)
                # the server's own CPU a request: what the machine's other work does not change much
                cpu_ms = (_cpu_seconds(pids[who]) - before) * 1000 / (rate * args.seconds)
                figures.setdefault(f"{who} {kind}", []).append((rate, p99, cpu_ms))
    report(figures, cold, len(body))
    for suffix in (".body", ".headers"):
        tmp.with_suffix(suffix).unlink()


def report(figures: dict[str, list[tuple[float, float, float]]], cold: dict[str, list[float]], size: int) -> None:
    print(f"\nfeed: {FEED}, 50 entries, {size:,} bytes; wrk -t1, medians of the rounds")
    print(f"{'':18} {'req/s':>10} {'p99 ms':>8} {'server CPU ms/req':>18}")
    med = {k: tuple(statistics.median(x[i] for x in v) for i in range(3)) for k, v in figures.items()}
    for k, (rate, p99, cpu) in med.items():
        print(f"{k:18} {rate:>10,.0f} {p99:>8.2f} {cpu:>18.3f}")
    for kind in ("200", "304"):
        app, ceiling = med[f"app {kind}"], med[f"ceiling {kind}"]
        ratio = app[0] / ceiling[0]
        ok = ratio >= TARGET_RATIO and app[1] < TARGET_P99_MS
        print(f"cached {kind}: {ratio:.0%} of the ceiling (by server CPU a request: {ceiling[2] / app[2]:.0%}), "
              f"p99 {app[1]:.2f} ms (target >= {TARGET_RATIO:.0%}, p99 < {TARGET_P99_MS:g} ms): "
              f"{'met' if ok else 'NOT met'}")
        if f"app on uvloop {kind}" in med:
            uv = med[f"app on uvloop {kind}"]
            print(f"  on uvloop: {uv[0] / app[0]:.2f}x the requests a second of asyncio's loop, server CPU a request "
                  f"{uv[2] / app[2]:.2f}x, p99 {uv[1]:.2f} ms")
    print("\ncold render (resolve + one query + render), ms:")
    for fmt, times in cold.items():
        print(f"  {fmt:5} p50 {p(times, 0.5):6.2f}  p99 {p(times, 0.99):6.2f}")
    worst = p(cold["atom"], 0.5)
    print(f"cold 50-entry Atom p50 {worst:.2f} ms (target < {TARGET_COLD_MS:g} ms): "
          f"{'met' if worst < TARGET_COLD_MS else 'NOT met'}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-app":
        serve_app(sys.argv[2], int(sys.argv[3]), *sys.argv[4:5])
    elif len(sys.argv) > 1 and sys.argv[1] == "--serve-ceiling":
        serve_ceiling(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        asyncio.run(main())
