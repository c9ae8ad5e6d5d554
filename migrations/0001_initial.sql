-- The whole data model of DESIGN.md. CHECK lists mirror the enums in notifier/models.py.

create table councils (
    slug        text primary key check (slug ~ '^[a-z0-9][a-z0-9-]*$'),
    name        text not null,
    region      text,
    nation      text,
    timezone    text not null default 'Europe/London',
    website     text,
    created_at  timestamptz not null default now()
);
create index councils_region on councils (region);

create table sources (
    id                    bigserial primary key,
    council               text not null references councils (slug) on delete cascade,
    -- should match SourceKind
    kind                  text not null check (kind in ('moderngov', 'moderngov_decisions', 'rss', 'ical', 'legistar')),
    url                   text not null,
    options               jsonb not null default '{}',
    poll_interval         interval not null default '30 minutes',
    next_poll_at          timestamptz not null default now(),
    etag                  text,
    last_modified         text,
    last_success_at       timestamptz,
    last_error            text,
    last_error_at         timestamptz,
    consecutive_failures  integer not null default 0,
    enabled               boolean not null default true,
    created_at            timestamptz not null default now(),
    unique (council, kind, url)
);
create index sources_due on sources (next_poll_at) where enabled;

create table items (
    id             bigserial primary key,
    source_id      bigint not null references sources (id) on delete cascade,
    -- should match ItemKind
    kind           text not null check (kind in ('meeting', 'agenda_item', 'document', 'decision')),
    external_id    text not null,
    council        text not null references councils (slug) on delete cascade,
    committee      text,
    committee_id   text,
    title          text not null,
    body           text not null default '',
    starts_at      timestamptz,
    published_at   timestamptz,
    status         text,
    url            text,
    parent_id      bigint references items (id) on delete set null,
    data           jsonb not null default '{}',
    content_hash   text not null,
    first_seen_at  timestamptz not null default now(),
    updated_at     timestamptz not null default now(),
    -- built in Python by notifier.topics.text.tsvector_literal, so SQL search folds and stems exactly as the matcher
    search         tsvector not null default ''::tsvector,
    unique (source_id, kind, external_id)
);
create index items_council_starts on items (council, starts_at);
create index items_council_committee on items (council, committee_id);
create index items_kind_starts on items (kind, starts_at);
create index items_parent on items (parent_id);
create index items_updated on items (updated_at);
create index items_search on items using gin (search);

create table events (
    id           bigserial primary key,
    -- should match EventType
    type         text not null check (type in (
                     'meeting.scheduled', 'meeting.updated', 'meeting.rescheduled', 'meeting.cancelled',
                     'agenda.published', 'minutes.published', 'document.published',
                     'decision.published', 'decision.updated')),
    item_id      bigint not null references items (id) on delete cascade,
    council      text not null references councils (slug) on delete cascade,
    occurred_at  timestamptz not null default now(),
    changes      jsonb not null default '{}',
    summary      text not null
);
create index events_item on events (item_id);
create index events_council_id on events (council, id);
create index events_occurred on events (occurred_at);

create table partners (
    id                    bigserial primary key,
    name                  text not null,
    contact_email         text,
    -- sha256 of the key; the key itself is shown once and never stored
    api_key_hash          text not null unique,
    api_key_prefix        text not null,
    rate_limit_per_minute integer not null default 600 check (rate_limit_per_minute > 0),
    created_at            timestamptz not null default now(),
    disabled_at           timestamptz
);

create table subscribers (
    id            bigserial primary key,
    email         text not null,
    -- should match SubscriberStatus
    status        text not null default 'pending'
                  check (status in ('pending', 'active', 'unsubscribed', 'bounced', 'complained')),
    partner_id    bigint references partners (id) on delete cascade,
    timezone      text not null default 'Europe/London',
    created_at    timestamptz not null default now(),
    confirmed_at  timestamptz
);
-- one subscriber per address for the public pages, and one per address per partner
create unique index subscribers_email_public on subscribers (lower(email)) where partner_id is null;
create unique index subscribers_email_partner on subscribers (partner_id, lower(email)) where partner_id is not null;

create table suppressions (
    email   text primary key check (email = lower(email)),
    reason  text not null check (reason in ('unsubscribed', 'bounced', 'complained', 'manual')),
    at      timestamptz not null default now(),
    detail  text
);

