"""The demo's ModernGov pages: the decisions registers, a decision's details, a meeting's page and the "what's new"
RSS feed. (The PDF every document link serves is made in `reports.py`.)

ModernGov's HTML, entity-encoded the way ModernGov does it (`01&#47;04&#47;2025`). The register, like the real one,
also links a forward plan issue, which is not a decision.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import date, datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape as xml_escape

from notifier.demo.data import Council, Decision, Document, Meeting
from notifier.demo.formats import heading_date, uk_date, word_html

__all__ = [
    "render_decision",
    "render_decisions",
    "render_meeting_page",
    "render_officer_decisions",
    "render_rss",
]

RSS_ITEMS = 50

# ModernGov writes these characters as numeric entities in its pages ("Homes &#38; Neighbourhoods", "&#40;NRIL&#41;",
# "01&#47;04&#47;2025"), and spaces too inside attributes ("Link&#32;to&#32;...").
_ENTITIES = {c: f"&#{ord(c)};" for c in "&<>\"'():/"}


def _mg_text(text: str) -> str:
    return "".join(_ENTITIES.get(c, c) for c in text)


def _mg_attr(text: str) -> str:
    return "".join("&#32;" if c == " " else _ENTITIES.get(c, c) for c in text)


def _page_date(value: date) -> str:
    return _mg_text(uk_date(value))


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
        label = f"{uk_date(meeting.day)} - {committee.title if committee else decision.maker}"
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
