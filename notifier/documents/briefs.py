"""A meeting brief in the council's own words: each report's purpose, its recommendations, and the resolutions in
minutes, each sentence with the page it came from.

No language model and no rewording: council papers follow a few conventions, and these are read directly.

- Headings: "Purpose of the report", "Purpose of Report/Background", "Executive summary", "Summary";
  "Recommendation(s)", "Recommendation/s", "Officer recommendation", "PROPOSED ACTION", "DEPARTMENT
  RECOMMENDATION", "Recommendation: That the City Council ..."; "Resolution C2026/00/214", "RESOLVED: That ...".
- Sentences: "The purpose of this report is ...", "This is a report concerning ...", "It is recommended that ...",
  "The Board is asked to ...".
- Minutes: "Moved by / Seconded by / That ...", mover and seconder lines skipped; "X approved - A (motion),
  B (second)"; Legistar agendas' "SUBJECT: TITLE" followed by the action in capitals ("AUTHORIZE the ...").

A section runs on while its paragraphs are list entries, "That ..." clauses (under a heading on its own line),
or entries of a list its last entry opened ("... the following actions:", "...; and"). A narrative line, another
heading or a recorded vote ends it. Every sentence is a verbatim slice of the page text (whitespace folded);
sentences over `MAX_CHARS` are cut at a word with "…". When a document has none of these sections, the brief
offers its first substantive paragraph instead, for the caller to present as such.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from notifier.documents.pages import Kind, Paragraph, content_lines, heading_like, paragraphs
from notifier.documents.sentences import (
    LEADING_BULLET,
    LEADING_MARKER,
    MAX_CHARS,
    Unit,
    cut,
    fold,
    follows,
    marker,
    split_units,
    strip_marker,
)

Field = Literal["purpose", "recommendations", "resolutions"]
FIELDS: tuple[Field, ...] = ("purpose", "recommendations", "resolutions")

_LEAD = r"^(?:\*+\s*)?(?:\d+(?:\.\d+)*\.?\s+)?"
_REST = r"\s*(?:[:.–-]\s*(?P<rest>.*))?$"
_PURPOSE_HEAD = re.compile(
    _LEAD + r"(?:purposes? of (?:the |this )?(?:report|paper)(?:\s*(?:/|and)\s*background)?|purpose|"
    r"executive summary|summary(?: of (?:the )?report)?|report summary|reasons? for (?:the |this )?report)" + _REST,
    re.I,
)
_REC_HEAD = re.compile(
    _LEAD + r"(?:(?:officers?[’']?|staff|department|committee|executive)\s+)?(?:recommendations?(?:\s*\(s\)|/s)?|"
    r"recommended (?:actions?|decisions?|resolutions?)|proposed actions?)" + _REST,
    re.I,
)
_RES_HEAD = re.compile(
    _LEAD + r"(?:resolution(?:\s+(?:no\.?\s*)?[a-z]{0,3}\d[\w/().-]*)?)" + _REST + r"|"
    r"^(?:it was\s+)?resolved\s*(?:[:.,–-]\s*)?(?P<that>(?:that\b.*)?)$",
    re.I,
)
_SUBJECT = re.compile(r"^SUBJECT:\s*[A-Z0-9]")
_ACTION = re.compile(
    r"^(?:ADOPT|APPROVE|AUTHORI[SZ]E|AMEND|AWARD|CONSIDER|RECEIVE|ELECT|ESTABLISH|EXECUTE|RATIFY|FIND|DETERMINE|"
    r"CERTIFY|APPOINT|DIRECT|ACCEPT|INCREASE|NOMINATE|OPPOSE|SUPPORT|REJECT|RESCIND|DELEGATE|EXTEND|ENDORSE|"
    r"AGREE|ALLOCATE|WAIVE|CONFIRM|REAFFIRM)\b(?=:|\s+(?:AND FILE\b|[a-z]|[A-Z][a-z]))"
)
_MOVER = re.compile(r"^(?:moved|seconded)(?:\s+by\b|\s*:)", re.I)
_VOTE = re.compile(
    r"^(?:affirmative\s+negative|councillors:\s*councillors:|the motion was (?:put and )?(?:carried|lost|declared)|"
    r"(?:motion\s+)?(?:carried|lost)\b|(?:for|against|abstain(?:ed)?)\s*:\s*\d|the vote was\b|roll call vote\b)",
    re.I,
)
_PURPOSE_SENTENCE = re.compile(
    r"^(?:the (?:main |primary )?purpose of (?:this|the) (?:report|paper)\b|this report is (?:to|for)\b|"
    r"this (?:is a )?(?:report|paper) (?:concerning|concerns|seeks|sets out|provides|presents|asks|updates|"
    r"outlines|informs|proposes|requests|summari[sz]es)\b)",
    re.I,
)
_REC_SENTENCE = re.compile(
    r"^(?:it is (?:therefore )?recommended that|(?:the )?(?:board|committee|sub-committee|council|city council|"
    r"cabinet|panel|commission|executive|members?)\s+(?:is|are)\s+(?:asked|recommended|requested|invited)\s+to)\b",
    re.I,
)
_MOTION = re.compile(r"\(motion\).*\(second(?:ed)?\)|^APPROVED\s*[–-]", re.I)
_PROCEDURAL = re.compile(r"called to order|adjourn", re.I)
_THAT = re.compile(r"^(?:That|THAT)\b")
# Numbered paragraphs of UK reports ("2.1 That Cabinet approves ..."): entries of a section like list entries.
_NUMBERED = re.compile(r"^\d+(?:\.\d+)+\.?\s+\S")
# A section name run on to the end of a recommendation ("... as conditioned NEW PUBLIC HEARINGS").
_TRAILING_HEADING = re.compile(
    r"(?<=[a-z0-9)]) (?:[A-Z]{2,} ){0,3}(?:HEARINGS?|BUSINESS|CALENDAR|ITEMS|REPORTS?|ADJOURNMENT|MATTERS|SESSION)\b.*$"
)
_LIST_OPEN = re.compile(r"(?:[:;]|[;,]\s*(?:and|or),?|\b(?:and|or))$")
MIN_CHARS = 12
FIRST_PARAGRAPH_WORDS = 12


# An agenda item's heading in minutes: "5. Better Care Fund", "Item 5 - Budget", "12.1 Confirmation of Minutes".
_ITEM_HEAD = re.compile(
    r"^(?:[Ii]tem\s+)?(?P<number>\d{1,3}(?:\.\d{1,2})?[a-z]?)(?:[.:)]|\s+[–-])?\s+(?P<title>[A-Z0-9][^\n]*)$"
)
_ITEM_NUMBER = re.compile(r"^(?:[Ii]tem\s+)?(?P<number>\d{1,3}(?:\.\d{1,2})?[a-z]?)[.:)]?$")
ITEM_TITLE_WORDS = 14


@dataclass(frozen=True, slots=True)
class BriefSentence:
    """A sentence quoted from the document (whitespace folded, perhaps cut with "…") and its 1-based page; a
    resolution also has the heading of the agenda item it was under, where the minutes number their items."""

    text: str
    page: int
    item: str | None = None  # "Item 5: Better Care Fund"

    def to_dict(self) -> dict[str, Any]:
        # no "item" key without one: briefs stored before items were read have none either
        if self.item is None:
            return {"text": self.text, "page": self.page}
        return {"text": self.text, "page": self.page, "item": self.item}


@dataclass(frozen=True, slots=True)
class Brief:
    """What a report or minutes say they are for, recommend and resolved, quoted; see the module docstring."""

    purpose: tuple[BriefSentence, ...] = ()
    recommendations: tuple[BriefSentence, ...] = ()
    resolutions: tuple[BriefSentence, ...] = ()
    first_paragraph: BriefSentence | None = None

    @property
    def empty(self) -> bool:
        """No purpose, recommendation or resolution was found (the first paragraph does not count)."""
        return not (self.purpose or self.recommendations or self.resolutions)

    def to_dict(self) -> dict[str, Any]:
        """The brief as JSON-ready data, for storing with the document."""
        return {
            "purpose": [s.to_dict() for s in self.purpose],
            "recommendations": [s.to_dict() for s in self.recommendations],
            "resolutions": [s.to_dict() for s in self.resolutions],
            "first_paragraph": self.first_paragraph.to_dict() if self.first_paragraph else None,
        }


@dataclass(frozen=True, slots=True)
class _Head:
    field: Field
    rest: int | None  # where the section's text starts in the heading's paragraph, if on the same line


@dataclass
class _Collector:
    found: dict[Field, list[BriefSentence]] = field(default_factory=lambda: {f: [] for f in FIELDS})
    item: str | None = None  # the agenda item the minutes are at

    def add(self, name: Field, paragraph: Paragraph, unit: Unit) -> None:
        text = unit.text
        if name != "purpose":
            text = _TRAILING_HEADING.sub("", text)
        if len(text) < MIN_CHARS and not text.endswith(":"):
            return
        item = self.item if name == "resolutions" else None
        sentence = BriefSentence(cut(text, MAX_CHARS), paragraph.page_at(unit.start), item)
        if sentence not in self.found[name]:
            self.found[name].append(sentence)

    def add_from(self, name: Field, paragraph: Paragraph, offset: int = 0) -> None:
        for unit in split_units(paragraph.text[offset:]):
            self.add(name, paragraph, Unit(unit.text, unit.start + offset))


def heading(text: str) -> _Head | None:
    """The section a line opens, if it is one of the recognised headings (with its text on the same line)."""
    for name, pattern in (("purpose", _PURPOSE_HEAD), ("recommendations", _REC_HEAD), ("resolutions", _RES_HEAD)):
        match = pattern.match(text)
        if match is None:
            continue
        group = "that" if name == "resolutions" and match.group("that") else "rest"
        rest = match.group(group)
        return _Head(name, match.start(group) if rest else None)  # type: ignore[arg-type]
    return None


def classify(text: str) -> Kind:
    """How a line stands among paragraphs: a heading, mover or vote alone; an entry or inline heading starts one."""
    if _MOVER.match(text) or _VOTE.match(text):
        return Kind.ALONE
    head = heading(text)
    if head is not None:
        return Kind.ALONE if head.rest is None else Kind.START
    if _SUBJECT.match(text) or _ACTION.match(text):
        return Kind.START
    if LEADING_BULLET.match(text):
        return Kind.BULLET
    if LEADING_MARKER.match(text) or _NUMBERED.match(text):
        return Kind.ENTRY
    return Kind.TEXT


def _keep(signature: str) -> bool:
    return heading(signature) is None


def _list_open(paragraph: Paragraph) -> bool:
    return bool(_LIST_OPEN.search(paragraph.text.rstrip(" .")) or paragraph.text.endswith(":"))


def _starts_entry(paragraph: Paragraph) -> bool:
    return paragraph.kind in (Kind.ENTRY, Kind.BULLET)


def _title(text: str) -> bool:
    """A few words without a sentence's punctuation at the end: a heading, not an entry."""
    return len(text.split()) <= 8 and text[-1:] not in ".;:," and text[:1].isupper()


