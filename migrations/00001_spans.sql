-- +goose Up
-- Spans are range-partitioned by day on ts (the span's own start time, so a
-- redelivery lands in the same partition) and keyed by
-- (trace_id_low, ts, span_uid): the key holds the future Citus distribution
-- column and the partition key, so it stays legal when sharded, and span_uid
-- (a hash of the canonical span) makes a redelivered batch insert nothing.
CREATE TABLE spans (
    trace_id_low   bigint      NOT NULL,
    trace_id_high  bigint      NOT NULL,
    ts             timestamptz NOT NULL,
    span_uid       uuid        NOT NULL,
    span_id        bigint      NOT NULL,
    parent_id      bigint,
    kind           smallint    NOT NULL,
    local_service  text        NOT NULL, -- '' when absent, so equality needs no IS NULL
    remote_service text        NOT NULL,
    name           text        NOT NULL,
    duration       bigint,               -- microseconds, NULL when absent
    is_error       boolean     NOT NULL,
    terms          text[]      NOT NULL, -- annotationQuery terms: tag key, key=value, annotation value
    span           bytea       NOT NULL, -- canonical proto3 encoding of the whole span
    PRIMARY KEY (trace_id_low, ts, span_uid)
) PARTITION BY RANGE (ts);

CREATE INDEX spans_service_ts ON spans (local_service, ts);
CREATE INDEX spans_service_name_ts ON spans (local_service, name, ts);
CREATE INDEX spans_service_remote_ts ON spans (local_service, remote_service, ts) WHERE remote_service <> '';
CREATE INDEX spans_ts ON spans USING brin (ts);

-- Spans outside the daily partitions (undated, far past or future) land
-- here; creating a daily partition moves its rows out (storage/partitions.go).
-- The GIN index on terms lives on each partition, never on the parent:
-- Citus columnar partitions cannot carry it.
CREATE TABLE spans_other PARTITION OF spans DEFAULT;
CREATE INDEX spans_other_terms ON spans_other USING gin (terms);

-- Name tables answer /services, /spans, /remoteServices and autocomplete
-- without touching spans. They are keyed by day so retention can trim them.
CREATE TABLE span_names (
    day     date NOT NULL,
    service text NOT NULL,
    name    text NOT NULL,
    PRIMARY KEY (service, name, day)
);
CREATE TABLE remote_services (
    day     date NOT NULL,
    service text NOT NULL,
    remote  text NOT NULL,
    PRIMARY KEY (service, remote, day)
);
CREATE TABLE autocomplete_tags (
    day   date NOT NULL,
    key   text NOT NULL,
    value text NOT NULL,
    PRIMARY KEY (key, value, day)
);

-- +goose Down
DROP TABLE autocomplete_tags;
DROP TABLE remote_services;
DROP TABLE span_names;
DROP TABLE spans;
