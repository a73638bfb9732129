-- +goose Up
-- Dependency links are kept up to date as spans arrive, with no batch job:
-- every write marks its traces in link_pending; the linker
-- (storage/links.go) takes marked traces, links each whole trace as
-- Zipkin's DependencyLinker does, and applies the difference from what that
-- trace contributed before to hourly totals. A trace whose spans arrive in
-- several batches is therefore counted once, with its final shape.
--
-- Both per-trace tables are keyed by the trace id (low half first: the
-- future Citus distribution column), so they can be co-located with spans.
CREATE TABLE link_pending (
    trace_id_low  bigint NOT NULL,
    trace_id_high bigint NOT NULL,
    PRIMARY KEY (trace_id_low, trace_id_high)
);

-- What each trace currently contributes to dependency_links, so a re-link
-- can subtract it. hour is the hour the trace started.
CREATE TABLE trace_links (
    trace_id_low  bigint      NOT NULL,
    trace_id_high bigint      NOT NULL,
    hour          timestamptz NOT NULL,
    links         jsonb       NOT NULL, -- [{"parent","child","callCount","errorCount"}]
    PRIMARY KEY (trace_id_low, trace_id_high)
);
CREATE INDEX trace_links_hour ON trace_links (hour);

-- Hourly totals: GET /api/v2/dependencies sums at most lookback/1h rows per
-- edge, whatever the span volume. Small, so a Citus reference table.
CREATE TABLE dependency_links (
    hour   timestamptz NOT NULL,
    parent text        NOT NULL,
    child  text        NOT NULL,
    calls  bigint      NOT NULL,
    errors bigint      NOT NULL,
    PRIMARY KEY (hour, parent, child)
);

-- +goose Down
DROP TABLE dependency_links;
DROP TABLE trace_links;
DROP TABLE link_pending;
