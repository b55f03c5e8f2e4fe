//! Returns over HTTP: the order's shopper, guest or staff request one
//! (`POST /v1/orders/{id}/returns`); staff receive it at a node and decide each unit's fate.

use super::json::{ApiJson, PathParam};
use super::problem::{ApiError, Problem};
use super::{answer_response, idempotency_header};
use crate::AppState;
use crate::auth::Caller;
use crate::services::idempotency::{self, Operation};
use crate::services::returns::{self, CONDITIONS, REASONS, ReturnBody};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::{Extension, Json};
use ordo_domain::{FieldErrors, LocationId, Sku};
use ordo_store::Disposition;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnLineInput {
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub sku: String,
    #[schema(minimum = 1)]
    pub quantity: i64,
    /// `too_small`, `too_large`, `damaged`, `not_as_described`, `changed_mind` or `other`.
    #[schema(pattern = "^(too_small|too_large|damaged|not_as_described|changed_mind|other)$")]
    pub reason: String,
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnInput {
    #[schema(min_items = 1)]
    pub lines: Vec<ReturnLineInput>,
}

/// Lines as (sku, quantity, word), each SKU once, the word one of `allowed`.
fn parse_lines<'a>(
    lines: impl Iterator<Item = (&'a str, i64, &'a str)>,
    word: &str,
    allowed: &[&str],
    errs: &mut FieldErrors,
) -> Vec<(String, i64, String)> {
    let mut out: Vec<(String, i64, String)> = Vec::new();
    let mut n = 0;
    for (i, (sku, q, w)) in lines.enumerate() {
        n += 1;
        let sku = errs.take(&format!("lines[{i}].sku"), Sku::parse(sku));
        if q < 1 {
            errs.add(
                format!("lines[{i}].quantity"),
                "out_of_range",
                "a quantity is 1 or more",
            );
        }
        if !allowed.contains(&w) {
            errs.add(
                format!("lines[{i}].{word}"),
                "unknown_value",
                format!("{word} is one of {}", allowed.join(", ")),
            );
        }
        if let Some(sku) = sku {
            if out.iter().any(|(s, _, _)| s == sku.as_str()) {
                errs.add(format!("lines[{i}].sku"), "duplicate", "name each SKU once");
            } else {
                out.push((sku.to_string(), q, w.to_string()));
            }
        }
    }
    if n == 0 {
        errs.add("lines", "required", "name at least one line");
    }
    out
}

/// Request a return of shipped units, within the return window after delivery. Optional
/// `Idempotency-Key`: a retry with the same key and body returns the first answer.
#[utoipa::path(post, path = "/v1/orders/{id}/returns", tag = "returns",
    params(("id" = String, Path, description = "internal id (ord_…) or order number (ORD-XXXX-XXXX)"),
           ("Idempotency-Key" = Option<String>, Header, description = "unique per return request; reuse it to retry")),
    request_body(content = ReturnInput, example = json!({"lines": [{"sku": "TEE-1-BLA-M", "quantity": 1, "reason": "too_small"}]})),
    responses((status = 201, body = ReturnBody, description = "requested: status `requested`, with its RMA number"),
              (status = 404, body = Problem, content_type = "application/problem+json", description = "no such order (or not the caller's)"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "`return-exceeds-shipped` (more than shipped, or units already asked back), `illegal-transition` (nothing shipped yet), or the same key in progress"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "invalid fields, a SKU not in the order, or the return window has closed")))]
pub async fn request(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
    headers: HeaderMap,
    ApiJson(input): ApiJson<ReturnInput>,
) -> Result<Response, ApiError> {
    let key = idempotency::parse_key(
        idempotency_header(&headers),
        Operation::RequestReturn,
        false,
    )?
    .map(|k| idempotency::scoped(Operation::RequestReturn, &caller, &id, &k, &input));
    let mut errs = FieldErrors::default();
    let lines = parse_lines(
        input
            .lines
            .iter()
            .map(|l| (l.sku.as_str(), l.quantity, l.reason.as_str())),
        "reason",
        &REASONS,
        &mut errs,
    );
    errs.into_result()?;
    let answer = returns::request(&state, &caller, &id, lines, key).await?;
    Ok(answer_response(answer, Some("/v1/returns")))
}

