-- Who may call Ordo: OAuth2 clients (the app, staff tools, channels), users (shoppers, staff,
-- admins), refresh tokens (hashed, rotated, in families) and the keys that sign access tokens.
-- Secrets are never stored: client secrets and passwords as argon2id hashes, refresh tokens as
-- SHA-256 digests.
CREATE TABLE oauth_clients (
  client_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, secret_hash TEXT NOT NULL, role TEXT NOT NULL,
  scope TEXT NOT NULL, channel TEXT, locations TEXT, created_at_ms BIGINT NOT NULL);

CREATE TABLE users (
  tenant_id TEXT NOT NULL, id TEXT NOT NULL, email TEXT NOT NULL, password_hash TEXT NOT NULL,
  name TEXT NOT NULL, phone TEXT, role TEXT NOT NULL, locations TEXT, created_at_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, id), UNIQUE (tenant_id, email));

CREATE TABLE refresh_tokens (
  token_hash TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, family_id TEXT NOT NULL, subject TEXT NOT NULL,
  role TEXT NOT NULL, scope TEXT NOT NULL, client_id TEXT, issued_at_ms BIGINT NOT NULL,
  expires_at_ms BIGINT NOT NULL, used_at_ms BIGINT, revoked BIGINT NOT NULL DEFAULT 0);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE signing_keys (
  kid TEXT PRIMARY KEY, algorithm TEXT NOT NULL, private_key TEXT NOT NULL, public_key TEXT NOT NULL,
  created_at_ms BIGINT NOT NULL, sign_until_ms BIGINT NOT NULL, publish_until_ms BIGINT NOT NULL);

-- Every staff and admin action, written in the transaction of the change; append-only.
CREATE TABLE audit_log (
  id BIGSERIAL PRIMARY KEY, tenant_id TEXT NOT NULL, at_ms BIGINT NOT NULL, actor TEXT NOT NULL, role TEXT NOT NULL,
  action TEXT NOT NULL, target TEXT NOT NULL, before_state TEXT, after_state TEXT, client_ip TEXT, request_id TEXT);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the audit log is append-only';
END $$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
