"""The browser tests' harness: Debian's Chromium driven by Playwright, the app on a real port with the embedded SMTP
sink behind /dev/outbox, axe-core (from the npm registry, pinned by tests/browser/package-lock.json) for the
accessibility check, and screenshots written to tests/browser/artifacts/.

Chromium comes from the system (Debian's `chromium` package, installed by .ci/run); axe-core is installed here with
`npm ci` when missing. Outside CI, a machine without either skips these tests with the reason; in CI (CI=true) their
absence is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestServer
from arq.connections import ArqRedis

from notifier.embedded import SmtpSink
from notifier.settings import Settings
from notifier.web.app import create_app

HERE = Path(__file__).parent
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = HERE / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
IN_CI = os.environ.get("CI") == "true"


def _install_axe() -> str | None:
    """Install axe-core from package-lock.json if it is not there yet; the reason when that cannot be done."""
    if AXE.is_file():
        return None
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not installed (apt-get install npm), so axe-core cannot be installed"
    done = subprocess.run(
        [npm, "ci", "--prefix", str(HERE), "--no-audit", "--no-fund"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0 or not AXE.is_file():
        return f"npm ci failed: {done.stderr[-500:]}"
    return None


@pytest.fixture(scope="session")
def axe_source() -> str:
    reason = _install_axe()
    if reason is not None:
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return AXE.read_text()


@pytest.fixture(scope="session")
def chromium() -> str:
    if CHROMIUM is None:
        if IN_CI:
            pytest.fail("chromium is required in CI")
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"],
        )
        yield b
        await b.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Site:
    """The app as a browser sees it: its base URL, its settings (SMTP pointing at the sink), the sink's folder."""

    base: str
    settings: Settings
    outbox: Path


@pytest.fixture
async def site(settings: Settings, pool: asyncpg.Pool, redis: ArqRedis, tmp_path: Path) -> AsyncIterator[Site]:
    # `pool` empties the tables and `redis` the Redis database (job ids such as confirm:{id}:{minute} repeat)
    sink = SmtpSink(tmp_path)
    smtp_url = await sink.start()
    port = free_port()
    s = settings.model_copy(
        update={"base_url": f"http://127.0.0.1:{port}", "smtp_url": smtp_url, "admin_token": "operator-token-1234"}
    )
    server = TestServer(create_app(s, outbox_dir=str(sink.outbox)), host="127.0.0.1", port=port)
    await server.start_server()
    yield Site(f"http://127.0.0.1:{port}", s, sink.outbox)
    await server.close()
    await sink.stop()


@pytest.fixture(scope="session")
def artifacts() -> Iterator[Path]:
    ARTIFACTS.mkdir(exist_ok=True)
    yield ARTIFACTS
