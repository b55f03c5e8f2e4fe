//! `/v1/inventory`: stock per location for a SKU, and staff adjustments with a reason.

use super::json::{ApiJson, PathParam};
use super::problem::{ApiError, Problem};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use ordo_domain::{FieldErrors, LocationId, Sku};
use ordo_store::{AdjustError, Adjustment, StockChange};
use serde::{Deserialize, Serialize};

const REASONS: &[&str] = &["receipt", "count", "damage", "loss", "return", "correction", "transfer_in", "transfer_out"];
const MAX_UNITS: i64 = 1_000_000_000;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LocationStock {
    pub location_id: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InventoryBody {
    pub sku: String,
    pub locations: Vec<LocationStock>,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
}

/// Set or change on-hand at one location: give exactly one of `delta` and `set_on_hand`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentInput {
    pub sku: String,
    pub location_id: String,
    pub delta: Option<i64>,
    pub set_on_hand: Option<i64>,
    /// receipt, count, damage, loss, return, correction, transfer_in or transfer_out.
    pub reason: String,
    pub note: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdjustmentBody {
    pub sku: String,
    pub location_id: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    pub reason: String,
}

async fn inventory_of(state: &AppState, sku: &Sku) -> Result<InventoryBody, ApiError> {
    let levels = state.store.stock_levels(state.tenant(), sku).await?;
    let locations: Vec<LocationStock> = levels
        .iter()
        .map(|l| LocationStock { location_id: l.location_id.to_string(), on_hand: l.on_hand, reserved: l.reserved, available: l.available() })
        .collect();
    Ok(InventoryBody {
        sku: sku.to_string(),
        on_hand: locations.iter().map(|l| l.on_hand).sum(),
        reserved: locations.iter().map(|l| l.reserved).sum(),
        available: locations.iter().map(|l| l.available).sum(),
        locations,
    })
}

/// Stock of one SKU per location.
#[utoipa::path(get, path = "/v1/inventory/{sku}", tag = "inventory",
    responses((status = 200, body = InventoryBody), (status = 404, body = Problem)))]
pub async fn get(State(state): State<AppState>, PathParam(sku): PathParam) -> Result<Json<InventoryBody>, ApiError> {
    let parsed = Sku::parse(&sku).map_err(|_| ApiError::NotFound(format!("product {sku}")))?;
    if state.store.product(state.tenant(), &parsed).await?.is_none() {
        return Err(ApiError::NotFound(format!("product {sku}")));
    }
    Ok(Json(inventory_of(&state, &parsed).await?))
}

/// Receipts, counts, damages: change or set on-hand at one location, with a reason.
#[utoipa::path(post, path = "/v1/inventory/adjustments", tag = "inventory", request_body = AdjustmentInput,
    responses((status = 201, body = AdjustmentBody), (status = 409, body = Problem, description = "would go below reserved"),
              (status = 422, body = Problem)))]
pub async fn adjust(
    State(state): State<AppState>,
    ApiJson(input): ApiJson<AdjustmentInput>,
) -> Result<(axum::http::StatusCode, Json<AdjustmentBody>), ApiError> {
    let mut errs = FieldErrors::default();
    let sku = errs.take("sku", Sku::parse(&input.sku));
    let location_id = errs.take("location_id", LocationId::parse(&input.location_id));
    let change = match (input.delta, input.set_on_hand) {
        (Some(_), Some(_)) | (None, None) => {
            errs.add("delta", "exactly_one", "give exactly one of delta and set_on_hand");
            None
        }
        (Some(d), None) if d == 0 || d.unsigned_abs() > MAX_UNITS as u64 => {
            errs.add("delta", "out_of_range", format!("delta is a non-zero integer within ±{MAX_UNITS}"));
            None
        }
        (None, Some(n)) if !(0..=MAX_UNITS).contains(&n) => {
            errs.add("set_on_hand", "out_of_range", format!("set_on_hand is 0 to {MAX_UNITS}"));
            None
        }
        (Some(d), None) => Some(StockChange::Delta(d)),
        (None, Some(n)) => Some(StockChange::SetOnHand(n)),
    };
    let reason = input.reason.trim().to_ascii_lowercase();
    if !REASONS.contains(&reason.as_str()) {
        errs.add("reason", "unknown_reason", format!("reason is one of {}", REASONS.join(", ")));
    }
    let note = input.note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    if note.as_deref().is_some_and(ordo_domain::contact::has_control_chars) {
        errs.add("note", "invalid_characters", "control characters are not allowed");
    }
    if note.as_ref().is_some_and(|n| n.chars().count() > 500) {
        errs.add("note", "too_long", "a note has at most 500 characters");
    }
    errs.into_result()?;
    let (Some(sku), Some(location_id), Some(change)) = (sku, location_id, change) else {
        return Err(ApiError::Internal("validated adjustment lost a field".into()));
    };
    let adjustment = Adjustment { sku, location_id, change, reason: reason.clone(), note };
    match state.store.adjust_stock(state.tenant(), &adjustment).await {
        Ok(level) => Ok((
            axum::http::StatusCode::CREATED,
            Json(AdjustmentBody {
                sku: level.sku.to_string(),
                location_id: level.location_id.to_string(),
                on_hand: level.on_hand,
                reserved: level.reserved,
                available: level.available(),
                reason,
            }),
        )),
        Err(AdjustError::UnknownSku(s)) => Err(ApiError::field("sku", "unknown_sku", format!("no product has SKU {s}"))),
        Err(AdjustError::UnknownLocation(l)) => Err(ApiError::field("location_id", "unknown_location", format!("no location has id {l}"))),
        Err(AdjustError::BelowReserved { would_be, reserved }) => Err(ApiError::Conflict {
            kind: "below-reserved",
            title: "Stock would fall below reservations",
            detail: format!("on hand would become {would_be}, but {reserved} units are reserved for placed orders"),
            differences: vec![serde_json::json!({"type": "below_reserved", "would_be": would_be, "reserved": reserved})],
        }),
        Err(AdjustError::Store(e)) => Err(e.into()),
    }
}
