-- Row-level security: every table with a tenant_id admits only the rows of the tenants in the
-- setting `ordo.tenants` (one tenant id, several separated by U+001F, or '*' for work that spans
-- tenants by design). Ordo sets it on every pooled connection it hands out and in every write
-- transaction it begins, so a query that forgets its tenant filter sees nothing of another tenant.
--
-- Superusers bypass row-level security, so Ordo's sessions run as the role `ordo_app` (`SET ROLE`
-- after connecting) whenever the connecting user may: it is created here when the migrating user
-- is allowed to create roles. FORCE makes the policies bind the tables' owner as well.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ordo_app') THEN
    BEGIN
      CREATE ROLE ordo_app NOLOGIN;
    EXCEPTION
      WHEN duplicate_object OR unique_violation THEN NULL; -- created concurrently by another database's migration
      WHEN insufficient_privilege THEN RAISE NOTICE 'cannot create role ordo_app; row-level security binds the table owner (FORCE)';
    END;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ordo_app') THEN
    BEGIN
      EXECUTE format('GRANT ordo_app TO %I', current_user);
    EXCEPTION WHEN OTHERS THEN NULL; -- already a member, or a superuser (member of every role)
    END;
    EXECUTE 'GRANT USAGE ON SCHEMA ' || quote_ident(current_schema()) || ' TO ordo_app';
    EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ' || quote_ident(current_schema()) || ' TO ordo_app';
    EXECUTE 'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ' || quote_ident(current_schema()) || ' TO ordo_app';
    EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA ' || quote_ident(current_schema()) || ' GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ordo_app';
    EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA ' || quote_ident(current_schema()) || ' GRANT USAGE, SELECT ON SEQUENCES TO ordo_app';
  END IF;
END $$;

CREATE FUNCTION ordo_tenant_visible(tenant TEXT) RETURNS BOOLEAN LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE COALESCE(current_setting('ordo.tenants', true), '')
           WHEN '' THEN false
           WHEN '*' THEN true
           ELSE tenant = ANY (string_to_array(current_setting('ordo.tenants', true), chr(31)))
         END
$$;

DO $$
DECLARE t TEXT;
BEGIN
  FOR t IN
    SELECT c.table_name FROM information_schema.columns c
    JOIN information_schema.tables tb ON tb.table_schema = c.table_schema AND tb.table_name = c.table_name
    WHERE c.table_schema = current_schema() AND c.column_name = 'tenant_id' AND tb.table_type = 'BASE TABLE'
  LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (ordo_tenant_visible(tenant_id)) WITH CHECK (ordo_tenant_visible(tenant_id))', t);
  END LOOP;
END $$;
