//! The sandbox payment gateway. Tokenization turns a card into a token (the card number and CVC
//! live only in that call's memory); authorization approves or declines a token by its test
//! card. It runs outside any database transaction, with a configurable simulated latency.

use ordo_domain::Money;
use ordo_store::TokenRecord;
use std::time::Duration;

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

/// The sandbox's decision for a test card number, fixed at tokenization.
pub fn outcome_for(card_digits: &str) -> &'static str {
    match card_digits {
        "4000000000000002" => "decline",
        "4000000000009995" => "insufficient_funds",
        _ => "approve",
    }
}

pub struct SandboxGateway {
    latency: Duration,
}

impl SandboxGateway {
    pub fn new(latency: Duration) -> Self {
        Self { latency }
    }

    /// Authorizes `amount` on a token under Ordo's `reference`; returns the gateway's
    /// authorization id.
    pub async fn authorize(
        &self,
        reference: &str,
        token: &TokenRecord,
        amount: Money,
        now: (i64, i64),
    ) -> Result<String, DeclineReason> {
        let _ = reference;
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let _ = amount;
        if (token.exp_year, token.exp_month) < now {
            return Err(DeclineReason::ExpiredCard);
        }
        match token.outcome.as_str() {
            "decline" => Err(DeclineReason::CardDeclined),
            "insufficient_funds" => Err(DeclineReason::InsufficientFunds),
            _ => Ok(format!("auth_{}", uuid::Uuid::now_v7().simple())),
        }
    }

    /// Releases an authorization that will not become an order: by the gateway's own id when
    /// Ordo stored it, else by Ordo's reference (given to the gateway at authorization; a no-op
    /// for a reference the gateway never authorized).
    pub async fn void(&self, reference: &str, gateway_authorization: Option<&str>) {
        tracing::debug!(
            reference,
            gateway_authorization,
            "sandbox authorization voided"
        );
    }
}
