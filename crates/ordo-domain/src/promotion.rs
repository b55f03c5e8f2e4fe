//! Promotion codes: percent off, fixed amount off, buy X get Y free, free shipping; minimum
//! subtotal, validity window, usage limits per code and per customer. Stacking rule: at most one
//! discount code (percent, fixed or buy X get Y) plus at most one free-shipping code per cart.

use crate::error::FieldError;
use crate::ids::Sku;
use crate::money::{Currency, Money};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PromotionKind {
    /// Percent off the subtotal, in basis points (1500 = 15 %).
    Percent {
        bps: u32,
    },
    /// A fixed amount off the subtotal, never more than the subtotal.
    Fixed {
        amount: Money,
    },
    /// Buy `buy` eligible units, get `get` more free; see `BuyXGetY::free_units_amount`.
    #[serde(rename = "buy_x_get_y")]
    BuyXGetY(BuyXGetY),
    FreeShipping,
}

/// The parameters of a buy-X-get-Y code, only ever built valid: `buy` and `get` are 1 to
/// `BuyXGetY::MAX_UNITS`, and each eligible prefix could start a SKU. Stored rows are parsed
/// through the same checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "BuyXGetYFields")]
pub struct BuyXGetY {
    buy: i64,
    get: i64,
    eligible_sku_prefixes: Vec<String>,
}

/// The JSON shape of `BuyXGetY` before its checks.
#[derive(Deserialize)]
struct BuyXGetYFields {
    buy: i64,
    get: i64,
    #[serde(default)]
    eligible_sku_prefixes: Vec<String>,
}

impl TryFrom<BuyXGetYFields> for BuyXGetY {
    type Error = String;
    fn try_from(f: BuyXGetYFields) -> Result<Self, String> {
        BuyXGetY::new(f.buy, f.get, f.eligible_sku_prefixes)
            .map_err(|e| format!("{}: {}", e.path, e.message))
    }
}

impl BuyXGetY {
    /// The most units `buy` or `get` may name.
    pub const MAX_UNITS: i64 = 1000;
    /// The most SKU prefixes one code may list.
    pub const MAX_PREFIXES: usize = 100;

    /// `buy` units paid for and `get` units free per group, counting only SKUs that start with
    /// one of `eligible_sku_prefixes` (case-sensitive, like SKUs; empty = every SKU).
    pub fn new(buy: i64, get: i64, eligible_sku_prefixes: Vec<String>) -> Result<Self, FieldError> {
        for (path, n) in [("buy", buy), ("get", get)] {
            if !(1..=Self::MAX_UNITS).contains(&n) {
                return Err(FieldError::new(
                    path,
                    "out_of_range",
                    format!("{path} must be 1 to {} units", Self::MAX_UNITS),
                ));
            }
        }
        if eligible_sku_prefixes.len() > Self::MAX_PREFIXES {
            return Err(FieldError::new(
                "eligible_sku_prefixes",
                "too_many",
                format!("at most {} SKU prefixes", Self::MAX_PREFIXES),
            ));
        }
        for (i, prefix) in eligible_sku_prefixes.iter().enumerate() {
            // A prefix is the start of a SKU, so it follows the SKU's own rules.
            if prefix.trim() != prefix {
                return Err(FieldError::new(
                    format!("eligible_sku_prefixes[{i}]"),
                    "invalid_format",
                    "a SKU prefix must not start or end with spaces",
                ));
            }
            Sku::parse(prefix).map_err(|mut e| {
                e.path = format!("eligible_sku_prefixes[{i}]");
                e
            })?;
        }
        Ok(Self {
            buy,
            get,
            eligible_sku_prefixes,
        })
    }

    pub fn buy(&self) -> i64 {
        self.buy
    }

    pub fn get(&self) -> i64 {
        self.get
    }

    pub fn eligible_sku_prefixes(&self) -> &[String] {
        &self.eligible_sku_prefixes
    }

    pub fn is_eligible(&self, sku: &Sku) -> bool {
        self.eligible_sku_prefixes.is_empty()
            || self
                .eligible_sku_prefixes
                .iter()
                .any(|p| sku.as_str().starts_with(p.as_str()))
    }

