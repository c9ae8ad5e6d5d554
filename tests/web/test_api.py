"""The partner API: authentication, isolation, problems, pagination, items search, events, preview."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from notifier.partners import create_partner
from tests.factories import Factory


@pytest.fixture
async def key(pool: asyncpg.Pool) -> str:
    _, api_key = await create_partner(pool, "Alzheimer's Society", contact_email="data@example.org")
    return api_key


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_api_requires_a_valid_key(client: TestClient, key: str) -> None:
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer nk_wrong"}):
        resp = await client.get("/api/v1/councils", headers=headers)
        assert resp.status == 401
        assert resp.content_type == "application/problem+json"
        assert (await resp.json())["status"] == 401
    resp = await client.get("/api/v1/councils", headers=auth(key))
    assert resp.status == 200


async def test_api_keys_are_stored_hashed(pool: asyncpg.Pool, key: str) -> None:
    row = await pool.fetchrow("select api_key_hash, api_key_prefix from partners")
    assert key not in row["api_key_hash"]
    assert key.startswith(row["api_key_prefix"]) and len(row["api_key_prefix"]) < len(key) // 3


@pytest.mark.parametrize(
    ("body", "content_type", "status", "field"),
    [
        (b"{not json", "application/json", 400, None),
        (b"[1, 2]", "application/json", 400, None),
        (b'{"email": "x@example.org"}', "text/plain", 415, None),
        (b'{"email": "not an address"}', "application/json", 422, "email"),
        (b'{"email": "a@example.org", "consent": "maybe"}', "application/json", 422, "consent"),
        (b'{"email": "a@example.org", "surprise": 1}', "application/json", 422, "surprise"),
        (b'{"email": "a@example.org", "timezone": "Mars/Base"}', "application/json", 422, "timezone"),
    ],
)
async def test_api_malformed_bodies_are_clear_problems(
    client: TestClient, key: str, body: bytes, content_type: str, status: int, field: str | None
) -> None:
    resp = await client.post("/api/v1/subscribers", data=body, headers={**auth(key), "Content-Type": content_type})
    assert resp.status == status
    problem = await resp.json()
    assert resp.content_type == "application/problem+json"
    assert problem["status"] == status and problem["title"]
    if field:
        assert any(e["field"] == field for e in problem["errors"])


async def test_api_bad_query_error_names_position(client: TestClient, key: str, pool: asyncpg.Pool) -> None:
    resp = await client.post("/api/v1/subscribers", json={"email": "a@example.org"}, headers=auth(key))
    subscriber = await resp.json()
    resp = await client.post(
        "/api/v1/subscriptions",
        json={"subscriber_id": subscriber["id"], "filter": {"query": '(dementia OR "mental health'}},
        headers=auth(key),
    )
    assert resp.status == 422
    [error] = (await resp.json())["errors"]
    assert error["field"] == "filter.query"
    assert isinstance(error["position"], int)


async def test_api_unknown_council_in_filter_is_refused(client: TestClient, key: str) -> None:
    resp = await client.post("/api/v1/subscribers", json={"email": "a@example.org"}, headers=auth(key))
    subscriber = await resp.json()
    resp = await client.post(
        "/api/v1/subscriptions",
        json={"subscriber_id": subscriber["id"], "filter": {"councils": ["atlantis"]}},
        headers=auth(key),
    )
    assert resp.status == 422
    assert "atlantis" in (await resp.json())["detail"]


async def test_api_partners_are_isolated(client: TestClient, key: str, pool: asyncpg.Pool) -> None:
    _, other_key = await create_partner(pool, "Local newsroom")
    resp = await client.post(
        "/api/v1/subscribers", json={"email": "a@example.org", "consent": "vouched"}, headers=auth(key)
    )
    subscriber = await resp.json()
    resp = await client.post(
        "/api/v1/subscriptions", json={"subscriber_id": subscriber["id"], "frequency": "daily"}, headers=auth(key)
    )
    subscription = await resp.json()
    for path in (
        f"/api/v1/subscribers/{subscriber['id']}",
        f"/api/v1/subscriptions/{subscription['id']}",
        f"/api/v1/subscribers/{subscriber['id']}/export",
    ):
        assert (await client.get(path, headers=auth(other_key))).status == 404
        assert (await client.get(path, headers=auth(key))).status == 200
    assert (await client.delete(f"/api/v1/subscriptions/{subscription['id']}", headers=auth(other_key))).status == 404
    resp = await client.post("/api/v1/subscriptions", json={"subscriber_id": subscriber["id"]}, headers=auth(other_key))
    assert resp.status == 422
    listed = await (await client.get("/api/v1/subscriptions", headers=auth(other_key))).json()
    assert listed == {"items": [], "next": None}
    # the same address, added by the other partner, is that partner's own subscriber
    resp = await client.post("/api/v1/subscribers", json={"email": "A@example.org"}, headers=auth(other_key))
    assert resp.status == 201
    assert (await resp.json())["id"] != subscriber["id"]


async def test_api_subscription_lifecycle(client: TestClient, key: str, factory: Factory) -> None:
    await factory.council("leicestershire")
    resp = await client.post(
        "/api/v1/subscribers", json={"email": "b@example.org", "consent": "vouched"}, headers=auth(key)
    )
    assert resp.status == 201
    subscriber = await resp.json()
    assert subscriber["status"] == "active"
    again = await client.post("/api/v1/subscribers", json={"email": "b@example.org"}, headers=auth(key))
    assert again.status == 200 and (await again.json())["id"] == subscriber["id"]
    resp = await client.post(
        "/api/v1/subscriptions",
        json={
            "subscriber_id": subscriber["id"],
            "filter": {"query": 'Dementia  or "mental health"', "councils": ["leicestershire"]},
            "frequency": "weekly",
            "weekday": 4,
        },
        headers=auth(key),
    )
    assert resp.status == 201
    sub = await resp.json()
    assert sub["filter"]["query"] == 'dementia OR "mental health"'
    assert sub["feed_url"].startswith("http://notifier.test/feeds/s/") and sub["feed_url"].endswith(".atom")
    until = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    resp = await client.patch(
        f"/api/v1/subscriptions/{sub['id']}",
        json={"frequency": "daily", "hour": 18, "paused_until": until},
        headers=auth(key),
    )
    patched = await resp.json()
    assert resp.status == 200
    assert (patched["frequency"], patched["hour"], patched["weekday"]) == ("daily", 18, 4)
    assert patched["filter"] == sub["filter"]
    assert patched["paused_until"] is not None
    resp = await client.get(f"/api/v1/subscribers/{subscriber['id']}/export", headers=auth(key))
    exported = await resp.json()
    assert exported["subscriber"]["email"] == "b@example.org"
    assert [s["id"] for s in exported["subscriptions"]] == [sub["id"]]
    assert (await client.delete(f"/api/v1/subscriptions/{sub['id']}", headers=auth(key))).status == 204
    assert (await client.get(f"/api/v1/subscriptions/{sub['id']}", headers=auth(key))).status == 404
    assert (await client.delete(f"/api/v1/subscribers/{subscriber['id']}", headers=auth(key))).status == 204
    assert (await client.get(f"/api/v1/subscribers/{subscriber['id']}", headers=auth(key))).status == 404


async def test_api_events_cursor_follows_the_log(client: TestClient, key: str, factory: Factory) -> None:
    ids = [await factory.event(title=f"Meeting {n}") for n in range(5)]
    await factory.event(council="rutland", title="Rutland meeting", type="meeting.cancelled")
    resp = await client.get("/api/v1/events?limit=2", headers=auth(key))
    first = await resp.json()
    assert [e["id"] for e in first["items"]] == ids[:2]
    resp = await client.get(f"/api/v1/events?limit=2&cursor={first['next']}", headers=auth(key))
    assert [e["id"] for e in (await resp.json())["items"]] == ids[2:4]
    resp = await client.get(f"/api/v1/events?after={ids[3]}&council=leicestershire", headers=auth(key))
    page = await resp.json()
    assert [e["id"] for e in page["items"]] == [ids[4]] and page["next"] is None
    resp = await client.get("/api/v1/events?types=meeting.cancelled", headers=auth(key))
    [cancelled] = (await resp.json())["items"]
    assert cancelled["council"] == "rutland" and cancelled["item"]["title"] == "Rutland meeting"
    assert (await client.get("/api/v1/events?cursor=%%%", headers=auth(key))).status == 400


async def test_api_items_search_uses_the_topic_language(client: TestClient, key: str, factory: Factory) -> None:
    dementia = await factory.item(title="LLR Joint Living Well Dementia Strategy 2024-2028")
    asthma = await factory.item(title="Respiratory health", body="Children's asthma services in West Leicestershire")
    await factory.item(title="Parking charges")
    cases: list[tuple[str, list[int]]] = [
        ("dementias", [dementia]),
        ('"west leicestershire"', [asthma]),
        ("(respiratory OR asthma) AND child*", [asthma]),
        ("dementia OR asthma", [dementia, asthma]),
    ]
    for q, expected in cases:
        resp = await client.get("/api/v1/items", params={"q": q}, headers=auth(key))
        assert resp.status == 200, q
        assert [i["id"] for i in (await resp.json())["items"]] == expected, q
    resp = await client.get("/api/v1/items", params={"q": "(unbalanced"}, headers=auth(key))
    assert resp.status == 422


async def test_api_preview_shows_the_past_and_weekly_volume(client: TestClient, key: str, factory: Factory) -> None:
    await factory.council("rutland")
    for n in range(6):
        await factory.event(title=f"Dementia services update {n}", occurred_at=datetime.now(UTC) - timedelta(days=n))
    await factory.event(title="Dementia long ago", occurred_at=datetime.now(UTC) - timedelta(days=45))
    await factory.event(council="rutland", title="Dementia in Rutland")
    resp = await client.post(
        "/api/v1/subscriptions/preview",
        json={"filter": {"query": "dementia", "councils": ["leicestershire"]}},
        headers=auth(key),
    )
    preview: dict[str, Any] = await resp.json()
    assert resp.status == 200
    assert preview["total"] == 6
    assert preview["weekly_estimate"] == 1.4
    assert all("Dementia services" in i["title"] for i in preview["items"])
    resp = await client.post("/api/v1/subscriptions/preview", json={"filter": {}}, headers=auth(key))
    assert (await resp.json())["total"] == 7


async def test_api_rate_limit_answers_429(client: TestClient, pool: asyncpg.Pool) -> None:
    _, key = await create_partner(pool, "Busy partner", rate_limit_per_minute=3)
    statuses = [(await client.get("/api/v1/councils", headers=auth(key))).status for _ in range(5)]
    assert statuses[:3] == [200, 200, 200]
    assert statuses[3:] == [429, 429]
    resp = await client.get("/api/v1/councils", headers=auth(key))
    assert int(resp.headers["Retry-After"]) > 0


async def test_api_councils_with_source_health(client: TestClient, key: str, factory: Factory) -> None:
    await factory.source("leicestershire", consecutive_failures=4, last_error="HTTP 503 from council")
    await factory.council("rutland")
    resp = await client.get("/api/v1/councils?limit=1", headers=auth(key))
    page = await resp.json()
    assert [c["slug"] for c in page["items"]] == ["leicestershire"]
    [source] = page["items"][0]["sources"]
    assert source["consecutive_failures"] == 4 and source["last_error"] == "HTTP 503 from council"
    resp = await client.get(f"/api/v1/councils?limit=1&cursor={page['next']}", headers=auth(key))
    assert [c["slug"] for c in (await resp.json())["items"]] == ["rutland"]
    assert (await client.get("/api/v1/councils/atlantis", headers=auth(key))).status == 404
