"""The text of a Word (.docx) document opened with python-docx: paragraphs and table rows in document order.

The body is walked as XML rather than through python-docx's `Table` objects: their cell grid (spans, vertical
merges) raises on the malformed tables that real files carry, and a row's cells are all a reader needs here.
Content controls (`w:sdt`, used by report templates for their cover fields) are read through. Headers and footers
are left out: they repeat on every page and say nothing about the report.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from docx.document import Document
from docx.oxml.ns import qn

__all__ = ["docx_text"]

_P, _TBL, _TR, _TC, _R = qn("w:p"), qn("w:tbl"), qn("w:tr"), qn("w:tc"), qn("w:r")
_WRAPPERS = {qn("w:sdt"): qn("w:sdtContent"), qn("w:customXml"): None}
_CELL_SEPARATOR = " | "


def docx_text(document: Document) -> str:
    """Paragraphs and table rows, each a paragraph of its own (separated by a blank line), untidied."""
    return "\n\n".join(_blocks(document.element.body))


def _blocks(container: Any) -> Iterator[str]:
    for child in container.iterchildren():
        tag = child.tag
        if tag == _P:
            yield _paragraph(child)
        elif tag == _TBL:
            yield from _rows(child)
        elif tag in _WRAPPERS:
            inner = _WRAPPERS[tag]
            content = child if inner is None else child.find(inner)
            if content is not None:
                yield from _blocks(content)


def _rows(table: Any) -> Iterator[str]:
    for row in table.iterchildren(_TR):
        cells = (" ".join(_paragraph(p) for p in cell.iter(_P)) for cell in row.iterchildren(_TC))
        yield _CELL_SEPARATOR.join(text for text in cells if text.strip())


def _paragraph(paragraph: Any) -> str:
    # Every run, including those inside hyperlinks, fields and tracked insertions; a deleted run's text is
    # `w:delText`, which a run's `.text` leaves out.
    return "".join(run.text for run in paragraph.iter(_R))
