//! The order after placement over HTTP: staff pick, pack, ship and deliver fulfilments
//! (`/v1/fulfillments/{id}/…`) and read a location's pick list; the order's shopper, guest or
//! staff cancel (`POST /v1/orders/{id}/cancel`) and read its timeline.

use super::json::{ApiJson, PathParam};
use super::problem::{ApiError, Problem};
use crate::AppState;
use crate::auth::Caller;
use crate::services::lifecycle::{self, TimelineItem};
use axum::extract::{Query, State};
use axum::{Extension, Json};
use ordo_domain::lifecycle::{FulfillmentCommand, FulfillmentStatus};
use ordo_domain::{FieldErrors, FulfillmentLine, Order, Sku};
use ordo_store::FulfillmentView;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A fulfilment: what one node ships to one of the order's addresses.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FulfillmentBody {
    #[schema(example = "ful_0193...")]
    pub id: String,
    pub order_id: String,
    pub location_id: String,
    /// The order's shipment (index into its `shipments`) it goes to.
    pub address_index: usize,
    pub status: FulfillmentStatus,
    pub lines: Vec<FulfillmentLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
}

impl From<FulfillmentView> for FulfillmentBody {
    fn from(v: FulfillmentView) -> Self {
        let f = v.fulfillment;
        FulfillmentBody {
            id: f.id,
            order_id: v.order_id,
            location_id: f.location_id.to_string(),
            address_index: f.address_index,
            status: f.status,
            lines: f.lines,
            carrier: f.carrier,
            tracking_number: f.tracking_number,
        }
    }
}

/// An optional JSON body: none at all is fine; one that is there must be JSON.
pub struct MaybeJson<T>(pub Option<T>);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S>
    for MaybeJson<T>
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let has_type = req.headers().contains_key(axum::http::header::CONTENT_TYPE);
        if has_type {
            return ApiJson::<T>::from_request(req, state)
                .await
                .map(|j| MaybeJson(Some(j.0)));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(super::json::body_error)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(MaybeJson(None));
        }
        Err(ApiError::UnsupportedMediaType)
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PickLineInput {
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub sku: String,
    /// Units found (0 or more; fewer than the fulfilment carries is a short pick).
    #[schema(minimum = 0)]
    pub quantity: i64,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PickInput {
    /// SKUs found fewer than the fulfilment carries; a SKU not named was picked in full.
    #[serde(default)]
    pub lines: Vec<PickLineInput>,
}

/// A pick's answer: the fulfilment, and what a short pick did with the missing units.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PickedBody {
    #[serde(flatten)]
    pub fulfillment: FulfillmentBody,
    /// One per SKU found short: `missing` units taken off the node's on-hand, `rerouted_to`
    /// [node, fulfilment] or `cancelled` units, the re-route's `decision_id` or the
    /// `reason_codes` why no node could take them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub short: Vec<ordo_store::ShortPick>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitsInput {
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub sku: String,
    #[schema(minimum = 1)]
    pub quantity: i64,
}

/// `(sku, quantity)` pairs from `lines`, each SKU once, quantities 1 or more.
fn parse_units(lines: &[UnitsInput], errs: &mut FieldErrors) -> Vec<(Sku, i64)> {
    let mut out: Vec<(Sku, i64)> = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let sku = errs.take(&format!("lines[{i}].sku"), Sku::parse(&l.sku));
        if l.quantity < 1 {
            errs.add(
                format!("lines[{i}].quantity"),
                "out_of_range",
                "a quantity is 1 or more",
            );
            continue;
        }
        if let Some(sku) = sku {
            if out.iter().any(|(s, _)| *s == sku) {
                errs.add(format!("lines[{i}].sku"), "duplicate", "name each SKU once");
            } else {
                out.push((sku, l.quantity));
            }
        }
    }
    out
}

fn not_empty(errs: &mut FieldErrors, path: &str, v: &str, max: usize) {
    let t = v.trim();
    if t.is_empty() {
        errs.add(path, "required", format!("{path} is required"));
    } else if t.chars().count() > max {
        errs.add(
            path,
            "too_long",
            format!("{path} has at most {max} characters"),
        );
    } else if t.chars().any(char::is_control) {
        errs.add(
            path,
            "invalid_format",
            format!("{path} may not hold control characters"),
        );
    }
}

const FULFILLMENT_ERRORS: &str =
    "unknown fulfilment (or one at a location the staff member does not work at)";

