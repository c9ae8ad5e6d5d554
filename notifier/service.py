"""Starting and stopping the processes: embedded servers, the web server, the worker, or all in one.

SIGTERM and SIGINT stop everything gracefully: the web server stops taking connections and lets in-flight requests
finish, the worker stops taking jobs and lets running ones finish, pools close, embedded servers stop, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from aiohttp import web

from notifier.db import migrate
from notifier.embedded import EmbeddedPostgres, EmbeddedRedis, SmtpSink
from notifier.metrics import Metrics
from notifier.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

SHUTDOWN_GRACE_SECONDS = 30.0
# After the listening socket closes, how long a connection accepted just before may take to send its request: aiohttp
# closes a connection with no request in progress at once, which would cut a client that had connected and not yet
# written (it sees the connection closed, not an answer, and cannot tell whether a POST was taken).
ACCEPTED_DRAIN_SECONDS = 0.5


@dataclass
class Runtime:
    """Settings with every URL resolved, and the embedded servers started to provide the missing ones."""

    settings: Settings
    outbox_dir: str | None = None
    _stops: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def close(self) -> None:
        for stop in reversed(self._stops):
            try:
                await stop()
            except Exception:
                log.exception("error while stopping an embedded server")
        self._stops.clear()


@contextlib.asynccontextmanager
async def runtime(settings: Settings, *, smtp: bool = True) -> AsyncIterator[Runtime]:
    """Start what is not configured (PostgreSQL, Redis, the SMTP sink) and stop it again on the way out."""
    rt = Runtime(settings=settings.model_copy())
    s = rt.settings
    try:
        if not s.database_url or not s.redis_url:
            s.data_dir.mkdir(parents=True, exist_ok=True)
        if not s.database_url:
            pg = EmbeddedPostgres(s.data_dir)
            s.database_url = await asyncio.to_thread(pg.start)
            rt._stops.append(lambda: asyncio.to_thread(pg.stop))
        if not s.redis_url:
            redis = EmbeddedRedis(s.data_dir)
            s.redis_url = await asyncio.to_thread(redis.start)
            rt._stops.append(lambda: asyncio.to_thread(redis.stop))
        if smtp and not s.smtp_url:
            sink = SmtpSink(s.data_dir)
            s.smtp_url = await sink.start()
            rt.outbox_dir = str(sink.outbox)
            rt._stops.append(sink.stop)
        s.ensure_secret_key()
        yield rt
    finally:
        await rt.close()


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _start_web(rt: Runtime, metrics: Metrics, host: str, port: int) -> web.AppRunner:
    from notifier.web.app import create_app

    app = create_app(rt.settings, metrics=metrics, outbox_dir=rt.outbox_dir)
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_GRACE_SECONDS, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("web server listening on http://%s:%s", host, port)
    print(f"notifier web listening on http://{host}:{port}", flush=True)
    return runner


async def _stop_web(runner: web.AppRunner) -> None:
    """Stop listening, let connections accepted a moment ago send their request, then finish what is in flight."""
    for site in list(runner.sites):
        await site.stop()
    await asyncio.sleep(ACCEPTED_DRAIN_SECONDS)
    await runner.cleanup()


async def serve(
    settings: Settings,
    *,
    web_server: bool,
    worker: bool,
    host: str | None = None,
    port: int | None = None,
    demo: bool = False,
) -> None:
    """Run until SIGINT/SIGTERM: the web server, the worker, or both (with the scheduler)."""
    from notifier.worker import build_worker, stop_worker

    stop = _stop_event()
    async with runtime(settings, smtp=worker or web_server) as rt:
        await migrate(rt.settings.database_url)
        metrics = Metrics()
        demo_runner = None
        if demo:
            from notifier.demo.setup import start_demo

            demo_runner = await start_demo(rt.settings)
        runner = None
        arq_worker = None
        worker_task: asyncio.Task[None] | None = None
        try:
            if web_server:
                runner = await _start_web(
                    rt, metrics, host or rt.settings.host, rt.settings.port if port is None else port
                )
            if worker:
                arq_worker = build_worker(rt.settings, metrics=metrics)
                worker_task = asyncio.create_task(arq_worker.async_run())
            waiters: list[asyncio.Future[object]] = [asyncio.ensure_future(stop.wait())]
            if worker_task is not None:
                waiters.append(worker_task)  # type: ignore[arg-type]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            if worker_task is not None and worker_task.done() and not stop.is_set():
                worker_task.result()  # the worker died on its own: surface why
            log.info("shutting down")
        finally:
            if arq_worker is not None and worker_task is not None:
                await stop_worker(arq_worker, worker_task, SHUTDOWN_GRACE_SECONDS)
            if runner is not None:
                await _stop_web(runner)
            if demo_runner is not None:
                await demo_runner.cleanup()
    log.info("stopped")


def run_loop(main: Coroutine[Any, Any, T], loop: Literal["asyncio", "uvloop"] = "asyncio") -> T:
    """Run a process's main coroutine to its end on the event loop named (as `asyncio.run` does)."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
