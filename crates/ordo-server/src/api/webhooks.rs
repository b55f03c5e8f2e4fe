//! `/v1/webhooks`: subscriptions to the event log delivered over HTTP (admins), their
//! deliveries and replays. Signing and retries: `events::webhooks`.

use super::json::{ApiJson, PathPair, PathParam};
use super::problem::{ApiError, Problem};
use super::{answer_response, idempotency_header};
use crate::AppState;
use crate::auth::Caller;
use crate::services::idempotency::{self, Operation};
use crate::services::webhooks::{self, DeliveryView, WebhookCreated, WebhookView};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use ordo_domain::FieldErrors;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// Where deliveries are POSTed: http(s), resolving to public addresses only (unless the
    /// server runs with `--webhooks-allow-private`).
    #[schema(example = "https://erp.example.com/ordo-events", max_length = 2048)]
    pub url: String,
    /// Event types to deliver (see `docs/events/`), or `["*"]` for every type.
    #[schema(example = json!(["ordo.order.placed", "ordo.fulfillment.shipped"]))]
    pub events: Vec<String>,
    /// The signing secret (16 to 256 visible ASCII characters); leave it out to get a random one.
    #[schema(min_length = 16, max_length = 256)]
    pub secret: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookList {
    pub items: Vec<WebhookView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryPage {
    pub items: Vec<DeliveryView>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Subscribe an HTTP endpoint to events. Each delivery is a POST of the CloudEvent with
/// `Ordo-Webhook-Id`, `Ordo-Webhook-Timestamp` and `Ordo-Webhook-Signature: v1=<hex HMAC-SHA256
/// of "<timestamp>.<body>" keyed with the secret>`. Only events entering the log after the
/// subscription are delivered. Optional `Idempotency-Key`.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks",
    params(("Idempotency-Key" = Option<String>, Header, description = "unique per subscription; reuse it to retry")),
    request_body(content = WebhookInput, example = json!({"url": "https://erp.example.com/ordo-events", "events": ["*"]})),
    responses((status = 201, body = WebhookCreated, description = "subscribed; `secret` is shown only here"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "the same key is still in progress"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "a refused URL (not http(s), credentials, or a private address), an unknown event type, a bad secret, or too many webhooks")))]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    ApiJson(input): ApiJson<WebhookInput>,
) -> Result<Response, ApiError> {
    let key = idempotency::parse_key(
        idempotency_header(&headers),
        Operation::CreateWebhook,
        false,
    )?
    .map(|k| idempotency::scoped(Operation::CreateWebhook, &caller, "", &k, &input));
    let answer = webhooks::create(
        &state,
        &caller,
        input.url.trim(),
        &input.events,
        input.secret.as_deref(),
        key,
    )
    .await?;
    Ok(answer_response(answer, Some("/v1/webhooks")))
}

/// The tenant's webhooks, oldest first.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    responses((status = 200, body = WebhookList)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<WebhookList>, ApiError> {
    Ok(Json(WebhookList {
        items: webhooks::list(&state, &caller).await?,
    }))
}

/// One webhook with its circuit breaker's state.
#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "webhook id (whk_…)")),
    responses((status = 200, body = WebhookView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(webhooks::get(&state, &caller, &id).await?))
}

/// Unsubscribe: no further deliveries; its delivery history goes with it.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "webhook id (whk_…)")),
    responses((status = 204, description = "deleted"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
) -> Result<Response, ApiError> {
    webhooks::delete(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A webhook's deliveries, newest first, each with every attempt (time, HTTP status, error).
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "webhook id (whk_…)"),
           ("status" = Option<String>, Query, pattern = "^(pending|delivered|dead)$", description = "only deliveries in this state"),
           ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "1 to 100, default 20"),
           ("cursor" = Option<String>, Query, pattern = "^[0-9]{0,18}$", description = "next_cursor of the previous page")),
    responses((status = 200, body = DeliveryPage), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn deliveries(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<DeliveryPage>, ApiError> {
    let mut errs = FieldErrors::default();
    let limit = match params.get("limit").map(|l| l.parse::<i64>()) {
        None => 20,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => {
            errs.add("limit", "out_of_range", "limit is an integer from 1 to 100");
            20
        }
    };
    let before = match params
        .get("cursor")
        .filter(|c| !c.is_empty())
        .map(|c| c.parse::<i64>())
    {
        None => None,
        Some(Ok(n)) if n >= 0 => Some(n),
        Some(_) => {
            errs.add(
                "cursor",
                "invalid_cursor",
                "pass a next_cursor value returned by this endpoint",
            );
            None
        }
    };
    let status = params
        .get("status")
        .map(String::as_str)
        .filter(|s| !s.is_empty());
    if let Some(s) = status {
        if !["pending", "delivered", "dead"].contains(&s) {
            errs.add("status", "invalid", "status is pending, delivered or dead");
        }
    }
    errs.into_result()?;
    let (items, next) = webhooks::deliveries(&state, &caller, &id, status, before, limit).await?;
    Ok(Json(DeliveryPage {
        items,
        next_cursor: next.map(|n| n.to_string()),
    }))
}

/// Send a delivery again now (a dead letter, or one already delivered); it joins the queue
/// of its subject like any pending delivery.
#[utoipa::path(post, path = "/v1/webhooks/{id}/deliveries/{delivery}/replay", tag = "webhooks",
    params(("id" = String, Path, description = "webhook id (whk_…)"),
           ("delivery" = String, Path, description = "delivery id (dlv_…)")),
    responses((status = 202, body = DeliveryView, description = "pending again, due now"),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn replay(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathPair(id, delivery): PathPair,
) -> Result<Response, ApiError> {
    let d = webhooks::replay(&state, &caller, &id, &delivery).await?;
    Ok((StatusCode::ACCEPTED, Json(d)).into_response())
}
