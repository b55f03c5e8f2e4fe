//! A Web Push endpoint for tests that plays both the push service and the
//! browser: it accepts push requests (RFC 8030), checks their VAPID
//! authorization (RFC 8292) and decrypts their `aes128gcm` payload
//! (RFC 8291 + RFC 8188) with the subscription's private key.
//!
//! ```text
//! let sub = PushSubscriber::start().await;
//! // hand sub.endpoint / sub.p256dh / sub.auth (or sub.subscription_json())
//! // to the code under test, let it push, then:
//! let msgs = sub.wait_for_messages(1, Duration::from_secs(5)).await;
//! assert_eq!(msgs[0].plaintext, b"hello");
//! assert!(msgs[0].vapid_verified);
//! ```
//!
//! Answers: `201 Created` (stored), `503` while `fail_next` is pending,
//! `410 Gone` after `set_gone(true)`, `400` with a reason in the body for a
//! request it cannot decrypt (also listed by `rejections()`), `404` for other
//! paths. A request with a missing or invalid VAPID header is still stored,
//! with `vapid_verified == false`, so a test can assert on it.
//!
//! Dependencies: tokio, axum 0.8 (`http1`, `tokio`), p256 0.13 (`ecdh`,
//! `ecdsa`, `std`), hkdf 0.12, sha2 0.10, aes-gcm 0.10, base64 0.22, rand 0.9,
//! serde_json 1.

// Test support: not every helper is used by every test.
#![allow(dead_code)]
// aes-gcm 0.10 and p256 0.13 speak generic-array 0.14, whose slice helpers are deprecated.
#![allow(deprecated)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use hkdf::Hkdf;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use rand::RngCore;
use sha2::Sha256;
use tokio::task::JoinHandle;

/// Longest VAPID JWT lifetime a push service must accept (RFC 8292 §2).
const MAX_JWT_LIFETIME_SECS: u64 = 24 * 60 * 60;
/// Clock skew tolerated on `exp`.
const CLOCK_LEEWAY_SECS: u64 = 60;

/// One push message the subscriber accepted and decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushMessage {
    /// The decrypted payload, padding removed.
    pub plaintext: Vec<u8>,
    /// `TTL` request header, if present and numeric.
    pub ttl: Option<u64>,
    /// `Urgency` request header, if present.
    pub urgency: Option<String>,
    /// `Topic` request header, if present.
    pub topic: Option<String>,
    /// The JWT's `sub` claim (e.g. `mailto:ops@example.com`), if a JWT could be decoded.
    pub vapid_subject: Option<String>,
    /// The JWT's `aud` claim, if a JWT could be decoded.
    pub vapid_audience: Option<String>,
    /// The `k=` parameter (base64url application server public key), if present.
    pub vapid_public_key: Option<String>,
    /// True when the ES256 signature verifies with the `k=` key, `aud` is the
    /// endpoint's origin (`http://127.0.0.1:PORT`; the port-less
    /// `http://127.0.0.1` is accepted too, as some senders drop the port),
    /// and `exp` lies in the future, at most 24 h ahead.
    pub vapid_verified: bool,
    /// Why `vapid_verified` is false (`None` when it is true).
    pub vapid_error: Option<String>,
}

#[derive(Default)]
struct Inner {
    messages: Vec<PushMessage>,
    rejections: Vec<String>,
    fail_remaining: usize,
    attempts: usize,
    gone: bool,
}

