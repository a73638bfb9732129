-- +goose Up
-- What a batch counts for the service metrics, one row per batch and
-- minute instead of one span_stats row per cell (storage/statbatch.go):
-- 500 spans over 400 operations wrote 400 rows and 1,600 index entries,
-- 237 bytes a span the table file kept after the fold. The stats job
-- folds these rows into span_stats as it folds unmerged span_stats rows,
-- which processes of the version before still write during a rolling
-- upgrade and which are still read and folded. No key: writers only
-- insert, the job deletes by id what it read.
CREATE TABLE span_stats_batches (
    id     bigint      GENERATED ALWAYS AS IDENTITY,
    tenant smallint    NOT NULL,
    ts     timestamptz NOT NULL,
    cells  bytea       NOT NULL,
    chunks int[]       NOT NULL CHECK (cardinality(chunks) = 17)
);
-- Uncompressed, so the job's substring() of one section reads only its
-- pages of a TOASTed value.
ALTER TABLE span_stats_batches ALTER COLUMN cells SET STORAGE EXTERNAL;
CREATE INDEX span_stats_batches_ts ON span_stats_batches (ts, tenant);
COMMENT ON TABLE span_stats_batches IS
    'service metrics a batch counted in one minute, all its cells packed (storage/statbatch.go), folded into span_stats by the stats job';
COMMENT ON COLUMN span_stats_batches.ts IS 'the minute';
COMMENT ON COLUMN span_stats_batches.chunks IS
    'offsets of the 16 sections of cells, one per sixteenth of the cell hash space, and its length';

-- +goose Down
-- The minutes not folded yet lose what these rows counted.
DROP TABLE span_stats_batches;
