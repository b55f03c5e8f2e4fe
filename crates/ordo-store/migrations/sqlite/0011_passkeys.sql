-- Passkeys: shoppers' WebAuthn credentials (the public key only; the private key never leaves the
-- authenticator) and the one-time challenges of their ceremonies. A challenge is used at most
-- once (`used_at_ms` is set by a conditional update); a step-up challenge is bound to the amount
-- of the order it was issued for.
CREATE TABLE passkey_credentials (
  tenant_id TEXT NOT NULL, credential_id TEXT NOT NULL, subject TEXT NOT NULL, public_key TEXT NOT NULL,
  sign_count BIGINT NOT NULL, created_at_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, credential_id));
CREATE INDEX passkey_credentials_subject ON passkey_credentials (tenant_id, subject);

CREATE TABLE webauthn_challenges (
  tenant_id TEXT NOT NULL, id TEXT NOT NULL, subject TEXT NOT NULL,
  purpose TEXT NOT NULL CHECK (purpose IN ('registration', 'step_up')),
  challenge TEXT NOT NULL, amount BIGINT, currency TEXT, created_at_ms BIGINT NOT NULL,
  expires_at_ms BIGINT NOT NULL, used_at_ms BIGINT,
  PRIMARY KEY (tenant_id, id));

-- Per-tenant settings; a missing row or NULL means the default (no step-up).
CREATE TABLE tenant_settings (
  tenant_id TEXT PRIMARY KEY, step_up_threshold BIGINT CHECK (step_up_threshold >= 0));
