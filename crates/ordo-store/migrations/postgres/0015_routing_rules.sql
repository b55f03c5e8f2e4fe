-- A tenant's routing rules (issue 16), versioned: every change is a new version; decisions record
-- the version they were made under. The body is the rules as JSON.
CREATE TABLE routing_rules (
  tenant_id TEXT NOT NULL, version BIGINT NOT NULL, body TEXT NOT NULL, created_at_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, version));
ALTER TABLE routing_rules ENABLE ROW LEVEL SECURITY;
ALTER TABLE routing_rules FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON routing_rules USING (ordo_tenant_visible(tenant_id)) WITH CHECK (ordo_tenant_visible(tenant_id));
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ordo_app') THEN
    GRANT SELECT, INSERT, UPDATE, DELETE ON routing_rules TO ordo_app;
  END IF;
END $$;
