//! `/v1/orders`: place an order (idempotent) and read one by id or number.

use super::inputs::{OrderInput, parse_order};
use super::json::{ApiJson, PathParam};
use super::problem::{ApiError, Problem};
use super::{answer_response, idempotency_header};
use crate::AppState;
use crate::auth::{Caller, Role};
use crate::services::checkout;
use crate::services::idempotency::{self, Operation};
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use ordo_domain::Order;

/// Place an order from `cart_id` or inline `lines`. Needs an `Idempotency-Key` header: a retry
/// with the same key and body returns the first answer (`Idempotent-Replayed: true`); a retry
/// while the first request is still running gets 409 `request-in-progress`.
#[utoipa::path(post, path = "/v1/orders", tag = "orders",
    request_body(content = OrderInput, example = json!({"cart_id": "cart_0192f1c2a7b47e3f9d2a1b3c4d5e6f70", "payments": [{"token": "tok_5f0c6f6e2b8a4c1d9e7f3a2b1c0d9e8f", "amount": {"amount": 3800, "currency": "USD"}}], "expected_total": {"amount": 3800, "currency": "USD"}})),
    params(("Idempotency-Key" = String, Header, description = "unique per checkout attempt; reuse it to retry"),
           ("Passkey-Assertion" = Option<String>, Header, description = "a shopper's answer to a `step-up-required` challenge (ignored on other callers' orders): base64url of the JSON \
             {challenge_id, credential_id, client_data_json, authenticator_data, signature, user_handle?} (binary fields base64url); \
             send it with the same Idempotency-Key and body as the request that got the challenge")),
    responses((status = 201, body = Order, description = "placed (or replayed)"),
              (status = 400, body = Problem, content_type = "application/problem+json", description = "missing or invalid Idempotency-Key, malformed JSON, unparsable Passkey-Assertion"),
              (status = 402, body = Problem, content_type = "application/problem+json", description = "a tender was declined; nothing was charged"),
              (status = 403, body = Problem, content_type = "application/problem+json", description = "a shopper's order above the tenant's threshold needs a passkey: \
                `step-up-required` (its `challenge` holds the WebAuthn request options, `challenge_id` names it; without a passkey, register one first) \
                or `step-up-failed` (the assertion was refused); nothing was placed"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "stock, prices, promotions or the total changed (see differences), or the same key is in progress"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "invalid fields; see errors"),
              (status = 429, body = Problem, content_type = "application/problem+json", description = "the write queue is full; retry after Retry-After"),
              (status = 503, body = Problem, content_type = "application/problem+json", description = "storage unreachable or the request timed out; retry after Retry-After")))]
pub async fn place(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    ApiJson(input): ApiJson<OrderInput>,
) -> Result<Response, ApiError> {
    let key = idempotency::parse_key(idempotency_header(&headers), Operation::PlaceOrder, true)?
        .unwrap_or_default();
    let hash = idempotency::request_hash(&input);
    let mut request = parse_order(&input, caller.role() != Some(Role::Shopper))?;
    // Only shoppers step up: the header means nothing on the app's or a guest's order.
    if caller.role() == Some(Role::Shopper) {
        request.step_up = super::passkeys::assertion_header(&headers)?;
    }
    let mut answer = checkout::place_order(&state, &caller, &key, &hash, request).await?;
    if answer.status == 201 && caller.role() == Some(Role::App) {
        answer.body = with_guest_token(&state, &caller, &answer.body)?;
    }
    Ok(answer_response(answer, Some("/v1/orders")))
}

/// An order by internal id (`ord_…`) or human-friendly number (`ORD-XXXX-XXXX`).
#[utoipa::path(get, path = "/v1/orders/{id}", tag = "orders",
    params(("id" = String, Path, description = "internal id (ord_…) or order number (ORD-XXXX-XXXX)")),
    responses((status = 200, body = Order), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
) -> Result<Json<Order>, ApiError> {
    let order = state
        .store
        .order(caller.tenant(), &id)
        .await?
        .filter(|o| caller.may_see_order(&o.id.to_string(), o.customer.customer_id()))
        .ok_or_else(|| ApiError::NotFound(format!("order {id}")))?;
    Ok(Json(order))
}

/// A guest order placed with the app's token carries `guest_token`: a token for that order only,
/// minted per answer (replays get a fresh one; it is never stored). The stored answer is read for
/// its id and customer kind only and the token spliced in, not parsed and written out again.
fn with_guest_token(state: &AppState, caller: &Caller, body: &str) -> Result<String, ApiError> {
    #[derive(serde::Deserialize)]
    struct Kind<'a> {
        #[serde(borrow)]
        kind: Option<&'a str>,
    }
    #[derive(serde::Deserialize)]
    struct Placed<'a> {
        #[serde(borrow)]
        id: Option<&'a str>,
        #[serde(borrow)]
        customer: Option<Kind<'a>>,
    }
    let placed: Placed = serde_json::from_str(body)
        .map_err(|e| ApiError::Internal(format!("stored order answer: {e}")))?;
    let guest = placed.customer.and_then(|c| c.kind) != Some("member");
    let (Some(id), true) = (placed.id, guest) else {
        return Ok(body.to_string());
    };
    let token = state
        .auth
        .guest_token(caller.tenant(), id)
        .map_err(|e| ApiError::Internal(e.description))?;
    let Some(open) = body.trim_end().strip_suffix('}') else {
        return Err(ApiError::Internal(
            "stored order answer is not an object".into(),
        ));
    };
    // A JWT is base64url segments and dots: nothing to escape.
    Ok(format!("{open},\"guest_token\":\"{token}\"}}"))
}
