"""What the demo's tests share: a clock moved by hand, and the published agenda of the fixed meeting."""

from __future__ import annotations

from datetime import datetime, timedelta

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
