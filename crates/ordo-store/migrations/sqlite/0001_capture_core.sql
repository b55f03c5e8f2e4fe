-- Order capture core: catalog, network, stock, promotions, carts, tokens, orders, idempotency, outbox.
-- Every row carries tenant_id. Money is BIGINT minor units + a currency code. Times are unix ms.
CREATE TABLE meta (tenant_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (tenant_id, key));

CREATE TABLE products (
  tenant_id TEXT NOT NULL, sku TEXT NOT NULL, name TEXT NOT NULL, name_lc TEXT NOT NULL,
  category TEXT, attributes TEXT NOT NULL, price_amount BIGINT NOT NULL, currency TEXT NOT NULL,
  updated_at_ms BIGINT NOT NULL, PRIMARY KEY (tenant_id, sku));

CREATE TABLE locations (
  tenant_id TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL,
  lat REAL NOT NULL, lon REAL NOT NULL, PRIMARY KEY (tenant_id, id));

CREATE TABLE stock (
  tenant_id TEXT NOT NULL, sku TEXT NOT NULL, location_id TEXT NOT NULL,
  on_hand BIGINT NOT NULL, reserved BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, sku, location_id),
  CHECK (reserved >= 0 AND reserved <= on_hand));

CREATE TABLE stock_adjustments (
  id INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL, sku TEXT NOT NULL, location_id TEXT NOT NULL,
  delta BIGINT NOT NULL, on_hand_after BIGINT NOT NULL, reason TEXT NOT NULL, note TEXT, at_ms BIGINT NOT NULL);

CREATE TABLE customers (
  tenant_id TEXT NOT NULL, id TEXT NOT NULL, email TEXT NOT NULL, name TEXT NOT NULL, phone TEXT,
  PRIMARY KEY (tenant_id, id));

CREATE TABLE promotions (
  tenant_id TEXT NOT NULL, code TEXT NOT NULL, body TEXT NOT NULL, usage_limit BIGINT,
  times_used BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (tenant_id, code));

CREATE TABLE promotion_redemptions (
  tenant_id TEXT NOT NULL, code TEXT NOT NULL, customer_key TEXT NOT NULL, order_id TEXT NOT NULL,
  PRIMARY KEY (tenant_id, code, order_id));
CREATE INDEX promotion_redemptions_customer ON promotion_redemptions (tenant_id, code, customer_key);

CREATE TABLE carts (
  tenant_id TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, quoted TEXT NOT NULL,
  created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL, PRIMARY KEY (tenant_id, id));

CREATE TABLE payment_tokens (
  tenant_id TEXT NOT NULL, token TEXT NOT NULL, brand TEXT NOT NULL, last4 TEXT NOT NULL,
  exp_month BIGINT NOT NULL, exp_year BIGINT NOT NULL, outcome TEXT NOT NULL,
  created_at_ms BIGINT NOT NULL, order_id TEXT, PRIMARY KEY (tenant_id, token));

CREATE TABLE orders (
  tenant_id TEXT NOT NULL, id TEXT NOT NULL, number TEXT NOT NULL, status TEXT NOT NULL,
  channel TEXT NOT NULL, email TEXT NOT NULL, currency TEXT NOT NULL, total BIGINT NOT NULL,
  body TEXT NOT NULL, created_at_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, id), UNIQUE (tenant_id, number));

CREATE TABLE order_lines (
  tenant_id TEXT NOT NULL, order_id TEXT NOT NULL, line_no BIGINT NOT NULL, sku TEXT NOT NULL,
  quantity BIGINT NOT NULL, unit_price BIGINT NOT NULL, PRIMARY KEY (tenant_id, order_id, line_no));

CREATE TABLE order_allocations (
  tenant_id TEXT NOT NULL, order_id TEXT NOT NULL, sku TEXT NOT NULL, location_id TEXT NOT NULL,
  quantity BIGINT NOT NULL, PRIMARY KEY (tenant_id, order_id, sku, location_id));

CREATE TABLE order_payments (
  tenant_id TEXT NOT NULL, order_id TEXT NOT NULL, tender_no BIGINT NOT NULL, token TEXT NOT NULL,
  amount BIGINT NOT NULL, currency TEXT NOT NULL, authorization_id TEXT NOT NULL, status TEXT NOT NULL,
  PRIMARY KEY (tenant_id, order_id, tender_no));

CREATE TABLE idempotency (
  tenant_id TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT NOT NULL, status BIGINT NOT NULL,
  response TEXT, created_at_ms BIGINT NOT NULL, PRIMARY KEY (tenant_id, key));

CREATE TABLE outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL, event_type TEXT NOT NULL, aggregate_id TEXT NOT NULL,
  payload TEXT NOT NULL, created_at_ms BIGINT NOT NULL, published_at_ms BIGINT);
