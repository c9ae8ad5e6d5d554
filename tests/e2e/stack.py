"""The service as operators run it: `notifier web` and several `notifier worker` processes on one PostgreSQL and one
Redis, with the outside world played in the test process (councils, an SMTP server, a partner's webhook receiver).

Every process is the real command (`python -m notifier.cli ...`) with its output kept in a file, so a failing
scenario shows what each process said.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from notifier.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def wait_for(what: str, check: Callable[[], Awaitable[bool]], timeout: float = 90.0) -> float:
    """Wait until `check()` holds; returns the seconds it took."""
    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


class Proc:
    """One `notifier` command in its own process."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path, name: str) -> None:
        self.name = name
        self.log = cwd / f"{name}.log"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # our own command
                [sys.executable, "-m", "notifier.cli", *args], env=env, cwd=cwd, stdout=out, stderr=out
            )

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 40) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]


class Stack:
    """The web process and the workers, started and stopped by the test."""

    def __init__(self, settings: Settings, redis_url: str, smtp_url: str, cwd: Path, **env: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.cwd = cwd
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")},
            "NOTIFIER_DATABASE_URL": settings.database_url,
            "NOTIFIER_REDIS_URL": redis_url,
            "NOTIFIER_SMTP_URL": smtp_url,
            "NOTIFIER_DATA_DIR": str(cwd),
            "NOTIFIER_SECRET_KEY": settings.secret_key,
            "NOTIFIER_BASE_URL": self.base_url,
            "NOTIFIER_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
            "NOTIFIER_ALERT_BATCH_SECONDS": "0",
            "NOTIFIER_SMTP_RATE_PER_SECOND": "1000",
            "NOTIFIER_DELIVERY_LEASE_SECONDS": "5",
            "NOTIFIER_WEBHOOK_LEASE_SECONDS": "4",
            "NOTIFIER_POLL_TOTAL_TIMEOUT": "10",
            **env,
        }
        self.web: Proc | None = None
        self.workers: list[Proc] = []

    async def start(self, workers: int = 2) -> None:
        self.web = Proc(["web", "--host", "127.0.0.1", "--port", str(self.port)], self.env, self.cwd, "web")
        for _ in range(workers):
            self.add_worker()
        await wait_for("the web process to be ready", self.ready, timeout=60)

    def add_worker(self) -> Proc:
        worker = Proc(["worker"], self.env, self.cwd, f"worker{len(self.workers) + 1}")
        self.workers.append(worker)
        return worker

    async def ready(self) -> bool:
        try:
            async with aiohttp.ClientSession() as s, s.get(f"{self.base_url}/readyz") as resp:
                return resp.status == 200
        except aiohttp.ClientError:
            return False

    def stop(self) -> dict[str, int]:
        codes = {}
        for p in [*self.workers, *([self.web] if self.web else [])]:
            try:
                codes[p.name] = p.stop()
            except subprocess.TimeoutExpired:
                p.kill()
                codes[p.name] = -9
        return codes

    def kill_all(self) -> None:
        for p in [*self.workers, *([self.web] if self.web else [])]:
            p.kill()

    def outputs(self) -> str:
        return "\n".join(f"==== {p.name}\n{p.output()}" for p in [*self.workers, *([self.web] if self.web else [])])


class Api:
    """A partner calling the API of the stack's web process."""

    def __init__(self, base_url: str, key: str) -> None:
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {key}"}

    async def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        async with aiohttp.ClientSession() as s, s.request(
            method, f"{self.base_url}{path}", json=body, headers=self.headers
        ) as resp:
            text = await resp.text()
            assert resp.status == expect, (method, path, resp.status, text)
            return await resp.json() if text else None


async def counts(pool: asyncpg.Pool, where: str = "true") -> dict[str, int]:
    rows = await pool.fetch(
        f"""
        select d.status, count(*) as n from deliveries d join subscriptions s on s.id = d.subscription_id
        where {where} group by 1
        """
    )
    return {r["status"]: r["n"] for r in rows}
