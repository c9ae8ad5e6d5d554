"""Rendering the four kinds of email with Jinja2 (templates/email at the repository's root), each in a plain-text
and an HTML part:

- `confirm`: the double opt-in message: the confirm link, what was asked for, when the link expires;
- `alert`: the events matched for one subscriber within the batching window, in one email;
- `digest`: the day's matched events;
- `weekly`: for each followed council, last week's meetings, decisions and documents and next week's meetings.

Pure: no network, no database. The mailer turns rows into views (`views`), renders them here and wraps the result
with `message.build_message`. Every email but `confirm` carries unsubscribe links in its footer. The HTML part has
no images, scripts or tracking of any kind.

Matched terms are highlighted as `notifier.topics.highlight` finds them: `<mark>` in HTML, `*asterisks*` in text.
"""

from __future__ import annotations

import functools
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple, cast
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.bccache import Bucket, BytecodeCache
from markupsafe import Markup

from notifier.delivery.email.views import (
    CouncilGroup,
    EntryView,
    Following,
    Links,
    MailKind,
    Rendered,
    SourceWarning,
    WeeklyCouncil,
    check_link,
    group_entries,
)
from notifier.delivery.email.words import format_date, format_range, format_when, one_line
from notifier.models import Frequency
from notifier.topics.describe import and_list
from notifier.topics.highlight import highlight_html, highlight_text
from notifier.zones import time_zone

DEFAULT_TEMPLATES_DIR = Path(__file__).resolve().parents[3] / "templates" / "email"
TEXT_WIDTH = 76

_FREQUENCY_WORDS: Mapping[str, str] = {
    Frequency.IMMEDIATE: "by email as it happens",
    Frequency.DAILY: "in a daily digest",
    Frequency.WEEKLY: "in a weekly summary",
}


_SPACE = re.compile(r"\s")


# Both are pure and called for every entry of every email, mostly on the same few thousand strings (the same event
# in many digests): remembered rather than worked out again.
@functools.lru_cache(maxsize=8192)
def _http_url(url: str | None) -> str:
    """The URL when it is an absolute http(s) link, else "": a council feed's `javascript:` never becomes a link."""
    if not url:
        return ""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or _SPACE.search(url):
        return ""
    return url


@functools.lru_cache(maxsize=8192)
def _wrap(text: str, width: int = TEXT_WIDTH, indent: str = "", first: str | None = None) -> str:
    # Long words (URLs) are never broken: a link must stay one piece to stay a link.
    return textwrap.fill(
        " ".join(str(text).split()), width=width, initial_indent=indent if first is None else first,
        subsequent_indent=indent, break_long_words=False, break_on_hyphens=False,
    )


def _capfirst(text: str) -> str:
    return text[:1].upper() + text[1:]


class _CompiledTemplates(BytecodeCache):
    """The email templates compiled once a process, for every environment built in it (a worker's mailer, each
    benchmark round's, a render function called without one): Jinja then loads a template's code instead of
    parsing, generating and compiling its source again, which for the alert's templates costs more than rendering
    forty alerts. Jinja keys each by the template's name and file and checks it against a hash of the source, so an
    edited template is compiled afresh."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_COMPILED = _CompiledTemplates()


def email_environment(templates_dir: Path | None = None) -> Environment:
    """The Jinja2 environment for the email templates: HTML autoescaped, text not, undefined names an error.

    Build one at start-up and pass it to the render functions, which otherwise build their own each time (the
    templates' compiled code is shared, see `_CompiledTemplates`, but not the macros' renderings each keeps).
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
        bytecode_cache=_COMPILED,
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
    env.globals["kept"] = KeptMacros()
    return env


# Macro renderings kept, for the two parts together: a day's events are few beside the emails that list them.
KEPT_MACROS = 8192


