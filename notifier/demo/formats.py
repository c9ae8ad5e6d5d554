"""How ModernGov writes dates and text, shared by the demo's web service answers and its pages."""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Iterable
from datetime import date

__all__ = ["uk_date", "word_html"]


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
