//! Identifiers: tenants, SKUs, locations, carts and orders, plus the human-friendly order number.
//! Each id type only holds a well-formed value; internal ids are UUID v7 (time-ordered).

use crate::error::{FieldError, invalid};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::fmt;

fn is_slug_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

macro_rules! slug_id {
    ($name:ident, $what:literal, $max:literal) => {
        #[doc = concat!("A ", $what, ": 1 to ", stringify!($max), " characters of letters, digits, `-`, `_` or `.`.")]
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, FieldError> {
                let s = s.trim();
                if s.is_empty() {
                    return Err(invalid("required", concat!("a ", $what, " is required")));
                }
                if s.len() > $max {
                    return Err(invalid("too_long", format!(concat!("a ", $what, " has at most {} characters"), $max)));
                }
                if !s.chars().all(is_slug_char) {
                    return Err(invalid(
                        "invalid_format",
                        concat!("a ", $what, " may only hold letters, digits, '-', '_' and '.'"),
                    ));
                }
                Ok(Self(s.to_string()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                Self::parse(&s).map_err(|e| e.message)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

slug_id!(Sku, "SKU", 64);
slug_id!(LocationId, "location id", 64);
slug_id!(TenantId, "tenant id", 64);

macro_rules! uuid_id {
    ($name:ident, $prefix:literal) => {
        #[doc = concat!("An internal id, shown as `", $prefix, "` followed by a UUID v7.")]
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
        )]
        #[serde(try_from = "String", into = "String")]
        #[schema(value_type = String)]
        pub struct $name(uuid::Uuid);

        impl $name {
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7())
            }
            pub fn parse(s: &str) -> Result<Self, FieldError> {
                s.strip_prefix($prefix)
                    .and_then(|rest| uuid::Uuid::try_parse(rest).ok())
                    .map(Self)
                    .ok_or_else(|| {
                        invalid("invalid_id", concat!("not a valid id (", $prefix, "…)"))
                    })
            }
        }
        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }
        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                Self::parse(&s).map_err(|e| e.message)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.to_string()
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0.simple())
            }
        }
    };
}

uuid_id!(CartId, "cart_");
uuid_id!(OrderId, "ord_");

/// Crockford base32 without I, L, O, U: easy to read aloud and to type on a phone.
const NUMBER_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The human-friendly order number, `ORD-XXXX-XXXX` (40 random bits; uniqueness is enforced by storage).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct OrderNumber(String);

impl OrderNumber {
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let mut s = String::with_capacity(13);
        s.push_str("ORD-");
        for i in 0..8 {
            if i == 4 {
                s.push('-');
            }
            s.push(NUMBER_ALPHABET[rng.random_range(0..32)] as char);
        }
        Self(s)
    }
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let up = s.trim().to_ascii_uppercase();
        let b = up.as_bytes();
        let ok = b.len() == 13
            && up.starts_with("ORD-")
            && b[8] == b'-'
            && b[4..]
                .iter()
                .enumerate()
                .all(|(i, c)| i == 4 || NUMBER_ALPHABET.contains(c));
        if ok {
            Ok(Self(up))
        } else {
            Err(invalid(
                "invalid_format",
                "an order number looks like ORD-7K3M-9Q2X",
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for OrderNumber {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).map_err(|e| e.message)
    }
}
impl From<OrderNumber> for String {
    fn from(v: OrderNumber) -> String {
        v.0
    }
}
impl fmt::Display for OrderNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_numbers_round_trip_and_reject_lookalikes() {
        for _ in 0..100 {
            let n = OrderNumber::generate();
            assert_eq!(OrderNumber::parse(n.as_str()).unwrap(), n);
        }
        assert!(OrderNumber::parse("ord-7k3m-9q2x").is_ok());
        assert!(
            OrderNumber::parse("ORD-7K3M-9Q2I").is_err(),
            "I is not in the alphabet"
        );
        assert!(OrderNumber::parse("ORD-7K3M9Q2X").is_err());
    }

    #[test]
    fn ids_parse_only_their_own_prefix() {
        let o = OrderId::new();
        assert_eq!(OrderId::parse(&o.to_string()).unwrap(), o);
        assert!(CartId::parse(&o.to_string()).is_err());
        assert!(Sku::parse("TEE-RED-M").is_ok());
        assert!(Sku::parse("bad sku").is_err());
        assert!(Sku::parse("").is_err());
    }
}
