"""How ModernGov writes dates, times and text: in the demo's web service answers, its pages and its news."""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Iterable
from datetime import date, time

from notifier.demo.data import Meeting

__all__ = ["heading_date", "long_date", "pack_date", "uk_date", "uk_time", "word_html"]


def uk_time(value: time) -> str:
    """ModernGov's clock: `10.00 am`, `2.00 pm`, `12.30 pm`."""
    hour = value.hour % 12 or 12
    return f"{hour}.{value.minute:02d} {'am' if value.hour < 12 else 'pm'}"


def long_date(value: date) -> str:
    """`24 September 2026`, as in "Confirmed; Rescheduled from 24 September 2026"."""
    return f"{value.day} {value:%B %Y}"


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def heading_date(meeting: Meeting) -> str:
    """How ModernGov heads a meeting: `Thursday, 4th December, 2025 2.00 pm`."""
    day = meeting.day
    return f"{day:%A}, {_ordinal(day.day)} {day:%B}, {day.year} {uk_time(meeting.start_time)}"


def pack_date(meeting: Meeting) -> str:
    """The date-and-time stamp in ModernGov's generated pack names: `04th-Dec-2025 14.00`, `01st-Apr-2026 10.00`."""
    ordinal = _ordinal(meeting.day.day)
    return f"{meeting.day.day:02d}{ordinal[-2:]}-{meeting.day:%b-%Y} {meeting.start_time:%H.%M}"



def uk_date(value: date) -> str:
    return f"{value:%d/%m/%Y}"


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
