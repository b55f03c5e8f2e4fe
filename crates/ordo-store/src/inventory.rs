//! Stock per SKU per location and staff adjustments. Every write is a conditional update that
//! keeps `0 <= reserved <= on_hand`; each adjustment is logged with its reason and emits an
//! `ordo.inventory.updated` outbox event in the same transaction.

use crate::audit::AuditEntry;
use crate::idempotency::{IdempotencyKey, Idempotent, Render};
use crate::sql::{Sql, Tx, Val};
use crate::{Result, Store, StoreError, corrupt, now_ms};
use ordo_domain::{LocationId, Sku, StockLevel};
use sqlx::Row;

/// How an adjustment changes on-hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockChange {
    Delta(i64),
    SetOnHand(i64),
    /// Sets the units held back from online sale (on-hand unchanged).
    SafetyStock(i64),
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
    /// `reserved` counts units reserved for orders and units held for carts at checkout.
    #[error(
        "on hand would become {would_be}, below the {reserved} units reserved for orders or held for carts"
    )]
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
            "SELECT location_id, on_hand, reserved, held, safety_stock FROM stock WHERE tenant_id = $1 AND sku = $2 ORDER BY location_id",
        )
        .bind(tenant)
        .bind(sku.as_str())
        .fetch_all(&mut *self.conn(tenant).await?)
        .await?;
        rows.iter()
            .map(|r| {
                let loc: String = r.try_get("location_id")?;
                Ok(StockLevel {
                    sku: sku.clone(),
                    location_id: LocationId::parse(&loc).map_err(|_| corrupt("location id"))?,
                    on_hand: r.try_get("on_hand")?,
                    reserved: r.try_get("reserved")?,
                    held: r.try_get("held")?,
                    safety_stock: r.try_get("safety_stock")?,
                })
            })
            .collect()
    }

    /// Applies one adjustment atomically (idempotently, when given a key and how to render the
    /// answer) and returns the new level. A refused adjustment changes nothing and stores no
    /// answer, so its retry is evaluated again.
    pub async fn adjust_stock(
        &self,
        tenant: &str,
        a: &Adjustment,
        key: Option<(IdempotencyKey, Render<StockLevel>)>,
    ) -> Result<Idempotent<StockLevel>, AdjustError> {
        self.adjust_stock_audited(tenant, a, key, None).await
    }

    /// `adjust_stock`, with an audit entry (on-hand before and after) in the same transaction.
    pub async fn adjust_stock_audited(
        &self,
        tenant: &str,
        a: &Adjustment,
        key: Option<(IdempotencyKey, Render<StockLevel>)>,
        audit: Option<AuditEntry>,
    ) -> Result<Idempotent<StockLevel>, AdjustError> {
        let (t, a) = (tenant.to_string(), a.clone());
        let refused: std::sync::Arc<std::sync::Mutex<Option<AdjustError>>> = Default::default();
        let seen = refused.clone();
        let outcome = self
            .idempotent(tenant, key, move |tx| {
                let (t, a, seen, audit) = (t.clone(), a.clone(), seen.clone(), audit.clone());
                Box::pin(async move {
                    match adjust_in(tx, &t, &a).await? {
                        Ok((level, before)) => {
                            if let Some(who) = &audit {
                                let target = format!("stock:{}@{}", a.sku, a.location_id);
                                let before = serde_json::json!({"on_hand": before}).to_string();
                                let after = serde_json::json!({"on_hand": level.on_hand, "reserved": level.reserved, "held": level.held, "safety_stock": level.safety_stock, "reason": a.reason, "note": a.note}).to_string();
                                crate::audit::append(tx, &t, who, "stock.adjusted", &target, Some(before), Some(after)).await?;
                            }
                            // The change feed's clock is the last lock of the transaction.
                            let row = crate::feed::StockChangeRow {
                                sku: level.sku.to_string(),
                                location_id: level.location_id.to_string(),
                                on_hand: level.on_hand,
                                reserved: level.reserved,
                                held: level.held,
                                safety_stock: level.safety_stock,
                            };
                            let postgres = tx.locks_rows();
                            crate::feed::append(tx, &t, now_ms(), &[row], postgres).await?;
                            Ok((level, true))
                        }
                        Err(e) => {
                            if let Ok(mut s) = seen.lock() {
                                *s = Some(e);
                            }
                            // The value is not used: the refusal travels beside it.
                            Ok((StockLevel { sku: a.sku.clone(), location_id: a.location_id.clone(), on_hand: 0, reserved: 0, held: 0, safety_stock: 0 }, false))
                        }
                    }
                })
            })
            .await?;
        if let Some(e) = refused.lock().ok().and_then(|mut s| s.take()) {
            return Err(e);
        }
        Ok(outcome)
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
        .fetch_one(&mut *self.conn(tenant).await?)
        .await?;
        let allocated: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(quantity), 0) AS BIGINT) FROM order_allocations WHERE tenant_id = $1 AND sku = $2",
        )
        .bind(tenant)
        .bind(sku.as_str())
        .fetch_one(&mut *self.conn(tenant).await?)
        .await?;
        Ok((r.try_get("on_hand")?, r.try_get("reserved")?, allocated))
    }
}

