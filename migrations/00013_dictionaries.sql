-- +goose Up
-- zstd dictionaries learned from the deployment's own segments
-- (storage/dicts.go): maintenance trains one once enough segments are
-- stored, and daily after, and keeps it only when it compresses held-out
-- segments better than the one in use (the byte counts say by how much).
-- Never deleted: segments.dict names the dictionary each was written with
-- (1: the shipped one), and the segment's zstd frame names it by zstd_id.
CREATE TABLE zstd_dicts (
    id             smallint    PRIMARY KEY CHECK (id >= 2),
    zstd_id        bigint      NOT NULL UNIQUE,
    dict           bytea       NOT NULL,
    trained_at     timestamptz NOT NULL,
    sample_bytes   bigint      NOT NULL, -- uncompressed segment bytes read to train it
    held_out_bytes bigint      NOT NULL, -- of which held out to judge it
    bytes_before   bigint      NOT NULL, -- the held-out segments compressed with the dictionary in use
    bytes_after    bigint      NOT NULL  -- and with this one
);
COMMENT ON TABLE zstd_dicts IS
    'zstd dictionaries learned from stored segments; segments.dict refers to id (storage/dicts.go)';

-- +goose Down
DROP TABLE zstd_dicts;
