-- +goose Up
-- Partition DDL lives here, not in Go: storage/partitions.go only calls
-- these functions for each day and table. Changing what a daily partition
-- carries (an index, say) is one migration that redefines
-- zipq_prepare_partition and runs it over the existing partitions.

-- zipq_prepare_partition gives one daily partition what its parent cannot
-- carry itself: span_index's GIN on keys lives on each partition (Citus
-- columnar partitions cannot have it, so it must not be on the parent).
-- Idempotent: PostgreSQL names the index <partition>_keys_idx.
-- +goose StatementBegin
CREATE FUNCTION zipq_prepare_partition(parent text, part text) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    IF parent = 'span_index' THEN
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I USING gin (keys)', part || '_keys_idx', part);
    END IF;
END $$;
-- +goose StatementEnd

-- zipq_ensure_partition creates <parent>_pYYYYMMDD for one UTC day unless
-- it exists, and reports whether it did. Rows that reached the default
-- partition for that day are moved into it first: PostgreSQL refuses to
-- attach over rows the default holds.
-- +goose StatementBegin
CREATE FUNCTION zipq_ensure_partition(parent text, d date) RETURNS boolean
    LANGUAGE plpgsql AS $$
DECLARE
    part text := parent || '_p' || to_char(d, 'YYYYMMDD');
    lo timestamptz := d::timestamp AT TIME ZONE 'UTC';
    hi timestamptz := (d + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
    IF to_regclass(quote_ident(part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)', part, parent);
    EXECUTE format('WITH moved AS (DELETE FROM %I WHERE ts >= $1 AND ts < $2 RETURNING *) INSERT INTO %I SELECT * FROM moved',
        parent || '_other', part) USING lo, hi;
    PERFORM zipq_prepare_partition(parent, part);
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', parent, part, lo, hi);
    RETURN true;
END $$;
-- +goose StatementEnd

-- zipq_drop_partitions_before drops whole daily partitions of parent that
-- end at or before cutoff (retention never deletes row by row) and returns
-- their names; the default partition's rows older than cutoff are deleted.
-- +goose StatementBegin
CREATE FUNCTION zipq_drop_partitions_before(parent text, cutoff timestamptz) RETURNS SETOF text
    LANGUAGE plpgsql AS $$
DECLARE
    part text;
BEGIN
    FOR part IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = to_regclass(quote_ident(parent)) AND c.relname ~ ('^' || parent || '_p[0-9]{8}$')
          AND (to_date(right(c.relname, 8), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC' <= cutoff
    LOOP
        EXECUTE format('DROP TABLE %I', part);
        RETURN NEXT part;
    END LOOP;
    -- Rows dated 'epoch' are undated spans stored before they took their
    -- arrival time instead: they have no age to expire by.
    EXECUTE format('DELETE FROM %I WHERE ts < $1 AND ts > ''epoch''', parent || '_other') USING cutoff;
END $$;
-- +goose StatementEnd

-- Existing partitions follow the definition.
SELECT zipq_prepare_partition(p.relname, c.relname)
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
WHERE p.relname IN ('segments', 'span_index') AND p.relnamespace = current_schema()::regnamespace
  AND c.relname ~ '_p[0-9]{8}$';

-- What a SQL user cannot guess from the columns.
COMMENT ON COLUMN segments.trace_id_low IS
    'lower 64 bits of the trace id as a signed bigint (ids from 8000000000000000 are negative); the Citus distribution column';
COMMENT ON COLUMN segments.trace_id_high IS 'upper 64 bits of a 128-bit trace id as a signed bigint; 0 for 64-bit ids';
COMMENT ON COLUMN segments.ts IS
    'earliest start among its dated spans; a segment of only undated spans, or dated over 24 h after arrival (a clock sending ns), is dated by its arrival so retention expires it. ''epoch'' only in rows stored before that rule';
COMMENT ON COLUMN segments.seg_uid IS 'xxhash64 of the uncompressed payload: a byte-identical redelivery inserts nothing';
COMMENT ON COLUMN segments.dict IS 'id of the zstd dictionary data was compressed with (storage/dict), 0 = none';
COMMENT ON COLUMN segments.data IS
    'zstd of a proto3 ListOfSpans (zipkin.proto) of canonical spans: kind and every id as zipkin.proto encodes them (kind 1 CLIENT, 2 SERVER, 3 PRODUCER, 4 CONSUMER)';
COMMENT ON COLUMN span_index.keys IS
    'sorted 32-bit hashes of what search matches on (storage/text.go): service, remote service, span name and annotationQuery terms, each with its own prefix';
COMMENT ON COLUMN span_index.ts_max IS 'latest start among the row''s spans, within a minute of ts: search walks newest first by it';
COMMENT ON COLUMN span_index.dur_min IS 'shortest duration (µs) among the row''s spans; NULL when none has one';
COMMENT ON COLUMN span_index.dur_max IS 'longest duration (µs) among the row''s spans; NULL when none has one';
COMMENT ON COLUMN link_pending.edges IS
    'links the marked segment alone gives (storage/links.go), used when the trace has only that segment; NULL: read the trace';
COMMENT ON COLUMN dependency_links.pair_h IS 'zipq_key(parent, child)';
COMMENT ON COLUMN span_names.pair_h IS 'zipq_key(service, name)';
COMMENT ON COLUMN remote_services.pair_h IS 'zipq_key(service, remote)';
COMMENT ON COLUMN autocomplete_tags.pair_h IS 'zipq_key(key, value)';

-- Cheap checks of the encodings.
ALTER TABLE span_index ADD CONSTRAINT span_index_durations CHECK (dur_min >= 0 AND dur_min <= dur_max);
-- (dependency_links gets none on its counts: the linker upserts deltas,
-- and PostgreSQL checks the proposed row, negative, before ON CONFLICT.)
ALTER TABLE trace_links ADD CONSTRAINT trace_links_edges CHECK (octet_length(edges) % 16 = 0);

-- +goose Down
ALTER TABLE trace_links DROP CONSTRAINT trace_links_edges;
ALTER TABLE span_index DROP CONSTRAINT span_index_durations;
DROP FUNCTION zipq_drop_partitions_before(text, timestamptz);
DROP FUNCTION zipq_ensure_partition(text, date);
DROP FUNCTION zipq_prepare_partition(text, text);
