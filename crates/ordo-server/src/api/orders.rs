//! `/v1/orders`: place an order (idempotent) and read one by id or number.

use super::inputs::OrderInput;
use super::json::{ApiJson, PathParam};
use super::problem::{ApiError, Problem};
use crate::AppState;
use crate::services::checkout::{self, parse_idempotency_key};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ordo_domain::Order;

fn json_response(status: StatusCode, body: String) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// Place an order from `cart_id` or inline `lines`. Needs an `Idempotency-Key` header: a retry
/// with the same key and body returns the first answer (`Idempotent-Replayed: true`).
#[utoipa::path(post, path = "/v1/orders", tag = "orders", request_body = OrderInput,
    params(("Idempotency-Key" = String, Header, description = "unique per checkout attempt")),
    responses((status = 201, body = Order, description = "placed (or replayed)"),
              (status = 400, body = Problem, description = "missing or invalid Idempotency-Key, malformed JSON"),
              (status = 402, body = Problem, description = "a tender was declined; nothing was charged"),
              (status = 409, body = Problem, description = "stock, prices, promotions or the total changed; see differences"),
              (status = 422, body = Problem, description = "invalid fields; see errors")))]
pub async fn place(State(state): State<AppState>, headers: HeaderMap, ApiJson(input): ApiJson<OrderInput>) -> Result<Response, ApiError> {
    // A header that is not visible ASCII is present but invalid, not missing.
    let key = parse_idempotency_key(headers.get("idempotency-key").map(|v| v.to_str().unwrap_or("\u{0}")))?;
    let placed = checkout::place_order(&state, key, input).await?;
    let mut res = json_response(StatusCode::CREATED, placed.body);
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/orders/{}", placed.order_id)) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    if placed.replayed {
        res.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(res)
}

/// An order by internal id (`ord_…`) or human-friendly number (`ORD-XXXX-XXXX`).
#[utoipa::path(get, path = "/v1/orders/{id}", tag = "orders",
    responses((status = 200, body = Order), (status = 404, body = Problem)))]
pub async fn get(State(state): State<AppState>, PathParam(id): PathParam) -> Result<Json<Order>, ApiError> {
    let order = state.store.order(state.tenant(), &id).await?.ok_or_else(|| ApiError::NotFound(format!("order {id}")))?;
    Ok(Json(order))
}