def _continues(q: Paragraph, block: bool, open_list: bool) -> bool:
    """Whether a paragraph carries on a section that has begun (see the module docstring)."""
    if _starts_entry(q):
        # A numbered heading ("3. Reasons for the recommendations") ends a section unless a list is open.
        return open_list or (block and not _title(strip_marker(q.text)))
    if block and _THAT.match(q.text):
        return True
    return open_list and not heading_like(q.text)


def _section(paras: Sequence[Paragraph], i: int, name: Field, offset: int | None, out: _Collector) -> int:
    """Collect a recommendation or resolution section opened at paras[i]; return the index after it."""
    block = offset is None
    taken = not block
    if not block:
        out.add_from(name, paras[i], offset or 0)
    open_list = not block and _list_open(paras[i])
    # A heading's own number ("2. Recommendations") is not an entry of the list under it.
    markers = {m for m in (marker(paras[i].text[offset:]),) if m} if offset is not None else set()
    j = i + 1
    while j < len(paras):
        q = paras[j]
        if _MOVER.match(q.text):
            j += 1
            continue
        head = heading(q.text)
        if head is not None:
            # "Resolution C2025/00/529" over "Recommendation": the recommendation as resolved.
            if name == "resolutions" and head.field == "recommendations" and head.rest is None and not taken:
                j += 1
                continue
            break
        if _VOTE.match(q.text):
            break
        entry = marker(q.text) if _starts_entry(q) else None
        next_entry = entry is not None and any(follows(m, entry) for m in markers)
        if taken and not next_entry and not _continues(q, block, open_list):
            break
        out.add_from(name, q)
        taken = True
        open_list = _list_open(q)
        markers.update(m for m in (entry,) if m)
        j += 1
    return j


