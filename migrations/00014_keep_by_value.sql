-- +goose Up
-- Keep by value (storage/thin.go): once a day of spans is older than
-- ZIPQ_KEEP_AFTER, the traces ZIPQ_KEEP's policy does not keep are taken
-- out of the day's partitions, which are rewritten smaller. Nothing is
-- thinned silently: every thinned trace ID is kept with its day (so
-- reading it answers why it is gone), and every judged trace is counted by
-- its root service and the reason it was kept or thinned.

-- thin_days: the days thinned, with the policy applied, so a day is
-- thinned once and a reader can say by which policy.
CREATE TABLE thin_days (
    day          date        PRIMARY KEY,
    policy       text        NOT NULL,
    thinned_at   timestamptz NOT NULL,
    bytes_before bigint      NOT NULL, -- the day's segments and span_index partitions, before
    bytes_after  bigint      NOT NULL  -- and after the rewrite
);
COMMENT ON TABLE thin_days IS 'days of spans thinned by the keep-by-value policy (storage/thin.go)';

-- thin_counts: per tenant, day, root service and reason (error, slow, rare,
-- sampled: kept for that reason, the first that applies; thinned: taken
-- out), the traces and the spans stored for them that day.
CREATE TABLE thin_counts (
    tenant  smallint NOT NULL,
    day     date     NOT NULL,
    service text     NOT NULL,
    reason  text     NOT NULL CHECK (reason IN ('error', 'slow', 'rare', 'sampled', 'thinned')),
    traces  bigint   NOT NULL,
    spans   bigint   NOT NULL,
    PRIMARY KEY (tenant, day, service, reason)
);
COMMENT ON TABLE thin_counts IS 'traces judged by the keep-by-value policy, by root service and reason (storage/thin.go)';

-- thinned_traces: the trace IDs taken out, by day (a trace crossing
-- midnight is judged on each of its days). The key holds the Citus
-- distribution column and the day, like the span tables'.
CREATE TABLE thinned_traces (
    trace_id_low  bigint   NOT NULL,
    trace_id_high bigint   NOT NULL,
    tenant        smallint NOT NULL,
    day           date     NOT NULL,
    PRIMARY KEY (trace_id_low, trace_id_high, tenant, day)
);
COMMENT ON TABLE thinned_traces IS 'trace IDs the keep-by-value policy took out, so a read of one says so (storage/thin.go)';

-- zipq_thin_partition rewrites one day's partition of parent without the
-- rows of the traces thinned_traces lists for that day: the kept rows are
-- copied into a new table, indexed there, and swapped in for the old one,
-- which is dropped (its files go back to the file system at commit). The
-- caller holds the old partition in SHARE mode from before it judged the
-- traces, so no row arrives unjudged. Readers of other days wait only for
-- the swap itself. Returns the bytes before and after.
-- +goose StatementBegin
CREATE FUNCTION zipq_thin_partition(parent text, d date, OUT bytes_before bigint, OUT bytes_after bigint)
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
    EXECUTE format('INSERT INTO %I SELECT p.* FROM %I p WHERE NOT EXISTS (SELECT 1 FROM thinned_traces t
        WHERE t.day = $1 AND t.trace_id_low = p.trace_id_low AND t.trace_id_high = p.trace_id_high AND t.tenant = p.tenant)
        ORDER BY p.trace_id_low', fresh, part) USING d;
    -- Indexes are built before the swap, on the new table alone; ATTACH
    -- adopts the ones matching the parent's, so the parent is locked only
    -- for the catalog changes.
    IF parent = 'segments' THEN
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I PRIMARY KEY (trace_id_low, tenant, ts, seg_uid)', fresh, fresh || '_pkey');
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
DROP FUNCTION zipq_thin_partition(text, date);
DROP TABLE thinned_traces;
DROP TABLE thin_counts;
DROP TABLE thin_days;
