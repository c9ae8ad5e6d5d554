"""A resident using the pages as a browser without JavaScript does: the subscribe form at `/` (with the form's
security token, from this site's origin), then the link in the confirmation email and the confirm button."""

from __future__ import annotations

import html
import re

import aiohttp

from tests.e2e.stack import wait_for
from tests.servers import SmtpServer


def csrf(page: str, action: str) -> str:
    """The security token of the form on `page` that posts to `action`."""
    m = re.search(rf'<form[^>]*action="{re.escape(action)}".*?name="csrf" value="([^"]+)"', page, re.S)
    assert m, f"no form posting to {action}"
    return html.unescape(m[1])


async def _post(s: aiohttp.ClientSession, url: str, form: list[tuple[str, str]], origin: str) -> tuple[int, str]:
    # a browser sends its origin ("null" under the pages' no-referrer policy) and Sec-Fetch-Site on a form post
    headers = {"Origin": origin, "Sec-Fetch-Site": "same-origin"}
    async with s.post(url, data=form, headers=headers, allow_redirects=False) as resp:
        return resp.status, await resp.text()


async def forged_posts_refused(base_url: str, email: str) -> None:
    """The subscribe form posted from another site, or without its token, is refused and makes nobody."""
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{base_url}/") as resp:
            token = csrf(await resp.text(), "/subscribe")
        form = [("email", email), ("scope", "all"), ("frequency", "immediate")]
        status, _ = await _post(s, f"{base_url}/subscribe", [("csrf", token), *form], "https://elsewhere.example")
        assert status == 403
        status, _ = await _post(s, f"{base_url}/subscribe", form, base_url)
        assert status == 403


async def subscribe_through_pages(base_url: str, smtp: SmtpServer, email: str, fields: list[tuple[str, str]]) -> None:
    """Subscribe `email` with the form's `fields` (council, region, query, frequency...) and confirm it."""
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{base_url}/") as resp:
            assert resp.status == 200
            token = csrf(await resp.text(), "/subscribe")
        form = [("csrf", token), ("email", email), ("scope", "choose"), ("timezone", "Europe/London"), *fields,
                ("action", "subscribe")]
        status, text = await _post(s, f"{base_url}/subscribe", form, base_url)
        assert status == 200 and "Check your email" in text, (status, text[-2000:])

        async def confirmation() -> bool:
            return bool(smtp.to(email))

        await wait_for(f"the confirmation email to {email}", confirmation)
        [message] = smtp.to(email)
        body = message.get_body(("plain",))
        assert body is not None
        m = re.search(rf"{re.escape(base_url)}(/confirm/[^\s]+)", body.get_content())
        assert m, "no confirm link in the email"
        async with s.get(f"{base_url}{m[1]}") as resp:
            assert resp.status == 200
            token = csrf(await resp.text(), m[1])
        status, text = await _post(s, f"{base_url}{m[1]}", [("csrf", token)], "null")
        assert status == 200, (status, text[-2000:])
