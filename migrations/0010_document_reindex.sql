-- A poll that rewrites an item's search vector from its own text (its title changed, say) takes its document's words
-- out again; they go back in from the stored text, without downloading the document again. `reindex` marks such a
-- pending document: the next pass rebuilds the item's search vector from `pages` and downloads nothing (before,
-- it downloaded the document again, and a server sending no validators sent all of it).
alter table document_texts add column reindex boolean not null default false;

create or replace function note_document_item() returns trigger language plpgsql as $$
begin
    if new.kind <> 'document' or new.url is null then
        return null;
    end if;
    insert into document_texts (item_id, url, declared_size)
    values (new.id, new.url, case when new.data ->> 'size' ~ '^[0-9]{1,18}$' then (new.data ->> 'size')::bigint end)
    on conflict (item_id) do update
    set url = excluded.url, declared_size = excluded.declared_size, state = 'pending', attempts = 0,
        next_attempt_at = now(), lease_until = null, error = null, error_reason = null, updated_at = now(),
        -- the same document, still ready: only its words go back into the item's search vector
        reindex = document_texts.url = excluded.url
                  and document_texts.declared_size is not distinct from excluded.declared_size
                  and document_texts.state = 'ready' and document_texts.pages is not null,
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
