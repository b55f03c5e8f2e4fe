//! Payment gateways. `PaymentGateway` is what Ordo asks of any provider: authorize, capture
//! (partial, several times), void (all or part of what is left), refund (partial), and the status
//! of an operation — every call under Ordo's own idempotency key, so a retry never moves money
//! twice. It maps onto Stripe's PaymentIntents: authorize = create and confirm with
//! `capture_method=manual`; capture = `capture` with `amount_to_capture` (multicapture);
//! void = `cancel` (or the final capture's release of the rest); refund = a Refund on the
//! intent; status = retrieving the object created under the idempotency key.
//!
//! The sandbox behaves like a real provider. Tokenization turns a card into a token (the card
//! number and CVC live only in that call's memory). Test cards: `4242424242424242` approves,
//! `4000000000000002` is declined, `4000000000009995` has insufficient funds,
//! `4000000000000341` authorizes but every capture is declined, `4000000000000259` authorizes
//! but the answer to its first capture is lost (the capture happened: a status query finds it),
//! and `4000000000005126` captures but every refund is declined. Authorizations expire after `--sandbox-authorization-ttl`. Its ledger lives in its
//! own table (`ordo_store::sandbox`), written outside Ordo's transactions. Its authorization ids
//! carry the amount and the card's behaviour (`auth_<uuid v7>_<amount>_<flags>`); a real
//! provider's ids are opaque to Ordo, which never parses them.

use ordo_domain::Money;
use ordo_store::{Store, TokenRecord};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub type GatewayFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why the gateway refused a tender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    CardDeclined,
    InsufficientFunds,
    ExpiredCard,
}

impl DeclineReason {
    pub fn message(self) -> &'static str {
        match self {
            Self::CardDeclined => "the card was declined",
            Self::InsufficientFunds => "the card has insufficient funds",
            Self::ExpiredCard => "the card has expired",
        }
    }
}

/// Why an operation on an authorization did not happen (or might have).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    #[error("the gateway declined: {0}")]
    Declined(String),
    #[error("the authorization expired")]
    Expired,
    #[error("the gateway refused the request: {0}")]
    Invalid(String),
    /// No answer came back: the operation may or may not have happened; ask `status`.
    #[error("the gateway did not answer in time")]
    Timeout,
}

/// What the gateway knows of an operation, by its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationStatus {
    Succeeded {
        reference: String,
    },
    Failed {
        reason: String,
    },
    /// The gateway never saw the key: the operation did not happen.
    Unknown,
}

/// What Ordo asks of a payment provider. Every call runs outside any database transaction.
pub trait PaymentGateway: Send + Sync {
    /// Authorizes `amount` on a token under Ordo's `reference`; the provider's authorization id.
    fn authorize<'a>(
        &'a self,
        reference: &'a str,
        token: &'a TokenRecord,
        amount: Money,
        now: (i64, i64),
    ) -> GatewayFuture<'a, Result<String, DeclineReason>>;

    /// Releases an authorization that will not become an order (by the provider's id when Ordo
    /// stored it, else by Ordo's reference).
    fn void_authorization<'a>(
        &'a self,
        reference: &'a str,
        gateway_authorization: Option<&'a str>,
    ) -> GatewayFuture<'a, ()>;

    /// Captures `amount` of an authorization; the capture's reference.
    fn capture<'a>(
        &'a self,
        key: &'a str,
        authorization: &'a str,
        amount: Money,
    ) -> GatewayFuture<'a, Result<String, GatewayError>>;

    /// Releases `amount` of what an authorization has left.
    fn void<'a>(
        &'a self,
        key: &'a str,
        authorization: &'a str,
        amount: Money,
    ) -> GatewayFuture<'a, Result<String, GatewayError>>;

    /// Refunds `amount` of what was captured on an authorization.
    fn refund<'a>(
        &'a self,
        key: &'a str,
        authorization: &'a str,
        amount: Money,
    ) -> GatewayFuture<'a, Result<String, GatewayError>>;

    /// The outcome of the operation made under `key`.
    fn status<'a>(
        &'a self,
        key: &'a str,
    ) -> GatewayFuture<'a, Result<OperationStatus, GatewayError>>;
}

/// The sandbox's decision for a test card number, fixed at tokenization.
pub fn outcome_for(card_digits: &str) -> &'static str {
    match card_digits {
        "4000000000000002" => "decline",
        "4000000000009995" => "insufficient_funds",
        "4000000000000341" => "capture_decline",
        "4000000000000259" => "capture_timeout",
        "4000000000005126" => "refund_decline",
        _ => "approve",
    }
}

/// An authorization as the sandbox wrote its id.
struct SandboxAuth {
    created_ms: i64,
    amount: i64,
    capture_decline: bool,
    capture_timeout: bool,
    refund_decline: bool,
}

fn parse_auth(id: &str) -> Option<SandboxAuth> {
    let mut parts = id.strip_prefix("auth_")?.split('_');
    let uuid = uuid::Uuid::parse_str(parts.next()?).ok()?;
    let amount = parts.next()?.parse().ok()?;
    let flags = parts.next().unwrap_or("");
    let (secs, nanos) = uuid.get_timestamp()?.to_unix();
    Some(SandboxAuth {
        created_ms: secs as i64 * 1000 + i64::from(nanos / 1_000_000),
        amount,
        capture_decline: flags.contains('d'),
        capture_timeout: flags.contains('t'),
        refund_decline: flags.contains('r'),
    })
}

pub struct SandboxGateway {
    latency: Duration,
    authorization_ttl: Duration,
    store: Store,
}