struct Shared {
    id: String,
    origin: String,
    origin_no_port: String,
    secret: SecretKey,
    public_sec1: Vec<u8>,
    auth: [u8; 16],
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A browser-side push subscription with its own HTTP endpoint, running in
/// the background of the current tokio runtime until dropped.
pub struct PushSubscriber {
    /// `http://127.0.0.1:PORT/push/<random id>`
    pub endpoint: String,
    /// base64url (no padding) uncompressed P-256 public key, 65 bytes.
    pub p256dh: String,
    /// base64url (no padding) 16-byte authentication secret.
    pub auth: String,
    /// Address the endpoint listens on.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rng().fill_bytes(&mut b);
    b
}

fn random_secret_key() -> SecretKey {
    loop {
        // Fails only for 0 or >= the group order: practically never.
        if let Ok(sk) = SecretKey::from_slice(&random_bytes::<32>()) {
            return sk;
        }
    }
}

impl PushSubscriber {
    /// Generates a key pair and auth secret, binds `127.0.0.1:0` and serves
    /// `POST /push/<id>`. Panics only if the bind fails.
    pub async fn start() -> PushSubscriber {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("PushSubscriber: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("PushSubscriber: local_addr");

        let secret = random_secret_key();
        let public_sec1 = secret
            .public_key()
            .as_affine()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        let auth = random_bytes::<16>();
        let id = URL_SAFE_NO_PAD.encode(random_bytes::<16>());

        let shared = Arc::new(Shared {
            origin: format!("http://{addr}"),
            origin_no_port: format!("http://{}", addr.ip()),
            id: id.clone(),
            secret,
            public_sec1: public_sec1.clone(),
            auth,
            inner: Mutex::default(),
        });
        let app = Router::new()
            .route("/push/{id}", post(handle_push))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });

        PushSubscriber {
            endpoint: format!("http://{addr}/push/{id}"),
            p256dh: URL_SAFE_NO_PAD.encode(&public_sec1),
            auth: URL_SAFE_NO_PAD.encode(auth),
            addr,
            shared,
            task,
        }
    }

    /// Messages accepted so far, in order.
    pub fn messages(&self) -> Vec<PushMessage> {
        self.shared.lock().messages.clone()
    }

    /// Answers the next `n` pushes with `503 Service Unavailable` (not stored).
    /// Replaces any count still pending from an earlier call.
    pub fn fail_next(&self, n: usize) {
        self.shared.lock().fail_remaining = n;
    }

    /// While `true`, every push is answered `410 Gone` (an expired or
    /// unsubscribed subscription; senders should drop it).
    pub fn set_gone(&self, gone: bool) {
        self.shared.lock().gone = gone;
    }

    /// Push requests seen at this endpoint's path (stored, failed, gone or rejected).
    pub fn attempts(&self) -> usize {
        self.shared.lock().attempts
    }

    /// Reasons of the requests answered `400`, in order.
    pub fn rejections(&self) -> Vec<String> {
        self.shared.lock().rejections.clone()
    }

    /// The subscription as a browser's `PushSubscription.toJSON()` gives it:
    /// `{"endpoint":…,"expirationTime":null,"keys":{"p256dh":…,"auth":…}}`.
    pub fn subscription_json(&self) -> serde_json::Value {
        serde_json::json!({
            "endpoint": self.endpoint,
            "expirationTime": null,
            "keys": { "p256dh": self.p256dh, "auth": self.auth },
        })
    }

    /// Waits until at least `n` messages were accepted or `timeout` passes;
    /// returns the messages accepted by then either way.
    pub async fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<PushMessage> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let msgs = self.messages();
            if msgs.len() >= n || tokio::time::Instant::now() >= deadline {
                return msgs;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for PushSubscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle_push(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap, String) {
    let mut out = HeaderMap::new();
    if id != shared.id {
        return (StatusCode::NOT_FOUND, out, "no such subscription\n".into());
    }
    {
        let mut inner = shared.lock();
        inner.attempts += 1;
        if inner.gone {
            return (StatusCode::GONE, out, "subscription expired\n".into());
        }
        if inner.fail_remaining > 0 {
            inner.fail_remaining -= 1;
            out.insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                out,
                "try again later\n".into(),
            );
        }
    }

    let text = |name: &str| -> Option<String> {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.trim().to_string())
    };

