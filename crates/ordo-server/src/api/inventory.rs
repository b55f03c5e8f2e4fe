//! `/v1/inventory`: stock per location for a SKU, and staff adjustments with a reason.

use super::json::{ApiJson, PathParam};
use super::problem::{ApiError, Problem};
use super::{answer_response, idempotency_header};
use crate::AppState;
use crate::auth::Caller;
use crate::services::idempotency::{self, Operation};
use crate::services::inventory::{self, AdjustmentBody};
use axum::Extension;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use ordo_domain::{FieldErrors, LocationId, Sku};
use ordo_store::{Adjustment, StockChange};
use serde::{Deserialize, Serialize};

const REASONS: &[&str] = &[
    "receipt",
    "count",
    "damage",
    "loss",
    "return",
    "correction",
    "transfer_in",
    "transfer_out",
];
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
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub sku: String,
    pub location_id: String,
    #[schema(minimum = -1000000000, maximum = 1000000000)]
    pub delta: Option<i64>,
    #[schema(minimum = 0, maximum = 1000000000)]
    pub set_on_hand: Option<i64>,
    /// receipt, count, damage, loss, return, correction, transfer_in or transfer_out.
    #[schema(pattern = "^(receipt|count|damage|loss|return|correction|transfer_in|transfer_out)$")]
    pub reason: String,
    #[schema(max_length = 500)]
    pub note: Option<String>,
}

async fn inventory_of(
    state: &AppState,
    caller: &Caller,
    sku: &Sku,
) -> Result<InventoryBody, ApiError> {
    let levels = state.store.stock_levels(caller.tenant(), sku).await?;
    let locations: Vec<LocationStock> = levels
        .iter()
        .map(|l| LocationStock {
            location_id: l.location_id.to_string(),
            on_hand: l.on_hand,
            reserved: l.reserved,
            available: l.available(),
        })
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
    params(("sku" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "the product's SKU"),
           ("If-None-Match" = Option<String>, Header, description = "the ETag of a copy held: 304 while the stock is unchanged")),
    responses((status = 200, body = InventoryBody, description = "stock per location; header ETag tags this answer"),
              (status = 304, description = "unchanged since the ETag given in If-None-Match"),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    PathParam(sku): PathParam,
) -> Result<Response, ApiError> {
    let parsed = Sku::parse(&sku).map_err(|_| ApiError::NotFound(format!("product {sku}")))?;
    if state
        .store
        .product(caller.tenant(), &parsed)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound(format!("product {sku}")));
    }
    super::json_with_etag(&headers, &inventory_of(&state, &caller, &parsed).await?)
}

/// Receipts, counts, damages: change or set on-hand at one location, with a reason. Needs an
/// `Idempotency-Key`: a retried receipt returns the first answer and never adds the stock twice.
#[utoipa::path(post, path = "/v1/inventory/adjustments", tag = "inventory",
    request_body(content = AdjustmentInput, example = json!({"sku": "TEE-1-BLA-M", "location_id": "wh-east", "delta": 24, "reason": "receipt", "note": "PO 4471"})),
    params(("Idempotency-Key" = String, Header, description = "unique per adjustment; reuse it to retry")),
    responses((status = 201, body = AdjustmentBody, description = "applied (or replayed)"),
              (status = 400, body = Problem, content_type = "application/problem+json", description = "missing or invalid Idempotency-Key, malformed JSON"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "would go below reserved"),
              (status = 422, body = Problem, content_type = "application/problem+json"),
              (status = 429, body = Problem, content_type = "application/problem+json"),
              (status = 503, body = Problem, content_type = "application/problem+json", description = "storage unreachable or the request timed out; retry after Retry-After")))]
pub async fn adjust(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    ApiJson(input): ApiJson<AdjustmentInput>,
) -> Result<Response, ApiError> {
    let key = idempotency::parse_key(
        idempotency_header(&headers),
        Operation::AdjustInventory,
        true,
    )?
    .unwrap_or_default();
    let mut errs = FieldErrors::default();
    let sku = errs.take("sku", Sku::parse(&input.sku));
    let location_id = errs.take("location_id", LocationId::parse(&input.location_id));
    let change = match (input.delta, input.set_on_hand) {
        (Some(_), Some(_)) | (None, None) => {
            errs.add(
                "delta",
                "exactly_one",
                "give exactly one of delta and set_on_hand",
            );
            None
        }
        (Some(d), None) if d == 0 || d.unsigned_abs() > MAX_UNITS as u64 => {
            errs.add(
                "delta",
                "out_of_range",
                format!("delta is a non-zero integer within ±{MAX_UNITS}"),
            );
            None
        }
        (None, Some(n)) if !(0..=MAX_UNITS).contains(&n) => {
            errs.add(
                "set_on_hand",
                "out_of_range",
                format!("set_on_hand is 0 to {MAX_UNITS}"),
            );
            None
        }
        (Some(d), None) => Some(StockChange::Delta(d)),
        (None, Some(n)) => Some(StockChange::SetOnHand(n)),
    };
    let reason = input.reason.trim().to_ascii_lowercase();
    if !REASONS.contains(&reason.as_str()) {
        errs.add(
            "reason",
            "unknown_reason",
            format!("reason is one of {}", REASONS.join(", ")),
        );
    }
    let note = input
        .note
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    if note
        .as_deref()
        .is_some_and(ordo_domain::contact::has_control_chars)
    {
        errs.add(
            "note",
            "invalid_characters",
            "control characters are not allowed",
        );
    }
    if note.as_ref().is_some_and(|n| n.chars().count() > 500) {
        errs.add("note", "too_long", "a note has at most 500 characters");
    }
    errs.into_result()?;
    let (Some(sku), Some(location_id), Some(change)) = (sku, location_id, change) else {
        return Err(ApiError::Internal(
            "validated adjustment lost a field".into(),
        ));
    };
    let canonical = serde_json::json!({
        "sku": sku, "location_id": location_id, "reason": reason, "note": note,
        "delta": input.delta, "set_on_hand": input.set_on_hand,
    });
    let key = idempotency::scoped(Operation::AdjustInventory, &caller, "", &key, &canonical);
    let adjustment = Adjustment {
        sku,
        location_id,
        change,
        reason,
        note,
    };
    Ok(answer_response(
        inventory::adjust(&state, &caller, adjustment, key).await?,
        None,
    ))
}
