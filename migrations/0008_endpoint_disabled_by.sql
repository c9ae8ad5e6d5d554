-- What disabled a webhook endpoint (should match DisabledBy in notifier/models.py). Only an endpoint disabled for
-- failing every delivery for days is owed a notice to its partner; one that answered 410 Gone said so itself.
alter table webhook_endpoints
    add column disabled_by text check (disabled_by in ('failures', 'gone'));
update webhook_endpoints
set disabled_by = case when disabled_reason like '%410%' then 'gone' else 'failures' end
where status = 'disabled';
-- the sweeper's look for notices owed
create index webhook_endpoints_notice_owed on webhook_endpoints (id)
    where status = 'disabled' and disabled_by = 'failures' and disabled_notice_sent_at is null;
