-- +goose Up
-- Packed days (storage/pack.go): once a day has closed, its traces are
-- merged and compressed dozens to a block instead of one zstd frame each
-- (docs/BENCHMARKS.md, "Segment layouts side by side": OTel-like spans
-- 97 → 72 bytes a span of payload). Each trace keeps its segments row, as
-- a member of a block: its data is a reference into the block. Every
-- reader still finds a trace by one probe of the segments key, then one
-- of the blocks' key; the linker's and compactor's counts of a trace's
-- rows are unchanged. No column is added to segments: a nullable one
-- would give every row a null bitmap (8 bytes more a row today).
CREATE TABLE segment_blocks (
    trace_id_low bigint      NOT NULL, -- its first member's: the Citus distribution column
    tenant       smallint    NOT NULL,
    ts           timestamptz NOT NULL, -- the start of its day
    block_uid    bigint      NOT NULL,
    dict         smallint    NOT NULL CHECK (dict >= 0),
    data         bytea       NOT NULL,
    PRIMARY KEY (trace_id_low, tenant, ts, block_uid)
) PARTITION BY RANGE (ts);
-- Already compressed: TOAST would only try again.
ALTER TABLE segment_blocks ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE TABLE segment_blocks_other PARTITION OF segment_blocks DEFAULT;
COMMENT ON TABLE segment_blocks IS
    'a closed day''s traces packed: zstd of their ListOfSpans payloads one after another (storage/pack.go); their segments rows refer into them';
COMMENT ON COLUMN segment_blocks.block_uid IS 'xxhash64 of the uncompressed block';
COMMENT ON COLUMN segment_blocks.dict IS 'id of the zstd dictionary data was compressed with (storage/dict), 0 = none';

COMMENT ON COLUMN segments.data IS
    'zstd of a proto3 ListOfSpans (zipkin.proto) of canonical spans: kind and every id as zipkin.proto encodes them (kind 1 CLIENT, 2 SERVER, 3 PRODUCER, 4 CONSUMER); in a packed day, a reference to the segment_blocks row holding it instead: a 0 byte (no zstd frame starts so), then the block''s first trace_id_low and block_uid and the payload''s offset and length in the uncompressed block (storage/block.go)';

-- packed_days: the days packed, with the bytes of their partitions before
-- and after, so a day is packed once.
CREATE TABLE packed_days (
    day          date        PRIMARY KEY,
    packed_at    timestamptz NOT NULL,
    traces       bigint      NOT NULL,
    blocks       bigint      NOT NULL,
    bytes_before bigint      NOT NULL, -- the day's segments partition, before
    bytes_after  bigint      NOT NULL  -- and its segments and segment_blocks partitions after
);
COMMENT ON TABLE packed_days IS 'days whose traces were packed into segment_blocks (storage/pack.go)';

-- Every day with a segments partition gets its blocks partition, so the
-- jobs walking a day's partitions (thinning, budgets) find all of them.
SELECT zipq_ensure_partition('segment_blocks', to_date(right(c.relname, 8), 'YYYYMMDD'))
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'segments'::regclass AND c.relname ~ '_p[0-9]{8}$';

-- A day's rewrite (thinning, budgets) keeps its blocks whole: a thinned
-- trace's members go with its segments rows, and its bytes in a block
-- stay, unreachable, until the day is dropped. Packing waits for
-- thinning, so this happens only to days packed before a policy was set.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION zipq_rewrite_partition(parent text, d date, OUT bytes_before bigint, OUT bytes_after bigint)
    LANGUAGE plpgsql AS $$
DECLARE
    part text := parent || '_p' || to_char(d, 'YYYYMMDD');
    fresh text := part || '_thin';
    lo timestamptz := d::timestamp AT TIME ZONE 'UTC';
    hi timestamptz := (d + 1)::timestamp AT TIME ZONE 'UTC';
    idx text;
BEGIN
    bytes_before := pg_total_relation_size(quote_ident(part)::regclass);
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)', fresh, parent);
    IF parent = 'segment_blocks' THEN
        EXECUTE format('INSERT INTO %I SELECT * FROM %I ORDER BY trace_id_low', fresh, part);
    ELSE
        EXECUTE format('INSERT INTO %I SELECT p.* FROM %I p WHERE NOT EXISTS (SELECT 1 FROM thinned_traces t
            WHERE t.day = $1 AND t.trace_id_low = p.trace_id_low AND t.trace_id_high = p.trace_id_high AND t.tenant = p.tenant)
            ORDER BY p.trace_id_low', fresh, part) USING d;
    END IF;
    -- Indexes are built before the swap, on the new table alone; ATTACH
    -- adopts the ones matching the parent's, so the parent is locked only
    -- for the catalog changes.
    IF parent = 'segments' THEN
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I PRIMARY KEY (trace_id_low, tenant, ts, seg_uid)', fresh, fresh || '_pkey');
    ELSIF parent = 'segment_blocks' THEN
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I PRIMARY KEY (trace_id_low, tenant, ts, block_uid)', fresh, fresh || '_pkey');
    ELSIF parent = 'span_index' THEN
        EXECUTE format('CREATE INDEX %I ON %I (tenant, ts_max)', fresh || '_tenant_ts_max_idx', fresh);
    END IF;
    PERFORM zipq_prepare_partition(parent, fresh);
    -- The time range as a constraint spares ATTACH its scan of the rows.
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (ts >= %L AND ts < %L)', fresh, fresh || '_range', lo, hi);
    EXECUTE format('DROP TABLE %I', part);
    EXECUTE format('ALTER TABLE %I RENAME TO %I', fresh, part);
    -- The indexes take the names a partition made by zipq_ensure_partition
    -- has (renaming a key's index renames the key).
    FOR idx IN SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = quote_ident(part)::regclass AND starts_with(c.relname::text, fresh)
    LOOP
        EXECUTE format('ALTER INDEX %I RENAME TO %I', idx, part || substr(idx, length(fresh) + 1));
    END LOOP;
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', parent, part, lo, hi);
    EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', part, fresh || '_range');
    bytes_after := pg_total_relation_size(quote_ident(part)::regclass);
END $$;
-- +goose StatementEnd

-- +goose Down
-- Packed days lose their traces: their rows refer to the blocks dropped.
DROP TABLE packed_days;
DELETE FROM segments WHERE get_byte(data, 0) = 0;
DROP TABLE segment_blocks;
