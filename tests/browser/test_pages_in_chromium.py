"""The pages in a real browser (headless Chromium driven by Playwright), with JavaScript on and off: subscribe,
the confirmation email opened from the outbox page, confirm, manage (add, edit, pause, rotate the feed links),
one-click unsubscribe, deleting everything; keyboard-only use; the operator page; a cross-site form post refused;
the error pages. Every page visited, with JavaScript on and off, is checked by axe-core and photographed at 1280
and 375 px (tests/browser/checks.py)."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestServer
from arq.connections import ArqRedis
from playwright.async_api import Browser, Page, expect

from notifier.tokens import Tokens
from tests.browser.checks import check_page, watch_csp
from tests.browser.conftest import Site, free_port
from tests.factories import Factory

LEICS = "Leicestershire County Council"
RUTLAND = "Rutland County Council"


async def councils(factory: Factory) -> None:
    await factory.council("leicestershire", name=LEICS)
    await factory.council("rutland", name=RUTLAND)
    await factory.council("leicester", name="Leicester City Council")
    await factory.council("camden", name="Camden Council", region="London")
    await factory.event(title="LLR Dementia Strategy 2024-2028 progress report", council="rutland")


async def open_confirmation(page: Page, site: Site, address: str, check: Callable[[str], Awaitable[None]]) -> None:
    """From the outbox page to the confirmation page, by clicking as a newcomer would."""
    await page.goto(site.base + "/dev/outbox")
    await expect(page.locator("h1")).to_have_text("Outbox")
    await check("outbox")
    await page.click(f"tr:has-text('{address}') a")
    await expect(page.locator("h1")).to_have_text("Confirm your email alerts from Council alerts")
    await expect(page.frame_locator("iframe.email-preview").locator("body")).to_contain_text("dementia")
    await check("outbox-message")
    await page.click("pre a[href*='/confirm/']")
    await expect(page.locator("h1")).to_have_text("Confirm your alerts")


async def resident_journey(
    page: Page, site: Site, pool: asyncpg.Pool, run_jobs: Any, axe: str | None, shots: Path | None, js: bool
) -> None:
    async def check(name: str) -> None:
        # the same pages without JavaScript look different (no council search, no live preview): their own names
        await check_page(page, axe, shots, name if js else f"{name}-no-js", javascript=js)

    await page.goto(site.base + "/")
    await check("subscribe")
    if not js:  # the form with its errors as the server shows it (the keyboard test has it with JavaScript)
        await page.click("button:has-text('Subscribe')")
        await expect(page.locator(".error-summary")).to_contain_text("Enter your email address")
        await check("subscribe-errors")
        await page.goto(site.base + "/")
    await page.fill("#email", "resident@example.org")
    if js:  # the search narrows the list and opens the region it found
        await page.fill("#council-search", "rutl")
        await expect(page.locator("#council-search-status")).to_have_text("1 council found")
        await page.check("#council-rutland")
        await page.fill("#council-search", "leicestershire")
        await page.check("#council-leicestershire")
    else:
        await page.click("summary:has-text('East Midlands')")
        await page.check("#council-rutland")
        await page.check("#council-leicestershire")
    await page.fill("#query", "dementia")
    if js:
        await expect(page.locator("#live-preview")).to_contain_text("1 update in the last 30 days")
        await expect(page.locator("#live-preview")).to_contain_text("Dementia Strategy")
        await check("subscribe-live-preview")
    else:  # the Preview button: the page again from the server, with what the topic matched
        await page.click("text=Preview recent matches")
        await expect(page.locator("#preview")).to_contain_text("1 update in the last 30 days")
        assert await page.is_checked("#council-rutland")
        await check("subscribe-preview")
    await page.check("#frequency-daily")
    await page.select_option("#hour", "18")
    await page.click("button:has-text('Subscribe')")
    await expect(page.locator("h1")).to_have_text("Check your email")
    await check("check-your-email")

    await run_jobs(base_url=site.base, smtp_url=site.settings.smtp_url)
    await open_confirmation(page, site, "resident@example.org", check)
    await check("confirm")
    await page.click("button:has-text('Yes, send me these alerts')")
    await expect(page.locator("h1")).to_have_text("You're subscribed")
    main = await page.text_content("main") or ""
    assert f"dementia at {LEICS} and {RUTLAND}" in main or f"dementia at {RUTLAND} and {LEICS}" in main
    assert "Every day at 18:00 (Europe/London)" in main
    await check("confirmed")
    assert await pool.fetchval("select status from subscribers") == "active"

    await page.click("text=manage your alerts")
    await expect(page.locator("h1")).to_have_text("Your alerts")
    await check("manage")
    manage_url = page.url

    # a cross-council topic: no council chosen, every council
    await page.click("text=Add an alert")
    await expect(page.locator("h1")).to_have_text("Add an alert")
    await check("add-alert")
    # nothing chosen: the form again, its errors summarised at the top and tied to their fields
    await page.click("button:has-text('Add alert')")
    await expect(page.locator(".error-summary")).to_contain_text("Choose at least one council or region")
    await check("add-alert-errors")
    await page.check("#scope-all")
    await page.fill("#query", '"mental health"')
    await page.check("#frequency-weekly")
    await page.select_option("#weekday", "4")
    await page.click("button:has-text('Add alert')")
    await expect(page.locator("[role=status]")).to_have_text("Alert added.")
    await expect(page.locator("main")).to_contain_text('"mental health" in every council')
    await expect(page.locator("main")).to_contain_text("Every Friday at 07:00 (Europe/London)")

    # edit the first: Camden added, now as it happens
    await page.click("a:has-text('Change') >> nth=0")
    await expect(page.locator("h1")).to_have_text("Change an alert")
    await check("change-alert")
    assert await page.is_checked("#council-rutland")
    await page.click("summary:has-text('London')")
    await page.check("#council-camden")
    await page.check("#frequency-immediate")
    await page.click("button:has-text('Save changes')")
    await expect(page.locator("[role=status]")).to_have_text("Alert saved.")
    row = await pool.fetchrow("select councils, frequency from subscriptions order by id limit 1")
    assert (sorted(row["councils"]), row["frequency"]) == (["camden", "leicestershire", "rutland"], "immediate")

    # pause the first until a date: a past one first, and the manage page comes back with the error
    past = (datetime.now(UTC) - timedelta(days=3)).date()
    await page.fill("input[name=until] >> nth=0", past.isoformat())
    await page.click("button:has-text('Pause') >> nth=0")
    await expect(page.locator(".error-summary")).to_contain_text("must be today or in the future")
    await check("manage-errors")
    day = (datetime.now(UTC) + timedelta(days=14)).date()
    await page.fill("input[name=until] >> nth=0", day.isoformat())
    await page.click("button:has-text('Pause') >> nth=0")
    await expect(page.locator("main")).to_contain_text(f"Paused to the end of {day:%-d %B %Y}")

    # rotate the second alert's feed links: the Atom link changes
    await page.click("summary:has-text('Private feed links') >> nth=1")
    atom = page.locator("input.feed-url[id$='-atom'] >> nth=1")
    before = await atom.input_value()
    assert re.fullmatch(rf"{re.escape(site.base)}/feeds/s/[A-Za-z0-9_-]+\.atom", before)
    await check("manage-with-alerts")
    await page.click("button:has-text('Make new feed links') >> nth=1")
    await expect(page.locator("[role=status]")).to_contain_text("New feed links made")
    await page.click("summary:has-text('Private feed links') >> nth=1")
    after = await page.locator("input.feed-url[id$='-atom'] >> nth=1").input_value()
    assert after != before
    assert after.rsplit("/", 1)[1].removesuffix(".atom") == await pool.fetchval(
        "select feed_token from subscriptions order by id desc limit 1"
    )
    assert page.url.startswith(manage_url)

    # the RFC 8058 one-click POST, as a mail client makes it: no form, no page, no token from a page
    subscriber = await pool.fetchval("select id from subscribers")
    unsubscribe = f"{site.base}/unsubscribe/{Tokens(site.settings.secret_key).make('unsubscribe', subscriber)}"
    resp = await page.request.post(unsubscribe, form={"List-Unsubscribe": "One-Click"})
    assert (resp.status, await resp.text()) == (200, "unsubscribed")
    assert await pool.fetchval("select reason from suppressions") == "unsubscribed"
    await page.goto(unsubscribe)
    await check("unsubscribe")
    await page.click("button:has-text('Stop all emails')")
    await expect(page.locator("h1")).to_have_text("Unsubscribed")
    await check("unsubscribed")

    # deleting everything asks first, on a page of its own
    await page.goto(manage_url)
    await page.click("button:has-text('Delete all my data')")
    await expect(page.locator("h1")).to_have_text("Delete all your data")
    await expect(page.locator("main")).to_contain_text("Are you sure?")
    await check("erase-confirm")
    assert await pool.fetchval("select count(*) from subscribers") == 1
    await page.click("button:has-text('Yes, delete all my data')")
    await expect(page.locator("h1")).to_have_text("Your data is deleted")
    await check("erased")
    assert await pool.fetchval("select count(*) from subscribers") == 0


async def test_browser_resident_journey_with_javascript(
    browser: Browser, site: Site, factory: Factory, pool: asyncpg.Pool, run_jobs: Any, axe_source: str,
    artifacts: Path,
) -> None:
    await councils(factory)
    context = await browser.new_context()
    page = await context.new_page()
    refused = watch_csp(page)
    await resident_journey(page, site, pool, run_jobs, axe_source, artifacts, js=True)
    assert refused == []


async def test_browser_resident_journey_without_javascript(
    browser: Browser, site: Site, factory: Factory, pool: asyncpg.Pool, run_jobs: Any, axe_source: str,
    artifacts: Path,
) -> None:
    await councils(factory)
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    await resident_journey(page, site, pool, run_jobs, axe_source, artifacts, js=False)


async def tab_to(page: Page, selector: str, limit: int = 400) -> None:
    """Press Tab until the element matching `selector` has the focus: proof it is reachable by keyboard alone."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} never got the focus by Tab")


