-- +goose Up
-- Span columns (traceql/columns.go): a TraceQL query that no index serves
-- (a regular expression, a numeric range, a status) read every trace of
-- its window whole, about 60,000 spans a second a core
-- (docs/BENCHMARKS.md, "The scan rate"). Each write now also stores its
-- spans as columns, one section per field, a block per hour of start
-- times; a scan reads only the sections its query tests (a substring of
-- an uncompressed TOAST value reads only the chunks it covers) and reads
-- whole only the traces they cannot rule out.
CREATE TABLE span_columns (
    trace_id_low bigint      NOT NULL, -- its first trace's: the Citus distribution column
    tenant       smallint    NOT NULL,
    ts           timestamptz NOT NULL, -- its first span's start, dated as segments date it
    ts_max       timestamptz NOT NULL, -- its last span's start
    block_uid    bigint      NOT NULL,
    spans        integer     NOT NULL CHECK (spans > 0),
    names        text[]      NOT NULL, -- the sections' names
    ends         integer[]   NOT NULL, -- where each section ends in data
    data         bytea       NOT NULL,
    PRIMARY KEY (trace_id_low, tenant, ts, block_uid)
) PARTITION BY RANGE (ts);
-- Sections are compressed one by one: TOAST would only try again, and a
-- compressed value cannot be read in part.
ALTER TABLE span_columns ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE INDEX span_columns_tenant_ts_max_idx ON span_columns (tenant, ts_max);
CREATE TABLE span_columns_other PARTITION OF span_columns DEFAULT;
COMMENT ON TABLE span_columns IS
    'the spans of each write as columns for TraceQL scans, a block per tenant and hour of start times (traceql/columns.go, storage/columns.go)';
COMMENT ON COLUMN span_columns.block_uid IS 'xxhash64 of the block''s data';

-- Spans stored before this migration have no columns: a scan uses them
-- only for windows that start after the newest of those spans.
CREATE TABLE span_columns_since (since timestamptz NOT NULL);
INSERT INTO span_columns_since SELECT coalesce(max(ts_max), '-infinity') FROM span_index;

SELECT zipq_ensure_partition('span_columns', to_date(right(c.relname, 8), 'YYYYMMDD'))
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'segments'::regclass AND c.relname ~ '_p[0-9]{8}$';

-- A day's rewrite (thinning, budgets) keeps its column blocks whole: a
-- thinned trace they still name is read, found gone and skipped.
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

-- +goose Down
DROP TABLE span_columns_since;
DROP TABLE span_columns;
