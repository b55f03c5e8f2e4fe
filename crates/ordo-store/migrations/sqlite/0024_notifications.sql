-- Notifications to shoppers (issue 18): the notifier follows the event log (cursor
-- `event_cursors.notifications`) and writes one row per message and channel — `email` (to an
-- address), `in_app` (read by the shopper's stream), `push` (to a Web Push subscription) — with
-- what it says, rendered when the event was seen. Email and push rows are `pending` until sent
-- (retried with backoff) and then `sent`, or `dead` after the last attempt; in-app rows are
-- `sent` when written. `position` is the event's place in the log: a stream resumes after it.
CREATE TABLE notifications (
  tenant_id TEXT NOT NULL, id TEXT NOT NULL, customer_id TEXT, channel TEXT NOT NULL, target TEXT NOT NULL,
  event_id TEXT NOT NULL, event_type TEXT NOT NULL, position BIGINT NOT NULL, order_id TEXT NOT NULL,
  title TEXT NOT NULL, body_text TEXT NOT NULL, body_html TEXT,
  status TEXT NOT NULL, attempts BIGINT NOT NULL, next_attempt_at_ms BIGINT NOT NULL, last_error TEXT,
  created_at_ms BIGINT NOT NULL, sent_at_ms BIGINT,
  PRIMARY KEY (tenant_id, id));
CREATE UNIQUE INDEX notifications_once ON notifications (tenant_id, event_id, channel, target);
CREATE INDEX notifications_pending ON notifications (next_attempt_at_ms) WHERE status = 'pending';
CREATE INDEX notifications_in_app ON notifications (tenant_id, customer_id, position) WHERE channel = 'in_app';
CREATE INDEX notifications_created ON notifications (created_at_ms);

-- A shopper's choices (absent: every channel on).
CREATE TABLE notification_preferences (
  tenant_id TEXT NOT NULL, customer_id TEXT NOT NULL, email BIGINT NOT NULL, push BIGINT NOT NULL,
  in_app BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, customer_id));

-- Web Push subscriptions of shoppers' browsers (RFC 8030; keys of RFC 8291).
CREATE TABLE push_subscriptions (
  tenant_id TEXT NOT NULL, id TEXT NOT NULL, customer_id TEXT NOT NULL, endpoint TEXT NOT NULL,
  p256dh TEXT NOT NULL, auth TEXT NOT NULL, created_at_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, id));
CREATE UNIQUE INDEX push_subscriptions_endpoint ON push_subscriptions (tenant_id, customer_id, endpoint);
