//! The keys that sign Ordo's access tokens: Ed25519 (JWS `EdDSA`), kept in storage so every
//! process of a deployment signs and verifies with the same set. A key signs for `ROTATE_AFTER`,
//! then stays published (tokens it signed still verify) for as long as such a token can live.
//! Verification never trusts the token's `alg`: only `EdDSA` with a published `kid` passes.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::DecodingKey;
use ordo_store::{SigningKeyRecord, Store, StoreError};
use std::sync::RwLock;
use std::time::Duration;

/// How long one key signs new tokens before the next one takes over.
pub const ROTATE_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a key stays published after it stopped signing (longer than any access token lives).
const PUBLISH_GRACE: Duration = Duration::from_secs(2 * 3600);
/// Unknown `kid`s reload the keys from storage (another process may have rotated) at most this often.
const RELOAD_EVERY: Duration = Duration::from_secs(10);

struct LoadedKey {
    kid: String,
    public: [u8; 32],
    /// The expanded key, kept: deriving it costs as much as a signature, so signing through a
    /// PKCS#8 encoding (derived again on every call) would double the cost of every token.
    signing: ed25519_dalek::SigningKey,
    decoding: DecodingKey,
    sign_until_ms: i64,
    publish_until_ms: i64,
}

/// The published keys, newest first, and when they were last read from storage.
pub struct KeyRing {
    keys: RwLock<(Vec<LoadedKey>, i64)>,
}

fn load(r: &SigningKeyRecord) -> Option<LoadedKey> {
    let seed: [u8; 32] = STANDARD.decode(&r.private_key).ok()?.try_into().ok()?;
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    let public = signing.verifying_key().to_bytes();
    Some(LoadedKey {
        kid: r.kid.clone(),
        public,
        signing,
        decoding: DecodingKey::from_ed_der(&public),
        sign_until_ms: r.sign_until_ms,
        publish_until_ms: r.publish_until_ms,
    })
}

impl KeyRing {
    /// Reads the published keys, creating a signing key when none can sign for a while.
    pub async fn open(store: &Store) -> Result<KeyRing, StoreError> {
        let ring = KeyRing {
            keys: RwLock::new((Vec::new(), 0)),
        };
        ring.refresh(store).await?;
        Ok(ring)
    }

    /// Re-reads the keys and rotates when the newest stops signing within a day.
    pub async fn refresh(&self, store: &Store) -> Result<(), StoreError> {
        let now = ordo_store::now_ms();
        let mut records = store.signing_keys(now).await?;
        let day = 24 * 3600 * 1000;
        if !records.iter().any(|r| r.sign_until_ms > now + day) {
            let seed: [u8; 32] = rand::random();
            let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
            let sign_until_ms = now + ROTATE_AFTER.as_millis() as i64;
            let record = SigningKeyRecord {
                kid: uuid::Uuid::now_v7().simple().to_string(),
                algorithm: "EdDSA".into(),
                private_key: STANDARD.encode(seed),
                public_key: URL_SAFE_NO_PAD.encode(signing.verifying_key().to_bytes()),
                created_at_ms: now,
                sign_until_ms,
                publish_until_ms: sign_until_ms + PUBLISH_GRACE.as_millis() as i64,
            };
            store.insert_signing_key(&record).await?;
            records = store.signing_keys(now).await?;
        }
        let loaded: Vec<LoadedKey> = records.iter().filter_map(load).collect();
        if let Ok(mut k) = self.keys.write() {
            *k = (loaded, now);
        }
        Ok(())
    }

    /// A compact JWS (`EdDSA`, with `kid`) of `claims`, signed with the newest key still signing.
    /// `None` only if storage held no key.
    pub fn sign_jwt(
        &self,
        claims: &impl serde::Serialize,
    ) -> Option<Result<String, serde_json::Error>> {
        use ed25519_dalek::Signer;
        let now = ordo_store::now_ms();
        let keys = self.keys.read().ok()?;
        let k = keys.0.iter().find(|k| k.sign_until_ms > now)?;
        let header = serde_json::json!({"typ": "JWT", "alg": "EdDSA", "kid": k.kid});
        let claims = match serde_json::to_vec(claims) {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        let mut token = URL_SAFE_NO_PAD.encode(header.to_string());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(claims));
        let signature = k.signing.sign(token.as_bytes());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature.to_bytes()));
        Some(Ok(token))
    }

    /// The verifying key of `kid`, if it is published.
    pub fn with_decoding_key<T>(&self, kid: &str, f: impl FnOnce(&DecodingKey) -> T) -> Option<T> {
        let now = ordo_store::now_ms();
        let keys = self.keys.read().ok()?;
        keys.0
            .iter()
            .find(|k| k.kid == kid && k.publish_until_ms > now)
            .map(|k| f(&k.decoding))
    }

    /// Whether an unknown `kid` may trigger a reload from storage now.
    pub fn may_reload(&self) -> bool {
        let now = ordo_store::now_ms();
        self.keys
            .read()
            .map(|k| now - k.1 >= RELOAD_EVERY.as_millis() as i64)
            .unwrap_or(false)
    }

    /// The JSON Web Key Set of every published key (RFC 7517 / RFC 8037).
    pub fn jwks(&self) -> serde_json::Value {
        let now = ordo_store::now_ms();
        let keys = self.keys.read().map(|k| {
            k.0.iter()
                .filter(|k| k.publish_until_ms > now)
                .map(|k| {
                    serde_json::json!({
                        "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                        "kid": k.kid, "x": URL_SAFE_NO_PAD.encode(k.public),
                    })
                })
                .collect::<Vec<_>>()
        });
        serde_json::json!({ "keys": keys.unwrap_or_default() })
    }
}
