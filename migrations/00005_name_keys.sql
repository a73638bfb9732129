-- +goose Up
-- The name tables and dependency_links were keyed on their text: a B-tree
-- entry is limited to ~2.7 kB, so one span with a long, incompressible
-- service or span name made its whole batch unstorable. They are keyed on
-- a 64-bit hash of the text instead (zipq_key, the same function the
-- writer computes in Go: storage/text.go), and keep the full text, which
-- reads compare after finding rows by hash.
CREATE FUNCTION zipq_key(a text, b text) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN ('x' || left(md5(octet_length(a)::text || ':' || a || b), 16))::bit(64)::bigint;
COMMENT ON FUNCTION zipq_key(text, text) IS
    'first 64 bits of md5(<bytes of a> || '':'' || a || b) as a signed bigint: the key of a name pair';

ALTER TABLE span_names ADD COLUMN service_h bigint, ADD COLUMN pair_h bigint;
UPDATE span_names SET service_h = zipq_key(service, ''), pair_h = zipq_key(service, name);
ALTER TABLE span_names ALTER service_h SET NOT NULL, ALTER pair_h SET NOT NULL,
    DROP CONSTRAINT span_names_pkey, ADD PRIMARY KEY (pair_h, day);
CREATE INDEX span_names_service ON span_names (service_h);

ALTER TABLE remote_services ADD COLUMN service_h bigint, ADD COLUMN pair_h bigint;
UPDATE remote_services SET service_h = zipq_key(service, ''), pair_h = zipq_key(service, remote);
ALTER TABLE remote_services ALTER service_h SET NOT NULL, ALTER pair_h SET NOT NULL,
    DROP CONSTRAINT remote_services_pkey, ADD PRIMARY KEY (pair_h, day);
CREATE INDEX remote_services_service ON remote_services (service_h);

ALTER TABLE autocomplete_tags ADD COLUMN key_h bigint, ADD COLUMN pair_h bigint;
UPDATE autocomplete_tags SET key_h = zipq_key(key, ''), pair_h = zipq_key(key, value);
ALTER TABLE autocomplete_tags ALTER key_h SET NOT NULL, ALTER pair_h SET NOT NULL,
    DROP CONSTRAINT autocomplete_tags_pkey, ADD PRIMARY KEY (pair_h, day);
CREATE INDEX autocomplete_tags_key ON autocomplete_tags (key_h);

ALTER TABLE dependency_links ADD COLUMN pair_h bigint;
UPDATE dependency_links SET pair_h = zipq_key(parent, child);
ALTER TABLE dependency_links ALTER pair_h SET NOT NULL,
    DROP CONSTRAINT dependency_links_pkey, ADD PRIMARY KEY (hour, pair_h);

-- What each trace contributes to dependency_links, for the linker to
-- subtract when it re-links the trace: 16 bytes an edge (zipq_key of parent
-- and child, calls int4, errors int4, big-endian) instead of a JSON document
-- with both names, which cost more per span than the spans' index.
ALTER TABLE trace_links ADD COLUMN edges bytea;
UPDATE trace_links t SET edges = (
    SELECT coalesce(string_agg(int8send(zipq_key(l->>'parent', l->>'child'))
        || int4send(coalesce((l->>'callCount')::int, 0)) || int4send(coalesce((l->>'errorCount')::int, 0)), ''::bytea), ''::bytea)
    FROM jsonb_array_elements(t.links) AS l);
ALTER TABLE trace_links ALTER edges SET NOT NULL, DROP COLUMN links;
COMMENT ON COLUMN trace_links.edges IS 'per edge: zipq_key(parent, child) int8, calls int4, errors int4, big-endian';

-- A write marks each trace it stored a new segment for with the links that
-- segment alone gives (edges with names, storage/links.go). When the trace
-- still has only that segment at link time, the linker uses them instead
-- of reading the trace back; NULL means read it.
ALTER TABLE link_pending ADD COLUMN hour timestamptz, ADD COLUMN edges bytea;

-- +goose Down
ALTER TABLE link_pending DROP COLUMN hour, DROP COLUMN edges;
ALTER TABLE trace_links ADD COLUMN links jsonb NOT NULL DEFAULT '[]', DROP COLUMN edges; -- contributions are lost: relink
ALTER TABLE dependency_links DROP CONSTRAINT dependency_links_pkey, ADD PRIMARY KEY (hour, parent, child), DROP COLUMN pair_h;
ALTER TABLE autocomplete_tags DROP CONSTRAINT autocomplete_tags_pkey, ADD PRIMARY KEY (key, value, day), DROP COLUMN key_h, DROP COLUMN pair_h;
ALTER TABLE remote_services DROP CONSTRAINT remote_services_pkey, ADD PRIMARY KEY (service, remote, day), DROP COLUMN service_h, DROP COLUMN pair_h;
ALTER TABLE span_names DROP CONSTRAINT span_names_pkey, ADD PRIMARY KEY (service, name, day), DROP COLUMN service_h, DROP COLUMN pair_h;
DROP FUNCTION zipq_key(text, text);
