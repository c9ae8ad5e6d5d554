-- Meeting briefs: each document's purpose, recommendations and resolutions, quoted from its text
-- (notifier/documents/briefs.py), built by the `build_briefs` job once the text is ready and again when it changes.

create table document_briefs (
    item_id     bigint primary key references items (id) on delete cascade,
    -- document_texts.content_hash the brief was built from: a different hash means the text changed
    text_hash   text not null,
    -- Brief.to_dict(): {"purpose": [{"text", "page"}], "recommendations": [...], "resolutions": [...],
    -- "first_paragraph": {"text", "page"} | null}
    brief       jsonb not null,
    -- the document's candidate key phrases (notifier/documents/phrases.py), as counted in phrase_counts
    phrases     text[] not null default '{}',
    built_at    timestamptz not null default now()
);

-- In how many documents each candidate phrase appears, across every council: what makes a meeting's phrases its own.
create table phrase_counts (
    phrase     text primary key,
    documents  integer not null check (documents >= 0)
);
