//! An external identity provider's tokens (production): a JWT whose `iss` is the configured
//! issuer is verified against the provider's JWKS (fetched, cached, re-fetched at most every
//! `REFETCH_EVERY` when an unknown `kid` appears), with the configured audience. Only asymmetric
//! algorithms of the key's own family pass; `none` and HMAC never do. Claims map to a principal:
//! `sub`, `role` (one of Ordo's roles; default shopper), `tenant` (default: the process's).

use super::tokens::InvalidToken;
use super::{Principal, Role};
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// A JWKS is re-fetched for an unknown `kid` at most this often (and at least this often used).
const REFETCH_EVERY: Duration = Duration::from_secs(60);
/// Most a JWKS answer may weigh.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// The provider as configured.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    pub issuer: String,
    pub audience: String,
    /// Where the keys are; default: the issuer's discovery document's `jwks_uri`.
    pub jwks_url: Option<String>,
    /// The tenant of tokens without a `tenant` claim.
    pub default_tenant: String,
}

#[derive(Deserialize)]
struct ExternalClaims {
    sub: String,
    exp: i64,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    locations: Vec<String>,
}

/// Verifies the provider's tokens with its cached keys.
pub struct ExternalIssuer {
    pub settings: OidcSettings,
    http: reqwest::Client,
    keys: tokio::sync::Mutex<()>,
    cache: RwLock<(Option<JwkSet>, Option<Instant>)>,
}

impl ExternalIssuer {
    pub fn new(settings: OidcSettings) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        ExternalIssuer {
            settings,
            http,
            keys: tokio::sync::Mutex::new(()),
            cache: RwLock::new((None, None)),
        }
    }

    /// Whether the token claims to come from this provider (its unverified `iss`).
    pub fn claims_issuer(&self, token: &str) -> bool {
        use base64::Engine as _;
        let Some(payload) = token.split('.').nth(1) else {
            return false;
        };
        let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload) else {
            return false;
        };
        #[derive(Deserialize)]
        struct Iss {
            iss: Option<String>,
        }
        serde_json::from_slice::<Iss>(&bytes)
            .ok()
            .and_then(|c| c.iss)
            .is_some_and(|iss| iss == self.settings.issuer)
    }

    async fn fetch(&self) -> Result<JwkSet, String> {
        let url = match &self.settings.jwks_url {
            Some(u) => u.clone(),
            None => {
                let discovery = format!(
                    "{}/.well-known/openid-configuration",
                    self.settings.issuer.trim_end_matches('/')
                );
                let doc: serde_json::Value = self.get_json(&discovery).await?;
                doc["jwks_uri"]
                    .as_str()
                    .ok_or("the discovery document has no jwks_uri")?
                    .to_string()
            }
        };
        let v = self.get_json(&url).await?;
        serde_json::from_value(v).map_err(|e| format!("the JWKS is malformed: {e}"))
    }

    async fn get_json(&self, url: &str) -> Result<serde_json::Value, String> {
        let r = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("cannot fetch {url}: {e}"))?;
        if !r.status().is_success() {
            return Err(format!("{url} answered {}", r.status()));
        }
        let bytes = r
            .bytes()
            .await
            .map_err(|e| format!("cannot read {url}: {e}"))?;
        if bytes.len() > MAX_JWKS_BYTES {
            return Err(format!("{url} is larger than {MAX_JWKS_BYTES} bytes"));
        }
        serde_json::from_slice(&bytes).map_err(|e| format!("{url} is not JSON: {e}"))
    }

    /// The key for `kid`: from the cache, or after one (rate-limited) re-fetch.
    async fn key(&self, kid: &str) -> Result<jsonwebtoken::jwk::Jwk, InvalidToken> {
        let cached =
            |c: &(Option<JwkSet>, Option<Instant>)| c.0.as_ref().and_then(|s| s.find(kid).cloned());
        if let Some(k) = self.cache.read().ok().and_then(|c| cached(&c)) {
            return Ok(k);
        }
        let _one_fetch_at_a_time = self.keys.lock().await;
        let stale = self
            .cache
            .read()
            .ok()
            .is_none_or(|c| c.1.is_none_or(|t| t.elapsed() >= REFETCH_EVERY));
        if stale {
            match self.fetch().await {
                Ok(set) => {
                    if let Ok(mut c) = self.cache.write() {
                        *c = (Some(set), Some(Instant::now()));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot fetch the identity provider's keys");
                    if let Ok(mut c) = self.cache.write() {
                        c.1 = Some(Instant::now());
                    }
                }
            }
        }
        self.cache
            .read()
            .ok()
            .and_then(|c| cached(&c))
            .ok_or_else(|| {
                InvalidToken(
                    "the token was signed with a key the identity provider does not publish".into(),
                )
            })
    }

    /// Verifies a provider token and maps it to a principal.
    /// Returns the principal and the token's expiry (unix seconds).
    pub async fn verify(&self, token: &str) -> Result<(Principal, i64), InvalidToken> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| InvalidToken("the token is malformed".into()))?;
        let kid = header
            .kid
            .ok_or_else(|| InvalidToken("the token names no key (kid)".into()))?;
        let jwk = self.key(&kid).await?;
        let allowed: &[Algorithm] = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => &[
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ],
            AlgorithmParameters::EllipticCurve(_) => &[Algorithm::ES256, Algorithm::ES384],
            AlgorithmParameters::OctetKeyPair(p) => {
                use base64::Engine as _;
                let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(&p.x)
                    .unwrap_or_default();
                if x.len() != 32 {
                    return Err(InvalidToken("the provider's key is malformed".into()));
                }
                &[Algorithm::EdDSA]
            }
            _ => {
                return Err(InvalidToken(
                    "only RSA, EC and Ed25519 keys are accepted".into(),
                ));
            }
        };
        if !allowed.contains(&header.alg) {
            return Err(InvalidToken(format!(
                "tokens signed with {:?} are not accepted for this key",
                header.alg
            )));
        }
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|_| InvalidToken("the provider's key is malformed".into()))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        let data = jsonwebtoken::decode::<ExternalClaims>(token, &key, &validation)
            .map_err(super::tokens::describe)?;
        let c = data.claims;
        let role = match c.role.as_deref() {
            None => Role::Shopper,
            Some(r) => Role::parse(r)
                .filter(|r| *r != Role::Guest)
                .ok_or_else(|| InvalidToken(format!("the role {r:?} is not one of Ordo's")))?,
        };
        let exp = c.exp;
        Ok((
            Principal {
                tenant: c
                    .tenant
                    .unwrap_or_else(|| self.settings.default_tenant.clone()),
                subject: c.sub,
                role,
                scope: c.scope.unwrap_or_else(|| role.default_scope().to_string()),
                order_id: None,
                locations: c.locations,
                channel: None,
            },
            exp,
        ))
    }
}
