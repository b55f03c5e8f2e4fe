//! Stock of one SKU at one location. The invariant every write keeps:
//! `0 <= reserved <= on_hand`, so `available = on_hand - reserved` is never negative.

use crate::ids::{LocationId, Sku};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StockLevel {
    pub sku: Sku,
    pub location_id: LocationId,
    pub on_hand: i64,
    pub reserved: i64,
}

impl StockLevel {
    pub fn available(&self) -> i64 {
        (self.on_hand - self.reserved).max(0)
    }
}

/// Splits `needed` units over locations (largest availability first, then by id) without taking
/// more than any location has. Returns `None` if the network cannot cover the quantity.
pub fn plan_reservation(
    levels: &[(LocationId, i64)],
    needed: i64,
) -> Option<Vec<(LocationId, i64)>> {
    let mut sorted: Vec<&(LocationId, i64)> = levels.iter().filter(|(_, a)| *a > 0).collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut left = needed;
    let mut plan = Vec::new();
    for (loc, avail) in sorted {
        if left == 0 {
            break;
        }
        let take = left.min(*avail);
        plan.push((loc.clone(), take));
        left -= take;
    }
    if left == 0 { Some(plan) } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(s: &str) -> LocationId {
        LocationId::parse(s).unwrap()
    }

    #[test]
    fn reservation_prefers_the_fullest_location_and_splits_when_needed() {
        let levels = vec![(loc("a"), 3), (loc("b"), 5), (loc("c"), 0)];
        assert_eq!(plan_reservation(&levels, 4).unwrap(), vec![(loc("b"), 4)]);
        assert_eq!(
            plan_reservation(&levels, 7).unwrap(),
            vec![(loc("b"), 5), (loc("a"), 2)]
        );
        assert!(plan_reservation(&levels, 9).is_none());
    }
}
