//! A signed-in shopper's own things: their in-app notifications, their notification
//! preferences and their browsers' Web Push subscriptions.

use super::ServiceError;
use super::error::Result;
use super::rfc3339;
use crate::AppState;
use crate::auth::{Caller, Role};
use crate::events::{push, webhooks::check_url};
use ordo_store::{NotificationRecord, Preferences, PushSubscriptionRecord};
use serde::Serialize;

/// The shopper behind the request (the policy admits shoppers only).
pub fn shopper(caller: &Caller) -> Result<&str> {
    caller
        .principal
        .as_ref()
        .filter(|p| p.role == Role::Shopper)
        .map(|p| p.subject.as_str())
        .ok_or_else(|| ServiceError::Internal("a shopper route without a shopper".into()))
}

/// An in-app notification as shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NotificationView {
    pub id: String,
    /// Its place in the stream: pass it as `after` (or `Last-Event-ID`) to continue.
    pub position: i64,
    /// The event it tells about (`ordo.order.placed`, `ordo.fulfillment.shipped`, …).
    pub event_type: String,
    pub order_id: String,
    pub title: String,
    pub body: String,
    pub created_at: String,
}

pub fn view(n: &NotificationRecord) -> NotificationView {
    NotificationView {
        id: n.id.clone(),
        position: n.position,
        event_type: n.event_type.clone(),
        order_id: n.order_id.clone(),
        title: n.title.clone(),
        body: n.body_text.clone(),
        created_at: rfc3339(n.created_at_ms),
    }
}

pub async fn notifications(
    state: &AppState,
    caller: &Caller,
    after: i64,
    limit: i64,
) -> Result<Vec<NotificationView>> {
    let me = shopper(caller)?;
    Ok(state
        .store
        .in_app_notifications(caller.tenant(), me, after, limit)
        .await?
        .iter()
        .map(view)
        .collect())
}

pub async fn preferences(state: &AppState, caller: &Caller) -> Result<Preferences> {
    let me = shopper(caller)?;
    Ok(state
        .store
        .notification_preferences(caller.tenant(), me)
        .await?)
}

pub async fn set_preferences(
    state: &AppState,
    caller: &Caller,
    p: Preferences,
) -> Result<Preferences> {
    let me = shopper(caller)?;
    state
        .store
        .set_notification_preferences(caller.tenant(), me, p)
        .await?;
    Ok(p)
}

pub async fn push_key(state: &AppState, caller: &Caller) -> Result<String> {
    push::vapid_public_key(state, caller.tenant())
        .await
        .map_err(ServiceError::Internal)
}

/// A push subscription as shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PushSubscriptionView {
    pub id: String,
    pub endpoint: String,
    pub created_at: String,
}

fn push_view(s: &PushSubscriptionRecord) -> PushSubscriptionView {
    PushSubscriptionView {
        id: s.id.clone(),
        endpoint: s.endpoint.clone(),
        created_at: rfc3339(s.created_at_ms),
    }
}

/// The most subscriptions one shopper may have (browsers and devices).
pub const MAX_PUSH_SUBSCRIPTIONS: usize = 20;

pub async fn subscribe(
    state: &AppState,
    caller: &Caller,
    endpoint: &str,
    p256dh: &str,
    auth: &str,
) -> Result<PushSubscriptionView> {
    let me = shopper(caller)?;
    let mut errs = ordo_domain::FieldErrors::default();
    if !state.config.webhooks_allow_private && !endpoint.starts_with("https://") {
        errs.add(
            "endpoint",
            "refused",
            "a push service's endpoint is https://",
        );
    } else if let Err(e) = check_url(endpoint, state.config.webhooks_allow_private).await {
        errs.add("endpoint", "refused", e);
    }
    if let Err((path, e)) = push::check_keys(p256dh, auth) {
        errs.add(path, "invalid", e);
    }
    errs.into_result()?;
    let existing = state.store.push_subscriptions(caller.tenant(), me).await?;
    if existing.len() >= MAX_PUSH_SUBSCRIPTIONS && !existing.iter().any(|s| s.endpoint == endpoint)
    {
        return Err(ServiceError::field(
            "endpoint",
            "too_many",
            format!(
                "a shopper has at most {MAX_PUSH_SUBSCRIPTIONS} push subscriptions; delete one first"
            ),
        ));
    }
    let record = PushSubscriptionRecord {
        id: format!("psh_{}", uuid::Uuid::now_v7().simple()),
        customer_id: me.to_string(),
        endpoint: endpoint.to_string(),
        p256dh: p256dh.trim_end_matches('=').to_string(),
        auth: auth.trim_end_matches('=').to_string(),
        created_at_ms: ordo_store::now_ms(),
    };
    let saved = state
        .store
        .add_push_subscription(caller.tenant(), &record)
        .await?;
    Ok(push_view(&saved))
}

pub async fn push_subscriptions(
    state: &AppState,
    caller: &Caller,
) -> Result<Vec<PushSubscriptionView>> {
    let me = shopper(caller)?;
    Ok(state
        .store
        .push_subscriptions(caller.tenant(), me)
        .await?
        .iter()
        .map(push_view)
        .collect())
}

pub async fn unsubscribe(state: &AppState, caller: &Caller, id: &str) -> Result<()> {
    let me = shopper(caller)?;
    if state
        .store
        .delete_push_subscription(caller.tenant(), me, id)
        .await?
    {
        Ok(())
    } else {
        Err(ServiceError::NotFound(format!("push subscription {id}")))
    }
}
