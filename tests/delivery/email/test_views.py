"""The view model: entries, groups, links."""

from __future__ import annotations

from datetime import datetime

import pytest

from notifier.delivery.email.views import CommitteeGroup, CouncilGroup, EntryView, Links, group_entries
from tests.delivery.email.samples import AGENDA_URL, BASE, HWB, LEICS, RUTLAND, agenda, cancelled, decision, rescheduled


def test_group_entries_by_council_then_committee_in_first_seen_order() -> None:
    a, b, c, d = rescheduled(), decision(), cancelled(), agenda()
    assert group_entries([a, b, c, d]) == (
        CouncilGroup(LEICS, (CommitteeGroup(HWB, (a, d)), CommitteeGroup("Cabinet", (b,)))),
        CouncilGroup(RUTLAND, (CommitteeGroup("Adults and Health Scrutiny Committee", (c,)),)),
    )


def test_entry_view_normalises_lists_and_refuses_naive_times() -> None:
    e = EntryView("document.published", LEICS, "Report", documents=[["Report", AGENDA_URL]],  # type: ignore[list-item]
                  matched_terms="dementia")
    assert e.documents == (("Report", AGENDA_URL),)
    assert e.matched_terms == ("dementia",)
    with pytest.raises(ValueError, match="naive"):
        EntryView("meeting.scheduled", LEICS, HWB, when=datetime(2025, 12, 4, 14, 0))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"manage": "", "unsubscribe": f"{BASE}/u"},
        {"manage": "javascript:alert(1)", "unsubscribe": f"{BASE}/u"},
        {"manage": f"{BASE}/m", "unsubscribe": "/unsubscribe/relative"},
        {"manage": f"{BASE}/m", "unsubscribe": f"{BASE}/u\r\nBcc: victim@example.com"},
        {"manage": f"{BASE}/m", "unsubscribe": f"{BASE}/u", "one_click": "mailto:unsubscribe@example.org"},
    ],
)
def test_links_refuse_bad_urls(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="Links"):
        Links(**kwargs)