/// Pick a fulfilment. No body (or no `lines`): everything was found. `lines` names SKUs found
/// fewer than the fulfilment carries (a short pick): the missing units come off the node's
/// on-hand (adjustment `short_pick`) and are routed to another node with stock for the same
/// address (a new routing decision), or cancelled with their value voided when none has them.
#[utoipa::path(post, path = "/v1/fulfillments/{id}/pick", tag = "fulfillment",
    params(("id" = String, Path, description = "fulfilment id (ful_…)")),
    request_body(content = Option<PickInput>, example = json!({"lines": [{"sku": "TEE-1-BLA-M", "quantity": 1}]})),
    responses((status = 200, body = PickedBody, description = "picked (a fulfilment found wholly short is `cancelled`)"),
              (status = 404, body = Problem, content_type = "application/problem+json", description = FULFILLMENT_ERRORS),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "`illegal-transition`: not allowed in its `current_status`"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "a SKU the fulfilment does not carry, more than it carries, a negative quantity")))]
pub async fn pick(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
    MaybeJson(input): MaybeJson<PickInput>,
) -> Result<Json<PickedBody>, ApiError> {
    let mut errs = FieldErrors::default();
    let mut picked: Vec<(Sku, i64)> = Vec::new();
    for (i, l) in input.iter().flat_map(|p| p.lines.iter()).enumerate() {
        let sku = errs.take(&format!("lines[{i}].sku"), Sku::parse(&l.sku));
        if l.quantity < 0 {
            errs.add(
                format!("lines[{i}].quantity"),
                "out_of_range",
                "a quantity is 0 or more",
            );
        }
        if let Some(sku) = sku {
            if picked.iter().any(|(s, _)| *s == sku) {
                errs.add(format!("lines[{i}].sku"), "duplicate", "name each SKU once");
            } else {
                picked.push((sku, l.quantity));
            }
        }
    }
    errs.into_result()?;
    let (view, short) = lifecycle::pick(&state, &caller, &id, &picked).await?;
    Ok(Json(PickedBody {
        fulfillment: view.into(),
        short,
    }))
}

/// Pack a picked fulfilment.
#[utoipa::path(post, path = "/v1/fulfillments/{id}/pack", tag = "fulfillment",
    params(("id" = String, Path, description = "fulfilment id (ful_…)")),
    responses((status = 200, body = FulfillmentBody, description = "packed"),
              (status = 404, body = Problem, content_type = "application/problem+json", description = FULFILLMENT_ERRORS),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "`illegal-transition`: not allowed in its `current_status`")))]
pub async fn pack(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
) -> Result<Json<FulfillmentBody>, ApiError> {
    step(state, caller, id, FulfillmentCommand::Pack).await
}

/// Mark a shipped fulfilment delivered.
#[utoipa::path(post, path = "/v1/fulfillments/{id}/deliver", tag = "fulfillment",
    params(("id" = String, Path, description = "fulfilment id (ful_…)")),
    responses((status = 200, body = FulfillmentBody, description = "delivered"),
              (status = 404, body = Problem, content_type = "application/problem+json", description = FULFILLMENT_ERRORS),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "`illegal-transition`: not allowed in its `current_status`")))]
pub async fn deliver(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
) -> Result<Json<FulfillmentBody>, ApiError> {
    step(state, caller, id, FulfillmentCommand::Deliver).await
}

async fn step(
    state: AppState,
    caller: Caller,
    id: String,
    command: FulfillmentCommand,
) -> Result<Json<FulfillmentBody>, ApiError> {
    let v = lifecycle::step(&state, &caller, &id, command).await?;
    Ok(Json(v.into()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipInput {
    #[schema(example = "UPS", min_length = 1, max_length = 64)]
    pub carrier: String,
    #[schema(example = "1Z999AA10123456784", min_length = 1, max_length = 64)]
    pub tracking_number: String,
}

/// Ship a packed fulfilment: its value is captured on the order's tenders (outside any
/// transaction), then its units leave on-hand and reserved at its node.
#[utoipa::path(post, path = "/v1/fulfillments/{id}/ship", tag = "fulfillment",
    params(("id" = String, Path, description = "fulfilment id (ful_…)")),
    request_body(content = ShipInput, example = json!({"carrier": "UPS", "tracking_number": "1Z999AA10123456784"})),
    responses((status = 200, body = FulfillmentBody, description = "shipped; the order's payments show the capture"),
              (status = 402, body = Problem, content_type = "application/problem+json", description = "the capture failed (declined, authorization expired or used up): the fulfilment stays packed"),
              (status = 404, body = Problem, content_type = "application/problem+json", description = FULFILLMENT_ERRORS),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "`illegal-transition` (see `current_status`), or `payment-in-progress` (retry after Retry-After)"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "invalid fields; see errors"),
              (status = 503, body = Problem, content_type = "application/problem+json", description = "the gateway's answer is unknown; the shipment is held until it is")))]
pub async fn ship(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
    ApiJson(input): ApiJson<ShipInput>,
) -> Result<Json<FulfillmentBody>, ApiError> {
    let mut errs = FieldErrors::default();
    not_empty(&mut errs, "carrier", &input.carrier, 64);
    not_empty(&mut errs, "tracking_number", &input.tracking_number, 64);
    errs.into_result()?;
    let v = lifecycle::ship(
        &state,
        &caller,
        &id,
        input.carrier.trim(),
        input.tracking_number.trim(),
    )
    .await?;
    Ok(Json(v.into()))
}

