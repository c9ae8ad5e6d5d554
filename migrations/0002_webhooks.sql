-- Signed webhooks and the partner API's keys: rotation with a grace period, revocation, endpoints that are
-- disabled and re-enabled, test pings through the outbox, and an attempts log partners can read.

-- A rotated key keeps working until previous_key_expires_at; a revoked partner (disabled_at) has no working key.
alter table partners
    add column previous_key_hash        text,
    add column previous_key_expires_at  timestamptz,
    add column key_rotated_at           timestamptz;
create unique index partners_previous_key on partners (previous_key_hash) where previous_key_hash is not null;

alter table webhook_endpoints
    add column disabled_at       timestamptz,
    -- the partner's contact was told the endpoint was disabled (at most once a disablement)
    add column disabled_notice_sent_at timestamptz,
    add column updated_at        timestamptz not null default now();

-- A delivery is one message owed on one subscription's channel. Most carry an event; a webhook endpoint's test ping
-- carries no event, only its payload. The unique (subscription_id, event_id) still holds for every event.
alter table deliveries
    alter column event_id drop not null,
    add column payload jsonb,
    add constraint deliveries_event_or_payload check (event_id is not null or payload is not null);
-- pending deliveries of one subscription, for replays and for claiming by endpoint
create index deliveries_pending_subscription on deliveries (subscription_id, next_attempt_at) where status = 'pending';

alter table webhook_attempts
    add column webhook_id   text,
    add column event_id     bigint;
create index webhook_attempts_endpoint_id on webhook_attempts (endpoint_id, id desc);
drop index webhook_attempts_endpoint;