def _purpose(paras: Sequence[Paragraph], i: int, offset: int | None, out: _Collector) -> int:
    if offset is not None:
        out.add_from("purpose", paras[i], offset)
        return i + 1
    if i + 1 < len(paras) and heading(paras[i + 1].text) is None:
        out.add_from("purpose", paras[i + 1])
        return i + 2
    return i + 1


def _subject(paras: Sequence[Paragraph], i: int, out: _Collector) -> int:
    """A Legistar item ("SUBJECT: TITLE") whose next paragraph is the action in capitals."""
    j = i + 1
    while j < len(paras) and j <= i + 2 and paras[j].text.isupper() and not paras[j].text.endswith(":"):
        j += 1  # the title runs on
    if j < len(paras) and _ACTION.match(paras[j].text):
        return _section(paras, j, "recommendations", 0, out)
    return j


def _free_text(paras: Sequence[Paragraph], i: int, out: _Collector) -> int:
    """Sentences outside any section: a purpose statement, "It is recommended that ...", a recorded motion."""
    paragraph = paras[i]
    if _MOTION.search(LEADING_BULLET.sub("", paragraph.text)) and not _PROCEDURAL.search(paragraph.text):
        out.add_from("resolutions", paragraph)
        return i + 1
    if _MOVER.match(paragraph.text):
        return _section(paras, i, "resolutions", None, out)
    for unit in split_units(paragraph.text):
        if _PURPOSE_SENTENCE.match(unit.text):
            out.add_from("purpose", paragraph, unit.start)
            return i + 1
        if _REC_SENTENCE.match(unit.text):
            return _section(paras, i, "recommendations", unit.start, out)
    return i + 1


