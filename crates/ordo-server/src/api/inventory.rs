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
    "safety_stock",
];
const MAX_UNITS: i64 = 1_000_000_000;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LocationStock {
    pub location_id: String,
    pub on_hand: i64,
    pub reserved: i64,
    /// Units carts hold at checkout (`POST /v1/carts/{id}/hold`) until their order or expiry.
    pub held: i64,
    /// Units to hold back from online sale here (a `safety_stock` adjustment sets it).
    pub safety_stock: i64,
    /// Units online orders may reserve: on_hand − reserved − held − safety_stock, never below 0.
    pub available: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InventoryBody {
    pub sku: String,
    pub locations: Vec<LocationStock>,
    pub on_hand: i64,
    pub reserved: i64,
    pub held: i64,
    pub safety_stock: i64,
    pub available: i64,
}

/// Set or change on-hand at one location: give exactly one of `delta` and `set_on_hand`; or,
/// with reason `safety_stock`, set the units held back from online sale with `safety_stock`.
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
    /// With reason `safety_stock` (and only then): the units to hold back at this location.
    #[schema(minimum = 0, maximum = 1000000000)]
    pub safety_stock: Option<i64>,
    /// receipt, count, damage, loss, return, correction, transfer_in, transfer_out or safety_stock.
    #[schema(
        pattern = "^(receipt|count|damage|loss|return|correction|transfer_in|transfer_out|safety_stock)$"
    )]
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
            held: l.held,
            safety_stock: l.safety_stock,
            available: l.available(),
        })
        .collect();
    Ok(InventoryBody {
        sku: sku.to_string(),
        on_hand: locations.iter().map(|l| l.on_hand).sum(),
        reserved: locations.iter().map(|l| l.reserved).sum(),
        held: locations.iter().map(|l| l.held).sum(),
        safety_stock: locations.iter().map(|l| l.safety_stock).sum(),
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
    let reason = input.reason.trim().to_ascii_lowercase();
    let change = match (input.delta, input.set_on_hand, input.safety_stock) {
        _ if reason == "safety_stock" => match (input.delta, input.set_on_hand, input.safety_stock)
        {
            (None, None, Some(n)) if (0..=MAX_UNITS).contains(&n) => {
                Some(StockChange::SafetyStock(n))
            }
            (None, None, Some(_)) => {
                errs.add(
                    "safety_stock",
                    "out_of_range",
                    format!("safety_stock is 0 to {MAX_UNITS}"),
                );
                None
            }
            _ => {
                errs.add(
                    "safety_stock",
                    "required",
                    "reason safety_stock sets safety_stock alone (no delta or set_on_hand)",
                );
                None
            }
        },
        (_, _, Some(_)) => {
            errs.add(
                "safety_stock",
                "reason_safety_stock",
                "safety_stock is set with reason safety_stock",
            );
            None
        }
        (d, n, None) => match (d, n) {
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
        },
    };
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
        "delta": input.delta, "set_on_hand": input.set_on_hand, "safety_stock": input.safety_stock,
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

/// One change of one stock row: the row as it stood after the change.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InventoryChange {
    pub sku: String,
    pub location_id: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub held: i64,
    pub safety_stock: i64,
    /// on_hand − reserved − held − safety_stock, never below 0.
    pub available: i64,
    /// RFC 3339, UTC.
    pub at: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InventoryChangePage {
    pub items: Vec<InventoryChange>,
    /// Always present: pass it as `since` for the next page; on the last page it is where to
    /// poll from next.
    pub next_cursor: String,
}

/// The inventory change feed, for caches: every change of every stock row (placements,
/// adjustments, safety stock), each exactly once, in commit order. Without `since`, from the
/// beginning.
#[utoipa::path(get, path = "/v1/inventory/changes", tag = "inventory",
    params(("since" = Option<String>, Query, pattern = "^[0-9]{1,18}$", description = "next_cursor of the previous page; absent: from the beginning"),
           ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "1 to 1000, default 100")),
    responses((status = 200, body = InventoryChangePage),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "bad limit, or a cursor this feed never gave")))]
pub async fn changes(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    axum::extract::Query(params): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Result<axum::Json<InventoryChangePage>, ApiError> {
    let mut errs = FieldErrors::default();
    let limit = match params.get("limit").map(|l| l.parse::<i64>()) {
        None => 100,
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        Some(_) => {
            errs.add(
                "limit",
                "out_of_range",
                "limit is an integer from 1 to 1000",
            );
            100
        }
    };
    let since = match params.get("since").map(|c| c.parse::<i64>()) {
        None => 0,
        Some(Ok(n)) if n >= 0 => n,
        Some(_) => {
            errs.add(
                "since",
                "invalid_cursor",
                "pass a next_cursor value returned by this endpoint",
            );
            0
        }
    };
    errs.into_result()?;
    let (items, next) = inventory::changes(&state, &caller, since, limit).await?;
    let items = items
        .into_iter()
        .map(|e| {
            let c = e.change;
            InventoryChange {
                available: (c.on_hand - c.reserved - c.held - c.safety_stock).max(0),
                sku: c.sku,
                location_id: c.location_id,
                on_hand: c.on_hand,
                reserved: c.reserved,
                held: c.held,
                safety_stock: c.safety_stock,
                at: crate::services::rfc3339(e.at_ms),
            }
        })
        .collect();
    Ok(axum::Json(InventoryChangePage {
        items,
        next_cursor: next.to_string(),
    }))
}