/// The adjustment inside the write path's transaction. `Ok(Err(_))`: refused, nothing to keep.
/// `Ok(Ok((level, on_hand_before)))` when done.
async fn adjust_in(
    tx: &mut Tx<'_>,
    tenant: &str,
    a: &Adjustment,
) -> Result<std::result::Result<(StockLevel, i64), AdjustError>> {
    let t = || Val::from(tenant);
    if tx
        .rows(
            "SELECT 1 FROM products WHERE tenant_id = $1 AND sku = $2",
            vec![t(), a.sku.as_str().into()],
        )
        .await?
        .is_empty()
    {
        return Ok(Err(AdjustError::UnknownSku(a.sku.to_string())));
    }
    if tx
        .rows(
            "SELECT 1 FROM locations WHERE tenant_id = $1 AND id = $2",
            vec![t(), a.location_id.as_str().into()],
        )
        .await?
        .is_empty()
    {
        return Ok(Err(AdjustError::UnknownLocation(a.location_id.to_string())));
    }
    let now = now_ms();
    tx.exec(
        "INSERT INTO stock (tenant_id, sku, location_id, on_hand, reserved, updated_at_ms) VALUES ($1, $2, $3, 0, 0, $4) \
         ON CONFLICT (tenant_id, sku, location_id) DO NOTHING",
        vec![t(), a.sku.as_str().into(), a.location_id.as_str().into(), now.into()],
    )
    .await?;
    // The stock row is the only row an adjustment locks, so it cannot take part in a lock cycle
    // with placements. Locked first on PostgreSQL so the logged delta is exact.
    let lock = if tx.locks_rows() { " FOR UPDATE" } else { "" };
    let before = tx
        .rows(
            &format!("SELECT on_hand FROM stock WHERE tenant_id = $1 AND sku = $2 AND location_id = $3{lock}"),
            vec![t(), a.sku.as_str().into(), a.location_id.as_str().into()],
        )
        .await?;
    let before = before
        .first()
        .ok_or_else(|| corrupt("stock row vanished"))?[0]
        .int()?;
    let sql = match a.change {
        StockChange::Delta(_) | StockChange::SetOnHand(_) => {
            let expr = if matches!(a.change, StockChange::Delta(_)) { "on_hand + $4" } else { "$4" };
            format!(
                "UPDATE stock SET on_hand = {expr}, updated_at_ms = $5 \
                 WHERE tenant_id = $1 AND sku = $2 AND location_id = $3 AND {expr} >= reserved + held \
                 RETURNING on_hand, reserved, held, safety_stock"
            )
        }
        StockChange::SafetyStock(_) => "UPDATE stock SET safety_stock = $4, updated_at_ms = $5 \
             WHERE tenant_id = $1 AND sku = $2 AND location_id = $3 AND $4 >= 0 RETURNING on_hand, reserved, held, safety_stock"
            .to_string(),
    };
    let value = match a.change {
        StockChange::Delta(v) | StockChange::SetOnHand(v) | StockChange::SafetyStock(v) => v,
    };
    let rows = tx
        .rows(
            &sql,
            vec![
                t(),
                a.sku.as_str().into(),
                a.location_id.as_str().into(),
                value.into(),
                now.into(),
            ],
        )
        .await?;
    let Some(row) = rows.first() else {
        let r = tx
            .rows(
                "SELECT on_hand, reserved + held FROM stock WHERE tenant_id = $1 AND sku = $2 AND location_id = $3",
                vec![t(), a.sku.as_str().into(), a.location_id.as_str().into()],
            )
            .await?;
        // Reserved for orders or held for carts at checkout: on-hand cannot go below either.
        let r = r.first().ok_or_else(|| corrupt("stock row vanished"))?;
        let (on_hand, reserved) = (r[0].int()?, r[1].int()?);
        let would_be = match a.change {
            StockChange::Delta(d) => on_hand + d,
            StockChange::SetOnHand(n) => n,
            StockChange::SafetyStock(_) => {
                return Err(corrupt("a negative safety stock reached storage"));
            }
        };
        return Ok(Err(AdjustError::BelowReserved { would_be, reserved }));
    };
    let level = StockLevel {
        sku: a.sku.clone(),
        location_id: a.location_id.clone(),
        on_hand: row[0].int()?,
        reserved: row[1].int()?,
        held: row[2].int()?,
        safety_stock: row[3].int()?,
    };
    tx.exec(
        "INSERT INTO stock_adjustments (tenant_id, sku, location_id, delta, on_hand_after, reason, note, at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        vec![
            t(),
            a.sku.as_str().into(),
            a.location_id.as_str().into(),
            (level.on_hand - before).into(),
            level.on_hand.into(),
            a.reason.as_str().into(),
            a.note.as_deref().into(),
            now.into(),
        ],
    )
    .await?;
    let row = crate::feed::StockChangeRow {
        sku: level.sku.to_string(),
        location_id: level.location_id.to_string(),
        on_hand: level.on_hand,
        reserved: level.reserved,
        held: level.held,
        safety_stock: level.safety_stock,
    };
    crate::events::inventory_updated(tx, tenant, &[row], a.reason.as_str()).await?;
    Ok(Ok((level, before)))
}
