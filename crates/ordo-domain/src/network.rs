//! The fulfilment network: what a node can ship (capabilities), when its day's last pickup is
//! (cut-off, in its own time zone), where it ships, and what a package from it costs.

use crate::FieldError;
use crate::error::invalid;
use serde::{Deserialize, Serialize};

/// What a node can handle beyond ordinary parcels.
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
#[serde(rename_all = "snake_case")]
pub enum Capability {
    Hazmat,
    ColdChain,
    Oversize,
}

impl Capability {
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Hazmat => "hazmat",
            Capability::ColdChain => "cold_chain",
            Capability::Oversize => "oversize",
        }
    }
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        match s {
            "hazmat" => Ok(Self::Hazmat),
            "cold_chain" => Ok(Self::ColdChain),
            "oversize" => Ok(Self::Oversize),
            _ => Err(invalid(
                "unknown_capability",
                "a capability is hazmat, cold_chain or oversize",
            )),
        }
    }
}

/// A node's daily cut-off, `HH:MM` in its own time zone (the routing engine's type).
pub use crate::routing::Cutoff;

/// How a product must travel: routing sends hazmat only from `hazmat` nodes and cold-chain
/// only from `cold_chain` nodes.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
pub struct Fulfilment {
    pub hazmat: bool,
    pub cold_chain: bool,
    /// Shipping weight of one unit, in grams.
    pub weight_grams: Option<u32>,
}

/// A unit this heavy or heavier (grams) travels as oversize: only nodes with `oversize` ship it.
pub const OVERSIZE_FROM_GRAMS: i64 = 30_000;

/// Whether a product of this unit weight needs an `oversize` node (unknown weight: no).
pub fn is_oversize(weight_grams: Option<i64>) -> bool {
    weight_grams.is_some_and(|g| g >= OVERSIZE_FROM_GRAMS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_round_trip() {
        for c in [
            Capability::Hazmat,
            Capability::ColdChain,
            Capability::Oversize,
        ] {
            assert_eq!(Capability::parse(c.as_str()).unwrap(), c);
        }
        assert!(Capability::parse("fragile").is_err());
    }
}
