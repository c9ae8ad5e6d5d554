"""ModernGov decisions, read from the decisions register and each decision's page.

ModernGov's web service has no decisions method, so this reads HTML. The register (`mgDelegatedDecisions.aspx`)
is asked for published decisions (`DS=2`) made over a window ending today:

    mgDelegatedDecisions.aspx?XXR=0&bDD=true&DR=dd%2Fmm%2Fyyyy-dd%2Fmm%2Fyyyy&ACT=Find&RP=0&K=0&V=0&DM=0&HD=0
                             &DS=2&Next=true&META=mgdelegateddecisions

`DR` is the date range (slashes percent-encoded, as the register's own search form sends them), `RP=0`, `K=0`,
`V=0`, `DM=0` and `HD=0` leave the results unfiltered (any decision maker, key or not), `bDD=true` includes
delegated (officer) decisions, and `DS=2` means decisions made, not forthcoming ones. A source URL naming
`mgListOfficerDecisions.aspx` reads the officer decisions list instead, with that page's equivalent query.

Only rows linking to `ieDecisionDetails.aspx?ID=` are decisions (issue-history rows and the like are skipped).
A decision's page is read when the decision is new, when its register row changed, or when the page was last read
24 hours ago or more; a decision needing none of that is left out of the poll (a record missing from a poll is not
an event). Bookkeeping lives in the record's data under `_summary` and `_detail_at`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import lxml.html
from lxml import etree

from notifier.models import ItemKind
from notifier.sources.base import Fetch, Record, Response, SourceError, SourceState
from notifier.sources.common import (
    absolute_url,
    clean_line,
    decode_html,
    gather_limited,
    html_to_text,
    int_option,
    iso_instant,
    local_to_utc,
    parse_uk_date,
    source_zone,
)
from notifier.sources.freshness import ReadPlan
from notifier.sources.moderngov import MAX_CONCURRENT_REQUESTS, base_url

__all__ = [
    "DEFAULT_DAYS_BACK",
    "DETAIL_REFRESH",
    "ModernGovDecisionsAdapter",
    "RegisterRow",
    "needs_details",
    "parse_decision",
    "parse_register",
    "register_url",
]

DEFAULT_DAYS_BACK = 60
DETAIL_REFRESH = timedelta(hours=24)
DELEGATED = "mgDelegatedDecisions.aspx"
OFFICER = "mgListOfficerDecisions.aspx"
_DETAIL_LINK = re.compile(r"iedecisiondetails\.aspx", re.I)
# Sections of a decision page that are not about what was decided.
_SKIP_SECTIONS = re.compile(r"interest|declar|dispensation|document|contact|report author|call.?in", re.I)


@dataclass(frozen=True, slots=True)
class RegisterRow:
    """One decision as the register lists it."""

    id: str
    title: str
    date_text: str
    effective_text: str
    call_in_text: str

    @property
    def summary(self) -> str:
        """The `_summary` bookkeeping value: a change in the register row is worth re-reading the page for."""
        return f"{self.title}|{self.date_text}|{self.effective_text}|{self.call_in_text}"


def register_url(url: str, start: date, end: date) -> str:
    """The register query for decisions made from `start` to `end`, for the site the source URL names."""
    base = base_url(url)
    window = quote(f"{start:%d/%m/%Y}-{end:%d/%m/%Y}", safe="-")
    if OFFICER.lower() in urlsplit(url).path.lower():
        return f"{base}/{OFFICER}?XXR=0&FULL=1&BAM=1&DR={window}&ACT=Find&K=0&DM=0&DEP=0&PH=0&LO=0&C3=0&Next=true"
    return (
        f"{base}/{DELEGATED}?XXR=0&bDD=true&DR={window}&ACT=Find&RP=0&K=0&V=0&DM=0&HD=0&DS=2&Next=true"
        "&META=mgdelegateddecisions"
    )


def _html(response: Response, *, what: str) -> lxml.html.HtmlElement:
    if not response.body.strip():
        raise SourceError(f"{what} is empty")
    text = decode_html(response.body, response.content_type)
    # lxml refuses str input that declares its own encoding; it has been decoded already.
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text)
    try:
        # huge_tree lifts libxml2's nesting limit, past which it would silently drop content.
        parser = lxml.html.HTMLParser(no_network=True, remove_pis=True, huge_tree=True)
        return lxml.html.document_fromstring(text, parser=parser)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError) as e:
        raise SourceError(f"{what} cannot be read as HTML: {e}") from e


def _classes(el: etree._Element) -> set[str]:
    return set((el.get("class") or "").split())


def _cell_text(el: etree._Element) -> str:
    """An element's text without ModernGov's hidden chrome (the " ref: 13567" span inside each title link)."""
    el = copy.deepcopy(el)
    el.tail = None
    for hidden in el.xpath(".//*[contains(concat(' ', normalize-space(@class), ' '), ' mgHide ')]|.//script|.//style"):
        hidden.drop_tree()
    return clean_line(el.text_content())


def _query_id(href: str, name: str) -> str:
    wanted = name.lower()
    for key, value in parse_qsl(urlsplit(href).query, keep_blank_values=True):
        if key.lower() == wanted and value.strip():
            return value.strip()
    return ""


def _columns(table: etree._Element) -> dict[str, int]:
    """Column positions by what the header says (its `abbr` where it has one, else its text)."""
    header = next(iter(table.xpath(".//tr[th]")), None)
    if header is None:
        return {}
    names: dict[str, int] = {}
    for i, th in enumerate(header.xpath("./th|./td")):
        label = f"{th.get('abbr') or ''} {clean_line(th.text_content())}".lower()
        # Most specific first: a "Decision date" column is a date, not the title.
        for key, pattern in (
            ("call_in", r"call"),
            ("effective", r"applies|effective"),
            ("date", r"published|date|made"),
            ("title", r"title|decision|subject"),
        ):
            if key not in names and re.search(pattern, label):
                names[key] = i
                break
    return names


def _is_register(root: etree._Element) -> bool:
    """Whether a page with no decision rows is still plainly the register (so "no decisions" is a real answer)."""
    lower = "translate({}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"
    if root.xpath(f"//table[contains({lower.format('@summary')}, 'decision')]"):
        return True
    if root.xpath(f"//table/caption[contains({lower.format('.')}, 'decision')]"):
        return True
    if root.xpath(f"//form[contains({lower.format('@action')}, 'decisions.aspx')]"):
        return True
    # "Decisions", "Delegated decisions", "Officer decisions"; not "Decision details", a single decision's page.
    headings = " ".join(h.text_content() for h in root.xpath("//*[@id='modgov']//h1")).lower()
    return bool(re.search(r"\bdecisions\b", headings))


def parse_register(response: Response) -> list[RegisterRow]:
    """The decisions a register page lists; raises `SourceError` if the page is not a ModernGov register."""
    what = f"ModernGov decisions register page ({response.url})"
    root = _html(response, what=what)
    rows: dict[str, RegisterRow] = {}
    for link in root.xpath("//a[@href]"):
        href = link.get("href") or ""
        if not _DETAIL_LINK.search(href) or not (decision_id := _query_id(href, "ID")):
            continue
        tr = next(link.iterancestors("tr"), None)
        cells = tr.xpath("./td|./th") if tr is not None else []
        table = next(tr.iterancestors("table"), None) if tr is not None else None
        columns = _columns(table) if table is not None else {}

        def cell(
            key: str, default: int | None, cells: list[etree._Element] = cells, columns: dict[str, int] = columns
        ) -> str:
            at = columns.get(key, default)
            return _cell_text(cells[at]) if at is not None and at < len(cells) else ""

        title = _cell_text(link) or clean_line(link.get("title"))
        rows.setdefault(
            decision_id,
            RegisterRow(
                id=decision_id,
                title=title,
                date_text=cell("date", 1),
                effective_text=cell("effective", None),
                call_in_text=cell("call_in", None),
            ),
        )
    if not rows and not _is_register(root):
        raise SourceError(f"{what} is not a decisions register (no decisions table or search form)")
    return list(rows.values())


def _labels(scope: etree._Element) -> dict[str, etree._Element]:
    """Each `mgLabel` ("Decision status:", "Date of decision:") mapped to the element holding label and value."""
    found: dict[str, etree._Element] = {}
    for label in scope.xpath(".//*[contains(concat(' ', normalize-space(@class), ' '), ' mgLabel ')]"):
        name = clean_line(label.text_content()).lower().rstrip(" :?").strip()
        holder = label.getparent() if label.tag == "span" else label
        if name and holder is not None:
            found.setdefault(name, holder)
    return found


def _label_value(labels: Mapping[str, etree._Element], *names: str) -> tuple[str, etree._Element | None]:
    for name in names:
        holder = labels.get(name)
        if holder is None:
            continue
        label = holder.xpath(".//*[contains(concat(' ', normalize-space(@class), ' '), ' mgLabel ')]")
        text = holder.text_content()
        if label:
            text = text.replace(label[0].text_content(), "", 1)
        return clean_line(text).strip(" :"), holder
    return "", None


def _sections(scope: etree._Element) -> list[tuple[str, str]]:
    """(heading, text) for each `mgSubSubTitleTxt` section: the elements after it up to the next label or heading."""
    sections: list[tuple[str, str]] = []
    for heading in scope.xpath(
        ".//h3[contains(@class, 'mgSubSubTitleTxt')]|.//h4[contains(@class, 'mgSubSubTitleTxt')]"
    ):
        parts: list[str] = []
        for sibling in heading.itersiblings():
            if sibling.tag in ("h2", "h3", "h4") or _labels_in(sibling) or "mgBulletList" in _classes(sibling):
                break
            parts.append(lxml.html.tostring(sibling, encoding="unicode", with_tail=False))
        sections.append((clean_line(heading.text_content()).rstrip(" :"), html_to_text("".join(parts))))
    return sections


def _labels_in(el: etree._Element) -> bool:
    return "mgLabel" in _classes(el) or bool(el.xpath(".//span[contains(@class, 'mgLabel')]"))


def _yes_no(text: str) -> bool | None:
    word = text.strip().lower()
    if word in ("yes", "y", "true"):
        return True
    if word in ("no", "n", "false", ""):
        return False
    return None


def _day(text: str, *, what: str) -> date | None:
    if not text:
        return None
    try:
        return parse_uk_date(text)
    except ValueError as e:
        raise SourceError(f"{what}: {e}") from e


def parse_decision(response: Response, *, row: RegisterRow, base: str, tz: str, fetched_at: datetime) -> Record:
    """A decision page (`ieDecisionDetails.aspx?ID=`) as a decision record."""
    what = f"ModernGov decision page {row.id}"
    root = _html(response, what=what)
    scope = next(iter(root.xpath("//*[@id='modgov']")), root)
    labels = _labels(scope)
    title_el = next(iter(scope.xpath(".//h2[contains(@class, 'mgSubTitleTxt')]")), None)
    if title_el is None and not {"decision status", "date of decision", "publication date"} & labels.keys():
        raise SourceError(f"{what} is not a ModernGov decision page (no title or decision details)")

    status, _ = _label_value(labels, "decision status", "status")
    decided = _day(_label_value(labels, "date of decision", "decision date", "date decision made")[0],
                   what=f"{what}: date of decision")  # fmt: skip
    published = _day(_label_value(labels, "publication date", "date published")[0], what=f"{what}: publication date")
    listed = _day(row.date_text, what=f"{what}: register date")
    when = decided or listed
    published_day = published or listed
    title = (clean_line(title_el.text_content()) if title_el is not None else "") or row.title or f"Decision {row.id}"
    data, committee_id = _decision_data(scope, labels, row, base=base, when=when, fetched_at=fetched_at)
    return Record(
        kind=ItemKind.DECISION,
        external_id=row.id,
        title=title,
        committee=data["decision_maker"],
        committee_id=committee_id,
        body=_decision_text(scope),
        starts_at=local_to_utc(datetime.combine(when, time(0)), tz) if when else None,
        status=status or None,
        url=f"{base}/ieDecisionDetails.aspx?ID={row.id}",
        published_at=local_to_utc(datetime.combine(published_day, time(0)), tz) if published_day else None,
        data=data,
    )


def _decision_data(
    scope: etree._Element, labels: Mapping[str, etree._Element], row: RegisterRow, *, base: str, when: date | None,
    fetched_at: datetime,
) -> tuple[dict[str, Any], str | None]:
    """The decision record's data, and the id of the committee whose meeting took it (when the page links one)."""
    key_text, _ = _label_value(labels, "is key decision", "key decision")
    call_in_text, _ = _label_value(labels, "is subject to call in", "is subject to call-in", "subject to call in")
    deadline, _ = _label_value(
        labels, "call-in deadline", "call in deadline", "call-in deadline date", "call in expiry"
    )
    maker, _ = _label_value(labels, "decision maker", "decision taker", "decision-maker")
    effective, _ = _label_value(labels, "effective from", "date decision effective", "decision will come into force")
    data: dict[str, Any] = {
        "key_decision": _yes_no(key_text) is True,
        "call_in": _call_in(call_in_text),
        "decision_maker": maker or None,
        "decision_date": when.isoformat() if when else None,
        "documents": _documents(scope, base),
        "_summary": row.summary,
        "_detail_at": fetched_at.isoformat(),
    }
    if effective or row.effective_text:
        data["effective_from"] = _iso_or_text(effective or row.effective_text)
    if deadline:
        data["call_in_deadline"] = _iso_or_text(deadline)
    if row.call_in_text:
        data["call_in_status"] = row.call_in_text
    committee_id = _add_meeting(data, labels, base=base, maker=maker)
    return data, committee_id


