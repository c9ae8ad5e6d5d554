"""A subscription's filter in words."""

from __future__ import annotations

from typing import Any

import pytest

from notifier.topics.describe import describe_filter

REASON = 'dementia OR "mental health" in East Midlands councils'
LEICS = "Leicestershire County Council"
RUTLAND = "Rutland County Council"
HWB = "Health and Wellbeing Board"


@pytest.mark.parametrize(
    ("query", "kwargs", "expected"),
    [
        ('dementia OR "mental health"', {"regions": ["East Midlands"]}, REASON),
        ("", {"councils": [LEICS]}, f"everything at {LEICS}"),
        ("planning", {}, "planning in every council"),
        ("", {"councils": [LEICS], "committees": [HWB]}, f"everything in {HWB} at {LEICS}"),
        ("housing", {"councils": [LEICS, RUTLAND]}, f"housing at {LEICS} and {RUTLAND}"),
        ("", {"councils": [RUTLAND], "event_types": ["meeting.cancelled", "decision.published"]},
         f"everything at {RUTLAND} (only: meeting cancelled, decision)"),
    ],
)
def test_describe_filter_table(query: str, kwargs: dict[str, Any], expected: str) -> None:
    assert describe_filter(query, **kwargs) == expected
