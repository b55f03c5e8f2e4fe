//! Placing and reading orders. `place_order` is the one atomic step of checkout: idempotency
//! record, price re-check, promotion usage, token use, stock reservation, the order with its
//! lines, allocations and tenders, and the `OrderPlaced` outbox event commit together or not at
//! all. Locks are taken in one global order (idempotency key, promotion codes, tokens, SKUs
//! sorted) so concurrent placements on PostgreSQL cannot deadlock.

use crate::{Result, Store, StoreError, corrupt, now_ms};
use ordo_domain::order::Allocation;
use ordo_domain::stock::plan_reservation;
use ordo_domain::{LocationId, Money, Order, OrderNumber, Sku};
use crate::sql::{Sql, Val};
use crate::placeholders;
use sqlx::Row;
use std::collections::HashMap;

/// A fully priced order ready to commit (its `allocations` are filled in by the store).
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub order: Order,
    /// Who per-customer promotion limits count against.
    pub customer_key: String,
    pub idempotency_key: String,
    /// Hash of the canonical request body; a reused key with another body is refused.
    pub request_hash: String,
    /// Ordo's ids of this order's pending authorizations; they become `attached` with the order.
    pub authorization_ids: Vec<String>,
}

/// The stored first answer to an idempotent request.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyRecord {
    pub request_hash: String,
    pub status: i64,
    pub response: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Shortage {
    pub sku: Sku,
    pub requested: i64,
    pub available: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error("the idempotency key was used by another request")]
    KeyTaken(IdempotencyRecord),
    #[error("not enough stock")]
    Shortage(Vec<Shortage>),
    #[error("prices changed")]
    PriceMoved(Vec<(Sku, Money, Option<Money>)>),
    #[error("promotion {0} has reached its usage limit")]
    PromotionExhausted(String),
    #[error("promotion {0} has reached its per-customer limit")]
    CustomerLimitReached(String),
    #[error("payment token {0} was already used")]
    TokenUsed(usize),
    #[error("an authorization of this order was voided before it committed")]
    AuthorizationLost,
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

/// How often a reservation retries after a concurrent writer took the units it planned on.
const RESERVE_ATTEMPTS: usize = 64;

impl Store {
    pub async fn idempotency_record(&self, tenant: &str, key: &str) -> Result<Option<IdempotencyRecord>> {
        let rows = self
            .read_rows("SELECT request_hash, status, response FROM idempotency WHERE tenant_id = $1 AND key = $2", vec![tenant.into(), key.into()])
            .await?;
        rows.first().map(|r| Ok(IdempotencyRecord { request_hash: r[0].text()?, status: r[1].int()?, response: r[2].opt_text()? })).transpose()
    }

    /// Commits one order atomically, or nothing. Returns the order with its allocations.
    pub async fn place_order(&self, tenant: &str, new: NewOrder) -> Result<Order, PlaceError> {
        let mut tx = self.begin_write().await?;
        let order = place_in_tx(&mut *tx, tenant, new).await?;
        tx.commit().await?;
        Ok(order)
    }

