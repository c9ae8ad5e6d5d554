-- A poll of a source holds a short lease on it, renewed while it runs, instead of a session advisory lock: the lock
-- tied a pooled connection to the poll from start to end, network waits included, so a worker's pool (10) and not
-- its jobs at once (20) bounded how many councils it polled at once. A worker that dies leaves the lease to run out.
alter table sources add column poll_lease_until timestamptz;
