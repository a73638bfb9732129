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

-- Packing rewrites the day's span_index partition too (pack.go), and every
-- rewrite (packing, thinning, budgets) now merges a trace's rows of a
-- minute into one (docs/BENCHMARKS.md, "Packed days: the member rows
-- replaced by block directories"). zipq_cat concatenates the rows' keys.
CREATE AGGREGATE zipq_cat(integer[]) (SFUNC = array_cat, STYPE = integer[], INITCOND = '{}');

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
    IF parent IN ('segment_blocks', 'span_columns') THEN
        EXECUTE format('INSERT INTO %I SELECT * FROM %I ORDER BY trace_id_low', fresh, part);
    ELSIF parent = 'span_index' THEN
        -- A trace's rows of one minute become one: their keys' union, the
        -- earliest and latest start, the widest durations (a row whose
        -- spans cross a minute stays as it is, within its CHECK). Rows
        -- only nominate traces, which the spans then decide, so a wider
        -- row finds what its parts found. A trace reported by four
        -- services in four batches has four rows a minute until here. In
        -- ts_max order, the order search walks them in. The GIN index is
        -- made first, so the rows fill it through its pending list: built
        -- in one pass after them it came out larger, 92 against 85 bytes
        -- a span on OTel-like spans (docs/BENCHMARKS.md).
        PERFORM zipq_prepare_partition(parent, fresh);
        EXECUTE format('INSERT INTO %I (trace_id_low, ts, ts_max, trace_id_high, dur_min, dur_max, keys, tenant)
            SELECT p.trace_id_low, min(p.ts), max(p.ts_max), p.trace_id_high, min(p.dur_min), max(p.dur_max),
                ARRAY(SELECT DISTINCT k FROM unnest(zipq_cat(p.keys)) k ORDER BY k), p.tenant
            FROM %I p WHERE NOT EXISTS (SELECT 1 FROM thinned_traces t
                WHERE t.day = $1 AND t.trace_id_low = p.trace_id_low AND t.trace_id_high = p.trace_id_high AND t.tenant = p.tenant)
            GROUP BY p.tenant, p.trace_id_low, p.trace_id_high, date_trunc(''minute'', p.ts AT TIME ZONE ''UTC''),
                CASE WHEN date_trunc(''minute'', p.ts_max AT TIME ZONE ''UTC'') = date_trunc(''minute'', p.ts AT TIME ZONE ''UTC'') THEN NULL ELSE p.ctid END
            ORDER BY max(p.ts_max)', fresh, part) USING d;
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
    ELSIF parent = 'span_columns' THEN
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I PRIMARY KEY (trace_id_low, tenant, ts, block_uid)', fresh, fresh || '_pkey');
        EXECUTE format('CREATE INDEX %I ON %I (tenant, ts_max)', fresh || '_tenant_ts_max_idx', fresh);
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
    IF parent IN ('segment_blocks', 'span_columns') THEN
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
    ELSIF parent = 'span_columns' THEN
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I PRIMARY KEY (trace_id_low, tenant, ts, block_uid)', fresh, fresh || '_pkey');
        EXECUTE format('CREATE INDEX %I ON %I (tenant, ts_max)', fresh || '_tenant_ts_max_idx', fresh);
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

DROP AGGREGATE zipq_cat(integer[]);
