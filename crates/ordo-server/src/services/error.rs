//! The service layer's one error type: what went wrong, in the domain's terms. `api::problem`
//! maps it to RFC 9457 problems in one place (status, `type` URI, title); nothing here knows HTTP.

use ordo_domain::{FieldError, FieldErrors};
use serde_json::Value;

/// Why a request conflicts with the current state; each has a stable problem type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictReason {
    /// Stock, prices, promotions or the total differ from what the shopper confirmed.
    CheckoutChanged,
    /// Not enough stock when the order was committed.
    OutOfStock,
    /// Stock covers the order but no node holding it can ship today (capacity).
    NoFulfilmentNode,
    /// Prices moved while the order was being placed.
    PricesChanged,
    /// A promotion code reached its usage limit.
    PromotionUsedUp,
    /// The customer already used a promotion code as often as allowed.
    PromotionAlreadyUsed,
    /// A promotion code's window, minimum or currency no longer holds.
    PromotionNoLongerApplies,
    /// A card authorization was voided by recovery before the order committed.
    AuthorizationExpired,
    /// The cart already became an order.
    CartAlreadyOrdered,
    /// Another request with the same Idempotency-Key is being processed.
    RequestInProgress,
    /// An adjustment would take on-hand below the units reserved for orders.
    BelowReserved,
    /// An account with this email exists.
    EmailTaken,
    /// A payment operation of the same order is running (retry shortly).
    PaymentInProgress,
    /// A return asks for more units than shipped and not yet returned or asked back.
    ReturnExceedsShipped,
    /// A receipt or disposition names more units than its return has left for that step.
    ReturnUnitsExceeded,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("invalid request")]
    Invalid(Vec<FieldError>),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{detail}")]
    Conflict {
        reason: ConflictReason,
        detail: String,
        differences: Vec<Value>,
    },
    /// The move is not allowed in the current state (of an order or a fulfilment).
    #[error("{detail}")]
    WrongState {
        detail: String,
        current_status: String,
    },
    #[error("payment declined: {detail}")]
    PaymentDeclined { detail: String, payment: Value },
    /// The order needs a passkey confirmation (step-up) first; with `challenge` when the shopper
    /// has a passkey to answer it with. Nothing was placed or claimed.
    #[error("{detail}")]
    StepUpRequired {
        detail: String,
        challenge: Option<super::passkeys::StepUpChallenge>,
    },
    /// A step-up assertion was refused (unknown, used, expired or mismatched challenge, foreign
    /// credential, bad signature). Nothing was placed or claimed.
    #[error("step-up failed: {0}")]
    StepUpFailed(String),
    #[error("the Idempotency-Key header is missing")]
    IdempotencyKeyMissing { operation: &'static str },
    #[error("the Idempotency-Key header is invalid")]
    IdempotencyKeyInvalid,
    /// The write path is saturated; retry shortly.
    #[error("busy")]
    Busy,
    /// Storage cannot be reached right now (no connection in time, the write path gone).
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn field(path: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        ServiceError::Invalid(vec![FieldError::new(path, code, message)])
    }

    pub fn conflict(
        reason: ConflictReason,
        detail: impl Into<String>,
        differences: Vec<Value>,
    ) -> Self {
        ServiceError::Conflict {
            reason,
            detail: detail.into(),
            differences,
        }
    }
}

impl From<ordo_store::StoreError> for ServiceError {
    fn from(e: ordo_store::StoreError) -> Self {
        match e {
            ordo_store::StoreError::Busy => ServiceError::Busy,
            ordo_store::StoreError::Unavailable(why) => ServiceError::Unavailable(why),
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

impl From<FieldErrors> for ServiceError {
    fn from(e: FieldErrors) -> Self {
        ServiceError::Invalid(e.0)
    }
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;
