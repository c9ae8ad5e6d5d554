"""The MIME message with its list headers, as built and as a real SMTP server receives it."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import aiosmtplib.email
import pytest

from notifier.delivery.email.message import build_message
from notifier.delivery.email.render import render_alert
from notifier.delivery.email.views import EntryView, Links, Rendered
from tests.delivery.email.samples import ALL_KINDS, BASE, FOLLOWING, LEICS, LINKS, LIST_KINDS, RUTLAND, alert, confirm
from tests.servers import SmtpServer

LONG_TOKEN = "WzQyLDEwN10.aZ3Kk0.x7Qm-8vJ2pLwRk3nT5yHcE1uGd9sBf4oZq6iXaVtNmYe0rUhWlPjKg"


def message(rendered: Rendered | None = None, **overrides: Any) -> EmailMessage:
    kwargs: dict[str, Any] = {
        "to": "jane.doe@example.net",
        "mail_from": "Council alerts <alerts@alerts.example.org>",
        "links": Links(manage=LINKS.manage, unsubscribe=f"{BASE}/unsubscribe/{LONG_TOKEN}"),
        "list_id": "Council alerts <alerts.example.org>",
        "message_id_domain": "alerts.example.org",
        "now": datetime(2025, 12, 4, 14, 5, 9, tzinfo=UTC),
    }
    kwargs.update(overrides)
    return build_message(rendered or alert(), **kwargs)


def wire(msg: EmailMessage) -> EmailMessage:
    """The message as a mail server receives it (flattened the way aiosmtplib sends it) and parsed back."""
    raw = aiosmtplib.email.flatten_message(msg)
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_build_message_headers() -> None:
    msg = wire(message(return_path="bounces+amFuZS5kb2VAZXhhbXBsZS5uZXQ.L1ar2IWK@alerts.example.org"))
    assert msg["List-Unsubscribe"] == f"<{BASE}/unsubscribe/{LONG_TOKEN}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["List-Id"] == "Council alerts <alerts.example.org>"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Date"] == "Thu, 04 Dec 2025 14:05:09 +0000"
    assert msg["From"] == "Council alerts <alerts@alerts.example.org>"
    assert msg["To"] == "jane.doe@example.net"
    assert msg["Subject"] == f"4 updates from {LEICS} and {RUTLAND}"
    assert msg["Return-Path"] == "<bounces+amFuZS5kb2VAZXhhbXBsZS5uZXQ.L1ar2IWK@alerts.example.org>"
    assert re.fullmatch(r"<[0-9a-f]{32}@alerts\.example\.org>", msg["Message-ID"])


def test_build_message_parts_text_then_html_in_utf8() -> None:
    rendered = render_alert(
        [EntryView("meeting.scheduled", "Ynys M\u00f4n County Council", "Pwyllgor Cynllunio \u2013 Planning",
                   when=datetime(2025, 12, 4, 14, 0, tzinfo=UTC))],
        links=LINKS, following=FOLLOWING,
    )
    msg = wire(message(rendered))
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert [p.get_content_charset() for p in parts] == ["utf-8", "utf-8"]
    assert [p["Content-Transfer-Encoding"] for p in parts] == ["quoted-printable", "quoted-printable"]
    # Lines end in CRLF on the wire.
    assert parts[0].get_content().replace("\r\n", "\n") == rendered.text
    assert parts[1].get_content().replace("\r\n", "\n") == rendered.html
    assert msg["Subject"] == "Ynys M\u00f4n County Council: Pwyllgor Cynllunio \u2013 Planning: New meeting"


def test_build_message_ids_are_unique() -> None:
    rendered = alert()
    ids = {message(rendered)["Message-ID"] for _ in range(50)}
    assert len(ids) == 50


def test_build_message_one_click_url_preferred_for_the_header() -> None:
    links = Links(
        manage=LINKS.manage, unsubscribe=f"{BASE}/unsubscribe/T", one_click=f"{BASE}/unsubscribe/T?one-click=1"
    )
    assert message(links=links)["List-Unsubscribe"] == f"<{BASE}/unsubscribe/T?one-click=1>"


def test_build_message_list_id_gets_angle_brackets() -> None:
    assert message(list_id="alerts.example.org")["List-Id"] == "<alerts.example.org>"


@pytest.mark.parametrize("kind", LIST_KINDS)
def test_build_message_refuses_list_mail_without_unsubscribe_links(kind: str) -> None:
    with pytest.raises(ValueError, match="unsubscribe links"):
        message(ALL_KINDS[kind](), links=None)


def test_build_message_refuses_hand_made_rendering_without_links() -> None:
    with pytest.raises(ValueError, match="unsubscribe links"):
        message(Rendered("Hello", "text\n", "<p>html</p>\n"), links=None)


def test_build_message_confirmation_without_links() -> None:
    msg = message(confirm(), links=None)
    assert msg["List-Unsubscribe"] is None and msg["List-Unsubscribe-Post"] is None
    assert msg["List-Id"] == "Council alerts <alerts.example.org>"
    assert msg["Auto-Submitted"] == "auto-generated"


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"to": "jane@example.net\r\nBcc: everyone@example.org"}, "one line"),
        ({"to": "not-an-address"}, "not an email address"),
        ({"mail_from": "Alerts <a@example.org>\nBcc: x@example.org"}, "one line"),
        ({"message_id_domain": "alerts example.org"}, "message_id_domain"),
        ({"list_id": "Council alerts <not a domain>"}, "list_id"),
        ({"now": datetime(2025, 12, 4, 14, 5)}, "naive"),
        ({"return_path": "bounces"}, "return_path"),
    ],
)
def test_build_message_refuses_bad_input(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        message(**overrides)


async def test_build_message_through_a_real_smtp_server(smtp_server: SmtpServer) -> None:
    msg = message(return_path="bounces+amFuZS5kb2VAZXhhbXBsZS5uZXQ.L1ar2IWK@alerts.example.org")
    await aiosmtplib.send(
        msg, hostname="127.0.0.1", port=smtp_server.port, sender=msg["Return-Path"].strip("<>"),
        recipients=["jane.doe@example.net"],
    )
    [received] = smtp_server.messages
    assert received.mail_from == "bounces+amFuZS5kb2VAZXhhbXBsZS5uZXQ.L1ar2IWK@alerts.example.org"
    got = received.message
    assert got["List-Unsubscribe"] == f"<{BASE}/unsubscribe/{LONG_TOKEN}>"
    assert got["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert got["Message-ID"] == msg["Message-ID"]
    body = got.get_body(("plain",))
    assert body is not None and "Moved from 4 Dec 14:00 to 11 Dec 10:00" in body.get_content()
