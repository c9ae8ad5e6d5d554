"""Records as the adapters give them, for the tests of the pure diff: a Health and Wellbeing Board meeting, its
agenda items, documents and a decision, each with good defaults and overrides; and records as read back when stored.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from notifier.models import ItemKind
from notifier.sources.base import Record

TZ = "Europe/London"
M = ItemKind.MEETING
A = ItemKind.AGENDA_ITEM
D = ItemKind.DOCUMENT
DEC = ItemKind.DECISION

HWB_START = datetime(2025, 12, 4, 14, 0, tzinfo=UTC)  # 14:00 GMT
BASE = "https://democracy.leics.gov.uk"


def meeting(mid: str = "7001", **overrides: Any) -> Record:
    data: dict[str, Any] = {
        "location": "County Hall, Glenfield",
        "status_text": "Confirmed",
        "agenda_published": False,
        "minutes_published": False,
        "decisions_published": False,
        "webcast": False,
        "time_known": True,
        "_summary": "04/12/2025|2.00 pm|Confirmed",
        "_detail_at": "2025-11-20T09:00:00+00:00",
    }
    data.update(overrides.pop("data", {}))
    fields: dict[str, Any] = {
        "kind": M,
        "external_id": mid,
        "title": "Health and Wellbeing Board",
        "committee": "Health and Wellbeing Board",
        "committee_id": "1038",
        "starts_at": HWB_START,
        "status": "confirmed",
        "url": f"{BASE}/ieListDocuments.aspx?CId=1038&MId={mid}",
        "data": data,
    }
    fields.update(overrides)
    return Record(**fields)


def agenda_item(aid: str, mid: str = "7001", title: str = "Dementia strategy") -> Record:
    return Record(
        kind=A,
        external_id=aid,
        title=title,
        committee="Health and Wellbeing Board",
        starts_at=HWB_START,
        parent=(M, mid),
        url=f"{BASE}/ieListDocuments.aspx?CId=1038&MId={mid}",
        data={"number": aid[-1]},
    )


def document(did: str, title: str, parent: tuple[ItemKind, str] | None = (A, "501"), **overrides: Any) -> Record:
    fields: dict[str, Any] = {
        "kind": D,
        "external_id": did,
        "title": title,
        "committee": "Health and Wellbeing Board",
        "starts_at": HWB_START,
        "parent": parent,
        "url": f"{BASE}/mgConvert2PDF.aspx?ID={did}",
        "published_at": datetime(2025, 11, 26, tzinfo=UTC),
    }
    fields.update(overrides)
    return Record(**fields)


def decision(did: str = "9001", **overrides: Any) -> Record:
    fields: dict[str, Any] = {
        "kind": DEC,
        "external_id": did,
        "title": "Better Care Fund Q2 report",
        "committee": "Health and Wellbeing Board",
        "body": "The Board approved the quarter 2 return.",
        "starts_at": datetime(2025, 12, 4, tzinfo=UTC),
        "status": "Recommendations approved",
        "url": f"{BASE}/ieDecisionDetails.aspx?ID={did}",
        "published_at": datetime(2025, 12, 8, tzinfo=UTC),
        "data": {
            "key_decision": False,
            "call_in": "Not subject to call-in",
            "decision_maker": "HWB",
            "_detail_at": "2025-12-08T10:00:00+00:00",
        },
    }
    fields.update(overrides)
    return Record(**fields)


def with_data(r: Record, **data: Any) -> Record:
    return replace(r, data={**r.data, **data})


def stored(records: Sequence[Record]) -> dict[tuple[ItemKind, str], Record]:
    """Records as ingest reads them back: data through JSON (datetimes as str()), datetimes in UTC."""
    return {
        (r.kind, r.external_id): replace(
            r,
            data=json.loads(json.dumps(dict(r.data), default=str)),
            starts_at=r.starts_at.astimezone(UTC) if r.starts_at else None,
            published_at=r.published_at.astimezone(UTC) if r.published_at else None,
        )
        for r in records
    }
