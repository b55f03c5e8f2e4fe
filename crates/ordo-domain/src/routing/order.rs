//! Routing an order: from the order and the tenant's network at one instant to the engine's
//! input, and from the engine's decision to the order's allocations. Pure: the caller passes the
//! clock (`now_ms`), the stock and the loads it read under its locks.

use super::{Capabilities, Decision, Destination, GeoPoint, LineDemand, Node, RoutingInput};
use crate::error::{FieldError, FieldErrors};
use crate::ids::Sku;
use crate::network::Capability;
use crate::order::{Allocation, ShipmentGroup};
use crate::product::{Location, Quantity};
use chrono::{Offset, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A node's local clock at one instant: what "today" and "past the cut-off" mean for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalClock {
    /// Minutes east of UTC in effect at that instant (daylight saving included).
    pub utc_offset_minutes: i32,
    /// The local date, `YYYY-MM-DD`: the day whose packages `load_today` counts.
    pub day: String,
    /// UTC milliseconds of the last local midnight.
    pub midnight_ms: i64,
}

/// The local clock of an IANA time zone (UTC when `None` or unknown) at `now_ms`.
pub fn local_clock(timezone: Option<&str>, now_ms: i64) -> LocalClock {
    let tz: chrono_tz::Tz = timezone
        .and_then(|t| t.parse().ok())
        .unwrap_or(chrono_tz::UTC);
    let now = Utc
        .timestamp_millis_opt(now_ms)
        .single()
        .unwrap_or_default();
    let local = now.with_timezone(&tz);
    let utc_offset_minutes = local.offset().fix().local_minus_utc() / 60;
    let date = local.date_naive();
    let midnight_ms = date
        .and_hms_opt(0, 0, 0)
        .and_then(|m| tz.from_local_datetime(&m).earliest())
        .map(|m| m.timestamp_millis())
        .unwrap_or_else(|| {
            now_ms - (now_ms + utc_offset_minutes as i64 * 60_000).rem_euclid(86_400_000)
        });
    LocalClock {
        utc_offset_minutes,
        day: date.to_string(),
        midnight_ms,
    }
}

impl Capabilities {
    /// The flags of a location's capability list.
    pub fn of(list: &[Capability]) -> Capabilities {
        Capabilities {
            hazmat: list.contains(&Capability::Hazmat),
            cold_chain: list.contains(&Capability::ColdChain),
            oversize: list.contains(&Capability::Oversize),
        }
    }
}

impl Location {
    /// The node as routing sees it at `now_ms`: `load_today` packages already routed here on
    /// its local day, `stock` the units available for online sale per SKU. Fails only when the
    /// stored coordinates are out of range (they are checked when the location is written).
    pub fn routing_node(
        &self,
        clock: &LocalClock,
        now_ms: i64,
        load_today: i64,
        stock: BTreeMap<Sku, i64>,
    ) -> Result<Node, FieldError> {
        Ok(Node {
            id: self.id.clone(),
            point: GeoPoint::parse(self.lat, self.lon)?,
            country: self.country.clone(),
            ships_to: self.ships_to.clone(),
            capabilities: Capabilities::of(&self.capabilities),
            daily_capacity: self.daily_capacity,
            load_today: load_today.clamp(0, u32::MAX as i64) as u32,
            cutoff_passed: self
                .cutoff
                .is_some_and(|c| c.has_passed(now_ms.div_euclid(1000), clock.utc_offset_minutes)),
            handling_cost: self.handling_cost,
            cost_per_100km: self.cost_per_100km,
            active: self.active,
            stock,
        })
    }
}

