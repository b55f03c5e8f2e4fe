-- Safety stock (issue 16): units per SKU and location held back from online sale; available =
-- on_hand - reserved - safety_stock (never below 0). And the inventory change feed: one row per
-- change of a stock row, numbered in commit order (one writer at a time: the tenant's feed clock
-- is taken in the writing transaction).
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
INSERT INTO inventory_changes (tenant_id, seq, sku, location_id, on_hand, reserved, held, safety_stock, at_ms)
  SELECT tenant_id, ROW_NUMBER() OVER (PARTITION BY tenant_id ORDER BY sku, location_id), sku, location_id, on_hand, reserved, 0, 0, updated_at_ms FROM stock;
INSERT INTO feed_clock (tenant_id, last_seq) SELECT tenant_id, COUNT(*) FROM stock GROUP BY tenant_id;
