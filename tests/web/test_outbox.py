"""/dev/outbox: what the embedded SMTP sink kept, each message with its HTML framed and its plain text."""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from notifier.settings import Settings
from notifier.web.app import create_app


@pytest.fixture
async def outbox(settings: Settings, pool: object, redis: object, tmp_path: Path) -> AsyncIterator[Any]:
    folder = tmp_path / "outbox"
    folder.mkdir()
    message = EmailMessage()
    message["Subject"] = "Confirm your email alerts <now>"
    message["To"] = "newcomer@example.org"
    message["From"] = "alerts@notifier.test"
    message.set_content("Open this link:\n\nhttp://127.0.0.1:8000/confirm/abc.def?x=1&y=2\n")
    message.add_alternative('<p style="color: red">Open <a href="http://127.0.0.1:8000/confirm/abc.def">it</a></p>',
                            subtype="html")
    (folder / "20260101T000000-abc.eml").write_bytes(message.as_bytes())
    async with TestClient(TestServer(create_app(settings, outbox_dir=str(folder)))) as c:
        yield c


async def test_outbox_lists_messages(outbox: TestClient[Any, Any]) -> None:
    page = await (await outbox.get("/dev/outbox")).text()
    assert '<a href="/dev/outbox/20260101T000000-abc.eml">Confirm your email alerts &lt;now&gt;</a>' in page
    assert "newcomer@example.org" in page


async def test_outbox_message_shows_html_framed_and_text_with_links(outbox: TestClient[Any, Any]) -> None:
    resp = await outbox.get("/dev/outbox/20260101T000000-abc.eml")
    page = await resp.text()
    assert resp.status == 200
    assert 'title="The email as HTML" src="/dev/outbox/20260101T000000-abc.eml/html"' in page
    assert ('<a href="http://127.0.0.1:8000/confirm/abc.def?x=1&amp;y=2">'
            "http://127.0.0.1:8000/confirm/abc.def?x=1&amp;y=2</a>") in page
    html = await outbox.get("/dev/outbox/20260101T000000-abc.eml/html")
    assert '<p style="color: red">' in await html.text()
    csp = html.headers["Content-Security-Policy"]
    assert "sandbox" in csp and "frame-ancestors 'self'" in csp and "script-src" not in csp
    assert html.headers["X-Frame-Options"] == "SAMEORIGIN"
    raw = await outbox.get("/dev/outbox/20260101T000000-abc.eml?raw=1")
    assert raw.content_type == "message/rfc822"


@pytest.mark.parametrize("name", ["..%2Fsecret_key", "missing.eml", ".hidden.eml", "x.txt"])
async def test_outbox_message_outside_the_outbox_is_not_found(outbox: TestClient[Any, Any], name: str) -> None:
    assert (await outbox.get(f"/dev/outbox/{name}")).status == 404
