//! `POST /v1/payment-tokens`: the sandbox gateway's client-side tokenization. The body is read
//! as loose JSON and the card number and CVC are never echoed, logged or stored: only the
//! token, brand, last four digits and expiry are kept. Keys other than the card's four are
//! refused by name (422 `unknown_field`), like every other body.

use super::json::parse_json;
use super::problem::{ApiError, Problem};
use super::{answer_response, idempotency_header};
use crate::AppState;
use crate::auth::Caller;
use crate::services::idempotency::{self, Operation};
use crate::services::payments::{self, TokenBody};
use crate::services::year_month_now;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use ordo_domain::FieldErrors;
use ordo_domain::payment::CardNumber;
use serde_json::Value;

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // documents the request shape; the handler reads it field by field
pub struct CardInput {
    /// 12 to 19 digits (spaces and dashes allowed).
    #[schema(pattern = "^[0-9][0-9 -]{10,24}[0-9]$")]
    number: String,
    #[schema(minimum = 1, maximum = 12)]
    exp_month: i64,
    /// Four digits (two are read as 20YY).
    #[schema(minimum = 0, maximum = 9999)]
    exp_year: i64,
    /// 3 or 4 digits.
    #[schema(pattern = "^[0-9]{3,4}$")]
    cvc: String,
}

fn int_field(v: &Value, field: &str, errs: &mut FieldErrors) -> Option<i64> {
    match v.get(field) {
        None | Some(Value::Null) => {
            errs.add(field, "required", "this field is required");
            None
        }
        Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
        Some(Value::String(s)) if s.trim().parse::<i64>().is_ok() => s.trim().parse().ok(),
        Some(_) => {
            errs.add(field, "invalid_type", "expected an integer");
            None
        }
    }
}

fn text_field<'a>(v: &'a Value, field: &str, errs: &mut FieldErrors) -> Option<String> {
    match v.get(field) {
        None | Some(Value::Null) => {
            errs.add(field, "required", "this field is required");
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => {
            errs.add(field, "invalid_type", "expected a string of digits");
            None
        }
    }
}

const CARD_FIELDS: [&str; 4] = ["number", "exp_month", "exp_year", "cvc"];

/// A key other than the card's four is a typo or a field this endpoint does not take: it is
/// named in `errors[]` (its value, possibly a card number, is never echoed).
fn refuse_unknown_keys(v: &Value, errs: &mut FieldErrors) {
    let Some(fields) = v.as_object() else { return };
    for key in fields.keys().filter(|k| !CARD_FIELDS.contains(&k.as_str())) {
        errs.add(
            key.as_str(),
            "unknown_field",
            "unknown field; expected one of `number`, `exp_month`, `exp_year`, `cvc`",
        );
    }
}

/// Tokenize a card (sandbox). Test cards: 4242424242424242 approves, 4000000000000002 is
/// declined, 4000000000009995 fails for insufficient funds.
#[utoipa::path(post, path = "/v1/payment-tokens", tag = "payments",
    request_body(content = CardInput, example = json!({"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030, "cvc": "123"})),
    params(("Idempotency-Key" = Option<String>, Header, description = "optional; a retry with the same key returns the same token")),
    responses((status = 201, body = TokenBody),
              (status = 400, body = Problem, content_type = "application/problem+json", description = "invalid Idempotency-Key, malformed JSON"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "the same key is in progress"),
              (status = 415, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json"),
              (status = 429, body = Problem, content_type = "application/problem+json"),
              (status = 503, body = Problem, content_type = "application/problem+json", description = "storage unreachable or the request timed out; retry after Retry-After")))]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let key = idempotency::parse_key(
        idempotency_header(&headers),
        Operation::CreatePaymentToken,
        false,
    )?;
    let body = body.map_err(super::json::body_error)?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"));
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    let v: Value = parse_json(&body)?;
    if !v.is_object() {
        return Err(ApiError::field(
            "",
            "invalid_type",
            "the body is a JSON object",
        ));
    }
    let mut errs = FieldErrors::default();
    refuse_unknown_keys(&v, &mut errs);
    let number = text_field(&v, "number", &mut errs)
        .and_then(|n| errs.take("number", CardNumber::parse(&n)));
    let exp_month = int_field(&v, "exp_month", &mut errs);
    let exp_year = int_field(&v, "exp_year", &mut errs)
        .map(|y| if (0..100).contains(&y) { 2000 + y } else { y });
    let cvc = text_field(&v, "cvc", &mut errs);
    if let Some(m) = exp_month {
        if !(1..=12).contains(&m) {
            errs.add("exp_month", "out_of_range", "exp_month is 1 to 12");
        }
    }
    let (year, month) = year_month_now();
    if let (Some(y), Some(m)) = (exp_year, exp_month) {
        if !(2000..=2100).contains(&y) {
            errs.add("exp_year", "out_of_range", "exp_year is a four-digit year");
        } else if (y, m) < (year, month) {
            errs.add("exp_year", "expired", "the card has expired");
        }
    }
    if let Some(c) = &cvc {
        let expect = if number
            .as_ref()
            .is_some_and(|n| n.brand() == ordo_domain::payment::CardBrand::Amex)
        {
            4
        } else {
            3
        };
        if c.len() != expect || !c.bytes().all(|b| b.is_ascii_digit()) {
            errs.add(
                "cvc",
                "invalid_cvc",
                format!("the security code has {expect} digits"),
            );
        }
    }
    errs.into_result()?;
    let (Some(number), Some(exp_month), Some(exp_year)) = (number, exp_month, exp_year) else {
        return Err(ApiError::Internal("validated card lost a field".into()));
    };
    // The retry check hashes a keyed digest of the card (never the number itself or the CVC),
    // so the same key with another card is refused, not answered with the first card's token.
    drop(cvc);
    let canonical = match &key {
        Some(_) => {
            serde_json::json!({"card": payments::card_fingerprint(&state, &caller, &number, exp_month, exp_year).await?})
        }
        None => serde_json::Value::Null,
    };
    let key = key
        .map(|k| idempotency::scoped(Operation::CreatePaymentToken, &caller, "", &k, &canonical));
    Ok(answer_response(
        payments::tokenize(&state, &caller, number, exp_month, exp_year, key).await?,
        None,
    ))
}