impl SandboxGateway {
    pub fn new(latency: Duration, authorization_ttl: Duration, store: Store) -> Self {
        Self {
            latency,
            authorization_ttl,
            store,
        }
    }

    async fn pause(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }

    /// One ledger operation: refused up front when `check` says so, else recorded.
    async fn operate(
        &self,
        key: &str,
        kind: &'static str,
        authorization: &str,
        amount: Money,
    ) -> Result<String, GatewayError> {
        self.pause().await;
        let Some(auth) = parse_auth(authorization) else {
            return Err(GatewayError::Invalid(format!(
                "no authorization {authorization}"
            )));
        };
        if amount.amount <= 0 {
            return Err(GatewayError::Invalid("the amount must be positive".into()));
        }
        let expired =
            ordo_store::now_ms() > auth.created_ms + self.authorization_ttl.as_millis() as i64;
        let (amount_v, authorized) = (amount.amount, auth.amount);
        let (decline, timeout, refund_decline) = (
            auth.capture_decline,
            auth.capture_timeout,
            auth.refund_decline,
        );
        let (entry, existed) = self
            .store
            .sandbox_operation(key, kind, authorization, amount.amount, move |sums| {
                let outcome = match kind {
                    "capture" if expired => "expired",
                    "capture" if decline => "declined",
                    "capture" if sums.captured + sums.voided + amount_v > authorized => {
                        "exceeds_authorization"
                    }
                    "void" if sums.captured + sums.voided + amount_v > authorized => {
                        "exceeds_authorization"
                    }
                    "refund" if refund_decline => "declined",
                    "refund" if sums.refunded + amount_v > sums.captured => "exceeds_capture",
                    _ => "ok",
                };
                // The timeout card loses the answer to its first capture (which happened).
                let answered = !(kind == "capture" && timeout && sums.tries == 0);
                (outcome.to_string(), answered)
            })
            .await
            .map_err(|e| GatewayError::Invalid(e.to_string()))?;
        if entry.kind != kind || entry.auth_ref != authorization || entry.amount != amount.amount {
            return Err(GatewayError::Invalid(format!(
                "idempotency key {key} was used for another request"
            )));
        }
        if !existed && !entry.answered {
            return Err(GatewayError::Timeout);
        }
        match entry.outcome.as_str() {
            "ok" => Ok(format!("{kind}_{key}")),
            "expired" => Err(GatewayError::Expired),
            "declined" => Err(GatewayError::Declined(format!("the {kind} was declined"))),
            other => Err(GatewayError::Invalid(other.replace('_', " "))),
        }
    }
}

impl PaymentGateway for SandboxGateway {
    fn authorize<'a>(
        &'a self,
        _reference: &'a str,
        token: &'a TokenRecord,
        amount: Money,
        now: (i64, i64),
    ) -> GatewayFuture<'a, Result<String, DeclineReason>> {
        Box::pin(async move {
            self.pause().await;
            if (token.exp_year, token.exp_month) < now {
                return Err(DeclineReason::ExpiredCard);
            }
            let flags = match token.outcome.as_str() {
                "decline" => return Err(DeclineReason::CardDeclined),
                "insufficient_funds" => return Err(DeclineReason::InsufficientFunds),
                "capture_decline" => "d",
                "capture_timeout" => "t",
                "refund_decline" => "r",
                _ => "",
            };
            Ok(format!(
                "auth_{}_{}_{flags}",
                uuid::Uuid::now_v7().simple(),
                amount.amount
            ))
        })
    }

    fn void_authorization<'a>(
        &'a self,
        reference: &'a str,
        gateway_authorization: Option<&'a str>,
    ) -> GatewayFuture<'a, ()> {
        Box::pin(async move {
            tracing::debug!(
                reference,
                gateway_authorization,
                "sandbox authorization voided"
            );
        })
    }

    fn capture<'a>(
        &'a self,
        key: &'a str,
        authorization: &'a str,
        amount: Money,
    ) -> GatewayFuture<'a, Result<String, GatewayError>> {
        Box::pin(self.operate(key, "capture", authorization, amount))
    }

    fn void<'a>(
        &'a self,
        key: &'a str,
        authorization: &'a str,
        amount: Money,
    ) -> GatewayFuture<'a, Result<String, GatewayError>> {
        Box::pin(self.operate(key, "void", authorization, amount))
    }

    fn refund<'a>(
        &'a self,
        key: &'a str,
        authorization: &'a str,
        amount: Money,
    ) -> GatewayFuture<'a, Result<String, GatewayError>> {
        Box::pin(self.operate(key, "refund", authorization, amount))
    }

    fn status<'a>(
        &'a self,
        key: &'a str,
    ) -> GatewayFuture<'a, Result<OperationStatus, GatewayError>> {
        Box::pin(async move {
            self.pause().await;
            let entry = self
                .store
                .sandbox_entry(key)
                .await
                .map_err(|e| GatewayError::Invalid(e.to_string()))?;
            Ok(match entry {
                None => OperationStatus::Unknown,
                Some(e) if e.outcome == "ok" => OperationStatus::Succeeded {
                    reference: format!("{}_{key}", e.kind),
                },
                Some(e) => OperationStatus::Failed {
                    reason: e.outcome.replace('_', " "),
                },
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_authorization_ids_carry_amount_time_and_behaviour() {
        let id = format!("auth_{}_1250_t", uuid::Uuid::now_v7().simple());
        let a = parse_auth(&id).unwrap();
        assert_eq!(a.amount, 1250);
        assert!(a.capture_timeout && !a.capture_decline);
        assert!((ordo_store::now_ms() - a.created_ms).abs() < 60_000);
        assert!(parse_auth("auth_x").is_none());
        assert!(parse_auth("pa_123").is_none());
    }
}
