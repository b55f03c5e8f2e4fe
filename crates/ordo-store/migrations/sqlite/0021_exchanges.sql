-- Exchanges (issue 17): units of an order given back (a return) for other units shipped on a
-- fulfilment of their own. Money in minor units of the order's currency: what the units given
-- back are worth, what the new ones cost, how much of that cost the returned units' value has
-- covered so far (`credit_used`), and the tender that pays a positive difference.
CREATE TABLE exchanges (
  tenant_id TEXT NOT NULL, id TEXT NOT NULL, order_id TEXT NOT NULL, return_id TEXT NOT NULL,
  fulfillment_id TEXT NOT NULL, sku_in TEXT NOT NULL, quantity_in BIGINT NOT NULL,
  value_out BIGINT NOT NULL, value_in BIGINT NOT NULL, credit_used BIGINT NOT NULL DEFAULT 0,
  tender_no BIGINT, created_at_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, id));
CREATE INDEX exchanges_fulfillment ON exchanges (tenant_id, fulfillment_id);
CREATE INDEX exchanges_return ON exchanges (tenant_id, return_id);
