"""Email composition: the view model, rendering with Jinja2, and the MIME message with its list headers.

Pure: no network, no database. The sender turns rows into views, renders one of the four kinds of email and wraps
it with `build_message`:

- `confirm`: the double opt-in message: the confirm link, what was asked for, when the link expires;
- `alert`: the events matched for one subscriber within the batching window, in one email;
- `digest`: the day's matched events;
- `weekly`: for each followed council, last week's meetings, decisions and documents and next week's meetings.

Every message but `confirm` carries unsubscribe links, in its footer and as RFC 2369 `List-Unsubscribe` with the
RFC 8058 one-click `List-Unsubscribe-Post`. The HTML part has no images, scripts or tracking of any kind.

Matched terms are highlighted as `notifier.topics.highlight` finds them: `<mark>` in HTML, `*asterisks*` in text.
"""

from __future__ import annotations

import email.policy
import re
import textwrap
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.headerregistry import BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import Policy
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from notifier.models import EventType, Frequency
from notifier.topics.describe import EVENT_LABELS, and_list
from notifier.topics.highlight import highlight_html, highlight_text
from notifier.zones import time_zone

MailKind = Literal["confirm", "alert", "digest", "weekly"]

DEFAULT_TEMPLATES_DIR = Path(__file__).resolve().parents[3] / "templates" / "email"
TEXT_WIDTH = 76
SUBJECT_LIMIT = 150

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_FREQUENCY_WORDS: Mapping[str, str] = {
    Frequency.IMMEDIATE: "by email as it happens",
    Frequency.DAILY: "in a daily digest",
    Frequency.WEEKLY: "in a weekly summary",
}
_SIMPLE_EVENTS: Mapping[str, str] = {
    EventType.MEETING_SCHEDULED: "meeting scheduled",
    EventType.AGENDA_PUBLISHED: "agenda published",
    EventType.MINUTES_PUBLISHED: "minutes published",
    EventType.DOCUMENT_PUBLISHED: "document published",
}
# Labels for the fields of a `meeting.updated` event's `changes` (see notifier/diff.py).
_FIELD_LABELS: Mapping[str, str] = {
    "title": "title", "committee": "committee", "location": "venue", "status": "status",
    "status_text": "status", "starts_at": "time", "body": "agenda",
}
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"(?=.{{1,253}}\Z){_LABEL}(?:\.{_LABEL})*")


# ---- the view model --------------------------------------------------------------------------------------------------


def _check_aware(value: object, name: str) -> None:
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError(f"{name} must be a string or a timezone-aware datetime, not a naive datetime")


def _check_link(value: str | None, name: str) -> None:
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

    def __post_init__(self) -> None:
        _check_aware(self.when, "EntryView.when")
        # Callers pass lists (rows, JSON); the view keeps tuples so that it stays immutable and hashable.
        object.__setattr__(self, "documents", tuple((str(t), str(u or "")) for t, u in self.documents))
        terms = (self.matched_terms,) if isinstance(self.matched_terms, str) else tuple(self.matched_terms)
        object.__setattr__(self, "matched_terms", terms)

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
        _check_aware(self.since, "SourceWarning.since")


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
            _check_link(getattr(self, name), f"Links.{name}")

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
        _check_link(self.stop_url, "Following.stop_url")


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


def group_entries(entries: Iterable[EntryView]) -> tuple[CouncilGroup, ...]:
    """Entries grouped by council, then committee, each in the order it first appears; entries keep their order."""
    councils: dict[str, dict[str | None, list[EntryView]]] = {}
    for entry in entries:
        councils.setdefault(entry.council, {}).setdefault(entry.committee or None, []).append(entry)
    return tuple(
        CouncilGroup(name, tuple(CommitteeGroup(committee, tuple(items)) for committee, items in committees.items()))
        for name, committees in councils.items()
    )


# ---- words: times, events, filters -----------------------------------------------------------------------------------


def format_date(day: date) -> str:
    """ "Thu 4 Dec 2025"."""
    return f"{_DAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]} {day.year}"


