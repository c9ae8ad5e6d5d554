-- Who holds a claim, and whether they are still alive.
--
-- A claimed delivery names its holder: the worker's id, which is also the application_name of every connection in
-- that worker's pool (see notifier/leases.py). A live worker beats in worker_heartbeats; a starting worker and the
-- sweeper hand back the claims of holders whose beat has stopped, without waiting for the leases to run out.
alter table deliveries add column lease_holder text;

create table worker_heartbeats (
    worker_id   text primary key,
    host        text not null default '',
    pid         integer not null default 0,
    started_at  timestamptz not null default now(),
    beat_at     timestamptz not null default now()
);

-- time to alert over recent deliveries (notifier/delivery/timing.py)
create index deliveries_sent_at on deliveries (sent_at) where status = 'sent';