class KeptMacros:
    """`kept(macro, *args)` in a template: the macro's rendering for these arguments, made once and kept.

    For what reads only its arguments and is the same in many emails: an entry (an immutable view, its highlighted
    terms included, in a time zone), a heading, the footer of a subscriber with the same subscriptions. A personal
    digest's content is its own, but its entries are among the day's few hundred events, so rendering each once per
    worker rather than once per email saves most of the work of rendering. Arguments that cannot be hashed are
    rendered afresh."""

    __slots__ = ("_cached", "_lines", "tidied")

    def __init__(self) -> None:
        self._cached = functools.lru_cache(maxsize=KEPT_MACROS)(self._render)
        self._lines = functools.lru_cache(maxsize=KEPT_MACROS)(self._line)
        # (the groups' rendering, the same tidied) for each call of `groups` since `_render` last cleared it
        self.tidied: list[tuple[str, list[str | TextRun] | None]] = []

    @staticmethod
    def _render(macro: Callable[..., str], *args: object) -> str:
        # Markup from the HTML macros, which the template then does not escape again
        return macro(*args)

    def __call__(self, macro: Callable[..., str], *args: object) -> str:
        try:
            return self._cached(macro, *args)
        except TypeError:  # an unhashable argument
            return macro(*args)

    def groups(
        self, groups: Sequence[CouncilGroup], timezone: str, council_heading: Callable[..., str],
        committee_heading: Callable[..., str], entry: Callable[..., str],
    ) -> str:
        """The entries by council and committee, each piece kept: the `groups` macros' loop, run here because a
        call from a template costs several times a kept piece (a digest has a call for each entry and heading)."""
        parts: list[str] = []
        tidied: list[str | TextRun] | None = []  # each piece's lines tidied, kept with it: None once one cannot be
        add, line = parts.append, self._line_of
        for council in groups:
            piece, tidy = line(council_heading, "\n", council.name)
            add(piece)
            add("\n")
            tidied = _add(tidied, tidy)
            for committee in council.committees:
                if committee.name:
                    piece, tidy = line(committee_heading, "", committee.name)
                    add(piece)
                    tidied = _add(tidied, tidy)
                for e in committee.entries:
                    piece, tidy = line(entry, "\n", e, timezone)
                    add(piece)
                    add("\n")
                    tidied = _add(tidied, tidy)
        if parts and isinstance(parts[0], Markup):
            if all(isinstance(p, Markup) or p == "\n" for p in parts):
                # the HTML macros' pieces, and line ends, which have nothing to escape: joined as they are
                # (`Markup.join` would escape each piece again, only to find it Markup already)
                joined: str = Markup("".join(parts))  # noqa: S704 (every piece checked above)
            else:
                joined = Markup("").join(parts)
        else:
            joined = "".join(parts)
        if len(self.tidied) > 4:  # rendered other than by `_render`, which reads and clears it
            self.tidied.clear()
        self.tidied.append((joined, tidied))
        return joined

    def _line_of(self, macro: Callable[..., str], end: str, *args: object) -> tuple[str, str | TextRun | None]:
        try:
            return self._lines(macro, end, *args)
        except TypeError:  # an unhashable argument
            return self._line(macro, end, *args)

    @staticmethod
    def _line(macro: Callable[..., str], end: str, *args: object) -> tuple[str, str | TextRun | None]:
        """The macro's rendering, and its lines with `end` tidied as the whole part's are (None unless they end
        with a line end, where the whole part's lines meet the next piece's): an HTML piece's lines, a text piece's
        as a `TextRun`."""
        piece = macro(*args)
        whole = "".join((piece, end))
        if not whole.endswith("\n"):
            return piece, None
        return piece, _html_lines(whole) if isinstance(piece, Markup) else TextRun.of(_text_lines(whole))

    def clear(self) -> None:
        self._cached.cache_clear()
        self._lines.cache_clear()
        self.tidied.clear()


_BLANK_RUNS = re.compile(r"\n{3,}")


def _add(tidied: list[str | TextRun] | None, piece: str | TextRun | None) -> list[str | TextRun] | None:
    if tidied is None or piece is None:
        return None
    tidied.append(piece)
    return tidied


# Each line of a part is tidied on its own, so a part made of whole lines can be tidied in runs of whole lines: the
# entries and headings of `KeptMacros.groups` once each, when kept, and only the rest of each email's part afresh.
def _text_lines(text: str) -> str:
    """`text`'s lines with their trailing white space gone, each with "\n" after it."""
    # "-- " (with its space) is the signature separator: mail clients fold or dim the footer after it.
    return "".join([(line if line == "-- " else line.rstrip()) + "\n" for line in text.splitlines()])


def _html_lines(html: str) -> str:
    """`html`'s lines that are not blank, their trailing white space gone, each with "\n" after it."""
    # a line is blank exactly when nothing is left of it once its trailing white space is gone
    return "".join([kept + "\n" for line in html.splitlines() if (kept := line.rstrip())])


def _tidy_text(text: str) -> str:
    # `_text_lines` leaves "\n" after the last line, which the strip takes away with the blank lines at the end
    return _BLANK_RUNS.sub("\n\n", _text_lines(text)).strip("\n") + "\n"


def _tidy_html(html: str) -> str:
    return _html_lines(html) or "\n"


class TextRun(NamedTuple):
    """A run of a text part's tidied lines (as `_text_lines` gives them) as `_tidy_text` leaves it within the whole
    part, whose runs of blank lines become one and whose blank lines at either end go: its lines from the first to
    the last that is not blank, with runs of blank lines among them made one (`core`; "" when every line is blank),
    and whether blank lines come before and after those (`lead`, `trail`; an all-blank run has only `lead`)."""

    lead: bool
    core: str
    trail: bool

    @classmethod
    def of(cls, lines: str) -> TextRun:
        body = lines.lstrip("\n")
        core = body.rstrip("\n")
        if not core:
            return cls(bool(lines), "", False)
        # the last line's own line end, then any blank lines
        return cls(len(body) < len(lines), _BLANK_RUNS.sub("\n\n", core) + "\n", len(body) - len(core) > 1)


