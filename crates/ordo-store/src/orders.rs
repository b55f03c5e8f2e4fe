//! Orders as the store keeps them: what a placement needs (`NewOrder`), why one can fail
//! (`PlaceError`), and reading placed orders back. Placing itself happens in one place only: the
//! placement engine (`engine.rs`), fed by the group-commit driver (`commit.rs`).

use crate::{Result, Store, StoreError, corrupt};
use ordo_domain::promotion::PromoRejection;
use ordo_domain::{Money, Order, OrderNumber, Sku};
use sqlx::Row;

/// A fully priced order ready to commit (its `allocations` are filled in by the engine).
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub order: Order,
    /// Who per-customer promotion limits count against.
    pub customer_key: String,
    /// The (scoped) idempotency key this order was claimed under, and the claim's id: the order
    /// commits only while that claim is still this attempt's.
    pub idempotency_key: String,
    pub claim_id: String,
    /// Ordo's ids of this order's pending authorizations; they become `attached` with the order.
    pub authorization_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Shortage {
    pub sku: Sku,
    pub requested: i64,
    /// What the nodes that may ship this line to its address hold.
    pub available: i64,
    /// The shipment the short line goes to.
    pub address_index: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error("the idempotency claim of this attempt was taken over or released")]
    ClaimLost,
    #[error("not enough stock")]
    Shortage(Vec<Shortage>),
    #[error("prices changed")]
    PriceMoved(Vec<(Sku, Money, Option<Money>)>),
    #[error("promotion {0} has reached its usage limit")]
    PromotionExhausted(String),
    #[error("promotion {0} has reached its per-customer limit")]
    CustomerLimitReached(String),
    #[error("promotion {0} no longer applies: {1:?}")]
    PromotionInvalid(String, PromoRejection),
    #[error("payment token {0} was already used")]
    TokenUsed(usize),
    #[error("an authorization of this order was voided before it committed")]
    AuthorizationLost,
    /// No plan fills the order although stock covers every line: the nodes holding it are at
    /// their daily capacity, or the search gave up (`ordo_domain::routing::NoPlan`'s codes).
    #[error("no fulfilment plan: {0:?}")]
    NoRoute(Vec<ordo_domain::routing::ReasonCode>),
    /// The order's addresses cannot be routed (no coordinates and no known centroid).
    #[error("the order cannot be routed")]
    Unroutable(ordo_domain::FieldErrors),
    #[error("cart {0} has already become an order")]
    CartOrdered(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for PlaceError {
    fn from(e: sqlx::Error) -> Self {
        PlaceError::Store(e.into())
    }
}

impl Store {
    /// An order by internal id (`ord_…`) or by number (`ORD-…`).
    pub async fn order(&self, tenant: &str, id_or_number: &str) -> Result<Option<Order>> {
        let by_number = OrderNumber::parse(id_or_number).ok();
        let row = match by_number {
            Some(n) => {
                sqlx::query("SELECT status, body FROM orders WHERE tenant_id = $1 AND number = $2")
                    .bind(tenant)
                    .bind(n.as_str().to_string())
            }
            None => sqlx::query("SELECT status, body FROM orders WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(id_or_number.to_string()),
        }
        .fetch_optional(&mut *self.conn(tenant).await?)
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let (status, body): (String, String) = (r.try_get("status")?, r.try_get("body")?);
        let mut order: Order = serde_json::from_str(&body).map_err(corrupt)?;
        // Orders placed before the lifecycle existed carry no fulfilments in their body.
        self.overlay(tenant, &mut order, &status).await?;
        Ok(Some(order))
    }

    pub async fn count_orders(&self, tenant: &str) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE tenant_id = $1")
                .bind(tenant)
                .fetch_one(&mut *self.conn(tenant).await?)
                .await?,
        )
    }
}
