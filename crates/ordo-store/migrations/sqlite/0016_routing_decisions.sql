-- Routing inside placement (issue 16): every placed order's routing decision with the input it was
-- made from (JSON), and the packages each node was given per local day (its `load_today`, and
-- what `daily_capacity` is checked against). `seq` orders the admin listing.
CREATE TABLE routing_decisions (
  seq INTEGER PRIMARY KEY, tenant_id TEXT NOT NULL, id TEXT NOT NULL, order_id TEXT NOT NULL,
  created_at_ms BIGINT NOT NULL, body TEXT NOT NULL, UNIQUE (tenant_id, id));
CREATE INDEX routing_decisions_by_order ON routing_decisions (tenant_id, order_id);
CREATE TABLE location_load (
  tenant_id TEXT NOT NULL, location_id TEXT NOT NULL, day TEXT NOT NULL, packages BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, location_id, day));
