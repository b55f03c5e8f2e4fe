//! What happens to an order after its placement, as pure rules: the fulfilment state machine
//! (one exhaustive table), how an order's status follows from its fulfilments, who may cancel
//! when, and how money moves — each unit's share of the order total, and how a capture, void or
//! refund is split over the tenders.
//!
//! **The order's status rule** (`order_status`): fulfilments that are cancelled do not count.
//! None left: `cancelled`. Otherwise, once units came back: `returned` when every shipped unit
//! did and nothing is left to ship, else `partially_returned`. Then: all delivered →
//! `delivered`; all shipped or delivered → `shipped`; some shipped or delivered →
//! `partially_shipped`; all packed → `packed`; some picked or packed → `picking`; else
//! `allocated`. Placement itself runs `placed` → `confirmed` (every tender authorized) →
//! `allocated` (stock reserved, fulfilments made) in one commit.
//!
//! **The money rule.** The order total (goods after discount, plus shipping and tax) is shared
//! over the lines in proportion to their line totals (largest remainder, so the shares add up to
//! the total exactly; by quantity if every line is free). Within a line, units are valued in the
//! order their fate is decided (shipped or cancelled): the first `k` units decided are worth
//! `floor(share × k / quantity)`, so the whole line is worth exactly its share once every unit
//! is decided. Shipping a chunk captures its value; cancelling one voids it; returned units are
//! valued the same way from the line's first unit. Captures take tenders in order (tender 0
//! first), each up to what it has left authorized; refunds go back in the same order, each up to
//! what it had captured less what it refunded.

use crate::order::OrderStatus;
use serde::{Deserialize, Serialize};

/// Where one fulfilment (the units one node ships to one address) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FulfillmentStatus {
    Allocated,
    Picked,
    Packed,
    Shipped,
    Delivered,
    Cancelled,
}

impl FulfillmentStatus {
    pub const ALL: [FulfillmentStatus; 6] = [
        Self::Allocated,
        Self::Picked,
        Self::Packed,
        Self::Shipped,
        Self::Delivered,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allocated => "allocated",
            Self::Picked => "picked",
            Self::Packed => "packed",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// Its units have left the node.
    pub fn is_shipped(self) -> bool {
        matches!(self, Self::Shipped | Self::Delivered)
    }
}

/// The fulfilments an order's allocations make: one per node and address, in the order the
/// allocations first name them, each with a new id (`ful_…`).
pub fn fulfillments_for(
    allocations: &[crate::order::Allocation],
) -> Vec<crate::order::Fulfillment> {
    use crate::order::{Fulfillment, FulfillmentLine};
    let mut out: Vec<Fulfillment> = Vec::new();
    for a in allocations.iter().filter(|a| a.quantity > 0) {
        let at = match out
            .iter_mut()
            .position(|f| f.location_id == a.location_id && f.address_index == a.address_index)
        {
            Some(i) => &mut out[i],
            None => {
                out.push(Fulfillment {
                    id: format!("ful_{}", uuid::Uuid::now_v7().simple()),
                    location_id: a.location_id.clone(),
                    address_index: a.address_index,
                    status: FulfillmentStatus::Allocated,
                    lines: vec![],
                    carrier: None,
                    tracking_number: None,
                });
                out.last_mut().expect("just pushed")
            }
        };
        match at.lines.iter_mut().find(|l| l.sku == a.sku) {
            Some(l) => l.quantity += a.quantity,
            None => at.lines.push(FulfillmentLine {
                sku: a.sku.clone(),
                quantity: a.quantity,
            }),
        }
    }
    out
}

/// What staff (or a carrier) do to a fulfilment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FulfillmentCommand {
    Pick,
    Pack,
    Ship,
    Deliver,
    Cancel,
}

