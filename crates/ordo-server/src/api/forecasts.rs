//! `/v1/forecasts/{sku}` (staff): a SKU's recent demand, its stored forecast with 80 % and 95 %
//! intervals, and the model version that made it. Thin: parse the path, call one service.

use super::json::PathParam;
use super::problem::{ApiError, Problem};
use crate::AppState;
use crate::auth::Caller;
use crate::services::forecasts::{self, SkuForecast};
use axum::Extension;
use axum::Json;
use axum::extract::State;

/// Days of history returned beside the forecast.
const HISTORY_DAYS: usize = 56;

/// A SKU's last 56 days of demand and its stored daily forecast (p50, 80 % and 95 % intervals),
/// naming the model version. Staff only.
#[utoipa::path(get, path = "/v1/forecasts/{sku}", tag = "forecasts",
    params(("sku" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "the SKU")),
    responses((status = 200, body = SkuForecast),
              (status = 404, body = Problem, content_type = "application/problem+json", description = "no forecast stored for this SKU (run `ordo forecast run`)"),
              (status = 503, body = Problem, content_type = "application/problem+json", description = "storage unreachable or the request timed out")))]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(sku): PathParam,
) -> Result<Json<SkuForecast>, ApiError> {
    Ok(Json(
        forecasts::forecast_of(&state.store, caller.tenant(), &sku, HISTORY_DAYS).await?,
    ))
}
