//! Web Push (RFC 8030) to shoppers' browsers: messages encrypted for the subscription
//! (aes128gcm, RFC 8291) and signed with the tenant's VAPID key (RFC 8292), which Ordo creates
//! on first use and keeps in storage, so every process signs with the same key.

use crate::AppState;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ordo_store::NotificationRecord;
use std::time::Duration;
use web_push_native::jwt_simple::algorithms::{ECDSAP256PublicKeyLike as _, ES256KeyPair};

/// The `sub` of Ordo's VAPID tokens: who push services contact about abuse.
const VAPID_SUBJECT: &str = "mailto:push@ordo.localhost";

/// A push failure: why, and whether trying again can help.
#[derive(Debug)]
pub struct PushError {
    pub message: String,
    pub permanent: bool,
}

/// The tenant's VAPID key pair (created on first use).
pub async fn vapid_key(state: &AppState, tenant: &str) -> Result<ES256KeyPair, String> {
    let fresh = URL_SAFE_NO_PAD.encode(ES256KeyPair::generate().to_bytes());
    let stored = state
        .store
        .meta_or_insert(tenant, "vapid_private_key", &fresh)
        .await
        .map_err(|e| e.to_string())?;
    let bytes = URL_SAFE_NO_PAD
        .decode(stored)
        .map_err(|e| format!("the stored VAPID key: {e}"))?;
    ES256KeyPair::from_bytes(&bytes).map_err(|e| format!("the stored VAPID key: {e}"))
}

/// The tenant's VAPID public key as browsers take it (`applicationServerKey`): base64url of the
/// uncompressed point.
pub async fn vapid_public_key(state: &AppState, tenant: &str) -> Result<String, String> {
    let key = vapid_key(state, tenant).await?;
    Ok(URL_SAFE_NO_PAD.encode(key.public_key().public_key().to_bytes_uncompressed()))
}

/// Checks a subscription's keys: `p256dh` a P-256 point, `auth` 16 bytes (both base64url).
pub fn check_keys(p256dh: &str, auth: &str) -> Result<(), (&'static str, String)> {
    let point = URL_SAFE_NO_PAD
        .decode(p256dh.trim_end_matches('='))
        .map_err(|_| ("keys.p256dh", "not base64url".to_string()))?;
    web_push_native::p256::PublicKey::from_sec1_bytes(&point)
        .map_err(|_| ("keys.p256dh", "not a P-256 public key".to_string()))?;
    let a = URL_SAFE_NO_PAD
        .decode(auth.trim_end_matches('='))
        .map_err(|_| ("keys.auth", "not base64url".to_string()))?;
    if a.len() != 16 {
        return Err(("keys.auth", "the auth secret is 16 bytes".into()));
    }
    Ok(())
}

pub struct Pusher {
    http: reqwest::Client,
}

impl Pusher {
    pub fn new(allow_private: bool) -> Self {
        Self {
            http: super::webhooks::client(allow_private),
        }
    }

    /// Sends one message to its subscription.
    pub async fn send(&self, state: &AppState, n: &NotificationRecord) -> Result<(), PushError> {
        let soft = |message: String| PushError {
            message,
            permanent: false,
        };
        let Some(sub) = state
            .store
            .push_subscription(&n.tenant, &n.target)
            .await
            .map_err(|e| soft(e.to_string()))?
        else {
            return Err(PushError {
                message: "the subscription was removed".into(),
                permanent: true,
            });
        };
        let key = vapid_key(state, &n.tenant).await.map_err(soft)?;
        let payload = serde_json::json!({
            "title": n.title, "body": n.body_text.lines().find(|l| !l.trim().is_empty() && !l.starts_with("Hello")).unwrap_or(""),
            "order_id": n.order_id, "event_type": n.event_type, "tag": format!("order-{}", n.order_id),
        })
        .to_string();
        let decode = |s: &str| {
            URL_SAFE_NO_PAD
                .decode(s.trim_end_matches('='))
                .unwrap_or_default()
        };
        let ua_public = web_push_native::p256::PublicKey::from_sec1_bytes(&decode(&sub.p256dh))
            .map_err(|_| PushError {
                message: "the subscription's p256dh is not a P-256 key".into(),
                permanent: true,
            })?;
        let auth = decode(&sub.auth);
        if auth.len() != 16 {
            return Err(PushError {
                message: "the subscription's auth secret is not 16 bytes".into(),
                permanent: true,
            });
        }
        let endpoint: http::Uri = sub.endpoint.parse().map_err(|_| PushError {
            message: "the subscription's endpoint is not a URL".into(),
            permanent: true,
        })?;
        let request = web_push_native::WebPushBuilder::new(
            endpoint,
            ua_public,
            #[allow(deprecated)] // web-push-native 0.5 takes a generic-array 0.14 `Auth`
            web_push_native::Auth::clone_from_slice(&auth),
        )
        .with_valid_duration(Duration::from_secs(12 * 3600))
        .with_vapid(&key, VAPID_SUBJECT)
        .build(payload.into_bytes())
        .map_err(|e| soft(format!("cannot encrypt the push: {e}")))?;
        let request: reqwest::Request = request
            .try_into()
            .map_err(|e: reqwest::Error| soft(e.to_string()))?;
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|e| soft(format!("the push service: {e}")))?;
        match response.status().as_u16() {
            200..=299 => Ok(()),
            404 | 410 => {
                // The browser unsubscribed: forget the subscription.
                let _ = state
                    .store
                    .delete_push_subscription(&n.tenant, &sub.customer_id, &sub.id)
                    .await;
                Err(PushError {
                    message: format!(
                        "the push service answered {}: subscription gone",
                        response.status()
                    ),
                    permanent: true,
                })
            }
            code => Err(soft(format!("the push service answered {code}"))),
        }
    }
}
