//! The HTTP API, one module per resource. Handlers extract, call one service function and map
//! the result; every error leaves through `problem::ApiError` as RFC 9457 problem+json. Every
//! route sits behind the same edge (`router`): request id, trace span, metrics, timeout, panics.

pub mod carts;
pub mod edge;
pub mod forecasts;
pub mod health;
pub mod inputs;
pub mod inventory;
pub mod json;
pub mod orders;
pub mod payment_tokens;
pub mod problem;
pub mod products;
pub mod replenishment;
pub mod telemetry;
mod test_routes;

use crate::AppState;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state, map_request};
use axum::routing::{get, post};
use axum::{Json, Router};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
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
        health::healthz, health::readyz, telemetry::scrape,
        forecasts::get, replenishment::list,
    ),
    components(schemas(problem::Problem, ordo_domain::FieldError, crate::services::forecasts::SkuForecast, crate::services::forecasts::ReplenishmentLine))
)]
pub struct ApiDoc;

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

async fn index() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("index.html"))
}

/// Every route behind the edge. Layers run outermost first, after routing (so metrics see the
/// route template): a client's unsafe `x-request-id` is dropped, one is generated if missing and
/// returned on every response; the trace span carries it; problem bodies get it; the request is
/// counted and timed; it gets `request_timeout` to finish; a panic becomes a 500 problem.
pub fn router(state: AppState) -> Router {
    let mut routes = Router::new()
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
        .route("/v1/forecasts/{sku}", get(forecasts::get)) // policy: staff
        .route("/v1/replenishment", get(replenishment::list)) // policy: staff
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(telemetry::scrape))
        .route("/openapi.json", get(openapi));
    if state.config.test_routes {
        routes = routes.merge(test_routes::routes());
    }
    let edge = ServiceBuilder::new()
        .layer(map_request(edge::drop_unsafe_request_id))
        .layer(SetRequestIdLayer::new(edge::REQUEST_ID, MakeRequestUuid))
        .layer(PropagateRequestIdLayer::new(edge::REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(edge::request_span))
        .layer(from_fn(edge::stamp_request_id_on_problems))
        .layer(from_fn(telemetry::record_request))
        .layer(from_fn_with_state(state.config.request_timeout, edge::enforce_timeout))
        .layer(CatchPanicLayer::custom(edge::panic_problem));
    routes
        .fallback(problem::not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .layer(DefaultBodyLimit::max(json::BODY_LIMIT))
        .layer(edge)
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