    /// Group commit: places several orders in one transaction and one commit with a fixed
    /// number of statements (`batch::place_set`). Answers come back in input order, and only
    /// after the commit. One order's failure (stock short, stale price, used token, reused key)
    /// never fails its batch-mates. If the batch as a whole fails, every order is placed again
    /// on its own: nothing was committed, or the retry meets its own idempotency key. Orders that
    /// repeat a batch-mate's idempotency key or token are placed after it, on their own.
    pub async fn place_batch(&self, batch: Vec<(String, NewOrder)>) -> Vec<Result<Order, PlaceError>> {
        let mut results: Vec<Option<Result<Order, PlaceError>>> = (0..batch.len()).map(|_| None).collect();
        // Group by tenant; set aside repeats of a key or token within the batch.
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        let mut later: Vec<usize> = Vec::new();
        let mut seen_keys = std::collections::HashSet::new();
        let mut seen_tokens = std::collections::HashSet::new();
        for (i, (tenant, new)) in batch.iter().enumerate() {
            let key = (tenant.clone(), new.idempotency_key.clone());
            let mut tokens: Vec<(String, String)> = new.order.payments.iter().map(|p| (tenant.clone(), p.token.clone())).collect();
            tokens.extend(new.order.cart_id.iter().map(|c| (tenant.clone(), format!("cart:{c}"))));
            if seen_keys.contains(&key) || tokens.iter().any(|t| seen_tokens.contains(t)) {
                later.push(i);
                continue;
            }
            seen_keys.insert(key);
            seen_tokens.extend(tokens);
            match groups.iter_mut().find(|(t, _)| t == tenant) {
                Some((_, idx)) => idx.push(i),
                None => groups.push((tenant.clone(), vec![i])),
            }
        }
        for (tenant, idx) in groups {
            let orders: Vec<NewOrder> = idx.iter().map(|i| batch[*i].1.clone()).collect();
            match self.try_set(&tenant, orders).await {
                Ok(rs) => {
                    for (i, r) in idx.iter().zip(rs) {
                        results[*i] = Some(r);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, orders = idx.len(), "batch failed as a whole; placing its orders one by one");
                    self.fallbacks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    for i in idx {
                        results[i] = Some(self.place_order(&tenant, batch[i].1.clone()).await);
                    }
                }
            }
        }
        for i in later {
            results[i] = Some(self.place_order(&batch[i].0, batch[i].1.clone()).await);
        }
        results.into_iter().map(|r| r.unwrap_or_else(|| Err(PlaceError::Store(corrupt("no outcome"))))).collect()
    }

    async fn try_set(&self, tenant: &str, orders: Vec<NewOrder>) -> Result<Vec<Result<Order, PlaceError>>, StoreError> {
        let mut tx = self.begin_write().await?;
        let results = crate::batch::place_set(&mut *tx, tenant, orders, self.backend == crate::Backend::Postgres).await?;
        tx.commit().await?;
        Ok(results)
    }

    /// An order by internal id (`ord_…`) or by number (`ORD-…`).
    pub async fn order(&self, tenant: &str, id_or_number: &str) -> Result<Option<Order>> {
        let by_number = OrderNumber::parse(id_or_number).ok();
        let row = match by_number {
            Some(n) => sqlx::query("SELECT body FROM orders WHERE tenant_id = $1 AND number = $2").bind(tenant).bind(n.as_str().to_string()),
            None => sqlx::query("SELECT body FROM orders WHERE tenant_id = $1 AND id = $2").bind(tenant).bind(id_or_number.to_string()),
        }
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| {
            let body: String = r.try_get("body")?;
            serde_json::from_str(&body).map_err(corrupt)
        })
        .transpose()
    }

    pub async fn count_orders(&self, tenant: &str) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE tenant_id = $1").bind(tenant).fetch_one(&self.read).await?)
    }
}