async def focus_is_visible(page: Page) -> bool:
    return bool(await page.evaluate(
        """() => { const s = getComputedStyle(document.activeElement);
                   return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2) || s.boxShadow !== 'none'
                          || s.backgroundColor === 'rgb(255, 221, 0)'; }"""
    ))


async def test_browser_keyboard_only_subscribe(
    browser: Browser, site: Site, factory: Factory, pool: asyncpg.Pool, axe_source: str, artifacts: Path
) -> None:
    await councils(factory)
    page = await browser.new_page()
    await page.goto(site.base + "/")
    await tab_to(page, ".skip-link")
    assert await focus_is_visible(page)
    await tab_to(page, "#email")
    await page.keyboard.type("keys@example.org")
    await tab_to(page, "summary")  # the first region: East Midlands
    await page.keyboard.press("Enter")
    await tab_to(page, "#council-rutland")
    assert await focus_is_visible(page)
    await page.keyboard.press("Space")
    await tab_to(page, "#query")
    await page.keyboard.type("dementia")
    await tab_to(page, "button[value=subscribe]")
    assert await focus_is_visible(page)
    await page.keyboard.press("Enter")
    await expect(page.locator("h1")).to_have_text("Check your email")
    row = await pool.fetchrow("select councils, query from subscriptions")
    assert (row["councils"], row["query"]) == (["rutland"], "dementia")

    # errors: summarised at the top, focused, each linked to its field
    await page.goto(site.base + "/")
    await tab_to(page, "button[value=subscribe]")
    await page.keyboard.press("Enter")
    summary = page.locator(".error-summary")
    await expect(summary).to_be_focused()
    await expect(summary).to_contain_text("Enter your email address")
    assert await page.get_attribute("#email", "aria-describedby") == "email-hint email-error"
    await check_page(page, axe_source, artifacts, "subscribe-errors")
    await tab_to(page, ".error-summary a[href='#email']")
    await page.keyboard.press("Enter")
    await expect(page.locator("#email")).to_be_focused()


