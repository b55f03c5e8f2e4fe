//! Carts as the app last synced them: the request document and the unit prices last quoted
//! back (so a later sync or checkout can say "price changed" instead of changing silently).
//! A cart that became an order is read-only: a sync of it is refused, never applied.

use crate::idempotency::{IdempotencyKey, Idempotent, Render};
use crate::sql::{Sql, Val};
use crate::{Result, Store, corrupt};

#[derive(Debug, Clone, PartialEq)]
pub struct CartRecord {
    pub id: String,
    /// The reconciled cart document, JSON.
    pub body: serde_json::Value,
    /// SKU → unit price last shown to the app, JSON.
    pub quoted: serde_json::Value,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// The order this cart became, once it did.
    pub order_id: Option<String>,
}

/// What syncing an existing cart did.
#[derive(Debug, Clone, PartialEq)]
pub enum CartSave {
    Saved(CartRecord),
    /// The cart already became an order; nothing was changed.
    Ordered(String),
}

impl Store {
    /// Creates a cart (idempotently, when given a key and how to render the answer).
    pub async fn create_cart(
        &self,
        tenant: &str,
        rec: &CartRecord,
        key: Option<(IdempotencyKey, Render<CartRecord>)>,
    ) -> Result<Idempotent<CartRecord>> {
        let (t, rec) = (tenant.to_string(), rec.clone());
        self.idempotent(tenant, key, move |tx| {
            let (t, rec) = (t.clone(), rec.clone());
            Box::pin(async move {
                tx.exec(
                    "INSERT INTO carts (tenant_id, id, body, quoted, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
                    vec![
                        t.as_str().into(),
                        rec.id.as_str().into(),
                        rec.body.to_string().into(),
                        rec.quoted.to_string().into(),
                        rec.created_at_ms.into(),
                        rec.updated_at_ms.into(),
                    ],
                )
                .await?;
                Ok((rec, true))
            })
        })
        .await
    }

    /// Replaces an existing cart's document, unless it became an order meanwhile.
    pub async fn sync_cart(
        &self,
        tenant: &str,
        id: &str,
        body: &serde_json::Value,
        quoted: &serde_json::Value,
        now: i64,
    ) -> Result<CartSave> {
        let rows = self
            .write_rows(tenant,
                "UPDATE carts SET body = $3, quoted = $4, updated_at_ms = $5 WHERE tenant_id = $1 AND id = $2 AND order_id IS NULL \
                 RETURNING created_at_ms",
                vec![tenant.into(), id.into(), body.to_string().into(), quoted.to_string().into(), now.into()],
            )
            .await?;
        match rows.first() {
            Some(r) => Ok(CartSave::Saved(CartRecord {
                id: id.to_string(),
                body: body.clone(),
                quoted: quoted.clone(),
                created_at_ms: r[0].int()?,
                updated_at_ms: now,
                order_id: None,
            })),
            None => {
                let order = self
                    .cart(tenant, id)
                    .await?
                    .and_then(|c| c.order_id)
                    .unwrap_or_default();
                Ok(CartSave::Ordered(order))
            }
        }
    }

    pub async fn cart(&self, tenant: &str, id: &str) -> Result<Option<CartRecord>> {
        let rows = self
            .read_rows(tenant,
                "SELECT body, quoted, created_at_ms, updated_at_ms, order_id FROM carts WHERE tenant_id = $1 AND id = $2",
                vec![tenant.into(), Val::from(id)],
            )
            .await?;
        rows.first()
            .map(|r| {
                Ok(CartRecord {
                    id: id.to_string(),
                    body: serde_json::from_str(&r[0].text()?).map_err(corrupt)?,
                    quoted: serde_json::from_str(&r[1].text()?).map_err(corrupt)?,
                    created_at_ms: r[2].int()?,
                    updated_at_ms: r[3].int()?,
                    order_id: r[4].opt_text()?,
                })
            })
            .transpose()
    }
}
