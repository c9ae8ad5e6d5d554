"""Types shared by the web process and the worker.

The string enums here are mirrored by CHECK constraints in migrations/0001_initial.sql; each side names the other.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator


class SourceKind(StrEnum):
    """Should match the CHECK on sources.kind."""

    MODERNGOV = "moderngov"
    MODERNGOV_DECISIONS = "moderngov_decisions"
    RSS = "rss"
    ICAL = "ical"
    LEGISTAR = "legistar"


class ItemKind(StrEnum):
    """Should match the CHECK on items.kind."""

    MEETING = "meeting"
    AGENDA_ITEM = "agenda_item"
    DOCUMENT = "document"
    DECISION = "decision"


class EventType(StrEnum):
    """Should match the CHECK on events.type."""

    MEETING_SCHEDULED = "meeting.scheduled"
    MEETING_UPDATED = "meeting.updated"
    MEETING_RESCHEDULED = "meeting.rescheduled"
    MEETING_CANCELLED = "meeting.cancelled"
    AGENDA_PUBLISHED = "agenda.published"
    MINUTES_PUBLISHED = "minutes.published"
    DOCUMENT_PUBLISHED = "document.published"
    DECISION_PUBLISHED = "decision.published"
    DECISION_UPDATED = "decision.updated"


class SubscriberStatus(StrEnum):
    """Should match the CHECK on subscribers.status."""

    PENDING = "pending"
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class Channel(StrEnum):
    """Should match the CHECKs on subscriptions.channel and webhook_endpoints.channel
    (migrations/0004_feeds_websub.sql)."""

    EMAIL = "email"
    WEBHOOK = "webhook"
    FEED = "feed"
    WEBSUB = "websub"


class Frequency(StrEnum):
    """Should match the CHECK on subscriptions.frequency."""

    IMMEDIATE = "immediate"
    DAILY = "daily"
    WEEKLY = "weekly"


class DeliveryStatus(StrEnum):
    """Should match the CHECK on deliveries.status."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


class EndpointStatus(StrEnum):
    """Should match the CHECK on webhook_endpoints.status."""

    ACTIVE = "active"
    DISABLED = "disabled"


class DisabledBy(StrEnum):
    """What disabled an endpoint; should match the CHECK on webhook_endpoints.disabled_by
    (migrations/0008_endpoint_disabled_by.sql). Only `FAILURES` is owed a notice to the partner."""

    FAILURES = "failures"  # every delivery failed for days
    GONE = "gone"  # the receiver answered 410 Gone


# ---- API bodies and shared shapes -----------------------------------------------------------------------------------

class FilterModel(BaseModel):
    """What a subscription follows. Every key is optional; an empty filter follows everything everywhere."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(default="", max_length=1000)
    councils: list[str] = Field(default_factory=list, max_length=500)
    regions: list[str] = Field(default_factory=list, max_length=20)
    committees: list[str] = Field(default_factory=list, max_length=100)
    kinds: list[ItemKind] = Field(default_factory=list)
    event_types: list[EventType] = Field(default_factory=list)

    @field_validator("councils", "regions", "committees")
    @classmethod
    def _strip(cls, values: list[str]) -> list[str]:
        out = []
        for v in values:
            v = v.strip()
            if not v or len(v) > 200:
                raise ValueError("entries must be non-empty and at most 200 characters")
            if v not in out:
                out.append(v)
        return out

    @field_validator("councils")
    @classmethod
    def _lower(cls, values: list[str]) -> list[str]:
        return [v.lower() for v in values]


class SubscriberCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    timezone: str | None = None
    consent: Literal["confirm", "vouched"] = "confirm"


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subscriber_id: int = Field(ge=1, lt=2**63)  # a bigint: a larger number is a 422, not a database error
    filter: FilterModel = Field(default_factory=FilterModel)
    frequency: Frequency = Frequency.IMMEDIATE
    hour: int | None = Field(default=None, ge=0, le=23)
    weekday: int | None = Field(default=None, ge=0, le=6)


class SubscriptionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filter: FilterModel | None = None
    frequency: Frequency | None = None
    hour: int | None = Field(default=None, ge=0, le=23)
    weekday: int | None = Field(default=None, ge=0, le=6)
    paused_until: datetime | None = None


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filter: FilterModel = Field(default_factory=FilterModel)


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000, description="http(s) URL that will receive signed POSTs",
                     examples=["https://partner.example/hooks/notifier"])
    filter: FilterModel = Field(default_factory=FilterModel)
    description: str | None = Field(default=None, max_length=500)


class WebhookPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=1, max_length=2000)
    filter: FilterModel | None = None
    description: str | None = Field(default=None, max_length=500)


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after: int = Field(ge=0, lt=2**63, description="re-send the matching events with ids after this one")
