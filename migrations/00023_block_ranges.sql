-- +goose Up
-- A trace's block found by its ID range, not by a GIN index on lows
-- (storage/block.go, byIDQuery): a tenant's blocks of a day are written in
-- trace ID order, so the last one starting at or below a trace's lower
-- half, or one starting with it, is the block that can list it. The GIN
-- index cost an entry a trace, 40-56 bytes for a random bigint: 16 B/span
-- of the 104 a packed day took on the stats generator's 3.5-span traces
-- (docs/BENCHMARKS.md, "... and blocks found by their ID range"). The
-- primary key can serve the lookup; this index, an entry a block of a few
-- hundred traces, leads with tenant and ts so that the planner has a
-- descent to one tenant's blocks where other tenants' interleave.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION zipq_prepare_partition(parent text, part text) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    IF parent = 'span_index' THEN
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I USING gin (keys) WITH (gin_pending_list_limit = 256)', part || '_keys_idx', part);
        EXECUTE format('ALTER INDEX %I SET (gin_pending_list_limit = 256)', part || '_keys_idx');
    ELSIF parent = 'segment_blocks' THEN
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (tenant, ts, trace_id_low)', part || '_range_idx', part);
    END IF;
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
DO $$
DECLARE
    part text;
BEGIN
    FOR part IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'segment_blocks'::regclass
    LOOP
        PERFORM zipq_prepare_partition('segment_blocks', part);
        EXECUTE format('DROP INDEX IF EXISTS %I', part || '_lows_idx');
    END LOOP;
END $$;
-- +goose StatementEnd

-- +goose Down
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

-- +goose StatementBegin
DO $$
DECLARE
    part text;
BEGIN
    FOR part IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'segment_blocks'::regclass
    LOOP
        PERFORM zipq_prepare_partition('segment_blocks', part);
        EXECUTE format('DROP INDEX IF EXISTS %I', part || '_range_idx');
    END LOOP;
END $$;
-- +goose StatementEnd
