"""What an email shows, as plain data: one entry per matched event, entries grouped by council and committee, a
council's week for the weekly summary, a failing feed's warning, the subscriber's links and what they follow, and the
rendered email itself.

Pure: the mailer builds these from rows, the templates read them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit

from notifier.delivery.email.words import check_aware
from notifier.topics.describe import EVENT_LABELS

MailKind = Literal["confirm", "alert", "digest", "weekly", "endpoint_disabled"]
# Messages to one person about their own account, not to a list: no unsubscribe links or list headers.
NOT_LIST_MAIL: frozenset[str] = frozenset({"confirm", "endpoint_disabled"})


def check_link(value: str | None, name: str) -> None:
    """Our own links (manage, unsubscribe, confirm): absolute http(s), ASCII, one line, or refused."""
    if value is None:
        return
    parts = urlsplit(value)
    if (
        parts.scheme not in ("http", "https") or not parts.netloc or not value.isascii()
        or any(c in value for c in ' \t\r\n<>"') or len(value) > 900
    ):
        raise ValueError(f"{name} must be an absolute http(s) URL, got {value!r}")


@dataclass(frozen=True, slots=True)
class EntryView:
    """One matched event as an email shows it.

    `what` says what happened in words ("moved from 4 Dec 14:00 to 11 Dec 10:00", "agenda published"; see
    `describe_event`) and `summary` is the event's one-line summary, used in subjects and previews. `when` is the
    meeting or decision time: a string already in local time, or an aware datetime that is written in the
    subscriber's zone (`time_known=False` for a date without a time). `url` is the council's own page; a link that
    is not http(s) is not shown. `documents` are (title, url) pairs. `matched_terms` are the query terms that
    matched (a word, a phrase, or a prefix ending in `*`), highlighted in the title, `what` and `excerpt`.
    """

    event_type: str
    council: str
    title: str
    what: str = ""
    summary: str = ""
    committee: str | None = None
    url: str | None = None
    when: str | datetime | None = None
    time_known: bool = True
    documents: Sequence[tuple[str, str]] = ()
    matched_terms: Sequence[str] = ()
    excerpt: str = ""
    # Where in the event's documents the terms were found: (document title, page number, excerpt).
    snippets: Sequence[tuple[str, int, str]] = ()
    # What the papers say, quoted: (heading such as "Recommendation", document title, page, sentence).
    brief: Sequence[tuple[str, str, int, str]] = ()
    # This service's page of the meeting (its papers and their briefs), beside the council's own `url`.
    page_url: str | None = None

    def __post_init__(self) -> None:
        check_aware(self.when, "EntryView.when")
        # Callers pass lists (rows, JSON); the view keeps tuples so that it stays immutable and hashable.
        object.__setattr__(self, "documents", tuple((str(t), str(u or "")) for t, u in self.documents))
        terms = (self.matched_terms,) if isinstance(self.matched_terms, str) else tuple(self.matched_terms)
        object.__setattr__(self, "matched_terms", terms)
        object.__setattr__(self, "snippets", tuple((str(d), int(p), str(t)) for d, p, t in self.snippets))
        object.__setattr__(self, "brief", tuple((str(h), str(d), int(p), str(t)) for h, d, p, t in self.brief))

    @property
    def label(self) -> str:
        """A short name for the kind of event ("Meeting moved")."""
        return EVENT_LABELS.get(str(self.event_type), "Update")

    @property
    def headline(self) -> str:
        """What happened, for the line under the title: `what`, else the summary, else the label."""
        return self.what or self.summary or self.label


@dataclass(frozen=True, slots=True)
class CommitteeGroup:
    """Entries of one committee (`name` None for items without one), in the order given."""

    name: str | None
    entries: tuple[EntryView, ...]


@dataclass(frozen=True, slots=True)
class CouncilGroup:
    """Entries of one council, by committee."""

    name: str
    committees: tuple[CommitteeGroup, ...]

    @property
    def count(self) -> int:
        return sum(len(c.entries) for c in self.committees)


@dataclass(frozen=True, slots=True)
class SourceWarning:
    """A followed council whose feed has been failing since `since`: the email says it may be missing updates."""

    council: str
    since: str | datetime
    detail: str = ""

    def __post_init__(self) -> None:
        check_aware(self.since, "SourceWarning.since")


@dataclass(frozen=True, slots=True)
class Links:
    """The subscriber's links: manage page, unsubscribe page (everything), the RFC 8058 one-click POST target
    (`List-Unsubscribe`; the unsubscribe page itself when None) and, for a message about one subscription, the link
    that stops just that one."""

    manage: str
    unsubscribe: str
    one_click: str | None = None
    unsubscribe_subscription: str | None = None

    def __post_init__(self) -> None:
        if not self.manage or not self.unsubscribe:
            raise ValueError("Links needs both a manage and an unsubscribe URL")
        for name in ("manage", "unsubscribe", "one_click", "unsubscribe_subscription"):
            check_link(getattr(self, name), f"Links.{name}")

    @property
    def list_unsubscribe(self) -> str:
        return self.one_click or self.unsubscribe


@dataclass(frozen=True, slots=True)
class Following:
    """One subscription an email answers to: its filter in words (see `describe_filter`), how often, and the link
    that stops it (for messages that answer to several subscriptions)."""

    description: str
    frequency: str | None = None
    stop_url: str | None = None

    def __post_init__(self) -> None:
        if not self.description.strip():
            raise ValueError("Following.description must say what is followed")
        check_link(self.stop_url, "Following.stop_url")


@dataclass(frozen=True, slots=True)
class WeeklyCommittee:
    """One committee's part of a council's weekly summary."""

    name: str | None
    upcoming: tuple[EntryView, ...] = ()
    held: tuple[EntryView, ...] = ()
    decisions: tuple[EntryView, ...] = ()
    documents: tuple[EntryView, ...] = ()

    def sections(self) -> tuple[tuple[str, tuple[EntryView, ...]], ...]:
        """The non-empty sections, in reading order, with their headings."""
        named = (
            ("Coming up next week", self.upcoming),
            ("Meetings held", self.held),
            ("Decisions made", self.decisions),
            ("Documents published", self.documents),
        )
        return tuple((label, entries) for label, entries in named if entries)


@dataclass(frozen=True, slots=True)
class WeeklyCouncil:
    """One followed council in the weekly summary: last week's meetings held, decisions made and documents
    published, next week's meetings, and a warning when its feed is failing. Entries are grouped by committee."""

    name: str
    upcoming: Sequence[EntryView] = ()
    held: Sequence[EntryView] = ()
    decisions: Sequence[EntryView] = ()
    documents: Sequence[EntryView] = ()
    warning: SourceWarning | None = None
    url: str | None = None

    def __post_init__(self) -> None:
        for name in ("upcoming", "held", "decisions", "documents"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    @property
    def empty(self) -> bool:
        return not (self.upcoming or self.held or self.decisions or self.documents)

    def committees(self) -> tuple[WeeklyCommittee, ...]:
        """The entries by committee, committees in the order they first appear (next week's meetings first)."""
        order: dict[str | None, dict[str, list[EntryView]]] = {}
        for section in ("upcoming", "held", "decisions", "documents"):
            for entry in getattr(self, section):
                order.setdefault(entry.committee or None, {}).setdefault(section, []).append(entry)
        return tuple(
            WeeklyCommittee(
                name,
                upcoming=tuple(sections.get("upcoming", ())),
                held=tuple(sections.get("held", ())),
                decisions=tuple(sections.get("decisions", ())),
                documents=tuple(sections.get("documents", ())),
            )
            for name, sections in order.items()
        )


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered email: subject, plain-text part, HTML part, and which kind it is (None counts as a list message,
    which must carry unsubscribe links)."""

    subject: str
    text: str
    html: str
    kind: MailKind | None = None
    # `html` in runs of whole lines ("" joins them), when rendering made it of pieces kept for many emails (each
    # piece the same string wherever it recurs, so the merge can keep its encoding too); else empty
    html_lines: tuple[str, ...] = field(default=(), compare=False, repr=False)
    # `text` likewise
    text_lines: tuple[str, ...] = field(default=(), compare=False, repr=False)


def group_entries(entries: Iterable[EntryView]) -> tuple[CouncilGroup, ...]:
    """Entries grouped by council, then committee, each in the order it first appears; entries keep their order."""
    councils: dict[str, dict[str | None, list[EntryView]]] = {}
    for entry in entries:
        councils.setdefault(entry.council, {}).setdefault(entry.committee or None, []).append(entry)
    return tuple(
        CouncilGroup(name, tuple(CommitteeGroup(committee, tuple(items)) for committee, items in committees.items()))
        for name, committees in councils.items()
    )