/// An order's (or a cart's) addresses and lines as the engine routes them: one destination per
/// shipment, in order (coordinates when the address has both, else the postal-prefix or country
/// centroid), each shipment line (explicit: every line listed) a demand on that shipment's index
/// with what its product `needs`. Errors carry the paths (`shipments[1].address.country`).
pub fn order_demand(
    shipments: &[ShipmentGroup],
    needs: impl Fn(&Sku) -> Capabilities,
) -> Result<(Vec<Destination>, Vec<LineDemand>), FieldErrors> {
    let mut errs = FieldErrors::default();
    let mut destinations = Vec::with_capacity(shipments.len());
    let mut lines = Vec::new();
    for (i, shipment) in shipments.iter().enumerate() {
        let a = &shipment.address;
        let point = match (a.lat, a.lon) {
            (Some(lat), Some(lon)) => match GeoPoint::parse(lat, lon) {
                Ok(p) => Some(p),
                Err(e) => {
                    errs.push(FieldError {
                        path: format!("shipments[{i}].address.{}", e.path),
                        ..e
                    });
                    continue;
                }
            },
            _ => None,
        };
        match Destination::resolve(&a.country, Some(&a.postal_code), point) {
            Ok(d) => destinations.push(d),
            Err(e) => {
                errs.push(FieldError {
                    path: format!("shipments[{i}].address.{}", e.path),
                    ..e
                });
                continue;
            }
        }
        for (j, l) in shipment.lines.iter().enumerate() {
            match Quantity::parse(l.quantity) {
                Ok(quantity) => lines.push(LineDemand {
                    sku: l.sku.clone(),
                    quantity,
                    address_index: i,
                    needs: needs(&l.sku),
                }),
                Err(e) => errs.push(FieldError {
                    path: format!("shipments[{i}].lines[{j}].quantity"),
                    ..e
                }),
            }
        }
    }
    errs.into_result().map(|()| (destinations, lines))
}

impl Decision {
    /// The units each node ships to each address, per SKU, merged over lines: the order's
    /// allocations, sorted by address, SKU and location.
    pub fn allocations(&self) -> Vec<Allocation> {
        let mut merged: BTreeMap<(usize, Sku, crate::LocationId), i64> = BTreeMap::new();
        for p in &self.packages {
            for l in &p.lines {
                *merged
                    .entry((p.address_index, l.sku.clone(), p.location_id.clone()))
                    .or_default() += l.quantity;
            }
        }
        merged
            .into_iter()
            .map(|((address_index, sku, location_id), quantity)| Allocation {
                sku,
                location_id,
                quantity,
                address_index,
            })
            .collect()
    }
}

/// A routing decision as stored: what was decided for which order, when, and from what input
/// (every automated decision keeps its inputs). The plan itself is kept (packages, cost, reason
/// codes); the candidates — why every other node was not used — are recomputed from the input
/// when read, which the engine's determinism makes exact for the same `engine_version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub decision_id: String,
    pub order_id: String,
    /// Milliseconds since the Unix epoch.
    pub decided_at_ms: i64,
    pub engine_version: String,
    pub rules_version: u32,
    pub packages: Vec<super::Package>,
    pub total_cost: crate::Money,
    pub optimal: bool,
    pub reason_codes: Vec<super::ReasonCode>,
    pub input: RoutingInput,
}

impl DecisionRecord {
    pub fn new(
        decision_id: String,
        order_id: String,
        decided_at_ms: i64,
        decision: Decision,
        input: RoutingInput,
    ) -> Self {
        DecisionRecord {
            decision_id,
            order_id,
            decided_at_ms,
            engine_version: decision.engine_version,
            rules_version: decision.rules_version,
            packages: decision.packages,
            total_cost: decision.total_cost,
            optimal: decision.optimal,
            reason_codes: decision.reason_codes,
            input,
        }
    }

