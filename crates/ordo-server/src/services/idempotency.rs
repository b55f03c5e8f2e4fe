//! Idempotency for every write that creates something: the one module that turns a client's
//! `Idempotency-Key` into a scoped key and a request hash, and a stored record into a replay or a
//! refusal. Keys are scoped to the operation and to the principal (the token's subject), so one
//! key used on two routes, or by two callers, never mixes answers. A key reused with another body is refused
//! (422); a key whose first request is still running gets 409 `request-in-progress` (Stripe's
//! behaviour) and never reaches the gateway; a finished answer is replayed as it was.

use super::error::{ConflictReason, Result, ServiceError};
use crate::auth::Caller;
use ordo_store::{IdempotencyKey, IdempotencyRecord};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The operations that take a key; the scope of its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    PlaceOrder,
    CreateCart,
    CreatePaymentToken,
    AdjustInventory,
    UpsertProduct,
    RequestReturn,
    Exchange,
    CreateWebhook,
}

impl Operation {
    fn scope(self) -> &'static str {
        match self {
            Operation::PlaceOrder => "orders",
            Operation::CreateCart => "carts",
            Operation::CreatePaymentToken => "payment-tokens",
            Operation::AdjustInventory => "inventory-adjustments",
            Operation::UpsertProduct => "products",
            Operation::RequestReturn => "returns",
            Operation::Exchange => "exchanges",
            Operation::CreateWebhook => "webhooks",
        }
    }

    /// How the operation is named to clients in error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Operation::PlaceOrder => "POST /v1/orders",
            Operation::CreateCart => "POST /v1/carts",
            Operation::CreatePaymentToken => "POST /v1/payment-tokens",
            Operation::AdjustInventory => "POST /v1/inventory/adjustments",
            Operation::UpsertProduct => "PUT /v1/products/{sku}",
            Operation::RequestReturn => "POST /v1/orders/{id}/returns",
            Operation::Exchange => "POST /v1/orders/{id}/exchanges",
            Operation::CreateWebhook => "POST /v1/webhooks",
        }
    }
}

/// A finished answer to return: fresh, or replayed from the key's record.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    /// The JSON body.
    pub body: String,
    pub replayed: bool,
}

/// Validates the header's value (`None`: absent; a value that is not visible ASCII is passed as
/// `Some("\0")` by the API edge). `required` keys must be present.
pub fn parse_key(v: Option<&str>, operation: Operation, required: bool) -> Result<Option<String>> {
    match v.map(str::trim) {
        None | Some("") if required => Err(ServiceError::IdempotencyKeyMissing {
            operation: operation.describe(),
        }),
        None => Ok(None),
        // Sent but empty: the client meant to send a key and lost it; do not run unprotected.
        Some("") => Err(ServiceError::IdempotencyKeyInvalid),
        Some(k) if k.len() > 255 || !k.bytes().all(|b| (0x21..0x7f).contains(&b)) => {
            Err(ServiceError::IdempotencyKeyInvalid)
        }
        Some(k) => Ok(Some(k.to_string())),
    }
}

/// The key as stored: scoped to the operation (and the request's `subject`, e.g. the SKU of a
/// product upsert), with the hash of the request's canonical JSON.
pub fn scoped(
    operation: Operation,
    caller: &Caller,
    subject: &str,
    key: &str,
    request: &impl Serialize,
) -> IdempotencyKey {
    IdempotencyKey {
        key: scoped_key(operation, caller, subject, key),
        request_hash: request_hash(request),
    }
}

/// The stored form of a client's key for `operation` on `subject`.
pub fn scoped_key(operation: Operation, caller: &Caller, subject: &str, key: &str) -> String {
    format!(
        "{}:{}:{subject}:{key}",
        operation.scope(),
        caller.key_owner()
    )
}