def format_when(value: datetime | date | str | None, timezone: str, *, time_known: bool = True) -> str:
    """ "Thu 4 Dec 2025, 14:00" in `timezone` ("Thu 4 Dec 2025" for a date or without a time); a string as it is."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if not isinstance(value, datetime):
        return format_date(value)
    _check_aware(value, "when")
    local = value.astimezone(time_zone(timezone))
    return f"{format_date(local)}, {local:%H:%M}" if time_known else format_date(local)


def format_range(first: date, last: date) -> str:
    """ "1–7 Dec 2025", "24 Nov – 30 Nov 2025" across months, "29 Dec 2025 – 4 Jan 2026" across years."""
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day}\u2013{last.day} {_MONTHS[last.month - 1]} {last.year}"
    if first.year == last.year:
        return f"{first.day} {_MONTHS[first.month - 1]} \u2013 {last.day} {_MONTHS[last.month - 1]} {last.year}"
    return (f"{first.day} {_MONTHS[first.month - 1]} {first.year} \u2013 "
            f"{last.day} {_MONTHS[last.month - 1]} {last.year}")


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str) and value.strip():
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    # events.changes holds UTC ISO strings (notifier/diff.py); a naive one is read as UTC, as diff does.
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _pair(value: Any) -> tuple[Any, Any]:
    if isinstance(value, list | tuple) and len(value) == 2:
        return value[0], value[1]
    return None, value


def _short_when(dt: datetime, tz: ZoneInfo, *, time_known: bool, with_year: bool) -> str:
    local = dt.astimezone(tz)
    text = f"{local.day} {_MONTHS[local.month - 1]}" + (f" {local.year}" if with_year else "")
    # Without a `time_known` change the event does not say; a date-only meeting is stored at local midnight.
    if time_known and (local.hour, local.minute) != (0, 0):
        text += f" {local:%H:%M}"
    return text


def _sentence_case(text: str) -> str:
    """ "Recommendations Approved" → "Recommendations approved"; words in capitals ("SEND") are kept."""
    words = " ".join(str(text).split()).split(" ")
    return " ".join([words[0]] + [w.lower() if w[:1].isupper() and w[1:].islower() else w for w in words[1:]])


def describe_event(
    event_type: str, changes: Mapping[str, Any] | None = None, *, timezone: str = "Europe/London"
) -> str:
    """What happened, in words, from an event's type and its `changes` (`field -> [old, new]`, as diff writes them).

    "moved from 4 Dec 14:00 to 11 Dec 10:00", "cancelled", "agenda published", "decision published: Recommendations
    approved", "venue changed to County Hall". Dates are written in `timezone` (the subscriber's).
    """
    changes = changes or {}
    tz = time_zone(timezone)
    kind = str(event_type)
    if kind == EventType.MEETING_RESCHEDULED:
        old, new = (_as_datetime(v) for v in _pair(changes.get("starts_at")))
        old_known, new_known = _pair(changes.get("time_known", [True, True]))
        if new is None:
            return "moved to a new date"
        with_year = old is not None and old.astimezone(tz).year != new.astimezone(tz).year
        after = _short_when(new, tz, time_known=new_known is not False, with_year=with_year)
        if old is None:
            return f"moved to {after}"
        return f"moved from {_short_when(old, tz, time_known=old_known is not False, with_year=with_year)} to {after}"
    if kind == EventType.MEETING_CANCELLED:
        status = str(_pair(changes.get("status"))[1] or "")
        return "postponed" if "postpon" in status.lower() else "cancelled"
    if kind == EventType.MEETING_UPDATED:
        return _describe_update(changes)
    if kind in (EventType.DECISION_PUBLISHED, EventType.DECISION_UPDATED):
        status = str(_pair(changes.get("status"))[1] or "").strip()
        if kind == EventType.DECISION_PUBLISHED:
            return f"decision published: {_sentence_case(status)}" if status else "decision published"
        return f"decision updated: now {_sentence_case(status)}" if status else "decision updated"
    return _SIMPLE_EVENTS.get(kind, "updated")


def _describe_update(changes: Mapping[str, Any]) -> str:
    parts: list[str] = []
    fields = [name for name in changes if name in _FIELD_LABELS]
    old_status, new_status = (str(v or "").lower() for v in _pair(changes.get("status")))
    if old_status in ("cancelled", "postponed") and new_status not in ("cancelled", "postponed", ""):
        parts.append("reinstated")
        fields = [f for f in fields if f not in ("status", "status_text")]
    if fields == ["location"]:
        venue = " ".join(str(_pair(changes["location"])[1] or "").split())
        parts.append(f"venue changed to {venue}" if venue else "venue changed")
    elif fields == ["body"]:
        parts.append("agenda updated")
    elif fields == ["title"]:
        was = " ".join(str(_pair(changes["title"])[0] or "").split())
        parts.append(f"renamed (was {was})" if was else "renamed")
    elif fields == ["starts_at"]:
        parts.append("date and time set")
    elif fields:
        labels = list(dict.fromkeys(_FIELD_LABELS[f] for f in fields))
        parts.append(f"{and_list(labels)} changed")
    return "; ".join(parts) or "details updated"


def documents_from_changes(changes: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    """The (title, url) pairs of the documents folded into an agenda or minutes event (`changes["documents"]`)."""
    new = _pair((changes or {}).get("documents"))[1]
    if not isinstance(new, list):
        return ()
    return tuple(
        (str(d.get("title") or "Document"), str(d.get("url") or "")) for d in new if isinstance(d, Mapping)
    )


# ---- templates -------------------------------------------------------------------------------------------------------


def _http_url(url: str | None) -> str:
    """The URL when it is an absolute http(s) link, else "": a council feed's `javascript:` never becomes a link."""
    if not url:
        return ""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url):
        return ""
    return url