def _add_meeting(data: dict[str, Any], labels: Mapping[str, etree._Element], *, base: str, maker: str) -> str | None:
    """Put the meeting that took the decision into `data`; the id of its committee, when its link gives one."""
    meeting_text, meeting_el = _label_value(labels, "decided at meeting", "meeting")
    if meeting_el is None:
        return None
    committee_id: str | None = None
    link = next(iter(meeting_el.xpath(".//a[@href]")), None)
    if link is not None:
        meeting_url = absolute_url(base, link.get("href") or "")
        data["meeting_id"] = _query_id(meeting_url, "MId") or None
        data["meeting_url"] = meeting_url
        committee_id = _query_id(meeting_url, "CId") or None
    if not maker:
        # "19/10/2015 - Policy Committee": the committee is the decision maker.
        data["decision_maker"] = clean_line(meeting_text.split(" - ", 1)[-1]) or None
    return committee_id


def _decision_text(scope: etree._Element) -> str:
    """The page's sections as the record's text."""
    # The decision itself first, then the reasons, alternatives and purpose around it, in page order.
    decision_parts: list[str] = []
    other_parts: list[str] = []
    for heading, text in _sections(scope):
        if not text or _SKIP_SECTIONS.search(heading):
            continue
        if re.fullmatch(r"decisions?( made)?", heading, re.I):
            decision_parts.append(text)
        else:
            other_parts.append(f"{heading}:\n{text}")
    return "\n".join(decision_parts + other_parts)


