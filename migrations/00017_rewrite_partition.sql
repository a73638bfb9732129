-- +goose Up
-- A day's partitions are rewritten for two reasons now: keep by value
-- (the thinned traces' rows left out) and a tenant's byte budget (its
-- rows of the day deleted first, storage/budget.go). Rows deleted in
-- place free no disk: a daily partition takes no new rows once its day is
-- past, so the space would never be reused, and only the copy returns it
-- to the file system. The function copies the live rows minus the
-- thinned ones, whichever the reason; its name says so.
ALTER FUNCTION zipq_thin_partition(text, date) RENAME TO zipq_rewrite_partition;
COMMENT ON FUNCTION zipq_rewrite_partition(text, date) IS
    'rewrites one day''s partition of parent by copy, index and swap, without the rows deleted and the traces thinned_traces lists for the day: the disk they took goes back to the file system';
-- The old name stays, calling the new one, for processes of the version
-- before that still thin days during a rolling upgrade.
CREATE FUNCTION zipq_thin_partition(parent text, d date, OUT bytes_before bigint, OUT bytes_after bigint)
    LANGUAGE sql AS 'SELECT * FROM zipq_rewrite_partition(parent, d)';
COMMENT ON FUNCTION zipq_thin_partition(text, date) IS
    'zipq_rewrite_partition under its name before migration 17, for processes not upgraded yet';

-- +goose Down
DROP FUNCTION zipq_thin_partition(text, date);
COMMENT ON FUNCTION zipq_rewrite_partition(text, date) IS NULL;
ALTER FUNCTION zipq_rewrite_partition(text, date) RENAME TO zipq_thin_partition;
