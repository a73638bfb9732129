-- +goose Up
-- A read of services' health at one-minute steps over a day took 72,000
-- minute totals from span_stats and a sketch decoded for each. A strip is
-- one service's minutes of one hour in one row (storage/strip.go): each
-- minute's counts, exemplars and usual quantiles already read from its
-- sketch, and the hour's merged sketch for a range's total. The stats job
-- writes them as it folds minutes, in the same transaction, and deletes
-- an hour's strips when it rolls the hour up (reads then take the hourly
-- total). The key holds no trace id: the table is small (a row per
-- service and hour of the last day) and stays local or a Citus reference
-- table.
-- What the spans of a cell cost on disk: their stored segments' bytes,
-- each span's share by its uncompressed size (storage/stats.go), so that
-- an operator can see whose spans the disk holds (zipq usage).
ALTER TABLE span_stats ADD COLUMN bytes bigint NOT NULL DEFAULT 0;
CREATE TABLE span_strips (
    tenant    smallint    NOT NULL,
    service_h bigint      NOT NULL, -- zipq_key(service, ''), as span_stats.service_h
    service   text        NOT NULL,
    hour      timestamptz NOT NULL,
    points    bytea       NOT NULL,
    sketch    bytea       NOT NULL,
    PRIMARY KEY (tenant, service_h, service, hour)
);
COMMENT ON TABLE span_strips IS
    'one service''s minute totals of an hour with their quantiles, written by the stats job (storage/strip.go)';
-- The services' totals alone, for what a read by service takes beside
-- the strips (the range's partial hours, hours rolled up) without walking
-- the range's cells.
CREATE INDEX span_stats_totals ON span_stats (tenant, res, ts) WHERE kind = -1;
-- Minutes folded before this migration have no strips: the job builds
-- them, newest hour first, moving before back; reads take the hours
-- before it from span_stats. No row: nothing to build.
CREATE TABLE span_strips_backfill (before timestamptz NOT NULL);
COMMENT ON TABLE span_strips_backfill IS
    'the hour before which minutes folded before strips existed may have none yet (storage/statsjob.go)';
INSERT INTO span_strips_backfill
    SELECT date_trunc('hour', now()) + interval '1 hour'
    WHERE EXISTS (SELECT 1 FROM span_stats WHERE res = 60 AND kind = -1 AND merged);

-- +goose Down
DROP INDEX span_stats_totals;
ALTER TABLE span_stats DROP COLUMN bytes;
DROP TABLE span_strips_backfill;
DROP TABLE span_strips;
