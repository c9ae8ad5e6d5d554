"""The shapes the API answers with, and the query strings it takes: pydantic models that the handlers fill and the
OpenAPI document is generated from. Request bodies live in notifier/models.py beside the filter they share."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from notifier.models import EndpointStatus, EventType, FilterModel, Frequency, ItemKind, SubscriberStatus

T = TypeVar("T")

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


class Page(BaseModel, Generic[T]):
    """A page of a list; `next` is the cursor for the following page, null on the last."""

    items: list[T]
    next: str | None


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, Any]] | None = Field(default=None, description="each invalid field and why")
    retry_after: int | None = None


# ---- queries ----


def _iso_only(value: Any) -> Any:
    """Query dates are ISO 8601; pydantic alone would also read a bare number as a Unix time."""
    if isinstance(value, str) and value.strip().lstrip("+-").replace(".", "", 1).isdigit():
        raise ValueError("must be an ISO 8601 date or time")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only)]


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(default=None, max_length=100)


class CouncilsQuery(PageQuery):
    region: str | None = Field(default=None, max_length=200)


class MeetingsQuery(PageQuery):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    council: str | None = Field(default=None, max_length=200)
    committee: str | None = Field(default=None, max_length=200, description="committee id or name")
    status: str | None = Field(default=None, max_length=100)
    from_: IsoDateTime | None = Field(default=None, alias="from", description="meetings starting at or after")
    to: IsoDateTime | None = Field(default=None, description="meetings starting before")
    q: str = Field(default="", max_length=1000, description="a query in the topic language")


class ItemsQuery(MeetingsQuery):
    kind: ItemKind | None = None


class EventsQuery(PageQuery):
    after: int = Field(default=0, ge=0, lt=2**63, description="the last event id already seen")
    types: str = Field(default="", max_length=500, description="comma-separated event types")
    council: str | None = Field(default=None, max_length=200)


class SubscriptionsQuery(PageQuery):
    subscriber_id: int | None = Field(default=None, ge=1, lt=2**63)


# ---- answers ----


class SourceHealth(BaseModel):
    id: int
    kind: str
    url: str
    enabled: bool
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_failures: int


class Council(BaseModel):
    slug: str
    name: str
    region: str | None
    nation: str | None
    timezone: str
    website: str | None
    sources: list[SourceHealth]


class Item(BaseModel):
    id: int
    kind: ItemKind
    external_id: str
    council: str
    committee: str | None
    committee_id: str | None
    title: str
    body: str
    starts_at: datetime | None
    published_at: datetime | None
    status: str | None
    url: str | None
    parent_id: int | None
    data: dict[str, Any]
    first_seen_at: datetime
    updated_at: datetime


class BriefLine(BaseModel):
    """A sentence quoted from a council document, where it came from."""

    text: str
    page: int = Field(description="1-based page of the document")
    document_id: int


class ItemBrief(BaseModel):
    """What a meeting (or one document) is about and will decide, in the council's own sentences."""

    purpose: list[BriefLine]
    recommendations: list[BriefLine]
    resolutions: list[BriefLine]
    topics: list[str] = Field(description="the meeting's key phrases; empty for a document")


class ItemDetail(Item):
    brief: ItemBrief | None = Field(description="for a meeting or a document whose text has been read; else null")


class EventItem(BaseModel):
    id: int
    kind: ItemKind
    title: str
    committee: str | None
    starts_at: datetime | None
    status: str | None
    url: str | None


class Event(BaseModel):
    id: int
    type: EventType
    council: str
    occurred_at: datetime
    changes: dict[str, Any]
    summary: str
    item: EventItem


class Subscriber(BaseModel):
    id: int
    email: str
    status: SubscriberStatus
    timezone: str
    created_at: datetime
    confirmed_at: datetime | None


class SubscriberExport(BaseModel):
    """Everything held about a subscriber."""

    subscriber: dict[str, Any]
    subscriptions: list[dict[str, Any]]
    deliveries: list[dict[str, Any]]
    suppression: dict[str, Any] | None
    exported_at: datetime


class Subscription(BaseModel):
    id: int
    subscriber_id: int | None
    filter: FilterModel
    frequency: Frequency
    hour: int | None
    weekday: int | None
    paused_until: datetime | None
    created_at: datetime
    confirmed_at: datetime | None
    feed_url: str


class Snippet(BaseModel):
    """Where in an event's documents a matched term was found."""

    document: str | None
    page: int = Field(description="the page, numbered from 1")
    text: str = Field(description="a short excerpt around the match")


class PreviewItem(BaseModel):
    id: int
    type: EventType
    council: str
    council_name: str
    occurred_at: datetime
    summary: str
    changes: dict[str, Any]
    item_id: int
    kind: ItemKind
    title: str
    committee: str | None
    starts_at: datetime | None
    status: str | None
    url: str | None
    snippets: list[Snippet] = []


class Preview(BaseModel):
    items: list[PreviewItem]
    total: int
    days: int
    weekly_estimate: float
    warning: str | None


class WebhookEndpoint(BaseModel):
    id: int
    url: str
    description: str | None
    filter: FilterModel
    status: EndpointStatus
    disabled_reason: str | None
    disabled_at: datetime | None
    failure_streak: int
    failing_since: datetime | None
    previous_secret_expires_at: datetime | None = Field(description="until when the previous secret also signs")
    created_at: datetime
    updated_at: datetime


class WebhookEndpointCreated(WebhookEndpoint):
    secret: str = Field(description="the signing secret (whsec_…), shown only here")


class SecretRotated(BaseModel):
    id: int
    secret: str = Field(description="the new signing secret, shown only here")
    previous_secret_expires_at: datetime | None


class PingQueued(BaseModel):
    webhook_id: str


class ReplayQueued(BaseModel):
    queued: int = Field(description="deliveries queued")
    after: int
    last_event_id: int | None = Field(description="the last event queued; replay after it for more")
    more: bool = Field(description="whether more matching events follow the last one queued")


class WebhookAttempt(BaseModel):
    id: int
    at: datetime
    webhook_id: str | None
    event_id: int | None
    status_code: int | None
    duration_ms: int | None
    error: str | None
