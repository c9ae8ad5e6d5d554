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
  small valid PDF), `mgRss.aspx?XXR=0` (RSS 2.0 "what's new").

Paths and parameter names are matched without regard to case, as ASP.NET does. Errors are answered the way an ASMX
web service answers them: a missing or malformed parameter is HTTP 500 with a .NET exception message as text. A
meeting id the council does not hold answers HTTP 200 with an empty `<meeting>` element (whitespace only), the "valid
but empty document" that ModernGov sites give for things they do not have: an adapter must treat it as an answer it
cannot use, never as a deletion. Unknown pages, decisions and documents are 404.
"""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape as xml_escape

from aiohttp import web

from notifier.demo.data import (
    DEMO_COUNCILS,
    LONDON,
    Council,
    Decision,
    DemoCouncils,
    DemoState,
    Document,
    Meeting,
    heading_date,
    uk_time,
)

__all__ = [
    "COUNCILS",
    "create_demo_app",
    "render_committees",
    "render_decision",
    "render_decisions",
    "render_meeting",
    "render_meeting_page",
    "render_meetings",
    "render_officer_decisions",
    "render_pdf",
    "render_rss",
    "start_demo_server",
    "word_html",
]

COUNCILS = web.AppKey("demo_councils", DemoCouncils)

XML = "text/xml"
HTML = "text/html"
RSS = "application/rss+xml"
# The register's window when a request gives none (or one that does not parse): the year up to today.
DEFAULT_DECISION_WINDOW = timedelta(days=365)
RSS_ITEMS = 50


class _AsmxError(Exception):
    """A web service call ASP.NET would refuse: answered 500 with the exception text."""


# ---- formats ----------------------------------------------------------------------------------------------------

# ModernGov writes these characters as numeric entities in its pages ("Homes &#38; Neighbourhoods", "&#40;NRIL&#41;",
# "01&#47;04&#47;2025"), and spaces too inside attributes ("Link&#32;to&#32;...").
_ENTITIES = {c: f"&#{ord(c)};" for c in "&<>\"'():/"}


def _mg_text(text: str) -> str:
    return "".join(_ENTITIES.get(c, c) for c in text)


def _mg_attr(text: str) -> str:
    return "".join("&#32;" if c == " " else _ENTITIES.get(c, c) for c in text)


def _title(text: str) -> str:
    """A title for the web service: HTML-escaped by ModernGov, then XML-escaped (`Chair&amp;#39;s`)."""
    return xml_escape(html.escape(text, quote=False).replace("'", "&#39;"))


def _bool(value: bool) -> str:
    return "True" if value else "False"


def _count(value: int) -> str:
    return f" {value}"


def _uk_date(value: date) -> str:
    return f"{value:%d/%m/%Y}"


def _page_date(value: date) -> str:
    return _mg_text(_uk_date(value))


def _wrap(line: str) -> str:
    """Hard-wrap a line of HTML the way Word's export does, never inside a tag."""
    protected = re.sub(r"<[^>]*>", lambda m: m.group(0).replace(" ", "\x00"), line)
    wrapped = textwrap.wrap(protected, width=70, break_long_words=False, break_on_hyphens=False)
    return "\n".join(wrapped).replace("\x00", " ")


def word_html(paragraphs: Iterable[str], *, span: bool = True) -> str:
    """Paragraphs as the Word-exported HTML ModernGov stores for agenda text, minutes and decisions."""
    lines = ['<div class="WordSection1">']
    for paragraph in paragraphs:
        body = html.escape(paragraph, quote=False)
        if span:
            lines.append(_wrap(f'<p class="MsoNormal"><span style="">{body}</span></p>'))
        else:
            lines.append(_wrap(f'<p class="MsoNormal">{body}</p>'))
    lines.append("</div>")
    return "\n".join(lines) + "\n"


