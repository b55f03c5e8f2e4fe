//! `/v1/me/…`: a signed-in shopper's notifications (a list and a live stream), their
//! notification preferences and their browsers' Web Push subscriptions.

use super::json::{ApiJson, PathParam};
use super::problem::{ApiError, Problem};
use crate::AppState;
use crate::auth::Caller;
use crate::services::me::{self, NotificationView, PushSubscriptionView};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::Stream;
use ordo_domain::FieldErrors;
use ordo_store::Preferences;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NotificationPage {
    pub items: Vec<NotificationView>,
    /// The position of the last item (or `after`): pass it as `after` to continue.
    pub next_after: i64,
}

fn after_and_limit(params: &HashMap<String, String>) -> Result<(i64, i64), ApiError> {
    let mut errs = FieldErrors::default();
    let limit = match params.get("limit").map(|l| l.parse::<i64>()) {
        None => 50,
        Some(Ok(n)) if (1..=200).contains(&n) => n,
        Some(_) => {
            errs.add("limit", "out_of_range", "limit is an integer from 1 to 200");
            50
        }
    };
    let after = match params
        .get("after")
        .filter(|a| !a.is_empty())
        .map(|a| a.parse::<i64>())
    {
        None => 0,
        Some(Ok(n)) if n >= 0 => n,
        Some(_) => {
            errs.add(
                "after",
                "invalid_cursor",
                "pass a next_after value or a notification's position",
            );
            0
        }
    };
    errs.into_result()?;
    Ok((after, limit))
}

/// The shopper's in-app notifications (order confirmed, shipped, delivered, refunded), oldest
/// first.
#[utoipa::path(get, path = "/v1/me/notifications", tag = "me",
    params(("after" = Option<String>, Query, pattern = "^[0-9]{0,18}$", description = "a next_after value; absent: from the first"),
           ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "1 to 200, default 50")),
    responses((status = 200, body = NotificationPage), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn notifications(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<NotificationPage>, ApiError> {
    let (after, limit) = after_and_limit(&params)?;
    let items = me::notifications(&state, &caller, after, limit).await?;
    let next_after = items.last().map_or(after, |n| n.position);
    Ok(Json(NotificationPage { items, next_after }))
}

/// The shopper's in-app notifications as server-sent events, as they happen: `event:` the
/// event type, `id:` the notification's position (reconnect with `Last-Event-ID` to resume
/// after it), `data:` the notification. Without `Last-Event-ID` the stream starts with new ones.
#[utoipa::path(get, path = "/v1/me/notifications/stream", tag = "me",
    params(("Last-Event-ID" = Option<String>, Header, description = "the id of the last event received, to resume after it")),
    responses((status = 200, content_type = "text/event-stream", description = "a stream of notifications, kept alive with comments")))]
pub async fn stream(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let me = me::shopper(&caller)?.to_string();
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 18 && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse::<i64>().ok());
    let from = match resume {
        Some(p) => p,
        // From now: after every notification already written (the notifier's cursor).
        None => state
            .store
            .event_cursor("notifications")
            .await
            .map_err(crate::services::ServiceError::from)?,
    };
    let (store, tenant) = (state.store.clone(), caller.tenant().to_string());
    let follow = futures::stream::unfold(
        (store, tenant, me, from),
        |(store, tenant, me, after)| async move {
            loop {
                match store.in_app_notifications(&tenant, &me, after, 100).await {
                    Ok(rows) if !rows.is_empty() => {
                        let next = rows.last().map_or(after, |n| n.position);
                        let events: Vec<Result<Event, Infallible>> = rows
                            .iter()
                            .map(|n| {
                                let v = me::view(n);
                                Ok(Event::default()
                                    .event(v.event_type.clone())
                                    .id(v.position.to_string())
                                    .data(serde_json::to_string(&v).unwrap_or_default()))
                            })
                            .collect();
                        return Some((futures::stream::iter(events), (store, tenant, me, next)));
                    }
                    Ok(_) => tokio::time::sleep(Duration::from_millis(300)).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "notification stream could not read; ending it");
                        return None;
                    }
                }
            }
        },
    );
    use futures::StreamExt;
    Ok(Sse::new(follow.flatten()).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Which channels the shopper is notified on.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesBody {
    pub email: bool,
    pub push: bool,
    pub in_app: bool,
}

impl From<Preferences> for PreferencesBody {
    fn from(p: Preferences) -> Self {
        Self {
            email: p.email,
            push: p.push,
            in_app: p.in_app,
        }
    }
}

/// The shopper's notification preferences (all channels on until changed).
#[utoipa::path(get, path = "/v1/me/notification-preferences", tag = "me",
    responses((status = 200, body = PreferencesBody)))]
