//! Stock of one SKU at one location. The invariant every write keeps:
//! `0 <= reserved`, `0 <= held`, `reserved + held <= on_hand`, `safety_stock >= 0`. Reserved
//! units belong to orders, held units to carts at checkout (a hold expires); safety stock is held
//! back from online sale: `available = max(0, on_hand - reserved - held - safety_stock)`, so
//! `on_hand = available + reserved + held + safety_held` always.

use crate::ids::{LocationId, Sku};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StockLevel {
    pub sku: Sku,
    pub location_id: LocationId,
    pub on_hand: i64,
    pub reserved: i64,
    /// Units carts hold at checkout (until their order or the hold's expiry).
    pub held: i64,
    /// Units held back from online sale (set by a `safety_stock` adjustment).
    pub safety_stock: i64,
}

impl StockLevel {
    /// Units online orders may reserve.
    pub fn available(&self) -> i64 {
        (self.on_hand - self.reserved - self.held - self.safety_stock).max(0)
    }
    /// Units actually held back: the safety stock, or what is left after reservations and
    /// holds when that is less.
    pub fn safety_held(&self) -> i64 {
        self.safety_stock
            .min(self.on_hand - self.reserved - self.held)
            .max(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(s: &str) -> LocationId {
        LocationId::parse(s).unwrap()
    }

    #[test]
    fn every_unit_is_available_reserved_or_held() {
        for (on_hand, reserved, held, safety) in [
            (10, 0, 0, 0),
            (10, 4, 0, 3),
            (10, 8, 0, 3),
            (10, 10, 0, 5),
            (0, 0, 0, 2),
            (7, 2, 0, 5),
            (10, 3, 4, 2),
            (10, 3, 6, 2),
            (10, 0, 10, 1),
        ] {
            let l = StockLevel {
                sku: Sku::parse("A").unwrap(),
                location_id: loc("a"),
                on_hand,
                reserved,
                held,
                safety_stock: safety,
            };
            assert_eq!(
                l.available() + l.reserved + l.held + l.safety_held(),
                on_hand,
                "{l:?}"
            );
            assert!(l.available() >= 0 && l.safety_held() >= 0 && l.safety_held() <= safety);
        }
    }
}
