-- +goose Up
-- Migration 00006 (Go: storage/migrate_segments.go, it has to compress)
-- moved every span of the per-span layout into segments; the table and its
-- daily partitions go.
DROP TABLE spans CASCADE;

-- +goose Down
-- The per-span layout is not rebuilt: down-migrating past here needs a
-- restore from backup.
SELECT 1;
