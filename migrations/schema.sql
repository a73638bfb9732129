-- The schema zipq's migrations add up to, generated: do not edit.
-- ZIPQ_UPDATE_SCHEMA=1 go test -run TestSchemaFileIsCurrent ./storage rewrites it.
-- pg_dump 15

CREATE SCHEMA zipq;

CREATE FUNCTION zipq.zipq_drop_partitions_before(parent text, cutoff timestamp with time zone) RETURNS SETOF text
    LANGUAGE plpgsql
    AS $_$
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
END $_$;

CREATE FUNCTION zipq.zipq_ensure_partition(parent text, d date) RETURNS boolean
    LANGUAGE plpgsql
    AS $_$
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
END $_$;

CREATE FUNCTION zipq.zipq_key(a text, b text) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN ((('x'::text || "left"(md5(((((octet_length(a))::text || ':'::text) || a) || b)), 16)))::bit(64))::bigint;

COMMENT ON FUNCTION zipq.zipq_key(a text, b text) IS 'first 64 bits of md5(<bytes of a> || '':'' || a || b) as a signed bigint: the key of a name pair';

CREATE FUNCTION zipq.zipq_prepare_partition(parent text, part text) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF parent = 'span_index' THEN
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I USING gin (keys) WITH (gin_pending_list_limit = 256)', part || '_keys_idx', part);
        EXECUTE format('ALTER INDEX %I SET (gin_pending_list_limit = 256)', part || '_keys_idx');
    ELSIF parent = 'segment_blocks' THEN
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (tenant, ts, trace_id_low)', part || '_range_idx', part);
    END IF;
END $$;

CREATE FUNCTION zipq.zipq_rewrite_partition(parent text, d date, OUT bytes_before bigint, OUT bytes_after bigint) RETURNS record
    LANGUAGE plpgsql
    AS $_$
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
END $_$;

COMMENT ON FUNCTION zipq.zipq_rewrite_partition(parent text, d date, OUT bytes_before bigint, OUT bytes_after bigint) IS 'rewrites one day''s partition of parent by copy, index and swap, without the rows deleted and the traces thinned_traces lists for the day: the disk they took goes back to the file system';

CREATE FUNCTION zipq.zipq_thin_partition(parent text, d date, OUT bytes_before bigint, OUT bytes_after bigint) RETURNS record
    LANGUAGE sql
    AS $$SELECT * FROM zipq_rewrite_partition(parent, d)$$;

COMMENT ON FUNCTION zipq.zipq_thin_partition(parent text, d date, OUT bytes_before bigint, OUT bytes_after bigint) IS 'zipq_rewrite_partition under its name before migration 17, for processes not upgraded yet';

CREATE AGGREGATE zipq.zipq_cat(integer[]) (
    SFUNC = array_cat,
    STYPE = integer[],
    INITCOND = '{}'
);

CREATE TABLE zipq.autocomplete_tags (
    day date NOT NULL,
    key text NOT NULL,
    value text NOT NULL,
    key_h bigint NOT NULL,
    pair_h bigint NOT NULL,
    tenant smallint DEFAULT 0 NOT NULL
);

COMMENT ON COLUMN zipq.autocomplete_tags.pair_h IS 'zipq_key(key, value)';

CREATE TABLE zipq.compact_pending (
    trace_id_low bigint NOT NULL,
    trace_id_high bigint NOT NULL,
    tenant smallint DEFAULT 0 NOT NULL
);

COMMENT ON TABLE zipq.compact_pending IS 'traces stored as several segments, queued by the linker for the compactor (storage/compact.go)';

CREATE TABLE zipq.dependency_links (
    hour timestamp with time zone NOT NULL,
    parent text NOT NULL,
    child text NOT NULL,
    calls bigint NOT NULL,
    errors bigint NOT NULL,
    pair_h bigint NOT NULL,
    tenant smallint DEFAULT 0 NOT NULL
);

COMMENT ON COLUMN zipq.dependency_links.pair_h IS 'zipq_key(parent, child)';