class _Xml:
    """Writes XML laid out as ModernGov's web service does: two-space indents, empty elements holding a newline."""

    def __init__(self) -> None:
        self._lines = ['<?xml version="1.0" encoding="utf-8"?>']
        self._depth = 0

    def open(self, name: str) -> None:
        self._lines.append(f"{'  ' * self._depth}<{name}>")
        self._depth += 1

    def close(self, name: str) -> None:
        self._depth -= 1
        self._lines.append(f"{'  ' * self._depth}</{name}>")

    def leaf(self, name: str, text: str = "", *, escaped: bool = False) -> None:
        indent = "  " * self._depth
        if not text:
            self._lines.append(f"{indent}<{name}>\n{indent}</{name}>")
        else:
            self._lines.append(f"{indent}<{name}>{text if escaped else xml_escape(text)}</{name}>")

    def render(self) -> str:
        return "\n".join(self._lines) + "\n"


# ---- the web service --------------------------------------------------------------------------------------------


def render_committees(council: Council) -> str:
    """`GetCommittees`: every committee, whatever `lCommitteeId` says."""
    x = _Xml()
    x.open("committees")
    x.leaf("committeescount", _count(len(council.committees)))
    for committee in council.committees:
        x.open("committee")
        x.leaf("committeeid", str(committee.id))
        x.leaf("committeetitle", _title(committee.title), escaped=True)
        x.leaf("committeedeleted", _bool(False))
        x.leaf("committeeexpired", _bool(committee.expired))
        x.leaf("committeecategory", committee.category)
        x.close("committee")
    x.close("committees")
    return x.render()


def render_meetings(council: Council, committee_id: int, start: date, end: date) -> str:
    """`GetMeetings`: a committee's meetings dated from `start` to `end` inclusive (every committee's for id 0)."""
    if committee_id == 0:
        committees = list(council.committees)
    else:
        committees = [c for c in council.committees if c.id == committee_id]
    listed = [
        (c, sorted((m for m in council.meetings if m.committee_id == c.id and start <= m.day <= end),
                   key=lambda m: m.starts_at))
        for c in committees
    ]
    x = _Xml()
    x.open("getmeetings")
    x.leaf("meetingscount", _count(sum(len(meetings) for _, meetings in listed)))
    x.leaf("committeescount", _count(len(listed)))
    for committee, meetings in listed:
        x.open("committee")
        x.leaf("committeeid", str(committee.id))
        x.leaf("committeetitle", _title(committee.title), escaped=True)
        x.leaf("committeemeetingcount", _count(len(meetings)))
        if not meetings:
            x.leaf("committeemeetings")
        else:
            x.open("committeemeetings")
            for meeting in meetings:
                x.open("meeting")
                x.leaf("meetingid", str(meeting.id))
                x.leaf("meetingdate", _uk_date(meeting.day))
                x.leaf("meetingstatus", meeting.status)
                x.leaf("meetingtime", uk_time(meeting.start_time))
                x.leaf("iswebcast", _bool(meeting.webcast))
                x.close("meeting")
            x.close("committeemeetings")
        x.close("committee")
    x.close("getmeetings")
    return x.render()


