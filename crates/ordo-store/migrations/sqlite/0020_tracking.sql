-- Carrier tracking events of shipped fulfilments (issue 17), kept as they arrive (`seq`), read in
-- the order they happened (`at_ms`). Coordinates are optional, in degrees.
CREATE TABLE tracking_events (
  tenant_id TEXT NOT NULL, fulfillment_id TEXT NOT NULL, seq BIGINT NOT NULL, order_id TEXT NOT NULL,
  status TEXT NOT NULL, at_ms BIGINT NOT NULL, lat DOUBLE PRECISION, lon DOUBLE PRECISION,
  description TEXT, received_at_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, fulfillment_id, seq));
