//! `/v1/orders`: place an order (idempotent) and read one by id or number.

use super::inputs::{OrderInput, parse_order};
use super::json::{ApiJson, PathParam};
use super::problem::{ApiError, Problem};
use super::{answer_response, idempotency_header};
use crate::AppState;
use crate::services::checkout;
use crate::services::idempotency::{self, Operation};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use ordo_domain::Order;

/// Place an order from `cart_id` or inline `lines`. Needs an `Idempotency-Key` header: a retry
/// with the same key and body returns the first answer (`Idempotent-Replayed: true`); a retry
/// while the first request is still running gets 409 `request-in-progress`.
#[utoipa::path(post, path = "/v1/orders", tag = "orders", request_body = OrderInput,
    params(("Idempotency-Key" = String, Header, description = "unique per checkout attempt; reuse it to retry")),
    responses((status = 201, body = Order, description = "placed (or replayed)"),
              (status = 400, body = Problem, content_type = "application/problem+json", description = "missing or invalid Idempotency-Key, malformed JSON"),
              (status = 402, body = Problem, content_type = "application/problem+json", description = "a tender was declined; nothing was charged"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "stock, prices, promotions or the total changed (see differences), or the same key is in progress"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "invalid fields; see errors"),
              (status = 429, body = Problem, content_type = "application/problem+json", description = "the write queue is full; retry after Retry-After"),
              (status = 503, body = Problem, content_type = "application/problem+json", description = "storage unreachable or the request timed out; retry after Retry-After")))]
pub async fn place(State(state): State<AppState>, headers: HeaderMap, ApiJson(input): ApiJson<OrderInput>) -> Result<Response, ApiError> {
    let key = idempotency::parse_key(idempotency_header(&headers), Operation::PlaceOrder, true)?.unwrap_or_default();
    let hash = idempotency::request_hash(&input);
    let request = parse_order(&input)?;
    let answer = checkout::place_order(&state, &key, &hash, request).await?;
    Ok(answer_response(answer, Some("/v1/orders")))
}

/// An order by internal id (`ord_…`) or human-friendly number (`ORD-XXXX-XXXX`).
#[utoipa::path(get, path = "/v1/orders/{id}", tag = "orders",
    params(("id" = String, Path, description = "internal id (ord_…) or order number (ORD-XXXX-XXXX)")),
    responses((status = 200, body = Order), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(State(state): State<AppState>, PathParam(id): PathParam) -> Result<Json<Order>, ApiError> {
    let order = state.store.order(state.tenant(), &id).await?.ok_or_else(|| ApiError::NotFound(format!("order {id}")))?;
    Ok(Json(order))
}
