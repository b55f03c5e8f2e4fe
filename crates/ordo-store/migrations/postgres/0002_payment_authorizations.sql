-- Every card authorization is recorded (status 'pending') before the gateway is called, so a
-- crash between authorization and the order's commit cannot leave authorized money without an
-- order: recovery voids what never became 'attached'.
CREATE TABLE payment_authorizations (
  tenant_id TEXT NOT NULL, id TEXT NOT NULL, idempotency_key TEXT NOT NULL, token TEXT NOT NULL,
  amount BIGINT NOT NULL, currency TEXT NOT NULL, status TEXT NOT NULL, gateway_authorization TEXT,
  order_id TEXT, created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, id));
CREATE INDEX payment_authorizations_open ON payment_authorizations (status, created_at_ms);
