//! Events: what Ordo tells the retailer's other systems, as CloudEvents 1.0.
//!
//! Every state change writes one event in the transaction that makes it. An event's `subject`
//! is the order it belongs to (or the SKU, for inventory; the model, for drift), and `sequence`
//! numbers one subject's events from 1 without gaps, in commit order. The list of types is closed:
//! `EventType::ALL` is what webhook filters, the JSON Schemas under `docs/events/` and the NATS
//! subjects are checked against.

use serde::{Deserialize, Serialize};

/// One kind of change. The CloudEvents `type` is `ordo.<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventType(&'static str);

impl EventType {
    pub const ORDER_PLACED: Self = Self("ordo.order.placed");
    pub const ORDER_CANCELLED: Self = Self("ordo.order.cancelled");
    pub const ORDER_LINES_CANCELLED: Self = Self("ordo.order.lines_cancelled");
    pub const FULFILLMENT_PICKED: Self = Self("ordo.fulfillment.picked");
    pub const FULFILLMENT_PACKED: Self = Self("ordo.fulfillment.packed");
    pub const FULFILLMENT_SHIPPED: Self = Self("ordo.fulfillment.shipped");
    pub const FULFILLMENT_DELIVERED: Self = Self("ordo.fulfillment.delivered");
    pub const FULFILLMENT_SHORT_PICKED: Self = Self("ordo.fulfillment.short_picked");
    pub const FULFILLMENT_CANCELLED: Self = Self("ordo.fulfillment.cancelled");
    pub const TRACKING_IN_TRANSIT: Self = Self("ordo.tracking.in_transit");
    pub const TRACKING_OUT_FOR_DELIVERY: Self = Self("ordo.tracking.out_for_delivery");
    pub const TRACKING_EXCEPTION: Self = Self("ordo.tracking.exception");
    pub const RETURN_REQUESTED: Self = Self("ordo.return.requested");
    pub const RETURN_RECEIVED: Self = Self("ordo.return.received");
    pub const RETURN_DISPOSITIONED: Self = Self("ordo.return.dispositioned");
    pub const EXCHANGE_REQUESTED: Self = Self("ordo.exchange.requested");
    pub const REFUND_ISSUED: Self = Self("ordo.refund.issued");
    pub const REFUND_FAILED: Self = Self("ordo.refund.failed");
    pub const INVENTORY_UPDATED: Self = Self("ordo.inventory.updated");
    pub const MODEL_DRIFT_DETECTED: Self = Self("ordo.model.drift_detected");

    pub const ALL: [Self; 20] = [
        Self::ORDER_PLACED,
        Self::ORDER_CANCELLED,
        Self::ORDER_LINES_CANCELLED,
        Self::FULFILLMENT_PICKED,
        Self::FULFILLMENT_PACKED,
        Self::FULFILLMENT_SHIPPED,
        Self::FULFILLMENT_DELIVERED,
        Self::FULFILLMENT_SHORT_PICKED,
        Self::FULFILLMENT_CANCELLED,
        Self::TRACKING_IN_TRANSIT,
        Self::TRACKING_OUT_FOR_DELIVERY,
        Self::TRACKING_EXCEPTION,
        Self::RETURN_REQUESTED,
        Self::RETURN_RECEIVED,
        Self::RETURN_DISPOSITIONED,
        Self::EXCHANGE_REQUESTED,
        Self::REFUND_ISSUED,
        Self::REFUND_FAILED,
        Self::INVENTORY_UPDATED,
        Self::MODEL_DRIFT_DETECTED,
    ];

    /// The type of an order's timeline action (`fulfillment.shipped`, `order.cancelled`, …).
    pub fn of_action(action: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| &t.0[5..] == action)
    }

    /// A type by its full name (`ordo.order.placed`).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.0 == name)
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// The name without its `ordo.` prefix (`order.placed`): the tail of the NATS subject.
    pub fn short(self) -> &'static str {
        &self.0[5..]
    }

    /// The NATS subject an event of this type is published on for `tenant`:
    /// `ordo.<tenant>.<short name>`. A character of the tenant id that NATS gives a meaning
    /// (`.`, `*`, `>`, whitespace, …) becomes `_`, so every event lands on one literal subject.
    pub fn nats_subject(self, tenant: &str) -> String {
        let token: String = tenant
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("ordo.{token}.{}", self.short())
    }
}

