-- +goose Up
-- Service health computed at ingest (storage/stats.go): per tenant, minute
-- and cell (local service, span name, kind, remote service), the calls,
-- the failed calls, a DDSketch of durations (storage/sketch.go) and two
-- exemplars (the slowest span, one failed span).
--
-- Writers only append (merged = false): one row per cell and batch, in
-- the batch's transaction, so a rolled-back batch counts nothing and no
-- two collectors ever contend on a row. The stats job (RunStats) folds a
-- cell's rows into one merged row per minute, then per hour after a day,
-- and deletes what is older than the stats retention. A read sums every
-- row of a bucket, merged or not, so it is exact whatever the job's
-- progress. The job also writes, per service and minute (or hour), the
-- total of the cells it folded (kind = -1, name and remote ''): a read by
-- service takes those and the rows not folded yet. No unique key: a distributed table (Citus, by cell_h) or a
-- time-partitioned one takes it as it is.
CREATE TABLE span_stats (
    tenant        text     NOT NULL,
    ts            timestamptz NOT NULL, -- start of the minute, or of the hour when res = 3600
    res           integer  NOT NULL,    -- seconds a row covers: 60 or 3600
    merged        boolean  NOT NULL,
    cell_h        bigint   NOT NULL,    -- a hash of (service, name, kind, remote): the cell, one column to group or distribute by
    service       text     NOT NULL,
    service_h     bigint   NOT NULL,    -- zipq_key(service, ''): what the service index holds (names are stored whole, of any length)
    name          text     NOT NULL,
    kind          smallint NOT NULL,    -- zipkin.Kind: 0 unset, 1 client, 2 server, 3 producer, 4 consumer; -1: a service's total
    remote        text     NOT NULL,    -- remote service, '' when the span names none
    calls         bigint   NOT NULL,
    errors        bigint   NOT NULL,
    dur_sum       bigint   NOT NULL,    -- µs, for averages and Prometheus' _sum
    sketch        bytea    NOT NULL,
    slow_trace_high bigint, slow_trace_low bigint, slow_span bigint, slow_us bigint, slow_at timestamptz,
    err_trace_high  bigint, err_trace_low  bigint, err_span  bigint, err_us  bigint, err_at  timestamptz
);
CREATE INDEX span_stats_range ON span_stats (tenant, ts);
CREATE INDEX span_stats_service ON span_stats (tenant, service_h, ts);
-- What the stats job has left to fold, by time, then the cell hash it
-- folds a sixteenth of at a time: the rows not merged yet (into minutes),
-- and the minutes (into hours after a day). Partial, so that finding the
-- oldest of them never walks the day of merged minutes before it.
CREATE INDEX span_stats_unmerged ON span_stats (ts, cell_h) WHERE NOT merged;
CREATE INDEX span_stats_minutes ON span_stats (ts, cell_h) WHERE res = 60;
COMMENT ON TABLE span_stats IS
    'RED metrics per tenant, minute (or hour) and cell, appended by writers and folded by the stats job (storage/stats.go)';

-- +goose Down
DROP TABLE span_stats;