CREATE TABLE zipq.goose_db_version (
    id integer NOT NULL,
    version_id bigint NOT NULL,
    is_applied boolean NOT NULL,
    tstamp timestamp without time zone DEFAULT now() NOT NULL
);

ALTER TABLE zipq.goose_db_version ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (
    SEQUENCE NAME zipq.goose_db_version_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE zipq.link_pending (
    trace_id_low bigint NOT NULL,
    trace_id_high bigint NOT NULL,
    hour timestamp with time zone,
    edges bytea,
    tenant smallint DEFAULT 0 NOT NULL
);

COMMENT ON COLUMN zipq.link_pending.edges IS 'links the marked segment alone gives (storage/links.go), used when the trace has only that segment; NULL: read the trace';

CREATE TABLE zipq.packed_days (
    day date NOT NULL,
    packed_at timestamp with time zone NOT NULL,
    traces bigint NOT NULL,
    blocks bigint NOT NULL,
    bytes_before bigint NOT NULL,
    bytes_after bigint NOT NULL
);

COMMENT ON TABLE zipq.packed_days IS 'days whose traces were packed into segment_blocks (storage/pack.go)';

CREATE TABLE zipq.remote_services (
    day date NOT NULL,
    service text NOT NULL,
    remote text NOT NULL,
    service_h bigint NOT NULL,
    pair_h bigint NOT NULL,
    tenant smallint DEFAULT 0 NOT NULL
);

COMMENT ON COLUMN zipq.remote_services.pair_h IS 'zipq_key(service, remote)';

CREATE TABLE zipq.segment_blocks (
    trace_id_low bigint NOT NULL,
    tenant smallint NOT NULL,
    ts timestamp with time zone NOT NULL,
    block_uid bigint NOT NULL,
    dict smallint NOT NULL,
    data bytea NOT NULL,
    lows bigint[],
    dir bytea,
    CONSTRAINT segment_blocks_dict_check CHECK ((dict >= 0))
)
PARTITION BY RANGE (ts);
ALTER TABLE ONLY zipq.segment_blocks ALTER COLUMN data SET STORAGE EXTERNAL;

COMMENT ON TABLE zipq.segment_blocks IS 'a closed day''s traces packed: zstd of their ListOfSpans payloads one after another (storage/pack.go); their segments rows refer into them';

COMMENT ON COLUMN zipq.segment_blocks.block_uid IS 'xxhash64 of the uncompressed block';

COMMENT ON COLUMN zipq.segment_blocks.dict IS 'id of the zstd dictionary data was compressed with (storage/dict), 0 = none';

COMMENT ON COLUMN zipq.segment_blocks.lows IS 'the lower halves of its traces'' IDs, one an entry in block order (storage/block.go); NULL: its traces have member rows in segments';

COMMENT ON COLUMN zipq.segment_blocks.dir IS 'the rest of each entry, in the order of lows: the upper half (8 bytes little endian), then as uvarints the µs from the block''s day to the trace''s date, its span count and its payload''s length (storage/block.go)';

CREATE TABLE zipq.segment_blocks_other (
    trace_id_low bigint NOT NULL,
    tenant smallint NOT NULL,
    ts timestamp with time zone NOT NULL,
    block_uid bigint NOT NULL,
    dict smallint NOT NULL,
    data bytea NOT NULL,
    lows bigint[],
    dir bytea,
    CONSTRAINT segment_blocks_dict_check CHECK ((dict >= 0))
);
ALTER TABLE ONLY zipq.segment_blocks_other ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE zipq.segments (
    trace_id_low bigint NOT NULL,
    ts timestamp with time zone NOT NULL,
    seg_uid bigint NOT NULL,
    trace_id_high bigint NOT NULL,
    span_count integer NOT NULL,
    dict smallint NOT NULL,
    data bytea NOT NULL,
    tenant smallint DEFAULT 0 NOT NULL,
    CONSTRAINT segments_dict_check CHECK ((dict >= 0)),
    CONSTRAINT segments_span_count_check CHECK ((span_count > 0))
)
PARTITION BY RANGE (ts);
ALTER TABLE ONLY zipq.segments ALTER COLUMN data SET STORAGE EXTERNAL;

COMMENT ON COLUMN zipq.segments.trace_id_low IS 'lower 64 bits of the trace id as a signed bigint (ids from 8000000000000000 are negative); the Citus distribution column';

COMMENT ON COLUMN zipq.segments.ts IS 'earliest start among its dated spans; a segment of only undated spans, or dated over 24 h after arrival (a clock sending ns), is dated by its arrival so retention expires it. ''epoch'' only in rows stored before that rule';

COMMENT ON COLUMN zipq.segments.seg_uid IS 'xxhash64 of the uncompressed payload: a byte-identical redelivery inserts nothing';

COMMENT ON COLUMN zipq.segments.trace_id_high IS 'upper 64 bits of a 128-bit trace id as a signed bigint; 0 for 64-bit ids';

COMMENT ON COLUMN zipq.segments.dict IS 'id of the zstd dictionary data was compressed with (storage/dict), 0 = none';

COMMENT ON COLUMN zipq.segments.data IS 'zstd of a proto3 ListOfSpans (zipkin.proto) of canonical spans: kind and every id as zipkin.proto encodes them (kind 1 CLIENT, 2 SERVER, 3 PRODUCER, 4 CONSUMER); in a packed day, a reference to the segment_blocks row holding it instead: a 0 byte (no zstd frame starts so), then the block''s first trace_id_low and block_uid and the payload''s offset and length in the uncompressed block (storage/block.go)';

CREATE TABLE zipq.segments_other (
    trace_id_low bigint NOT NULL,
    ts timestamp with time zone NOT NULL,
    seg_uid bigint NOT NULL,
    trace_id_high bigint NOT NULL,
    span_count integer NOT NULL,
    dict smallint NOT NULL,
    data bytea NOT NULL,
    tenant smallint DEFAULT 0 NOT NULL,
    CONSTRAINT segments_dict_check CHECK ((dict >= 0)),
    CONSTRAINT segments_span_count_check CHECK ((span_count > 0))
);
ALTER TABLE ONLY zipq.segments_other ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE zipq.span_columns (
    trace_id_low bigint NOT NULL,
    tenant smallint NOT NULL,
    ts timestamp with time zone NOT NULL,
    ts_max timestamp with time zone NOT NULL,
    block_uid bigint NOT NULL,
    spans integer NOT NULL,
    names text[] NOT NULL,
    ends integer[] NOT NULL,
    data bytea NOT NULL,
    CONSTRAINT span_columns_spans_check CHECK ((spans > 0))
)
PARTITION BY RANGE (ts);
ALTER TABLE ONLY zipq.span_columns ALTER COLUMN data SET STORAGE EXTERNAL;

COMMENT ON TABLE zipq.span_columns IS 'the spans of each write as columns for TraceQL scans, a block per tenant and hour of start times (traceql/columns.go, storage/columns.go)';

COMMENT ON COLUMN zipq.span_columns.block_uid IS 'xxhash64 of the block''s data';

CREATE TABLE zipq.span_columns_other (
    trace_id_low bigint NOT NULL,
    tenant smallint NOT NULL,
    ts timestamp with time zone NOT NULL,
    ts_max timestamp with time zone NOT NULL,
    block_uid bigint NOT NULL,
    spans integer NOT NULL,
    names text[] NOT NULL,
    ends integer[] NOT NULL,
    data bytea NOT NULL,
    CONSTRAINT span_columns_spans_check CHECK ((spans > 0))
);
ALTER TABLE ONLY zipq.span_columns_other ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE zipq.span_columns_since (
    since timestamp with time zone NOT NULL
);

CREATE TABLE zipq.span_index (
    trace_id_low bigint NOT NULL,
    ts timestamp with time zone NOT NULL,
    ts_max timestamp with time zone NOT NULL,
    trace_id_high bigint NOT NULL,
    dur_min bigint,
    dur_max bigint,
    keys integer[] NOT NULL,
    tenant smallint DEFAULT 0 NOT NULL,
    members bytea DEFAULT '\x'::bytea NOT NULL,
    bounds bytea DEFAULT '\x'::bytea NOT NULL,
    CONSTRAINT span_index_check CHECK (((ts_max >= ts) AND (ts_max < (ts + '00:01:00'::interval)))),
    CONSTRAINT span_index_durations CHECK (((dur_min >= 0) AND (dur_min <= dur_max)))
)
PARTITION BY RANGE (ts);

COMMENT ON COLUMN zipq.span_index.ts_max IS 'latest start among the row''s spans, within a minute of ts: search walks newest first by it';

COMMENT ON COLUMN zipq.span_index.dur_min IS 'shortest duration (µs) among the row''s spans; NULL when none has one';

COMMENT ON COLUMN zipq.span_index.dur_max IS 'longest duration (µs) among the row''s spans; NULL when none has one';

COMMENT ON COLUMN zipq.span_index.keys IS 'sorted 32-bit hashes of what search matches on (storage/indexkeys.go): service, remote service, span name and annotationQuery terms, each with its own prefix; a key=value term''s high 18 bits hash its key (since migration 00015)';

COMMENT ON COLUMN zipq.span_index.members IS 'empty: the row is one trace''s (trace_id_low, trace_id_high); else a group row of a packed day: per trace, its ID (low, high: 8 bytes little endian each), then as uvarints its shortest duration + 1 (0: none) and, if any, longest minus shortest, its count of keys and their positions in keys as deltas (storage/indexgroup.go); the row''s IDs are its first trace''s';

COMMENT ON COLUMN zipq.span_index.bounds IS 'empty: each trace of the row has the row''s ts_max as its latest span start; else, for a group row, per trace of members in order (newest first), as a uvarint, how many microseconds its latest span start lies below the one before''s (the first''s below the row''s ts_max) (storage/indexgroup.go)';

CREATE TABLE zipq.span_index_other (
    trace_id_low bigint NOT NULL,
    ts timestamp with time zone NOT NULL,
    ts_max timestamp with time zone NOT NULL,
    trace_id_high bigint NOT NULL,
    dur_min bigint,
    dur_max bigint,
    keys integer[] NOT NULL,
    tenant smallint DEFAULT 0 NOT NULL,
    members bytea DEFAULT '\x'::bytea NOT NULL,
    bounds bytea DEFAULT '\x'::bytea NOT NULL,
    CONSTRAINT span_index_check CHECK (((ts_max >= ts) AND (ts_max < (ts + '00:01:00'::interval)))),
    CONSTRAINT span_index_durations CHECK (((dur_min >= 0) AND (dur_min <= dur_max)))
);

CREATE TABLE zipq.span_names (
    day date NOT NULL,
    service text NOT NULL,
    name text NOT NULL,
    service_h bigint NOT NULL,
    pair_h bigint NOT NULL,
    tenant smallint DEFAULT 0 NOT NULL
);

COMMENT ON COLUMN zipq.span_names.pair_h IS 'zipq_key(service, name)';

CREATE TABLE zipq.span_stats (
    tenant smallint NOT NULL,
    ts timestamp with time zone NOT NULL,
    res integer NOT NULL,
    merged boolean NOT NULL,
    cell_h bigint NOT NULL,
    service text NOT NULL,
    service_h bigint NOT NULL,
    name text NOT NULL,
    kind smallint NOT NULL,
    remote text NOT NULL,
    calls bigint NOT NULL,
    errors bigint NOT NULL,
    dur_sum bigint NOT NULL,
    sketch bytea NOT NULL,
    slow_trace_high bigint,
    slow_trace_low bigint,
    slow_span bigint,
    slow_us bigint,
    slow_at timestamp with time zone,
    err_trace_high bigint,
    err_trace_low bigint,
    err_span bigint,
    err_us bigint,
    err_at timestamp with time zone,
    bytes bigint DEFAULT 0 NOT NULL
);

COMMENT ON TABLE zipq.span_stats IS 'RED metrics per tenant, minute (or hour) and cell, appended by writers and folded by the stats job (storage/stats.go)';

CREATE TABLE zipq.span_stats_batches (
    id bigint NOT NULL,
    tenant smallint NOT NULL,
    ts timestamp with time zone NOT NULL,
    cells bytea NOT NULL,
    chunks integer[] NOT NULL,
    CONSTRAINT span_stats_batches_chunks_check CHECK ((cardinality(chunks) = 17))
);
ALTER TABLE ONLY zipq.span_stats_batches ALTER COLUMN cells SET STORAGE EXTERNAL;

COMMENT ON TABLE zipq.span_stats_batches IS 'service metrics a batch counted in one minute, all its cells packed (storage/statbatch.go), folded into span_stats by the stats job';

COMMENT ON COLUMN zipq.span_stats_batches.ts IS 'the minute';

COMMENT ON COLUMN zipq.span_stats_batches.chunks IS 'offsets of the 16 sections of cells, one per sixteenth of the cell hash space, and its length';

ALTER TABLE zipq.span_stats_batches ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME zipq.span_stats_batches_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE SEQUENCE zipq.span_strips_rev
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

CREATE TABLE zipq.span_strips (
    tenant smallint NOT NULL,
    service_h bigint NOT NULL,
    service text NOT NULL,
    hour timestamp with time zone NOT NULL,
    points bytea NOT NULL,
    sketch bytea NOT NULL,
    rev bigint DEFAULT nextval('zipq.span_strips_rev'::regclass) NOT NULL
);

COMMENT ON TABLE zipq.span_strips IS 'one service''s minute totals of an hour with their quantiles, written by the stats job (storage/strip.go)';

COMMENT ON COLUMN zipq.span_strips.rev IS 'the strip''s revision, new on every write (storage/stripcache.go)';

CREATE TABLE zipq.span_strips_backfill (
    before timestamp with time zone NOT NULL
);

COMMENT ON TABLE zipq.span_strips_backfill IS 'the hour before which minutes folded before strips existed may have none yet (storage/statsjob.go)';

CREATE TABLE zipq.tenants (
    id smallint NOT NULL,
    name text NOT NULL,
    CONSTRAINT tenants_id_check CHECK ((id >= 0))
);

COMMENT ON TABLE zipq.tenants IS 'tenant names and the numbers every row stores (storage/tenants.go); 0 is the default tenant';

CREATE TABLE zipq.thin_counts (
    tenant smallint NOT NULL,
    day date NOT NULL,
    service text NOT NULL,
    reason text NOT NULL,
    traces bigint NOT NULL,
    spans bigint NOT NULL,
    CONSTRAINT thin_counts_reason_check CHECK ((reason = ANY (ARRAY['error'::text, 'slow'::text, 'rare'::text, 'sampled'::text, 'thinned'::text])))
);

COMMENT ON TABLE zipq.thin_counts IS 'traces judged by the keep-by-value policy, by root service and reason (storage/thin.go)';

CREATE TABLE zipq.thin_days (
    day date NOT NULL,
    policy text NOT NULL,
    thinned_at timestamp with time zone NOT NULL,
    bytes_before bigint NOT NULL,
    bytes_after bigint NOT NULL
);

COMMENT ON TABLE zipq.thin_days IS 'days of spans thinned by the keep-by-value policy (storage/thin.go)';

CREATE TABLE zipq.thinned_traces (
    trace_id_low bigint NOT NULL,
    trace_id_high bigint NOT NULL,
    tenant smallint NOT NULL,
    day date NOT NULL
);

COMMENT ON TABLE zipq.thinned_traces IS 'trace IDs the keep-by-value policy took out, so a read of one says so (storage/thin.go)';

CREATE TABLE zipq.trace_links (
    trace_id_low bigint NOT NULL,
    trace_id_high bigint NOT NULL,
    hour timestamp with time zone NOT NULL,
    edges bytea NOT NULL,
    tenant smallint DEFAULT 0 NOT NULL,
    CONSTRAINT trace_links_edges CHECK (((octet_length(edges) % 16) = 0))
);

COMMENT ON COLUMN zipq.trace_links.edges IS 'per edge: zipq_key(parent, child) int8, calls int4, errors int4, big-endian';

CREATE TABLE zipq.zstd_dicts (
    id smallint NOT NULL,
    zstd_id bigint NOT NULL,
    dict bytea NOT NULL,
    trained_at timestamp with time zone NOT NULL,
    sample_bytes bigint NOT NULL,
    held_out_bytes bigint NOT NULL,
    bytes_before bigint NOT NULL,
    bytes_after bigint NOT NULL,
    CONSTRAINT zstd_dicts_id_check CHECK ((id >= 2))
);

COMMENT ON TABLE zipq.zstd_dicts IS 'zstd dictionaries learned from stored segments; segments.dict refers to id (storage/dicts.go)';

ALTER TABLE ONLY zipq.segment_blocks ATTACH PARTITION zipq.segment_blocks_other DEFAULT;

ALTER TABLE ONLY zipq.segments ATTACH PARTITION zipq.segments_other DEFAULT;

ALTER TABLE ONLY zipq.span_columns ATTACH PARTITION zipq.span_columns_other DEFAULT;

ALTER TABLE ONLY zipq.span_index ATTACH PARTITION zipq.span_index_other DEFAULT;

ALTER TABLE ONLY zipq.autocomplete_tags
    ADD CONSTRAINT autocomplete_tags_pkey PRIMARY KEY (tenant, pair_h, day);

ALTER TABLE ONLY zipq.compact_pending
    ADD CONSTRAINT compact_pending_pkey PRIMARY KEY (trace_id_low, trace_id_high, tenant);

ALTER TABLE ONLY zipq.dependency_links
    ADD CONSTRAINT dependency_links_pkey PRIMARY KEY (tenant, hour, pair_h);

ALTER TABLE ONLY zipq.goose_db_version
    ADD CONSTRAINT goose_db_version_pkey PRIMARY KEY (id);

ALTER TABLE ONLY zipq.link_pending
    ADD CONSTRAINT link_pending_pkey PRIMARY KEY (trace_id_low, trace_id_high, tenant);

ALTER TABLE ONLY zipq.packed_days
    ADD CONSTRAINT packed_days_pkey PRIMARY KEY (day);

ALTER TABLE ONLY zipq.remote_services
    ADD CONSTRAINT remote_services_pkey PRIMARY KEY (tenant, pair_h, day);

ALTER TABLE ONLY zipq.segment_blocks
    ADD CONSTRAINT segment_blocks_pkey PRIMARY KEY (trace_id_low, tenant, ts, block_uid);

ALTER TABLE ONLY zipq.segment_blocks_other
    ADD CONSTRAINT segment_blocks_other_pkey PRIMARY KEY (trace_id_low, tenant, ts, block_uid);

ALTER TABLE ONLY zipq.segments
    ADD CONSTRAINT segments_pkey PRIMARY KEY (trace_id_low, tenant, ts, seg_uid);

ALTER TABLE ONLY zipq.segments_other
    ADD CONSTRAINT segments_other_pkey PRIMARY KEY (trace_id_low, tenant, ts, seg_uid);

ALTER TABLE ONLY zipq.span_columns
    ADD CONSTRAINT span_columns_pkey PRIMARY KEY (trace_id_low, tenant, ts, block_uid);

ALTER TABLE ONLY zipq.span_columns_other
    ADD CONSTRAINT span_columns_other_pkey PRIMARY KEY (trace_id_low, tenant, ts, block_uid);

ALTER TABLE ONLY zipq.span_names
    ADD CONSTRAINT span_names_pkey PRIMARY KEY (tenant, pair_h, day);

ALTER TABLE ONLY zipq.span_strips
    ADD CONSTRAINT span_strips_pkey PRIMARY KEY (tenant, service_h, service, hour);

ALTER TABLE ONLY zipq.tenants
    ADD CONSTRAINT tenants_name_key UNIQUE (name);

ALTER TABLE ONLY zipq.tenants
    ADD CONSTRAINT tenants_pkey PRIMARY KEY (id);

ALTER TABLE ONLY zipq.thin_counts
    ADD CONSTRAINT thin_counts_pkey PRIMARY KEY (tenant, day, service, reason);

ALTER TABLE ONLY zipq.thin_days
    ADD CONSTRAINT thin_days_pkey PRIMARY KEY (day);

ALTER TABLE ONLY zipq.thinned_traces
    ADD CONSTRAINT thinned_traces_pkey PRIMARY KEY (trace_id_low, trace_id_high, tenant, day);

ALTER TABLE ONLY zipq.trace_links
    ADD CONSTRAINT trace_links_pkey PRIMARY KEY (trace_id_low, trace_id_high, tenant);

ALTER TABLE ONLY zipq.zstd_dicts
    ADD CONSTRAINT zstd_dicts_pkey PRIMARY KEY (id);

ALTER TABLE ONLY zipq.zstd_dicts
    ADD CONSTRAINT zstd_dicts_zstd_id_key UNIQUE (zstd_id);

CREATE INDEX autocomplete_tags_key ON zipq.autocomplete_tags USING btree (tenant, key_h);

CREATE INDEX remote_services_service ON zipq.remote_services USING btree (tenant, service_h);

CREATE INDEX segment_blocks_other_range_idx ON zipq.segment_blocks_other USING btree (tenant, ts, trace_id_low);

CREATE INDEX span_columns_tenant_ts_max_idx ON ONLY zipq.span_columns USING btree (tenant, ts_max);

CREATE INDEX span_columns_other_tenant_ts_max_idx ON zipq.span_columns_other USING btree (tenant, ts_max);

CREATE INDEX span_index_other_keys ON zipq.span_index_other USING gin (keys) WITH (gin_pending_list_limit='256');

CREATE INDEX span_index_ts_max ON ONLY zipq.span_index USING btree (tenant, ts_max);

CREATE INDEX span_index_other_tenant_ts_max_idx ON zipq.span_index_other USING btree (tenant, ts_max);

CREATE INDEX span_names_service ON zipq.span_names USING btree (tenant, service_h);

CREATE INDEX span_stats_batches_ts ON zipq.span_stats_batches USING btree (ts, tenant);

CREATE INDEX span_stats_minutes ON zipq.span_stats USING btree (ts, cell_h) WHERE (res = 60);

CREATE INDEX span_stats_range ON zipq.span_stats USING btree (tenant, ts);

CREATE INDEX span_stats_service ON zipq.span_stats USING btree (tenant, service_h, ts);

CREATE INDEX span_stats_totals ON zipq.span_stats USING btree (tenant, res, ts) WHERE (kind = '-1'::integer);

CREATE INDEX span_stats_unmerged ON zipq.span_stats USING btree (ts, cell_h) WHERE (NOT merged);

CREATE INDEX trace_links_hour ON zipq.trace_links USING btree (hour);

ALTER INDEX zipq.segment_blocks_pkey ATTACH PARTITION zipq.segment_blocks_other_pkey;

ALTER INDEX zipq.segments_pkey ATTACH PARTITION zipq.segments_other_pkey;

ALTER INDEX zipq.span_columns_pkey ATTACH PARTITION zipq.span_columns_other_pkey;

ALTER INDEX zipq.span_columns_tenant_ts_max_idx ATTACH PARTITION zipq.span_columns_other_tenant_ts_max_idx;

ALTER INDEX zipq.span_index_ts_max ATTACH PARTITION zipq.span_index_other_tenant_ts_max_idx;
