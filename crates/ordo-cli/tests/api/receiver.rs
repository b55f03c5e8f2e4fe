//! A local webhook receiver for the tests: verifies every delivery's signature the way the
//! README tells integrators to, records what arrived, and answers with a status a test chooses
//! per event and attempt (so it can fail sometimes, or always).

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What the receiver answers to the `n`-th attempt (from 1) at an event.
pub type Policy = Arc<dyn Fn(&Value, usize) -> u16 + Send + Sync>;

#[derive(Debug, Clone)]
pub struct Received {
    /// `Ordo-Webhook-Id`.
    pub id: String,
    pub body: Value,
    /// The signature matched the secret and the timestamp was within five minutes.
    pub verified: bool,
    /// What the receiver answered.
    pub status: u16,
    pub at: Instant,
}

pub struct Inner {
    pub secret: String,
    pub policy: Policy,
    pub received: Vec<Received>,
    attempts: HashMap<String, usize>,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub inner: Arc<Mutex<Inner>>,
}

/// Verifies `Ordo-Webhook-Signature` as an integrator would: HMAC-SHA256 over
/// "<timestamp>.<raw body>" with the secret's bytes, hex, compared in constant time.
pub fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let (Some(ts), Some(sig)) = (
        headers
            .get("Ordo-Webhook-Timestamp")
            .and_then(|v| v.to_str().ok()),
        headers
            .get("Ordo-Webhook-Signature")
            .and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    let Ok(ts_n) = ts.parse::<i64>() else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    if (now - ts_n).abs() > 300 {
        return false;
    }
    let Some(hex) = sig.strip_prefix("v1=") else {
        return false;
    };
    let Ok(expected) = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(())
        })
        .collect::<Result<Vec<u8>, ()>>()
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

impl Receiver {
    /// Starts a receiver on a free loopback port answering per `policy`.
    pub async fn start(policy: Policy) -> Receiver {
        let inner = Arc::new(Mutex::new(Inner {
            secret: String::new(),
            policy,
            received: Vec::new(),
            attempts: HashMap::new(),
        }));
        let shared = inner.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let shared = shared.clone();
                async move {
                    let mut g = shared.lock().unwrap();
                    let verified = verify(&g.secret, &headers, &body);
                    let id = headers
                        .get("Ordo-Webhook-Id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let n = {
                        let c = g.attempts.entry(id.clone()).or_insert(0);
                        *c += 1;
                        *c
                    };
                    let status = if verified { (g.policy)(&value, n) } else { 401 };
                    g.received.push(Received {
                        id,
                        body: value,
                        verified,
                        status,
                        at: Instant::now(),
                    });
                    StatusCode::from_u16(status).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://{addr}/hook"),
            inner,
        }
    }

    pub fn set_secret(&self, secret: &str) {
        self.inner.lock().unwrap().secret = secret.to_string();
    }

    pub fn set_policy(&self, policy: Policy) {
        self.inner.lock().unwrap().policy = policy;
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// Events the receiver accepted (2xx), in arrival order.
    pub fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .collect()
    }
}

/// Accept everything.
pub fn always_ok() -> Policy {
    Arc::new(|_, _| 200)
}
