//! The fulfilment network: what a node can ship (capabilities), when its day's last pickup is
//! (cut-off, in its own time zone), where it ships, and what a package from it costs.

use crate::error::invalid;
use crate::FieldError;
use serde::{Deserialize, Serialize};

/// What a node can handle beyond ordinary parcels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
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
            _ => Err(invalid("unknown_capability", "a capability is hazmat, cold_chain or oversize")),
        }
    }
}

/// A node's daily cut-off, `HH:MM` on a 24-hour clock in the node's time zone: a package
/// routed after it ships the next day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CutOff {
    minutes: u16,
}

impl CutOff {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let bad = || invalid("invalid_cutoff", format!("'{s}' is not a time of day HH:MM (00:00 to 23:59)"));
        let (h, m) = s.split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(bad());
        }
        let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h > 23 || m > 59 {
            return Err(bad());
        }
        Ok(CutOff { minutes: h * 60 + m })
    }
    /// Minutes after local midnight.
    pub fn minutes(self) -> u16 {
        self.minutes
    }
}

impl std::fmt::Display for CutOff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.minutes / 60, self.minutes % 60)
    }
}

impl TryFrom<String> for CutOff {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        CutOff::parse(&s).map_err(|e| e.message)
    }
}

impl From<CutOff> for String {
    fn from(c: CutOff) -> String {
        c.to_string()
    }
}

/// How a product must travel: routing sends hazmat only from `hazmat` nodes and cold-chain
/// only from `cold_chain` nodes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Fulfilment {
    pub hazmat: bool,
    pub cold_chain: bool,
    /// Shipping weight of one unit, in grams.
    pub weight_grams: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoffs_are_times_of_day() {
        assert_eq!(CutOff::parse("17:00").unwrap().minutes(), 1020);
        assert_eq!(CutOff::parse("00:00").unwrap().to_string(), "00:00");
        assert_eq!(CutOff::parse("23:59").unwrap().to_string(), "23:59");
        for bad in ["25:00", "24:00", "17:60", "7:00", "17", "", "ab:cd", "17:00:00", "-1:00"] {
            assert!(CutOff::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn capabilities_round_trip() {
        for c in [Capability::Hazmat, Capability::ColdChain, Capability::Oversize] {
            assert_eq!(Capability::parse(c.as_str()).unwrap(), c);
        }
        assert!(Capability::parse("fragile").is_err());
    }
}
