//! Carts as the app last synced them: the request document and the unit prices last quoted
//! back (so a later sync or checkout can say "price changed" instead of changing silently).

use crate::{Result, Store, corrupt, now_ms};

#[derive(Debug, Clone, PartialEq)]
pub struct CartRecord {
    pub id: String,
    /// The cart as the app sent it (lines, promo codes, customer, shipments), JSON.
    pub body: serde_json::Value,
    /// SKU → unit price last shown to the app, JSON.
    pub quoted: serde_json::Value,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl Store {
    /// Inserts or replaces a cart.
    pub async fn save_cart(&self, tenant: &str, id: &str, body: &serde_json::Value, quoted: &serde_json::Value) -> Result<CartRecord> {
        let now = now_ms();
        let rows = self
            .write_rows(
                "INSERT INTO carts (tenant_id, id, body, quoted, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $5) \
                 ON CONFLICT (tenant_id, id) DO UPDATE SET body = excluded.body, quoted = excluded.quoted, updated_at_ms = excluded.updated_at_ms \
                 RETURNING created_at_ms",
                vec![tenant.into(), id.into(), body.to_string().into(), quoted.to_string().into(), now.into()],
            )
            .await?;
        let created_at_ms = rows.first().map(|r| r[0].int()).transpose()?.unwrap_or(now);
        Ok(CartRecord { id: id.to_string(), body: body.clone(), quoted: quoted.clone(), created_at_ms, updated_at_ms: now })
    }

    pub async fn cart(&self, tenant: &str, id: &str) -> Result<Option<CartRecord>> {
        let rows = self
            .read_rows("SELECT body, quoted, created_at_ms, updated_at_ms FROM carts WHERE tenant_id = $1 AND id = $2", vec![tenant.into(), id.into()])
            .await?;
        rows.first()
            .map(|r| {
                Ok(CartRecord {
                    id: id.to_string(),
                    body: serde_json::from_str(&r[0].text()?).map_err(corrupt)?,
                    quoted: serde_json::from_str(&r[1].text()?).map_err(corrupt)?,
                    created_at_ms: r[2].int()?,
                    updated_at_ms: r[3].int()?,
                })
            })
        .transpose()
    }
}