pub async fn get_preferences(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<PreferencesBody>, ApiError> {
    Ok(Json(me::preferences(&state, &caller).await?.into()))
}

/// Set which channels the shopper is notified on.
#[utoipa::path(put, path = "/v1/me/notification-preferences", tag = "me",
    request_body(content = PreferencesBody, example = json!({"email": true, "push": false, "in_app": true})),
    responses((status = 200, body = PreferencesBody), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn put_preferences(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(input): ApiJson<PreferencesBody>,
) -> Result<Json<PreferencesBody>, ApiError> {
    let p = Preferences {
        email: input.email,
        push: input.push,
        in_app: input.in_app,
    };
    Ok(Json(me::set_preferences(&state, &caller, p).await?.into()))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PushKey {
    /// The tenant's VAPID public key, base64url: the `applicationServerKey` of
    /// `pushManager.subscribe`.
    pub public_key: String,
}

/// The key a browser subscribes to Web Push with.
#[utoipa::path(get, path = "/v1/me/push-key", tag = "me",
    responses((status = 200, body = PushKey)))]
pub async fn push_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<PushKey>, ApiError> {
    Ok(Json(PushKey {
        public_key: me::push_key(&state, &caller).await?,
    }))
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushKeysInput {
    /// The browser's P-256 public key, base64url (`subscription.toJSON().keys.p256dh`).
    pub p256dh: String,
    /// The browser's 16-byte auth secret, base64url.
    pub auth: String,
}

/// A browser's `PushSubscription.toJSON()` (an `expirationTime` is accepted and ignored).
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushSubscriptionInput {
    /// The push service's URL for this browser (https; public addresses only).
    #[schema(max_length = 2048)]
    pub endpoint: String,
    pub keys: PushKeysInput,
    #[serde(default, rename = "expirationTime")]
    #[schema(value_type = Option<i64>)]
    pub expiration_time: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PushSubscriptionList {
    pub items: Vec<PushSubscriptionView>,
}

/// Subscribe a browser to Web Push notifications (the same endpoint again updates its keys).
#[utoipa::path(post, path = "/v1/me/push-subscriptions", tag = "me",
    request_body(content = PushSubscriptionInput, example = json!({"endpoint": "https://fcm.googleapis.com/fcm/send/dXkZ2xq0", "keys": {"p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM", "auth": "tBHItJI5svbpez7KI4CCXg"}})),
    responses((status = 201, body = PushSubscriptionView), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn subscribe(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(input): ApiJson<PushSubscriptionInput>,
) -> Result<Response, ApiError> {
    let v = me::subscribe(
        &state,
        &caller,
        input.endpoint.trim(),
        &input.keys.p256dh,
        &input.keys.auth,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// The shopper's push subscriptions.
#[utoipa::path(get, path = "/v1/me/push-subscriptions", tag = "me",
    responses((status = 200, body = PushSubscriptionList)))]
pub async fn subscriptions(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<PushSubscriptionList>, ApiError> {
    Ok(Json(PushSubscriptionList {
        items: me::push_subscriptions(&state, &caller).await?,
    }))
}

/// Unsubscribe a browser.
#[utoipa::path(delete, path = "/v1/me/push-subscriptions/{id}", tag = "me",
    params(("id" = String, Path, description = "push subscription id (psh_…)")),
    responses((status = 204, description = "deleted"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn unsubscribe(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
) -> Result<Response, ApiError> {
    me::unsubscribe(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
