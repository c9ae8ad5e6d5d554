"""Whitespace and character tidying shared by every document format.

The convention every extractor follows: lines inside a paragraph are separated by one `\\n`, paragraphs (and
headings, list items, table rows) by one blank line. The step that splits sentences and finds headings relies on it.
"""

from __future__ import annotations

import re

__all__ = ["tidy"]

# Zero-width characters, byte order marks, soft hyphens and the C0/C1 controls other than line breaks and tabs:
# invisible in a reader, but they split words for matching ("demen\u00adtia").
_INVISIBLE = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\u00ad\u200b-\u200d\u2060\ufeff]")
# Typographic ligatures: PDFs produced by typesetting software keep them as single characters ("ﬁnance"), and a
# subscriber's "finance" must still match.
_LIGATURES = str.maketrans({"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
                            "\ufb05": "st", "\ufb06": "st"})  # fmt: skip
_LINE_BREAKS = re.compile(r"\r\n?|[\x0c\x85\u2028]")
_PARAGRAPH_BREAKS = re.compile(r"\u2029")


def tidy(text: str) -> str:
    """Tidy extracted text: line breaks to `\\n`, each line's whitespace collapsed and trimmed, invisible characters
    dropped, ligatures expanded, and any run of blank lines reduced to one (a paragraph break)."""
    text = _PARAGRAPH_BREAKS.sub("\n\n", _LINE_BREAKS.sub("\n", text))
    text = _INVISIBLE.sub("", text).translate(_LIGATURES)
    out: list[str] = []
    for raw_line in text.split("\n"):
        # str.split() with no argument splits on all Unicode whitespace: no-break and em spaces collapse too.
        line = " ".join(raw_line.split())
        if line or (out and out[-1]):
            out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)
