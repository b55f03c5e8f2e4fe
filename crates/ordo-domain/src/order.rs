//! The order: what was bought, by whom, shipped where, paid how; and its state machine as one
//! table (`transition`). An order is immutable history except for its status and tenders.

use crate::contact::Customer;
use crate::ids::{LocationId, OrderId, OrderNumber, Sku};
use crate::money::Money;
use crate::payment::Tender;
use crate::pricing::{AppliedPromotion, ShipmentRequest, Totals};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Placed,
    Confirmed,
    Allocated,
    Picking,
    Packed,
    PartiallyShipped,
    Shipped,
    Delivered,
    Cancelled,
    Returned,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Placed => "placed",
            Self::Confirmed => "confirmed",
            Self::Allocated => "allocated",
            Self::Picking => "picking",
            Self::Packed => "packed",
            Self::PartiallyShipped => "partially_shipped",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
            Self::Returned => "returned",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderEvent {
    Confirm,
    Allocate,
    StartPicking,
    Pack,
    ShipPart,
    ShipAll,
    Deliver,
    Cancel,
    Return,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an order that is {from:?} cannot take {event:?}")]
pub struct IllegalTransition {
    pub from: OrderStatus,
    pub event: OrderEvent,
}

/// The lifecycle as one table: for every status, every event is listed — legal moves with
/// their target, the rest refused. No wildcard arm: adding a status or an event does not compile
/// until its row is written here.
pub fn transition(from: OrderStatus, event: OrderEvent) -> Result<OrderStatus, IllegalTransition> {
    use OrderEvent as E;
    use OrderStatus as S;
    let refused = Err(IllegalTransition { from, event });
    let to = match from {
        S::Placed => match event {
            E::Confirm => S::Confirmed,
            E::Cancel => S::Cancelled,
            E::Allocate
            | E::StartPicking
            | E::Pack
            | E::ShipPart
            | E::ShipAll
            | E::Deliver
            | E::Return => return refused,
        },
        S::Confirmed => match event {
            E::Allocate => S::Allocated,
            E::Cancel => S::Cancelled,
            E::Confirm
            | E::StartPicking
            | E::Pack
            | E::ShipPart
            | E::ShipAll
            | E::Deliver
            | E::Return => return refused,
        },
        S::Allocated => match event {
            E::StartPicking => S::Picking,
            E::ShipPart => S::PartiallyShipped,
            E::Cancel => S::Cancelled,
            E::Confirm | E::Allocate | E::Pack | E::ShipAll | E::Deliver | E::Return => {
                return refused;
            }
        },
        S::Picking => match event {
            E::Pack => S::Packed,
            E::Cancel => S::Cancelled,
            E::Confirm
            | E::Allocate
            | E::StartPicking
            | E::ShipPart
            | E::ShipAll
            | E::Deliver
            | E::Return => return refused,
        },
        S::Packed => match event {
            E::ShipPart => S::PartiallyShipped,
            E::ShipAll => S::Shipped,
            E::Cancel => S::Cancelled,
            E::Confirm | E::Allocate | E::StartPicking | E::Pack | E::Deliver | E::Return => {
                return refused;
            }
        },
        S::PartiallyShipped => match event {
            E::ShipPart => S::PartiallyShipped,
            E::ShipAll => S::Shipped,
            E::Return => S::Returned,
            E::Confirm | E::Allocate | E::StartPicking | E::Pack | E::Deliver | E::Cancel => {
                return refused;
            }
        },
        S::Shipped => match event {
            E::Deliver => S::Delivered,
            E::Return => S::Returned,
            E::Confirm
            | E::Allocate
            | E::StartPicking
            | E::Pack
            | E::ShipPart
            | E::ShipAll
            | E::Cancel => return refused,
        },
        S::Delivered => match event {
            E::Return => S::Returned,
            E::Confirm
            | E::Allocate
            | E::StartPicking
            | E::Pack
            | E::ShipPart
            | E::ShipAll
            | E::Deliver
            | E::Cancel => return refused,
        },
        S::Cancelled | S::Returned => match event {
            E::Confirm
            | E::Allocate
            | E::StartPicking
            | E::Pack
            | E::ShipPart
            | E::ShipAll
            | E::Deliver
            | E::Cancel
            | E::Return => {
                return refused;
            }
        },
    };
    Ok(to)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderLine {
    pub line_no: i64,
    #[schema(value_type = String)]
    pub sku: Sku,
    pub name: String,
    pub quantity: i64,
    pub unit_price: Money,
    pub line_total: Money,
}

/// Units of one line reserved at one location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Allocation {
    #[schema(value_type = String)]
    pub sku: Sku,
    #[schema(value_type = String)]
    pub location_id: LocationId,
    pub quantity: i64,
    /// The shipment (index into `shipments`) these units go to.
    #[serde(default)]
    pub address_index: usize,
}

pub type ShipmentGroup = ShipmentRequest;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Order {
    #[schema(value_type = String, example = "ord_0193...")]
    pub id: OrderId,
    #[schema(value_type = String, example = "ORD-7K3M-9Q2X")]
    pub number: OrderNumber,
    pub status: OrderStatus,
    pub channel: String,
    pub customer: Customer,
    pub lines: Vec<OrderLine>,
    pub shipments: Vec<ShipmentGroup>,
    pub payments: Vec<Tender>,
    pub promotions: Vec<AppliedPromotion>,
    pub totals: Totals,
    pub allocations: Vec<Allocation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cart_id: Option<String>,
    /// The shipping speed the shopper chose (absent: standard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_option: Option<crate::routing::ShippingSpeed>,
    /// RFC 3339 timestamp, UTC.
    pub created_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_happy_path_and_illegal_moves() {
        let mut s = OrderStatus::Placed;
        for e in [
            OrderEvent::Confirm,
            OrderEvent::Allocate,
            OrderEvent::StartPicking,
            OrderEvent::Pack,
            OrderEvent::ShipAll,
            OrderEvent::Deliver,
        ] {
            s = transition(s, e).unwrap();
        }
        assert_eq!(s, OrderStatus::Delivered);
        assert!(transition(OrderStatus::Shipped, OrderEvent::Cancel).is_err());
        assert!(transition(OrderStatus::Cancelled, OrderEvent::Confirm).is_err());
        assert!(transition(OrderStatus::Placed, OrderEvent::ShipAll).is_err());
    }

    #[test]
    fn terminal_states_take_no_event_and_every_legal_move_is_listed() {
        use OrderEvent as E;
        use OrderStatus as S;
        let events = [
            E::Confirm,
            E::Allocate,
            E::StartPicking,
            E::Pack,
            E::ShipPart,
            E::ShipAll,
            E::Deliver,
            E::Cancel,
            E::Return,
        ];
        for e in events {
            assert!(transition(S::Cancelled, e).is_err());
            assert!(transition(S::Returned, e).is_err());
        }
        let statuses = [
            S::Placed,
            S::Confirmed,
            S::Allocated,
            S::Picking,
            S::Packed,
            S::PartiallyShipped,
            S::Shipped,
            S::Delivered,
            S::Cancelled,
            S::Returned,
        ];
        let legal: usize = statuses
            .iter()
            .map(|s| {
                events
                    .iter()
                    .filter(|e| transition(*s, **e).is_ok())
                    .count()
            })
            .sum();
        assert_eq!(legal, 18, "the table's legal moves");
        assert_eq!(
            transition(S::Shipped, E::Cancel),
            Err(IllegalTransition {
                from: S::Shipped,
                event: E::Cancel
            })
        );
    }
}
