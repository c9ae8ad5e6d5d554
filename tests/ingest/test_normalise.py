"""Tests for notifier.ingest.normalise: the content hash stored with every item."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifier.ingest import normalise
from notifier.ingest.diff import diff_poll
from notifier.ingest.normalise import content_hash
from notifier.models import EventType, ItemKind
from notifier.sources.base import Record
from tests.ingest.records import (
    DEC,
    HWB_START,
    TZ,
    D,
    M,
    agenda_item,
    decision,
    document,
    meeting,
    stored,
    with_data,
)

# ---- content hash ------------------------------------------------------------------------------------------------


def test_content_hash_is_sha256_hex_and_stable() -> None:
    h = content_hash(meeting())
    assert len(h) == 64
    assert int(h, 16) >= 0
    assert content_hash(meeting()) == h


def test_content_hash_ignores_dict_order_and_bookkeeping() -> None:
    a = Record(
        kind=M,
        external_id="1",
        title="T",
        data={"location": "Hall", "agenda_published": True, "nested": {"b": 1, "a": [1, 2]}},
    )
    b = Record(
        kind=M,
        external_id="1",
        title="T",
        data={
            "_detail_at": "2025-01-01T00:00:00+00:00",
            "nested": {"a": [1, 2], "b": 1},
            "agenda_published": True,
            "location": "Hall",
        },
    )
    assert content_hash(a) == content_hash(b)


def test_content_hash_normalises_datetimes() -> None:
    utc = meeting(
        starts_at=datetime(2026, 6, 11, 9, 30, tzinfo=UTC), data={"ends_at": datetime(2026, 6, 11, 12, 0, tzinfo=UTC)}
    )
    bst = timezone(timedelta(hours=1))
    local = meeting(
        starts_at=datetime(2026, 6, 11, 10, 30, tzinfo=bst), data={"ends_at": datetime(2026, 6, 11, 13, 0, tzinfo=bst)}
    )
    read_back = with_data(utc, ends_at="2026-06-11 12:00:00+00:00")  # as json.dumps(default=str) stores it
    assert content_hash(utc) == content_hash(local) == content_hash(read_back)
    assert content_hash(utc) == content_hash(stored([utc])[(M, "7001")])


def test_content_hash_of_dates_in_data_survives_the_database() -> None:
    r = decision(data={"decision_date": date(2025, 12, 4), "documents": ({"title": "Report", "url": "u"},)})
    assert content_hash(r) == content_hash(stored([r])[(DEC, "9001")])


def test_content_hash_values_are_the_stored_ones() -> None:
    # Hashes are stored with every item: a different value for the same record would rewrite every item once.
    assert content_hash(meeting()) == "a6252e7c0c7b8ef05a82d2f538910ec50c0b4cb495f4a635f90ed1e72302cc33"
    assert content_hash(document("1", "Report")) == "dfcdeba2282e3f3eef72c53a6463b2738661faedf1c77d8c69502e09a3a1d592"
    assert content_hash(agenda_item("501")) == "12a36512662e3ff1fa91123a8d8f850f83a99fda8e24c32b43bd696f9725073b"


def _hash_through_json(r: Record) -> str:
    """content_hash with every record's data taken through the database's JSON round trip (no shortcut)."""
    public = {str(k): v for k, v in r.data.items() if not str(k).startswith("_")}
    data = normalise.canonical(json.loads(json.dumps(public, default=str)))
    payload = {
        "kind": str(r.kind), "external_id": r.external_id, "title": r.title, "committee": r.committee,
        "committee_id": r.committee_id, "body": r.body, "starts_at": normalise.iso(r.starts_at),
        "status": r.status, "url": r.url, "parent": [str(r.parent[0]), r.parent[1]] if r.parent else None,
        "published_at": normalise.iso(r.published_at), "data": data,
    }
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_DATA_VALUES = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
    | st.sampled_from(["2025-12-04T14:00:00+00:00", "2025-12-04 14:00:00+01:00", "2025-12-04T14:00", "2025-13-45T99:99",
                       "١٢٣٤-١٢-٠٤T14:00", EventType.MEETING_SCHEDULED, ItemKind.MEETING])
    | st.datetimes(timezones=st.just(UTC)) | st.dates()
    | st.lists(st.text(max_size=5) | st.integers(), max_size=3)
)


@given(st.dictionaries(st.text(max_size=8) | st.integers(), _DATA_VALUES, max_size=6))
def test_content_hash_of_plain_data_is_the_json_round_trip_one(data: dict[Any, Any]) -> None:
    r = meeting(data=data)
    assert content_hash(r) == _hash_through_json(r)

@pytest.mark.parametrize(
    "change",
    [
        {"kind": D},
        {"external_id": "7002"},
        {"title": "Cabinet"},
        {"committee": "Cabinet"},
        {"committee_id": "1039"},
        {"body": "agenda"},
        {"starts_at": HWB_START + timedelta(minutes=1)},
        {"status": "cancelled"},
        {"url": "https://example.org/"},
        {"parent": (M, "1")},
        {"published_at": HWB_START},
        {"data": {"location": "Room 2"}},
        {"data": {"extra": None}},
    ],
    ids=lambda c: next(iter(c)) if len(c) == 1 and "data" not in c else f"data-{next(iter(c['data']))}",
)
def test_content_hash_sees_every_field(change: dict[str, Any]) -> None:
    base = meeting()
    changed = with_data(base, **change["data"]) if "data" in change else replace(base, **change)
    assert content_hash(changed) != content_hash(base)


_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.text(max_size=12),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5))])),
    st.dates(),
)
_json_value = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@given(
    data=st.dictionaries(st.text(max_size=8), _json_value, max_size=5),
    bookkeeping=st.dictionaries(st.text(max_size=6).map(lambda k: "_" + k), _json_value, max_size=3),
)
def test_content_hash_survives_the_database_and_ignores_bookkeeping(
    data: dict[str, Any], bookkeeping: dict[str, Any]
) -> None:
    public = {k: v for k, v in data.items() if not k.startswith("_")}
    fresh = meeting(data=public)
    read_back = stored([with_data(fresh, **bookkeeping)])[(M, "7001")]
    reordered = replace(fresh, data=dict(reversed(list(fresh.data.items()))))
    assert content_hash(read_back) == content_hash(fresh) == content_hash(reordered)
    assert diff_poll(stored([fresh]), [with_data(fresh, **bookkeeping)], timezone=TZ) == []
