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

/// The lifecycle, every legal pair listed; anything else is rejected.
pub fn transition(from: OrderStatus, event: OrderEvent) -> Result<OrderStatus, IllegalTransition> {
    use OrderEvent as E;
    use OrderStatus as S;
    let to = match (from, event) {
        (S::Placed, E::Confirm) => S::Confirmed,
        (S::Confirmed, E::Allocate) => S::Allocated,
        (S::Allocated, E::StartPicking) => S::Picking,
        (S::Picking, E::Pack) => S::Packed,
        (S::Packed | S::Allocated | S::PartiallyShipped, E::ShipPart) => S::PartiallyShipped,
        (S::Packed | S::PartiallyShipped, E::ShipAll) => S::Shipped,
        (S::Shipped, E::Deliver) => S::Delivered,
        (S::Placed | S::Confirmed | S::Allocated | S::Picking | S::Packed, E::Cancel) => S::Cancelled,
        (S::Delivered | S::PartiallyShipped | S::Shipped, E::Return) => S::Returned,
        _ => return Err(IllegalTransition { from, event }),
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
    /// RFC 3339 timestamp, UTC.
    pub created_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_happy_path_and_illegal_moves() {
        let mut s = OrderStatus::Placed;
        for e in [OrderEvent::Confirm, OrderEvent::Allocate, OrderEvent::StartPicking, OrderEvent::Pack, OrderEvent::ShipAll, OrderEvent::Deliver] {
            s = transition(s, e).unwrap();
        }
        assert_eq!(s, OrderStatus::Delivered);
        assert!(transition(OrderStatus::Shipped, OrderEvent::Cancel).is_err());
        assert!(transition(OrderStatus::Cancelled, OrderEvent::Confirm).is_err());
        assert!(transition(OrderStatus::Placed, OrderEvent::ShipAll).is_err());
    }
}