impl FulfillmentCommand {
    pub const ALL: [FulfillmentCommand; 5] = [
        Self::Pick,
        Self::Pack,
        Self::Ship,
        Self::Deliver,
        Self::Cancel,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pick => "pick",
            Self::Pack => "pack",
            Self::Ship => "ship",
            Self::Deliver => "deliver",
            Self::Cancel => "cancel",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a fulfilment that is {} cannot be told to {}", from.as_str(), command.as_str())]
pub struct IllegalMove {
    pub from: FulfillmentStatus,
    pub command: FulfillmentCommand,
}

/// The fulfilment lifecycle as one table: every status lists every command, legal ones with
/// their target. No wildcard: a new status or command does not compile until its row is written.
pub fn step(
    from: FulfillmentStatus,
    command: FulfillmentCommand,
) -> Result<FulfillmentStatus, IllegalMove> {
    use FulfillmentCommand as C;
    use FulfillmentStatus as S;
    let refused = Err(IllegalMove { from, command });
    let to = match from {
        S::Allocated => match command {
            C::Pick => S::Picked,
            C::Cancel => S::Cancelled,
            C::Pack | C::Ship | C::Deliver => return refused,
        },
        S::Picked => match command {
            C::Pack => S::Packed,
            C::Cancel => S::Cancelled,
            C::Pick | C::Ship | C::Deliver => return refused,
        },
        S::Packed => match command {
            C::Ship => S::Shipped,
            C::Cancel => S::Cancelled,
            C::Pick | C::Pack | C::Deliver => return refused,
        },
        S::Shipped => match command {
            C::Deliver => S::Delivered,
            C::Pick | C::Pack | C::Ship | C::Cancel => return refused,
        },
        S::Delivered | S::Cancelled => match command {
            C::Pick | C::Pack | C::Ship | C::Deliver | C::Cancel => return refused,
        },
    };
    Ok(to)
}

/// The order's status from its fulfilments and its units (see the module's rule).
pub fn order_status(
    fulfillments: &[FulfillmentStatus],
    shipped_units: i64,
    returned_units: i64,
) -> OrderStatus {
    use FulfillmentStatus as F;
    let live: Vec<F> = fulfillments
        .iter()
        .copied()
        .filter(|f| *f != F::Cancelled)
        .collect();
    if live.is_empty() {
        return OrderStatus::Cancelled;
    }
    let all = |p: fn(F) -> bool| live.iter().all(|f| p(*f));
    let any = |p: fn(F) -> bool| live.iter().any(|f| p(*f));
    if returned_units > 0 {
        return if returned_units >= shipped_units && all(F::is_shipped) {
            OrderStatus::Returned
        } else {
            OrderStatus::PartiallyReturned
        };
    }
    if all(|f| f == F::Delivered) {
        OrderStatus::Delivered
    } else if all(F::is_shipped) {
        OrderStatus::Shipped
    } else if any(F::is_shipped) {
        OrderStatus::PartiallyShipped
    } else if all(|f| f == F::Packed) {
        OrderStatus::Packed
    } else if any(|f| matches!(f, F::Picked | F::Packed)) {
        OrderStatus::Picking
    } else {
        OrderStatus::Allocated
    }
}

/// Who asks for a cancellation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canceller {
    /// The order's shopper or guest: only while nothing is picked, and the whole order.
    Customer,
    /// Staff: any unit not yet shipped, with a reason.
    Staff,
}

/// Why a cancellation is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CancelRefusal {
    #[error("the order is {}: nothing is left to cancel", .0.as_str())]
    Finished(OrderStatus),
    #[error("the order is {}: once picking began only staff can cancel", .0.as_str())]
    PickingBegan(OrderStatus),
    #[error("a shopper cancels the whole order, not single lines")]
    CustomerLines,
}

/// Whether `who` may cancel at the order's `status` (`lines`: a partial cancellation).
pub fn may_cancel(status: OrderStatus, who: Canceller, partial: bool) -> Result<(), CancelRefusal> {
    use OrderStatus as S;
    let open = match status {
        S::Placed | S::Confirmed | S::Allocated => true,
        // Units may still be open after some came back (e.g. an exchange's new units).
        S::Picking | S::Packed | S::PartiallyShipped | S::PartiallyReturned => false,
        S::Shipped | S::Delivered | S::Cancelled | S::Returned => {
            return Err(CancelRefusal::Finished(status));
        }
    };
    match who {
        Canceller::Staff => Ok(()),
        Canceller::Customer if partial => Err(CancelRefusal::CustomerLines),
        Canceller::Customer if open => Ok(()),
        Canceller::Customer => Err(CancelRefusal::PickingBegan(status)),
    }
}

