"""Webhooks end to end: endpoints made through the API, events matched by the real matcher, deliveries sent by the
worker's sender to a real receiver that verifies every request with the `standardwebhooks` reference
implementation. The clock is moved in the database (a retry falls due when its next_attempt_at is set to now),
never slept through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient, TestServer
from arq.connections import ArqRedis

from notifier.delivery.webhooks.payload import MAX_BODY_BYTES
from notifier.ingest.documents import fetch_due_documents
from notifier.partners import create_partner
from notifier.settings import Settings
from notifier.web.app import create_app
from tests.delivery.webhooks.helpers import Send, auth, endpoint, match, move_clock
from tests.delivery.webhooks.resolver import TableResolver
from tests.factories import Factory
from tests.ingest.helpers import fetcher
from tests.ingest.test_documents import REPORT
from tests.servers import CouncilServer, WebhookReceiver


async def test_webhook_delivers_a_matched_event_signed(
    client: TestClient[Any, Any], key: str, receiver: WebhookReceiver, factory: Factory, pool: asyncpg.Pool,
    settings: Settings, send: Send,
) -> None:
    await factory.council()
    made = await endpoint(client, key, receiver, query="dementia")
    assert made["secret"].startswith("whsec_") and made["status"] == "active"
    assert "secret" not in await (await client.get(f"/api/v1/webhooks/{made['id']}", headers=auth(key))).json()
    event_id = await factory.event(title="Dementia strategy progress report", kind="document",
                                   type="document.published", summary="Dementia strategy published")
    await factory.event(title="Parking charges")  # not matched
    assert await match(pool, settings) == 1
    result = await send()
    assert result.sent == 1
    [got] = receiver.ok("a")
    body = got.json()
    assert body["type"] == "document.published"
    assert body["data"]["event"]["id"] == event_id
    assert body["data"]["item"]["title"] == "Dementia strategy progress report"
    assert body["data"]["council"]["slug"] == "leicestershire"
    assert body["data"]["matched_terms"] == ["dementia"]
    assert body["data"]["snippets"] == []  # found in the title: no document text to point into
    assert body["data"]["endpoint_id"] == made["id"]
    assert got.webhook_id.startswith("msg_")
    assert await pool.fetchval("select status from deliveries") == "sent"
    # nothing left: a second pass sends nothing
    assert (await send()).sent == 0
    assert len(receiver.received) == 1


async def test_webhook_payload_says_on_which_page_of_the_document_the_terms_are(
    client: TestClient[Any, Any], key: str, receiver: WebhookReceiver, factory: Factory, pool: asyncpg.Pool,
    settings: Settings, send: Send, council_server: CouncilServer,
) -> None:
    council_server.set("/paper.pdf", REPORT, content_type="application/pdf")
    await endpoint(client, key, receiver, query="respite")
    await factory.event(title="Work programme", kind="document", type="document.published",
                        url=f"{council_server.url}/paper.pdf")
    async with fetcher(settings) as f:
        assert (await fetch_due_documents(pool, f, settings)).extracted == 1
    assert await match(pool, settings) == 1
    assert (await send()).sent == 1
    [got] = receiver.ok("a")
    data = got.json()["data"]
    assert data["matched_terms"] == ["respite"]
    assert data["snippets"] == [{"document": "Work programme", "page": 3, "text": (
        "2. Background The programme was agreed with the chair. The respite centre at Hastings Road will close on "
        "31 March, and carers will be offered short breaks.")}]


async def test_webhook_ping_is_signed_and_logged(
    client: TestClient[Any, Any], key: str, receiver: WebhookReceiver, send: Send,
) -> None:
    made = await endpoint(client, key, receiver)
    resp = await client.post(f"/api/v1/webhooks/{made['id']}/test", headers=auth(key))
    assert resp.status == 202
    webhook_id = (await resp.json())["webhook_id"]
    await send()
    [got] = receiver.ok("a")
    assert got.webhook_id == webhook_id
    assert got.json()["type"] == "webhook.test"
    log = await (await client.get(f"/api/v1/webhooks/{made['id']}/attempts", headers=auth(key))).json()
    assert [(a["webhook_id"], a["status_code"], a["error"]) for a in log["items"]] == [(webhook_id, 204, None)]


async def test_webhook_retries_through_errors_and_timeouts_under_one_id(
    client: TestClient[Any, Any], key: str, receiver: WebhookReceiver, factory: Factory, pool: asyncpg.Pool,
    settings: Settings, send: Send,
) -> None:
    await factory.council()
    made = await endpoint(client, key, receiver)
    await factory.event(title="Cabinet")
    await match(pool, settings)
    receiver.plans["a"] = [500, ("sleep", 2.0), 204]

    before = datetime.now(UTC)
    assert (await send(webhook_timeout=0.5)).retried == 1
    row = await pool.fetchrow("select status, attempts, next_attempt_at, last_error from deliveries")
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert timedelta(seconds=4) < row["next_attempt_at"] - before < timedelta(seconds=7)  # the second try: 5 s
    assert "HTTP 500" in row["last_error"]

    await move_clock(pool)
    before = datetime.now(UTC)
    assert (await send(webhook_timeout=0.5)).retried == 1
    row = await pool.fetchrow("select attempts, next_attempt_at, last_error from deliveries")
    assert timedelta(minutes=4) < row["next_attempt_at"] - before < timedelta(minutes=6)  # the third: 5 min
    assert "no answer within 0.5 s" in row["last_error"]

    await move_clock(pool)
    assert (await send(webhook_timeout=0.5)).sent == 1
    ids = {r.webhook_id for r in receiver.received}
    assert len(receiver.received) == 3 and len(ids) == 1  # one delivery, one webhook-id across its retries
    log = await (await client.get(f"/api/v1/webhooks/{made['id']}/attempts", headers=auth(key))).json()
    assert [a["status_code"] for a in log["items"]] == [204, None, 500]  # newest first
    endpoint_row = await pool.fetchrow("select failure_streak, failing_since from webhook_endpoints")
    assert tuple(endpoint_row) == (0, None)  # a success clears the streak


async def test_webhook_gives_up_after_the_whole_schedule(
    client: TestClient[Any, Any], key: str, receiver: WebhookReceiver, factory: Factory, pool: asyncpg.Pool,
    settings: Settings, send: Send,
) -> None:
    await factory.council()
    await endpoint(client, key, receiver)
    await factory.event(title="Cabinet")
    await match(pool, settings)
    receiver.plans["a"] = [500] * 20
    for _ in range(7):
        assert (await send()).retried == 1
        await move_clock(pool)
    assert (await send()).failed == 1
    assert await pool.fetchval("select status from deliveries") == "failed"
    assert len(receiver.received) == 8


async def test_webhook_410_disables_the_endpoint_until_enabled(
    client: TestClient[Any, Any], key: str, receiver: WebhookReceiver, factory: Factory, pool: asyncpg.Pool,
    settings: Settings, send: Send, redis: ArqRedis,
) -> None:
    await factory.council()
    made = await endpoint(client, key, receiver)
    await factory.event(title="Cabinet")
    await match(pool, settings)
    receiver.plans["a"] = [410]
    result = await send()
    assert result.disabled == [made["id"]]
    shown = await (await client.get(f"/api/v1/webhooks/{made['id']}", headers=auth(key))).json()
    assert shown["status"] == "disabled" and "410" in shown["disabled_reason"]
    assert await pool.fetchval("select status from deliveries") == "failed"
    # a disabled endpoint hears of nothing new
    await factory.event(title="Scrutiny")
    assert await match(pool, settings) == 0
    resp = await client.post(f"/api/v1/webhooks/{made['id']}/enable", headers=auth(key))
    assert (await resp.json())["status"] == "active"
    await factory.event(title="Council")
    assert await match(pool, settings) == 1
    assert (await send()).sent == 1


async def test_webhook_retry_after_is_honoured(
    client: TestClient[Any, Any], key: str, receiver: WebhookReceiver, factory: Factory, pool: asyncpg.Pool,
    settings: Settings, send: Send,
) -> None:
    await factory.council()
    await endpoint(client, key, receiver)
    await factory.event(title="Cabinet")
    await match(pool, settings)
    for status in (429, 503):
        receiver.plans["a"] = [status]
        before = datetime.now(UTC)
        assert (await send()).retried == 1
        due = await pool.fetchval("select next_attempt_at from deliveries")
        assert due - before < timedelta(seconds=3)  # Retry-After: 1, not the schedule's 5 s or 5 min
        await move_clock(pool)
    assert (await send()).sent == 1


async def test_webhook_redirect_is_not_followed(
    client: TestClient[Any, Any], key: str, receiver: WebhookReceiver, factory: Factory, pool: asyncpg.Pool,
    settings: Settings, send: Send,
) -> None:
    await factory.council()
    await endpoint(client, key, receiver)
    await factory.event(title="Cabinet")
    await match(pool, settings)
    receiver.plans["a"] = [("redirect", "/hooks/elsewhere")]
    assert (await send()).retried == 1
    assert [r.name for r in receiver.received] == ["a"]
    assert "redirect to /hooks/elsewhere not followed" in await pool.fetchval("select last_error from deliveries")


async def test_webhook_replay_resends_under_the_original_ids(
    client: TestClient[Any, Any], key: str, receiver: WebhookReceiver, factory: Factory, pool: asyncpg.Pool,
    settings: Settings, send: Send,
) -> None:
    await factory.council()
    earlier = await factory.event(title="Before the endpoint", occurred_at=datetime.now(UTC) - timedelta(days=3))
    made = await endpoint(client, key, receiver)
    events = [await factory.event(title=f"Meeting {n}") for n in range(3)]
    await match(pool, settings)
    await send()
    first_ids = {r.json()["data"]["event"]["id"]: r.webhook_id for r in receiver.ok("a")}
    assert sorted(first_ids) == events  # not the earlier one: no flood of the past

    resp = await client.post(f"/api/v1/webhooks/{made['id']}/replay", headers=auth(key), json={"after": earlier - 1})
    assert resp.status == 202
    assert await resp.json() == {"queued": 4, "after": earlier - 1, "last_event_id": events[-1], "more": False}
    receiver.received.clear()
    assert (await send()).sent == 4
    again = {r.json()["data"]["event"]["id"]: r.webhook_id for r in receiver.ok("a")}
    assert sorted(again) == [earlier, *events]
    assert all(again[e] == first_ids[e] for e in events)  # the same webhook-id as the first time


async def test_webhook_secret_rotation_signs_with_both_for_a_while(
    client: TestClient[Any, Any], key: str, receiver: WebhookReceiver, factory: Factory, pool: asyncpg.Pool,
    settings: Settings, send: Send,
) -> None:
    await factory.council()
    made = await endpoint(client, key, receiver)
    old = made["secret"]
    resp = await client.post(f"/api/v1/webhooks/{made['id']}/rotate-secret", headers=auth(key))
    rotated = await resp.json()
    new = rotated["secret"]
    assert new != old and new.startswith("whsec_")
    assert datetime.fromisoformat(rotated["previous_secret_expires_at"]) > datetime.now(UTC) + timedelta(hours=23)
    receiver.secrets["a"] = [old, new]
    await factory.event(title="Cabinet")
    await match(pool, settings)
    await send()
    [got] = receiver.received
    assert len(got.headers["webhook-signature"].split()) == 2
    assert set(got.verified_by) == {old, new}  # a receiver holding either secret verifies

    # once the grace period is over, only the new secret signs
    await pool.execute("update webhook_endpoints set previous_secret_expires_at = now() - interval '1 second'")
    await factory.event(title="Scrutiny")
    await match(pool, settings)
    await send()
    latest = receiver.received[-1]
    assert len(latest.headers["webhook-signature"].split()) == 1
    assert latest.verified_by == [new]


async def test_webhook_payload_stays_small_with_a_link_to_the_rest(
    client: TestClient[Any, Any], key: str, receiver: WebhookReceiver, factory: Factory, pool: asyncpg.Pool,
    settings: Settings, send: Send,
) -> None:
    await factory.council()
    await endpoint(client, key, receiver)
    await factory.event(title="Local plan", body="housing " * 20_000,
                        changes={"body": ["x " * 20_000, "y " * 20_000]})
    await match(pool, settings)
    await send()
    [got] = receiver.ok("a")
    assert len(got.body) < MAX_BODY_BYTES
    data = got.json()["data"]
    assert data["item"]["truncated"] is True
    assert data["links"]["item"].endswith(f"/api/v1/items/{data['item']['id']}")


async def test_webhook_target_refused_at_create_and_at_send(
    settings: Settings, pool: asyncpg.Pool, redis: ArqRedis, key: str, factory: Factory, receiver: WebhookReceiver,
    send: Send,
) -> None:
    public = settings.model_copy(update={"webhook_allow_private_targets": False})
    dns = TableResolver({"partner.example": ["93.184.216.34"], "sneaky.example": ["93.184.216.34", "10.0.0.7"]})
    port = receiver.url.rsplit(":", 1)[1]
    async with TestClient(TestServer(create_app(public, resolver=dns))) as client:
        for url in ("http://127.0.0.1/hook", "http://[::ffff:127.0.0.1]/hook", "http://sneaky.example/hook",
                    "http://169.254.169.254/latest/meta-data/", "http://user:pw@partner.example/hook",
                    "gopher://partner.example/hook"):
            resp = await client.post("/api/v1/webhooks", headers=auth(key), json={"url": url})
            assert resp.status == 422, url
            assert (await resp.json())["errors"][0]["field"] == "url"
        resp = await client.post("/api/v1/webhooks", headers=auth(key),
                                 json={"url": f"http://partner.example:{port}/hooks/a"})
        assert resp.status == 201
        made = await resp.json()
        # a URL changed later is checked again
        resp = await client.patch(f"/api/v1/webhooks/{made['id']}", headers=auth(key),
                                  json={"url": "http://10.1.1.1/hook"})
        assert resp.status == 422
    await factory.council()
    await factory.event(title="Cabinet")
    await match(pool, settings)
    # at send time the name answers with the receiver's loopback address: refused, nothing sent
    dns.table["partner.example"] = ["127.0.0.1"]
    result = await send(resolver=dns, webhook_allow_private_targets=False)
    assert result.retried == 1
    assert receiver.received == []
    error = await pool.fetchval("select error from webhook_attempts")
    assert error.startswith("refused:") and "127.0.0.1" in error


async def test_webhook_partners_are_isolated_on_every_verb(
    client: TestClient[Any, Any], key: str, receiver: WebhookReceiver, pool: asyncpg.Pool,
) -> None:
    made = await endpoint(client, key, receiver)
    _, other = await create_partner(pool, "Another newsroom")
    path = f"/api/v1/webhooks/{made['id']}"
    calls = [("GET", path, None), ("PATCH", path, {"description": "mine now"}), ("POST", f"{path}/test", None),
             ("POST", f"{path}/rotate-secret", None), ("POST", f"{path}/enable", None),
             ("POST", f"{path}/replay", {"after": 0}), ("GET", f"{path}/attempts", None), ("DELETE", path, None)]
    for method, url, body in calls:
        resp = await client.request(method, url, headers=auth(other), json=body)
        assert resp.status == 404, (method, url)
        assert resp.content_type == "application/problem+json"
    assert (await (await client.get("/api/v1/webhooks", headers=auth(other))).json()) == {"items": [], "next": None}
    # and all of it still the owner's, unchanged
    row = await pool.fetchrow("select description, previous_secret from webhook_endpoints")
    assert tuple(row) == ("newsroom feed", None)
    assert await pool.fetchval("select count(*) from deliveries") == 0
    for method, url, body in calls:
        resp = await client.request(method, url, headers=auth(key), json=body)
        assert resp.status < 300, (method, url, await resp.text())


async def test_webhook_endpoint_crud(
    client: TestClient[Any, Any], key: str, receiver: WebhookReceiver, factory: Factory, pool: asyncpg.Pool,
) -> None:
    await factory.council()
    await factory.council("rutland")
    first = await endpoint(client, key, receiver, "a")
    second = await endpoint(client, key, receiver, "b", regions=["East Midlands"], query='"mental health"')
    page = await (await client.get("/api/v1/webhooks?limit=1", headers=auth(key))).json()
    assert [e["id"] for e in page["items"]] == [first["id"]] and page["next"]
    page = await (await client.get(f"/api/v1/webhooks?limit=1&cursor={page['next']}", headers=auth(key))).json()
    assert [e["id"] for e in page["items"]] == [second["id"]] and page["next"] is None
    resp = await client.patch(f"/api/v1/webhooks/{first['id']}", headers=auth(key),
                              json={"filter": {"councils": ["rutland"], "query": "dementia"}, "description": None})
    changed = await resp.json()
    assert changed["filter"]["councils"] == ["rutland"] and changed["description"] is None
    resp = await client.patch(f"/api/v1/webhooks/{first['id']}", headers=auth(key),
                              json={"filter": {"query": "(dementia"}})
    assert resp.status == 422 and (await resp.json())["errors"][0]["field"] == "filter.query"
    assert (await client.delete(f"/api/v1/webhooks/{first['id']}", headers=auth(key))).status == 204
    assert (await client.get(f"/api/v1/webhooks/{first['id']}", headers=auth(key))).status == 404
    assert await pool.fetchval("select count(*) from subscriptions where channel = 'webhook'") == 1