def render_meeting(council: Council, meeting_id: int, base: str) -> str:
    """`GetMeeting`: the meeting with its agenda items and their documents; an empty `<meeting>` when unknown."""
    meeting = council.meeting(meeting_id)
    if meeting is None:
        return '<?xml version="1.0" encoding="utf-8"?>\n<meeting>\n</meeting>\n'
    committee = council.committee(meeting.committee_id)
    committee_title = committee.title if committee is not None else ""
    day, clock = _uk_date(meeting.day), uk_time(meeting.start_time)
    x = _Xml()
    x.open("meeting")
    x.leaf("meetingid", str(meeting.id))
    x.leaf("meetingdate", day)
    x.leaf("meetingstatus", meeting.status)
    x.leaf("isdisplayallowed", _bool(True))
    x.leaf("meetingtime", clock)
    x.leaf("meetingactualstarttime")
    x.leaf("meetingplannedfinishtime", uk_time(meeting.finish_time) if meeting.finish_time else "")
    x.leaf("meetingactualfinishtime")
    x.leaf("meetinglocation", meeting.location)
    x.leaf("iswebcast", _bool(meeting.webcast))
    x.leaf("agendaid", str(meeting.id))
    x.leaf("agendapublished", _bool(meeting.agenda_published))
    x.leaf("decisionpublished", _bool(meeting.decision_published))
    x.leaf("minutepublished", _bool(meeting.minutes_published))
    x.leaf("meetingroom")
    if not meeting.items:
        x.leaf("agendaitems")
    else:
        x.open("agendaitems")
        for item in meeting.items:
            x.open("agendaitem")
            x.leaf("agendaitemid", str(item.id))
            x.leaf("agendaitemtitle", _title(item.title), escaped=True)
            x.leaf("agendatext", word_html(item.text))
            x.leaf("actualmeetingdate", day)
            # ModernGov numbers items internally past the procedural ones it hides; the display number is separate.
            x.leaf("agendaitemnumber", str(item.number + 3))
            x.leaf("agendaitemsubnumber")
            x.leaf("fulldisplaynumberformat", f"{item.number}.")
            x.leaf("authorusername")
            x.leaf("commentlabel1", "Presented By")
            x.leaf("commenttext1")
            x.leaf("commentlabel2", "Actions")
            x.leaf("commenttext2")
            x.leaf("minutesnonemptyhtmlbody", word_html(item.minutes, span=False) if item.minutes else "")
            x.leaf("declarationcount", "0")
            x.leaf("iscallin", _bool(False))
            x.leaf("iscomment", _bool(False))
            x.leaf("isdecision", _bool(item.is_decision))
            x.leaf("isdecisionpublished", _bool(item.decision_published))
            x.leaf("isminutepublished", _bool(bool(item.minutes)))
            x.leaf("ispubliccanspeak", _bool(False))
            x.leaf("isrestricted", _bool(False))
            x.leaf("isdisplayallowed", _bool(True))
            x.leaf("meetingdate", day)
            x.leaf("meetingtime", clock)
            x.leaf("minutesitemnumber", str(item.number) if item.minutes else "")
            x.leaf("minutesitemsubnumber")
            x.leaf("preferreddate", day)
            x.leaf("refertocommittee", _title(committee_title), escaped=True)
            if not item.documents:
                x.leaf("linkeddocuments")
            else:
                x.open("linkeddocuments")
                for number, doc in enumerate(item.documents, start=1):
                    x.open("linkeddoc")
                    x.leaf("attachmentid", str(doc.id))
                    x.leaf("title", _title(doc.title), escaped=True)
                    x.leaf("isurl", _bool(False))
                    x.leaf("url", f"{base}/mgConvert2PDF.aspx?ID={doc.id}")
                    x.leaf("isrestricted", _bool(False))
                    x.leaf("restrictionsRef")
                    x.leaf("itemnum", str(number))
                    x.leaf("publicationdate", _uk_date(doc.published))
                    x.leaf("meetingdate", day)
                    x.leaf("decisiondate", day)
                    x.leaf("committeetitle", _title(committee_title), escaped=True)
                    x.leaf("isdecisionattachment", _bool(False))
                    x.leaf("ownertitle", _title(item.title), escaped=True)
                    x.close("linkeddoc")
                x.close("linkeddocuments")
            x.close("agendaitem")
        x.close("agendaitems")
    x.leaf("attendees")
    x.close("meeting")
    return x.render()


# ---- pages ------------------------------------------------------------------------------------------------------


def _page(council: Council, title: str, body: str) -> str:
    return (
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
        '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n<head>\n'
        '<meta http-equiv="Content-Type" content="text/html; charset=utf-8" />\n'
        f"<title>{_mg_text(title)} - {_mg_text(council.name)}</title>\n</head>\n<body>\n"
        f'<div id="modgov">{body}<div class="mgFooter" >\n<p>&nbsp;</p>\n</div>\n</div>\n'
        "</body>\n</html>\n"
    )


def _header(title: str) -> str:
    return f'<div class="mgHeader"><h1  class="mgMainTitleTxt" >{_mg_text(title)}</h1></div>\n'


def _label(label: str, value: str) -> str:
    return f'<p><span  class="mgLabel" >{label}: </span>{value}</p>\n'


