//! Identity records: OAuth2 clients, users, refresh-token families and token-signing keys.
//! Stores only what cannot be turned back into a secret (argon2id hashes, SHA-256 digests of
//! refresh tokens); hashing and token rules live in the server's `auth` module, not here.

use crate::sql::{Sql, Tx, Val};
use crate::{Result, Store, corrupt};
use sqlx::Row;

/// An OAuth2 client as stored. `role` and `scope` are the server's vocabulary.
#[derive(Debug, Clone)]
pub struct ClientRecord {
    pub client_id: String,
    pub tenant_id: String,
    pub secret_hash: String,
    pub role: String,
    pub scope: String,
    pub channel: Option<String>,
    /// Locations a staff client is limited to (none: all).
    pub locations: Vec<String>,
}

/// A user (shopper, staff or admin) as stored.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub tenant_id: String,
    pub id: String,
    pub email: String,
    pub password_hash: String,
    pub name: String,
    pub phone: Option<String>,
    pub role: String,
    pub locations: Vec<String>,
}

/// One refresh token of a family (the token itself is never stored, only its digest).
#[derive(Debug, Clone)]
pub struct RefreshRecord {
    pub token_hash: String,
    pub tenant_id: String,
    pub family_id: String,
    pub subject: String,
    pub role: String,
    pub scope: String,
    pub client_id: Option<String>,
    pub issued_at_ms: i64,
    pub expires_at_ms: i64,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone)]
pub enum RefreshUse {
    /// The token was live: it is now used, and `next` (same family) replaces it.
    Rotated(RefreshRecord),
    /// The token had already been used: the whole family is revoked now.
    Reused,
    /// Unknown, revoked or expired.
    Invalid,
}

/// A token-signing key pair (base64 of the raw key bytes).
#[derive(Debug, Clone)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub algorithm: String,
    pub private_key: String,
    pub public_key: String,
    pub created_at_ms: i64,
    /// New tokens are signed with it until then.
    pub sign_until_ms: i64,
    /// It stays in the JWKS (tokens signed with it still verify) until then.
    pub publish_until_ms: i64,
}

fn list(v: &[String]) -> Val {
    if v.is_empty() {
        Val::NullText
    } else {
        Val::S(v.join(","))
    }
}

