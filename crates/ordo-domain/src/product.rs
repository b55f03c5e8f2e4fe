//! Catalog and network: products (one SKU each, one price), quantities, and fulfillment locations.

use crate::CountryCode;
use crate::error::{FieldError, invalid};
use crate::ids::{LocationId, Sku};
use crate::money::Money;
use crate::network::{Capability, Cutoff};
use serde::{Deserialize, Serialize};

/// A positive number of units, at most 10 000 per line.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(try_from = "i64", into = "i64")]
pub struct Quantity(u32);

impl Quantity {
    pub const MAX: i64 = 10_000;
    pub fn parse(n: i64) -> Result<Self, FieldError> {
        if n <= 0 {
            Err(invalid("not_positive", "a quantity must be at least 1"))
        } else if n > Self::MAX {
            Err(invalid(
                "too_large",
                format!("a quantity must be at most {}", Self::MAX),
            ))
        } else {
            Ok(Self(n as u32))
        }
    }
    pub fn get(self) -> i64 {
        self.0 as i64
    }
}
impl TryFrom<i64> for Quantity {
    type Error = String;
    fn try_from(n: i64) -> Result<Self, String> {
        Self::parse(n).map_err(|e| e.message)
    }
}
impl From<Quantity> for i64 {
    fn from(q: Quantity) -> i64 {
        q.0 as i64
    }
}

/// One sellable SKU with its current price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub sku: Sku,
    pub name: String,
    pub price: Money,
    pub category: Option<String>,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub fulfilment: crate::network::Fulfilment,
    pub updated_at_ms: i64,
}

/// What kind of node holds stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LocationKind {
    Warehouse,
    Store,
    #[serde(rename = "3pl")]
    ThirdParty,
    Supplier,
}

impl LocationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LocationKind::Warehouse => "warehouse",
            LocationKind::Store => "store",
            LocationKind::ThirdParty => "3pl",
            LocationKind::Supplier => "supplier",
        }
    }
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        match s {
            "warehouse" => Ok(Self::Warehouse),
            "store" => Ok(Self::Store),
            "3pl" => Ok(Self::ThirdParty),
            "supplier" => Ok(Self::Supplier),
            _ => Err(invalid(
                "unknown_kind",
                "a location kind is warehouse, store, 3pl or supplier",
            )),
        }
    }
}

/// A fulfillment node: where it is (WGS84 degrees), where it ships, what it can handle, how many
/// packages a day it can send, its daily cut-off and what a package from it costs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Location {
    #[schema(value_type = String)]
    pub id: LocationId,
    pub name: String,
    pub kind: LocationKind,
    pub lat: f64,
    pub lon: f64,
    /// Where the node is (ISO 3166-1 alpha-2).
    #[schema(value_type = Option<String>)]
    pub country: Option<CountryCode>,
    /// Countries it ships to; empty: everywhere.
    #[schema(value_type = Vec<String>)]
    pub ships_to: Vec<CountryCode>,
    pub capabilities: Vec<Capability>,
    /// Packages a day; `None`: unlimited.
    pub daily_capacity: Option<u32>,
    /// `HH:MM`, 24-hour clock, in `timezone`.
    #[schema(value_type = Option<String>, example = "17:00")]
    pub cutoff: Option<Cutoff>,
    /// IANA time zone of the cut-off and of "today" (`None`: UTC).
    pub timezone: Option<String>,
    /// Cost of preparing one package.
    pub handling_cost: Money,
    /// Cost of carrying one package 100 km (great-circle).
    pub cost_per_100km: Money,
    pub active: bool,
}

impl Location {
    /// A node with the network defaults: ships everywhere, no special capabilities, unlimited,
    /// no cut-off, free, active.
    pub fn new(
        id: LocationId,
        name: impl Into<String>,
        kind: LocationKind,
        lat: f64,
        lon: f64,
    ) -> Self {
        let usd = crate::Currency::parse("USD").expect("USD is a currency");
        Location {
            id,
            name: name.into(),
            kind,
            lat,
            lon,
            country: None,
            ships_to: Vec::new(),
            capabilities: Vec::new(),
            daily_capacity: None,
            cutoff: None,
            timezone: None,
            handling_cost: Money::new(0, usd),
            cost_per_100km: Money::new(0, usd),
            active: true,
        }
    }
    pub fn can(&self, c: Capability) -> bool {
        self.capabilities.contains(&c)
    }
}
