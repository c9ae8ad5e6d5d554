"""The demo's `mgWebService.asmx` answers: `GetCommittees`, `GetMeetings` and `GetMeeting` as ModernGov writes them.

XML with dates as `dd/mm/yyyy`, times as `2.00 pm` (UK local time), flags as `True`/`False`, counts with a leading
space, whitespace in empty elements, agenda text and minutes as escaped Word HTML and titles HTML-escaped before being
XML-escaped (`Residents&amp;#39; Parking`).
"""

from __future__ import annotations

import html
from datetime import date
from xml.sax.saxutils import escape as xml_escape

from notifier.demo.data import AgendaItem, Council, Meeting
from notifier.demo.formats import uk_date, uk_time, word_html

__all__ = ["render_committees", "render_meeting", "render_meetings"]


def _title(text: str) -> str:
    """A title for the web service: HTML-escaped by ModernGov, then XML-escaped (`Chair&amp;#39;s`)."""
    return xml_escape(html.escape(text, quote=False).replace("'", "&#39;"))


def _bool(value: bool) -> str:
    return "True" if value else "False"


def _count(value: int) -> str:
    return f" {value}"


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
                x.leaf("meetingdate", uk_date(meeting.day))
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
    x = _Xml()
    x.open("meeting")
    _meeting_fields(x, meeting)
    if not meeting.items:
        x.leaf("agendaitems")
    else:
        x.open("agendaitems")
        for item in meeting.items:
            _agenda_item(x, meeting, item, committee_title=committee_title, base=base)
        x.close("agendaitems")
    x.leaf("attendees")
    x.close("meeting")
    return x.render()


def _meeting_fields(x: _Xml, meeting: Meeting) -> None:
    """The meeting's own elements, before its agenda."""
    x.leaf("meetingid", str(meeting.id))
    x.leaf("meetingdate", uk_date(meeting.day))
    x.leaf("meetingstatus", meeting.status)
    x.leaf("isdisplayallowed", _bool(True))
    x.leaf("meetingtime", uk_time(meeting.start_time))
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


def _agenda_item(x: _Xml, meeting: Meeting, item: AgendaItem, *, committee_title: str, base: str) -> None:
    day, clock = uk_date(meeting.day), uk_time(meeting.start_time)
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
    _linked_documents(x, item, day=day, committee_title=committee_title, base=base)
    x.close("agendaitem")


def _linked_documents(x: _Xml, item: AgendaItem, *, day: str, committee_title: str, base: str) -> None:
    if not item.documents:
        x.leaf("linkeddocuments")
        return
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
        x.leaf("publicationdate", uk_date(doc.published))
        x.leaf("meetingdate", day)
        x.leaf("decisiondate", day)
        x.leaf("committeetitle", _title(committee_title), escaped=True)
        x.leaf("isdecisionattachment", _bool(False))
        x.leaf("ownertitle", _title(item.title), escaped=True)
        x.close("linkeddoc")
    x.close("linkeddocuments")
