-- +goose Up
-- Storage v2: the unit of storage is a trace *segment* — all the spans of
-- one trace that arrived in one batch — encoded once and compressed, instead
-- of one heap row and seven index entries per span. Search reads a compact
-- side table, span_index, with one row per (segment, minute of start time),
-- and answers exactly by checking the spans of the traces it finds
-- (storage/search.go). docs/adr/0003-segments.md says why.
--
-- Both tables are range-partitioned by day on ts and keep the future Citus
-- distribution column (trace_id_low) first in every key, so they stay legal
-- as distributed, time-partitioned tables. Daily partitions are created
-- ahead by storage/partitions.go (with span_index's GIN index) and dropped
-- whole by retention; rows dated outside them land in the *_other defaults.

CREATE TABLE segments (
    trace_id_low  bigint      NOT NULL, -- lower 64 bits of the trace id, as signed bigint
    ts            timestamptz NOT NULL, -- earliest start of its spans ('epoch' when none has one)
    seg_uid       bigint      NOT NULL, -- xxhash64 of the uncompressed payload: a byte-identical
                                        -- redelivery inserts nothing
    trace_id_high bigint      NOT NULL, -- upper 64 bits, 0 for 64-bit trace ids
    span_count    integer     NOT NULL CHECK (span_count > 0),
    dict          smallint    NOT NULL CHECK (dict >= 0), -- zstd dictionary id (storage/dict), 0 = none
    data          bytea       NOT NULL, -- zstd of a proto3 ListOfSpans of canonical spans
    PRIMARY KEY (trace_id_low, ts, seg_uid)
) PARTITION BY RANGE (ts);
-- Already compressed: PostgreSQL's own pglz pass would only cost CPU.
ALTER TABLE segments ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE TABLE segments_other PARTITION OF segments DEFAULT;

-- What Zipkin's search filters on, one row per (segment, minute of start
-- time): a row's spans all start within [ts, ts + 1 min). Every name and
-- term its spans answer to is one 32-bit hash in `keys` (storage/text.go:
-- local and remote service names, span names and annotationQuery terms,
-- each hashed with its own prefix); collisions only add candidates, which
-- the exact check on the spans removes. A search walks the ts_max B-tree
-- newest first, checking keys, or, for a rare key, uses the GIN index. No
-- unique key: a redelivery that cuts different segments adds rows that find
-- the same trace, which search de-duplicates and compaction leaves alone.
CREATE TABLE span_index (
    trace_id_low  bigint      NOT NULL,
    ts            timestamptz NOT NULL, -- earliest start among the row's spans (partition key)
    ts_max        timestamptz NOT NULL, -- latest start: search walks newest first by it
    trace_id_high bigint      NOT NULL,
    dur_min       bigint,               -- shortest / longest duration (µs) among its spans,
    dur_max       bigint,               -- NULL when none has one
    keys          integer[]   NOT NULL, -- sorted hashes of everything search matches on
    CHECK (ts_max >= ts AND ts_max < ts + interval '1 minute')
) PARTITION BY RANGE (ts);
CREATE INDEX span_index_ts_max ON span_index (ts_max);
CREATE TABLE span_index_other PARTITION OF span_index DEFAULT;
CREATE INDEX span_index_other_keys ON span_index_other USING gin (keys);

-- +goose Down
DROP TABLE span_index;
DROP TABLE segments;