def _wrap(text: str, width: int = TEXT_WIDTH, indent: str = "", first: str | None = None) -> str:
    # Long words (URLs) are never broken: a link must stay one piece to stay a link.
    return textwrap.fill(
        " ".join(str(text).split()), width=width, initial_indent=indent if first is None else first,
        subsequent_indent=indent, break_long_words=False, break_on_hyphens=False,
    )


def _capfirst(text: str) -> str:
    return text[:1].upper() + text[1:]


def email_environment(templates_dir: Path | None = None) -> Environment:
    """The Jinja2 environment for the email templates: HTML autoescaped, text not, undefined names an error.

    Build one at start-up and pass it to the render functions, which otherwise build their own each time.
    """
    directory = templates_dir or DEFAULT_TEMPLATES_DIR
    if not directory.is_dir():
        raise FileNotFoundError(f"email templates directory not found: {directory}")
    env = Environment(
        loader=FileSystemLoader(directory),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters.update(
        when=lambda value, tz, time_known=True: format_when(value, tz, time_known=time_known),
        mark=highlight_html,
        emph=highlight_text,
        wrap=_wrap,
        http_url=_http_url,
        capfirst=_capfirst,
        frequency=lambda value: _FREQUENCY_WORDS.get(str(value), str(value)),
        underline=lambda text, char="=": char * len(str(text)),
    )
    return env


_BLANK_RUNS = re.compile(r"\n{3,}")


def _tidy_text(text: str) -> str:
    # "-- " (with its space) is the signature separator: mail clients fold or dim the footer after it.
    lines = "\n".join(line if line == "-- " else line.rstrip() for line in text.splitlines())
    return _BLANK_RUNS.sub("\n\n", lines).strip("\n") + "\n"


def _tidy_html(html: str) -> str:
    return "\n".join(line.rstrip() for line in html.splitlines() if line.strip()) + "\n"


def _one_line(text: str, limit: int = SUBJECT_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _councils_phrase(names: Sequence[str]) -> str:
    unique = list(dict.fromkeys(names))
    return and_list(unique) if len(unique) <= 2 else f"{len(unique)} councils"


def _following(items: Sequence[Following | str]) -> tuple[Following, ...]:
    result = tuple(f if isinstance(f, Following) else Following(f) for f in items)
    if not result:
        raise ValueError("an email must say what the subscriber follows")
    return result


def _render(env: Environment | None, name: MailKind, subject: str, context: dict[str, Any]) -> Rendered:
    env = env or email_environment()
    subject = _one_line(subject)
    context = {"subject": subject, **context}
    text = env.get_template(f"{name}.txt").render(context)
    html = env.get_template(f"{name}.html").render(context)
    return Rendered(subject, _tidy_text(text), _tidy_html(html), name)


def render_confirm(
    *,
    confirm_url: str,
    following: Sequence[Following | str],
    expires_days: int,
    service_name: str = "Council alerts",
    env: Environment | None = None,
) -> Rendered:
    """The double opt-in email: what was asked for, the confirm link and when it expires."""
    _check_link(confirm_url, "confirm_url")
    if not confirm_url:
        raise ValueError("confirm_url is required")
    if expires_days < 1:
        raise ValueError("expires_days must be at least 1")
    context = {
        "confirm_url": confirm_url, "following": _following(following), "expires_days": expires_days,
        "service_name": service_name,
        "preheader": f"Confirm to start your alerts. The link expires in {_count(expires_days, 'day')}.",
    }
    return _render(env, "confirm", f"Confirm your email alerts from {service_name}", context)


def render_alert(
    entries: Sequence[EntryView],
    *,
    links: Links,
    following: Sequence[Following | str],
    warnings: Sequence[SourceWarning] = (),
    timezone: str = "Europe/London",
    service_name: str = "Council alerts",
    env: Environment | None = None,
) -> Rendered:
    """An immediate alert: the events matched for one subscriber within the batching window."""
    if not entries:
        raise ValueError("an alert needs at least one entry")
    time_zone(timezone)
    if len(entries) == 1:
        e = entries[0]
        subject = f"{e.council}: {e.summary or f'{e.title}: {e.headline}'}"
    else:
        subject = f"{len(entries)} updates from {_councils_phrase([e.council for e in entries])}"
    context = {
        "groups": group_entries(entries), "count": len(entries), "links": links, "following": _following(following),
        "warnings": tuple(warnings), "timezone": timezone, "service_name": service_name,
        "preheader": entries[0].summary or entries[0].title,
    }
    return _render(env, "alert", subject, context)


def render_digest(
    entries: Sequence[EntryView],
    *,
    day: date,
    links: Links,
    following: Sequence[Following | str],
    warnings: Sequence[SourceWarning] = (),
    timezone: str = "Europe/London",
    service_name: str = "Council alerts",
    env: Environment | None = None,
) -> Rendered:
    """The daily digest: the day's matched events, by council and committee."""
    if not entries:
        raise ValueError("a digest needs at least one entry")
    time_zone(timezone)
    subject = f"Your daily digest for {format_date(day)}: {_count(len(entries), 'update')}"
    context = {
        "groups": group_entries(entries), "count": len(entries), "day": format_date(day), "links": links,
        "following": _following(following), "warnings": tuple(warnings), "timezone": timezone,
        "service_name": service_name, "preheader": entries[0].summary or entries[0].title,
    }
    return _render(env, "digest", subject, context)


def render_weekly(
    councils: Sequence[WeeklyCouncil],
    *,
    week_start: date,
    links: Links,
    following: Sequence[Following | str],
    timezone: str = "Europe/London",
    service_name: str = "Council alerts",
    env: Environment | None = None,
) -> Rendered:
    """The weekly summary of each followed council: the week from `week_start` and the meetings of the next."""
    if not councils:
        raise ValueError("a weekly summary needs at least one council")
    time_zone(timezone)
    past = format_range(week_start, week_start + timedelta(days=6))
    subject = f"Weekly summary, {past}: {_councils_phrase([c.name for c in councils])}"
    context = {
        "councils": tuple(councils), "past": past,
        "next": format_range(week_start + timedelta(days=7), week_start + timedelta(days=13)),
        "links": links, "following": _following(following), "timezone": timezone, "service_name": service_name,
        "preheader": f"What happened at {_councils_phrase([c.name for c in councils])} in the week of {past}",
    }
    return _render(env, "weekly", subject, context)


# ---- the message -----------------------------------------------------------------------------------------------------


class _VerbatimHeader(UnstructuredHeader, BaseHeader):
    """Written as it is: folding a long URL would turn it into RFC 2047 encoded words, which break the link."""

    def fold(self, *, policy: Policy) -> str:
        return f"{self.name}: {self}{policy.linesep}"


class _SubjectHeader(UnstructuredHeader, BaseHeader):
    """An ASCII subject folded at its spaces. The standard folder may break right after "Subject:", and some
    clients then show the subject with a leading space; non-ASCII subjects still get RFC 2047 encoded words."""

    def fold(self, *, policy: Policy) -> str:
        value = str(self)
        if not value.isascii() or "  " in value or "\t" in value:
            return super().fold(policy=policy)
        width = policy.max_line_length or 998
        lines = [f"{self.name}:"]
        for word in value.split(" "):
            if len(lines[-1]) + 1 + len(word) > width and lines[-1] != f"{self.name}:":
                lines.append("")
            lines[-1] += f" {word}"
        return policy.linesep.join(lines) + policy.linesep


def _message_policy() -> email.policy.EmailPolicy[EmailMessage]:
    registry = HeaderRegistry()
    registry.map_to_type("list-unsubscribe", _VerbatimHeader)
    registry.map_to_type("subject", _SubjectHeader)
    return email.policy.default.clone(header_factory=registry)


def _single_line(value: str, name: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError(f"{name} must be one line")
    return value.strip()


def _list_id(value: str) -> str:
    """RFC 2919: `Description <label.domain>`, or just `label.domain` which gets its angle brackets."""
    value = _single_line(value, "list_id")
    label = value[value.find("<") + 1 : value.rfind(">")] if "<" in value else value
    if not _DOMAIN.fullmatch(label):
        raise ValueError(f"list_id must be a dotted name such as alerts.example.org, got {value!r}")
    return value if "<" in value else f"<{value}>"


def build_message(
    rendered: Rendered,
    *,
    to: str,
    mail_from: str,
    links: Links | None,
    list_id: str,
    message_id_domain: str,
    return_path: str | None = None,
    now: datetime | None = None,
) -> EmailMessage:
    """The MIME message: multipart/alternative (text, then HTML, both UTF-8) with the list headers.

    Refuses (ValueError) a message other than a confirmation without unsubscribe links. `return_path` (a VERP
    address, see `notifier.delivery.email.bounces.verp_address`) is written as `Return-Path` so the sender can read it
    back; it must also be given to SMTP as the envelope sender (MAIL FROM), which is what bounces go to.
    """
    if rendered.kind != "confirm" and links is None:
        raise ValueError("only a confirmation may be sent without unsubscribe links")
    to = _single_line(to, "to")
    if "@" not in to:
        raise ValueError(f"not an email address: {to!r}")
    if not _DOMAIN.fullmatch(message_id_domain):
        raise ValueError(f"message_id_domain must be a domain name, got {message_id_domain!r}")
    when = now or datetime.now(UTC)
    _check_aware(when, "now")

    msg = EmailMessage(policy=_message_policy())
    msg["From"] = _single_line(mail_from, "mail_from")
    msg["To"] = to
    msg["Subject"] = _one_line(rendered.subject)
    msg["Date"] = format_datetime(when.astimezone(UTC))
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@{message_id_domain}>"
    msg["List-Id"] = _list_id(list_id)
    if links is not None:
        msg["List-Unsubscribe"] = f"<{links.list_unsubscribe}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["Auto-Submitted"] = "auto-generated"
    # Exchange and Outlook: no out-of-office or auto-replies to automatic mail (delivery reports still come).
    msg["X-Auto-Response-Suppress"] = "OOF, AutoReply"
    if return_path:
        address = _single_line(return_path, "return_path").strip("<>")
        if "@" not in address:
            raise ValueError(f"return_path must be an email address, got {return_path!r}")
        msg["Return-Path"] = f"<{address}>"
    # Quoted-printable: safe through any relay (no 8BITMIME needed, no line over 76) and still readable raw.
    msg.set_content(rendered.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return msg
