//! Ordo's canonical model: pure types and business rules with no I/O, no async and no SQL.
//! Every value type here can only be built valid (parse, don't validate); after the API edge,
//! code never re-checks them. Every rule is testable in microseconds.

pub mod cart;
pub mod contact;
pub mod error;
pub mod events;
pub mod ids;
pub mod lifecycle;
pub mod money;
pub mod network;
pub mod order;
pub mod payment;
pub mod pricing;
pub mod product;
pub mod promotion;
pub mod routing;
pub mod stock;
pub mod tax;

pub use cart::{CartDoc, CustomerRef};
pub use contact::{Address, CountryCode, Customer, Email, GuestContact, PhoneE164};
pub use error::{FieldError, FieldErrors};
pub use ids::{CartId, LocationId, OrderId, OrderNumber, Sku, TenantId};
pub use money::{Currency, Money, MoneyError};
pub use network::{Capability, Cutoff, Fulfilment};
pub use order::{Fulfillment, FulfillmentLine, Order, OrderLine, OrderStatus, ShipmentGroup};
pub use product::{Location, LocationKind, Product, Quantity};
pub use stock::StockLevel;