async def test_browser_admin_behind_its_token(
    browser: Browser, site: Site, factory: Factory, redis: ArqRedis, axe_source: str, artifacts: Path
) -> None:
    source = await factory.source("rutland", last_error="HTTP 503 from the council", consecutive_failures=3)
    page = await browser.new_page()
    response = await page.goto(site.base + "/admin")
    assert response is not None and response.status == 401
    await check_page(page, axe_source, artifacts, "admin-login")
    await page.fill("#token", "not-the-token")
    await page.click("button:has-text('Sign in')")
    await expect(page.locator(".error-summary")).to_contain_text("The token is not right")
    await page.fill("#token", "operator-token-1234")
    await page.click("button:has-text('Sign in')")
    await expect(page.locator("h1")).to_have_text("Operator page")
    [cookie] = await page.context.cookies()
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/admin")
    await expect(page.locator("main")).to_contain_text("HTTP 503 from the council")
    await check_page(page, axe_source, artifacts, "admin")

    await page.click(f"form[action='/admin/sources/{source}/poll'] button")
    await expect(page.locator("[role=status]")).to_contain_text(f"Poll of source {source}")
    [job] = [j for j in await redis.queued_jobs() if j.function == "poll_source"]
    assert job.args == (source,)

    await page.click("button:has-text('Sign out')")
    await expect(page.locator("h1")).to_have_text("Sign in to the operator page")