pub(crate) async fn place_in_tx<S: Sql>(tx: &mut S, tenant: &str, new: NewOrder) -> Result<Order, PlaceError> {
    let NewOrder { mut order, customer_key, idempotency_key, request_hash, authorization_ids } = new;
    let now = now_ms();
    let order_id = order.id.to_string();

    // 1. Claim the idempotency key. A concurrent holder of the same key makes this wait on
    //    PostgreSQL until it commits; then the conflict shows and the caller replays its answer.
    let claimed = tx
        .exec(
            "INSERT INTO idempotency (tenant_id, key, request_hash, status, response, created_at_ms) VALUES ($1, $2, $3, 0, NULL, $4) \
             ON CONFLICT (tenant_id, key) DO NOTHING",
            vec![tenant.into(), (&idempotency_key).into(), (&request_hash).into(), now.into()],
        )
        .await?;
    if claimed == 0 {
        let rows = tx
            .rows(
                "SELECT request_hash, status, response FROM idempotency WHERE tenant_id = $1 AND key = $2",
                vec![tenant.into(), (&idempotency_key).into()],
            )
            .await?;
        let r = rows.first().ok_or_else(|| corrupt("idempotency record vanished"))?;
        return Err(PlaceError::KeyTaken(IdempotencyRecord { request_hash: r[0].text()?, status: r[1].int()?, response: r[2].opt_text()? }));
    }

    // 2. Prices must be the ones the order was priced with (one query for all lines).
    let mut args: Vec<Val> = vec![tenant.into()];
    args.extend(order.lines.iter().map(|l| Val::from(l.sku.as_str())));
    let sql = format!("SELECT sku, price_amount, currency FROM products WHERE tenant_id = $1 AND sku IN ({})", placeholders(2, order.lines.len()));
    let mut current: HashMap<String, Money> = HashMap::with_capacity(order.lines.len());
    for r in tx.rows(&sql, args).await? {
        if let Ok(c) = ordo_domain::Currency::parse(&r[2].text()?) {
            current.insert(r[0].text()?, Money::new(r[1].int()?, c));
        }
    }
    let moved: Vec<(Sku, Money, Option<Money>)> = order
        .lines
        .iter()
        .filter(|l| current.get(l.sku.as_str()) != Some(&l.unit_price))
        .map(|l| (l.sku.clone(), l.unit_price, current.get(l.sku.as_str()).copied()))
        .collect();
    if !moved.is_empty() {
        return Err(PlaceError::PriceMoved(moved));
    }

    // 3. Count promotion usage (the row update serialises redemptions of one code).
    let mut codes: Vec<&str> = order.promotions.iter().map(|p| p.code.as_str()).collect();
    codes.sort_unstable();
    for code in codes {
        let rows = tx
            .rows(
                "UPDATE promotions SET times_used = times_used + 1 WHERE tenant_id = $1 AND code = $2 \
                 AND (usage_limit IS NULL OR times_used < usage_limit) RETURNING body",
                vec![tenant.into(), code.into()],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Err(PlaceError::PromotionExhausted(code.to_string()));
        };
        let promo: ordo_domain::promotion::Promotion = serde_json::from_str(&row[0].text()?).map_err(corrupt)?;
        if let Some(limit) = promo.per_customer_limit {
            let used = tx
                .rows(
                    "SELECT COUNT(*) FROM promotion_redemptions WHERE tenant_id = $1 AND code = $2 AND customer_key = $3",
                    vec![tenant.into(), code.into(), (&customer_key).into()],
                )
                .await?;
            if used.first().map(|r| r[0].int()).transpose()?.unwrap_or(0) >= limit {
                return Err(PlaceError::CustomerLimitReached(code.to_string()));
            }
        }
        tx.exec(
            "INSERT INTO promotion_redemptions (tenant_id, code, customer_key, order_id) VALUES ($1, $2, $3, $4)",
            vec![tenant.into(), code.into(), (&customer_key).into(), (&order_id).into()],
        )
        .await?;
    }

    // 4. Each token pays for one order only.
    for (i, tender) in order.payments.iter().enumerate() {
        let used = tx
            .exec(
                "UPDATE payment_tokens SET order_id = $3 WHERE tenant_id = $1 AND token = $2 AND order_id IS NULL",
                vec![tenant.into(), (&tender.token).into(), (&order_id).into()],
            )
            .await?;
        if used == 0 {
            return Err(PlaceError::TokenUsed(i));
        }
    }

    // 4b. A cart becomes an order once.
    if let Some(cart_id) = &order.cart_id {
        let taken = tx
            .exec(
                "UPDATE carts SET order_id = $3 WHERE tenant_id = $1 AND id = $2 AND order_id IS NULL",
                vec![tenant.into(), cart_id.into(), (&order_id).into()],
            )
            .await?;
        if taken == 0 {
            return Err(PlaceError::CartOrdered(cart_id.clone()));
        }
    }

    // 5. Reserve stock, SKUs in sorted order.
    let mut wanted: Vec<(Sku, i64)> = Vec::new();
    for l in &order.lines {
        match wanted.iter_mut().find(|(s, _)| *s == l.sku) {
            Some(w) => w.1 += l.quantity,
            None => wanted.push((l.sku.clone(), l.quantity)),
        }
    }
    wanted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut allocations = Vec::new();
    let mut shortages = Vec::new();
    for (sku, qty) in &wanted {
        match reserve(tx, tenant, sku, *qty, now).await? {
            Ok(mut taken) => allocations.append(&mut taken),
            Err(available) => shortages.push(Shortage { sku: sku.clone(), requested: *qty, available }),
        }
    }
    if !shortages.is_empty() {
        return Err(PlaceError::Shortage(shortages));
    }
    order.allocations = allocations;

    // 6. The order, its lines, allocations, tenders, authorizations and the outbox event.
    let mut body;
    loop {
        body = serde_json::to_string(&order).map_err(corrupt)?;
        let inserted = tx
            .exec(
                "INSERT INTO orders (tenant_id, id, number, status, channel, email, currency, total, body, created_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (tenant_id, number) DO NOTHING",
                vec![
                    tenant.into(),
                    (&order_id).into(),
                    order.number.as_str().into(),
                    order.status.as_str().into(),
                    (&order.channel).into(),
                    order.customer.email().into(),
                    order.totals.total.currency.code().into(),
                    order.totals.total.amount.into(),
                    (&body).into(),
                    now.into(),
                ],
            )
            .await?;
        if inserted == 1 {
            break;
        }
        // 40 random bits rarely collide; when they do, draw again.
        order.number = OrderNumber::generate();
    }
    insert_rows(
        tx,
        "INSERT INTO order_lines (tenant_id, order_id, line_no, sku, quantity, unit_price) VALUES ",
        6,
        order.lines.iter().map(|l| vec![tenant.into(), (&order_id).into(), l.line_no.into(), l.sku.as_str().into(), l.quantity.into(), l.unit_price.amount.into()]),
    )
    .await?;
    insert_rows(
        tx,
        "INSERT INTO order_allocations (tenant_id, order_id, sku, location_id, quantity) VALUES ",
        5,
        order.allocations.iter().map(|a| vec![tenant.into(), (&order_id).into(), a.sku.as_str().into(), a.location_id.as_str().into(), a.quantity.into()]),
    )
    .await?;
    insert_rows(
        tx,
        "INSERT INTO order_payments (tenant_id, order_id, tender_no, token, amount, currency, authorization_id, status) VALUES ",
        8,
        order.payments.iter().enumerate().map(|(i, t)| {
            vec![
                tenant.into(),
                (&order_id).into(),
                (i as i64).into(),
                (&t.token).into(),
                t.amount.amount.into(),
                t.amount.currency.code().into(),
                (&t.authorization_id).into(),
                "authorized".into(),
            ]
        }),
    )
    .await?;
    if !authorization_ids.is_empty() {
        let sql = format!(
            "UPDATE payment_authorizations SET status = 'attached', order_id = $2, updated_at_ms = $3 \
             WHERE tenant_id = $1 AND status = 'pending' AND id IN ({})",
            placeholders(4, authorization_ids.len())
        );
        let mut args: Vec<Val> = vec![tenant.into(), (&order_id).into(), now.into()];
        args.extend(authorization_ids.iter().map(Val::from));
        if tx.exec(&sql, args).await? != authorization_ids.len() as u64 {
            // Recovery voided one of them already: this order must not be placed on it.
            return Err(PlaceError::AuthorizationLost);
        }
    }
    tx.exec(
        "INSERT INTO outbox (tenant_id, event_type, aggregate_id, payload, created_at_ms) VALUES ($1, 'OrderPlaced', $2, $3, $4)",
        vec![tenant.into(), (&order_id).into(), (&body).into(), now.into()],
    )
    .await?;

    // 7. Remember the answer under the idempotency key.
    tx.exec(
        "UPDATE idempotency SET status = 201, response = $3 WHERE tenant_id = $1 AND key = $2",
        vec![tenant.into(), (&idempotency_key).into(), body.into()],
    )
    .await?;
    Ok(order)
}

