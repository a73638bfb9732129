-- +goose Up
-- Tenants (issue 24): every stored row carries the tenant whose data it
-- is, and every read sees one tenant. A tenant is named by its callers
-- (X-Scope-OrgID, a token bound to it, its queue) and numbered here: a
-- smallint per row costs 2 bytes where the name would cost up to 151.
-- Tenant 0 is the default one, of requests and messages that name none;
-- every row stored before tenants existed is its (the column defaults to
-- 0, which PostgreSQL records without rewriting the tables).
--
-- Each unique key gains the tenant, so two tenants sending the same trace
-- ids, names or byte-identical segments never meet. Keys stay legal on a
-- distributed, time-partitioned table: segments' key still holds the
-- distribution column (trace_id_low) and the partition key (ts).
CREATE TABLE tenants (
    id   smallint PRIMARY KEY CHECK (id >= 0),
    name text     NOT NULL UNIQUE
);
COMMENT ON TABLE tenants IS 'tenant names and the numbers every row stores (storage/tenants.go); 0 is the default tenant';
INSERT INTO tenants (id, name) VALUES (0, 'single-tenant');

ALTER TABLE segments ADD COLUMN tenant smallint NOT NULL DEFAULT 0;
ALTER TABLE segments DROP CONSTRAINT segments_pkey;
ALTER TABLE segments ADD PRIMARY KEY (trace_id_low, tenant, ts, seg_uid);

ALTER TABLE span_index ADD COLUMN tenant smallint NOT NULL DEFAULT 0;
DROP INDEX span_index_ts_max;
CREATE INDEX span_index_ts_max ON span_index (tenant, ts_max);

ALTER TABLE span_names ADD COLUMN tenant smallint NOT NULL DEFAULT 0;
ALTER TABLE span_names DROP CONSTRAINT span_names_pkey, ADD PRIMARY KEY (tenant, pair_h, day);
DROP INDEX span_names_service;
CREATE INDEX span_names_service ON span_names (tenant, service_h);

ALTER TABLE remote_services ADD COLUMN tenant smallint NOT NULL DEFAULT 0;
ALTER TABLE remote_services DROP CONSTRAINT remote_services_pkey, ADD PRIMARY KEY (tenant, pair_h, day);
DROP INDEX remote_services_service;
CREATE INDEX remote_services_service ON remote_services (tenant, service_h);

ALTER TABLE autocomplete_tags ADD COLUMN tenant smallint NOT NULL DEFAULT 0;
ALTER TABLE autocomplete_tags DROP CONSTRAINT autocomplete_tags_pkey, ADD PRIMARY KEY (tenant, pair_h, day);
DROP INDEX autocomplete_tags_key;
CREATE INDEX autocomplete_tags_key ON autocomplete_tags (tenant, key_h);

ALTER TABLE dependency_links ADD COLUMN tenant smallint NOT NULL DEFAULT 0;
ALTER TABLE dependency_links DROP CONSTRAINT dependency_links_pkey, ADD PRIMARY KEY (tenant, hour, pair_h);

ALTER TABLE trace_links ADD COLUMN tenant smallint NOT NULL DEFAULT 0;
ALTER TABLE trace_links DROP CONSTRAINT trace_links_pkey, ADD PRIMARY KEY (trace_id_low, trace_id_high, tenant);

ALTER TABLE link_pending ADD COLUMN tenant smallint NOT NULL DEFAULT 0;
ALTER TABLE link_pending DROP CONSTRAINT link_pending_pkey, ADD PRIMARY KEY (trace_id_low, trace_id_high, tenant);

ALTER TABLE compact_pending ADD COLUMN tenant smallint NOT NULL DEFAULT 0;
ALTER TABLE compact_pending DROP CONSTRAINT compact_pending_pkey, ADD PRIMARY KEY (trace_id_low, trace_id_high, tenant);

-- span_stats named its tenant from the start; every row so far is the
-- default tenant's.
ALTER TABLE span_stats ALTER COLUMN tenant TYPE smallint USING 0;

-- +goose Down
ALTER TABLE span_stats ALTER COLUMN tenant TYPE text USING 'single-tenant';
ALTER TABLE compact_pending DROP CONSTRAINT compact_pending_pkey, ADD PRIMARY KEY (trace_id_low, trace_id_high);
ALTER TABLE compact_pending DROP COLUMN tenant;
ALTER TABLE link_pending DROP CONSTRAINT link_pending_pkey, ADD PRIMARY KEY (trace_id_low, trace_id_high);
ALTER TABLE link_pending DROP COLUMN tenant;
ALTER TABLE trace_links DROP CONSTRAINT trace_links_pkey, ADD PRIMARY KEY (trace_id_low, trace_id_high);
ALTER TABLE trace_links DROP COLUMN tenant;
ALTER TABLE dependency_links DROP CONSTRAINT dependency_links_pkey, ADD PRIMARY KEY (hour, pair_h);
ALTER TABLE dependency_links DROP COLUMN tenant;
DROP INDEX autocomplete_tags_key;
ALTER TABLE autocomplete_tags DROP CONSTRAINT autocomplete_tags_pkey, ADD PRIMARY KEY (pair_h, day);
ALTER TABLE autocomplete_tags DROP COLUMN tenant;
CREATE INDEX autocomplete_tags_key ON autocomplete_tags (key_h);
DROP INDEX remote_services_service;
ALTER TABLE remote_services DROP CONSTRAINT remote_services_pkey, ADD PRIMARY KEY (pair_h, day);
ALTER TABLE remote_services DROP COLUMN tenant;
CREATE INDEX remote_services_service ON remote_services (service_h);
DROP INDEX span_names_service;
ALTER TABLE span_names DROP CONSTRAINT span_names_pkey, ADD PRIMARY KEY (pair_h, day);
ALTER TABLE span_names DROP COLUMN tenant;
CREATE INDEX span_names_service ON span_names (service_h);
DROP INDEX span_index_ts_max;
ALTER TABLE span_index DROP COLUMN tenant;
CREATE INDEX span_index_ts_max ON span_index (ts_max);
ALTER TABLE segments DROP CONSTRAINT segments_pkey;
ALTER TABLE segments DROP COLUMN tenant;
ALTER TABLE segments ADD PRIMARY KEY (trace_id_low, ts, seg_uid);
DROP TABLE tenants;
