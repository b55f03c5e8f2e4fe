//! Payment tenders. The server only ever sees a gateway token, the card brand and the last four
//! digits; card numbers and CVCs exist only in the tokenization call and are never kept.

use crate::error::{FieldError, invalid};
use crate::money::Money;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CardBrand {
    Visa,
    Mastercard,
    Amex,
    Discover,
    Unknown,
}

impl CardBrand {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Visa => "visa",
            Self::Mastercard => "mastercard",
            Self::Amex => "amex",
            Self::Discover => "discover",
            Self::Unknown => "unknown",
        }
    }
    pub fn parse(s: &str) -> Self {
        match s {
            "visa" => Self::Visa,
            "mastercard" => Self::Mastercard,
            "amex" => Self::Amex,
            "discover" => Self::Discover,
            _ => Self::Unknown,
        }
    }
    pub fn from_number(digits: &str) -> Self {
        let p2: u32 = digits.get(..2).and_then(|s| s.parse().ok()).unwrap_or(0);
        let p4: u32 = digits.get(..4).and_then(|s| s.parse().ok()).unwrap_or(0);
        if digits.starts_with('4') {
            Self::Visa
        } else if (51..=55).contains(&p2) || (2221..=2720).contains(&p4) {
            Self::Mastercard
        } else if p2 == 34 || p2 == 37 {
            Self::Amex
        } else if p4 == 6011 || p2 == 65 {
            Self::Discover
        } else {
            Self::Unknown
        }
    }
}

/// A card number that passed the Luhn check. Deliberately neither `Serialize` nor `Debug`-printable
/// in full: it must never reach a log or a database.
pub struct CardNumber(String);

impl std::fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CardNumber(…{})", self.last4())
    }
}

impl CardNumber {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let digits: String = s.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        if digits.len() < 12 || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(
                "invalid_card_number",
                "a card number has 12 to 19 digits",
            ));
        }
        let sum: u32 = digits
            .bytes()
            .rev()
            .enumerate()
            .map(|(i, b)| {
                let d = (b - b'0') as u32;
                if i % 2 == 1 {
                    let x = d * 2;
                    if x > 9 { x - 9 } else { x }
                } else {
                    d
                }
            })
            .sum();
        if sum % 10 != 0 {
            return Err(invalid(
                "invalid_card_number",
                "the card number fails its check digit",
            ));
        }
        Ok(Self(digits))
    }
    pub fn digits(&self) -> &str {
        &self.0
    }
    pub fn last4(&self) -> &str {
        &self.0[self.0.len() - 4..]
    }
    pub fn brand(&self) -> CardBrand {
        CardBrand::from_number(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenderStatus {
    Authorized,
    PartiallyCaptured,
    Captured,
    PartiallyRefunded,
    Refunded,
    Voided,
    Failed,
}

impl TenderStatus {
    /// The stored form (`order_payments.status`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authorized => "authorized",
            Self::PartiallyCaptured => "partially_captured",
            Self::Captured => "captured",
            Self::PartiallyRefunded => "partially_refunded",
            Self::Refunded => "refunded",
            Self::Voided => "voided",
            Self::Failed => "failed",
        }
    }
}

/// One tender of an order: which token paid how much, and its authorization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tender {
    pub token: String,
    pub brand: CardBrand,
    pub last4: String,
    pub amount: Money,
    pub authorization_id: String,
    pub status: TenderStatus,
    /// Money authorized, captured and refunded on this tender so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorized: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refunded: Option<Money>,
    /// Money released from the authorization (cancelled units, never captured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voided: Option<Money>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_and_brand() {
        let n = CardNumber::parse("4242 4242 4242 4242").unwrap();
        assert_eq!(n.last4(), "4242");
        assert_eq!(n.brand(), CardBrand::Visa);
        assert!(CardNumber::parse("4242424242424241").is_err());
        assert_eq!(
            CardNumber::parse("5555555555554444").unwrap().brand(),
            CardBrand::Mastercard
        );
        assert_eq!(
            CardNumber::parse("378282246310005").unwrap().brand(),
            CardBrand::Amex
        );
        assert!(!format!("{n:?}").contains("42424242"));
    }
}
