-- +goose Up
-- Each trace of a group row keeps its own latest span start (its bound),
-- so that search reads a group's traces newest first and stops as soon as
-- it has enough: with only the row's ts_max for all of them, a search read
-- every matching trace of a group (up to 64, a block decode each) before
-- it could stop, and packed days searched 3 x slower than unpacked ones
-- (docs/BENCHMARKS.md, "... and each trace's own bound"). A new column,
-- not a new members encoding: group rows written since migration 22 stay
-- as they are (bounds empty: every member takes the row's ts_max, as
-- before), and a constant default writes no row.
ALTER TABLE span_index ADD COLUMN bounds bytea NOT NULL DEFAULT '';
COMMENT ON COLUMN span_index.bounds IS
    'empty: each trace of the row has the row''s ts_max as its latest span start; else, for a group row, per trace of members in order (newest first), as a uvarint, how many microseconds its latest span start lies below the one before''s (the first''s below the row''s ts_max) (storage/indexgroup.go)';

-- zipq_rewrite_partition (thinning a packed day) keeps group rows' bounds.
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
        -- Group rows (members not empty, written by packing) pass as they
        -- are: they nominate many traces, and one thinned among them only
        -- costs its search a candidate that reads as gone.
        EXECUTE format('INSERT INTO %I (trace_id_low, ts, ts_max, trace_id_high, dur_min, dur_max, keys, tenant, members, bounds)
            SELECT p.trace_id_low, min(p.ts), max(p.ts_max), p.trace_id_high, min(p.dur_min), max(p.dur_max),
                ARRAY(SELECT DISTINCT k FROM unnest(zipq_cat(p.keys)) k ORDER BY k), p.tenant, ''''::bytea, ''''::bytea
            FROM %I p WHERE p.members = '''' AND NOT EXISTS (SELECT 1 FROM thinned_traces t
                WHERE t.day = $1 AND t.trace_id_low = p.trace_id_low AND t.trace_id_high = p.trace_id_high AND t.tenant = p.tenant)
            GROUP BY p.tenant, p.trace_id_low, p.trace_id_high, date_trunc(''minute'', p.ts AT TIME ZONE ''UTC''),
                CASE WHEN date_trunc(''minute'', p.ts_max AT TIME ZONE ''UTC'') = date_trunc(''minute'', p.ts AT TIME ZONE ''UTC'') THEN NULL ELSE p.ctid END
            UNION ALL
            SELECT p.trace_id_low, p.ts, p.ts_max, p.trace_id_high, p.dur_min, p.dur_max, p.keys, p.tenant, p.members, p.bounds
            FROM %I p WHERE p.members <> ''''
            ORDER BY 3', fresh, part, part) USING d;
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

ALTER TABLE span_index DROP COLUMN bounds;