create table webhook_endpoints (
    id                 bigserial primary key,
    partner_id         bigint not null references partners (id) on delete cascade,
    url                text not null,
    description        text,
    secret             text not null,
    previous_secret    text,
    previous_secret_expires_at timestamptz,
    -- should match EndpointStatus
    status             text not null default 'active' check (status in ('active', 'disabled')),
    disabled_reason    text,
    failure_streak     integer not null default 0,
    failing_since      timestamptz,
    created_at         timestamptz not null default now()
);
create index webhook_endpoints_partner on webhook_endpoints (partner_id);

create table subscriptions (
    id             bigserial primary key,
    subscriber_id  bigint references subscribers (id) on delete cascade,
    endpoint_id    bigint references webhook_endpoints (id) on delete cascade,
    partner_id     bigint references partners (id) on delete cascade,
    query          text not null default '',
    councils       text[] not null default '{}',
    regions        text[] not null default '{}',
    committees     text[] not null default '{}',
    kinds          text[] not null default '{}',
    event_types    text[] not null default '{}',
    -- should match Channel
    channel        text not null check (channel in ('email', 'webhook', 'feed')),
    -- should match Frequency
    frequency      text not null default 'immediate' check (frequency in ('immediate', 'daily', 'weekly')),
    hour           smallint check (hour between 0 and 23),
    weekday        smallint check (weekday between 0 and 6),
    feed_token     text not null unique,
    paused_until   timestamptz,
    -- email subscriptions made from the public pages wait for the address owner to confirm them
    confirmed_at   timestamptz,
    confirm_sent_at timestamptz,
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now(),
    -- an email subscription belongs to a subscriber, a webhook one to an endpoint
    check ((channel = 'webhook') = (endpoint_id is not null)),
    check (channel <> 'email' or subscriber_id is not null)
);
create index subscriptions_subscriber on subscriptions (subscriber_id);
create index subscriptions_endpoint on subscriptions (endpoint_id);
create index subscriptions_partner on subscriptions (partner_id);

create table deliveries (
    id               bigserial primary key,
    subscription_id  bigint not null references subscriptions (id) on delete cascade,
    event_id         bigint not null references events (id) on delete cascade,
    -- should match DeliveryStatus
    status           text not null default 'pending'
                     check (status in ('pending', 'sending', 'sent', 'failed', 'skipped')),
    attempts         integer not null default 0,
    next_attempt_at  timestamptz not null default now(),
    lease_until      timestamptz,
    last_error       text,
    sent_at          timestamptz,
    message_id       text,
    matched_terms    text[] not null default '{}',
    created_at       timestamptz not null default now(),
    unique (subscription_id, event_id)
);
create index deliveries_due on deliveries (next_attempt_at) where status = 'pending';
create index deliveries_sending on deliveries (lease_until) where status = 'sending';
create index deliveries_event on deliveries (event_id);

create table webhook_attempts (
    id           bigserial primary key,
    delivery_id  bigint references deliveries (id) on delete cascade,
    endpoint_id  bigint not null references webhook_endpoints (id) on delete cascade,
    at           timestamptz not null default now(),
    status_code  integer,
    duration_ms  integer,
    error        text
);
create index webhook_attempts_endpoint on webhook_attempts (endpoint_id, at desc);

create table poll_runs (
    id           bigserial primary key,
    source_id    bigint not null references sources (id) on delete cascade,
    started_at   timestamptz not null,
    duration_ms  integer not null,
    http_status  integer,
    records      integer not null default 0,
    events       integer not null default 0,
    error        text
);
create index poll_runs_source on poll_runs (source_id, started_at desc);

-- cursors of long-running consumers (the matcher's position in events, ...)
create table cursors (
    name        text primary key,
    position    bigint not null default 0,
    updated_at  timestamptz not null default now()
);

-- Every insert, update or delete of a subscription appends its id here, so each worker's in-memory percolator can
-- catch up exactly (including deletions) by reading the changes after the last one it saw.
create table subscription_changes (
    seq              bigserial primary key,
    subscription_id  bigint not null,
    at               timestamptz not null default now()
);

create function note_subscription_change() returns trigger language plpgsql as $$
begin
    insert into subscription_changes (subscription_id)
    values (case when tg_op = 'DELETE' then old.id else new.id end);
    perform pg_notify('notifier_subscriptions', (case when tg_op = 'DELETE' then old.id else new.id end)::text);
    return null;
end;
$$;

create trigger subscriptions_changed
    after insert or update or delete on subscriptions
    for each row execute function note_subscription_change();
