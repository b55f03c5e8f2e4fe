//! Shipping options priced from the routing plan and the chosen nodes' load.
//!
//! For a plan (the packages routing would ship), each option's price and promised date:
//!
//! ```text
//! ship day      = the node's local today, or tomorrow once its cut-off has passed
//! standard      = the cart's standard shipping price; promised ship day + 5 days
//! express       = Σ packages: express_base × (1 + surge × utilisation); promised ship day + 2 days
//! same_day      = Σ packages: same_day_base × (1 + surge × utilisation); promised today —
//!                 offered only when every package's node is within same_day_max_km of its
//!                 address and before its cut-off
//! utilisation   = load_today / daily_capacity of the package's node (0 when unlimited, at most 1)
//! ```
//!
//! `surge` is in basis points (10 000 = the price doubles at full load); every product is rounded
//! half up to the minor unit once per package. The promised date of an order is the latest over
//! its packages.

use super::{Decision, RoutingInput};
use crate::money::Money;
use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A shipping speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShippingSpeed {
    Standard,
    Express,
    SameDay,
}

impl ShippingSpeed {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "standard" => Some(Self::Standard),
            "express" => Some(Self::Express),
            "same_day" => Some(Self::SameDay),
            _ => None,
        }
    }
}

/// The tenant's rates (minor units of the plan's currency).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShippingRates {
    pub express_base: i64,
    pub same_day_base: i64,
    /// Basis points added per unit of utilisation (10 000: +100 % at full load).
    pub surge_bps: i64,
    pub same_day_max_km: f64,
}

