-- WebSub (https://www.w3.org/TR/websub/): notifier is the hub for its own feeds.
--
-- A WebSub subscription is a push endpoint like a partner's webhook endpoint, owned by no partner: a
-- webhook_endpoints row of channel 'websub' (url = the subscriber's hub.callback, secret = its hub.secret or '',
-- topic = the feed URL, lease_expires_at) with a subscriptions row of channel 'websub' holding the topic feed's
-- filter. So the matcher makes its deliveries, and the one sender claims, signs, sends, retries and records them,
-- exactly as for webhooks: the same outbox, target checks, attempts log and endpoint health.

-- should match Channel (notifier/models.py)
alter table subscriptions drop constraint subscriptions_channel_check;
alter table subscriptions add constraint subscriptions_channel_check
    check (channel in ('email', 'webhook', 'feed', 'websub'));
-- a webhook or WebSub subscription belongs to an endpoint
alter table subscriptions drop constraint subscriptions_check;
alter table subscriptions add constraint subscriptions_endpoint_check
    check ((channel in ('webhook', 'websub')) = (endpoint_id is not null));

alter table webhook_endpoints
    alter column partner_id drop not null,
    -- should match Channel: the channel of the endpoint's subscription
    add column channel text not null default 'webhook' check (channel in ('webhook', 'websub')),
    add column topic text,
    add column lease_expires_at timestamptz,
    add constraint webhook_endpoints_owner_check
        check ((channel = 'webhook') = (partner_id is not null)
               and (channel = 'websub') = (topic is not null and lease_expires_at is not null));
-- one subscription per callback and topic (a repeated subscribe renews it)
create unique index webhook_endpoints_websub on webhook_endpoints (topic, url) where channel = 'websub';
create index webhook_endpoints_websub_lease on webhook_endpoints (lease_expires_at) where channel = 'websub';

-- Subscribe and unsubscribe requests waiting for the callback to confirm them (the GET challenge, in a job).
create table websub_requests (
    id             bigserial primary key,
    mode           text not null check (mode in ('subscribe', 'unsubscribe')),
    topic          text not null,
    callback       text not null,
    secret         text,
    lease_seconds  integer not null,
    -- the topic feed's filter, as the hub read it from the topic URL (a FilterModel)
    filter         jsonb not null default '{}',
    requested_at   timestamptz not null default now(),
    -- set once the request is settled: verified and applied, or refused by the callback
    done_at        timestamptz,
    outcome        text
);
create index websub_requests_open on websub_requests (requested_at) where done_at is null;