def _iso_or_text(text: str) -> str:
    try:
        return parse_uk_date(text).isoformat()
    except ValueError:
        return text


def _call_in(text: str) -> bool | str:
    """Yes/No as a bool; anything else the page says ("Urgent - exempt from call-in") as it says it."""
    flag = _yes_no(text)
    return text if flag is None else flag


def _documents(scope: etree._Element, base: str) -> list[dict[str, str]]:
    documents: list[dict[str, str]] = []
    for link in scope.xpath(".//ul[contains(@class, 'mgBulletList')]//a[@href]"):
        parts = [link.text or ""]
        for child in link:
            if "mgFileSize" not in _classes(child):
                parts.append(child.text_content())
            parts.append(child.tail or "")
        documents.append({"title": clean_line(" ".join(parts)), "url": absolute_url(base, link.get("href") or "")})
    return documents


def needs_details(row: RegisterRow, known: Mapping[str, Any] | None, *, now: datetime) -> bool:
    """Whether a decision's page should be read this poll: new, its register row changed, or last read 24 h ago."""
    last = _last_read(row, known)
    return last is None or now - last >= DETAIL_REFRESH


def _last_read(row: RegisterRow, known: Mapping[str, Any] | None) -> datetime | None:
    """When the decision's page was last read, or None when it is new, its register row changed, or never read."""
    if not known or known.get("_summary") != row.summary:
        return None
    return iso_instant(known.get("_detail_at"))