    /// What the free units are worth, in minor units of the lines' currency.
    ///
    /// The rule: put every eligible unit in the cart in one row, most expensive first, and cut
    /// the row into groups of `buy + get` units; in each complete group the last `get` units (the
    /// group's cheapest) are free, and units left over after the last complete group pay full
    /// price. Ordering by price first is the grouping most generous to the shopper: no other way
    /// of cutting the units into groups makes the free units worth more. Example, buy 2 get 1 on 25, 22, 19, 19 → one group
    /// (25, 22, 19), 19 free, the last 19 pays. Units of SKUs that are not eligible neither count
    /// towards a group nor become free.
    ///
    /// Refuses with `NotEnoughEligibleItems` when the cart holds no complete group. The sum never
    /// exceeds the eligible lines' total; the caller still caps the discount at the subtotal.
    /// `lines` are (SKU, unit price in minor units, quantity).
    pub fn free_units_amount<'a>(
        &self,
        lines: impl IntoIterator<Item = (&'a Sku, i64, i64)>,
    ) -> Result<i64, PromoRejection> {
        let mut runs: Vec<(i64, i64)> = lines
            .into_iter()
            .filter(|(sku, _, quantity)| *quantity > 0 && self.is_eligible(sku))
            .map(|(_, unit_price, quantity)| (unit_price, quantity))
            .collect();
        runs.sort_by_key(|&(unit_price, _)| std::cmp::Reverse(unit_price));
        // Walk the row one run of units at a time instead of unit by unit: position p (0-based)
        // is free when it lies in a complete group and p mod (buy + get) >= buy.
        let group = i128::from(self.buy + self.get);
        let units: i128 = runs.iter().map(|(_, quantity)| i128::from(*quantity)).sum();
        if units < group {
            return Err(PromoRejection::NotEnoughEligibleItems);
        }
        let in_complete_groups = units - units % group;
        let free_before = |position: i128| {
            let position = position.min(in_complete_groups);
            (position / group) * i128::from(self.get)
                + (position % group - i128::from(self.buy)).max(0)
        };
        let mut position: i128 = 0;
        let mut amount: i128 = 0;
        for (unit_price, quantity) in runs {
            let end = position + i128::from(quantity);
            amount += i128::from(unit_price) * (free_before(end) - free_before(position));
            position = end;
        }
        Ok(amount.clamp(0, i128::from(i64::MAX)) as i64)
    }
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
    /// A buy-X-get-Y code, but the cart lacks a complete group of eligible units.
    NotEnoughEligibleItems,
}

