//! `/v1/carts`: the app's whole local cart in, the reconciled cart out (with every change).

use super::inputs::CartInput;
use super::json::{ApiJson, PathParam};
use super::problem::{ApiError, Problem};
use crate::AppState;
use crate::services::carts::{self, CartView};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Create a cart from the app's local lines.
#[utoipa::path(post, path = "/v1/carts", tag = "carts", request_body = CartInput,
    responses((status = 201, body = CartView), (status = 422, body = Problem)))]
pub async fn create(State(state): State<AppState>, ApiJson(input): ApiJson<CartInput>) -> Result<Response, ApiError> {
    let cart = carts::create_cart(&state, &input).await?;
    let location = format!("/v1/carts/{}", cart.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(cart)).into_response())
}

/// Sync the whole local cart (lines, promo codes, customer, shipments).
#[utoipa::path(put, path = "/v1/carts/{id}", tag = "carts", request_body = CartInput,
    responses((status = 200, body = CartView), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn sync(State(state): State<AppState>, PathParam(id): PathParam, ApiJson(input): ApiJson<CartInput>) -> Result<Json<CartView>, ApiError> {
    Ok(Json(carts::sync_cart(&state, &id, &input).await?))
}

/// The reconciled cart with current prices, stock and totals.
#[utoipa::path(get, path = "/v1/carts/{id}", tag = "carts",
    responses((status = 200, body = CartView), (status = 404, body = Problem)))]
pub async fn get(State(state): State<AppState>, PathParam(id): PathParam) -> Result<Json<CartView>, ApiError> {
    Ok(Json(carts::get_cart(&state, &id).await?))
}