    let result = (|| -> Result<PushMessage, String> {
        match text("content-encoding") {
            Some(enc) if enc.eq_ignore_ascii_case("aes128gcm") => {}
            other => return Err(format!("Content-Encoding must be aes128gcm, got {other:?}")),
        }
        let plaintext =
            decrypt_aes128gcm(&body, &shared.secret, &shared.public_sec1, &shared.auth)?;
        let ttl = match text("ttl") {
            None => None,
            Some(t) => Some(
                t.parse::<u64>()
                    .map_err(|_| format!("bad TTL header {t:?}"))?,
            ),
        };
        let mut msg = PushMessage {
            plaintext,
            ttl,
            urgency: text("urgency"),
            topic: text("topic"),
            vapid_subject: None,
            vapid_audience: None,
            vapid_public_key: None,
            vapid_verified: false,
            vapid_error: None,
        };
        let vapid = match text("authorization") {
            None => Err("no Authorization header".to_string()),
            Some(a) => check_vapid(&a, &shared.origin, &shared.origin_no_port, &mut msg),
        };
        match vapid {
            Ok(()) => msg.vapid_verified = true,
            Err(e) => msg.vapid_error = Some(e),
        }
        Ok(msg)
    })();

    let mut inner = shared.lock();
    match result {
        Ok(msg) => {
            inner.messages.push(msg);
            let n = inner.messages.len();
            let location = format!("{}/message/{n}", shared.origin);
            if let Ok(v) = header::HeaderValue::from_str(&location) {
                out.insert(header::LOCATION, v);
            }
            (StatusCode::CREATED, out, String::new())
        }
        Err(reason) => {
            inner.rejections.push(reason.clone());
            (StatusCode::BAD_REQUEST, out, format!("{reason}\n"))
        }
    }
}

fn b64url_decode(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    // Senders should not pad, but be lenient about it.
    if s.ends_with('=') {
        URL_SAFE.decode(s)
    } else {
        URL_SAFE_NO_PAD.decode(s)
    }
    .map_err(|e| format!("bad base64url: {e}"))
}

/// Parses `vapid t=<jwt>, k=<key>`, fills in the claims found in `msg`, and
/// returns `Ok` only if everything checks out.
fn check_vapid(
    authorization: &str,
    origin: &str,
    origin_no_port: &str,
    msg: &mut PushMessage,
) -> Result<(), String> {
    let (scheme, params) = authorization
        .split_once(' ')
        .ok_or("Authorization header is not 'vapid t=..., k=...'")?;
    if !scheme.eq_ignore_ascii_case("vapid") {
        return Err(format!("Authorization scheme {scheme:?} is not vapid"));
    }
    let mut token = None;
    let mut key = None;
    for param in params.split(',') {
        if let Some((name, value)) = param.trim().split_once('=') {
            let value = value.trim().trim_matches('"');
            match name.trim().to_ascii_lowercase().as_str() {
                "t" => token = Some(value.to_string()),
                "k" => key = Some(value.to_string()),
                _ => {}
            }
        }
    }
    let token = token.ok_or("vapid: missing t=")?;
    let key = key.ok_or("vapid: missing k=")?;
    msg.vapid_public_key = Some(key.clone());

    let mut parts = token.split('.');
    let (Some(h64), Some(p64), Some(s64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("vapid: JWT must have three parts".into());
    };
    let header: serde_json::Value = serde_json::from_slice(&b64url_decode(h64)?)
        .map_err(|e| format!("vapid: JWT header is not JSON: {e}"))?;
    let claims: serde_json::Value = serde_json::from_slice(&b64url_decode(p64)?)
        .map_err(|e| format!("vapid: JWT claims are not JSON: {e}"))?;
    msg.vapid_subject = claims
        .get("sub")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    msg.vapid_audience = claims
        .get("aud")
        .and_then(|v| v.as_str())
        .map(str::to_string);

    if header.get("alg").and_then(|v| v.as_str()) != Some("ES256") {
        return Err(format!("vapid: JWT alg must be ES256, header {header}"));
    }
    let key_bytes = b64url_decode(&key)?;
    let verifying_key = VerifyingKey::from_sec1_bytes(&key_bytes)
        .map_err(|_| "vapid: k= is not a P-256 public key".to_string())?;
    let sig_bytes = b64url_decode(s64)?;
    let signature = Signature::from_slice(&sig_bytes).map_err(|_| {
        format!(
            "vapid: JWT signature must be 64 bytes r||s, got {}",
            sig_bytes.len()
        )
    })?;
    let signed = &token[..h64.len() + 1 + p64.len()];
    verifying_key
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| "vapid: JWT signature does not verify with k=".to_string())?;

    let aud = msg.vapid_audience.as_deref().ok_or("vapid: no aud claim")?;
    let aud_trimmed = aud.trim_end_matches('/');
    if aud_trimmed != origin && aud_trimmed != origin_no_port {
        return Err(format!(
            "vapid: aud {aud:?} is not the endpoint origin {origin:?}"
        ));
    }
    let exp = claims
        .get("exp")
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
        })
        .ok_or("vapid: no numeric exp claim")?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if exp <= now {
        return Err(format!("vapid: JWT expired (exp {exp}, now {now})"));
    }
    if exp > now + MAX_JWT_LIFETIME_SECS + CLOCK_LEEWAY_SECS {
        return Err(format!(
            "vapid: exp {exp} is more than 24 h ahead of now {now}"
        ));
    }
    if msg.vapid_subject.is_none() {
        return Err("vapid: no sub claim".into());
    }
    Ok(())
}