def _file_size(doc: Document) -> str:
    return (
        '<span  class="mgFileSize" ><img height="12" src="mgimages/logo-pdf-1.gif" width="12" alt="pdf icon" /> '
        f"PDF {doc.size_kb} KB</span>"
    )


def _document_file(doc: Document) -> str:
    """The path ModernGov stores a paper under: `documents/s{id}/{file name}.pdf`."""
    name = re.sub(r"[\\/:*?\"<>|]", "", doc.title).strip()
    return f"documents/s{doc.id}/{name}.pdf"


def _in_window(day: date, window: tuple[date, date]) -> bool:
    return window[0] <= day <= window[1]


def _call_ins(decision: Decision, today: date) -> str:
    if not decision.call_in:
        return "Not for call-in"
    return "Subject to call-in" if today < decision.effective_from else "Not called in"


def _decision_link(decision_id: int, title: str, *, hidden_ref: bool) -> str:
    if hidden_ref:
        tip = _mg_attr(f"Link to decision details for {title} ref: {decision_id}")
        return (f'<a  href="ieDecisionDetails.aspx?ID={decision_id}"  title="{tip}">{_mg_text(title)}'
                f'<span  class="mgHide" > ref&#58; {decision_id}</span></a>')
    tip = _mg_attr(f"Link to decision details for {title}")
    return f'<a  href="ieDecisionDetails.aspx?ID={decision_id}"  title="{tip}">{_mg_text(title)}</a>'


def render_decisions(council: Council, window: tuple[date, date], today: date) -> str:
    """`mgDelegatedDecisions.aspx`: the register of decisions published in `window`, newest first."""
    rows: list[tuple[date, int, str]] = []
    for d in council.decisions:
        if _in_window(d.published_on, window):
            cells = (_decision_link(d.id, d.title, hidden_ref=True), _page_date(d.published_on),
                     _page_date(d.effective_from), _call_ins(d, today))
            rows.append((d.published_on, d.id, "".join(f'<td  class="mgMainTxt" >{c}</td>' for c in cells)))
    for issue in council.issues:
        if _in_window(issue.listed_on, window):
            link = (f'<a  href="mgIssueHistoryHome.aspx?IId={issue.id}&amp;Opt=0"  '
                    f'title="{_mg_attr("Link to issue history")}">{_mg_text(issue.title)}</a>')
            cells = (link, _page_date(issue.listed_on), _page_date(issue.listed_on), "Not for call-in")
            rows.append((issue.listed_on, 0, "".join(f'<td  class="mgMainTxt" >{c}</td>' for c in cells)))
    rows.sort(key=lambda r: (r[0], r[1]), reverse=True)
    body = (
        _header("Decisions")
        + '<div class="mgContent" >\n'
        + '<table class="mgTabTable tablesorter"  summary="Table of decision summary data">\n'
        + '<caption  class="mgSectionTitle" >Decisions published</caption>\n'
        + "<thead class='mgFilterHeaderRow'><tr>\n"
        + "<th abbr='Title'  data-placeholder='Enter&#32;text&#32;to&#32;match'  scope='col'>Title"
        + "<!--Pending Key Decisions--></th>\n"
        + "<th abbr='Published' data-placeholder='Enter&#32;date' scope='col'>Date<!--Date Made/Published--></th>\n"
        + "<th abbr='Applies'  data-placeholder='Enter&#32;date' scope='col'>Effective from"
        + "<!--Date Decision Applies--></th>\n"
        + "<th abbr='Call-ins' data-placeholder='Call-ins' scope='col'>Call-ins<!--Status - No. of Call-Ins--></th>\n"
        + "</tr></thead><tbody>\n"
        + "".join(f"<tr>{row}</tr>\n" for _, _, row in rows)
        + "</tbody></table>\n</div>\n"
    )
    return _page(council, "Decisions", body)


