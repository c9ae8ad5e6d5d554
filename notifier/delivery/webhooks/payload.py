"""The JSON body of a webhook delivery.

```
{"type": "meeting.rescheduled", "timestamp": "2025-12-01T09:30:00+00:00",
 "data": {"event": {...}, "item": {...}, "council": {...}, "subscription_id": 7, "endpoint_id": 3,
          "matched_terms": ["respite"],
          "snippets": [{"document": "Dementia Strategy progress report", "page": 12, "text": "…the respite centre…"}],
          "links": {"item": ".../api/v1/items/42", "council_page": "https://..."}}}
```

`snippets` say where in the event's documents (a report's PDF, an agenda pack) the matched terms were found: the
document's title, the page (from 1) and a short excerpt; empty when the terms were found in the title or text only.

`timestamp` is when the change was seen, the same on every retry. A body stays under `MAX_BODY_BYTES`: the item's
text is cut first (with `truncated` set and the links to read the whole), then the old and new values of a change.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

MAX_BODY_BYTES = 20_000
BODY_CHARS = 4_000
CHANGE_CHARS = 500


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _cut(text: str | None, limit: int) -> tuple[str | None, bool]:
    if text is None or len(text) <= limit:
        return text, False
    return text[: limit - 1].rsplit(" ", 1)[0] + "…", True


def _shared(row: Mapping[str, Any], base_url: str) -> dict[str, Any]:
    """What every delivery of one event carries, whichever endpoint it goes to."""
    text, cut = _cut(row["body"], BODY_CHARS)
    changes = row["changes"]
    return {
        "event": {
            "id": row["event_id"],
            "type": row["event_type"],
            "occurred_at": _iso(row["occurred_at"]),
            "summary": row["summary"],
            "changes": json.loads(changes) if isinstance(changes, str) else changes,
        },
        "item": {
            "id": row["item_id"],
            "kind": row["item_kind"],
            "external_id": row["external_id"],
            "title": row["title"],
            "committee": row["committee"],
            "committee_id": row["committee_id"],
            "starts_at": _iso(row["starts_at"]),
            "published_at": _iso(row["published_at"]),
            "status": row["item_status"],
            "url": row["item_url"],
            "parent_id": row["parent_id"],
            "text": text,
            "truncated": cut,
        },
        "council": {"slug": row["council"], "name": row["council_name"], "region": row["region"],
                    "nation": row["nation"]},
        "links": {"item": f"{base_url}/api/v1/items/{row['item_id']}", "council_page": row["item_url"]},
    }


def event_body(row: Mapping[str, Any], *, base_url: str) -> bytes:
    """The body for one delivery row: its event, item, council and subscription, as the sender reads them."""
    data = _shared(row, base_url)
    data["subscription_id"] = row["subscription_id"]
    data["endpoint_id"] = row["endpoint_id"]
    data["matched_terms"] = list(row["matched_terms"] or [])
    data["snippets"] = _snippets(row.get("snippets"))
    payload = {"type": row["event_type"], "timestamp": _iso(row["occurred_at"]), "data": data}
    body = _dumps(payload)
    if len(body) > MAX_BODY_BYTES:
        body = _shrink(payload)
    return body


def _snippets(value: Any) -> list[dict[str, Any]]:
    found = json.loads(value) if isinstance(value, str) else value or []
    return [{"document": s.get("document"), "page": s["page"], "text": s["text"]} for s in found]


class EventBodies:
    """Bodies for the deliveries of a few events to many endpoints: each event's shared part is encoded once, and
    a delivery adds only its own ids, matched terms and snippets. The same JSON as `event_body`, key order aside."""

    def __init__(self, base_url: str) -> None:
        self._base_url = base_url
        self._parts: dict[int, tuple[bytes, bytes]] = {}

    def body(self, row: Mapping[str, Any]) -> bytes:
        parts = self._parts.get(row["event_id"])
        if parts is None:
            shared = _shared(row, self._base_url)
            links = _dumps(shared.pop("links"))
            head = _dumps({"type": row["event_type"], "timestamp": _iso(row["occurred_at"])})[:-1]
            parts = (head + b',"data":' + _dumps(shared)[:-1] + b",", b'"links":' + links + b"}}")
            if len(self._parts) > 1000:
                self._parts.clear()
            self._parts[row["event_id"]] = parts
        own = b'"subscription_id":%d,"endpoint_id":%d,"matched_terms":%s,"snippets":%s,' % (
            row["subscription_id"], row["endpoint_id"], _dumps(list(row["matched_terms"] or [])),
            _dumps(_snippets(row.get("snippets"))))
        body = parts[0] + own + parts[1]
        if len(body) > MAX_BODY_BYTES:
            return event_body(row, base_url=self._base_url)  # cut down to size, the careful way
        return body


def _shrink(payload: dict[str, Any]) -> bytes:
    data = payload["data"]
    data["item"]["text"], _ = _cut(data["item"]["text"], 500)
    data["item"]["truncated"] = True
    changes = data["event"]["changes"]
    if isinstance(changes, dict):
        data["event"]["changes"] = {k: _cut_value(v) for k, v in changes.items()}
    body = _dumps(payload)
    if len(body) > MAX_BODY_BYTES:  # pathological: a title or summary of many kilobytes
        data["item"]["text"] = None
        data["event"]["changes"] = {}
        data["item"]["title"], _ = _cut(data["item"]["title"], 1000)
        data["event"]["summary"], _ = _cut(data["event"]["summary"], 1000)
        body = _dumps(payload)
    return body


def _cut_value(value: Any) -> Any:
    if isinstance(value, str):
        return _cut(value, CHANGE_CHARS)[0]
    if isinstance(value, list):
        return [_cut_value(v) for v in value]
    if isinstance(value, dict):
        text = json.dumps(value)
        return value if len(text) <= CHANGE_CHARS else {"truncated": True}
    return value


def ping_payload(endpoint_id: int, at: datetime) -> dict[str, Any]:
    """A test ping's payload, stored with its delivery so every retry sends the same."""
    return {
        "type": "webhook.test",
        "timestamp": at.isoformat(),
        "data": {"endpoint_id": endpoint_id, "message": "A test delivery from notifier: this endpoint is reachable."},
    }


def stored_body(payload: Any) -> bytes:
    """The body of a delivery that carries its own payload (a test ping)."""
    return _dumps(json.loads(payload) if isinstance(payload, str) else payload)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
