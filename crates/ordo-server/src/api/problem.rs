//! The one place errors become HTTP: RFC 9457 `application/problem+json` with a stable `type`
//! URI per kind, and `errors[]` with field paths for validation failures. `request_id` is left
//! empty here and stamped by `api::edge` for every problem, whoever produced it.

use crate::services::{ConflictReason, ServiceError};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ordo_domain::FieldError;
use serde::Serialize;
use serde_json::Value;

const TYPE_BASE: &str = "https://ordo.dev/problems/";

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// For 409: what changed (stock, prices, promotions, totals).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub differences: Vec<Value>,
    /// For 402: which tender failed and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub payment: Option<Value>,
    /// For 403 `step-up-required`: the WebAuthn `PublicKeyCredentialRequestOptions` to sign.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub challenge: Option<Value>,
    /// For 403 `step-up-required`: the challenge's id, to send back in `Passkey-Assertion`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenge_id: Option<String>,
    /// For 409 `illegal-transition`: the state the order or fulfilment is in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_status: Option<String>,
    /// The request's `x-request-id`, stamped on every problem at the edge (`api::edge`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid request")]
    Validation(Vec<FieldError>),
    #[error("{detail}")]
    BadRequest {
        kind: &'static str,
        title: &'static str,
        detail: String,
    },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{detail}")]
    Conflict {
        kind: &'static str,
        title: &'static str,
        detail: String,
        differences: Vec<Value>,
    },
    /// 409 `illegal-transition`, naming the current state.
    #[error("{detail}")]
    WrongState {
        detail: String,
        current_status: String,
    },
    #[error("payment declined")]
    PaymentDeclined { detail: String, payment: Value },
    /// 403 `step-up-required`, with the WebAuthn challenge to answer when there is one.
    #[error("{detail}")]
    StepUpRequired {
        detail: String,
        challenge: Option<(String, Value)>,
    },
    /// 403 `step-up-failed`.
    #[error("{0}")]
    StepUpFailed(String),
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("payload too large")]
    PayloadTooLarge,
    /// The write path is saturated (its queue is full): retry after `Retry-After` seconds.
    #[error("too many requests")]
    TooManyRequests,
    /// Storage cannot be reached right now: retry after `Retry-After` seconds.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn field(path: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(path, code, message)])
    }
}

impl From<ordo_store::StoreError> for ApiError {
    fn from(e: ordo_store::StoreError) -> Self {
        ServiceError::from(e).into()
    }
}

/// The one mapping of service errors to problems: status, stable `type`, title.
impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(errors) => ApiError::Validation(errors),
            ServiceError::NotFound(what) => ApiError::NotFound(what),
            ServiceError::Conflict {
                reason,
                detail,
                differences,
            } => {
                let (kind, title) = conflict_type(reason);
                ApiError::Conflict {
                    kind,
                    title,
                    detail,
                    differences,
                }
            }
            ServiceError::WrongState {
                detail,
                current_status,
            } => ApiError::WrongState {
                detail,
                current_status,
            },
            ServiceError::PaymentDeclined { detail, payment } => {
                ApiError::PaymentDeclined { detail, payment }
            }
            ServiceError::StepUpRequired { detail, challenge } => ApiError::StepUpRequired {
                detail,
                challenge: challenge.map(|c| (c.id, c.options)),
            },
            ServiceError::StepUpFailed(detail) => ApiError::StepUpFailed(detail),
            ServiceError::IdempotencyKeyMissing { operation } => ApiError::BadRequest {
                kind: "idempotency-key-missing",
                title: "Idempotency-Key required",
                detail: format!(
                    "{operation} needs an Idempotency-Key header (e.g. a UUID the client makes per attempt and reuses on retry)"
                ),
            },
            ServiceError::IdempotencyKeyInvalid => ApiError::BadRequest {
                kind: "idempotency-key-invalid",
                title: "Invalid Idempotency-Key",
                detail: "an Idempotency-Key has 1 to 255 visible ASCII characters".into(),
            },
            ServiceError::Busy => ApiError::TooManyRequests,
            ServiceError::Unavailable(why) => ApiError::Unavailable(why),
            ServiceError::Internal(msg) => ApiError::Internal(msg),
        }
    }
}

fn conflict_type(reason: ConflictReason) -> (&'static str, &'static str) {
    match reason {
        ConflictReason::CheckoutChanged => ("checkout-changed", "Stock or prices changed"),
        ConflictReason::OutOfStock => ("out-of-stock", "Not enough stock"),
        ConflictReason::NoFulfilmentNode => ("no-fulfilment-node", "No node can ship the order"),
        ConflictReason::PricesChanged => ("checkout-changed", "Prices changed"),
        ConflictReason::PromotionUsedUp => ("checkout-changed", "Promotion used up"),
        ConflictReason::PromotionAlreadyUsed => ("checkout-changed", "Promotion already used"),
        ConflictReason::PromotionNoLongerApplies => {
            ("checkout-changed", "Promotion no longer applies")
        }
        ConflictReason::AuthorizationExpired => {
            ("authorization-expired", "Payment authorization expired")
        }
        ConflictReason::CartAlreadyOrdered => ("cart-already-ordered", "Cart already ordered"),
        ConflictReason::RequestInProgress => ("request-in-progress", "Request in progress"),
        ConflictReason::BelowReserved => ("below-reserved", "Stock would fall below reservations"),
        ConflictReason::EmailTaken => ("email-taken", "Email taken"),
        ConflictReason::PaymentInProgress => ("payment-in-progress", "Payment in progress"),
        ConflictReason::ReturnUnitsExceeded => (
            "return-units-exceeded",
            "More units than the return has left",
        ),
        ConflictReason::ReturnExceedsShipped => {
            ("return-exceeds-shipped", "More units than can be returned")
        }
    }
}

