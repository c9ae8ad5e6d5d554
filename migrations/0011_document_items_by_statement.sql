-- New document items get their document_texts row from one statement-level trigger per insert statement, not from
-- a PL/pgSQL call per row: a poll inserts thousands of papers at once, and the per-row trigger was the largest
-- single part of PostgreSQL's work on them (more than the rows' own index entries). What it writes is the same:
-- one pending row per new document item with a URL, in the inserting statement's transaction. An update of an
-- item's URL, data or search vector still goes through the row trigger of 0003/0010 (transition tables cannot be
-- given for an UPDATE OF column list), and so does the update half of an INSERT ... ON CONFLICT DO UPDATE.
drop trigger items_document_text on items;

create trigger items_document_text
    after update of url, data, search on items
    for each row execute function note_document_item();

create function note_document_items_inserted() returns trigger language plpgsql as $$
begin
    -- What note_document_item() does for each inserted row, for all of them at once.
    insert into document_texts (item_id, url, declared_size)
    select i.id, i.url, case when i.data ->> 'size' ~ '^[0-9]{1,18}$' then (i.data ->> 'size')::bigint end
    from inserted_items i
    where i.kind = 'document' and i.url is not null
    on conflict (item_id) do update
    set url = excluded.url, declared_size = excluded.declared_size, state = 'pending', attempts = 0,
        next_attempt_at = now(), lease_until = null, error = null, error_reason = null, updated_at = now(),
        reindex = document_texts.url = excluded.url
                  and document_texts.declared_size is not distinct from excluded.declared_size
                  and document_texts.state = 'ready' and document_texts.pages is not null,
        etag = case when document_texts.url = excluded.url then document_texts.etag end,
        last_modified = case when document_texts.url = excluded.url then document_texts.last_modified end
    where document_texts.url is distinct from excluded.url
       or document_texts.declared_size is distinct from excluded.declared_size;
    return null;
end;
$$;

create trigger items_document_text_inserted
    after insert on items
    referencing new table as inserted_items
    for each statement execute function note_document_items_inserted();