def choose_pages(due: list[tuple[RegisterRow, datetime | None]], allowance: int | None) -> list[RegisterRow]:
    """The decision pages this poll reads, in register order: at most `allowance` (None: no limit), new and changed
    decisions first, then the longest unread. The rest wait for the next poll (a decision left out of a poll is not
    an event)."""
    if allowance is None or allowance >= len(due):
        return [row for row, _ in due]
    ordered = sorted(due, key=lambda d: (d[1] is not None, d[1] or datetime.min.replace(tzinfo=UTC)))
    chosen = {id(row) for row, _ in ordered[: max(0, allowance)]}
    return [row for row, _ in due if id(row) in chosen]


class ModernGovDecisionsAdapter:
    """Decisions from a ModernGov site's decisions register and decision pages."""

    # What of the stored items `collect` looks at (`SourceState.known`): the decisions' bookkeeping only.
    known_kinds = frozenset({ItemKind.DECISION})

    async def collect(self, url: str, fetch: Fetch, state: SourceState) -> list[Record] | None:
        """Every decision in the window whose page was (re)read this poll."""
        base = base_url(url)
        zone = source_zone(state)
        days_back = int_option(state.options, "days_back", DEFAULT_DAYS_BACK)
        today = state.now.astimezone(zone).date()

        register = await _get(fetch, register_url(url, today - timedelta(days=days_back), today))
        due: list[tuple[RegisterRow, datetime | None]] = []
        for row in parse_register(register):
            known = state.known.get((ItemKind.DECISION, row.id))
            if needs_details(row, known, now=state.now):
                due.append((row, _last_read(row, known)))
        # the host's request budget (shared with the council's other sources) over the poll interval, less the
        # register; without a poll interval (a poll by hand) no limit
        plan = ReadPlan.from_options(state.options).shared(state.host_sources)
        allowance = plan.requests_in(state.poll_interval) - 1 if state.poll_interval else None

        async def details(row: RegisterRow) -> Record:
            page = await _get(fetch, f"{base}/ieDecisionDetails.aspx?ID={quote(row.id, safe='')}")
            return parse_decision(page, row=row, base=base, tz=state.timezone, fetched_at=state.now)

        chosen = choose_pages(due, allowance)
        return await gather_limited((details(row) for row in chosen), limit=MAX_CONCURRENT_REQUESTS)


async def _get(fetch: Fetch, url: str) -> Response:
    response = await fetch(url)
    if response is None:
        raise SourceError(f"unexpected 304 Not Modified from {url}")
    return response