fn unlist(v: Option<String>) -> Vec<String> {
    v.map(|s| {
        s.split(',')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

impl Store {
    /// Creates a client; `false` when the client id is taken (nothing changes).
    pub async fn create_client(&self, c: &ClientRecord) -> Result<bool> {
        let rows = self
            .write_rows(
                &c.tenant_id,
                "INSERT INTO oauth_clients (client_id, tenant_id, secret_hash, role, scope, channel, locations, created_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (client_id) DO NOTHING RETURNING client_id",
                vec![
                    c.client_id.as_str().into(),
                    c.tenant_id.as_str().into(),
                    c.secret_hash.as_str().into(),
                    c.role.as_str().into(),
                    c.scope.as_str().into(),
                    c.channel.as_deref().into(),
                    list(&c.locations),
                    crate::now_ms().into(),
                ],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    pub async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        let row = sqlx::query("SELECT client_id, tenant_id, secret_hash, role, scope, channel, locations FROM oauth_clients WHERE client_id = $1")
            .bind(client_id)
            // A credential names its tenant: the lookup spans tenants by design.
            .fetch_optional(&mut *self.conn(crate::ALL_TENANTS).await?)
            .await?;
        row.map(|r| {
            Ok(ClientRecord {
                client_id: r.try_get("client_id")?,
                tenant_id: r.try_get("tenant_id")?,
                secret_hash: r.try_get("secret_hash")?,
                role: r.try_get("role")?,
                scope: r.try_get("scope")?,
                channel: r.try_get("channel")?,
                locations: unlist(r.try_get("locations")?),
            })
        })
        .transpose()
    }

    /// Creates a user; a shopper also becomes a customer with the same id (orders name it).
    /// `false` when the email is taken in the tenant (nothing changes).
    pub async fn create_user(&self, u: &UserRecord) -> Result<bool> {
        let u = u.clone();
        let (created, _) = self
            .unit(&u.tenant_id.clone(), move |tx| {
                let u = u.clone();
                Box::pin(async move {
                    let created = insert_user(tx, &u).await?;
                    Ok((created, created))
                })
            })
            .await?;
        Ok(created)
    }

    pub async fn user_by_email(&self, tenant: &str, email: &str) -> Result<Option<UserRecord>> {
        let row = sqlx::query(
            "SELECT tenant_id, id, email, password_hash, name, phone, role, locations FROM users WHERE tenant_id = $1 AND email = $2",
        )
        .bind(tenant)
        .bind(email)
        .fetch_optional(&mut *self.conn(tenant).await?)
        .await?;
        row.map(|r| user_row(&r)).transpose()
    }

    pub async fn user(&self, tenant: &str, id: &str) -> Result<Option<UserRecord>> {
        let row = sqlx::query("SELECT tenant_id, id, email, password_hash, name, phone, role, locations FROM users WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .fetch_optional(&mut *self.conn(tenant).await?)
            .await?;
        row.map(|r| user_row(&r)).transpose()
    }

    pub async fn insert_refresh_token(&self, r: &RefreshRecord) -> Result<()> {
        self.write_rows(&r.tenant_id, INSERT_REFRESH, refresh_args(r))
            .await?;
        Ok(())
    }

    /// Presents the refresh token whose digest is `hash` at `now_ms`: a live one is marked used
    /// and `next` (given the family's subject, role and scope by the caller via `make_next`) is
    /// stored in the same transaction; a used one revokes its whole family.
    pub async fn use_refresh_token(
        &self,
        hash: &str,
        now_ms: i64,
        make_next: impl Fn(&RefreshRecord) -> RefreshRecord + Send + Sync + 'static,
    ) -> Result<RefreshUse> {
        let hash = hash.to_string();
        let make_next = std::sync::Arc::new(make_next);
        let (outcome, _) = self
            // A refresh token names its tenant: the lookup spans tenants by design.
            .unit(crate::ALL_TENANTS, move |tx| {
                let (hash, make_next) = (hash.clone(), make_next.clone());
                Box::pin(async move {
                    let lock = if tx.locks_rows() { " FOR UPDATE" } else { "" };
                    let rows = tx
                        .rows(
                            &format!(
                                "SELECT token_hash, tenant_id, family_id, subject, role, scope, client_id, issued_at_ms, expires_at_ms, used_at_ms, revoked \
                                 FROM refresh_tokens WHERE token_hash = $1{lock}"
                            ),
                            vec![hash.as_str().into()],
                        )
                        .await?;
                    let Some(r) = rows.first() else { return Ok((RefreshUse::Invalid, false)) };
                    let record = RefreshRecord {
                        token_hash: r[0].text()?,
                        tenant_id: r[1].text()?,
                        family_id: r[2].text()?,
                        subject: r[3].text()?,
                        role: r[4].text()?,
                        scope: r[5].text()?,
                        client_id: r[6].opt_text()?,
                        issued_at_ms: r[7].int()?,
                        expires_at_ms: r[8].int()?,
                    };
                    let used = !matches!(r[9], Val::NullInt | Val::NullText);
                    let revoked = r[10].int()? != 0;
                    if revoked {
                        return Ok((RefreshUse::Invalid, false));
                    }
                    if used {
                        tx.exec("UPDATE refresh_tokens SET revoked = 1 WHERE family_id = $1", vec![record.family_id.as_str().into()]).await?;
                        return Ok((RefreshUse::Reused, true));
                    }
                    if record.expires_at_ms <= now_ms {
                        return Ok((RefreshUse::Invalid, false));
                    }
                    tx.exec("UPDATE refresh_tokens SET used_at_ms = $2 WHERE token_hash = $1", vec![hash.as_str().into(), now_ms.into()]).await?;
                    let next = make_next(&record);
                    tx.exec(INSERT_REFRESH, refresh_args(&next)).await?;
                    Ok((RefreshUse::Rotated(next), true))
                })
            })
            .await?;
        Ok(outcome)
    }

    /// Keys still published at `now_ms`, newest first.
    pub async fn signing_keys(&self, now_ms: i64) -> Result<Vec<SigningKeyRecord>> {
        let rows = sqlx::query(
            "SELECT kid, algorithm, private_key, public_key, created_at_ms, sign_until_ms, publish_until_ms FROM signing_keys \
             WHERE publish_until_ms > $1 ORDER BY created_at_ms DESC, kid",
        )
        .bind(now_ms)
        .fetch_all(&mut *self.conn(crate::ALL_TENANTS).await?)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SigningKeyRecord {
                    kid: r.try_get("kid")?,
                    algorithm: r.try_get("algorithm")?,
                    private_key: r.try_get("private_key")?,
                    public_key: r.try_get("public_key")?,
                    created_at_ms: r.try_get("created_at_ms")?,
                    sign_until_ms: r.try_get("sign_until_ms")?,
                    publish_until_ms: r.try_get("publish_until_ms")?,
                })
            })
            .collect()
    }

    pub async fn insert_signing_key(&self, k: &SigningKeyRecord) -> Result<()> {
        self.write_rows(
            crate::ALL_TENANTS,
            "INSERT INTO signing_keys (kid, algorithm, private_key, public_key, created_at_ms, sign_until_ms, publish_until_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (kid) DO NOTHING",
            vec![
                k.kid.as_str().into(),
                k.algorithm.as_str().into(),
                k.private_key.as_str().into(),
                k.public_key.as_str().into(),
                k.created_at_ms.into(),
                k.sign_until_ms.into(),
                k.publish_until_ms.into(),
            ],
        )
        .await?;
        Ok(())
    }
}

const INSERT_REFRESH: &str = "INSERT INTO refresh_tokens (token_hash, tenant_id, family_id, subject, role, scope, client_id, issued_at_ms, expires_at_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

fn refresh_args(r: &RefreshRecord) -> Vec<Val> {
    vec![
        r.token_hash.as_str().into(),
        r.tenant_id.as_str().into(),
        r.family_id.as_str().into(),
        r.subject.as_str().into(),
        r.role.as_str().into(),
        r.scope.as_str().into(),
        r.client_id.as_deref().into(),
        r.issued_at_ms.into(),
        r.expires_at_ms.into(),
    ]
}

async fn insert_user(tx: &mut Tx<'_>, u: &UserRecord) -> Result<bool> {
    let rows = tx
        .rows(
            "INSERT INTO users (tenant_id, id, email, password_hash, name, phone, role, locations, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (tenant_id, email) DO NOTHING RETURNING id",
            vec![
                u.tenant_id.as_str().into(),
                u.id.as_str().into(),
                u.email.as_str().into(),
                u.password_hash.as_str().into(),
                u.name.as_str().into(),
                u.phone.as_deref().into(),
                u.role.as_str().into(),
                list(&u.locations),
                crate::now_ms().into(),
            ],
        )
        .await?;
    if rows.is_empty() {
        return Ok(false);
    }
    if u.role == "shopper" {
        tx.exec(
            "INSERT INTO customers (tenant_id, id, email, name, phone) VALUES ($1, $2, $3, $4, $5)",
            vec![
                u.tenant_id.as_str().into(),
                u.id.as_str().into(),
                u.email.as_str().into(),
                u.name.as_str().into(),
                u.phone.as_deref().into(),
            ],
        )
        .await?;
    }
    Ok(true)
}

fn user_row(r: &sqlx::any::AnyRow) -> Result<UserRecord> {
    let id: String = r.try_get("id")?;
    if id.is_empty() {
        return Err(corrupt("a user without an id"));
    }
    Ok(UserRecord {
        tenant_id: r.try_get("tenant_id")?,
        id,
        email: r.try_get("email")?,
        password_hash: r.try_get("password_hash")?,
        name: r.try_get("name")?,
        phone: r.try_get("phone")?,
        role: r.try_get("role")?,
        locations: unlist(r.try_get("locations")?),
    })
}
