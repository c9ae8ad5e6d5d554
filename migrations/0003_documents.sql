-- The text of published documents (PDF, Word, HTML), downloaded and extracted by the `fetch_documents` job
-- (notifier/ingest/documents.py), and the events that wait a bounded time for it before they are matched.

-- One row per document item with a URL. A trigger on items (below) adds it when the item is new and sets it pending
-- again when the item's URL or declared size changes, in the poll's own transaction: the matcher never sees a
-- document event before the row that says its text is coming.
create table document_texts (
    item_id          bigint primary key references items (id) on delete cascade,
    -- should match DocumentState in notifier/ingest/documents.py
    state            text not null default 'pending' check (state in ('pending', 'fetching', 'ready', 'failed')),
    url              text not null,
    -- the size the source declared (items.data->>'size'), when it gives one
    declared_size    bigint,
    -- validators of the last answer, for a conditional GET
    etag             text,
    last_modified    text,
    -- sha256 hex of the bytes last extracted: the same bytes are never extracted twice
    content_hash     text,
    bytes            bigint,
    -- should match Kind in notifier/documents/extract.py
    kind             text check (kind in ('pdf', 'docx', 'html', 'text')),
    pages            text[] not null default '{}',
    truncated        boolean not null default false,
    attempts         integer not null default 0,
    next_attempt_at  timestamptz not null default now(),
    lease_until      timestamptz,
    -- ExtractionError.reason (encrypted, no_text_layer, corrupt, too_large, ...) or 'download'
    error_reason     text,
    error            text,
    extracted_at     timestamptz,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now()
);
create index document_texts_due on document_texts (next_attempt_at) where state = 'pending';
create index document_texts_fetching on document_texts (lease_until) where state = 'fetching';

create function note_document_item() returns trigger language plpgsql as $$
begin
    if new.kind <> 'document' or new.url is null then
        return null;
    end if;
    insert into document_texts (item_id, url, declared_size)
    values (new.id, new.url, case when new.data ->> 'size' ~ '^[0-9]{1,18}$' then (new.data ->> 'size')::bigint end)
    on conflict (item_id) do update
    set url = excluded.url, declared_size = excluded.declared_size, state = 'pending', attempts = 0,
        next_attempt_at = now(), lease_until = null, error = null, error_reason = null, updated_at = now(),
        -- validators belong to the old URL
        etag = case when document_texts.url = excluded.url then document_texts.etag end,
        last_modified = case when document_texts.url = excluded.url then document_texts.last_modified end
    where document_texts.url is distinct from excluded.url
       or document_texts.declared_size is distinct from excluded.declared_size
       -- a poll rewrote the item's search vector from its own text: the document's words go back in
       or (tg_op = 'UPDATE' and new.search is distinct from old.search and document_texts.state = 'ready');
    return null;
end;
$$;

create trigger items_document_text
    after insert or update of url, data, search on items
    for each row execute function note_document_item();

-- Events held back by the matcher until their documents' text is stored, or until `until` (a bounded wait).
create table held_events (
    event_id  bigint primary key references events (id) on delete cascade,
    until     timestamptz not null,
    held_at   timestamptz not null default now()
);
create index held_events_until on held_events (until);

-- Where in its documents a delivery's terms were found: [{"document", "page", "text"}, ...].
alter table deliveries add column snippets jsonb not null default '[]';
