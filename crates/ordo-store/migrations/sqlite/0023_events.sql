-- The event backbone (issue 18). Every outbox row is a CloudEvent: a stable id, a subject (the
-- order id, or the SKU for inventory) and a per-subject sequence from 1 without gaps
-- (`event_subjects` holds each subject's last number; the row stays locked until the writing
-- transaction commits, so one subject's events commit in their numbers' order). An order's
-- placement is its number 1 and creates no counter row: its second event creates the row at 2.
--
-- The relay (one holder of the `outbox` lease at a time, across processes) numbers committed rows
-- in id order in `position`: the event log's order. Positions are handed out by one holder at a
-- time, in commits of their own, so a reader of `position > n` never skips an event committed
-- later. Consumers (NATS, notifications, each webhook) follow the log with their own cursor.
ALTER TABLE outbox ADD COLUMN event_id TEXT;
ALTER TABLE outbox ADD COLUMN seq BIGINT;
ALTER TABLE outbox ADD COLUMN position BIGINT;
UPDATE outbox SET event_type = 'ordo.order.placed' WHERE event_type = 'OrderPlaced';
UPDATE outbox SET event_type = 'ordo.inventory.updated' WHERE event_type = 'InventoryAdjusted';
UPDATE outbox SET event_type = 'ordo.model.drift_detected' WHERE event_type = 'ModelDriftDetected';
CREATE INDEX outbox_subject ON outbox (tenant_id, aggregate_id, id);
UPDATE outbox SET seq = (SELECT COUNT(*) FROM outbox o2 WHERE o2.tenant_id = outbox.tenant_id AND o2.aggregate_id = outbox.aggregate_id AND o2.id <= outbox.id);
UPDATE outbox SET event_id = lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-8' || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)));
-- Rows written before the backbone existed are history: in the log (their ids are in commit
-- order: one writer per SQLite file, and no writer runs during a migration), behind every
-- consumer's cursor, so an upgrade sends no old order's email or webhook again.
UPDATE outbox SET position = id, published_at_ms = created_at_ms;
CREATE UNIQUE INDEX outbox_event_id ON outbox (event_id);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE position IS NULL;
CREATE INDEX outbox_log ON outbox (tenant_id, position);
CREATE INDEX outbox_position ON outbox (position);
CREATE INDEX outbox_published_at ON outbox (published_at_ms);

CREATE TABLE event_subjects (
  tenant_id TEXT NOT NULL, subject TEXT NOT NULL, last_seq BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, subject));
INSERT INTO event_subjects (tenant_id, subject, last_seq)
  SELECT tenant_id, aggregate_id, MAX(seq) FROM outbox GROUP BY tenant_id, aggregate_id;

-- The relay's lease: who publishes now, until when, and the last position handed out.
CREATE TABLE relay_lease (
  name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at_ms BIGINT NOT NULL, last_position BIGINT NOT NULL);
INSERT INTO relay_lease (name, holder, expires_at_ms, last_position) SELECT 'outbox', '', 0, COALESCE(MAX(id), 0) FROM outbox;
-- How far internal consumers of the log got (`nats`, `notifications`).
CREATE TABLE event_cursors (name TEXT PRIMARY KEY, position BIGINT NOT NULL);
INSERT INTO event_cursors (name, position) SELECT 'nats', COALESCE(MAX(id), 0) FROM outbox;
INSERT INTO event_cursors (name, position) SELECT 'notifications', COALESCE(MAX(id), 0) FROM outbox;

-- Webhook subscriptions: `events` a JSON array of types (or ["*"]); `cursor` the last log position
-- fanned out into deliveries; the circuit breaker's state.
CREATE TABLE webhooks (
  tenant_id TEXT NOT NULL, id TEXT NOT NULL, url TEXT NOT NULL, events TEXT NOT NULL, secret TEXT NOT NULL,
  created_at_ms BIGINT NOT NULL, cursor BIGINT NOT NULL,
  consecutive_failures BIGINT NOT NULL DEFAULT 0, open_until_ms BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, id));
-- One event for one endpoint: `pending` (due at `next_attempt_at_ms`), `delivered` or `dead`.
CREATE TABLE webhook_deliveries (
  tenant_id TEXT NOT NULL, id TEXT NOT NULL, webhook_id TEXT NOT NULL, position BIGINT NOT NULL,
  event_id TEXT NOT NULL, event_type TEXT NOT NULL, subject TEXT NOT NULL, body TEXT NOT NULL,
  status TEXT NOT NULL, attempts BIGINT NOT NULL, next_attempt_at_ms BIGINT NOT NULL,
  created_at_ms BIGINT NOT NULL, finished_at_ms BIGINT, window_start_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, id));
CREATE UNIQUE INDEX webhook_deliveries_event ON webhook_deliveries (tenant_id, webhook_id, position);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (webhook_id, position) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_heads ON webhook_deliveries (tenant_id, webhook_id, subject, position) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at_ms) WHERE status <> 'pending';
CREATE TABLE webhook_attempts (
  tenant_id TEXT NOT NULL, delivery_id TEXT NOT NULL, attempt BIGINT NOT NULL, at_ms BIGINT NOT NULL,
  status_code BIGINT, error TEXT, duration_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, delivery_id, attempt));
