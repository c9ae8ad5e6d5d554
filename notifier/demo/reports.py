"""The text of the demo's published papers: a few pages each, as a council report reads, so that topics can be found
inside a paper and not only in its title.

Each paper has a cover page (its title, the council, the date), a page of purpose and recommendations, and
background pages. On a late page, every paper mentions one thing from `NOTICES` that its title does not (a respite
centre closing, a library's hours, a crossing): what a resident following that word hears of only because the
paper's text is read. The Dementia Strategy progress report of Leicestershire's Health and Wellbeing Board says on
its fourth page that a respite centre will close.
"""

from __future__ import annotations

import textwrap

from notifier.demo.data import Document

# Characters per line at 12 pt Helvetica across an A4 page's text width.
LINE_CHARS = 84

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

_PURPOSE = (
    "1. Purpose of the report",
    "The purpose of this report is to inform members of the progress made since the last report, and to seek the "
    "views of members on the next steps set out below.",
    "2. Recommendations",
    "It is recommended that members note the contents of this report and support the proposed next steps.",
)
_BACKGROUND = (
    "3. Background",
    "Officers have worked with partner organisations, voluntary groups and residents to review the services "
    "described in this report. The review considered performance data for the last twelve months, feedback from "
    "people who use the services and the resources available in the current financial year.",
    "The findings were presented to the relevant programme board, which agreed the priorities for the coming year "
    "and asked officers to report back on progress.",
)
_RESOURCES = (
    "4. Resource implications",
    "There are no additional resource implications arising from this report. Any changes to services will be met "
    "from existing budgets.",
    "5. Equality implications",
    "An equality impact assessment has been completed and is available from the report author on request.",
)


def report_pages(doc: Document, council_name: str, places: tuple[str, ...]) -> list[list[str]]:
    """The lines of each page of a paper: cover, purpose, background, then the page with its notice."""
    place = places[doc.id % len(places)] if places else "the town centre"
    notice = NOTICES[0 if doc.id == RESPITE_REPORT else doc.id % len(NOTICES)].format(place=place)
    cover = [doc.title, council_name, f"Published {doc.published:%d/%m/%Y}", "",
             "A report of the notifier demo council system."]  # fmt: skip
    return [
        cover,
        _wrapped(_PURPOSE),
        _wrapped(_BACKGROUND),
        _wrapped((*_RESOURCES, "6. Update for members", notice)),
    ]


def _wrapped(paragraphs: tuple[str, ...]) -> list[str]:
    lines: list[str] = []
    for paragraph in paragraphs:
        lines.extend(textwrap.wrap(paragraph, LINE_CHARS))
        lines.append("")
    return lines
