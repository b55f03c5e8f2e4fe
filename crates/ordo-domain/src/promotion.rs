//! Promotion codes: percent off, fixed amount off, free shipping; minimum subtotal, validity
//! window, usage limits per code and per customer. Stacking rule: at most one discount code
//! (percent or fixed) plus at most one free-shipping code per cart.

use crate::money::{Currency, Money};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PromotionKind {
    /// Percent off the subtotal, in basis points (1500 = 15 %).
    Percent { bps: u32 },
    /// A fixed amount off the subtotal, never more than the subtotal.
    Fixed { amount: Money },
    FreeShipping,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Promotion {
    /// Upper-case code as the shopper types it (codes compare case-insensitively).
    pub code: String,
    pub kind: PromotionKind,
    pub min_subtotal: Option<Money>,
    pub starts_at_ms: Option<i64>,
    pub ends_at_ms: Option<i64>,
    pub usage_limit: Option<i64>,
    pub per_customer_limit: Option<i64>,
    pub times_used: i64,
}

/// Why a code was not applied; stable codes the app can translate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PromoRejection {
    UnknownCode,
    NotStarted,
    Expired,
    MinSubtotalNotMet,
    UsageLimitReached,
    CustomerLimitReached,
    CurrencyMismatch,
    NotStackable,
    Duplicate,
    EmptyCart,
}

impl PromoRejection {
    pub fn message(self) -> &'static str {
        match self {
            Self::UnknownCode => "no promotion has this code",
            Self::NotStarted => "this code is not valid yet",
            Self::Expired => "this code has expired",
            Self::MinSubtotalNotMet => "the subtotal is below this code's minimum",
            Self::UsageLimitReached => "this code has been used up",
            Self::CustomerLimitReached => "this customer has already used this code as often as allowed",
            Self::CurrencyMismatch => "this code is for another currency",
            Self::NotStackable => "only one discount code and one free-shipping code can be combined",
            Self::Duplicate => "this code is already applied",
            Self::EmptyCart => "the cart has no lines to apply this code to",
        }
    }
}

pub fn normalize_code(code: &str) -> String {
    code.trim().to_ascii_uppercase()
}

impl Promotion {
    /// A code with no conditions (no minimum, window or limits, unused); set the fields that apply.
    pub fn new(code: &str, kind: PromotionKind) -> Promotion {
        Promotion {
            code: normalize_code(code),
            kind,
            min_subtotal: None,
            starts_at_ms: None,
            ends_at_ms: None,
            usage_limit: None,
            per_customer_limit: None,
            times_used: 0,
        }
    }

    pub fn is_discount(&self) -> bool {
        !matches!(self.kind, PromotionKind::FreeShipping)
    }

    /// Checks every condition except stacking, which depends on the other codes.
    pub fn check(&self, subtotal: Money, now_ms: i64, customer_uses: i64) -> Result<(), PromoRejection> {
        if self.starts_at_ms.is_some_and(|s| now_ms < s) {
            return Err(PromoRejection::NotStarted);
        }
        if self.ends_at_ms.is_some_and(|e| now_ms >= e) {
            return Err(PromoRejection::Expired);
        }
        if self.usage_limit.is_some_and(|l| self.times_used >= l) {
            return Err(PromoRejection::UsageLimitReached);
        }
        if self.per_customer_limit.is_some_and(|l| customer_uses >= l) {
            return Err(PromoRejection::CustomerLimitReached);
        }
        let currency_of = |m: &Money| m.currency;
        let own_currency: Option<Currency> = match &self.kind {
            PromotionKind::Fixed { amount } => Some(amount.currency),
            _ => self.min_subtotal.as_ref().map(currency_of),
        };
        if own_currency.is_some_and(|c| c != subtotal.currency) {
            return Err(PromoRejection::CurrencyMismatch);
        }
        if self.min_subtotal.is_some_and(|m| subtotal.amount < m.amount) {
            return Err(PromoRejection::MinSubtotalNotMet);
        }
        Ok(())
    }
}
