//! The cart as Ordo stores and prices it: the reconciled lines, promotion codes, who buys and
//! where it goes — all parsed values. This is the stored cart document (JSON in the carts table),
//! so its serialized shape is a storage format: change it only with a migration in mind.

use crate::contact::GuestContact;
use crate::pricing::{LineRequest, ShipmentRequest};
use serde::{Deserialize, Serialize};

/// Who buys, as parsed: a guest's validated contact or a member id still to be looked up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CustomerRef {
    Guest(GuestContact),
    Member { customer_id: String },
}

impl CustomerRef {
    /// The key per-customer promotion limits count against.
    pub fn promotion_key(&self) -> String {
        match self {
            CustomerRef::Guest(g) => format!("guest:{}", g.email.as_str().to_lowercase()),
            CustomerRef::Member { customer_id } => format!("member:{customer_id}"),
        }
    }
}

/// A cart as parsed: what is stored for it and priced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CartDoc {
    pub lines: Vec<LineRequest>,
    pub promo_codes: Vec<String>,
    pub customer: Option<CustomerRef>,
    pub shipments: Vec<ShipmentRequest>,
    /// The shipping speed chosen (`GET /v1/carts/{id}/shipping-options`); none: standard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_option: Option<crate::routing::ShippingSpeed>,
}
