//! Ordo as its own OAuth2 authorization server: the grants (client credentials, password,
//! refresh token), shopper sign-up, and the verification of every bearer token a request
//! carries. Access tokens are short-lived EdDSA JWTs; refresh tokens are random, stored only as
//! digests, rotate on every use, and a reused one revokes its whole family.

use super::keys::KeyRing;
use super::passwords;
use super::{Principal, Role};
use jsonwebtoken::{Algorithm, Validation};
use ordo_store::{RefreshRecord, RefreshUse, Store, UserRecord};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longest token accepted in an `Authorization` header (anything longer is not ours).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// No access token lives longer than this, whatever the configuration says.
pub const MAX_ACCESS_TTL: Duration = Duration::from_secs(3600);
/// How long a refresh token (and so a signed-in session) lasts without use.
pub const REFRESH_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Failed sign-ins in a row (per account, per client IP) before the token endpoint answers 429.
pub const MAX_FAILURES: u32 = 10;
/// How long an account or IP stays locked after too many failures.
pub const LOCKOUT: Duration = Duration::from_secs(300);

/// The claims of an Ordo access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    pub tenant: String,
    pub role: Role,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

/// The token endpoint's answer (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

/// An RFC 6749 §5.2 error of the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub status: u16,
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unsupported_grant_type`, `invalid_scope`,
    /// or `too_many_attempts` (429, with Retry-After).
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn new(status: u16, error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            status,
            error,
            description: description.into(),
        }
    }
    fn server(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "token endpoint failed");
        OAuthError::new(
            500,
            "server_error",
            "the authorization server failed; it has been logged",
        )
    }
    fn unavailable() -> Self {
        OAuthError::new(
            503,
            "temporarily_unavailable",
            "the authorization server cannot reach its storage; retry shortly",
        )
    }
}

impl From<ordo_store::StoreError> for OAuthError {
    fn from(e: ordo_store::StoreError) -> Self {
        match e {
            ordo_store::StoreError::Busy | ordo_store::StoreError::Unavailable(_) => {
                OAuthError::unavailable()
            }
            other => OAuthError::server(other),
        }
    }
}

/// Why a bearer token was refused (the text goes to `error_description`, never a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidToken(pub String);

/// Token settings, fixed at start.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
}

/// Issues and verifies tokens; counts failed sign-ins.
pub struct Authority {
    pub keys: KeyRing,
    pub settings: TokenSettings,
    /// An external identity provider whose tokens are accepted too (production).
    pub external: Option<super::oidc::ExternalIssuer>,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
    /// Tokens verified before, with their expiry (unix seconds): a signature is checked once per
    /// token, not once per request. Bounded; cleared when full.
    verified: std::sync::RwLock<HashMap<String, (Principal, i64)>>,
}

/// Most verified tokens remembered.
const VERIFIED_CACHE: usize = 10_000;

fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn random_token() -> String {
    passwords::new_secret()
}

impl Authority {
    pub fn new(keys: KeyRing, mut settings: TokenSettings) -> Self {
        settings.access_ttl = settings
            .access_ttl
            .clamp(Duration::from_secs(60), MAX_ACCESS_TTL);
        Authority {
            keys,
            settings,
            external: None,
            failures: Mutex::new(HashMap::new()),
            verified: std::sync::RwLock::new(HashMap::new()),
        }
    }

    /// Accepts the tokens of an external identity provider as well.
    pub fn with_external_issuer(mut self, issuer: super::oidc::ExternalIssuer) -> Self {
        self.external = Some(issuer);
        self
    }

    /// A signed access token for `p`, and its lifetime in seconds.
    pub fn access_token(&self, p: &Principal, ttl: Duration) -> Result<(String, u64), OAuthError> {
        let ttl = ttl.min(MAX_ACCESS_TTL);
        let now = (ordo_store::now_ms() / 1000) as i64;
        let claims = Claims {
            iss: self.settings.issuer.clone(),
            sub: p.subject.clone(),
            aud: self.settings.audience.clone(),
            exp: now + ttl.as_secs() as i64,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::now_v7().to_string(),
            tenant: p.tenant.clone(),
            role: p.role,
            scope: p.scope.clone(),
            order_id: p.order_id.clone(),
            locations: p.locations.clone(),
            channel: p.channel.clone(),
        };
        let token = self
            .keys
            .sign_jwt(&claims)
            .ok_or_else(|| OAuthError::server("no signing key"))?
            .map_err(OAuthError::server)?;
        Ok((token, ttl.as_secs()))
    }

    /// A guest's token for one order (read, track, cancel, return), living as long as any access token may.
    pub fn guest_token(&self, tenant: &str, order_id: &str) -> Result<String, OAuthError> {
        let p = Principal {
            tenant: tenant.to_string(),
            subject: format!("guest:{order_id}"),
            role: Role::Guest,
            scope: Role::Guest.default_scope().to_string(),
            order_id: Some(order_id.to_string()),
            locations: vec![],
            channel: None,
        };
        Ok(self.access_token(&p, MAX_ACCESS_TTL)?.0)
    }

    /// Verifies an Ordo access token: `EdDSA` only, a published `kid`, our issuer and audience,
    /// inside its validity window.
    pub async fn verify(&self, store: &Store, token: &str) -> Result<Principal, InvalidToken> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(InvalidToken("the token is too long".into()));
        }
        let now = (ordo_store::now_ms() / 1000) as i64;
        if let Some((p, exp)) = self
            .verified
            .read()
            .ok()
            .and_then(|c| c.get(token).cloned())
        {
            if exp > now {
                return Ok(p);
            }
        }
        let (principal, exp) = self.verify_uncached(store, token).await?;
        if let Ok(mut cache) = self.verified.write() {
            if cache.len() >= VERIFIED_CACHE {
                cache.clear();
            }
            cache.insert(token.to_string(), (principal.clone(), exp));
        }
        Ok(principal)
    }

    async fn verify_uncached(
        &self,
        store: &Store,
        token: &str,
    ) -> Result<(Principal, i64), InvalidToken> {
        if let Some(external) = self.external.as_ref().filter(|e| e.claims_issuer(token)) {
            return external.verify(token).await;
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| InvalidToken("the token is malformed".into()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(InvalidToken(format!(
                "tokens signed with {:?} are not accepted",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| InvalidToken("the token names no key (kid)".into()))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 5;
        let decode = |key: &jsonwebtoken::DecodingKey| {
            jsonwebtoken::decode::<Claims>(token, key, &validation)
        };
        let mut decoded = self.keys.with_decoding_key(&kid, decode);
        if decoded.is_none() && self.keys.may_reload() {
            if let Err(e) = self.keys.refresh(store).await {
                tracing::warn!(error = %e, "cannot reload signing keys");
            }
            decoded = self.keys.with_decoding_key(&kid, decode);
        }
        let data = decoded
            .ok_or_else(|| InvalidToken("the token was signed with an unknown key".into()))?
            .map_err(describe)?;
        let c = data.claims;
        if c.iat > (ordo_store::now_ms() / 1000) as i64 + 5 {
            return Err(InvalidToken("the token was issued in the future".into()));
        }
        let principal = Principal {
            tenant: c.tenant,
            subject: c.sub,
            role: c.role,
            scope: c.scope,
            order_id: c.order_id,
            locations: c.locations,
            channel: c.channel,
        };
        Ok((principal, c.exp))
    }

    /// Checks a client's id and secret (failures count towards the lockout).
    pub async fn authenticate_client(
        &self,
        store: &Store,
        client_id: &str,
        secret: &str,
        ip: IpAddr,
    ) -> Result<ordo_store::ClientRecord, OAuthError> {
        self.check_not_locked(&[format!("client:{client_id}"), format!("ip:{ip}")])?;
        let client = store.client(client_id).await?;
        let ok = passwords::verify(
            secret.to_string(),
            client.as_ref().map(|c| c.secret_hash.clone()),
        )
        .await;
        match client {
            Some(c) if ok => {
                self.succeeded(&[format!("client:{client_id}")]);
                Ok(c)
            }
            _ => {
                self.failed(&[format!("client:{client_id}"), format!("ip:{ip}")]);
                Err(OAuthError::new(
                    401,
                    "invalid_client",
                    "unknown client or wrong secret",
                ))
            }
        }
    }

    /// `grant_type=client_credentials`.
    pub async fn client_credentials(
        &self,
        store: &Store,
        client_id: &str,
        secret: &str,
        scope: Option<&str>,
        ip: IpAddr,
    ) -> Result<TokenResponse, OAuthError> {
        let client = self
            .authenticate_client(store, client_id, secret, ip)
            .await?;
        let role = Role::parse(&client.role).ok_or_else(|| {
            OAuthError::server(format!("client {client_id} has role {}", client.role))
        })?;
        let scope = narrow_scope(&client.scope, scope)?;
        let p = Principal {
            tenant: client.tenant_id,
            subject: client.client_id,
            role,
            scope,
            order_id: None,
            locations: client.locations,
            channel: client.channel,
        };
        let (access_token, expires_in) = self.access_token(&p, self.settings.access_ttl)?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in,
            refresh_token: None,
            scope: p.scope,
        })
    }

    /// `grant_type=password`: a shopper (or staff member) of `tenant` signs in.
    pub async fn password(
        &self,
        store: &Store,
        tenant: &str,
        username: &str,
        password: &str,
        scope: Option<&str>,
        ip: IpAddr,
    ) -> Result<TokenResponse, OAuthError> {
        let account = format!("user:{tenant}:{}", username.to_lowercase());
        self.check_not_locked(&[account.clone(), format!("ip:{ip}")])?;
        let user = store
            .user_by_email(tenant, &username.to_lowercase())
            .await?;
        let ok = passwords::verify(
            password.to_string(),
            user.as_ref().map(|u| u.password_hash.clone()),
        )
        .await;
        let user = match user {
            Some(u) if ok => u,
            _ => {
                self.failed(&[account, format!("ip:{ip}")]);
                return Err(OAuthError::new(
                    400,
                    "invalid_grant",
                    "wrong email or password",
                ));
            }
        };
        self.succeeded(&[account]);
        self.session(store, &user, scope, None).await
    }

    /// `grant_type=refresh_token`: rotates the refresh token; a reused one revokes its family.
    pub async fn refresh(
        &self,
        store: &Store,
        refresh_token: &str,
        scope: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        if refresh_token.len() > MAX_TOKEN_LEN {
            return Err(OAuthError::new(
                400,
                "invalid_grant",
                "the refresh token is not valid",
            ));
        }
        let next_token = random_token();
        let next_hash = digest(&next_token);
        let now = ordo_store::now_ms();
        let outcome = store
            .use_refresh_token(&digest(refresh_token), now, move |old| RefreshRecord {
                token_hash: next_hash.clone(),
                issued_at_ms: now,
                expires_at_ms: now + REFRESH_TTL.as_millis() as i64,
                ..old.clone()
            })
            .await?;
        let record = match outcome {
            RefreshUse::Rotated(r) => r,
            RefreshUse::Reused => {
                tracing::warn!("a used refresh token was presented again; its family is revoked");
                return Err(OAuthError::new(
                    400,
                    "invalid_grant",
                    "the refresh token was already used; the session is revoked, sign in again",
                ));
            }
            RefreshUse::Invalid => {
                return Err(OAuthError::new(
                    400,
                    "invalid_grant",
                    "the refresh token is not valid",
                ));
            }
        };
        let role = Role::parse(&record.role)
            .ok_or_else(|| OAuthError::server("a refresh token with an unknown role"))?;
        let scope = narrow_scope(&record.scope, scope)?;
        let locations = match role {
            Role::Staff => store
                .user(&record.tenant_id, &record.subject)
                .await?
                .map(|u| u.locations)
                .unwrap_or_default(),
            _ => vec![],
        };
        let p = Principal {
            tenant: record.tenant_id,
            subject: record.subject,
            role,
            scope,
            order_id: None,
            locations,
            channel: None,
        };
        let (access_token, expires_in) = self.access_token(&p, self.settings.access_ttl)?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in,
            refresh_token: Some(next_token),
            scope: p.scope,
        })
    }

    /// A signed-in session for `user`: an access token and the first refresh token of a new family.
    pub async fn session(
        &self,
        store: &Store,
        user: &UserRecord,
        scope: Option<&str>,
        client_id: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        let role = Role::parse(&user.role)
            .ok_or_else(|| OAuthError::server(format!("user has role {}", user.role)))?;
        let scope = narrow_scope(role.default_scope(), scope)?;
        let p = Principal {
            tenant: user.tenant_id.clone(),
            subject: user.id.clone(),
            role,
            scope,
            order_id: None,
            locations: user.locations.clone(),
            channel: None,
        };
        let (access_token, expires_in) = self.access_token(&p, self.settings.access_ttl)?;
        let refresh = random_token();
        let now = ordo_store::now_ms();
        store
            .insert_refresh_token(&RefreshRecord {
                token_hash: digest(&refresh),
                tenant_id: p.tenant.clone(),
                family_id: uuid::Uuid::now_v7().to_string(),
                subject: p.subject.clone(),
                role: role.as_str().to_string(),
                scope: p.scope.clone(),
                client_id: client_id.map(str::to_string),
                issued_at_ms: now,
                expires_at_ms: now + REFRESH_TTL.as_millis() as i64,
            })
            .await?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in,
            refresh_token: Some(refresh),
            scope: p.scope,
        })
    }

    fn check_not_locked(&self, keys: &[String]) -> Result<(), OAuthError> {
        let Ok(map) = self.failures.lock() else {
            return Ok(());
        };
        for k in keys {
            if let Some((n, last)) = map.get(k) {
                if *n >= MAX_FAILURES && last.elapsed() < LOCKOUT {
                    return Err(OAuthError::new(
                        429,
                        "too_many_attempts",
                        "too many failed sign-ins; retry after the Retry-After delay",
                    ));
                }
            }
        }
        Ok(())
    }

    fn failed(&self, keys: &[String]) {
        let Ok(mut map) = self.failures.lock() else {
            return;
        };
        if map.len() > 100_000 {
            map.retain(|_, (_, last)| last.elapsed() < LOCKOUT);
        }
        for k in keys {
            let e = map.entry(k.clone()).or_insert((0, Instant::now()));
            if e.1.elapsed() >= LOCKOUT {
                e.0 = 0;
            }
            e.0 += 1;
            e.1 = Instant::now();
        }
    }

    fn succeeded(&self, keys: &[String]) {
        if let Ok(mut map) = self.failures.lock() {
            for k in keys {
                map.remove(k);
            }
        }
    }
}

/// The scope granted: the requested one if it is within `allowed`, else `invalid_scope`.
fn narrow_scope(allowed: &str, requested: Option<&str>) -> Result<String, OAuthError> {
    let Some(req) = requested.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(allowed.to_string());
    };
    let allowed: Vec<&str> = allowed.split_whitespace().collect();
    let mut granted = Vec::new();
    for s in req.split_whitespace() {
        if !allowed.contains(&s) {
            return Err(OAuthError::new(
                400,
                "invalid_scope",
                format!("the scope {s:?} is not granted to this client"),
            ));
        }
        if !granted.contains(&s) {
            granted.push(s);
        }
    }
    Ok(granted.join(" "))
}

pub(crate) fn describe(e: jsonwebtoken::errors::Error) -> InvalidToken {
    use jsonwebtoken::errors::ErrorKind as K;
    InvalidToken(
        match e.kind() {
            K::ExpiredSignature => "the token has expired",
            K::ImmatureSignature => "the token is not valid yet",
            K::InvalidAudience => "the token is for another audience",
            K::InvalidIssuer => "the token is from another issuer",
            K::InvalidSignature => "the token's signature does not verify",
            K::MissingRequiredClaim(_) => "the token lacks a required claim",
            K::InvalidAlgorithm => "the token's algorithm is not accepted",
            _ => "the token is malformed",
        }
        .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_narrow_but_never_widen() {
        assert_eq!(
            narrow_scope("catalog carts orders", None).unwrap(),
            "catalog carts orders"
        );
        assert_eq!(
            narrow_scope("catalog carts orders", Some("carts")).unwrap(),
            "carts"
        );
        assert_eq!(
            narrow_scope("catalog carts", Some("admin"))
                .unwrap_err()
                .error,
            "invalid_scope"
        );
    }

    #[test]
    fn refresh_tokens_are_stored_as_digests() {
        let t = random_token();
        assert_eq!(digest(&t).len(), 64);
        assert_ne!(digest(&t), t);
        assert_ne!(random_token(), t);
    }
}