async def test_browser_cross_site_form_post_is_refused(
    browser: Browser, site: Site, factory: Factory, pool: asyncpg.Pool, axe_source: str, artifacts: Path
) -> None:
    """Another site's page posts a form, with a token copied from ours, to a manage link it learnt: refused."""
    grace = await factory.subscriber("grace@example.org")
    await factory.subscription(grace, councils=[await factory.council()])
    manage = f"/manage/{Tokens(site.settings.secret_key).make('manage', grace)}"
    page = await browser.new_page()
    await page.goto(site.base + manage)
    token = await page.get_attribute(f"form[action='{manage}'] input[name=csrf] >> nth=0", "value")

    async def attacker_page(request: web.Request) -> web.Response:
        return web.Response(content_type="text/html", text=(
            f'<!doctype html><form method="post" action="{site.base}{manage}">'
            f'<input type="hidden" name="csrf" value="{token}"><input type="hidden" name="action" value="erase">'
            '<button>Win a prize</button></form>'
        ))

    app = web.Application()
    app.router.add_get("/", attacker_page)
    port = free_port()
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    try:
        await page.goto(f"http://localhost:{port}/")  # another site: localhost is not 127.0.0.1
        await page.click("text=Win a prize")
        await expect(page.locator("h1")).to_have_text("This form could not be sent")
        await check_page(page, axe_source, artifacts, "form-refused")
    finally:
        await server.close()
    assert await pool.fetchval("select count(*) from subscribers") == 1


async def test_browser_error_pages_are_clear_and_accessible(
    browser: Browser, site: Site, factory: Factory, axe_source: str, artifacts: Path
) -> None:
    await factory.council("rutland", name=RUTLAND)
    page = await browser.new_page()
    response = await page.goto(site.base + "/manage/not-a-token")
    assert response is not None and response.status == 404
    await expect(page.locator("h1")).to_have_text("This link is not valid")
    await check_page(page, axe_source, artifacts, "bad-link")

    # a confirmation link signed long ago: the page offers a fresh one
    long_ago = Tokens(site.settings.secret_key, clock=lambda: time.time() - 30 * 86400)
    response = await page.goto(f"{site.base}/confirm/{long_ago.make('confirm', 1, 1)}")
    assert response is not None and response.status == 410
    await expect(page.locator("h1")).to_have_text("This link has expired")
    await check_page(page, axe_source, artifacts, "expired-link")
    await page.fill("#email", "someone@example.org")
    await page.click("button:has-text('Send me a new link')")
    await expect(page.locator("h1")).to_have_text("Check your email")

    # one connection sending the form over and over: the page says so, and when to come back
    await page.goto(site.base + "/")
    token = await page.get_attribute("input[name=csrf]", "value")
    form = {"csrf": token or "", "email": "someone@example.org", "council": "rutland", "frequency": "weekly"}
    for _ in range(site.settings.subscribe_rate_limit_per_client_per_hour - 1):  # the resend above was one
        assert (await page.request.post(site.base + "/subscribe", form=form)).status == 200
    await page.fill("#email", "someone@example.org")
    await page.click("summary:has-text('East Midlands')")
    await page.check("#council-rutland")
    await page.click("button:has-text('Subscribe')")
    await expect(page.locator("h1")).to_have_text("Too many requests")
    await check_page(page, axe_source, artifacts, "too-many-requests")
