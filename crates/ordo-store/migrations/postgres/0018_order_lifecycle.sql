-- The order lifecycle (issue 17). Fulfilments: one per node and ship-to address, made when an
-- order is placed; `lines` is a JSON array of {"sku", "quantity"} (the units it still carries);
-- `claim` is the payment operation in flight for it (a ship waiting on its capture).
CREATE TABLE fulfillments (
  tenant_id TEXT NOT NULL, id TEXT NOT NULL, order_id TEXT NOT NULL, location_id TEXT NOT NULL,
  address_index BIGINT NOT NULL, status TEXT NOT NULL, lines TEXT NOT NULL, carrier TEXT,
  tracking_number TEXT, claim TEXT, created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, id));
CREATE INDEX fulfillments_order ON fulfillments (tenant_id, order_id);
CREATE INDEX fulfillments_location ON fulfillments (tenant_id, location_id, status);
-- What became of each order line's units: shipped, cancelled, returned.
ALTER TABLE order_lines ADD COLUMN shipped BIGINT NOT NULL DEFAULT 0 CHECK (shipped >= 0);
ALTER TABLE order_lines ADD COLUMN cancelled BIGINT NOT NULL DEFAULT 0 CHECK (cancelled >= 0);
ALTER TABLE order_lines ADD COLUMN returned BIGINT NOT NULL DEFAULT 0 CHECK (returned >= 0);
-- Money per tender: captured, refunded, voided (minor units; the status column follows them).
ALTER TABLE order_payments ADD COLUMN captured BIGINT NOT NULL DEFAULT 0 CHECK (captured >= 0);
ALTER TABLE order_payments ADD COLUMN refunded BIGINT NOT NULL DEFAULT 0 CHECK (refunded >= 0);
ALTER TABLE order_payments ADD COLUMN voided BIGINT NOT NULL DEFAULT 0 CHECK (voided >= 0);
-- Every change of an order after its placement, oldest first (placement itself is read from
-- the order: placed, confirmed and allocated happen in its one commit).
CREATE TABLE order_timeline (
  tenant_id TEXT NOT NULL, order_id TEXT NOT NULL, seq BIGINT NOT NULL, at_ms BIGINT NOT NULL,
  actor TEXT NOT NULL, action TEXT NOT NULL, from_status TEXT, to_status TEXT, reason TEXT,
  detail TEXT, PRIMARY KEY (tenant_id, order_id, seq));
-- Ordo's record of every call to the gateway after authorization: capture, void, refund. Its id
-- is the gateway idempotency key; `pending` until answered, `unknown` after a timeout until a
-- status query resolves it.
CREATE TABLE payment_operations (
  tenant_id TEXT NOT NULL, id TEXT NOT NULL, order_id TEXT NOT NULL, tender_no BIGINT NOT NULL,
  kind TEXT NOT NULL, amount BIGINT NOT NULL, currency TEXT NOT NULL, status TEXT NOT NULL,
  subject TEXT NOT NULL, gateway_ref TEXT, reason TEXT, created_at_ms BIGINT NOT NULL,
  updated_at_ms BIGINT NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE INDEX payment_operations_order ON payment_operations (tenant_id, order_id);
CREATE INDEX payment_operations_open ON payment_operations (status, updated_at_ms);
-- The sandbox gateway's own ledger (it stands in for an outside service; Ordo's transactions
-- never write it): one row per operation, keyed by the caller's idempotency key.
CREATE TABLE sandbox_gateway (
  key TEXT PRIMARY KEY, kind TEXT NOT NULL, auth_ref TEXT NOT NULL, amount BIGINT NOT NULL,
  outcome TEXT NOT NULL, answered BIGINT NOT NULL, created_at_ms BIGINT NOT NULL);
CREATE INDEX sandbox_gateway_authorization ON sandbox_gateway (auth_ref);
ALTER TABLE fulfillments ENABLE ROW LEVEL SECURITY;
ALTER TABLE fulfillments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON fulfillments USING (ordo_tenant_visible(tenant_id)) WITH CHECK (ordo_tenant_visible(tenant_id));
ALTER TABLE order_timeline ENABLE ROW LEVEL SECURITY;
ALTER TABLE order_timeline FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON order_timeline USING (ordo_tenant_visible(tenant_id)) WITH CHECK (ordo_tenant_visible(tenant_id));
ALTER TABLE payment_operations ENABLE ROW LEVEL SECURITY;
ALTER TABLE payment_operations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON payment_operations USING (ordo_tenant_visible(tenant_id)) WITH CHECK (ordo_tenant_visible(tenant_id));
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ordo_app') THEN
    GRANT SELECT, INSERT, UPDATE, DELETE ON fulfillments, order_timeline, payment_operations, sandbox_gateway TO ordo_app;
  END IF;
END $$;
