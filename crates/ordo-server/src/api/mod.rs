//! The HTTP API, one module per resource. Handlers extract, call one service function and map
//! the result; every error leaves through `problem::ApiError` as RFC 9457 problem+json.

pub mod carts;
pub mod health;
pub mod inputs;
pub mod inventory;
pub mod json;
pub mod orders;
pub mod payment_tokens;
pub mod problem;
pub mod products;

use crate::AppState;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Json, Router};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Ordo API", description = "Order capture for mobile commerce: catalog, carts, payment tokens, orders, inventory."),
    paths(
        products::list, products::get, products::upsert,
        carts::create, carts::sync, carts::get,
        payment_tokens::create,
        orders::place, orders::get,
        inventory::get, inventory::adjust,
        health::healthz, health::readyz,
    ),
    components(schemas(problem::Problem, ordo_domain::FieldError))
)]
pub struct ApiDoc;

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

async fn index() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("index.html"))
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/v1/products", get(products::list))
        .route("/v1/products/{sku}", get(products::get).put(products::upsert))
        .route("/v1/carts", post(carts::create))
        .route("/v1/carts/{id}", get(carts::get).put(carts::sync))
        .route("/v1/payment-tokens", post(payment_tokens::create))
        .route("/v1/orders", post(orders::place))
        .route("/v1/orders/{id}", get(orders::get))
        .route("/v1/inventory/adjustments", post(inventory::adjust))
        .route("/v1/inventory/{sku}", get(inventory::get))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/openapi.json", get(openapi))
        .fallback(problem::not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .layer(DefaultBodyLimit::max(json::BODY_LIMIT))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// The `Idempotency-Key` header as the services take it: `None` when absent, `Some("\0")` when
/// present but not visible ASCII (so it is reported as invalid, not missing).
pub(crate) fn idempotency_header(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers.get("idempotency-key").map(|v| v.to_str().unwrap_or("\u{0}"))
}

/// A service's finished answer as a response: its status and JSON body, `Location` when the
/// body names a created resource under `collection`, and `Idempotent-Replayed: true` on a replay.
pub(crate) fn answer_response(answer: crate::services::idempotency::Answer, collection: Option<&str>) -> axum::response::Response {
    use axum::http::{HeaderValue, StatusCode, header};
    use axum::response::IntoResponse;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let location = collection.and_then(|c| {
        let id = serde_json::from_str::<serde_json::Value>(&answer.body).ok()?.get("id")?.as_str()?.to_string();
        HeaderValue::from_str(&format!("{c}/{id}")).ok()
    });
    let mut res = (status, answer.body).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(l) = location {
        res.headers_mut().insert(header::LOCATION, l);
    }
    if answer.replayed {
        res.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    res
}