/// SHA-256 of the request's canonical JSON (serde_json maps are sorted by key, so equal
/// requests hash equally however they were spelled).
pub fn request_hash(request: &impl Serialize) -> String {
    let canonical = serde_json::to_value(request)
        .map(|v| v.to_string())
        .unwrap_or_default();
    Sha256::digest(canonical.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The answer already stored under `key`, if any (checked before doing any work; the write's
/// own unit checks again atomically).
pub async fn answered(
    state: &crate::AppState,
    caller: &Caller,
    key: Option<&IdempotencyKey>,
) -> Result<Option<Answer>> {
    let Some(k) = key else { return Ok(None) };
    match state
        .store
        .idempotency_record(caller.tenant(), &k.key)
        .await?
    {
        Some(rec) => settle(&rec, &k.request_hash).map(Some),
        None => Ok(None),
    }
}

/// What a stored record means for a request with `request_hash`.
pub fn settle(rec: &IdempotencyRecord, request_hash: &str) -> Result<Answer> {
    if rec.request_hash != request_hash {
        return Err(ServiceError::field(
            "Idempotency-Key",
            "key_reused",
            "this Idempotency-Key was already used for a different request; use a new key for a new request",
        ));
    }
    if rec.in_progress() {
        return Err(ServiceError::conflict(
            ConflictReason::RequestInProgress,
            "a request with this Idempotency-Key is still being processed; retry after it finished to get its answer",
            vec![],
        ));
    }
    let body = rec
        .response
        .clone()
        .ok_or_else(|| ServiceError::Internal("an idempotency record has no answer".into()))?;
    Ok(Answer {
        status: u16::try_from(rec.status).unwrap_or(200),
        body,
        replayed: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_and_scoped() {
        assert!(matches!(
            parse_key(None, Operation::PlaceOrder, true),
            Err(ServiceError::IdempotencyKeyMissing { .. })
        ));
        assert_eq!(parse_key(None, Operation::CreateCart, false).unwrap(), None);
        assert!(matches!(
            parse_key(Some("\0"), Operation::CreateCart, false),
            Err(ServiceError::IdempotencyKeyInvalid)
        ));
        assert!(matches!(
            parse_key(Some(&"k".repeat(256)), Operation::CreateCart, false),
            Err(ServiceError::IdempotencyKeyInvalid)
        ));
        let app = Caller {
            tenant: "t".into(),
            ..Caller::default()
        };
        let a = scoped(
            Operation::PlaceOrder,
            &app,
            "",
            "k1",
            &serde_json::json!({"b": 1, "a": 2}),
        );
        let b = scoped(
            Operation::CreateCart,
            &app,
            "",
            "k1",
            &serde_json::json!({"a": 2, "b": 1}),
        );
        assert_ne!(
            a.key, b.key,
            "one client key on two operations is two records"
        );
        let shopper = Caller {
            tenant: "t".into(),
            principal: Some(crate::auth::Principal {
                tenant: "t".into(),
                subject: "cus_1".into(),
                role: crate::auth::Role::Shopper,
                scope: String::new(),
                order_id: None,
                locations: vec![],
                channel: None,
            }),
            ..Caller::default()
        };
        assert_ne!(
            scoped(Operation::PlaceOrder, &shopper, "", "k1", &1).key,
            a.key,
            "one client key from two principals is two records"
        );
        assert_eq!(
            a.request_hash, b.request_hash,
            "the hash does not depend on key order"
        );
    }

    #[test]
    fn records_settle_into_replays_or_refusals() {
        let done = IdempotencyRecord {
            request_hash: "h".into(),
            status: 201,
            response: Some("{}".into()),
        };
        assert_eq!(
            settle(&done, "h").unwrap(),
            Answer {
                status: 201,
                body: "{}".into(),
                replayed: true
            }
        );
        assert!(matches!(
            settle(&done, "other"),
            Err(ServiceError::Invalid(_))
        ));
        let running = IdempotencyRecord {
            request_hash: "h".into(),
            status: 0,
            response: None,
        };
        assert!(matches!(
            settle(&running, "h"),
            Err(ServiceError::Conflict {
                reason: ConflictReason::RequestInProgress,
                ..
            })
        ));
    }
}
