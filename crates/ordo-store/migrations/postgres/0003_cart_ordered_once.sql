-- A cart becomes an order once: the order that consumed it is recorded in the same transaction.
ALTER TABLE carts ADD COLUMN order_id TEXT;
