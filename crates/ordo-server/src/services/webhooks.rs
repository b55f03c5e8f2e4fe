//! Webhook subscriptions (admins): create with a checked URL and a secret, list, read, delete;
//! a subscription's deliveries with their attempts; replaying one. Delivery itself runs in
//! `events::webhooks`.

use super::ServiceError;
use super::error::Result;
use super::idempotency::{self, Answer};
use super::rfc3339;
use crate::AppState;
use crate::auth::Caller;
use crate::events::webhooks::{BREAKER_THRESHOLD, check_url};
use ordo_domain::events::TypeFilter;
use ordo_store::{AttemptRecord, DeliveryRecord, IdempotencyKey, Idempotent, WebhookRecord};
use serde::Serialize;
use std::sync::Arc;

/// The most subscriptions a tenant may have.
pub const MAX_WEBHOOKS: usize = 50;

/// A subscription as shown (its secret only once, at creation).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    /// Event types delivered, or `["*"]`.
    pub events: Vec<String>,
    pub created_at: String,
    /// `closed` (delivering), `open` (paused after repeated failures until `open_until`) or
    /// `half_open` (one delivery probes the endpoint).
    #[schema(pattern = "^(closed|open|half_open)$")]
    pub circuit: String,
    pub consecutive_failures: i64,
    pub open_until: Option<String>,
}

/// The answer to a creation: the subscription and its signing secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookCreated {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// The HMAC-SHA256 key of `Ordo-Webhook-Signature` (its bytes as shown). Shown only here.
    pub secret: String,
}

fn view(w: &WebhookRecord) -> WebhookView {
    let now = ordo_store::now_ms();
    let circuit = if w.open_until_ms > now {
        "open"
    } else if w.consecutive_failures >= BREAKER_THRESHOLD {
        "half_open"
    } else {
        "closed"
    };
    WebhookView {
        id: w.id.clone(),
        url: w.url.clone(),
        events: w.events.clone(),
        created_at: rfc3339(w.created_at_ms),
        circuit: circuit.into(),
        consecutive_failures: w.consecutive_failures,
        open_until: (w.open_until_ms > now).then(|| rfc3339(w.open_until_ms)),
    }
}

/// A new secret: `whsec_` and 32 random bytes, base64url.
fn new_secret() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Creates a subscription; 201 with its secret (replayed under the same key).
pub async fn create(
    state: &AppState,
    caller: &Caller,
    url: &str,
    events: &[String],
    secret: Option<&str>,
    key: Option<IdempotencyKey>,
) -> Result<Answer> {
    if let Some(answer) = idempotency::answered(state, caller, key.as_ref()).await? {
        return Ok(answer);
    }
    let mut errs = ordo_domain::FieldErrors::default();
    let filter = match TypeFilter::parse(events) {
        Ok(f) => Some(f),
        Err(e) => {
            errs.add("events", "unknown_type", e);
            None
        }
    };
    if let Some(s) = secret {
        if s.len() < 16 || s.len() > 256 || !s.bytes().all(|b| (0x21..0x7f).contains(&b)) {
            errs.add(
                "secret",
                "invalid",
                "a secret is 16 to 256 visible ASCII characters (or leave it out to get one)",
            );
        }
    }
    let checked = check_url(url, state.config.webhooks_allow_private).await;
    if let Err(e) = &checked {
        errs.add("url", "refused", e.clone());
    }
    errs.into_result()?;
    let (Some(filter), Ok(url)) = (filter, checked) else {
        return Err(ServiceError::Internal("checked input went missing".into()));
    };
    if state.store.webhooks(caller.tenant()).await?.len() >= MAX_WEBHOOKS {
        return Err(ServiceError::field(
            "url",
            "too_many",
            format!("a tenant has at most {MAX_WEBHOOKS} webhooks; delete one first"),
        ));
    }
    let secret = secret.map_or_else(new_secret, str::to_string);
    let id = format!("whk_{}", uuid::Uuid::now_v7().simple());
    let render_body = |w: &WebhookRecord| {
        serde_json::to_string(&WebhookCreated {
            webhook: view(w),
            secret: w.secret.clone(),
        })
        .unwrap_or_default()
    };
    let render: ordo_store::Render<WebhookRecord> = Arc::new(move |w| (201, render_body(w)));
    let hash = key.as_ref().map(|k| k.request_hash.clone());
    match state
        .store
        .create_webhook(
            caller.tenant(),
            &id,
            url.as_str(),
            &filter.names(),
            &secret,
            key.map(|k| (k, render)),
        )
        .await?
    {
        Idempotent::Done(w) => Ok(Answer {
            status: 201,
            body: render_body(&w),
            replayed: false,
        }),
        Idempotent::Replay(rec) => idempotency::settle(&rec, hash.as_deref().unwrap_or("")),
    }
}

