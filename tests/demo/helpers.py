"""What the demo's tests share: a clock moved by hand, the published agenda of the fixed meeting, and reading the
demo's answers (XML, HTML) back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from lxml import etree
from lxml import html as lxml_html

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday; the demo's week runs from here
STEP = timedelta(minutes=3)

# Leicestershire's Health and Wellbeing Board, 4 December 2025: the items with papers, in agenda order ...
HWB_SUBSTANTIVE_ITEMS = [
    "Joint Local Health and Wellbeing Strategy 2022-2032 Review",
    "LLR SEND and Inclusion Alliance Update",
    "Pandemic Planning",
    "LLR Joint Living Well with Dementia Strategy 2024-2028 - Progress Report",
    "Neighbourhood Models of Care",
    "Health Related Activities of the Office of the Police and Crime Commissioner",
    "Better Care Fund Quarter 2 2025/26 Report",
]
# ... and the whole agenda.
HWB_ITEMS = [
    "Minutes of the previous meeting",
    "Declarations of interest",
    *HWB_SUBSTANTIVE_ITEMS,
    "Date of next meeting",
]


class Clock:
    """The demo's clock, moved by hand: `advance(n)` moves it on n of the demo's steps."""

    def __init__(self, now: datetime, step: timedelta = timedelta(minutes=3)) -> None:
        self.now = now
        self.step = step

    def __call__(self) -> datetime:
        return self.now

    def advance(self, steps: int) -> None:
        self.now += steps * self.step


async def get_xml(client: TestClient[Any, Any], path: str) -> etree._Element:
    response = await client.get(path)
    assert response.status == 200
    assert response.content_type == "text/xml"
    return etree.fromstring(await response.read())


async def get_html(client: TestClient[Any, Any], path: str) -> Any:
    response = await client.get(path)
    assert response.status == 200
    assert response.content_type == "text/html"
    return lxml_html.fromstring(await response.read())


def tags(element: etree._Element) -> list[str]:
    return [child.tag for child in element]


def text(element: etree._Element, tag: str) -> str:
    return (element.findtext(tag) or "").strip()


def meetings_listed(root: etree._Element) -> list[tuple[str, str, str, str]]:
    return [
        (text(m, "meetingid"), text(m, "meetingdate"), text(m, "meetingtime"), text(m, "meetingstatus"))
        for m in root.iter("meeting")
    ]


def words(value: str) -> str:
    return " ".join(value.split())


def css(element: Any, selector: str) -> list[Any]:
    """Elements matching a simple CSS selector (`tag.class`, descendant and `>` child steps), through XPath."""
    path, axis = ".", "//"
    for step in selector.split():
        if step == ">":
            axis = "/"
            continue
        tag, _, cls = step.partition(".")
        condition = f"[contains(concat(' ', normalize-space(@class), ' '), ' {cls} ')]" if cls else ""
        path += f"{axis}{tag or '*'}{condition}"
        axis = "//"
    return list(element.xpath(path))
