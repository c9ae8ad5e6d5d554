"""The local outbox at /dev/outbox: what the embedded SMTP sink kept, each message with its HTML shown framed and
sandboxed, and its plain text with the links clickable, so a newcomer can confirm their own test subscription.
Only when the embedded sink is in use; 404 otherwise."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiohttp import web
from markupsafe import Markup, escape

from notifier.embedded import read_outbox
from notifier.web.keys import OUTBOX_DIR
from notifier.web.security import EMAIL_PREVIEW_CSP, render

routes = web.RouteTableDef()

SHOWN = 200
_URL = re.compile(r"https?://[^\s<>\"']+")


def linkify(text: str) -> Markup:
    """Plain text, escaped, with each http(s) URL made a link."""
    out = []
    last = 0
    for m in _URL.finditer(text):
        out.append(escape(text[last:m.start()]))
        out.append(Markup('<a href="{0}">{0}</a>').format(m.group(0)))
        last = m.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


def _directory(request: web.Request) -> Path:
    directory = request.app.get(OUTBOX_DIR)
    if directory is None:
        raise web.HTTPNotFound(text="no local outbox: mail goes to the configured SMTP server")
    return Path(directory)


def _message(request: web.Request) -> tuple[str, EmailMessage]:
    directory = _directory(request)
    name = request.match_info["name"]
    if "/" in name or name.startswith(".") or not name.endswith(".eml"):
        raise web.HTTPNotFound()
    path = directory / name
    if not path.is_file():
        raise web.HTTPNotFound()
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return name, message


def _part(message: EmailMessage, kind: str) -> str | None:
    part = message.get_body(preferencelist=(kind,))
    return None if part is None else str(part.get_content()).replace("\r\n", "\n")


@routes.get("/dev/outbox")
async def outbox(request: web.Request) -> web.Response:
    directory = _directory(request)
    messages = await asyncio.to_thread(read_outbox, directory)
    rows: list[dict[str, Any]] = [
        {"name": name, "date": msg.get("Date", ""), "to": msg.get("To", ""), "subject": msg.get("Subject", "")}
        for name, msg in messages[:SHOWN]
    ]
    context = {"messages": rows, "total": len(messages), "directory": str(directory)}
    return render("outbox.html", request, context)


@routes.get("/dev/outbox/{name}")
async def outbox_message(request: web.Request) -> web.Response:
    name, message = await asyncio.to_thread(_message, request)
    if request.query.get("raw"):
        return web.Response(body=message.as_bytes(), content_type="message/rfc822")
    text = _part(message, "plain")
    context = {
        "name": name,
        "headers": [(h, message.get(h, "")) for h in ("Subject", "From", "To", "Date", "List-Unsubscribe")],
        "has_html": _part(message, "html") is not None,
        "text": linkify(text) if text is not None else None,
    }
    return render("outbox_message.html", request, context)


@routes.get("/dev/outbox/{name}/html")
async def outbox_html(request: web.Request) -> web.Response:
    """The HTML part alone, for the preview frame: sandboxed, its own inline styles allowed, nothing else."""
    _, message = await asyncio.to_thread(_message, request)
    body = _part(message, "html")
    if body is None:
        raise web.HTTPNotFound()
    response = web.Response(text=body, content_type="text/html")
    response.headers["Content-Security-Policy"] = EMAIL_PREVIEW_CSP
    return response