impl ShippingRates {
    /// Express $14.99 and same-day $24.99 a package, doubling at full load; same day within 50 km.
    pub const STANDARD: ShippingRates = ShippingRates {
        express_base: 1499,
        same_day_base: 2499,
        surge_bps: 10_000,
        same_day_max_km: 50.0,
    };
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShippingOption {
    pub id: ShippingSpeed,
    pub price: Money,
    /// `YYYY-MM-DD`, in the shipping node's time zone.
    pub promised_by: String,
}

/// The options for `decision` (made from `input`); `today` is each node's local date
/// (`YYYY-MM-DD`), `standard` the cart's standard shipping price.
pub fn shipping_options(
    decision: &Decision,
    input: &RoutingInput,
    today: &HashMap<String, String>,
    standard: Money,
    rates: &ShippingRates,
) -> Vec<ShippingOption> {
    let mut ship_day: Option<NaiveDate> = None;
    let mut latest_today: Option<NaiveDate> = None;
    let mut express = 0i64;
    let mut same_day = 0i64;
    let mut same_day_possible = !decision.packages.is_empty();
    for p in &decision.packages {
        let Some(node) = input.nodes.iter().find(|n| n.id == p.location_id) else {
            continue;
        };
        let Some(day) = today
            .get(node.id.as_str())
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        else {
            continue;
        };
        let ships = if node.cutoff_passed {
            day.checked_add_days(Days::new(1)).unwrap_or(day)
        } else {
            day
        };
        ship_day = Some(ship_day.map_or(ships, |d| d.max(ships)));
        latest_today = Some(latest_today.map_or(day, |d| d.max(day)));
        let utilisation_bps = match node.daily_capacity {
            Some(cap) if cap > 0 => {
                (i64::from(node.load_today) * 10_000 / i64::from(cap)).min(10_000)
            }
            Some(_) => 10_000,
            None => 0,
        };
        express += surge(rates.express_base, rates.surge_bps, utilisation_bps);
        same_day += surge(rates.same_day_base, rates.surge_bps, utilisation_bps);
        if node.cutoff_passed || p.distance_km > rates.same_day_max_km {
            same_day_possible = false;
        }
    }
    let Some(ship_day) = ship_day else {
        return Vec::new();
    };
    let plus = |d: u64| {
        ship_day
            .checked_add_days(Days::new(d))
            .unwrap_or(ship_day)
            .to_string()
    };
    let currency = standard.currency;
    let mut out = vec![
        ShippingOption {
            id: ShippingSpeed::Standard,
            price: standard,
            promised_by: plus(5),
        },
        ShippingOption {
            id: ShippingSpeed::Express,
            price: Money::new(express, currency),
            promised_by: plus(2),
        },
    ];
    if same_day_possible && let Some(today) = latest_today {
        out.push(ShippingOption {
            id: ShippingSpeed::SameDay,
            price: Money::new(same_day, currency),
            promised_by: today.to_string(),
        });
    }
    out
}

/// `base × (1 + surge_bps × utilisation_bps / 10⁸)`, rounded half up.
fn surge(base: i64, surge_bps: i64, utilisation_bps: i64) -> i64 {
    let extra =
        (base as i128 * surge_bps as i128 * utilisation_bps as i128 + 50_000_000) / 100_000_000;
    base + extra as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::{
        Capabilities, Destination, GeoPoint, LineDemand, Node, SearchBudget, TenantRules, route,
    };
    use crate::{CountryCode, Currency, LocationId, Sku};
    use std::collections::BTreeMap;

    fn usd(a: i64) -> Money {
        Money::new(a, Currency::parse("USD").unwrap())
    }

    fn input(
        load: u32,
        capacity: Option<u32>,
        cutoff_passed: bool,
        node_at: (f64, f64),
    ) -> RoutingInput {
        let node = Node {
            id: LocationId::parse("n1").unwrap(),
            point: GeoPoint::parse(node_at.0, node_at.1).unwrap(),
            country: None,
            ships_to: vec![],
            capabilities: Capabilities::default(),
            daily_capacity: capacity,
            load_today: load,
            cutoff_passed,
            handling_cost: usd(300),
            cost_per_100km: usd(40),
            active: true,
            stock: BTreeMap::from([(Sku::parse("A").unwrap(), 10)]),
        };
        let us = CountryCode::parse("US").unwrap();
        RoutingInput {
            currency: Currency::parse("USD").unwrap(),
            nodes: vec![node],
            destinations: vec![
                Destination::resolve(&us, None, Some(GeoPoint::parse(37.77, -122.42).unwrap()))
                    .unwrap(),
            ],
            lines: vec![LineDemand {
                sku: Sku::parse("A").unwrap(),
                quantity: crate::Quantity::parse(1).unwrap(),
                address_index: 0,
                needs: Capabilities::default(),
            }],
            rules: TenantRules {
                version: 1,
                cutoff_penalty: usd(500),
                rules: vec![],
            },
            budget: SearchBudget::STANDARD,
        }
    }

    fn options(inp: &RoutingInput) -> Vec<ShippingOption> {
        let d = route(inp).unwrap();
        let today = HashMap::from([("n1".to_string(), "2026-11-26".to_string())]);
        shipping_options(&d, inp, &today, usd(599), &ShippingRates::STANDARD)
    }

    #[test]
    fn express_rises_with_the_nodes_load_and_same_day_needs_a_near_node_before_cut_off() {
        // A node 10 km away, half loaded, before its cut-off.
        let near = options(&input(50, Some(100), false, (37.70, -122.35)));
        let by: HashMap<ShippingSpeed, &ShippingOption> = near.iter().map(|o| (o.id, o)).collect();
        assert_eq!(by[&ShippingSpeed::Standard].price, usd(599));
        assert_eq!(by[&ShippingSpeed::Standard].promised_by, "2026-12-01");
        assert_eq!(
            by[&ShippingSpeed::Express].price,
            usd(1499 + 750),
            "1499 × 1.5, half up"
        );
        assert_eq!(by[&ShippingSpeed::Express].promised_by, "2026-11-28");
        assert_eq!(by[&ShippingSpeed::SameDay].price, usd(2499 + 1250));
        assert_eq!(by[&ShippingSpeed::SameDay].promised_by, "2026-11-26");
        // Empty, unlimited: base prices.
        let idle = options(&input(0, None, false, (37.70, -122.35)));
        assert_eq!(idle[1].price, usd(1499));
        // Nearly full: nearly doubled.
        let full = options(&input(99, Some(100), false, (37.70, -122.35)));
        assert_eq!(full[1].price, usd(1499 + 1484), "1499 × 1.99, half up");
        // Past the cut-off: ships tomorrow, no same day.
        let late = options(&input(0, None, true, (37.70, -122.35)));
        assert_eq!(
            late.iter().map(|o| o.id).collect::<Vec<_>>(),
            vec![ShippingSpeed::Standard, ShippingSpeed::Express]
        );
        assert_eq!(late[1].promised_by, "2026-11-29");
        // Far away: no same day.
        let far = options(&input(0, None, false, (40.0, -74.0)));
        assert_eq!(far.len(), 2);
    }
}