impl PromoRejection {
    pub fn message(self) -> &'static str {
        match self {
            Self::UnknownCode => "no promotion has this code",
            Self::NotStarted => "this code is not valid yet",
            Self::Expired => "this code has expired",
            Self::MinSubtotalNotMet => "the subtotal is below this code's minimum",
            Self::UsageLimitReached => "this code has been used up",
            Self::CustomerLimitReached => {
                "this customer has already used this code as often as allowed"
            }
            Self::CurrencyMismatch => "this code is for another currency",
            Self::NotStackable => {
                "only one discount code and one free-shipping code can be combined"
            }
            Self::Duplicate => "this code is already applied",
            Self::EmptyCart => "the cart has no lines to apply this code to",
            Self::NotEnoughEligibleItems => {
                "the cart does not hold enough eligible items for this code"
            }
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
    pub fn check(
        &self,
        subtotal: Money,
        now_ms: i64,
        customer_uses: i64,
    ) -> Result<(), PromoRejection> {
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
        if self
            .min_subtotal
            .is_some_and(|m| subtotal.amount < m.amount)
        {
            return Err(PromoRejection::MinSubtotalNotMet);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(a: i64) -> Money {
        Money::new(a, Currency::parse("USD").unwrap())
    }
    fn line(sku: &str, unit_price: i64, quantity: i64) -> (Sku, i64, i64) {
        (Sku::parse(sku).unwrap(), unit_price, quantity)
    }
    fn units(lines: &[(Sku, i64, i64)]) -> impl Iterator<Item = (&Sku, i64, i64)> {
        lines.iter().map(|(s, p, q)| (s, *p, *q))
    }
    fn tees(buy: i64, get: i64) -> BuyXGetY {
        BuyXGetY::new(buy, get, vec!["TEE-".into()]).unwrap()
    }

    #[test]
    fn buy_x_get_y_parameters_are_checked_when_built() {
        assert!(BuyXGetY::new(2, 1, vec!["TEE-".into()]).is_ok());
        assert!(BuyXGetY::new(BuyXGetY::MAX_UNITS, BuyXGetY::MAX_UNITS, vec![]).is_ok());
        for (buy, get, path) in [
            (0, 1, "buy"),
            (-1, 1, "buy"),
            (1001, 1, "buy"),
            (2, 0, "get"),
            (2, -5, "get"),
            (2, 1001, "get"),
        ] {
            let e = BuyXGetY::new(buy, get, vec![]).unwrap_err();
            assert_eq!(
                (e.path.as_str(), e.code.as_str()),
                (path, "out_of_range"),
                "buy {buy} get {get}"
            );
        }
        for bad in ["", " TEE-", "TEE 1", "T\u{e9}E-"] {
            let e = BuyXGetY::new(2, 1, vec!["MUG-".into(), bad.into()]).unwrap_err();
            assert_eq!(e.path, "eligible_sku_prefixes[1]", "{bad:?}");
        }
        let many = vec!["TEE-".to_string(); BuyXGetY::MAX_PREFIXES + 1];
        assert_eq!(BuyXGetY::new(2, 1, many).unwrap_err().code, "too_many");
    }

    #[test]
    fn buy_x_get_y_json_shape_and_stored_rows_are_checked() {
        let p = Promotion::new("tees3for2", PromotionKind::BuyXGetY(tees(2, 1)));
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["code"], "TEES3FOR2");
        assert_eq!(
            json["kind"],
            serde_json::json!({"kind": "buy_x_get_y", "buy": 2, "get": 1, "eligible_sku_prefixes": ["TEE-"]})
        );
        assert_eq!(serde_json::from_value::<Promotion>(json).unwrap(), p);

        let kind = |s: &str| serde_json::from_str::<PromotionKind>(s);
        assert_eq!(
            kind(r#"{"kind":"buy_x_get_y","buy":3,"get":2}"#).unwrap(),
            PromotionKind::BuyXGetY(BuyXGetY::new(3, 2, vec![]).unwrap())
        );
        assert!(kind(r#"{"kind":"buy_x_get_y","buy":0,"get":1}"#).is_err());
        assert!(
            kind(r#"{"kind":"buy_x_get_y","buy":2,"get":1,"eligible_sku_prefixes":["no spaces"]}"#)
                .is_err()
        );
        assert!(kind(r#"{"kind":"buy_x_get_y","get":1}"#).is_err());
    }

    #[test]
    fn existing_kinds_keep_their_json() {
        for s in [
            r#"{"kind":"percent","bps":1000}"#,
            r#"{"kind":"fixed","amount":{"amount":500,"currency":"USD"}}"#,
            r#"{"kind":"free_shipping"}"#,
        ] {
            let k: PromotionKind = serde_json::from_str(s).unwrap();
            assert_eq!(serde_json::to_string(&k).unwrap(), s);
        }
    }

    #[test]
    fn every_complete_group_frees_its_cheapest_units() {
        // Buy 2 get 1: 25, 22, 19 → 19 free.
        let rule = tees(2, 1);
        assert_eq!(
            rule.free_units_amount(units(&[
                line("TEE-1", 1900, 1),
                line("TEE-2", 2200, 1),
                line("TEE-3", 2500, 1)
            ])),
            Ok(1900)
        );
        // Six equal units are two groups; a seventh starts a group that is not complete.
        assert_eq!(
            rule.free_units_amount(units(&[line("TEE-1", 1000, 6)])),
            Ok(2000)
        );
        assert_eq!(
            rule.free_units_amount(units(&[line("TEE-1", 1000, 7)])),
            Ok(2000)
        );
        // Buy 1 get 1 over several units of one line: every second unit is free.
        assert_eq!(
            tees(1, 1).free_units_amount(units(&[line("TEE-1", 700, 5)])),
            Ok(1400)
        );
        // Units after the last complete group pay, even those past `buy` in the unfinished group.
        assert_eq!(
            tees(3, 3).free_units_amount(units(&[line("TEE-1", 100, 10)])),
            Ok(300)
        );
        assert_eq!(
            tees(1, 2).free_units_amount(units(&[line("TEE-1", 100, 5)])),
            Ok(200)
        );
    }

    #[test]
    fn mixed_prices_are_grouped_most_expensive_first() {
        let lines = [
            line("TEE-A", 1000, 2),
            line("TEE-B", 3000, 1),
            line("TEE-C", 500, 3),
        ];
        // 30, 10, 10 | 5, 5, 5 → 10 and 5 free.
        assert_eq!(tees(2, 1).free_units_amount(units(&lines)), Ok(1500));
        // Buy 2 get 2: 30, 10, 10, 5 → 10 and 5 free; the other two 5s pay.
        assert_eq!(tees(2, 2).free_units_amount(units(&lines)), Ok(1500));
        // Buy 1 get 2: 30, 10, 10 | 5, 5, 5 → 10 + 10 + 5 + 5.
        assert_eq!(tees(1, 2).free_units_amount(units(&lines)), Ok(3000));
    }

    #[test]
    fn units_of_other_skus_neither_count_nor_become_free() {
        let rule = tees(2, 1);
        // Three units, but only two are tees.
        assert_eq!(
            rule.free_units_amount(units(&[line("TEE-1", 2000, 2), line("MUG-1", 100, 5)])),
            Err(PromoRejection::NotEnoughEligibleItems)
        );
        // The mug is the cheapest unit in the cart, yet the cheapest tee is the one that is free.
        assert_eq!(
            rule.free_units_amount(units(&[
                line("TEE-1", 2000, 2),
                line("MUG-1", 100, 1),
                line("TEE-2", 1500, 1)
            ])),
            Ok(1500)
        );
        // Prefixes are case-sensitive, like SKUs; no prefixes means every SKU counts.
        assert_eq!(
            rule.free_units_amount(units(&[line("tee-1", 2000, 3)])),
            Err(PromoRejection::NotEnoughEligibleItems)
        );
        let any = BuyXGetY::new(2, 1, vec![]).unwrap();
        assert_eq!(
            any.free_units_amount(units(&[line("TEE-1", 2000, 2), line("MUG-1", 100, 1)])),
            Ok(100)
        );
    }

    #[test]
    fn an_incomplete_group_is_refused() {
        let rule = tees(2, 1);
        assert_eq!(
            rule.free_units_amount(units(&[])),
            Err(PromoRejection::NotEnoughEligibleItems)
        );
        assert_eq!(
            rule.free_units_amount(units(&[line("TEE-1", 1900, 1), line("TEE-2", 2200, 1)])),
            Err(PromoRejection::NotEnoughEligibleItems)
        );
        assert_eq!(
            tees(3, 3).free_units_amount(units(&[line("TEE-1", 1900, 5)])),
            Err(PromoRejection::NotEnoughEligibleItems)
        );
        assert!(!PromoRejection::NotEnoughEligibleItems.message().is_empty());
        assert_eq!(
            serde_json::to_value(PromoRejection::NotEnoughEligibleItems).unwrap(),
            "not_enough_eligible_items"
        );
    }

    #[test]
    fn buy_x_get_y_is_a_discount_and_keeps_the_common_conditions() {
        let mut p = Promotion::new("TEES", PromotionKind::BuyXGetY(tees(2, 1)));
        assert!(p.is_discount());
        p.min_subtotal = Some(usd(5000));
        p.usage_limit = Some(1);
        assert_eq!(
            p.check(usd(4999), 0, 0),
            Err(PromoRejection::MinSubtotalNotMet)
        );
        assert_eq!(p.check(usd(5000), 0, 0), Ok(()));
        p.times_used = 1;
        assert_eq!(
            p.check(usd(5000), 0, 0),
            Err(PromoRejection::UsageLimitReached)
        );
    }
}
