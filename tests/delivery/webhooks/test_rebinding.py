"""The connection goes to the address the checking resolver checked: one DNS lookup a connection, made through the
resolver the connector uses, so a DNS server that answers differently the next time (DNS rebinding) is never asked
again between the check and the connect."""

from __future__ import annotations

import socket

import asyncpg
from aiohttp.abc import ResolveResult

from notifier.delivery.webhooks.endpoints import create as create_endpoint
from notifier.delivery.webhooks.sender import PassResult, WebhookSender
from notifier.matching.matcher import SubscriptionIndex, match_events
from notifier.models import FilterModel
from notifier.partners import create_partner
from notifier.settings import Settings
from tests.delivery.webhooks.resolver import TableResolver
from tests.factories import Factory
from tests.servers import WebhookReceiver

HOST = "hooks.partner.example"


class RebindingResolver(TableResolver):
    """Answers a name from the table once; every later lookup of it gets `later` (the receiver listens only on
    127.0.0.1, so a connection to 127.0.0.2 is refused)."""

    def __init__(self, table: dict[str, list[str]], later: list[str]) -> None:
        super().__init__(table)
        self.later = later

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await super().resolve(host, port, family)
        self.table[host] = self.later
        return answers


async def one_pass(settings: Settings, pool: asyncpg.Pool, dns: RebindingResolver) -> PassResult:
    """A sending pass of a new sender: its own connector, so nothing is cached from an earlier pass."""
    sender = WebhookSender.create(settings, pool, resolver=dns)
    try:
        return await sender.send_due()
    finally:
        await sender.close()


async def test_webhook_connects_to_the_address_it_looked_up_once(
    settings: Settings, pool: asyncpg.Pool, factory: Factory, receiver: WebhookReceiver,
) -> None:
    assert settings.webhook_allow_private_targets  # 127.0.0.1, the receiver, is allowed here
    council = await factory.council()
    partner_id, _ = await create_partner(pool, "Newsroom")
    port = receiver.url.rsplit(":", 1)[1]
    _, secret = await create_endpoint(pool, partner_id, f"http://{HOST}:{port}/hooks/a",
                                      FilterModel(councils=[council]), None)
    receiver.secrets["a"] = [secret]
    dns = RebindingResolver({HOST: ["127.0.0.1"]}, later=["127.0.0.2"])

    await factory.event(title="Cabinet")
    await match_events(pool, SubscriptionIndex(), settings)
    assert (await one_pass(settings, pool, dns)).sent == 1
    # one lookup, and the connection went to its answer: a second lookup would have been told 127.0.0.2
    assert dns.lookups == [HOST]
    assert len(receiver.ok("a")) == 1

    # and the address connected to is the one the lookup gave: the next delivery, looked up afresh, goes to
    # 127.0.0.2, where nothing listens
    await factory.event(title="Scrutiny")
    await match_events(pool, SubscriptionIndex(), settings)
    assert (await one_pass(settings, pool, dns)).retried == 1
    assert dns.lookups == [HOST, HOST]
    assert len(receiver.received) == 1
    error = await pool.fetchval("select error from webhook_attempts order by id desc limit 1")
    assert "127.0.0.2" in error
