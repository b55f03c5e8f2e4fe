//! The inventory change feed: every change of a stock row (placements, adjustments, safety
//! stock) appended in the transaction that made it, numbered per tenant in commit order.
//!
//! Numbering: a writer takes the tenant's feed clock (`feed_clock`, one row per tenant) as the
//! last statement before its commit. On PostgreSQL the clock row stays locked until the commit is
//! visible, so the next writer's numbers come after it — a reader that has seen change `n` has
//! seen every change numbered below `n`, and a cursor never skips one. SQLite has one writer at a
//! time. The clock is the last lock any transaction takes (after stock rows and every other row
//! of the placement lock order), so it joins no lock cycle.

use crate::sql::{Sql, Val};
use crate::{StoreError, corrupt};

/// One stock row after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockChangeRow {
    pub sku: String,
    pub location_id: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub held: i64,
    pub safety_stock: i64,
}

/// One feed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    pub seq: i64,
    pub change: StockChangeRow,
    pub at_ms: i64,
}

/// Appends `rows` (in the order given) to the tenant's feed; the last statement of the writing
/// transaction.
pub(crate) async fn append<S: Sql>(
    tx: &mut S,
    tenant: &str,
    now_ms: i64,
    rows: &[StockChangeRow],
    postgres: bool,
) -> Result<(), StoreError> {
    append_with(tx, tenant, now_ms, rows, postgres, None).await
}

/// Rows for another table (`INSERT INTO t (columns) VALUES` and each row's values) that the
/// appending statement inserts too, on PostgreSQL: one round trip less inside a round's locks.
pub(crate) type AlsoInsert<'a> = Option<(&'a str, &'a [Vec<Val>])>;

/// `append`, inserting `also`'s rows in the same statement on PostgreSQL (in a statement of
/// their own before it elsewhere).
pub(crate) async fn append_with<S: Sql>(
    tx: &mut S,
    tenant: &str,
    now_ms: i64,
    rows: &[StockChangeRow],
    postgres: bool,
    also: AlsoInsert<'_>,
) -> Result<(), StoreError> {
    let also = also.filter(|(_, r)| !r.is_empty());
    let also_params = also.map_or(0, |(_, r)| r.iter().map(Vec::len).sum::<usize>());
    let combined = postgres && !rows.is_empty() && rows.len() <= 2000 && also_params <= 20_000;
    if let (false, Some((head, also_rows))) = (combined, also) {
        for chunk in also_rows.chunks(1000) {
            let mut args: Vec<Val> = Vec::new();
            let values = value_rows(chunk, &mut args);
            tx.exec(&format!("{head} {values}"), args).await?;
        }
    }
    if rows.is_empty() {
        return Ok(());
    }
    let n = rows.len() as i64;
    if combined {
        // One round trip: take the clock and append in one statement.
        let mut args: Vec<Val> = vec![tenant.into(), n.into(), now_ms.into()];
        let mut values = Vec::with_capacity(rows.len());
        for (i, r) in rows.iter().enumerate() {
            let b = args.len();
            values.push(format!(
                "(CAST(${} AS BIGINT), CAST(${} AS TEXT), CAST(${} AS TEXT), CAST(${} AS BIGINT), CAST(${} AS BIGINT), CAST(${} AS BIGINT), CAST(${} AS BIGINT))",
                b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7
            ));
            args.extend([
                Val::I(i as i64 + 1),
                Val::from(r.sku.as_str()),
                Val::from(r.location_id.as_str()),
                Val::I(r.on_hand),
                Val::I(r.reserved),
                Val::I(r.held),
                Val::I(r.safety_stock),
            ]);
        }
        let mut extra = String::new();
        if let Some((head, also_rows)) = also {
            let also_values = value_rows(also_rows, &mut args);
            extra = format!("a AS ({head} {also_values} RETURNING 1), ");
        }
        let sql = format!(
            "WITH {extra}c AS (INSERT INTO feed_clock (tenant_id, last_seq) VALUES ($1, $2) \
               ON CONFLICT (tenant_id) DO UPDATE SET last_seq = feed_clock.last_seq + excluded.last_seq RETURNING last_seq) \
             INSERT INTO inventory_changes (tenant_id, seq, sku, location_id, on_hand, reserved, held, safety_stock, at_ms) \
             SELECT $1, c.last_seq - $2 + v.n, v.sku, v.loc, v.on_hand, v.reserved, v.held, v.safety, $3 \
             FROM c, (VALUES {}) AS v(n, sku, loc, on_hand, reserved, held, safety)",
            values.join(", ")
        );
        tx.exec(&sql, args).await?;
        return Ok(());
    }
    let clock = tx
        .rows(
            "INSERT INTO feed_clock (tenant_id, last_seq) VALUES ($1, $2) \
             ON CONFLICT (tenant_id) DO UPDATE SET last_seq = feed_clock.last_seq + excluded.last_seq RETURNING last_seq",
            vec![tenant.into(), n.into()],
        )
        .await?;
    let last = clock
        .first()
        .ok_or_else(|| corrupt("the feed clock returned no row"))?[0]
        .int()?;
    let first = last - n + 1;
    // 9 values a row; well below every bound-parameter limit per chunk.
    for (c, chunk) in rows.chunks(1000).enumerate() {
        let mut args: Vec<Val> = Vec::with_capacity(chunk.len() * 9);
        let mut values = Vec::with_capacity(chunk.len());
        for (i, r) in chunk.iter().enumerate() {
            let b = args.len();
            values.push(format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
                b + 8,
                b + 9
            ));
            let seq = first + (c * 1000 + i) as i64;
            args.extend([
                Val::from(tenant),
                Val::I(seq),
                Val::from(r.sku.as_str()),
                Val::from(r.location_id.as_str()),
                Val::I(r.on_hand),
                Val::I(r.reserved),
                Val::I(r.held),
                Val::I(r.safety_stock),
                Val::I(now_ms),
            ]);
        }
        let sql = format!(
            "INSERT INTO inventory_changes (tenant_id, seq, sku, location_id, on_hand, reserved, held, safety_stock, at_ms) VALUES {}",
            values.join(", ")
        );
        tx.exec(&sql, args).await?;
    }
    Ok(())
}