/// Reserves `qty` units of `sku` across locations. `Ok(Err(available))` when the network
/// cannot cover it. Each step is a conditional update, so a concurrent writer can only make
/// this retry with fresh numbers, never oversell.
async fn reserve<S: Sql>(tx: &mut S, tenant: &str, sku: &Sku, qty: i64, now: i64) -> Result<std::result::Result<Vec<Allocation>, i64>, PlaceError> {
    // Fast path: one location covers the whole quantity (one statement; the outer condition
    // re-checks availability, so a concurrent writer can only make it miss, never oversell).
    let fast = tx
        .rows(
            "UPDATE stock SET reserved = reserved + $3, updated_at_ms = $4 \
             WHERE tenant_id = $1 AND sku = $2 AND on_hand - reserved >= $3 AND location_id = \
               (SELECT location_id FROM stock WHERE tenant_id = $1 AND sku = $2 AND on_hand - reserved >= $3 \
                ORDER BY on_hand - reserved DESC, location_id LIMIT 1) \
             RETURNING location_id",
            vec![tenant.into(), sku.as_str().into(), qty.into(), now.into()],
        )
        .await?;
    if let Some(r) = fast.first() {
        let location_id = LocationId::parse(&r[0].text()?).map_err(|_| corrupt("location id"))?;
        return Ok(Ok(vec![Allocation { sku: sku.clone(), location_id, quantity: qty }]));
    }
    let mut taken: Vec<Allocation> = Vec::new();
    let mut left = qty;
    for _ in 0..RESERVE_ATTEMPTS {
        let rows = tx
            .rows(
                "SELECT location_id, on_hand - reserved FROM stock WHERE tenant_id = $1 AND sku = $2 AND on_hand > reserved",
                vec![tenant.into(), sku.as_str().into()],
            )
            .await?;
        let mut levels = Vec::with_capacity(rows.len());
        for r in &rows {
            levels.push((LocationId::parse(&r[0].text()?).map_err(|_| corrupt("location id"))?, r[1].int()?));
        }
        let Some(plan) = plan_reservation(&levels, left) else {
            let available: i64 = levels.iter().map(|l| l.1).sum::<i64>() + (qty - left);
            return Ok(Err(available));
        };
        for (loc, q) in plan {
            let done = tx
                .exec(
                    "UPDATE stock SET reserved = reserved + $4, updated_at_ms = $5 \
                     WHERE tenant_id = $1 AND sku = $2 AND location_id = $3 AND on_hand - reserved >= $4",
                    vec![tenant.into(), sku.as_str().into(), loc.as_str().into(), q.into(), now.into()],
                )
                .await?;
            if done == 1 {
                left -= q;
                match taken.iter_mut().find(|a| a.location_id == loc) {
                    Some(a) => a.quantity += q,
                    None => taken.push(Allocation { sku: sku.clone(), location_id: loc, quantity: q }),
                }
            }
        }
        if left == 0 {
            return Ok(Ok(taken));
        }
    }
    Err(PlaceError::Store(StoreError::Corrupt(format!("could not reserve {sku} after {RESERVE_ATTEMPTS} attempts"))))
}

/// `INSERT … VALUES (…), (…)` for all rows in one statement.
async fn insert_rows<S: Sql>(tx: &mut S, head: &'static str, width: usize, rows: impl Iterator<Item = Vec<Val>>) -> Result<(), StoreError> {
    let rows: Vec<Vec<Val>> = rows.collect();
    if rows.is_empty() {
        return Ok(());
    }
    let mut sql = String::from(head);
    for r in 0..rows.len() {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        sql.push_str(&placeholders(r * width + 1, width));
        sql.push(')');
    }
    tx.exec(&sql, rows.into_iter().flatten().collect()).await?;
    Ok(())
}
