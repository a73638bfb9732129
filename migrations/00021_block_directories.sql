-- +goose Up
-- A packed trace without its segments row (storage/block.go, "A block's
-- directory"): a member row and its key cost about 140 bytes a trace, 41
-- a span on 3.5-span traces (docs/BENCHMARKS.md, "Packed days: the
-- member rows replaced by block directories"). A block written from here
-- on lists its traces itself: the lower halves of their IDs in lows,
-- where a GIN index finds a trace's block in one probe a day, and the
-- rest of each entry (upper half, date, span count, length) in dir.
-- Blocks packed before keep their member rows and NULL here; readers take
-- both.
ALTER TABLE segment_blocks ADD COLUMN lows bigint[], ADD COLUMN dir bytea;
COMMENT ON COLUMN segment_blocks.lows IS
    'the lower halves of its traces'' IDs, one an entry in block order (storage/block.go); NULL: its traces have member rows in segments';
COMMENT ON COLUMN segment_blocks.dir IS
    'the rest of each entry, in the order of lows: the upper half (8 bytes little endian), then as uvarints the µs from the block''s day to the trace''s date, its span count and its payload''s length (storage/block.go)';

-- Each partition's GIN index, as span_index's (partitions.go): a day's
-- blocks are written once, by its packing.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION zipq_prepare_partition(parent text, part text) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    IF parent = 'span_index' THEN
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I USING gin (keys) WITH (gin_pending_list_limit = 256)', part || '_keys_idx', part);
        EXECUTE format('ALTER INDEX %I SET (gin_pending_list_limit = 256)', part || '_keys_idx');
    ELSIF parent = 'segment_blocks' THEN
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I USING gin (lows) WITH (gin_pending_list_limit = 256)', part || '_lows_idx', part);
    END IF;
END $$;
-- +goose StatementEnd

SELECT zipq_prepare_partition('segment_blocks', c.relname::text)
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'segment_blocks'::regclass;

-- +goose Down
-- Going back would lose the traces packed since: their blocks are the only
-- place that lists them.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM segment_blocks WHERE lows IS NOT NULL) THEN
        RAISE EXCEPTION 'segment_blocks holds days packed with directories: a binary before migration 21 cannot find their traces';
    END IF;
END $$;
-- +goose StatementEnd
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
ALTER TABLE segment_blocks DROP COLUMN lows, DROP COLUMN dir;
