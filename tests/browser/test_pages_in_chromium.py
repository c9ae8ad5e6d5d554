"""The pages in a real browser (headless Chromium driven by Playwright): subscribe, confirm, manage, unsubscribe.

Chromium comes from the system (Debian's `chromium` package, installed by .ci/run). Outside CI, a machine without it
skips these tests with the reason; in CI (CI=true) its absence is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestServer

from notifier.settings import Settings
from notifier.web.app import create_app
from tests.factories import Factory
from tests.servers import SmtpServer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

if CHROMIUM is None and os.environ.get("CI") != "true":
    pytest.skip("no chromium on this machine (apt-get install chromium)", allow_module_level=True)

from playwright.async_api import Browser, Page, async_playwright  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    assert CHROMIUM is not None, "chromium is required in CI"
    async with async_playwright() as p:
        b = await p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"],
        )
        yield b
        await b.close()


@pytest.fixture
async def site(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[tuple[str, Settings]]:
    port = _free_port()
    s = settings.model_copy(update={"base_url": f"http://127.0.0.1:{port}"})
    server = TestServer(create_app(s), host="127.0.0.1", port=port)
    await server.start_server()
    yield f"http://127.0.0.1:{port}", s
    await server.close()


def _link(message: Any, path: str) -> str:
    text = message.get_body(("plain",)).get_content()
    match = re.search(rf"http://127\.0\.0\.1:\d+/{path}/\S+", text)
    assert match, f"no /{path}/ link in:\n{text}"
    return match.group(0)


async def test_browser_subscribe_confirm_manage_unsubscribe(
    browser: Browser, site: tuple[str, Settings], factory: Factory, smtp_server: SmtpServer, run_jobs: Any,
    pool: asyncpg.Pool,
) -> None:
    base, settings = site
    await factory.council("leicestershire", name="Leicestershire County Council")
    page: Page = await browser.new_page()
    await page.goto(base + "/")
    await page.fill("#email", "resident@example.org")
    await page.fill("#query", 'dementia OR "mental health"')
    await page.select_option("#council", "leicestershire")
    await page.select_option("#frequency", "daily")
    await page.click("text=Subscribe")
    assert await page.text_content("h1") == "Check your email"

    await run_jobs(base_url=settings.base_url)
    [confirmation] = smtp_server.to("resident@example.org")
    await page.goto(_link(confirmation, "confirm"))
    assert "dementia" in (await page.text_content("main") or "")
    await page.click("button[type=submit]")
    assert await page.text_content("h1") == "You're subscribed"
    assert await pool.fetchval("select status from subscribers") == "active"

    await page.click("text=Back")
    assert await page.text_content("h1") == "Your alerts"
    await page.select_option("select[name=frequency]", "weekly")
    await page.click("form:has(select[name=frequency]) button")
    assert "Now: weekly summary." in (await page.text_content("main") or "")
    assert await pool.fetchval("select frequency from subscriptions") == "weekly"

    await page.click("text=Unsubscribe from everything")
    await page.click("text=Stop all emails to resident@example.org")
    assert await page.text_content("h1") == "Unsubscribed"
    assert await pool.fetchval("select reason from suppressions") == "unsubscribed"


async def test_browser_form_errors_are_shown_and_keep_input(
    browser: Browser, site: tuple[str, Settings], factory: Factory
) -> None:
    base, _ = site
    await factory.council("rutland", name="Rutland County Council")
    page = await browser.new_page()
    await page.goto(base + "/")
    await page.fill("#email", "resident@example.org")
    await page.fill("#query", "(asthma OR")
    await page.click("text=Subscribe")
    assert "Topic:" in (await page.text_content("[role=alert]") or "")
    assert await page.input_value("#email") == "resident@example.org"
    assert await page.input_value("#query") == "(asthma OR"


async def test_browser_preview_before_subscribing(
    browser: Browser, site: tuple[str, Settings], factory: Factory, pool: asyncpg.Pool
) -> None:
    base, _ = site
    await factory.council("leicestershire", name="Leicestershire County Council")
    await factory.event(title="LLR Joint Living Well Dementia Strategy 2024-2028 progress report")
    page = await browser.new_page()
    await page.goto(base + "/")
    await page.fill("#query", "dementia")
    await page.click("text=Preview")  # no address yet: previewing needs none
    preview = await page.text_content("#preview") or ""
    assert "1 update in the last 30 days" in preview
    assert "Dementia Strategy" in preview
    assert await page.input_value("#query") == "dementia"
    assert await pool.fetchval("select count(*) from subscribers") == 0