/// Each line's share of `total` (minor units), in proportion to `weights` (line totals), by
/// largest remainder: the shares add up to `total` exactly. All weights zero: by `quantities`.
pub fn line_shares(weights: &[i64], quantities: &[i64], total: i64) -> Vec<i64> {
    let w: Vec<i128> = if weights.iter().any(|w| *w > 0) {
        weights.iter().map(|w| (*w).max(0) as i128).collect()
    } else {
        quantities.iter().map(|q| (*q).max(0) as i128).collect()
    };
    let sum: i128 = w.iter().sum();
    if sum == 0 {
        let mut out = vec![0; weights.len()];
        if let Some(first) = out.first_mut() {
            *first = total;
        }
        return out;
    }
    let total = total as i128;
    let mut shares: Vec<i128> = w.iter().map(|w| total * w / sum).collect();
    let mut order: Vec<usize> = (0..w.len()).collect();
    // Largest remainder first; ties to the earlier line.
    order.sort_by_key(|i| (std::cmp::Reverse(total * w[*i] % sum), *i));
    let left = total - shares.iter().sum::<i128>();
    for i in order.into_iter().take(left as usize) {
        shares[i] += 1;
    }
    shares.into_iter().map(|s| s as i64).collect()
}

/// The value of `n` units of a line worth `share` for `quantity` units, when `decided` of its
/// units were valued before: `floor(share·(decided+n)/q) − floor(share·decided/q)`.
pub fn chunk_value(share: i64, quantity: i64, decided: i64, n: i64) -> i64 {
    if quantity <= 0 {
        return 0;
    }
    let f = |k: i64| ((share as i128) * (k.clamp(0, quantity) as i128) / quantity as i128) as i64;
    f(decided + n) - f(decided)
}

/// One tender's money as the order keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TenderMoney {
    pub authorized: i64,
    pub captured: i64,
    pub refunded: i64,
    pub voided: i64,
}

impl TenderMoney {
    /// What can still be captured.
    pub fn open(&self) -> i64 {
        (self.authorized - self.captured - self.voided).max(0)
    }

    /// The tender's status from its money.
    pub fn status(&self) -> crate::payment::TenderStatus {
        use crate::payment::TenderStatus as T;
        if self.refunded > 0 {
            if self.refunded >= self.captured {
                T::Refunded
            } else {
                T::PartiallyRefunded
            }
        } else if self.captured > 0 {
            if self.open() == 0 {
                T::Captured
            } else {
                T::PartiallyCaptured
            }
        } else if self.voided > 0 && self.open() == 0 {
            T::Voided
        } else {
            T::Authorized
        }
    }
}

/// How `amount` is taken from the tenders' open authorizations: in tender order, each up to what
/// it has open. `None` when they do not hold that much.
pub fn split_capture(tenders: &[TenderMoney], amount: i64) -> Option<Vec<i64>> {
    split(tenders.iter().map(TenderMoney::open), amount)
}

/// How `amount` goes back to the tenders: in tender order, each up to what it captured and has
/// not refunded. `None` when they did not capture that much.
pub fn split_refund(tenders: &[TenderMoney], amount: i64) -> Option<Vec<i64>> {
    split(tenders.iter().map(|t| t.captured - t.refunded), amount)
}

fn split(room: impl Iterator<Item = i64>, amount: i64) -> Option<Vec<i64>> {
    let mut left = amount;
    let out: Vec<i64> = room
        .map(|r| {
            let take = left.min(r.max(0)).max(0);
            left -= take;
            take
        })
        .collect();
    (left == 0).then_some(out)
}

/// What a carrier reports about a shipped fulfilment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TrackingStatus {
    InTransit,
    OutForDelivery,
    Delivered,
    Exception,
}

