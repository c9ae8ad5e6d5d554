"""ModernGov meetings, agenda items and documents, read from the `mgWebService.asmx` web service.

A poll asks `GetCommittees`, then `GetMeetings` for every live committee over a window around today, then
`GetMeeting` for the meetings whose details need (re)reading. The details refresh policy (`freshness.py`):

- a meeting never seen before, or whose summary (date, time, status) changed, is read at once;
- otherwise a meeting is read again on a schedule that follows its date (every 8 minutes from a week ago to three
  weeks ahead, daily further out, weekly beyond), spread over the interval: agendas, minutes and documents appear
  without the summary changing, and they appear around the meeting;
- all within the source's request budget: what does not fit in this poll waits for the next, the most urgent first.

A meeting that needs nothing is left out of the poll altogether (a record missing from a poll is not an event), so
every record returned is complete: a meeting comes with all its agenda items and documents. Bookkeeping lives in
the meeting's data under `_summary` and `_detail_at`. Anything that is not a valid answer fails the whole poll.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from lxml import etree

from notifier.models import ItemKind
from notifier.sources.base import Fetch, Record, SourceError, SourceState
from notifier.sources.common import (
    absolute_url,
    clean_line,
    day_start_utc,
    gather_limited,
    html_to_text,
    int_option,
    iso_instant,
    local_to_utc,
    parse_bool,
    parse_clock_time,
    parse_uk_date,
    source_zone,
)
from notifier.sources.freshness import Band, DueRead, ReadPlan, choose_reads, is_due
from notifier.sources.moderngov_xml import read_answer

__all__ = [
    "DEFAULT_DAYS_AHEAD",
    "DEFAULT_DAYS_BACK",
    "MAX_CONCURRENT_REQUESTS",
    "ModernGovAdapter",
    "base_url",
    "meeting_status",
    "needs_details",
    "parse_committees",
    "parse_meeting",
    "parse_meetings",
]

DEFAULT_DAYS_BACK = 30
DEFAULT_DAYS_AHEAD = 120
MAX_CONCURRENT_REQUESTS = 4

SERVICE = "mgWebService.asmx"
# Titles the service may give a meeting of its own, besides its committee's.
_MEETING_TITLE_TAGS = ("meetingtitle", "meetingname", "title")
_CANCELLED_STATUS = re.compile(r"\bcancell?(?:ed|ation)\b|\babandoned\b|\bwithdrawn\b")
# In a title only the word itself counts: a "Cancellation Review Panel" is not a cancelled meeting.
_CANCELLED_TITLE = re.compile(r"\bcancell?ed\b")
_POSTPONED = re.compile(r"\bpostponed\b|\bdeferred\b")
_STATUS_MARKER = re.compile(
    r"^\s*[\[(]?\s*(cancell?ed|postponed)\s*[\])]?\s*[-–—:,]*\s*|\s*[-–—:,(\[]*\s*(cancell?ed|postponed)\s*[\])]?\s*$",
    re.I,
)


# ---- pure parsing ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Committee:
    """A committee from `GetCommittees`."""

    id: str
    title: str
    expired: bool


@dataclass(frozen=True, slots=True)
class MeetingSummary:
    """A meeting as `GetMeetings` lists it: enough to tell whether its details need reading."""

    id: str
    committee_id: str
    committee_title: str
    date_text: str
    time_text: str
    status_text: str
    title_text: str

    @property
    def summary(self) -> str:
        """The `_summary` bookkeeping value (date|time|status, and the meeting's own title where it has one): what,
        when changed, makes the details worth reading again."""
        summary = f"{self.date_text}|{self.time_text}|{self.status_text}"
        return f"{summary}|{self.title_text}" if self.title_text else summary


def base_url(url: str) -> str:
    """The ModernGov site root from a source URL: the root itself, the web service URL or any page on the site."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SourceError(f"ModernGov source URL is not an http(s) URL: {url!r}")
    path = parts.path
    lowered = path.lower()
    if (at := lowered.find("/" + SERVICE.lower())) >= 0:
        path = path[:at]
    elif lowered.endswith((".aspx", ".asmx", ".htm", ".html")):
        path = path.rsplit("/", 1)[0]
    return urlunsplit((parts.scheme, parts.netloc, path.rstrip("/"), "", ""))


# An element's children by tag, each the text of the first child of that tag ("" when it has none), as `findtext`
# reads it. One pass over the children rather than a `findtext` scan of them for every field read: an agenda item
# has a score of children and a dozen fields read.
Fields = dict[str, str]


def _fields(el: etree._Element) -> Fields:
    # Elements only (comments and processing instructions have no name), last to first so the first of a tag stays.
    return {child.tag: child.text or "" for child in el.iterchildren(etree.Element, reversed=True)}


def _text(fields: Fields, tag: str) -> str:
    """A child's text, whitespace-collapsed and unescaped ("" when absent or empty)."""
    return clean_line(fields.get(tag))


def _flag(fields: Fields, tag: str, *, what: str) -> bool:
    try:
        return parse_bool(fields.get(tag))
    except ValueError as e:
        raise SourceError(f"{what}: <{tag}> {e}") from e


def parse_committees(body: bytes) -> list[Committee]:
    """The committees in a `GetCommittees` answer, leaving out deleted ones (expired ones are real history)."""
    what = "ModernGov GetCommittees response"
    root = read_answer(body, what=what, root_tags=frozenset({"committees"}))
    committees: list[Committee] = []
    for el in root.iter("committee"):
        fields = _fields(el)
        cid = _text(fields, "committeeid")
        if not cid:
            raise SourceError(f"{what} has a committee without an id")
        if _flag(fields, "committeedeleted", what=what):
            continue
        committees.append(
            Committee(cid, _text(fields, "committeetitle"), _flag(fields, "committeeexpired", what=what))
        )
    return committees


def parse_meetings(body: bytes, *, committee: Committee) -> list[MeetingSummary]:
    """The meetings in a `GetMeetings` answer for one committee."""
    what = f"ModernGov GetMeetings response for committee {committee.id}"
    root = read_answer(body, what=what, root_tags=frozenset({"getmeetings", "meetings"}))
    meetings: list[MeetingSummary] = []
    for el in root.iter("meeting"):
        fields = _fields(el)
        mid = _text(fields, "meetingid")
        if not mid:
            raise SourceError(f"{what} has a meeting without an id")
        holder = next((a for a in el.iterancestors("committee")), None)
        held = _fields(holder) if holder is not None else {}
        cid = _text(held, "committeeid")
        ctitle = _text(held, "committeetitle")
        meetings.append(
            MeetingSummary(
                id=mid,
                committee_id=cid or committee.id,
                committee_title=committee.title or ctitle,
                date_text=_text(fields, "meetingdate"),
                time_text=_text(fields, "meetingtime"),
                status_text=_text(fields, "meetingstatus"),
                title_text=_own_title(fields) or (ctitle if ctitle != committee.title else ""),
            )
        )
    return meetings


def _own_title(fields: Fields) -> str:
    return next((t for tag in _MEETING_TITLE_TAGS if (t := _text(fields, tag))), "")


def meeting_status(status_text: str, *titles: str) -> str:
    """Normalise ModernGov's free-text meeting status (and any cancellation written into a title).

    One of `confirmed`, `cancelled`, `rescheduled`, `provisional`, `postponed`, `unknown`. A cancellation wins
    over anything else said, then postponement, then a move ("Confirmed; Rescheduled from 24 September 2026").
    """
    status = status_text.lower()
    titles_said = " ".join(titles).lower()
    if _CANCELLED_STATUS.search(status) or _CANCELLED_TITLE.search(titles_said):
        return "cancelled"
    if _POSTPONED.search(status) or _POSTPONED.search(titles_said):
        return "postponed"
    if re.search(r"\bre-?scheduled?\b|\bre-?arranged\b|\bmoved\b|\bchanged? (?:date|time|venue)\b", status):
        return "rescheduled"
    if re.search(r"\b(?:not|un)\s*confirmed\b|\bprovisional\b|\btentative\b|\bto be confirmed\b|\btbc\b", status):
        return "provisional"
    if re.search(r"\bconfirmed\b|\bscheduled\b|\bheld\b|\bpublished\b|\bfinal\b|\blive\b", status):
        return "confirmed"
    return "unknown"


def _strip_status_marker(title: str) -> str:
    stripped = _STATUS_MARKER.sub("", title).strip()
    return stripped or title


def needs_details(
    summary: MeetingSummary, known: Mapping[str, Any] | None, *, now: datetime, meeting_day: date | None, today: date,
    plan: ReadPlan | None = None,
) -> DueRead | None:
    """Whether a meeting's details are due this poll (the policy in the module docstring), and how urgently."""
    plan = plan or ReadPlan()
    if not known or known.get("_summary") != summary.summary:
        return DueRead(summary.id, Band.NEW, None)
    fetched_at = iso_instant(known.get("_detail_at"))
    if fetched_at is None:
        return DueRead(summary.id, Band.NEW, None)
    band = plan.band(meeting_day, today)
    return DueRead(summary.id, band, fetched_at) if is_due(summary.id, fetched_at, now, plan.every(band)) else None


def _date(text: str, *, what: str) -> date:
    try:
        return parse_uk_date(text)
    except ValueError as e:
        raise SourceError(f"{what}: {e}") from e


def _clock(text: str) -> time | None:
    # A council writing "TBC" or "after the previous meeting" has not given a time; that is no reason to fail.
    try:
        return parse_clock_time(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _Meeting:
    """What every record of one meeting shares."""

    id: str
    url: str
    starts_at: datetime
    committee: str | None
    committee_id: str
    base: str
    tz: str
    what: str


def parse_meeting(body: bytes, *, summary: MeetingSummary, base: str, tz: str, fetched_at: datetime) -> list[Record]:
    """A `GetMeeting` answer as records: the meeting, its agenda items and its documents."""
    what = f"ModernGov GetMeeting response for meeting {summary.id}"
    root = read_answer(body, what=what, root_tags=frozenset({"meeting"}))
    fields = _fields(root)
    if not _meeting_shown(fields, summary, what=what):
        return []
    m, time_known = _meeting_context(fields, summary, base=base, tz=tz, what=what)
    meeting_minutes = _flag(fields, "minutepublished", what=what)
    items, documents = _agenda(root, m, minutes_published=meeting_minutes)

    status_text = _text(fields, "meetingstatus") or summary.status_text
    own_title = _own_title(fields) or summary.title_text
    location = ", ".join(p for p in (_text(fields, "meetinglocation"), _text(fields, "meetingroom")) if p)
    meeting = Record(
        kind=ItemKind.MEETING,
        external_id=m.id,
        title=m.committee or _strip_status_marker(own_title) or f"Meeting {m.id}",
        committee=m.committee,
        committee_id=m.committee_id,
        body="\n".join(_agenda_lines(items)),
        starts_at=m.starts_at,
        status=meeting_status(status_text, own_title, summary.committee_title),
        url=m.url,
        data={
            "location": location,
            "status_text": status_text,
            "agenda_published": _flag(fields, "agendapublished", what=what),
            "minutes_published": meeting_minutes,
            "decisions_published": _flag(fields, "decisionpublished", what=what),
            "webcast": _flag(fields, "iswebcast", what=what),
            "time_known": time_known,
            "_summary": summary.summary,
            "_detail_at": fetched_at.isoformat(),
        },
    )
    return [meeting, *items, *documents.values()]


def _meeting_shown(fields: Fields, summary: MeetingSummary, *, what: str) -> bool:
    """Whether the council shows the meeting; `SourceError` if the answer is not the meeting asked for."""
    mid = _text(fields, "meetingid")
    if not mid:
        # What ModernGov answers for a meeting it does not hold (or no longer shows): usable for nothing.
        raise SourceError(f"{what} holds no meeting (no meetingid)")
    if mid != summary.id:
        raise SourceError(f"{what} describes meeting {mid}")
    return "isdisplayallowed" not in fields or _flag(fields, "isdisplayallowed", what=what)


def _meeting_context(
    fields: Fields, summary: MeetingSummary, *, base: str, tz: str, what: str
) -> tuple[_Meeting, bool]:
    """What every record of the meeting shares, and whether its start time is known (else it starts at midnight)."""
    date_text = _text(fields, "meetingdate") or summary.date_text
    time_text = _text(fields, "meetingtime") or summary.time_text
    day = _date(date_text, what=f"{what}: meetingdate")
    clock = _clock(time_text)
    committee = _strip_status_marker(summary.committee_title)
    meeting = _Meeting(
        id=summary.id,
        url=f"{base}/ieListDocuments.aspx?CId={summary.committee_id}&MId={summary.id}",
        starts_at=local_to_utc(datetime.combine(day, clock or time(0)), tz),
        committee=committee or None,
        committee_id=summary.committee_id,
        base=base,
        tz=tz,
        what=what,
    )
    return meeting, clock is not None


def _agenda(root: etree._Element, m: _Meeting, *, minutes_published: bool) -> tuple[list[Record], dict[str, Record]]:
    """The meeting's agenda items, and its documents by id (each under its agenda item, else under the meeting)."""
    items: list[Record] = []
    documents: dict[str, Record] = {}
    agenda = root.find("agendaitems")
    for el in agenda.iter("agendaitem") if agenda is not None else ():
        item = _agenda_item(el, m, minutes_published=minutes_published)
        if item is None:
            continue
        items.append(item)
        for doc_el in el.iter("linkeddoc"):
            if (doc := _document(doc_el, m, parent=(ItemKind.AGENDA_ITEM, item.external_id))) is not None:
                documents.setdefault(doc.external_id, doc)
    for doc_el in _MEETING_DOCS(root):
        if (doc := _document(doc_el, m, parent=(ItemKind.MEETING, m.id))) is not None:
            documents.setdefault(doc.external_id, doc)
    return items, documents


# The linked documents that are not under an agenda item, found in C rather than by asking each for its ancestors.
_MEETING_DOCS = etree.XPath("descendant-or-self::linkeddoc[not(ancestor::agendaitem)]")


def _agenda_lines(items: list[Record]) -> list[str]:
    """The agenda as the meeting's text: each item's number and title, then its text."""
    lines: list[str] = []
    for item in items:
        heading = " ".join(p for p in (str(item.data["number"]), item.title) if p)
        lines.extend(p for p in (heading, item.body) if p)
    return lines


def _agenda_item(el: etree._Element, m: _Meeting, *, minutes_published: bool) -> Record | None:
    fields = _fields(el)
    item_id = _text(fields, "agendaitemid")
    if not item_id:
        raise SourceError(f"{m.what} has an agenda item without an id")
    if "isdisplayallowed" in fields and not _flag(fields, "isdisplayallowed", what=m.what):
        return None
    published = "isminutepublished" in fields
    has_minutes = _flag(fields, "isminutepublished", what=m.what) if published else minutes_published
    number = _text(fields, "fulldisplaynumberformat") or _text(fields, "agendaitemnumber")
    return Record(
        kind=ItemKind.AGENDA_ITEM,
        external_id=item_id,
        title=_text(fields, "agendaitemtitle") or f"Item {number or item_id}",
        committee=m.committee,
        committee_id=m.committee_id,
        body=html_to_text(fields.get("agendatext", "")),
        starts_at=m.starts_at,
        url=m.url,
        parent=(ItemKind.MEETING, m.id),
        data={
            "number": number,
            "minutes": html_to_text(fields.get("minutesnonemptyhtmlbody", "")) if has_minutes else "",
            "is_decision": _flag(fields, "isdecision", what=m.what),
        },
    )


def _document(el: etree._Element, m: _Meeting, *, parent: tuple[ItemKind, str]) -> Record | None:
    fields = _fields(el)
    doc_id = _text(fields, "attachmentid")
    if not doc_id or _flag(fields, "isrestricted", what=m.what):
        # Restricted (exempt) papers are not public; without an id there is nothing stable to key on.
        return None
    link = fields.get("url", "")
    published = _text(fields, "publicationdate")
    try:
        published_at = day_start_utc(published, m.tz) if published else None
    except ValueError as e:
        raise SourceError(f"{m.what}: publicationdate of document {doc_id}: {e}") from e
    return Record(
        kind=ItemKind.DOCUMENT,
        external_id=doc_id,
        title=_text(fields, "title") or f"Document {doc_id}",
        committee=m.committee,
        committee_id=m.committee_id,
        starts_at=m.starts_at,
        url=absolute_url(m.base, link) if link else f"{m.base}/mgConvert2PDF.aspx?ID={doc_id}",
        parent=parent,
        published_at=published_at,
        data={"is_link": _flag(fields, "isurl", what=m.what)},
    )


# ---- the adapter ----------------------------------------------------------------------------------------------------


def _committee_filter(options: Mapping[str, Any]) -> set[str] | None:
    value = options.get("committees")
    if value in (None, "", []):
        return None
    if isinstance(value, str):
        return {p.strip() for p in value.split(",") if p.strip()}
    if isinstance(value, list | tuple | set) and all(_is_id(v) for v in value):
        return {str(v).strip() for v in value}
    raise SourceError(f"option committees must be a list of committee ids, not {value!r}")


def _is_id(value: object) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


class ModernGovAdapter:
    """Meetings, agenda items and documents from a ModernGov site's web service."""

    # What of the stored items `collect` looks at (`SourceState.known`): the meetings' bookkeeping only.
    known_kinds = frozenset({ItemKind.MEETING})

    async def collect(self, url: str, fetch: Fetch, state: SourceState) -> list[Record] | None:
        """Every meeting in the window whose details were (re)read this poll, with its items and documents."""
        base = base_url(url)
        zone = source_zone(state)
        days_back = int_option(state.options, "days_back", DEFAULT_DAYS_BACK)
        days_ahead = int_option(state.options, "days_ahead", DEFAULT_DAYS_AHEAD)
        wanted = _committee_filter(state.options)
        plan = ReadPlan.from_options(state.options).shared(state.host_sources)
        today = state.now.astimezone(zone).date()
        start, end = today - timedelta(days=days_back), today + timedelta(days=days_ahead)

        committees = parse_committees(await _get(fetch, f"{base}/{SERVICE}/GetCommittees?lCommitteeId=0"))
        if wanted is not None:
            committees = [c for c in committees if c.id in wanted]

        async def meetings_of(committee: Committee) -> list[MeetingSummary]:
            query = f"lCommitteeId={committee.id}&sFromDate={start:%d/%m/%Y}&sToDate={end:%d/%m/%Y}"
            return parse_meetings(await _get(fetch, f"{base}/{SERVICE}/GetMeetings?{query}"), committee=committee)

        listed = await gather_limited((meetings_of(c) for c in committees), limit=MAX_CONCURRENT_REQUESTS)
        summaries: dict[str, MeetingSummary] = {}
        due: list[DueRead] = []
        for summary in (s for batch in listed for s in batch):
            # A joint meeting can be listed under each of its committees: the first listing stands.
            if summary.id in summaries:
                continue
            summaries[summary.id] = summary
            known = state.known.get((ItemKind.MEETING, summary.id))
            day = _maybe_date(summary.date_text)
            if (read := needs_details(summary, known, now=state.now, meeting_day=day, today=today, plan=plan)):
                due.append(read)
        # the budget of this poll, less what the listing took; without a poll interval (a poll by hand) no limit
        allowance = (
            plan.requests_per_poll(state.poll_interval) - 1 - len(committees) if state.poll_interval else None
        )
        chosen = [summaries[d.key] for d in choose_reads(due, allowance)]

        async def details(summary: MeetingSummary) -> list[Record]:
            body = await _get(fetch, f"{base}/{SERVICE}/GetMeeting?lMeetingId={summary.id}")
            return parse_meeting(body, summary=summary, base=base, tz=state.timezone, fetched_at=state.now)

        fetched = await gather_limited((details(s) for s in chosen), limit=MAX_CONCURRENT_REQUESTS)
        return [record for batch in fetched for record in batch]


def _maybe_date(text: str) -> date | None:
    try:
        return parse_uk_date(text)
    except ValueError:
        return None


async def _get(fetch: Fetch, url: str) -> bytes:
    response = await fetch(url)
    if response is None:
        raise SourceError(f"unexpected 304 Not Modified from {url}")
    return response.body