def render_officer_decisions(council: Council, window: tuple[date, date]) -> str:
    """`mgListOfficerDecisions.aspx`: officer decisions published in `window`, newest first."""
    decisions = sorted((d for d in council.decisions if d.officer and _in_window(d.published_on, window)),
                       key=lambda d: (d.published_on, d.id), reverse=True)
    rows = "".join(
        f'<tr ><td  class="mgMainTxt" >{_decision_link(d.id, d.title, hidden_ref=False)}</td>\n'
        f'<td  class="mgMainTxt" >{_page_date(d.published_on)}</td>\n'
        '<!--<td  class="mgMainTxt" ></td>-->\n</tr>\n'
        for d in decisions
    )
    body = (
        _header("Officer decisions")
        + '<div class="mgContent" >\n'
        + '<table class="mgTabTable tablesorter"  summary="Table of decision summary data">\n'
        + '<caption  class="mgSectionTitle" >Officer decisions</caption>\n'
        + '<thead><tr><th abbr="Title" scope="col">Title<!--Pending Key Decisions--></th>\n'
        + '<th abbr="Published" scope="col">Date<!--Date Made/Published--></th>\n'
        + f"</tr></thead><tbody>\n{rows}</tbody></table>\n</div>\n"
    )
    return _page(council, "Officer decisions", body)


def _word_section(heading: str, paragraphs: Sequence[str]) -> str:
    return f'<h3 class="mgSubSubTitleTxt">{heading}:</h3>\n<div class="mgWordPara">{word_html(paragraphs)}</div>\n'


def render_decision(council: Council, decision: Decision) -> str:
    """`ieDecisionDetails.aspx`: one decision, laid out as ModernGov's decision details page."""
    parts = [
        _header("Decision details"),
        f'<div class="mgSubTitle" >\n<h2 class="mgSubTitleTxt">{_mg_text(decision.title)}</h2>\n</div>\n',
        '<div class="mgContent" >\n',
        _label("Decision Maker", _mg_text(decision.maker)),
        _label("Decision status", f'<span  class="mgPlanItemInForce" >{_mg_text(decision.status)}</span>'),
        _label("Is Key decision?", "Yes" if decision.key_decision else "No"),
        _label("Is subject to call in?", "Yes" if decision.call_in else "No"),
    ]
    if decision.purpose:
        parts.append(_word_section("Purpose", decision.purpose))
    parts.append(_word_section("Decision", decision.text))
    parts.append(_label("Publication date", _page_date(decision.published_on)))
    if decision.call_in:
        parts.append(_label("Effective from", _page_date(decision.effective_from)))
    parts.append(_label("Date of decision", _page_date(decision.decided_on)))
    meeting = council.meeting(decision.meeting_id) if decision.meeting_id is not None else None
    if meeting is not None:
        committee = council.committee(meeting.committee_id)
        label = f"{_uk_date(meeting.day)} - {committee.title if committee else decision.maker}"
        parts.append(_label(
            "Decided at meeting",
            f'<a  href="ieListDocuments.aspx?CId={meeting.committee_id}&amp;MID={meeting.id}"  >{_mg_text(label)}</a>',
        ))
    if decision.documents:
        parts.append('<p class="mgLabel" >Accompanying Documents:</p>\n<ul  class="mgBulletList" >\n')
        for doc in decision.documents:
            parts.append(
                f'<li><a  href="{html.escape(_document_file(doc))}"   title="{_mg_attr("Link to file " + doc.title)}">'
                f"{_mg_text(doc.title)}\n{_file_size(doc)} </a>  </li>\n"
            )
        parts.append("</ul>\n")
    parts.append("</div>\n")
    return _page(council, "Decision details", "".join(parts))


def _document_list(docs: Sequence[Document], css: str) -> str:
    if not docs:
        return ""
    items = "".join(
        f'<li><a  href="mgConvert2PDF.aspx?ID={doc.id}"  title="{_mg_attr("Link to document " + doc.title)}">'
        f"{_mg_text(doc.title)} {_file_size(doc)}</a></li>\n"
        for doc in docs
    )
    return f'<ul  class="{css}" >\n{items}</ul>\n'


