-- A tenant's routing rules (issue 16), versioned: every change is a new version; decisions record
-- the version they were made under. The body is the rules as JSON.
CREATE TABLE routing_rules (
  tenant_id TEXT NOT NULL, version BIGINT NOT NULL, body TEXT NOT NULL, created_at_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, version));