impl From<ordo_domain::FieldErrors> for ApiError {
    fn from(e: ordo_domain::FieldErrors) -> Self {
        ApiError::Validation(e.0)
    }
}

pub fn problem(status: StatusCode, kind: &str, title: &str, detail: String) -> Problem {
    Problem {
        kind: format!("{TYPE_BASE}{kind}"),
        title: title.to_string(),
        status: status.as_u16(),
        detail,
        errors: vec![],
        differences: vec![],
        payment: None,
        challenge: None,
        challenge_id: None,
        current_status: None,
        request_id: None,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let p = match self {
            ApiError::Validation(errors) => {
                let n = errors.len();
                let mut p = problem(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation",
                    "The request has invalid fields",
                    format!(
                        "{n} field{} failed validation; see errors[] for each path",
                        if n == 1 { "" } else { "s" }
                    ),
                );
                p.errors = errors;
                p
            }
            ApiError::BadRequest {
                kind,
                title,
                detail,
            } => problem(StatusCode::BAD_REQUEST, kind, title, detail),
            ApiError::NotFound(what) => problem(
                StatusCode::NOT_FOUND,
                "not-found",
                "Not found",
                format!("{what} was not found"),
            ),
            ApiError::Conflict {
                kind,
                title,
                detail,
                differences,
            } => {
                let mut p = problem(StatusCode::CONFLICT, kind, title, detail);
                p.differences = differences;
                if kind == "request-in-progress" || kind == "payment-in-progress" {
                    return retry_later(p, "1");
                }
                p
            }
            ApiError::WrongState {
                detail,
                current_status,
            } => {
                let mut p = problem(
                    StatusCode::CONFLICT,
                    "illegal-transition",
                    "Not allowed in the current state",
                    detail,
                );
                p.current_status = Some(current_status);
                p
            }
            ApiError::PaymentDeclined { detail, payment } => {
                let mut p = problem(
                    StatusCode::PAYMENT_REQUIRED,
                    "payment-declined",
                    "A payment was declined",
                    detail,
                );
                p.payment = Some(payment);
                p
            }
            ApiError::StepUpRequired { detail, challenge } => {
                let mut p = problem(
                    StatusCode::FORBIDDEN,
                    "step-up-required",
                    "Passkey confirmation required",
                    detail,
                );
                if let Some((id, options)) = challenge {
                    p.challenge_id = Some(id);
                    p.challenge = Some(options);
                }
                p
            }
            ApiError::StepUpFailed(detail) => problem(
                StatusCode::FORBIDDEN,
                "step-up-failed",
                "Passkey confirmation failed",
                detail,
            ),
            ApiError::UnsupportedMediaType => problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "send the body as JSON with Content-Type: application/json".into(),
            ),
            ApiError::PayloadTooLarge => problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
                "the request body exceeds the 1 MiB limit".into(),
            ),
            ApiError::TooManyRequests => {
                let detail = "Ordo's write queue is full; nothing was done. Retry after the Retry-After delay with the same Idempotency-Key";
                return retry_later(
                    problem(
                        StatusCode::TOO_MANY_REQUESTS,
                        "too-many-requests",
                        "Too many requests",
                        detail.into(),
                    ),
                    "1",
                );
            }
            ApiError::Unavailable(why) => {
                tracing::warn!(reason = %why, "storage unavailable");
                let detail = "Ordo cannot reach its storage right now; nothing was done. Retry after the Retry-After delay with the same Idempotency-Key";
                return retry_later(
                    problem(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "storage-unavailable",
                        "Storage unavailable",
                        detail.into(),
                    ),
                    "5",
                );
            }
            ApiError::Internal(msg) => {
                tracing::error!(error = %msg, "internal error");
                problem(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal error",
                    "the server failed; it has been logged".into(),
                )
            }
        };
        problem_response(p)
    }
}

/// A problem the client should retry after `seconds` (429, 503, request in progress).
fn retry_later(p: Problem, seconds: &'static str) -> Response {
    let mut res = problem_response(p);
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
    res
}

pub fn problem_response(p: Problem) -> Response {
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = (status, axum::Json(p)).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    res
}

/// Fallback for unknown paths.
pub async fn not_found(uri: axum::http::Uri) -> Response {
    ApiError::NotFound(format!("the path {}", uri.path())).into_response()
}

/// Fallback for a known path with the wrong method.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    problem_response(problem(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        format!("{method} is not supported on {}", uri.path()),
    ))
}
