"""Factories with good defaults, so a test reads as a story: `await factory.council("rutland")`."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from notifier.ingest.normalise import content_hash
from notifier.models import ItemKind
from notifier.sources.base import Record
from notifier.topics.text import tsvector_literal


class Factory:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def council(
        self, slug: str = "leicestershire", name: str | None = None, region: str | None = "East Midlands"
    ) -> str:
        await self.pool.execute(
            "insert into councils (slug, name, region, nation) values ($1, $2, $3, 'England') on conflict do nothing",
            slug,
            name or slug.replace("-", " ").title() + " Council",
            region,
        )
        return slug

    async def source(
        self, council: str = "leicestershire", kind: str = "moderngov", url: str | None = None, **columns: Any
    ) -> int:
        await self.council(council)
        source_id: int = await self.pool.fetchval(
            "insert into sources (council, kind, url) values ($1, $2, $3) returning id",
            council,
            kind,
            url or f"https://{council}.example.org/{secrets.token_hex(3)}",
        )
        for column, value in columns.items():
            await self.pool.execute(f"update sources set {column} = $2 where id = $1", source_id, value)
        return source_id

    async def item(
        self,
        *,
        source_id: int | None = None,
        council: str = "leicestershire",
        kind: str = "meeting",
        title: str = "Health and Wellbeing Board",
        body: str = "",
        committee: str | None = "Health and Wellbeing Board",
        starts_at: datetime | None = None,
        status: str | None = "confirmed",
        url: str | None = None,
        data: dict[str, Any] | None = None,
        external_id: str | None = None,
    ) -> int:
        if source_id is None:
            source_id = await self.source(council)
        record = Record(
            kind=ItemKind(kind),
            external_id=external_id or secrets.token_hex(4),
            title=title,
            committee=committee,
            body=body,
            starts_at=starts_at,
            status=status,
            url=url,
            data=data or {},
        )
        item_id: int = await self.pool.fetchval(
            """
            insert into items (source_id, kind, external_id, council, committee, title, body, starts_at, status, url,
                               data, content_hash, search)
            values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::text::jsonb, $12, $13::tsvector)
            returning id
            """,
            source_id,
            kind,
            record.external_id,
            council,
            committee,
            title,
            body,
            starts_at,
            status,
            url,
            json.dumps(data or {}),
            content_hash(record),
            tsvector_literal(f"{title}\n{committee or ''}\n{body}"),
        )
        return item_id

    async def event(
        self,
        *,
        item_id: int | None = None,
        type: str = "meeting.scheduled",
        council: str = "leicestershire",
        summary: str | None = None,
        changes: dict[str, Any] | None = None,
        occurred_at: datetime | None = None,
        **item: Any,
    ) -> int:
        if item_id is None:
            item_id = await self.item(council=council, **item)
        event_id: int = await self.pool.fetchval(
            """
            insert into events (type, item_id, council, occurred_at, changes, summary)
            values ($1, $2, $3, $4, $5::text::jsonb, $6) returning id
            """,
            type,
            item_id,
            council,
            occurred_at or datetime.now(UTC),
            json.dumps(changes or {}),
            summary or f"{item.get('title', 'Health and Wellbeing Board')}: {type}",
        )
        return event_id

    async def subscriber(
        self,
        email: str = "resident@example.org",
        *,
        status: str = "active",
        timezone: str = "Europe/London",
        partner_id: int | None = None,
    ) -> int:
        subscriber_id: int = await self.pool.fetchval(
            """
            insert into subscribers (email, status, timezone, partner_id, confirmed_at)
            values ($1, $2, $3, $4, case when $2 = 'active' then now() end) returning id
            """,
            email,
            status,
            timezone,
            partner_id,
        )
        return subscriber_id

    async def subscription(
        self,
        subscriber_id: int,
        *,
        query: str = "",
        councils: list[str] | None = None,
        regions: list[str] | None = None,
        frequency: str = "immediate",
        hour: int | None = None,
        weekday: int | None = None,
        confirmed: bool = True,
        created_at: datetime | None = None,
        partner_id: int | None = None,
    ) -> int:
        subscription_id: int = await self.pool.fetchval(
            """
            insert into subscriptions (subscriber_id, query, councils, regions, channel, frequency, hour, weekday,
                                       feed_token, confirmed_at, created_at, partner_id)
            values ($1, $2, $3, $4, 'email', $5, $6, $7, $8, case when $9 then now() end, $10, $11) returning id
            """,
            subscriber_id,
            query,
            councils or [],
            regions or [],
            frequency,
            hour,
            weekday,
            secrets.token_urlsafe(16),
            confirmed,
            created_at or datetime.now(UTC) - timedelta(days=1),
            partner_id,
        )
        return subscription_id
