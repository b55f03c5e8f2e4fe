-- Safety stock (issue 16): units per SKU and location held back from online sale; available =
-- on_hand - reserved - safety_stock (never below 0). And the inventory change feed: one row per
-- change of a stock row, numbered in commit order. Writers take the tenant's feed clock as the
-- last statement of their transaction, so a later number is always a later commit and a reader
-- that has seen number n has seen every change before it.
ALTER TABLE stock ADD COLUMN safety_stock BIGINT NOT NULL DEFAULT 0 CHECK (safety_stock >= 0);
-- Checkout holds: units a cart holds for a while (`stock_holds`), summed per row in `held`;
-- available = on_hand - reserved - held - safety_stock (never below 0).
ALTER TABLE stock ADD COLUMN held BIGINT NOT NULL DEFAULT 0 CHECK (held >= 0);
CREATE TABLE stock_holds (
  tenant_id TEXT NOT NULL, cart_id TEXT NOT NULL, sku TEXT NOT NULL, location_id TEXT NOT NULL,
  quantity BIGINT NOT NULL CHECK (quantity > 0), expires_at_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, cart_id, sku, location_id));
CREATE INDEX stock_holds_expiry ON stock_holds (expires_at_ms);
CREATE TABLE feed_clock (tenant_id TEXT PRIMARY KEY, last_seq BIGINT NOT NULL);
CREATE TABLE inventory_changes (
  tenant_id TEXT NOT NULL, seq BIGINT NOT NULL, sku TEXT NOT NULL, location_id TEXT NOT NULL,
  on_hand BIGINT NOT NULL, reserved BIGINT NOT NULL, held BIGINT NOT NULL, safety_stock BIGINT NOT NULL, at_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, seq));
-- The stock as it stands is where every tenant's feed begins.
INSERT INTO inventory_changes (tenant_id, seq, sku, location_id, on_hand, reserved, held, safety_stock, at_ms)
  SELECT tenant_id, ROW_NUMBER() OVER (PARTITION BY tenant_id ORDER BY sku, location_id), sku, location_id, on_hand, reserved, 0, 0, updated_at_ms FROM stock;
INSERT INTO feed_clock (tenant_id, last_seq) SELECT tenant_id, COUNT(*) FROM stock GROUP BY tenant_id;
ALTER TABLE feed_clock ENABLE ROW LEVEL SECURITY;
ALTER TABLE feed_clock FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON feed_clock USING (ordo_tenant_visible(tenant_id)) WITH CHECK (ordo_tenant_visible(tenant_id));
ALTER TABLE stock_holds ENABLE ROW LEVEL SECURITY;
ALTER TABLE stock_holds FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON stock_holds USING (ordo_tenant_visible(tenant_id)) WITH CHECK (ordo_tenant_visible(tenant_id));
ALTER TABLE inventory_changes ENABLE ROW LEVEL SECURITY;
ALTER TABLE inventory_changes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON inventory_changes USING (ordo_tenant_visible(tenant_id)) WITH CHECK (ordo_tenant_visible(tenant_id));
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ordo_app') THEN
    GRANT SELECT, INSERT, UPDATE, DELETE ON feed_clock, inventory_changes, stock_holds TO ordo_app;
  END IF;
END $$;
