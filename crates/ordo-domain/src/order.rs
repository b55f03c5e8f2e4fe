//! The order: what was bought, by whom, shipped where, paid how. The body is immutable history;
//! its status, fulfilments and tenders' money live beside it and follow the rules of `lifecycle`.

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
    PartiallyReturned,
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
            Self::PartiallyReturned => "partially_returned",
            Self::Returned => "returned",
        }
    }

    pub const ALL: [OrderStatus; 11] = [
        Self::Placed,
        Self::Confirmed,
        Self::Allocated,
        Self::Picking,
        Self::Packed,
        Self::PartiallyShipped,
        Self::Shipped,
        Self::Delivered,
        Self::Cancelled,
        Self::PartiallyReturned,
        Self::Returned,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
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
    /// Units shipped, cancelled and returned so far.
    #[serde(default)]
    pub shipped: i64,
    #[serde(default)]
    pub cancelled: i64,
    #[serde(default)]
    pub returned: i64,
}

/// Units of one SKU in a fulfilment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FulfillmentLine {
    #[schema(value_type = String)]
    pub sku: Sku,
    pub quantity: i64,
}

/// What one node ships to one of the order's addresses: made at allocation, then picked,
/// packed, shipped and delivered by staff and carriers (`lifecycle::step`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Fulfillment {
    #[schema(example = "ful_0193...")]
    pub id: String,
    #[schema(value_type = String)]
    pub location_id: LocationId,
    /// The shipment (index into `shipments`) it goes to.
    pub address_index: usize,
    pub status: crate::lifecycle::FulfillmentStatus,
    pub lines: Vec<FulfillmentLine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
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
    /// One per node and address, made at allocation.
    #[serde(default)]
    pub fulfillments: Vec<Fulfillment>,
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
    fn statuses_have_their_stored_names() {
        assert_eq!(
            OrderStatus::PartiallyReturned.as_str(),
            "partially_returned"
        );
        assert_eq!(
            serde_json::to_string(&OrderStatus::PartiallyShipped).unwrap(),
            "\"partially_shipped\""
        );
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
    }
}
