-- Returns (issue 17): requested by the order's shopper, guest or staff; received and
-- dispositioned at a node by staff. `lines` is a JSON array of {"sku", "quantity", "reason",
-- "received", "condition"?, "restocked", "refurbished", "written_off"}.
CREATE TABLE returns (
  tenant_id TEXT NOT NULL, id TEXT NOT NULL, order_id TEXT NOT NULL, rma_number TEXT NOT NULL,
  status TEXT NOT NULL, lines TEXT NOT NULL, location_id TEXT, refunded BIGINT NOT NULL DEFAULT 0,
  created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, id), UNIQUE (tenant_id, rma_number));
CREATE INDEX returns_order ON returns (tenant_id, order_id);
ALTER TABLE returns ENABLE ROW LEVEL SECURITY;
ALTER TABLE returns FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON returns USING (ordo_tenant_visible(tenant_id)) WITH CHECK (ordo_tenant_visible(tenant_id));
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ordo_app') THEN
    GRANT SELECT, INSERT, UPDATE, DELETE ON returns TO ordo_app;
  END IF;
END $$;