    /// The whole decision: recomputed from the input when this engine made it (and then
    /// identical to the stored plan), else the stored plan without candidates. The flag says
    /// whether the candidates are there.
    pub fn decision(&self) -> (Decision, bool) {
        if self.engine_version == super::ENGINE_VERSION
            && let Ok(d) = super::route(&self.input)
            && d.packages == self.packages
        {
            return (d, true);
        }
        let total_distance_km = self.packages.iter().map(|p| p.distance_km).sum();
        let d = Decision {
            engine_version: self.engine_version.clone(),
            rules_version: self.rules_version,
            packages: self.packages.clone(),
            total_cost: self.total_cost,
            total_distance_km,
            optimal: self.optimal,
            candidates: Vec::new(),
            reason_codes: self.reason_codes.clone(),
            expansions: 0,
        };
        (d, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_clock_follows_the_zone_and_daylight_saving() {
        // 2026-07-01T03:30:00Z: still June 30 in Chicago (CDT, UTC-5), July 1 in UTC.
        let t = 1_782_876_600_000;
        let chicago = local_clock(Some("America/Chicago"), t);
        assert_eq!(
            (chicago.utc_offset_minutes, chicago.day.as_str()),
            (-300, "2026-06-30")
        );
        assert_eq!(chicago.midnight_ms, t - (22 * 60 + 30) * 60_000);
        // 2026-01-15T12:00:00Z: CST, UTC-6.
        let winter = local_clock(Some("America/Chicago"), 1_768_478_400_000);
        assert_eq!(
            (winter.utc_offset_minutes, winter.day.as_str()),
            (-360, "2026-01-15")
        );
        let utc = local_clock(None, t);
        assert_eq!(
            (utc.utc_offset_minutes, utc.day.as_str(), utc.midnight_ms),
            (0, "2026-07-01", t - 3 * 3_600_000 - 30 * 60_000)
        );
        assert_eq!(
            local_clock(Some("Mars/Olympus"), t),
            utc,
            "an unknown zone is UTC"
        );
    }
}

impl super::ReasonCode {
    /// What the code means, in a sentence fragment a person reads in a decision log.
    pub fn describe(self) -> &'static str {
        use super::ReasonCode as R;
        match self {
            R::LowestCost => "the cheapest plan under the cost model",
            R::NearestInStock => {
                "each address ships in one package from the nearest node holding all of its lines"
            }
            R::SplitNoSingleNode => "split: no single node can ship every line to the address",
            R::SplitCheaper => "split: shipping from several nodes costs less than any single node",
            R::CutoffPassed => {
                "today's cut-off has passed: its packages leave tomorrow and pay the cut-off penalty"
            }
            R::InsufficientStock => "does not hold all the stock the lines need",
            R::RuleHazmat => "cannot ship hazardous goods",
            R::RuleColdChain => "has no cold chain",
            R::RuleOversize => "cannot ship oversize goods",
            R::NotShippingToCountry => "does not ship to the address's country",
            R::AtCapacity => "has shipped its daily capacity of packages",
            R::Inactive => "is inactive",
            R::TenantRule => "a routing rule of the tenant excludes it for this country",
            R::HigherCost => "could ship, but every plan using it costs more",
            R::SearchBudgetExhausted => {
                "the search ran out of budget: the best plan found, perhaps not the cheapest"
            }
        }
    }
}

impl Decision {
    /// The decision in plain sentences: the plan and its cost, why it looks as it does, and what
    /// became of every other node.
    pub fn explain(&self) -> Vec<String> {
        let mut out = Vec::new();
        let how = if self.optimal {
            "the cheapest plan under the cost model"
        } else {
            "the best plan found before the search budget ran out"
        };
        out.push(format!(
            "Ships in {} package{} for {} in all: {how}.",
            self.packages.len(),
            if self.packages.len() == 1 { "" } else { "s" },
            self.total_cost
        ));
        for p in &self.packages {
            let lines: Vec<String> = p
                .lines
                .iter()
                .map(|l| format!("{} × {}", l.quantity, l.sku))
                .collect();
            let penalty = if p.contributions.cutoff_penalty.amount > 0 {
                format!(" + cut-off penalty {}", p.contributions.cutoff_penalty)
            } else {
                String::new()
            };
            out.push(format!(
                "From {} to address {} ({:.1} km): {}; costs {} = handling {} + distance {}{penalty}.",
                p.location_id,
                p.address_index,
                p.distance_km,
                lines.join(", "),
                p.cost,
                p.contributions.handling,
                p.contributions.distance
            ));
        }
        for code in &self.reason_codes {
            if !matches!(code, super::ReasonCode::LowestCost) {
                out.push(format!("Why: {}.", code.describe()));
            }
        }
        for c in self.candidates.iter().filter(|c| !c.selected) {
            let reasons: Vec<&str> = c.reasons.iter().map(|r| r.describe()).collect();
            let line = match (c.eligible, c.cost) {
                (true, Some(cost)) => format!(
                    "{} was not chosen ({:.1} km; a package from it to address {} would cost {}): {}.",
                    c.location_id,
                    c.distance_km,
                    c.address_index,
                    cost,
                    if reasons.is_empty() {
                        "the chosen plan costs less".to_string()
                    } else {
                        reasons.join("; ")
                    }
                ),
                _ => format!(
                    "{} was excluded: {}.",
                    c.location_id,
                    if reasons.is_empty() {
                        "cannot ship any line".to_string()
                    } else {
                        reasons.join("; ")
                    }
                ),
            };
            out.push(line);
        }
        out
    }
}