def _item_title(text: str) -> bool:
    words = text.split()
    return (
        0 < len(words) <= ITEM_TITLE_WORDS and text[-1:] not in ".;:,"
        and not _THAT.match(text) and any(c.isalpha() for c in text)
    )


def item_heading(paras: Sequence[Paragraph], i: int) -> str | None:
    """The agenda item paras[i] opens, as "Item 5: Better Care Fund" (its number and its title as written): a
    numbered title on its own line, or a number alone on its line over the title. None for any other paragraph,
    and for the brief's own headings ("3. Recommendations")."""
    text = paras[i].text
    if heading(text) is not None:
        return None
    match = _ITEM_HEAD.match(text)
    if match is not None and _item_title(match["title"]):
        return f"Item {match['number']}: {match['title']}"
    match = _ITEM_NUMBER.match(text)
    if match is not None and i + 1 < len(paras):
        title = paras[i + 1].text
        if _item_title(title) and heading(title) is None and title[:1].isupper():
            return f"Item {match['number']}: {title}"
    return None


def _first_paragraph(paras: Sequence[Paragraph], title: str | None) -> BriefSentence | None:
    skip = fold(title).casefold() if title else None
    for paragraph in paras:
        text = paragraph.text
        if len(text.split()) < FIRST_PARAGRAPH_WORDS or heading_like(text) or text.casefold() == skip:
            continue
        if sum(c.islower() for c in text) < len(text) // 3:
            continue  # capitals, tables and numbers, not prose
        return BriefSentence(cut(text, MAX_CHARS), paragraph.page)
    return None


def build_brief(pages: Sequence[str], *, title: str | None = None) -> Brief:
    """The brief of a document given as the text of each page (see the module docstring)."""
    paras = paragraphs(content_lines(pages, _keep), classify)
    out = _Collector()
    i = 0
    while i < len(paras):
        text = paras[i].text
        out.item = item_heading(paras, i) or out.item
        head = heading(text)
        if head is not None and head.field == "purpose":
            i = _purpose(paras, i, head.rest, out)
        elif head is not None:
            i = _section(paras, i, head.field, head.rest, out)
        elif _SUBJECT.match(text):
            i = _subject(paras, i, out)
        else:
            i = _free_text(paras, i, out)
    found = out.found
    brief = Brief(tuple(found["purpose"]), tuple(found["recommendations"]), tuple(found["resolutions"]))
    if brief.empty:
        return Brief(first_paragraph=_first_paragraph(paras, title))
    return brief
