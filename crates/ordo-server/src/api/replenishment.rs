//! `/v1/replenishment` (staff): reorder point, safety stock, suggested order quantity, days of
//! cover and stock-out risk per SKU × location, riskiest first. Thin: parse the query, call one service.

use super::problem::{ApiError, Problem};
use crate::AppState;
use crate::auth::Caller;
use crate::services::ServiceError;
use crate::services::forecasts::{self, ReplenishmentLine, ReplenishmentTerms};
use axum::Extension;
use axum::Json;
use axum::extract::{Query, State};
use ordo_domain::FieldError;
use ordo_intel::replenishment::ServiceLevel;
use std::collections::HashMap;

/// Reorder suggestions from the stored forecasts and current stock, riskiest first. Staff only.
#[utoipa::path(get, path = "/v1/replenishment", tag = "forecasts",
    params(("lead_time_days" = Option<i64>, Query, minimum = 1, maximum = 28, description = "days from order to receipt, 1 to 28, default 7"),
           ("review_days" = Option<i64>, Query, minimum = 0, maximum = 28, description = "days between orders, 0 to 28, default 7"),
           ("service_level" = Option<f64>, Query, minimum = 0.5, maximum = 0.9999, description = "target probability of no stock-out over the lead time, 0.5 to 0.9999, default 0.95")),
    responses((status = 200, body = Vec<ReplenishmentLine>),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "a term out of range"),
              (status = 503, body = Problem, content_type = "application/problem+json", description = "storage unreachable or the request timed out")))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Vec<ReplenishmentLine>>, ApiError> {
    let mut errors = Vec::new();
    let mut days = |name: &str, default: usize, range: std::ops::RangeInclusive<usize>| match params
        .get(name)
    {
        None => default,
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if range.contains(&n) => n,
            _ => {
                errors.push(FieldError::new(
                    name,
                    "out_of_range",
                    format!(
                        "must be a whole number of days from {} to {}",
                        range.start(),
                        range.end()
                    ),
                ));
                default
            }
        },
    };
    let lead_time_days = days("lead_time_days", 7, 1..=28);
    let review_days = days("review_days", 7, 0..=28);
    let service = match params.get("service_level").map(|v| v.trim().parse::<f64>()) {
        None => ServiceLevel::new(0.95),
        Some(Ok(p)) => ServiceLevel::new(p),
        Some(Err(_)) => ServiceLevel::new(f64::NAN),
    };
    if let Some(unknown) = params
        .keys()
        .find(|k| !["lead_time_days", "review_days", "service_level"].contains(&k.as_str()))
    {
        errors.push(FieldError::new(
            unknown.as_str(),
            "unknown_parameter",
            "not a parameter of this route",
        ));
    }
    match service {
        Ok(service) if errors.is_empty() => {
            let terms = ReplenishmentTerms {
                lead_time_days,
                review_days,
                service,
            };
            Ok(Json(
                forecasts::replenishment(&state.store, caller.tenant(), terms).await?,
            ))
        }
        Ok(_) => Err(ServiceError::Invalid(errors).into()),
        Err(e) => {
            errors.push(FieldError::new(
                "service_level",
                "out_of_range",
                e.to_string(),
            ));
            Err(ServiceError::Invalid(errors).into())
        }
    }
}