def _text_runs(runs: Sequence[TextRun]) -> list[str]:
    """What `_tidy_text` makes of the text whose tidied lines are `runs`' in turn, as runs of whole lines: first the
    first run's core, last what follows the last-but-one run (a blank line before it, if one is due, and its core)
    and between them each other run's core, after its own run "\n" when a blank line goes before it. Empty when no
    line is anything but blank."""
    out = [runs[0].core]
    blank = runs[0].trail
    started = bool(out[0])
    last = len(runs) - 1
    for i in range(1, last):
        lead, core, trail = runs[i]
        if not core:
            blank = blank or lead
            continue
        if started and (blank or lead):
            out.append("\n")
        out.append(core)
        started, blank = True, trail
    lead, core, _ = runs[last]
    out.append("\n" + core if core and started and (blank or lead) else core)
    return out if started or core else []


def _tidied(part: str, kept: object) -> tuple[str, list[str | TextRun], str] | None:
    """`part` as the lines before the groups, the groups' pieces tidied (see `KeptMacros.groups`) and the lines
    after them, if `part` holds the groups whole, between line ends; else None."""
    found = kept.tidied if isinstance(kept, KeptMacros) else []
    if len(found) != 1:
        return None
    groups, pieces = found[0]
    # found by its first characters (then checked whole): finding a needle of kilobytes costs several times more
    at = part.find(groups[:64])
    if at >= 0 and not part.startswith(groups, at):
        at = part.find(groups)
    if pieces is None or at < 0 or (at and part[at - 1] != "\n"):
        return None
    return part[:at], pieces, part[at + len(groups):]


def _tidy_text_runs(part: str, kept: object) -> tuple[str, tuple[str, ...]]:
    """The text part tidied (as `_tidy_text` does), and its runs of whole lines (see `Rendered.text_lines`) when it
    was made of the groups' kept pieces."""
    found = _tidied(part, kept)
    if found is None:
        return _tidy_text(part), ()
    before, pieces, after = found
    if not all(isinstance(p, TextRun) for p in pieces):
        return _tidy_text(part), ()
    runs = _text_runs([TextRun.of(_text_lines(before)), *cast(list[TextRun], pieces), TextRun.of(_text_lines(after))])
    return ("".join(runs), tuple(runs)) if runs else ("\n", ())


def _tidy_html_runs(part: str, kept: object) -> tuple[str, tuple[str, ...]]:
    """The HTML part tidied (as `_tidy_html` does), and its runs of whole lines (see `Rendered.html_lines`) when it
    was made of the groups' kept pieces."""
    found = _tidied(part, kept)
    if found is None or not all(isinstance(p, str) for p in found[1]):
        return _tidy_html(part), ()
    before, pieces, after = found
    runs = [_html_lines(before), *cast(list[str], pieces), _html_lines(after)]
    html = "".join(runs)
    # nothing left of the part: it is one line end
    return (html, tuple(runs)) if html else ("\n", ())


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
    subject = one_line(subject)
    context = {"subject": subject, **context}
    kept = env.globals.get("kept")
    parts = []
    for template, tidy in ((f"{name}.txt", _tidy_text_runs), (f"{name}.html", _tidy_html_runs)):
        if isinstance(kept, KeptMacros):
            kept.tidied.clear()
        parts.append(tidy(env.get_template(template).render(context), kept))
    (text, text_runs), (html, html_runs) = parts
    return Rendered(subject, text, html, name, html_runs, text_runs)


def render_confirm(
    *,
    confirm_url: str,
    following: Sequence[Following | str],
    expires_days: int,
    service_name: str = "Council alerts",
    env: Environment | None = None,
) -> Rendered:
    """The double opt-in email: what was asked for, the confirm link and when it expires."""
    check_link(confirm_url, "confirm_url")
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


def render_endpoint_disabled(
    *,
    partner_name: str,
    url: str,
    reason: str,
    disabled_at: datetime,
    endpoint_id: int,
    service_name: str = "Council alerts",
    env: Environment | None = None,
) -> Rendered:
    """The notice to a partner that one of its webhook endpoints was disabled, and how to bring it back."""
    context = {
        "partner_name": partner_name, "url": url, "reason": reason, "endpoint_id": endpoint_id,
        "disabled_at": f"{disabled_at:%d %B %Y %H:%M} UTC", "service_name": service_name,
        "preheader": f"Deliveries to {url} have stopped: {reason}.",
    }
    return _render(env, "endpoint_disabled", f"Your webhook endpoint was disabled: {url}", context)
