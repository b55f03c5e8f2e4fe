//! Pricing a cart: current unit prices, stock limits, promotions, shipping and tax, and a
//! `changes` list that explains every adjustment. Pure: the caller supplies the catalog view,
//! promotions and clock. Cart sync shows the adjusted cart; order placement refuses (409) when
//! any change would alter what the shopper agreed to.

use crate::contact::Address;
use crate::ids::Sku;
use crate::money::{Currency, Money, allocate_proportionally, apply_basis_points};
use crate::promotion::{PromoRejection, Promotion, PromotionKind, normalize_code};
use crate::tax;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What the catalog says about one SKU right now.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEntry {
    pub name: String,
    pub price: Money,
    pub available: i64,
}

/// A requested line: SKU and the quantity the shopper wants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LineRequest {
    #[schema(value_type = String)]
    pub sku: Sku,
    pub quantity: i64,
}

/// Where (part of) the order goes. `lines` empty means "every line" (single shipment only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShipmentRequest {
    pub address: Address,
    pub lines: Vec<LineRequest>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PricedLine {
    #[schema(value_type = String)]
    pub sku: Sku,
    pub name: String,
    pub quantity: i64,
    pub unit_price: Money,
    pub line_total: Money,
    /// Units available across the network when priced.
    pub available: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Totals {
    pub subtotal: Money,
    pub discount: Money,
    pub shipping: Money,
    pub tax: Money,
    pub total: Money,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AppliedPromotion {
    pub code: String,
    /// `percent`, `fixed`, `buy_x_get_y` or `free_shipping`.
    pub kind: String,
    /// What the code took off (goods discount or shipping waived).
    pub amount: Money,
}

/// One adjustment the server made to what the client sent, with the reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    /// The unit price differs from the one the client was last shown.
    PriceChanged {
        #[schema(value_type = String)]
        sku: Sku,
        old_unit_price: Money,
        new_unit_price: Money,
    },
    /// Fewer units are available than requested; the line was reduced.
    QuantityLimited {
        #[schema(value_type = String)]
        sku: Sku,
        requested: i64,
        available: i64,
    },
    /// The line could not be kept at all.
    LineRemoved {
        #[schema(value_type = String)]
        sku: Sku,
        requested: i64,
        /// `unknown_sku`, `out_of_stock` or `currency_mismatch`.
        reason: String,
    },
    /// The shipping option the cart chose cannot be offered now (e.g. same day after the
    /// cut-off); standard shipping is priced instead.
    ShippingOptionUnavailable {
        option: crate::routing::ShippingSpeed,
    },
    /// A promotion code was not applied.
    PromoRejected {
        code: String,
        reason: PromoRejection,
        message: String,
    },
}

impl Change {
    /// Whether this change alters the goods or the money of an order (every kind does today;
    /// kept as a function so informational changes can be added without touching callers).
    pub fn alters_order(&self) -> bool {
        true
    }
}

impl PricedCart {
    /// The shipping option a cart keeps: the one it chose, unless pricing found it no longer
    /// offered (then standard, `None`, and the change says so).
    pub fn kept_shipping_option(
        &self,
        chosen: Option<crate::routing::ShippingSpeed>,
    ) -> Option<crate::routing::ShippingSpeed> {
        chosen.filter(|_| {
            !self
                .changes
                .iter()
                .any(|c| matches!(c, Change::ShippingOptionUnavailable { .. }))
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PricedCart {
    pub currency: Option<Currency>,
    pub lines: Vec<PricedLine>,
    pub totals: Option<Totals>,
    pub promotions: Vec<AppliedPromotion>,
    pub changes: Vec<Change>,
}

pub struct PricingInput<'a> {
    pub lines: &'a [LineRequest],
    pub catalog: &'a HashMap<Sku, CatalogEntry>,
    pub promo_codes: &'a [String],
    pub promotions: &'a HashMap<String, Promotion>,
    /// How often this customer has already redeemed each code.
    pub customer_uses: &'a HashMap<String, i64>,
    pub shipments: &'a [ShipmentRequest],
    /// Unit prices the client was last shown (from the previous cart answer).
    pub quoted: &'a HashMap<Sku, Money>,
    pub now_ms: i64,
    /// The whole order's shipping price when a faster option was chosen (it replaces the flat
    /// standard price per shipment; promotions and tax apply to it alike).
    pub shipping_price: Option<Money>,
}

/// Flat shipping per shipment group: 5.99 in two-decimal currencies, scaled for others.
pub fn standard_shipping(currency: Currency) -> Money {
    let amount = match currency.minor_digits() {
        0 => 800,
        3 => 5990,
        _ => 599,
    };
    Money::new(amount, currency)
}

/// Merges repeated SKUs (keeping first-seen order).
pub fn merge_lines(lines: &[LineRequest]) -> Vec<LineRequest> {
    let mut out: Vec<LineRequest> = Vec::with_capacity(lines.len());
    for l in lines {
        match out.iter_mut().find(|o| o.sku == l.sku) {
            Some(o) => o.quantity = o.quantity.saturating_add(l.quantity),
            None => out.push(l.clone()),
        }
    }
    out
}

pub fn price_cart(input: &PricingInput<'_>) -> PricedCart {
    let mut changes = Vec::new();
    let mut lines: Vec<PricedLine> = Vec::new();
    let mut currency: Option<Currency> = None;

    for req in merge_lines(input.lines) {
        let Some(entry) = input.catalog.get(&req.sku) else {
            changes.push(Change::LineRemoved {
                sku: req.sku.clone(),
                requested: req.quantity,
                reason: "unknown_sku".into(),
            });
            continue;
        };
        let cur = *currency.get_or_insert(entry.price.currency);
        if entry.price.currency != cur {
            changes.push(Change::LineRemoved {
                sku: req.sku.clone(),
                requested: req.quantity,
                reason: "currency_mismatch".into(),
            });
            continue;
        }
        if entry.available <= 0 {
            changes.push(Change::LineRemoved {
                sku: req.sku.clone(),
                requested: req.quantity,
                reason: "out_of_stock".into(),
            });
            continue;
        }
        let quantity = if req.quantity > entry.available {
            changes.push(Change::QuantityLimited {
                sku: req.sku.clone(),
                requested: req.quantity,
                available: entry.available,
            });
            entry.available
        } else {
            req.quantity
        };
        if let Some(old) = input.quoted.get(&req.sku) {
            if *old != entry.price {
                changes.push(Change::PriceChanged {
                    sku: req.sku.clone(),
                    old_unit_price: *old,
                    new_unit_price: entry.price,
                });
            }
        }
        let line_total = entry
            .price
            .checked_mul(quantity)
            .unwrap_or(Money::new(i64::MAX, cur));
        lines.push(PricedLine {
            sku: req.sku.clone(),
            name: entry.name.clone(),
            quantity,
            unit_price: entry.price,
            line_total,
            available: entry.available,
        });
    }

    let Some(cur) = currency else {
        for code in input.promo_codes {
            changes.push(promo_rejected(
                &normalize_code(code),
                PromoRejection::EmptyCart,
            ));
        }
        return PricedCart {
            currency: None,
            lines,
            totals: None,
            promotions: vec![],
            changes,
        };
    };

    let subtotal = Money::new(
        lines
            .iter()
            .map(|l| l.line_total.amount)
            .fold(0i64, i64::saturating_add),
        cur,
    );
    let shipping_full = if input.shipments.is_empty() || lines.is_empty() {
        Money::zero(cur)
    } else if let Some(p) = input.shipping_price.filter(|p| p.currency == cur) {
        p
    } else {
        Money::new(
            standard_shipping(cur).amount * input.shipments.len() as i64,
            cur,
        )
    };

    let (promotions, discount, shipping) =
        apply_promotions(input, &lines, subtotal, shipping_full, &mut changes);
    let tax = compute_tax(&lines, input.shipments, discount, shipping, cur);
    let total = Money::new(
        subtotal.amount - discount.amount + shipping.amount + tax.amount,
        cur,
    );
    PricedCart {
        currency: Some(cur),
        lines,
        totals: Some(Totals {
            subtotal,
            discount,
            shipping,
            tax,
            total,
        }),
        promotions,
        changes,
    }
}

fn promo_rejected(code: &str, reason: PromoRejection) -> Change {
    Change::PromoRejected {
        code: code.to_string(),
        reason,
        message: reason.message().to_string(),
    }
}

fn apply_promotions(
    input: &PricingInput<'_>,
    lines: &[PricedLine],
    subtotal: Money,
    shipping_full: Money,
    changes: &mut Vec<Change>,
) -> (Vec<AppliedPromotion>, Money, Money) {
    let cur = subtotal.currency;
    let mut applied: Vec<AppliedPromotion> = Vec::new();
    let mut discount = Money::zero(cur);
    let mut shipping = shipping_full;
    let mut seen: Vec<String> = Vec::new();
    let mut have_discount = false;
    let mut have_free_shipping = false;
    for raw in input.promo_codes {
        let code = normalize_code(raw);
        if seen.contains(&code) {
            changes.push(promo_rejected(&code, PromoRejection::Duplicate));
            continue;
        }
        seen.push(code.clone());
        let Some(promo) = input.promotions.get(&code) else {
            changes.push(promo_rejected(&code, PromoRejection::UnknownCode));
            continue;
        };
        let uses = input.customer_uses.get(&code).copied().unwrap_or(0);
        if let Err(r) = promo.check(subtotal, input.now_ms, uses) {
            changes.push(promo_rejected(&code, r));
            continue;
        }
        if (promo.is_discount() && have_discount) || (!promo.is_discount() && have_free_shipping) {
            changes.push(promo_rejected(&code, PromoRejection::NotStackable));
            continue;
        }
        let (kind, amount) = match &promo.kind {
            PromotionKind::Percent { bps } => {
                have_discount = true;
                (
                    "percent",
                    Money::new(
                        apply_basis_points(subtotal.amount, *bps).min(subtotal.amount),
                        cur,
                    ),
                )
            }
            PromotionKind::Fixed { amount } => {
                have_discount = true;
                ("fixed", Money::new(amount.amount.min(subtotal.amount), cur))
            }
            PromotionKind::BuyXGetY(rule) => match rule.free_units_amount(
                lines
                    .iter()
                    .map(|l| (&l.sku, l.unit_price.amount, l.quantity)),
            ) {
                Ok(free) => {
                    have_discount = true;
                    (
                        "buy_x_get_y",
                        Money::new(free.min(subtotal.amount).max(0), cur),
                    )
                }
                Err(r) => {
                    changes.push(promo_rejected(&code, r));
                    continue;
                }
            },
            PromotionKind::FreeShipping => {
                have_free_shipping = true;
                let waived = shipping;
                shipping = Money::zero(cur);
                ("free_shipping", waived)
            }
        };
        if kind != "free_shipping" {
            discount = amount;
        }
        applied.push(AppliedPromotion {
            code,
            kind: kind.to_string(),
            amount,
        });
    }
    (applied, discount, shipping)
}

/// Units of each SKU that go to each shipment group (a single group without lines takes all).
pub fn shipment_quantities(
    lines: &[PricedLine],
    shipments: &[ShipmentRequest],
) -> Vec<Vec<(Sku, i64)>> {
    if shipments.len() == 1 && shipments[0].lines.is_empty() {
        return vec![lines.iter().map(|l| (l.sku.clone(), l.quantity)).collect()];
    }
    shipments
        .iter()
        .map(|s| {
            merge_lines(&s.lines)
                .into_iter()
                .map(|l| (l.sku, l.quantity))
                .collect()
        })
        .collect()
}

/// Tax per shipment group on its goods (after its share of the discount) plus its shipping.
fn compute_tax(
    lines: &[PricedLine],
    shipments: &[ShipmentRequest],
    discount: Money,
    shipping: Money,
    cur: Currency,
) -> Money {
    if shipments.is_empty() {
        return Money::zero(cur);
    }
    let price_of: HashMap<&Sku, i64> = lines
        .iter()
        .map(|l| (&l.sku, l.unit_price.amount))
        .collect();
    let goods: Vec<i64> = shipment_quantities(lines, shipments)
        .iter()
        .map(|g| {
            g.iter()
                .map(|(sku, q)| price_of.get(sku).copied().unwrap_or(0).saturating_mul(*q))
                .sum()
        })
        .collect();
    let discounts = allocate_proportionally(discount.amount, &goods);
    let ship_each = allocate_proportionally(shipping.amount, &vec![1; shipments.len()]);
    let tax: i64 = shipments
        .iter()
        .enumerate()
        .map(|(i, s)| {
            apply_basis_points(
                (goods[i] - discounts[i]).max(0) + ship_each[i],
                tax::rate_bps(&s.address),
            )
        })
        .sum();
    Money::new(tax, cur)
}

/// Checks that shipment groups split the lines exactly: for each SKU, the quantities over all
/// groups sum to the line's quantity, and no group names a SKU that is not in the order.
pub fn check_shipment_split(
    lines: &[PricedLine],
    shipments: &[ShipmentRequest],
) -> Vec<crate::FieldError> {
    let mut errs = Vec::new();
    if shipments.is_empty() {
        errs.push(crate::FieldError::new(
            "shipments",
            "required",
            "an order needs at least one shipment address",
        ));
        return errs;
    }
    if shipments.len() == 1 && shipments[0].lines.is_empty() {
        return errs;
    }
    let mut sums: HashMap<&Sku, i64> = HashMap::new();
    for (i, s) in shipments.iter().enumerate() {
        if s.lines.is_empty() {
            errs.push(crate::FieldError::new(
                format!("shipments[{i}].lines"),
                "required",
                "with several shipments, each one lists the lines it carries",
            ));
        }
        for (j, l) in s.lines.iter().enumerate() {
            if !lines.iter().any(|pl| pl.sku == l.sku) {
                errs.push(crate::FieldError::new(
                    format!("shipments[{i}].lines[{j}].sku"),
                    "not_in_order",
                    format!("{} is not one of the order's lines", l.sku),
                ));
            }
            *sums.entry(&l.sku).or_default() += l.quantity;
        }
    }
    for l in lines {
        let got = sums.get(&l.sku).copied().unwrap_or(0);
        if got != l.quantity {
            errs.push(crate::FieldError::new(
                "shipments",
                "split_mismatch",
                format!(
                    "shipments carry {got} of {}, but the order has {}",
                    l.sku, l.quantity
                ),
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FieldErrors;
    use crate::contact::{AddressInput, CountryCode};
    use crate::promotion::BuyXGetY;
    use proptest::prelude::*;

    fn usd(a: i64) -> Money {
        Money::new(a, Currency::parse("USD").unwrap())
    }
    fn sku(s: &str) -> Sku {
        Sku::parse(s).unwrap()
    }
    fn addr(country: &str, region: Option<&str>) -> Address {
        let mut e = FieldErrors::default();
        let a = Address::parse(
            &AddressInput {
                name: Some("A"),
                line1: Some("1 Main"),
                city: Some("X"),
                postal_code: Some("1"),
                country: Some(country),
                region,
                ..Default::default()
            },
            "a",
            &mut e,
        )
        .unwrap();
        assert_eq!(a.country, CountryCode::parse(country).unwrap());
        a
    }
    fn catalog() -> HashMap<Sku, CatalogEntry> {
        let mut c = HashMap::new();
        c.insert(
            sku("A"),
            CatalogEntry {
                name: "A".into(),
                price: usd(1000),
                available: 5,
            },
        );
        c.insert(
            sku("B"),
            CatalogEntry {
                name: "B".into(),
                price: usd(2500),
                available: 0,
            },
        );
        for (s, price) in [
            ("TEE-1", 1900),
            ("TEE-2", 2200),
            ("TEE-3", 2500),
            ("MUG-1", 1400),
        ] {
            c.insert(
                sku(s),
                CatalogEntry {
                    name: s.into(),
                    price: usd(price),
                    available: 10,
                },
            );
        }
        c
    }
    fn promo(code: &str, kind: PromotionKind) -> Promotion {
        Promotion::new(code, kind)
    }

    struct Fixture {
        catalog: HashMap<Sku, CatalogEntry>,
        promotions: HashMap<String, Promotion>,
        uses: HashMap<String, i64>,
        quoted: HashMap<Sku, Money>,
    }
    impl Fixture {
        fn new() -> Self {
            let mut promotions = HashMap::new();
            promotions.insert(
                "TEN".into(),
                promo("TEN", PromotionKind::Percent { bps: 1000 }),
            );
            promotions.insert(
                "FIVE".into(),
                promo("FIVE", PromotionKind::Fixed { amount: usd(500) }),
            );
            promotions.insert("SHIP".into(), promo("SHIP", PromotionKind::FreeShipping));
            let tees = BuyXGetY::new(2, 1, vec!["TEE-".into()]).unwrap();
            promotions.insert("TEES".into(), promo("TEES", PromotionKind::BuyXGetY(tees)));
            let mut big = promo("BIG", PromotionKind::Percent { bps: 5000 });
            big.min_subtotal = Some(usd(100_000));
            promotions.insert("BIG".into(), big);
            let mut old = promo("OLD", PromotionKind::Percent { bps: 5000 });
            old.ends_at_ms = Some(1000);
            promotions.insert("OLD".into(), old);
            let mut used = promo("USED", PromotionKind::Percent { bps: 5000 });
            used.usage_limit = Some(3);
            used.times_used = 3;
            promotions.insert("USED".into(), used);
            Self {
                catalog: catalog(),
                promotions,
                uses: HashMap::new(),
                quoted: HashMap::new(),
            }
        }
        fn price(
            &self,
            lines: &[LineRequest],
            codes: &[&str],
            shipments: &[ShipmentRequest],
        ) -> PricedCart {
            let codes: Vec<String> = codes.iter().map(|s| s.to_string()).collect();
            price_cart(&PricingInput {
                lines,
                catalog: &self.catalog,
                promo_codes: &codes,
                promotions: &self.promotions,
                customer_uses: &self.uses,
                shipments,
                quoted: &self.quoted,
                now_ms: 5000,
                shipping_price: None,
            })
        }
    }
    fn line(s: &str, q: i64) -> LineRequest {
        LineRequest {
            sku: sku(s),
            quantity: q,
        }
    }

    #[test]
    fn limits_to_stock_and_explains_every_change() {
        let f = Fixture::new();
        let p = f.price(&[line("A", 7), line("B", 1), line("ZZZ", 1)], &[], &[]);
        assert_eq!(p.lines.len(), 1);
        assert_eq!(p.lines[0].quantity, 5);
        assert_eq!(p.totals.unwrap().subtotal, usd(5000));
        assert_eq!(
            p.changes,
            vec![
                Change::QuantityLimited {
                    sku: sku("A"),
                    requested: 7,
                    available: 5
                },
                Change::LineRemoved {
                    sku: sku("B"),
                    requested: 1,
                    reason: "out_of_stock".into()
                },
                Change::LineRemoved {
                    sku: sku("ZZZ"),
                    requested: 1,
                    reason: "unknown_sku".into()
                },
            ]
        );
    }

    #[test]
    fn reports_price_moves_against_the_quote() {
        let mut f = Fixture::new();
        f.quoted.insert(sku("A"), usd(900));
        let p = f.price(&[line("A", 1)], &[], &[]);
        assert_eq!(
            p.changes,
            vec![Change::PriceChanged {
                sku: sku("A"),
                old_unit_price: usd(900),
                new_unit_price: usd(1000)
            }]
        );
    }

    #[test]
    fn promotions_stack_one_discount_and_free_shipping() {
        let f = Fixture::new();
        let ship = [ShipmentRequest {
            address: addr("US", None),
            lines: vec![],
        }];
        let p = f.price(&[line("A", 3)], &["ten", "FIVE", "ship", "TEN"], &ship);
        let t = p.totals.unwrap();
        assert_eq!(t.subtotal, usd(3000));
        assert_eq!(t.discount, usd(300));
        assert_eq!(t.shipping, usd(0));
        assert_eq!(t.total, usd(2700));
        let rejected: Vec<(String, PromoRejection)> = p
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::PromoRejected { code, reason, .. } => Some((code.clone(), *reason)),
                _ => None,
            })
            .collect();
        assert_eq!(
            rejected,
            vec![
                ("FIVE".into(), PromoRejection::NotStackable),
                ("TEN".into(), PromoRejection::Duplicate)
            ]
        );
    }

    #[test]
    fn promotion_conditions_are_enforced() {
        let f = Fixture::new();
        for (code, why) in [
            ("BIG", PromoRejection::MinSubtotalNotMet),
            ("OLD", PromoRejection::Expired),
            ("USED", PromoRejection::UsageLimitReached),
            ("NOPE", PromoRejection::UnknownCode),
        ] {
            let p = f.price(&[line("A", 1)], &[code], &[]);
            assert_eq!(p.totals.unwrap().discount, usd(0));
            assert!(
                matches!(&p.changes[0], Change::PromoRejected { reason, .. } if *reason == why),
                "{code}"
            );
        }
    }

    #[test]
    fn tax_and_shipping_per_destination() {
        let f = Fixture::new();
        // 2 units to California (7.25 %), 1 unit to Germany (19 %); 5.99 shipping each.
        let ship = [
            ShipmentRequest {
                address: addr("US", Some("CA")),
                lines: vec![line("A", 2)],
            },
            ShipmentRequest {
                address: addr("DE", None),
                lines: vec![line("A", 1)],
            },
        ];
        let p = f.price(&[line("A", 3)], &[], &ship);
        let t = p.totals.unwrap();
        assert_eq!(t.shipping, usd(1198));
        // CA: (2000 + 599) × 7.25 % = 188.43 → 188; DE: (1000 + 599) × 19 % = 303.81 → 304
        assert_eq!(t.tax, usd(188 + 304));
        assert_eq!(t.total, usd(3000 + 1198 + 492));
        assert!(check_shipment_split(&p.lines, &ship).is_empty());
        let bad = [
            ShipmentRequest {
                address: addr("US", None),
                lines: vec![line("A", 2)],
            },
            ship[1].clone(),
        ];
        let bad = [
            bad[0].clone(),
            ShipmentRequest {
                address: addr("DE", None),
                lines: vec![line("A", 2)],
            },
        ];
        assert_eq!(
            check_shipment_split(&p.lines, &bad)[0].code,
            "split_mismatch"
        );
    }

    fn rejections(p: &PricedCart) -> Vec<(String, PromoRejection)> {
        p.changes
            .iter()
            .filter_map(|c| match c {
                Change::PromoRejected { code, reason, .. } => Some((code.clone(), *reason)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn buy_x_get_y_frees_the_cheapest_eligible_unit_and_stacks_with_free_shipping() {
        let f = Fixture::new();
        let ship = [ShipmentRequest {
            address: addr("US", Some("CA")),
            lines: vec![],
        }];
        let cart = [
            line("TEE-1", 1),
            line("TEE-2", 1),
            line("TEE-3", 1),
            line("MUG-1", 1),
        ];
        let p = f.price(&cart, &["tees", "SHIP"], &ship);
        assert_eq!(rejections(&p), vec![]);
        let t = p.totals.unwrap();
        assert_eq!(t.subtotal, usd(8000));
        assert_eq!(t.discount, usd(1900));
        assert_eq!(t.shipping, usd(0));
        // CA 7.25 % of 6 100 = 442.25 → 442.
        assert_eq!(t.tax, usd(442));
        assert_eq!(t.total, usd(8000 - 1900 + 442));
        let applied: Vec<(&str, &str, Money)> = p
            .promotions
            .iter()
            .map(|a| (a.code.as_str(), a.kind.as_str(), a.amount))
            .collect();
        assert_eq!(
            applied,
            vec![
                ("TEES", "buy_x_get_y", usd(1900)),
                ("SHIP", "free_shipping", usd(599))
            ]
        );
    }

    #[test]
    fn buy_x_get_y_does_not_stack_with_another_discount_code() {
        let f = Fixture::new();
        let cart = [line("TEE-1", 3)];
        let p = f.price(&cart, &["TEES", "TEN"], &[]);
        assert_eq!(p.totals.unwrap().discount, usd(1900));
        assert_eq!(
            rejections(&p),
            vec![("TEN".into(), PromoRejection::NotStackable)]
        );
        let p = f.price(&cart, &["FIVE", "TEES"], &[]);
        assert_eq!(p.totals.unwrap().discount, usd(500));
        assert_eq!(
            rejections(&p),
            vec![("TEES".into(), PromoRejection::NotStackable)]
        );
    }

    #[test]
    fn buy_x_get_y_without_a_complete_group_is_rejected_and_frees_the_discount_slot() {
        let f = Fixture::new();
        // Three units, but only two tees: the code is refused, so TEN may apply.
        let p = f.price(
            &[line("TEE-1", 1), line("TEE-3", 1), line("MUG-1", 1)],
            &["TEES", "TEN"],
            &[],
        );
        assert_eq!(
            rejections(&p),
            vec![("TEES".into(), PromoRejection::NotEnoughEligibleItems)]
        );
        assert!(
            matches!(&p.changes[0], Change::PromoRejected { message, .. } if message == PromoRejection::NotEnoughEligibleItems.message())
        );
        assert_eq!(p.totals.unwrap().discount, usd(580));
        assert_eq!(
            p.promotions
                .iter()
                .map(|a| a.code.as_str())
                .collect::<Vec<_>>(),
            ["TEN"]
        );
    }

    #[test]
    fn buy_x_get_y_never_takes_more_than_the_subtotal() {
        // Prices so large that the subtotal saturates: the free units are worth more than
        // i64::MAX, and the discount stops at the subtotal.
        let mut f = Fixture::new();
        let huge = i64::MAX - 1;
        f.catalog.insert(
            sku("TEE-BIG"),
            CatalogEntry {
                name: "big".into(),
                price: usd(huge),
                available: 10,
            },
        );
        let every_other = BuyXGetY::new(1, 1, vec!["TEE-".into()]).unwrap();
        f.promotions.insert(
            "HALF".into(),
            promo("HALF", PromotionKind::BuyXGetY(every_other)),
        );
        let t = f
            .price(&[line("TEE-BIG", 6)], &["HALF"], &[])
            .totals
            .unwrap();
        assert_eq!(t.subtotal, usd(i64::MAX));
        assert_eq!(t.discount, t.subtotal);
        assert_eq!(t.total, usd(0));
    }

    /// The rule spelled out unit by unit: every eligible unit's price, most expensive first, cut
    /// into groups of buy + get; the last `get` of each complete group are free.
    fn free_units_by_hand(lines: &[PricedLine], buy: i64, get: i64, prefix: &str) -> Option<i64> {
        let mut units: Vec<i64> = lines
            .iter()
            .filter(|l| l.sku.as_str().starts_with(prefix))
            .flat_map(|l| std::iter::repeat_n(l.unit_price.amount, l.quantity as usize))
            .collect();
        units.sort_unstable_by(|a, b| b.cmp(a));
        let group = (buy + get) as usize;
        if units.len() < group {
            return None;
        }
        Some(
            units
                .chunks_exact(group)
                .map(|g| g[buy as usize..].iter().sum::<i64>())
                .sum(),
        )
    }

    proptest! {
        #[test]
        fn buy_x_get_y_discount_is_the_free_units_and_within_the_subtotal(
            buy in 1i64..5,
            get in 1i64..5,
            cart in proptest::collection::vec((0usize..6, 0i64..50_000, 1i64..12), 0..8),
        ) {
            let mut f = Fixture::new();
            let mut lines = Vec::new();
            for (i, (kind, price, quantity)) in cart.iter().enumerate() {
                let s = sku(&format!("{}-{i}", ["TEE", "TEE", "TEE", "MUG", "TEEX", "BAG"][*kind]));
                f.catalog.insert(s.clone(), CatalogEntry { name: s.to_string(), price: usd(*price), available: 100 });
                lines.push(LineRequest { sku: s, quantity: *quantity });
            }
            let rule = BuyXGetY::new(buy, get, vec!["TEE-".into()]).unwrap();
            f.promotions.insert("BXGY".into(), promo("BXGY", PromotionKind::BuyXGetY(rule)));
            let p = f.price(&lines, &["BXGY"], &[]);
            let Some(t) = p.totals else {
                prop_assert!(lines.is_empty());
                return Ok(());
            };
            prop_assert!(t.discount.amount >= 0 && t.discount.amount <= t.subtotal.amount);
            match free_units_by_hand(&p.lines, buy, get, "TEE-") {
                Some(free) => {
                    prop_assert_eq!(t.discount.amount, free);
                    prop_assert!(p.changes.is_empty());
                }
                None => {
                    prop_assert_eq!(t.discount.amount, 0);
                    prop_assert_eq!(rejections(&p), vec![("BXGY".to_string(), PromoRejection::NotEnoughEligibleItems)]);
                }
            }
        }
    }
}