/// A return by id.
#[utoipa::path(get, path = "/v1/returns/{id}", tag = "returns",
    params(("id" = String, Path, description = "return id (ret_…)")),
    responses((status = 200, body = ReturnBody),
              (status = 404, body = Problem, content_type = "application/problem+json", description = "no such return (or not the caller's)")))]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
) -> Result<Json<ReturnBody>, ApiError> {
    Ok(Json(returns::get(&state, &caller, &id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiveLineInput {
    pub sku: String,
    #[schema(minimum = 1)]
    pub quantity: i64,
    #[schema(pattern = "^(new|damaged|opened)$")]
    pub condition: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiveInput {
    /// Where the units arrived.
    pub location_id: String,
    #[schema(min_items = 1)]
    pub lines: Vec<ReceiveLineInput>,
}

/// Receive returned units at a node (staff). Their value is refunded to the original tenders at
/// once, tender 0 first, each up to what it captured and has not refunded.
#[utoipa::path(post, path = "/v1/returns/{id}/receive", tag = "returns",
    params(("id" = String, Path, description = "return id (ret_…)")),
    request_body(content = ReceiveInput, example = json!({"location_id": "wh-east", "lines": [{"sku": "TEE-1-BLA-M", "quantity": 1, "condition": "new"}]})),
    responses((status = 200, body = ReturnBody, description = "received; `refunded` shows the money sent back"),
              (status = 404, body = Problem, content_type = "application/problem+json", description = "no such return"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "`return-units-exceeded`: more than was asked back on this return and not yet received; or `payment-in-progress`"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "invalid fields, an unknown location, a SKU not in the return")))]
pub async fn receive(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
    ApiJson(input): ApiJson<ReceiveInput>,
) -> Result<Json<ReturnBody>, ApiError> {
    let mut errs = FieldErrors::default();
    let location = errs.take("location_id", LocationId::parse(&input.location_id));
    let lines = parse_lines(
        input
            .lines
            .iter()
            .map(|l| (l.sku.as_str(), l.quantity, l.condition.as_str())),
        "condition",
        &CONDITIONS,
        &mut errs,
    );
    errs.into_result()?;
    let location = location.map(|l| l.to_string()).unwrap_or_default();
    Ok(Json(
        returns::receive(&state, &caller, &id, &location, lines).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DispositionLineInput {
    pub sku: String,
    #[schema(minimum = 1)]
    pub quantity: i64,
    #[schema(pattern = "^(restock|refurbish|write_off)$")]
    pub disposition: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DispositionInput {
    #[schema(min_items = 1)]
    pub lines: Vec<DispositionLineInput>,
}

/// Decide what becomes of received units (staff): `restock` puts them back on hand at the
/// receiving node; `refurbish` and `write_off` keep them out of stock.
#[utoipa::path(post, path = "/v1/returns/{id}/disposition", tag = "returns",
    params(("id" = String, Path, description = "return id (ret_…)")),
    request_body(content = DispositionInput, example = json!({"lines": [{"sku": "TEE-1-BLA-M", "quantity": 1, "disposition": "restock"}]})),
    responses((status = 200, body = ReturnBody),
              (status = 404, body = Problem, content_type = "application/problem+json", description = "no such return"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "`illegal-transition` (nothing received yet: receive first, see `current_status`) or `return-units-exceeded` (more than was received and not yet dispositioned)"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "invalid fields, a SKU not in the return")))]
pub async fn disposition(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
    ApiJson(input): ApiJson<DispositionInput>,
) -> Result<Json<ReturnBody>, ApiError> {
    let mut errs = FieldErrors::default();
    let lines = parse_lines(
        input
            .lines
            .iter()
            .map(|l| (l.sku.as_str(), l.quantity, l.disposition.as_str())),
        "disposition",
        &["restock", "refurbish", "write_off"],
        &mut errs,
    );
    errs.into_result()?;
    let lines = lines
        .into_iter()
        .filter_map(|(s, q, d)| Disposition::parse(&d).map(|d| (s, q, d)))
        .collect();
    Ok(Json(
        returns::disposition(&state, &caller, &id, lines).await?,
    ))
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExchangeOutInput {
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub sku: String,
    #[schema(minimum = 1)]
    pub quantity: i64,
    #[schema(pattern = "^(too_small|too_large|damaged|not_as_described|changed_mind|other)$")]
    pub reason: String,
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExchangeInInput {
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub sku: String,
    #[schema(minimum = 1)]
    pub quantity: i64,
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExchangeInput {
    /// The units given back.
    #[serde(rename = "return")]
    pub give_back: ExchangeOutInput,
    /// The units wanted instead.
    #[serde(rename = "for")]
    pub instead: ExchangeInInput,
}

/// Exchange shipped units for others (e.g. another size) as one operation: the units given back
/// become a return (receive it like any return), the new units are routed and reserved on a
/// fulfilment of their own, and the price difference is settled — authorized on the order's card
/// now and captured when the new units ship when they cost more, refunded when the returned units
/// arrive when they cost less.
#[utoipa::path(post, path = "/v1/orders/{id}/exchanges", tag = "returns",
    params(("id" = String, Path, description = "internal id (ord_…) or order number (ORD-XXXX-XXXX)"),
           ("Idempotency-Key" = Option<String>, Header, description = "unique per exchange; reuse it to retry")),
    request_body(content = ExchangeInput, example = json!({"return": {"sku": "TEE-1-BLA-M", "quantity": 1, "reason": "too_small"}, "for": {"sku": "TEE-1-BLA-L", "quantity": 1}})),
    responses((status = 201, body = crate::services::returns::ExchangeBody, description = "exchanged: the return, the new fulfilment and the difference"),
              (status = 402, body = Problem, content_type = "application/problem+json", description = "the difference could not be authorized; nothing was exchanged"),
              (status = 404, body = Problem, content_type = "application/problem+json", description = "no such order (or not the caller's)"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "`return-exceeds-shipped`, `illegal-transition` (nothing shipped), `out-of-stock` (no node can ship the new units), or `checkout-changed` (the price moved while exchanging: retry)"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "invalid fields, an unknown SKU, the return window has closed")))]
pub async fn exchange(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
    headers: HeaderMap,
    ApiJson(input): ApiJson<ExchangeInput>,
) -> Result<Response, ApiError> {
    let mut errs = FieldErrors::default();
    let out = errs.take("return.sku", Sku::parse(&input.give_back.sku));
    let inn = errs.take("for.sku", Sku::parse(&input.instead.sku));
    for (path, q) in [
        ("return.quantity", input.give_back.quantity),
        ("for.quantity", input.instead.quantity),
    ] {
        if !(1..=1000).contains(&q) {
            errs.add(path, "out_of_range", "a quantity is 1 to 1000");
        }
    }
    if !REASONS.contains(&input.give_back.reason.as_str()) {
        errs.add(
            "return.reason",
            "unknown_value",
            format!("reason is one of {}", REASONS.join(", ")),
        );
    }
    errs.into_result()?;
    let (out, inn) = (
        out.map(|s| s.to_string()).unwrap_or_default(),
        inn.map(|s| s.to_string()).unwrap_or_default(),
    );
    let key = idempotency::parse_key(idempotency_header(&headers), Operation::Exchange, false)?
        .map(|k| idempotency::scoped(Operation::Exchange, &caller, &id, &k, &input));
    let answer = returns::exchange(
        &state,
        &caller,
        &id,
        &out,
        input.give_back.quantity,
        &input.give_back.reason,
        &inn,
        input.instead.quantity,
        key,
    )
    .await?;
    Ok(answer_response(answer, None))
}