fn hkdf_expand<const N: usize>(salt: &[u8], ikm: &[u8], info: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    // N is 12, 16 or 32 here, far below HKDF-SHA256's 8160-byte limit.
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut out)
        .expect("HKDF output length is small");
    out
}

/// Decrypts an RFC 8291 `aes128gcm` push payload for the subscriber whose
/// private key is `ua_secret` (public key `ua_public`, uncompressed SEC1) and
/// auth secret `auth`.
pub fn decrypt_aes128gcm(
    body: &[u8],
    ua_secret: &SecretKey,
    ua_public: &[u8],
    auth: &[u8],
) -> Result<Vec<u8>, String> {
    if body.len() < 21 {
        return Err(format!(
            "body of {} bytes is shorter than the aes128gcm header",
            body.len()
        ));
    }
    let salt = &body[..16];
    let rs = u32::from_be_bytes([body[16], body[17], body[18], body[19]]) as usize;
    let idlen = body[20] as usize;
    if rs < 18 {
        return Err(format!("record size {rs} is below the minimum of 18"));
    }
    if idlen != 65 {
        return Err(format!(
            "keyid must be the 65-byte sender public key, idlen is {idlen}"
        ));
    }
    let Some(as_public) = body.get(21..21 + idlen) else {
        return Err("body ends inside the keyid".into());
    };
    let ciphertext = &body[21 + idlen..];
    if ciphertext.is_empty() {
        return Err("no ciphertext after the header".into());
    }
    let sender = PublicKey::from_sec1_bytes(as_public)
        .map_err(|_| "keyid is not a valid P-256 public key".to_string())?;

    let shared = p256::ecdh::diffie_hellman(ua_secret.to_nonzero_scalar(), sender.as_affine());
    let mut key_info = Vec::with_capacity(14 + 65 + 65);
    key_info.extend_from_slice(b"WebPush: info\0");
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(as_public);
    let ikm: [u8; 32] = hkdf_expand(auth, shared.raw_secret_bytes().as_slice(), &key_info);
    let cek: [u8; 16] = hkdf_expand(salt, &ikm, b"Content-Encoding: aes128gcm\0");
    let base_nonce: [u8; 12] = hkdf_expand(salt, &ikm, b"Content-Encoding: nonce\0");

    let cipher = Aes128Gcm::new_from_slice(&cek).map_err(|_| "bad key length".to_string())?;
    let records: Vec<&[u8]> = ciphertext.chunks(rs).collect();
    let mut plaintext = Vec::with_capacity(ciphertext.len());
    for (seq, record) in records.iter().enumerate() {
        let last = seq + 1 == records.len();
        if record.len() < 17 {
            return Err(format!(
                "record {seq} of {} bytes is too short",
                record.len()
            ));
        }
        let mut nonce = base_nonce;
        for (i, b) in (seq as u128).to_be_bytes()[4..].iter().enumerate() {
            nonce[i] ^= b;
        }
        let mut padded = cipher
            .decrypt(Nonce::from_slice(&nonce), *record)
            .map_err(|_| format!("record {seq} does not decrypt (wrong keys or corrupted)"))?;
        let Some(end) = padded.iter().rposition(|&b| b != 0) else {
            return Err(format!("record {seq} has no padding delimiter"));
        };
        match (padded[end], last) {
            (2, true) | (1, false) => {}
            (d, _) => {
                return Err(format!(
                    "record {seq} ({}) has padding delimiter {d:#04x}",
                    if last { "last" } else { "not last" }
                ));
            }
        }
        padded.truncate(end);
        plaintext.extend_from_slice(&padded);
    }
    Ok(plaintext)
}