/// A fulfilment by id.
#[utoipa::path(get, path = "/v1/fulfillments/{id}", tag = "fulfillment",
    params(("id" = String, Path, description = "fulfilment id (ful_…)")),
    responses((status = 200, body = FulfillmentBody),
              (status = 404, body = Problem, content_type = "application/problem+json", description = FULFILLMENT_ERRORS)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
) -> Result<Json<FulfillmentBody>, ApiError> {
    Ok(Json(
        lifecycle::fulfillment(&state, &caller, &id).await?.into(),
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PickList {
    /// Fulfilments waiting to be picked, oldest first.
    pub items: Vec<FulfillmentBody>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// What a location has to pick: its allocated fulfilments, oldest first.
#[utoipa::path(get, path = "/v1/locations/{id}/pick-list", tag = "fulfillment",
    params(("id" = String, Path, description = "location id"),
           ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "1 to 100, default 50"),
           ("cursor" = Option<String>, Query, pattern = "^(ful_[0-9a-f]{32})?$", description = "next_cursor of the previous page")),
    responses((status = 200, body = PickList),
              (status = 404, body = Problem, content_type = "application/problem+json", description = "unknown location (or one the staff member does not work at)"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "invalid limit or cursor")))]
pub async fn pick_list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<PickList>, ApiError> {
    let mut errs = FieldErrors::default();
    let limit = match params.get("limit").map(|l| l.parse::<i64>()) {
        None => 50,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => {
            errs.add("limit", "out_of_range", "limit is an integer from 1 to 100");
            50
        }
    };
    let cursor = params.get("cursor").filter(|c| !c.is_empty());
    if let Some(c) = cursor {
        let ok = c.strip_prefix("ful_").is_some_and(|h| {
            h.len() == 32
                && h.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        });
        if !ok {
            errs.add(
                "cursor",
                "invalid_cursor",
                "pass a next_cursor value returned by this endpoint",
            );
        }
    }
    errs.into_result()?;
    let (items, next) =
        lifecycle::pick_list(&state, &caller, &id, cursor.map(String::as_str), limit).await?;
    Ok(Json(PickList {
        items: items.into_iter().map(FulfillmentBody::from).collect(),
        next_cursor: next,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelInput {
    /// Why (kept on the timeline).
    #[schema(
        example = "customer changed their mind",
        min_length = 1,
        max_length = 500
    )]
    pub reason: String,
    /// Staff only: the quantities to cancel (units not yet shipped). None: everything not shipped.
    #[serde(default)]
    pub lines: Option<Vec<UnitsInput>>,
}

/// Cancel an order (everything not shipped: stock released, the rest of the authorizations
/// voided) or, for staff, some of its lines. A shopper or guest may cancel the whole order while
/// nothing is picked; staff may cancel any unshipped units, with a reason.
#[utoipa::path(post, path = "/v1/orders/{id}/cancel", tag = "orders",
    params(("id" = String, Path, description = "internal id (ord_…) or order number (ORD-XXXX-XXXX)")),
    request_body(content = CancelInput, example = json!({"reason": "customer changed their mind"})),
    responses((status = 200, body = Order, description = "the order after the cancellation"),
              (status = 404, body = Problem, content_type = "application/problem+json", description = "no such order (or not the caller's)"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "`illegal-transition` (see `current_status`: shipped, already cancelled, picking began for a shopper), or `payment-in-progress`"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "invalid fields, quantities above what is left, SKUs not in the order")))]
pub async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
    ApiJson(input): ApiJson<CancelInput>,
) -> Result<Json<Order>, ApiError> {
    let mut errs = FieldErrors::default();
    not_empty(&mut errs, "reason", &input.reason, 500);
    let lines = match &input.lines {
        Some(l) if l.is_empty() => {
            errs.add(
                "lines",
                "required",
                "name at least one line, or leave lines out to cancel everything",
            );
            vec![]
        }
        Some(l) => parse_units(l, &mut errs),
        None => vec![],
    };
    errs.into_result()?;
    let order = lifecycle::cancel(&state, &caller, &id, input.reason.trim(), &lines).await?;
    Ok(Json(order))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Timeline {
    /// Every change, oldest first.
    pub items: Vec<TimelineItem>,
}

/// Every change of an order, oldest first, with who made it and why.
#[utoipa::path(get, path = "/v1/orders/{id}/timeline", tag = "orders",
    params(("id" = String, Path, description = "internal id (ord_…) or order number (ORD-XXXX-XXXX)")),
    responses((status = 200, body = Timeline),
              (status = 404, body = Problem, content_type = "application/problem+json", description = "no such order (or not the caller's)")))]
pub async fn timeline(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
) -> Result<Json<Timeline>, ApiError> {
    Ok(Json(Timeline {
        items: lifecycle::timeline(&state, &caller, &id).await?,
    }))
}
