-- Idempotency keys are claimed before any side effect (a concurrent duplicate sees the claim and
-- never reaches the payment gateway); a claim carries its attempt's id and time so an abandoned
-- one can be taken over after its lease. Keys are scoped by operation: existing ones were orders'.
ALTER TABLE idempotency ADD COLUMN claim_id TEXT;
ALTER TABLE idempotency ADD COLUMN claimed_at_ms BIGINT;
UPDATE idempotency SET key = 'orders::' || key;