def render_meeting_page(council: Council, meeting: Meeting) -> str:
    """`ieListDocuments.aspx`: the meeting page, with its papers, agenda and (once published) minutes."""
    committee = council.committee(meeting.committee_id)
    committee_title = committee.title if committee is not None else "Meeting"
    if meeting.minutes_published:
        heading = "Agenda and minutes"
    elif meeting.decision_published:
        heading = "Agenda and decisions"
    elif meeting.agenda_published:
        heading = "Agenda"
    else:
        heading = "Meeting details"
    parts = [
        _header(heading),
        f'<div class="mgSubTitle" >\n<h2 class="mgSubTitleTxt">{_mg_text(committee_title)} - '
        f"{_mg_text(heading_date(meeting))}</h2>\n</div>\n",
        '<div class="mgContent" >\n',
    ]
    if meeting.cancelled:
        parts.append('<p class="mgWarningTxt">This meeting has been cancelled.</p>\n')
    elif meeting.status != "Confirmed":
        parts.append(f'<p class="mgWarningTxt">{_mg_text(meeting.status)}</p>\n')
    parts.append(_label("Venue", _mg_text(meeting.location)))
    parts.append(_label("Contact", "Democratic Services"))
    parts.append(_document_list(meeting.documents, "mgActionList"))
    if meeting.items:
        parts.append('<h2 class="mgSectionTitle">Items</h2>\n<table class="mgItemTable" summary="Agenda items">\n')
        for item in meeting.items:
            minutes = ""
            if item.minutes:
                minutes = (f'<h3 class="mgSubSubTitleTxt">Minutes:</h3>\n'
                           f'<div class="mgWordPara">{word_html(item.minutes, span=False)}</div>\n')
            parts.append(
                f'<tr><td class="mgItemNumberCell"><p class="mgAiTitleTxt">{item.number}.</p></td>\n'
                f'<td><p class="mgAiTitleTxt">{_mg_text(item.title)}</p>\n'
                f'<div class="mgWordPara">{word_html(item.text)}</div>\n{minutes}'
                f"{_document_list(item.documents, 'mgBulletList')}</td></tr>\n"
            )
        parts.append("</table>\n")
    parts.append("</div>\n")
    return _page(council, heading, "".join(parts))


def render_rss(council: Council, base: str, now: datetime) -> str:
    """`mgRss.aspx?XXR=0`: what's new, newest first."""
    entries = sorted((n for n in council.news if n.at <= now), key=lambda n: n.at, reverse=True)[:RSS_ITEMS]
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<rss version="2.0">',
        "  <channel>",
        f"    <title>{xml_escape(council.name)} - What's new</title>",
        f"    <link>{xml_escape(base)}/mgWhatsNew.aspx?bcr=1</link>",
        f"    <description>Recently published meetings, agendas, minutes and decisions of "
        f"{xml_escape(council.name)}</description>",
        "    <language>en-gb</language>",
        f"    <lastBuildDate>{format_datetime(now, usegmt=True)}</lastBuildDate>",
    ]
    for entry in entries:
        lines += [
            "    <item>",
            f"      <title>{xml_escape(entry.title)}</title>",
            f"      <link>{xml_escape(f'{base}/{entry.path}')}</link>",
            f"      <description>{xml_escape(entry.description)}</description>",
            f"      <pubDate>{format_datetime(entry.at, usegmt=True)}</pubDate>",
            f'      <guid isPermaLink="false">{xml_escape(entry.guid)}</guid>',
            "    </item>",
        ]
    lines += ["  </channel>", "</rss>"]
    return "\n".join(lines) + "\n"


def _pdf_string(text: str) -> str:
    safe = text.encode("latin-1", "replace").decode("latin-1")
    return "(" + safe.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def render_pdf(lines: Sequence[str]) -> bytes:
    """A one-page PDF showing `lines`, with a correct cross-reference table."""
    text = " ".join(f"{_pdf_string(line)} '" for line in lines)
    stream = f"BT /F1 12 Tf 16 TL 56 800 Td {text} ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


# ---- request handling -------------------------------------------------------------------------------------------


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
    body = render_pdf([doc.title, council.name, f"Published {doc.published:%d/%m/%Y}",
                       "A document of the notifier demo council system."])
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
