-- Carrier tracking events of shipped fulfilments (issue 17), kept as they arrive (`seq`), read in
-- the order they happened (`at_ms`). Coordinates are optional, in degrees.
CREATE TABLE tracking_events (
  tenant_id TEXT NOT NULL, fulfillment_id TEXT NOT NULL, seq BIGINT NOT NULL, order_id TEXT NOT NULL,
  status TEXT NOT NULL, at_ms BIGINT NOT NULL, lat DOUBLE PRECISION, lon DOUBLE PRECISION,
  description TEXT, received_at_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, fulfillment_id, seq));
ALTER TABLE tracking_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE tracking_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tracking_events USING (ordo_tenant_visible(tenant_id)) WITH CHECK (ordo_tenant_visible(tenant_id));
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ordo_app') THEN
    GRANT SELECT, INSERT, UPDATE, DELETE ON tracking_events TO ordo_app;
  END IF;
END $$;
