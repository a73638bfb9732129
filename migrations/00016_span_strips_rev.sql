-- +goose Up
-- Each strip's revision, so a reader can keep strips it decoded and ask
-- PostgreSQL only for the ones written since (storage/stripcache.go): a
-- day of strips at one-minute steps is most of a Services page read's
-- time, and the hours of a day past are rewritten only when late spans
-- fold into them. A sequence, not a per-row counter: a strip deleted and
-- written again (retention, a roll-up) never comes back with a revision a
-- reader has seen.
CREATE SEQUENCE span_strips_rev;
ALTER TABLE span_strips ADD COLUMN rev bigint NOT NULL DEFAULT nextval('span_strips_rev');
COMMENT ON COLUMN span_strips.rev IS
    'the strip''s revision, new on every write (storage/stripcache.go)';

-- +goose Down
ALTER TABLE span_strips DROP COLUMN rev;
DROP SEQUENCE span_strips_rev;
