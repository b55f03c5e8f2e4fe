-- Routing inside placement (issue 16): every placed order's routing decision with the input it was
-- made from (JSON), and the packages each node was given per local day (its `load_today`, and
-- what `daily_capacity` is checked against). `seq` orders the admin listing.
CREATE TABLE routing_decisions (
  seq BIGSERIAL PRIMARY KEY, tenant_id TEXT NOT NULL, id TEXT NOT NULL, order_id TEXT NOT NULL,
  created_at_ms BIGINT NOT NULL, body TEXT NOT NULL, UNIQUE (tenant_id, id));
CREATE INDEX routing_decisions_by_order ON routing_decisions (tenant_id, order_id);
CREATE TABLE location_load (
  tenant_id TEXT NOT NULL, location_id TEXT NOT NULL, day TEXT NOT NULL, packages BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, location_id, day));
ALTER TABLE routing_decisions ENABLE ROW LEVEL SECURITY;
ALTER TABLE routing_decisions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON routing_decisions USING (ordo_tenant_visible(tenant_id)) WITH CHECK (ordo_tenant_visible(tenant_id));
ALTER TABLE location_load ENABLE ROW LEVEL SECURITY;
ALTER TABLE location_load FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON location_load USING (ordo_tenant_visible(tenant_id)) WITH CHECK (ordo_tenant_visible(tenant_id));
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ordo_app') THEN
    GRANT SELECT, INSERT, UPDATE, DELETE ON routing_decisions, location_load TO ordo_app;
    GRANT USAGE, SELECT ON SEQUENCE routing_decisions_seq_seq TO ordo_app;
  END IF;
END $$;
