"""The service as a newcomer runs it: `notifier run` with no configuration at all."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from notifier.service import run_loop


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_ready(url: str, proc: asyncio.subprocess.Process, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise AssertionError(f"notifier run exited early with {proc.returncode}")
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    if resp.status == 200:
                        return resp.status
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"{url} not ready within {timeout}s")


@pytest.mark.timeout(180)
async def test_run_with_empty_environment_serves_and_stops_cleanly(tmp_path: Path) -> None:
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "notifier.cli",
        "run",
        "--port",
        str(port),
        cwd=tmp_path,
        env={"NOTIFIER_DATA_DIR": str(tmp_path / "data")},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        await _wait_ready(f"http://127.0.0.1:{port}/readyz", proc, timeout=90)
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/dev/outbox") as resp:
            assert resp.status == 200
        proc.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = output.decode()
    assert proc.returncode == 0, text
    assert "embedded PostgreSQL started" in text
    assert "embedded Redis started" in text
    assert "SMTP sink listening" in text
    assert "Traceback" not in text
    # the embedded servers are gone: nothing left listening on the data directory
    assert not (tmp_path / "data" / "postgres" / "postmaster.pid").exists()


def test_run_loop_runs_on_the_loop_named() -> None:
    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert run_loop(loop_module(), "uvloop").startswith("uvloop")
    assert run_loop(loop_module(), "asyncio").startswith("asyncio")
