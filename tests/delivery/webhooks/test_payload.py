"""The webhook body: the shared-part encoder gives the same JSON as the plain one, and long texts are cut."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from notifier.delivery.webhooks.payload import MAX_BODY_BYTES, EventBodies, event_body


def row(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "event_id": 7, "event_type": "meeting.rescheduled", "occurred_at": datetime(2025, 12, 1, 9, 30, tzinfo=UTC),
        "summary": "Health and Wellbeing Board moved", "changes": {"starts_at": ["a", "b"]}, "council": "leics",
        "council_name": "Leicestershire County Council", "region": "East Midlands", "nation": "England",
        "item_id": 912, "item_kind": "meeting", "external_id": "7291",
        "title": "Health and Wellbeing Board \u2013 \"Dec\"",
        "committee": "Health and Wellbeing Board", "committee_id": "1041", "starts_at": None, "published_at": None,
        "item_status": "confirmed", "item_url": "https://democracy.example/ieListDocuments.aspx?MId=7291",
        "parent_id": None, "body": "Dementia strategy \u00e9 progress", "subscription_id": 77, "endpoint_id": 3,
        "matched_terms": ["dementia", "carers' \"respite\""],
    }
    values.update(overrides)
    return values


@pytest.mark.parametrize(
    "overrides", [{}, {"matched_terms": None}, {"body": "word " * 3_000}, {"changes": {"body": ["x " * 9_000, "y"]}}]
)
def test_payload_shared_parts_make_the_same_json(overrides: dict[str, Any]) -> None:
    bodies = EventBodies("https://alerts.example.org")
    for endpoint in (3, 4):
        r = row(endpoint_id=endpoint, subscription_id=70 + endpoint, **overrides)
        fast = bodies.body(r)
        assert json.loads(fast) == json.loads(event_body(r, base_url="https://alerts.example.org"))
        assert len(fast) < MAX_BODY_BYTES


def test_payload_cut_to_size_with_a_link() -> None:
    body = json.loads(EventBodies("https://a.example").body(row(body="housing " * 20_000,
                                                                 changes={"body": ["x " * 20_000, "y " * 20_000]})))
    assert body["data"]["item"]["truncated"] is True
    assert body["data"]["links"]["item"] == "https://a.example/api/v1/items/912"
