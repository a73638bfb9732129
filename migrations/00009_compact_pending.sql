-- +goose Up
-- Compaction is a job of its own (storage/compact.go), apart from the
-- linker: the linker queues here each trace it found stored as several
-- segments, and the compactor claims them the way the linker claims
-- link_pending (FOR UPDATE SKIP LOCKED), rewriting each as one segment.
-- Keyed like link_pending, by the distribution column first.
CREATE TABLE compact_pending (
    trace_id_low  bigint NOT NULL,
    trace_id_high bigint NOT NULL,
    PRIMARY KEY (trace_id_low, trace_id_high)
);
COMMENT ON TABLE compact_pending IS
    'traces stored as several segments, queued by the linker for the compactor (storage/compact.go)';

-- +goose Down
DROP TABLE compact_pending;
