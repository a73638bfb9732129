-- +goose Up
-- A key=value term's key is folded from here on (storage/indexkeys.go,
-- termKey): its high bits hash the tag key, its low 14 the whole term, so
-- a tag with a new value per span shares GIN entries instead of making one
-- per span. Rows written before keep whole-term keys; search asks for
-- either form, so nothing is rewritten.
COMMENT ON COLUMN span_index.keys IS
    'sorted 32-bit hashes of what search matches on (storage/indexkeys.go): service, remote service, span name and annotationQuery terms, each with its own prefix; a key=value term''s high 18 bits hash its key (since migration 00015)';

-- +goose Down
COMMENT ON COLUMN span_index.keys IS
    'sorted 32-bit hashes of what search matches on (storage/text.go): service, remote service, span name and annotationQuery terms, each with its own prefix';
