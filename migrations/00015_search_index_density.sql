-- +goose Up
-- The search index, smaller (docs/BENCHMARKS.md, "A smaller search index").
--
-- A key=value term's key is folded from here on (storage/indexkeys.go,
-- termKey): its high bits hash the tag key, its low 14 the whole term, so
-- a tag with a new value per span shares GIN entries instead of making one
-- per span. Rows written before keep whole-term keys; search asks for
-- either form, so nothing is rewritten.
COMMENT ON COLUMN span_index.keys IS
    'sorted 32-bit hashes of what search matches on (storage/indexkeys.go): service, remote service, span name and annotationQuery terms, each with its own prefix; a key=value term''s high 18 bits hash its key (since migration 00015)';

-- Each partition's GIN index keeps a pending list of 256 kB instead of the
-- server's default 4 MB (gin_pending_list_limit): once flushed, its pages
-- stay in the index's file, so every day partition carried up to 4 MB of
-- free pages, 70 B/span on a 60k-span day and 20 on a 240k one, while
-- writes measured no slower. fastupdate off would save the rest but made
-- writes 1.3–1.7× slower.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION zipq_prepare_partition(parent text, part text) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    IF parent = 'span_index' THEN
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I USING gin (keys) WITH (gin_pending_list_limit = 256)', part || '_keys_idx', part);
        EXECUTE format('ALTER INDEX %I SET (gin_pending_list_limit = 256)', part || '_keys_idx');
    END IF;
END $$;
-- +goose StatementEnd

-- The day partitions made so far; the default partition's index has its
-- own name.
SELECT zipq_prepare_partition('span_index', c.relname::text)
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'span_index'::regclass AND c.relname <> 'span_index_other';
ALTER INDEX span_index_other_keys SET (gin_pending_list_limit = 256);

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION zipq_prepare_partition(parent text, part text) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    IF parent = 'span_index' THEN
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I USING gin (keys)', part || '_keys_idx', part);
    END IF;
END $$;
-- +goose StatementEnd
ALTER INDEX span_index_other_keys RESET (gin_pending_list_limit);
COMMENT ON COLUMN span_index.keys IS
    'sorted 32-bit hashes of what search matches on (storage/text.go): service, remote service, span name and annotationQuery terms, each with its own prefix';
