//! Stock per SKU per location and staff adjustments. Every write is a conditional update that
//! keeps `0 <= reserved <= on_hand`; each adjustment is logged with its reason and emits an
//! `InventoryAdjusted` outbox event in the same transaction.

use crate::{Result, Store, StoreError, corrupt, now_ms};
use ordo_domain::{LocationId, Sku, StockLevel};
use sqlx::Row;

/// How an adjustment changes on-hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockChange {
    Delta(i64),
    SetOnHand(i64),
}

#[derive(Debug, Clone)]
pub struct Adjustment {
    pub sku: Sku,
    pub location_id: LocationId,
    pub change: StockChange,
    /// `receipt`, `count`, `damage`, `correction`, … (validated at the edge).
    pub reason: String,
    pub note: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AdjustError {
    #[error("no product has SKU {0}")]
    UnknownSku(String),
    #[error("no location has id {0}")]
    UnknownLocation(String),
    #[error("on hand would become {would_be}, below the {reserved} units reserved for orders")]
    BelowReserved { would_be: i64, reserved: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AdjustError {
    fn from(e: sqlx::Error) -> Self {
        AdjustError::Store(e.into())
    }
}

impl Store {
    pub async fn stock_levels(&self, tenant: &str, sku: &Sku) -> Result<Vec<StockLevel>> {
        let rows = sqlx::query(
            "SELECT location_id, on_hand, reserved FROM stock WHERE tenant_id = $1 AND sku = $2 ORDER BY location_id",
        )
        .bind(tenant)
        .bind(sku.as_str())
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                let loc: String = r.try_get("location_id")?;
                Ok(StockLevel {
                    sku: sku.clone(),
                    location_id: LocationId::parse(&loc).map_err(|_| corrupt("location id"))?,
                    on_hand: r.try_get("on_hand")?,
                    reserved: r.try_get("reserved")?,
                })
            })
            .collect()
    }

    /// Applies one adjustment atomically and returns the new level.
    pub async fn adjust_stock(&self, tenant: &str, a: &Adjustment) -> Result<StockLevel, AdjustError> {
        let mut tx = self.begin_write().await?;
        let known: Option<i64> = sqlx::query_scalar("SELECT 1 FROM products WHERE tenant_id = $1 AND sku = $2")
            .bind(tenant)
            .bind(a.sku.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if known.is_none() {
            return Err(AdjustError::UnknownSku(a.sku.to_string()));
        }
        let known: Option<i64> = sqlx::query_scalar("SELECT 1 FROM locations WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(a.location_id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if known.is_none() {
            return Err(AdjustError::UnknownLocation(a.location_id.to_string()));
        }
        let now = now_ms();
        sqlx::query(
            "INSERT INTO stock (tenant_id, sku, location_id, on_hand, reserved, updated_at_ms) VALUES ($1, $2, $3, 0, 0, $4) \
             ON CONFLICT (tenant_id, sku, location_id) DO NOTHING",
        )
        .bind(tenant)
        .bind(a.sku.as_str())
        .bind(a.location_id.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // Lock the row (PostgreSQL; SQLite has a single writer) so the logged delta is exact.
        let lock = if self.backend == crate::Backend::Postgres { " FOR UPDATE" } else { "" };
        let before: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(&*format!(
            "SELECT on_hand FROM stock WHERE tenant_id = $1 AND sku = $2 AND location_id = $3{lock}"
        )))
        .bind(tenant)
        .bind(a.sku.as_str())
        .bind(a.location_id.as_str())
        .fetch_one(&mut *tx)
        .await?;
        let (new_on_hand_expr, value) = match a.change {
            StockChange::Delta(d) => ("on_hand + $4", d),
            StockChange::SetOnHand(n) => ("$4", n),
        };
        let sql = format!(
            "UPDATE stock SET on_hand = {new_on_hand_expr}, updated_at_ms = $5 \
             WHERE tenant_id = $1 AND sku = $2 AND location_id = $3 AND {new_on_hand_expr} >= reserved \
             RETURNING on_hand, reserved"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(tenant)
            .bind(a.sku.as_str())
            .bind(a.location_id.as_str())
            .bind(value)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            let r = sqlx::query("SELECT on_hand, reserved FROM stock WHERE tenant_id = $1 AND sku = $2 AND location_id = $3")
                .bind(tenant)
                .bind(a.sku.as_str())
                .bind(a.location_id.as_str())
                .fetch_one(&mut *tx)
                .await?;
            let (on_hand, reserved): (i64, i64) = (r.try_get("on_hand")?, r.try_get("reserved")?);
            let would_be = match a.change {
                StockChange::Delta(d) => on_hand + d,
                StockChange::SetOnHand(n) => n,
            };
            return Err(AdjustError::BelowReserved { would_be, reserved });
        };
        let level = StockLevel {
            sku: a.sku.clone(),
            location_id: a.location_id.clone(),
            on_hand: row.try_get("on_hand")?,
            reserved: row.try_get("reserved")?,
        };
        let delta = level.on_hand - before;
        sqlx::query(
            "INSERT INTO stock_adjustments (tenant_id, sku, location_id, delta, on_hand_after, reason, note, at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(tenant)
        .bind(a.sku.as_str())
        .bind(a.location_id.as_str())
        .bind(delta)
        .bind(level.on_hand)
        .bind(&a.reason)
        .bind(a.note.as_deref())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let payload = serde_json::json!({
            "sku": level.sku, "location_id": level.location_id, "on_hand": level.on_hand,
            "reserved": level.reserved, "reason": a.reason,
        });
        sqlx::query(
            "INSERT INTO outbox (tenant_id, event_type, aggregate_id, payload, created_at_ms) VALUES ($1, 'InventoryAdjusted', $2, $3, $4)",
        )
        .bind(tenant)
        .bind(a.sku.as_str())
        .bind(payload.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(level)
    }

    /// Network totals for one SKU: (on_hand, reserved, units held by order allocations).
    /// `reserved` must always equal the allocations: the reconciliation KPI and the tests check it.
    pub async fn stock_reconciliation(&self, tenant: &str, sku: &Sku) -> Result<(i64, i64, i64)> {
        let r = sqlx::query(
            "SELECT CAST(COALESCE(SUM(on_hand), 0) AS BIGINT) AS on_hand, CAST(COALESCE(SUM(reserved), 0) AS BIGINT) AS reserved \
             FROM stock WHERE tenant_id = $1 AND sku = $2",
        )
        .bind(tenant)
        .bind(sku.as_str())
        .fetch_one(&self.read)
        .await?;
        let allocated: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(quantity), 0) AS BIGINT) FROM order_allocations WHERE tenant_id = $1 AND sku = $2",
        )
        .bind(tenant)
        .bind(sku.as_str())
        .fetch_one(&self.read)
        .await?;
        Ok((r.try_get("on_hand")?, r.try_get("reserved")?, allocated))
    }
}
