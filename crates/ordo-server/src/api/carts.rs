//! `/v1/carts`: the app's whole local cart in, the reconciled cart out (with every change).

use super::inputs::{CartInput, parse_cart};
use super::json::{ApiJson, PathParam};
use super::problem::{ApiError, Problem};
use super::{answer_response, idempotency_header};
use crate::AppState;
use crate::auth::Caller;
use crate::services::carts::{self, CartView};
use crate::services::holds::HoldView;
use crate::services::idempotency::{self, Operation};
use crate::services::shipping::ShippingOptionsView;
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

/// Create a cart from the app's local lines. With an `Idempotency-Key`, a retry returns the
/// first cart instead of creating a second one.
#[utoipa::path(post, path = "/v1/carts", tag = "carts",
    request_body(content = CartInput, example = json!({"lines": [{"sku": "TEE-1-BLA-M", "quantity": 2}], "promo_codes": [], "customer": {"email": "ana@example.com", "name": "Ana Lima", "phone": "+14155550100"}, "shipments": [{"address": {"name": "Ana Lima", "line1": "1 Market St", "city": "San Francisco", "region": "CA", "postal_code": "94105", "country": "US"}}]})),
    params(("Idempotency-Key" = Option<String>, Header, description = "optional; a retry with the same key returns the same cart")),
    responses((status = 201, body = CartView),
              (status = 400, body = Problem, content_type = "application/problem+json", description = "invalid Idempotency-Key, malformed JSON"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "the same key is in progress"),
              (status = 422, body = Problem, content_type = "application/problem+json"),
              (status = 429, body = Problem, content_type = "application/problem+json"),
              (status = 503, body = Problem, content_type = "application/problem+json", description = "storage unreachable or the request timed out; retry after Retry-After")))]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    ApiJson(input): ApiJson<CartInput>,
) -> Result<Response, ApiError> {
    let key = idempotency::parse_key(idempotency_header(&headers), Operation::CreateCart, false)?;
    let (doc, hints) = parse_cart(&input)?;
    let key = key.map(|k| idempotency::scoped(Operation::CreateCart, &caller, "", &k, &input));
    let answer = carts::create_cart(&state, &caller, &doc, hints, key).await?;
    Ok(answer_response(answer, Some("/v1/carts")))
}

/// Sync the whole local cart (lines, promo codes, customer, shipments). A cart that became an
/// order is read-only: 409 `cart-already-ordered`.
#[utoipa::path(put, path = "/v1/carts/{id}", tag = "carts",
    request_body(content = CartInput, example = json!({"lines": [{"sku": "TEE-1-BLA-M", "quantity": 1}, {"sku": "MUG-1-WHI-S", "quantity": 1}], "promo_codes": ["WELCOME10"]})),
    params(("id" = String, Path, description = "the cart's id (cart_…)")),
    responses((status = 200, body = CartView), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "the cart already became an order"),
              (status = 422, body = Problem, content_type = "application/problem+json"),
              (status = 429, body = Problem, content_type = "application/problem+json"),
              (status = 503, body = Problem, content_type = "application/problem+json", description = "storage unreachable or the request timed out; retry after Retry-After")))]
pub async fn sync(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
    ApiJson(input): ApiJson<CartInput>,
) -> Result<Json<CartView>, ApiError> {
    let (doc, hints) = parse_cart(&input)?;
    Ok(Json(
        carts::sync_cart(&state, &caller, &id, &doc, hints).await?,
    ))
}

/// The reconciled cart with current prices, stock and totals.
#[utoipa::path(get, path = "/v1/carts/{id}", tag = "carts",
    params(("id" = String, Path, description = "the cart's id (cart_…)")),
    responses((status = 200, body = CartView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
) -> Result<Json<CartView>, ApiError> {
    Ok(Json(carts::get_cart(&state, &caller, &id).await?))
}

/// Hold the cart's stock for checkout: its lines are kept at the nodes they would ship from for
/// `--hold-ttl` (default 10 minutes) and count against everyone else's availability; the cart's
/// order consumes the hold. Holding again refreshes it for the cart as it is now.
#[utoipa::path(post, path = "/v1/carts/{id}/hold", tag = "carts",
    params(("id" = String, Path, description = "the cart's id (cart_…)")),
    responses((status = 200, body = HoldView, description = "held until expires_at"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "not enough stock, no node can ship it, or the cart already became an order"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "the cart has no lines or no shipping address, or the address cannot be routed")))]
pub async fn hold(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
) -> Result<Json<HoldView>, ApiError> {
    Ok(Json(
        crate::services::holds::hold(&state, &caller, &id).await?,
    ))
}

/// Shipping options for the cart as it is: standard, express and (where a node near the address
/// can make it before its cut-off) same day, each with its price and the date it is promised by.
/// Express and same-day prices rise with the load of the nodes the cart would ship from
/// (`--express-base`, `--same-day-base`, `--shipping-surge-bps`). Choose one by syncing the cart
/// with `shipping_option`; the order keeps it.
#[utoipa::path(get, path = "/v1/carts/{id}/shipping-options", tag = "carts",
    params(("id" = String, Path, description = "the cart's id (cart_…)")),
    responses((status = 200, body = ShippingOptionsView),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "not enough stock, no node can ship it, or the cart already became an order"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "the cart has no lines or no shipping address, or the address cannot be routed")))]
pub async fn shipping_options(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
) -> Result<Json<ShippingOptionsView>, ApiError> {
    Ok(Json(
        crate::services::shipping::options(&state, &caller, &id).await?,
    ))
}
