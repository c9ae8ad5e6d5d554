"""What every page visited in the browser tests is held to: axe-core finds no serious or critical violation, the
Content-Security-Policy blocked nothing (so nothing inline or from elsewhere is left), and a screenshot at 1280 and
375 px wide is kept under tests/browser/artifacts/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.async_api import Page

WIDTHS = (1280, 375)
NARROWEST = 320  # a small phone: checked for sideways scrolling, not kept as a screenshot


def watch_csp(page: Page) -> list[str]:
    """Collect the page's Content-Security-Policy refusals (Chromium reports them on the console)."""
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    return refused


# With a page's scripts turned off, Chromium runs no timer or queueMicrotask callback, though promise reactions
# still run. axe takes each next step with setTimeout(…, 0), and its longer timers are only time-outs for what
# failed; so on such a page the first become promise reactions and the others never fire. The page has no script
# of its own for this to disturb.
TIMERS_AS_PROMISES = """() => {
  window.setTimeout = (fn, ms, ...args) => { if (!ms) Promise.resolve().then(() => fn(...args)); return 0; };
  window.clearTimeout = () => {};
  window.queueMicrotask = fn => { Promise.resolve().then(fn); };
}"""


async def axe_violations(page: Page, axe_source: str, *, javascript: bool = True) -> list[dict[str, Any]]:
    """Serious and critical violations on the page as it is now. axe is evaluated through the DevTools protocol,
    which the page's CSP does not govern, rather than added as an inline script, which it would refuse. Without
    the page's JavaScript, frames are left out: axe asks each frame through a script of the frame's own."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        if not javascript:
            await page.evaluate(TIMERS_AS_PROMISES)
        await page.evaluate(axe_source)
    options = {"resultTypes": ["violations"], "iframes": javascript}
    result = await page.evaluate(
        "async options => (await axe.run(document, options)).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}))",
        options,
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


WIDER_THAN_PAGE = """() => {
  const width = document.documentElement.clientWidth;
  return [...document.querySelectorAll("body *")]
    .filter(el => el.getBoundingClientRect().right > width + 0.5)
    .filter(el => !(el.parentElement && el.parentElement.closest(".table-wrap")))  // tables scroll in their box
    .slice(0, 5).map(el => `${el.tagName.toLowerCase()}.${el.className} ${el.getBoundingClientRect().right}px`);
}"""


async def _no_sideways_scroll(page: Page, name: str, width: int) -> None:
    overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    wider = await page.evaluate(WIDER_THAN_PAGE) if overflow > 0 else []
    assert overflow <= 0, f"{name} at {width}px scrolls sideways by {overflow}px: {wider}"


async def check_page(
    page: Page, axe_source: str | None, artifacts: Path | None, name: str, *, javascript: bool = True
) -> None:
    """axe at every width (unless `axe_source` is None), and a full-page screenshot at each when `artifacts` is
    given. `javascript` says whether the page's scripts run: axe is run without them too (see TIMERS_AS_PROMISES)."""
    original = page.viewport_size or {"width": 1280, "height": 900}
    for width in WIDTHS:
        await page.set_viewport_size({"width": width, "height": 900})
        if axe_source is not None:
            violations = await axe_violations(page, axe_source, javascript=javascript)
            assert violations == [], f"{name} at {width}px: {violations}"
        await _no_sideways_scroll(page, name, width)
        if artifacts is not None:
            await page.screenshot(path=str(artifacts / f"{name}-{width}.png"), full_page=True)
    await page.set_viewport_size({"width": NARROWEST, "height": 900})
    await _no_sideways_scroll(page, name, NARROWEST)
    await page.set_viewport_size(original)
