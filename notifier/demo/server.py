"""The demo council system: an aiohttp application that answers like several councils' ModernGov sites.

Each council lives under its own path prefix (`/leicestershire`, `/leicester`, `/rutland`), which is its base URL.
Under it the demo answers what the adapters ask a real ModernGov site, in the shapes the real one uses:

- `mgWebService.asmx/GetCommittees`, `GetMeetings?lCommitteeId=&sFromDate=&sToDate=`, `GetMeeting?lMeetingId=`:
  XML with dates as `dd/mm/yyyy`, times as `2.00 pm` (UK local time), flags as `True`/`False`, counts with a leading
  space, whitespace in empty elements, agenda text and minutes as escaped Word HTML and titles HTML-escaped before
  being XML-escaped (`Residents&amp;#39; Parking`).
- `mgDelegatedDecisions.aspx?...&DR=dd/mm/yyyy-dd/mm/yyyy` (decisions published in the range; other parameters are
  ignored) and `mgListOfficerDecisions.aspx`, `ieDecisionDetails.aspx?ID=`: ModernGov's HTML, entity-encoded the
  way ModernGov does it (`01&#47;04&#47;2025`). The register, like the real one, also links a forward plan issue,
  which is not a decision.
- `ieListDocuments.aspx?CId=&MId=` (the meeting page), `mgConvert2PDF.aspx?ID=` and `documents/s{id}/{name}.pdf` (a
  paper of a few pages, made by `reports.py`), `mgRss.aspx?XXR=0` (RSS 2.0 "what's new").

The answers are rendered by `webservice.py` (the web service's XML), `pages.py` (pages, RSS) and `reports.py` (the
papers' PDFs); this module routes requests to them. Paths and parameter names are matched without regard to case,
as ASP.NET does. Errors are answered the way an ASMX web service answers them: a missing or malformed parameter is
HTTP 500 with a .NET exception message as text. A meeting id the council does not hold answers HTTP 200 with an
empty `<meeting>` element (whitespace only), the "valid but empty document" that ModernGov sites give for things they
do not have: an adapter must treat it as an answer it cannot use, never as a deletion. Unknown pages, decisions and
documents are 404.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta

from aiohttp import web

from notifier.demo.data import DEMO_COUNCILS, FACTS, LONDON, Council
from notifier.demo.pages import (
    render_decision,
    render_decisions,
    render_meeting_page,
    render_officer_decisions,
    render_rss,
)
from notifier.demo.reports import report_pdf
from notifier.demo.timeline import DemoCouncils, DemoState
from notifier.demo.webservice import render_committees, render_meeting, render_meetings

__all__ = ["COUNCILS", "create_demo_app", "start_demo_server"]

COUNCILS = web.AppKey("demo_councils", DemoCouncils)

XML = "text/xml"
HTML = "text/html"
RSS = "application/rss+xml"
# The register's window when a request gives none (or one that does not parse): the year up to today.
DEFAULT_DECISION_WINDOW = timedelta(days=365)


class _AsmxError(Exception):
    """A web service call ASP.NET would refuse: answered 500 with the exception text."""


def _param(params: Mapping[str, str], name: str) -> str:
    value = params.get(name.lower())
    if value is None:
        raise _AsmxError(f"System.InvalidOperationException: Missing parameter: {name}.")
    return value


def _int_param(params: Mapping[str, str], name: str) -> int:
    value = _param(params, name)
    try:
        return int(value.strip())
    except ValueError:
        raise _AsmxError(
            f"System.ArgumentException: Cannot convert {value} to System.Int32.\r\nParameter name: type ---> "
            "System.FormatException: Input string was not in a correct format."
        ) from None


def _parse_day(text: str) -> date | None:
    text = text.strip()
    for fmt in ("%d/%m/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def _date_param(params: Mapping[str, str], name: str) -> date:
    day = _parse_day(_param(params, name))
    if day is None:
        raise _AsmxError("System.FormatException: String was not recognized as a valid DateTime.")
    return day


def _decision_window(params: Mapping[str, str], today: date) -> tuple[date, date]:
    """The `DR=dd/mm/yyyy-dd/mm/yyyy` range (slashes may arrive encoded as %2f); the last year when absent."""
    match = re.fullmatch(r"\s*(\S+?)\s*-\s*(\S+?)\s*", params.get("dr", ""))
    if match:
        start, end = _parse_day(match.group(1)), _parse_day(match.group(2))
        if start is not None and end is not None:
            return start, end
    return today - DEFAULT_DECISION_WINDOW, today


def _text_response(body: str, content_type: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type=content_type, charset="utf-8")


def _not_found(what: str) -> web.Response:
    body = (f"<!DOCTYPE html>\n<html><head><title>The resource cannot be found.</title></head>\n"
            f"<body><h1>Server Error</h1><h2>The resource cannot be found.</h2><p>{html.escape(what)}</p></body>"
            "</html>\n")
    return _text_response(body, HTML, 404)


def _int_or_none(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


_Handler = Callable[[DemoState, Council, str, Mapping[str, str]], web.Response]


def _get_committees(state: DemoState, council: Council, base: str, params: Mapping[str, str]) -> web.Response:
    return _text_response(render_committees(council), XML)


def _get_meetings(state: DemoState, council: Council, base: str, params: Mapping[str, str]) -> web.Response:
    committee_id = _int_param(params, "lCommitteeId")
    start, end = _date_param(params, "sFromDate"), _date_param(params, "sToDate")
    return _text_response(render_meetings(council, committee_id, start, end), XML)


def _get_meeting(state: DemoState, council: Council, base: str, params: Mapping[str, str]) -> web.Response:
    return _text_response(render_meeting(council, _int_param(params, "lMeetingId"), base), XML)


def _today(state: DemoState) -> date:
    return state.now.astimezone(LONDON).date()


def _decisions(state: DemoState, council: Council, base: str, params: Mapping[str, str]) -> web.Response:
    today = _today(state)
    return _text_response(render_decisions(council, _decision_window(params, today), today), HTML)


def _officer_decisions(state: DemoState, council: Council, base: str, params: Mapping[str, str]) -> web.Response:
    return _text_response(render_officer_decisions(council, _decision_window(params, _today(state))), HTML)


def _decision(state: DemoState, council: Council, base: str, params: Mapping[str, str]) -> web.Response:
    decision_id = _int_or_none(params.get("id"))
    decision = council.decision(decision_id) if decision_id is not None else None
    if decision is None:
        return _not_found(f"No decision {params.get('id')!r} at {council.name}.")
    return _text_response(render_decision(council, decision), HTML)


def _meeting_page(state: DemoState, council: Council, base: str, params: Mapping[str, str]) -> web.Response:
    meeting_id = _int_or_none(params.get("mid"))
    meeting = council.meeting(meeting_id) if meeting_id is not None else None
    if meeting is None:
        return _not_found(f"No meeting {params.get('mid')!r} at {council.name}.")
    return _text_response(render_meeting_page(council, meeting), HTML)


def _rss(state: DemoState, council: Council, base: str, params: Mapping[str, str]) -> web.Response:
    return _text_response(render_rss(council, base, state.now), RSS)


def _document_response(council: Council, document_id: int | None) -> web.Response:
    doc = council.document(document_id) if document_id is not None else None
    if doc is None:
        return _not_found(f"No document {document_id} at {council.name}.")
    places = FACTS[council.slug].places if council.slug in FACTS else ()
    body = report_pdf(doc, council.name, places)
    return web.Response(body=body, content_type="application/pdf")


def _convert_to_pdf(state: DemoState, council: Council, base: str, params: Mapping[str, str]) -> web.Response:
    return _document_response(council, _int_or_none(params.get("id")))


_PAGES: Mapping[str, _Handler] = {
    "mgwebservice.asmx/getcommittees": _get_committees,
    "mgwebservice.asmx/getmeetings": _get_meetings,
    "mgwebservice.asmx/getmeeting": _get_meeting,
    "mgdelegateddecisions.aspx": _decisions,
    "mglistofficerdecisions.aspx": _officer_decisions,
    "iedecisiondetails.aspx": _decision,
    "ielistdocuments.aspx": _meeting_page,
    "mgconvert2pdf.aspx": _convert_to_pdf,
    "mgrss.aspx": _rss,
}
_STORED_DOCUMENT = re.compile(r"documents/s(\d+)/[^/]+")


async def _council_page(request: web.Request) -> web.Response:
    state = request.app[COUNCILS].current()
    council = state.councils.get(request.match_info["slug"].lower())
    if council is None:
        return _not_found(f"No demo council at {request.path}.")
    page = request.match_info["page"].lower()
    base = f"{request.url.origin()}/{council.slug}"
    stored = _STORED_DOCUMENT.fullmatch(page)
    if stored:
        return _document_response(council, int(stored.group(1)))
    handler = _PAGES.get(page)
    if handler is None:
        return _not_found(f"No page {request.path} at {council.name}.")
    params = {key.lower(): value for key, value in request.query.items()}
    try:
        return handler(state, council, base, params)
    except _AsmxError as e:
        return _text_response(str(e), "text/plain", 500)


async def _index(request: web.Request) -> web.Response:
    state = request.app[COUNCILS].current()
    links = "".join(
        f'<li><a href="{info.path}/mgRss.aspx?XXR=0">{html.escape(info.name)}</a> ({html.escape(info.region)}): '
        f"base URL <code>{html.escape(str(request.url.origin()) + info.path)}</code></li>\n"
        for info in DEMO_COUNCILS
        if info.slug in state.councils
    )
    recent = "".join(
        f"<li>{c.at.astimezone(LONDON):%H:%M} {html.escape(c.summary)}</li>\n" for c in reversed(state.changes[-20:])
    )
    body = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><title>Demo council system</title></head>\n<body>\n"
            f"<h1>Demo council system</h1>\n<p>ModernGov-compatible demo councils:</p>\n<ul>\n{links}</ul>\n"
            f"<h2>Latest changes</h2>\n<ul>\n{recent}</ul>\n</body></html>\n")
    return _text_response(body, HTML)


def create_demo_app(councils: DemoCouncils) -> web.Application:
    """The demo ModernGov sites, one under each council's path prefix."""
    app = web.Application()
    app[COUNCILS] = councils
    app.router.add_get("/", _index)
    app.router.add_get("/{slug}/{page:.+}", _council_page)
    return app


async def start_demo_server(host: str, port: int, councils: DemoCouncils) -> tuple[web.AppRunner, str]:
    """Serve the demo on `host:port` (port 0 picks a free one); returns the runner and the demo's base URL.

    A council's base URL is `{base URL}/{slug}`. Stop the server with `await runner.cleanup()`.
    """
    runner = web.AppRunner(create_demo_app(councils))
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = runner.addresses[0][1]
    # A wildcard address is where the server listens, not somewhere a client can reach it.
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104
    if ":" in shown:
        shown = f"[{shown}]"
    return runner, f"http://{shown}:{bound_port}"