/// A filter of event types: `["*"]` for all, or a list of known types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeFilter {
    All,
    Only(Vec<EventType>),
}

impl TypeFilter {
    /// Parses a subscription's list; the error names the first unknown entry.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, String> {
        if names.is_empty() {
            return Err("name at least one event type, or \"*\" for all".into());
        }
        if names.iter().any(|n| n.as_ref() == "*") {
            if names.len() > 1 {
                return Err("\"*\" stands alone: it already means every type".into());
            }
            return Ok(Self::All);
        }
        let mut types = Vec::with_capacity(names.len());
        for n in names {
            let t = EventType::parse(n.as_ref())
                .ok_or_else(|| format!("unknown event type {:?} (see docs/events/)", n.as_ref()))?;
            if !types.contains(&t) {
                types.push(t);
            }
        }
        Ok(Self::Only(types))
    }

    pub fn admits(&self, type_name: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(types) => types.iter().any(|t| t.as_str() == type_name),
        }
    }

    /// The names as stored and shown.
    pub fn names(&self) -> Vec<String> {
        match self {
            Self::All => vec!["*".into()],
            Self::Only(types) => types.iter().map(|t| t.as_str().to_string()).collect(),
        }
    }
}

/// A CloudEvents 1.0 event in its JSON format, with the `sequence` extension (per subject, from 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CloudEvent {
    /// Always `1.0`.
    pub specversion: String,
    /// Unique and stable across re-deliveries: de-duplicate on it.
    pub id: String,
    /// `/ordo/<tenant>`.
    pub source: String,
    /// `ordo.order.placed`, `ordo.fulfillment.shipped`, … (see `docs/events/`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The order id, the SKU (inventory) or the model (drift).
    pub subject: String,
    /// When the change committed (RFC 3339, UTC).
    pub time: String,
    pub datacontenttype: String,
    /// The subject's events numbered from 1 without gaps, in commit order.
    pub sequence: i64,
    /// The change; its shape per type is in `docs/events/<type>.schema.json`.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

impl CloudEvent {
    /// The tenant of a `source`.
    pub fn tenant(&self) -> Option<&str> {
        self.source.strip_prefix("/ordo/")
    }
}

/// A CloudEvents `time`: Unix milliseconds as RFC 3339 in UTC, to the millisecond.
pub fn time_of(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The CloudEvents `source` of a tenant's events.
pub fn source_of(tenant: &str) -> String {
    format!("/ordo/{tenant}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_map_to_their_types_and_unknown_ones_to_none() {
        assert_eq!(
            EventType::of_action("fulfillment.shipped"),
            Some(EventType::FULFILLMENT_SHIPPED)
        );
        assert_eq!(
            EventType::of_action("order.cancelled"),
            Some(EventType::ORDER_CANCELLED)
        );
        assert_eq!(EventType::of_action("fulfillment.teleported"), None);
        assert_eq!(time_of(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(
            EventType::ORDER_PLACED.nats_subject("acme"),
            "ordo.acme.order.placed"
        );
        assert_eq!(
            EventType::ORDER_PLACED.nats_subject("a.b *>"),
            "ordo.a_b___.order.placed"
        );
    }

    #[test]
    fn type_filters_admit_what_they_name() {
        assert_eq!(TypeFilter::parse(&["*"]), Ok(TypeFilter::All));
        let f = TypeFilter::parse(&["ordo.order.placed", "ordo.order.placed"]).unwrap();
        assert_eq!(f, TypeFilter::Only(vec![EventType::ORDER_PLACED]));
        assert!(f.admits("ordo.order.placed"));
        assert!(!f.admits("ordo.order.cancelled"));
        assert!(
            TypeFilter::parse(&["order.placed"])
                .unwrap_err()
                .contains("order.placed")
        );
        assert!(TypeFilter::parse::<&str>(&[]).is_err());
        assert!(TypeFilter::parse(&["*", "ordo.order.placed"]).is_err());
    }

    #[test]
    fn every_type_is_unique_and_prefixed() {
        let mut seen = std::collections::BTreeSet::new();
        for t in EventType::ALL {
            assert!(t.as_str().starts_with("ordo."), "{t:?}");
            assert!(seen.insert(t.as_str()), "{t:?} twice");
        }
    }
}