/// `($n, $n+1, …), …` for `rows`, numbered after the `args` already bound; binds the rows' values.
fn value_rows(rows: &[Vec<Val>], args: &mut Vec<Val>) -> String {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(format!(
            "({})",
            (0..r.len())
                .map(|k| format!("${}", args.len() + k + 1))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        args.extend(r.iter().cloned());
    }
    out.join(", ")
}

impl crate::Store {
    /// Feed entries after `after` (0: from the beginning), oldest first, at most `limit`.
    pub async fn inventory_changes(
        &self,
        tenant: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<FeedEntry>, StoreError> {
        let rows = self
            .read_rows(
                tenant,
                "SELECT seq, sku, location_id, on_hand, reserved, held, safety_stock, at_ms FROM inventory_changes \
                 WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                vec![tenant.into(), after.into(), limit.into()],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(FeedEntry {
                    seq: r[0].int()?,
                    change: StockChangeRow {
                        sku: r[1].text()?,
                        location_id: r[2].text()?,
                        on_hand: r[3].int()?,
                        reserved: r[4].int()?,
                        held: r[5].int()?,
                        safety_stock: r[6].int()?,
                    },
                    at_ms: r[7].int()?,
                })
            })
            .collect()
    }

    /// The number of the tenant's latest change (0 when none): where a reader that is up to date
    /// polls from.
    pub async fn inventory_feed_head(&self, tenant: &str) -> Result<i64, StoreError> {
        let rows = self
            .read_rows(
                tenant,
                "SELECT last_seq FROM feed_clock WHERE tenant_id = $1",
                vec![tenant.into()],
            )
            .await?;
        rows.first().map_or(Ok(0), |r| r[0].int())
    }
}
