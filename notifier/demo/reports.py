"""The demo's published papers: PDFs of a few pages each, as a council report reads, so that topics can be found
inside a paper and not only in its title.

Each paper has a cover page (its title, the council, the date), a page of purpose and recommendations, and
background pages, each numbered in its footer. On a late page, every paper mentions one thing from `NOTICES` that its
title does not (a respite centre closing, a library's hours, a crossing): what a resident following that word hears
of only because the paper's text is read. The Dementia Strategy progress report of Leicestershire's Health and
Wellbeing Board says on its fourth page that a respite centre will close.

The PDFs are laid out by fpdf2 (headings, wrapped paragraphs, page numbers). The same paper always gives the same
bytes: its creation date is its publication date, not the time of the request, so the service, which downloads a
document again only when its hash changes, does not see a new version on every poll.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from fpdf import FPDF

from notifier.demo.data import Document

NOTICES = (
    "The Board is asked to note that the respite centre at {place} will close on 31 March, and that the carers who "
    "use it will be offered short breaks at other centres in the county.",
    "Opening hours at the library in {place} will change from April, following the consultation with residents "
    "reported to the Cabinet in the autumn.",
    "A new pedestrian crossing will be installed outside the primary school in {place} during the summer holidays, "
    "funded from the road safety budget.",
)
# The paper whose fourth page announces the respite centre's closure (see the module docstring).
RESPITE_REPORT = 191474

# Each page's sections: (heading, paragraphs).
Section = tuple[str, tuple[str, ...]]

_PURPOSE: tuple[Section, ...] = (
    ("1. Purpose of the report",
     ("The purpose of this report is to inform members of the progress made since the last report, and to seek the "
      "views of members on the next steps set out below.",)),
    ("2. Recommendations",
     ("It is recommended that members note the contents of this report and support the proposed next steps.",)),
)  # fmt: skip
_BACKGROUND: tuple[Section, ...] = (
    ("3. Background",
     ("Officers have worked with partner organisations, voluntary groups and residents to review the services "
      "described in this report. The review considered performance data for the last twelve months, feedback from "
      "people who use the services and the resources available in the current financial year.",
      "The findings were presented to the relevant programme board, which agreed the priorities for the coming year "
      "and asked officers to report back on progress.")),
)  # fmt: skip
_RESOURCES: tuple[Section, ...] = (
    ("4. Resource implications",
     ("There are no additional resource implications arising from this report. Any changes to services will be met "
      "from existing budgets.",)),
    ("5. Equality implications",
     ("An equality impact assessment has been completed and is available from the report author on request.",)),
)  # fmt: skip

# What Helvetica (a PDF core font, Latin-1 only) cannot show, written as it can.
_PLAIN = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-",
                        "\u2026": "...", "\u00a0": " "})  # fmt: skip


def report_sections(doc: Document, places: tuple[str, ...]) -> list[tuple[Section, ...]]:
    """The sections of each page after the cover: purpose, background, then the page with its notice."""
    place = places[doc.id % len(places)] if places else "the town centre"
    notice = NOTICES[0 if doc.id == RESPITE_REPORT else doc.id % len(NOTICES)].format(place=place)
    return [_PURPOSE, _BACKGROUND, (*_RESOURCES, ("6. Update for members", (notice,)))]


class _ReportPdf(FPDF):
    """A4, Helvetica, each page numbered in its footer."""

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("helvetica", size=9)
        self.cell(0, 10, f"Page {self.page_no()} of {{nb}}", align="C")


def report_pdf(doc: Document, council_name: str, places: tuple[str, ...]) -> bytes:
    """The paper as a PDF: a cover page, then numbered pages of headed sections (`report_sections`)."""
    pdf = _ReportPdf(format="A4")
    pdf.set_creation_date(datetime.combine(doc.published, time(9), UTC))
    pdf.set_producer("notifier demo")
    pdf.set_title(_latin1(doc.title))
    pdf.set_author(_latin1(council_name))
    pdf.set_margins(25, 25, 25)
    pdf.set_auto_page_break(auto=True, margin=25)
    _cover(pdf, doc.title, council_name, doc.published)
    for sections in report_sections(doc, places):
        pdf.add_page()
        for heading, paragraphs in sections:
            pdf.set_font("helvetica", style="B", size=13)
            pdf.multi_cell(0, 8, _latin1(heading), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
            pdf.set_font("helvetica", size=11)
            for paragraph in paragraphs:
                pdf.multi_cell(0, 6, _latin1(paragraph), new_x="LMARGIN", new_y="NEXT")
                pdf.ln(4)
    return bytes(pdf.output())


def _cover(pdf: FPDF, title: str, council_name: str, published: date) -> None:
    pdf.add_page()
    pdf.ln(40)
    pdf.set_font("helvetica", style="B", size=20)
    pdf.multi_cell(0, 10, _latin1(title), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("helvetica", size=14)
    pdf.multi_cell(0, 8, _latin1(council_name), new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(0, 8, f"Published {published:%d/%m/%Y}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(12)
    pdf.set_font("helvetica", style="I", size=11)
    pdf.multi_cell(0, 6, "A report of the notifier demo council system.", new_x="LMARGIN", new_y="NEXT")


def _latin1(text: str) -> str:
    return text.translate(_PLAIN).encode("latin-1", "replace").decode("latin-1")