pub async fn list(state: &AppState, caller: &Caller) -> Result<Vec<WebhookView>> {
    Ok(state
        .store
        .webhooks(caller.tenant())
        .await?
        .iter()
        .map(view)
        .collect())
}

async fn found(state: &AppState, caller: &Caller, id: &str) -> Result<WebhookRecord> {
    state
        .store
        .webhook(caller.tenant(), id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("webhook {id}")))
}

pub async fn get(state: &AppState, caller: &Caller, id: &str) -> Result<WebhookView> {
    Ok(view(&found(state, caller, id).await?))
}

pub async fn delete(state: &AppState, caller: &Caller, id: &str) -> Result<()> {
    if state.store.delete_webhook(caller.tenant(), id).await? {
        Ok(())
    } else {
        Err(ServiceError::NotFound(format!("webhook {id}")))
    }
}

/// One attempt as shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AttemptView {
    pub attempt: i64,
    pub at: String,
    /// The endpoint's HTTP status; null when it gave none (refused, timed out, …).
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// One delivery as shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub id: String,
    /// The CloudEvent's id (`Ordo-Webhook-Id`).
    pub event_id: String,
    pub event_type: String,
    pub subject: String,
    /// `pending`, `delivered` or `dead` (retries exhausted: a dead letter; replay it).
    #[schema(pattern = "^(pending|delivered|dead)$")]
    pub status: String,
    pub attempts: Vec<AttemptView>,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
}

fn delivery_view((d, attempts): (DeliveryRecord, Vec<AttemptRecord>)) -> DeliveryView {
    DeliveryView {
        next_attempt_at: (d.status == "pending").then(|| rfc3339(d.next_attempt_at_ms)),
        id: d.id,
        event_id: d.event_id,
        event_type: d.event_type,
        subject: d.subject,
        status: d.status,
        attempts: attempts
            .into_iter()
            .map(|a| AttemptView {
                attempt: a.attempt,
                at: rfc3339(a.at_ms),
                status_code: a.status_code,
                error: a.error,
                duration_ms: a.duration_ms,
            })
            .collect(),
        created_at: rfc3339(d.created_at_ms),
        finished_at: d.finished_at_ms.map(rfc3339),
    }
}

/// A subscription's deliveries, newest first; the cursor of the next page.
pub async fn deliveries(
    state: &AppState,
    caller: &Caller,
    id: &str,
    status: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> Result<(Vec<DeliveryView>, Option<i64>)> {
    found(state, caller, id).await?;
    let mut rows = state
        .store
        .deliveries(caller.tenant(), id, status, before, limit + 1)
        .await?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|(d, _)| d.position)
    } else {
        None
    };
    Ok((rows.into_iter().map(delivery_view).collect(), next))
}

/// Makes a delivery due again now; the delivery.
pub async fn replay(
    state: &AppState,
    caller: &Caller,
    id: &str,
    delivery: &str,
) -> Result<DeliveryView> {
    found(state, caller, id).await?;
    if !state
        .store
        .replay_delivery(caller.tenant(), id, delivery)
        .await?
    {
        return Err(ServiceError::NotFound(format!("delivery {delivery}")));
    }
    let d = state
        .store
        .delivery(caller.tenant(), id, delivery)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("delivery {delivery}")))?;
    Ok(delivery_view(d))
}
