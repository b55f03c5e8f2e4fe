//! Money: integer minor units plus an ISO 4217 currency. Arithmetic across currencies is an
//! error, overflow is an error, and every rounding goes through `apply_basis_points`.

use crate::error::{FieldError, invalid};
use serde::{Deserialize, Serialize};
use std::fmt;

/// ISO 4217 codes Ordo accepts, with their minor-unit exponent.
const CURRENCIES: &[(&str, u8)] = &[
    ("AED", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EGP", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("ISK", 0),
    ("JPY", 0),
    ("KRW", 0),
    ("KWD", 3),
    ("MXN", 2),
    ("MYR", 2),
    ("NGN", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("PEN", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("QAR", 2),
    ("RON", 2),
    ("SAR", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("THB", 2),
    ("TRY", 2),
    ("TWD", 2),
    ("UAH", 2),
    ("USD", 2),
    ("VND", 0),
    ("ZAR", 2),
    ("BHD", 3),
    ("JOD", 3),
    ("OMR", 3),
    ("TND", 3),
];

/// An ISO 4217 currency that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "USD")]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let up = s.trim().to_ascii_uppercase();
        match CURRENCIES.iter().find(|(c, _)| *c == up) {
            Some((c, _)) => {
                let b = c.as_bytes();
                Ok(Self([b[0], b[1], b[2]]))
            }
            None => Err(invalid(
                "unknown_currency",
                format!("'{s}' is not an ISO 4217 currency code Ordo supports"),
            )),
        }
    }
    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.0).expect("currency codes are ASCII")
    }
    pub fn minor_digits(&self) -> u8 {
        CURRENCIES
            .iter()
            .find(|(c, _)| c.as_bytes() == self.0)
            .map(|(_, d)| *d)
            .unwrap_or(2)
    }
}
impl TryFrom<String> for Currency {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).map_err(|e| e.message)
    }
}
impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.code().to_string()
    }
}
impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("cannot combine {0} with {1}")]
    CurrencyMismatch(Currency, Currency),
    #[error("amount overflow")]
    Overflow,
}

/// An amount in minor units (cents for USD) of one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Money {
    /// Integer minor units, e.g. 1999 for $19.99.
    pub amount: i64,
    #[schema(value_type = String, example = "USD")]
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: i64, currency: Currency) -> Self {
        Self { amount, currency }
    }
    pub fn zero(currency: Currency) -> Self {
        Self {
            amount: 0,
            currency,
        }
    }
    /// A price or tender amount: non-negative and at most 10^12 minor units (ten billion in a
    /// two-decimal currency). With at most 10,000 units per SKU and 100 lines, no order total
    /// can then overflow 64 bits.
    pub fn parse_non_negative(amount: i64, currency: &str) -> Result<Self, FieldError> {
        let currency = Currency::parse(currency).map_err(|mut e| {
            e.path = "currency".into();
            e
        })?;
        if amount < 0 {
            return Err(FieldError::new(
                "amount",
                "negative",
                "an amount must not be negative",
            ));
        }
        if amount > 1_000_000_000_000 {
            return Err(FieldError::new(
                "amount",
                "too_large",
                "an amount must be at most 10^12 minor units",
            ));
        }
        Ok(Self { amount, currency })
    }
    fn same(&self, other: &Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch(self.currency, other.currency))
        }
    }
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same(&other)?;
        self.amount
            .checked_add(other.amount)
            .map(|a| Money::new(a, self.currency))
            .ok_or(MoneyError::Overflow)
    }
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same(&other)?;
        self.amount
            .checked_sub(other.amount)
            .map(|a| Money::new(a, self.currency))
            .ok_or(MoneyError::Overflow)
    }
    pub fn checked_mul(self, n: i64) -> Result<Money, MoneyError> {
        self.amount
            .checked_mul(n)
            .map(|a| Money::new(a, self.currency))
            .ok_or(MoneyError::Overflow)
    }
    pub fn min(self, other: Money) -> Money {
        if other.amount < self.amount {
            other
        } else {
            self
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.currency.minor_digits() as u32;
        if d == 0 {
            return write!(f, "{} {}", self.amount, self.currency);
        }
        let p = 10i64.pow(d);
        let sign = if self.amount < 0 { "-" } else { "" };
        let a = self.amount.unsigned_abs();
        write!(
            f,
            "{sign}{}.{:0w$} {}",
            a / p as u64,
            a % p as u64,
            self.currency,
            w = d as usize
        )
    }
}

/// The one rounding rule: `amount × bps / 10 000`, rounded half away from zero.
/// Used for percentage discounts and tax.
pub fn apply_basis_points(amount: i64, bps: u32) -> i64 {
    let num = amount as i128 * bps as i128;
    let q = num / 10_000;
    let r = num % 10_000;
    let rounded = if r.abs() * 2 >= 10_000 {
        q + num.signum()
    } else {
        q
    };
    rounded as i64
}

/// Splits `total` over `weights` proportionally, in integer units, so the parts sum exactly to
/// `total` (largest remainder; ties go to the earlier weight).
pub fn allocate_proportionally(total: i64, weights: &[i64]) -> Vec<i64> {
    let sum: i128 = weights.iter().map(|w| *w as i128).sum();
    if weights.is_empty() {
        return vec![];
    }
    if sum == 0 {
        let mut v = vec![0; weights.len()];
        v[0] = total;
        return v;
    }
    let mut parts: Vec<i64> = Vec::with_capacity(weights.len());
    let mut rems: Vec<(i128, usize)> = Vec::with_capacity(weights.len());
    for (i, w) in weights.iter().enumerate() {
        let num = total as i128 * *w as i128;
        parts.push((num / sum) as i64);
        rems.push((num % sum, i));
    }
    let mut left = total - parts.iter().sum::<i64>();
    rems.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in rems {
        if left == 0 {
            break;
        }
        parts[i] += 1;
        left -= 1;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn currencies_must_exist() {
        assert_eq!(Currency::parse("usd").unwrap().code(), "USD");
        assert!(Currency::parse("XYZ").is_err());
        assert_eq!(Currency::parse("JPY").unwrap().minor_digits(), 0);
    }

    #[test]
    fn cross_currency_arithmetic_is_an_error() {
        let usd = Money::new(100, Currency::parse("USD").unwrap());
        let eur = Money::new(100, Currency::parse("EUR").unwrap());
        assert!(matches!(
            usd.checked_add(eur),
            Err(MoneyError::CurrencyMismatch(..))
        ));
        assert_eq!(usd.checked_add(usd).unwrap().amount, 200);
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(apply_basis_points(1999, 1000), 200); // 199.9
        assert_eq!(apply_basis_points(1995, 1000), 200); // 199.5
        assert_eq!(apply_basis_points(1994, 1000), 199);
        assert_eq!(apply_basis_points(-1995, 1000), -200);
    }

    #[test]
    fn display_uses_minor_digits() {
        assert_eq!(
            Money::new(1999, Currency::parse("USD").unwrap()).to_string(),
            "19.99 USD"
        );
        assert_eq!(
            Money::new(500, Currency::parse("JPY").unwrap()).to_string(),
            "500 JPY"
        );
    }

    proptest! {
        #[test]
        fn allocation_sums_exactly(total in 0i64..1_000_000_000, weights in proptest::collection::vec(0i64..1_000_000, 1..8)) {
            let parts = allocate_proportionally(total, &weights);
            prop_assert_eq!(parts.iter().sum::<i64>(), total);
            prop_assert!(parts.iter().all(|p| *p >= 0));
        }
    }
}