impl TrackingStatus {
    pub const ALL: [TrackingStatus; 4] = [
        Self::InTransit,
        Self::OutForDelivery,
        Self::Delivered,
        Self::Exception,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InTransit => "in_transit",
            Self::OutForDelivery => "out_for_delivery",
            Self::Delivered => "delivered",
            Self::Exception => "exception",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// The ETA speed model (until a learned one replaces it), documented here and in the README:
/// the road distance left is 1.3 × the great-circle distance from the latest position (or the
/// shipping node, before any position) to the address. In transit, a truck covers 65 km an hour
/// for at most 10 hours a day (each night between driving days adds 14 hours) and the last-mile sort adds
/// 4 hours; out for delivery, a van covers 25 km an hour. Delivered: the delivery time. An
/// exception: no ETA until the next event.
pub const ETA_MODEL_VERSION: &str = "speed-v1";

/// Milliseconds from `at_ms` until arrival under the speed model (`None` for an exception).
pub fn eta_ms(status: TrackingStatus, remaining_m: i64, at_ms: i64) -> Option<i64> {
    const HOUR: f64 = 3_600_000.0;
    let road_km = remaining_m.max(0) as f64 * 1.3 / 1000.0;
    let wait = match status {
        TrackingStatus::Delivered => return Some(at_ms),
        TrackingStatus::Exception => return None,
        TrackingStatus::OutForDelivery => road_km / 25.0 * HOUR,
        TrackingStatus::InTransit => {
            let driving_h = road_km / 65.0;
            // Days of at most 10 driving hours; each day that runs out waits 14 hours.
            let nights = ((driving_h / 10.0).ceil() - 1.0).max(0.0);
            (driving_h + nights * 14.0 + 4.0) * HOUR
        }
    };
    Some(at_ms + wait.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use FulfillmentCommand as C;
    use FulfillmentStatus as F;
    use proptest::prelude::*;

    #[test]
    fn the_fulfilment_table() {
        let mut s = F::Allocated;
        for c in [C::Pick, C::Pack, C::Ship, C::Deliver] {
            s = step(s, c).unwrap();
        }
        assert_eq!(s, F::Delivered);
        assert_eq!(
            step(F::Shipped, C::Cancel),
            Err(IllegalMove {
                from: F::Shipped,
                command: C::Cancel
            })
        );
        assert!(step(F::Allocated, C::Ship).is_err());
        let legal: usize = F::ALL
            .iter()
            .map(|s| C::ALL.iter().filter(|c| step(*s, **c).is_ok()).count())
            .sum();
        assert_eq!(legal, 7, "the table's legal moves");
        for c in C::ALL {
            assert!(step(F::Delivered, c).is_err());
            assert!(step(F::Cancelled, c).is_err());
        }
    }

    #[test]
    fn the_order_status_follows_its_fulfilments() {
        use OrderStatus as O;
        assert_eq!(
            order_status(&[F::Allocated, F::Allocated], 0, 0),
            O::Allocated
        );
        assert_eq!(order_status(&[F::Picked, F::Allocated], 0, 0), O::Picking);
        assert_eq!(order_status(&[F::Packed, F::Packed], 0, 0), O::Packed);
        assert_eq!(
            order_status(&[F::Shipped, F::Packed], 2, 0),
            O::PartiallyShipped
        );
        assert_eq!(order_status(&[F::Shipped, F::Cancelled], 2, 0), O::Shipped);
        assert_eq!(order_status(&[F::Delivered, F::Shipped], 4, 0), O::Shipped);
        assert_eq!(order_status(&[F::Delivered], 4, 0), O::Delivered);
        assert_eq!(order_status(&[F::Cancelled], 0, 0), O::Cancelled);
        assert_eq!(order_status(&[], 0, 0), O::Cancelled);
        assert_eq!(order_status(&[F::Delivered], 4, 1), O::PartiallyReturned);
        assert_eq!(order_status(&[F::Delivered], 4, 4), O::Returned);
    }

    #[test]
    fn who_may_cancel_when() {
        use OrderStatus as O;
        assert!(may_cancel(O::Allocated, Canceller::Customer, false).is_ok());
        assert_eq!(
            may_cancel(O::Picking, Canceller::Customer, false),
            Err(CancelRefusal::PickingBegan(O::Picking))
        );
        assert!(may_cancel(O::Picking, Canceller::Staff, false).is_ok());
        assert!(may_cancel(O::PartiallyShipped, Canceller::Staff, true).is_ok());
        assert_eq!(
            may_cancel(O::Allocated, Canceller::Customer, true),
            Err(CancelRefusal::CustomerLines)
        );
        assert_eq!(
            may_cancel(O::Shipped, Canceller::Staff, false),
            Err(CancelRefusal::Finished(O::Shipped))
        );
        assert!(may_cancel(O::PartiallyReturned, Canceller::Staff, false).is_ok());
    }

    #[test]
    fn shares_and_chunks_add_up() {
        assert_eq!(line_shares(&[1000, 2000], &[1, 2], 3300), vec![1100, 2200]);
        assert_eq!(line_shares(&[1, 1, 1], &[1, 1, 1], 100), vec![34, 33, 33]);
        assert_eq!(line_shares(&[0, 0], &[1, 3], 400), vec![100, 300]);
        assert_eq!(chunk_value(10, 3, 0, 1), 3);
        assert_eq!(chunk_value(10, 3, 1, 2), 7);
        assert_eq!(chunk_value(10, 3, 3, 1), 0, "no units beyond the line");
    }

    #[test]
    fn tenders_split_in_order() {
        let t = [
            TenderMoney {
                authorized: 500,
                ..Default::default()
            },
            TenderMoney {
                authorized: 300,
                ..Default::default()
            },
        ];
        assert_eq!(split_capture(&t, 600), Some(vec![500, 100]));
        assert_eq!(split_capture(&t, 900), None);
        let captured = [
            TenderMoney {
                authorized: 500,
                captured: 500,
                ..Default::default()
            },
            TenderMoney {
                authorized: 300,
                captured: 100,
                ..Default::default()
            },
        ];
        assert_eq!(split_refund(&captured, 550), Some(vec![500, 50]));
        assert_eq!(split_refund(&captured, 700), None);
        assert_eq!(
            captured[1].status(),
            crate::payment::TenderStatus::PartiallyCaptured
        );
    }

    #[test]
    fn the_speed_model() {
        // 100 km in transit: 130 road km at 65 km/h = 2 h, plus the 4 h sort.
        assert_eq!(
            eta_ms(TrackingStatus::InTransit, 100_000, 0),
            Some(6 * 3_600_000)
        );
        // 1000 km: 20 h of driving = two 10 h days, one 14 h night between them, plus 4 h.
        assert_eq!(
            eta_ms(TrackingStatus::InTransit, 1_000_000, 0),
            Some(38 * 3_600_000)
        );
        // Out for delivery, 10 km: 13 road km at 25 km/h.
        assert_eq!(
            eta_ms(TrackingStatus::OutForDelivery, 10_000, 1000),
            Some(1000 + 1_872_000)
        );
        assert_eq!(eta_ms(TrackingStatus::Delivered, 5_000, 42), Some(42));
        assert_eq!(eta_ms(TrackingStatus::Exception, 5_000, 42), None);
        for s in TrackingStatus::ALL {
            assert_eq!(TrackingStatus::parse(s.as_str()), Some(s));
        }
    }

    proptest! {
        /// Shares add up to the total; the chunks of any sequence of decisions add up to the share.
        #[test]
        fn money_is_conserved(
            weights in proptest::collection::vec(0i64..100_000, 1..6),
            total in 0i64..10_000_000,
            chunks in proptest::collection::vec(1i64..5, 0..12),
        ) {
            let quantities: Vec<i64> = weights.iter().map(|w| 1 + w % 7).collect();
            let shares = line_shares(&weights, &quantities, total);
            prop_assert_eq!(shares.iter().sum::<i64>(), total);
            prop_assert!(shares.iter().all(|s| *s >= 0));
            let (share, q) = (shares[0], quantities[0]);
            let mut decided = 0;
            let mut valued = 0;
            for n in chunks {
                let n = n.min(q - decided);
                valued += chunk_value(share, q, decided, n);
                decided += n;
            }
            valued += chunk_value(share, q, decided, q - decided);
            prop_assert_eq!(valued, share);
        }

        /// Random commands never leave the table, and a fulfilment never moves back.
        #[test]
        fn commands_only_move_forward(cmds in proptest::collection::vec(0usize..5, 0..20)) {
            let rank = |s: F| F::ALL.iter().position(|x| *x == s).unwrap();
            let mut s = F::Allocated;
            for c in cmds {
                if let Ok(next) = step(s, C::ALL[c]) {
                    prop_assert!(rank(next) > rank(s));
                    s = next;
                }
            }
        }
    }
}