#[cfg(test)]
mod own_tests {
    use super::*;

    /// An independent encryptor (the RFC 8291 mirror image) to exercise
    /// multi-record bodies and padding, which common senders never produce.
    fn encrypt(
        plain_records: &[(&[u8], usize)],
        rs: u32,
        ua_public: &[u8],
        auth: &[u8],
    ) -> Vec<u8> {
        let as_secret = random_secret_key();
        let as_public = as_secret
            .public_key()
            .as_affine()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        let ua = PublicKey::from_sec1_bytes(ua_public).unwrap();
        let shared = p256::ecdh::diffie_hellman(as_secret.to_nonzero_scalar(), ua.as_affine());
        let salt = random_bytes::<16>();
        let mut info = b"WebPush: info\0".to_vec();
        info.extend_from_slice(ua_public);
        info.extend_from_slice(&as_public);
        let ikm: [u8; 32] = hkdf_expand(auth, shared.raw_secret_bytes().as_slice(), &info);
        let cek: [u8; 16] = hkdf_expand(&salt, &ikm, b"Content-Encoding: aes128gcm\0");
        let nonce0: [u8; 12] = hkdf_expand(&salt, &ikm, b"Content-Encoding: nonce\0");
        let cipher = Aes128Gcm::new_from_slice(&cek).unwrap();
        let mut out = salt.to_vec();
        out.extend_from_slice(&rs.to_be_bytes());
        out.push(65);
        out.extend_from_slice(&as_public);
        for (seq, (data, pad)) in plain_records.iter().enumerate() {
            let mut rec = data.to_vec();
            rec.push(if seq + 1 == plain_records.len() { 2 } else { 1 });
            rec.extend(std::iter::repeat_n(0u8, *pad));
            let mut nonce = nonce0;
            nonce[11] ^= seq as u8;
            out.extend(
                cipher
                    .encrypt(Nonce::from_slice(&nonce), rec.as_slice())
                    .unwrap(),
            );
        }
        out
    }

    #[test]
    fn multi_record_with_padding() {
        let sk = random_secret_key();
        let pk = sk
            .public_key()
            .as_affine()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        let auth = random_bytes::<16>();
        // rs = 40: records of 40 bytes = 24 data+delim+pad + 16 tag.
        let body = encrypt(
            &[(b"0123456789abcdefghij", 3), (b"KLMNOP", 0)],
            40,
            &pk,
            &auth,
        );
        assert_eq!(
            decrypt_aes128gcm(&body, &sk, &pk, &auth).unwrap(),
            b"0123456789abcdefghijKLMNOP"
        );
        // Wrong auth secret fails cleanly.
        assert!(decrypt_aes128gcm(&body, &sk, &pk, &[0u8; 16]).is_err());
        // Truncated/garbage bodies fail cleanly.
        for n in [0, 5, 21, 86, 90, body.len() - 1] {
            assert!(
                decrypt_aes128gcm(&body[..n], &sk, &pk, &auth).is_err(),
                "len {n}"
            );
        }
    }
}
