//! The group-commit driver, the same on both backends: it takes the placements that queued up
//! together and feeds them to the placement engine (`engine::place_set`). Placements that repeat
//! an earlier one's idempotency key, payment token or cart go to a later round, so no batch
//! ever holds two claims on one row. Each round runs in its own scope — a transaction of its own
//! on PostgreSQL (so no connection mixes two rounds' locks), a savepoint inside the writer's batch
//! transaction on SQLite (one fsync for everything). If the engine fails a round as a whole,
//! each of its orders is placed again as a batch of one — the same engine, the same lock order.

use crate::engine::place_set;
use crate::orders::{NewOrder, PlaceError};
use crate::sql::Tx;
use crate::{StoreError, corrupt};
use ordo_domain::Order;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How placements are grouped. Documented in README (`--batch-*` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Most orders (or, on SQLite, writes) in one commit.
    pub max_orders: usize,
    /// Longest a worker waits for more orders after the first arrives (0: take what is queued).
    pub max_wait: Duration,
    /// Batches committed concurrently (1 for SQLite's single writer; several for PostgreSQL).
    pub workers: usize,
    /// Most writes waiting in the queue; one more is refused at once (429).
    pub queue_capacity: usize,
}

impl BatchConfig {
    /// The documented defaults: up to 64 orders per commit, no added wait, one writer on
    /// SQLite and two concurrent batches per process on PostgreSQL (measured: more batches in
    /// flight help orders spread over many SKUs a little and hurt a hot SKU a lot, since
    /// batches touching one row queue behind each other; BENCHMARKS.md), 4,096 queued writes.
    pub fn standard(backend: crate::Backend) -> BatchConfig {
        BatchConfig {
            max_orders: 64,
            max_wait: Duration::ZERO,
            workers: match backend {
                crate::Backend::Sqlite => 1,
                crate::Backend::Postgres => 2,
            },
            queue_capacity: 4096,
        }
    }
}

/// Counts a write-path worker as alive for as long as it runs (also through a panic).
pub(crate) struct AliveGuard(pub Arc<AtomicUsize>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Rounds that failed as a whole and were re-placed order by order, since the process started.
pub(crate) static FALLBACKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How a round is made atomic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Each round is a transaction of its own (PostgreSQL); rows are locked `FOR UPDATE`.
    Transaction,
    /// Each round is a savepoint in the caller's open transaction (SQLite's single writer).
    Savepoint,
}

impl Scope {
    /// Opens a round for `tenant` (on PostgreSQL a transaction that sees that tenant's rows only).
    async fn begin(self, tx: &mut Tx<'_>, tenant: &str) -> Result<(), StoreError> {
        match self {
            Scope::Transaction => tx.control(&crate::begin_scoped(tenant)).await,
            Scope::Savepoint => tx.control("SAVEPOINT round").await,
        }
    }
    async fn commit(self, tx: &mut Tx<'_>) -> Result<(), StoreError> {
        tx.control(match self {
            Scope::Transaction => "COMMIT",
            Scope::Savepoint => "RELEASE SAVEPOINT round",
        })
        .await
    }
    async fn rollback(self, tx: &mut Tx<'_>) -> Result<(), StoreError> {
        tx.control(match self {
            Scope::Transaction => "ROLLBACK",
            Scope::Savepoint => "ROLLBACK TO SAVEPOINT round; RELEASE SAVEPOINT round",
        })
        .await
    }
}

/// Splits placements into rounds: a placement goes to the first round where none of its
/// idempotency key, tokens and cart appear yet. Returns the indices of each round, in order.
pub(crate) fn rounds(batch: &[(String, NewOrder)]) -> Vec<Vec<usize>> {
    let mut out: Vec<(HashSet<String>, Vec<usize>)> = Vec::new();
    for (i, (tenant, new)) in batch.iter().enumerate() {
        let mut marks = vec![format!("k\u{1}{tenant}\u{1}{}", new.idempotency_key)];
        marks.extend(
            new.order
                .payments
                .iter()
                .map(|p| format!("t\u{1}{tenant}\u{1}{}", p.token)),
        );
        marks.extend(
            new.order
                .cart_id
                .iter()
                .map(|c| format!("c\u{1}{tenant}\u{1}{c}")),
        );
        match out
            .iter_mut()
            .find(|(seen, _)| marks.iter().all(|m| !seen.contains(m)))
        {
            Some((seen, idx)) => {
                seen.extend(marks);
                idx.push(i);
            }
            None => out.push((marks.into_iter().collect(), vec![i])),
        }
    }
    out.into_iter().map(|(_, idx)| idx).collect()
}

/// Places a batch; answers come back in input order. The caller answers its callers only after
/// the commit that holds them (for `Scope::Savepoint`, its own commit).
pub(crate) async fn place_batch(
    tx: &mut Tx<'_>,
    scope: Scope,
    batch: Vec<(String, NewOrder)>,
) -> Vec<Result<Order, PlaceError>> {
    let mut results: Vec<Option<Result<Order, PlaceError>>> =
        (0..batch.len()).map(|_| None).collect();
    let lock_rows = scope == Scope::Transaction;
    for round in rounds(&batch) {
        // One engine call per tenant within the round.
        let mut tenants: Vec<&str> = round.iter().map(|i| batch[*i].0.as_str()).collect();
        tenants.sort_unstable();
        tenants.dedup();
        for tenant in tenants {
            let idx: Vec<usize> = round
                .iter()
                .copied()
                .filter(|i| batch[*i].0 == tenant)
                .collect();
            let orders: Vec<NewOrder> = idx.iter().map(|i| batch[*i].1.clone()).collect();
            match place_scoped(tx, scope, tenant, orders, lock_rows).await {
                Ok(rs) => {
                    for (i, r) in idx.iter().zip(rs) {
                        results[*i] = Some(r);
                    }
                }
                Err(e) if idx.len() == 1 => results[idx[0]] = Some(Err(place_error(e))),
                Err(e) => {
                    tracing::warn!(error = %e, orders = idx.len(), "a placement batch failed as a whole; placing its orders one by one");
                    metrics::counter!("ordo_batch_fallbacks_total").increment(1);
                    FALLBACKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    for i in idx {
                        results[i] = Some(
                            match place_scoped(
                                tx,
                                scope,
                                tenant,
                                vec![batch[i].1.clone()],
                                lock_rows,
                            )
                            .await
                            {
                                Ok(mut one) => one.pop().unwrap_or_else(|| {
                                    Err(PlaceError::Store(corrupt(
                                        "a batch of one gave no outcome",
                                    )))
                                }),
                                Err(e) => Err(place_error(e)),
                            },
                        );
                    }
                }
            }
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(PlaceError::Store(corrupt("a placement got no outcome")))))
        .collect()
}

/// Stores the gateway's authorization id of every tender of a round, in one statement, at the
/// end of the round (its authorization rows are already locked on PostgreSQL), so it shares the
/// round's commit: an order that failed a check in a committed round leaves its authorizations
/// pending with the gateway's ids, for the service or recovery to void by them. A failure here
/// is logged, never fatal: recovery then voids by Ordo's reference.
async fn record_gateway_ids(tx: &mut Tx<'_>, batch: &[(String, NewOrder)]) {
    use crate::sql::{Sql, Val};
    let mut tenants: Vec<&str> = batch.iter().map(|(t, _)| t.as_str()).collect();
    tenants.sort_unstable();
    tenants.dedup();
    for tenant in tenants {
        let mut pairs: Vec<(String, String)> = batch
            .iter()
            .filter(|(t, _)| t == tenant)
            .flat_map(|(_, b)| {
                b.authorization_ids
                    .iter()
                    .cloned()
                    .zip(b.order.payments.iter().map(|p| p.authorization_id.clone()))
            })
            .collect();
        if pairs.is_empty() {
            continue;
        }
        pairs.sort_unstable();
        let n = crate::engine::padded(pairs.len());
        if let Some(last) = pairs.last().cloned() {
            pairs.resize(n, last);
        }
        let mut args: Vec<Val> = vec![tenant.into()];
        let mut case = String::new();
        let mut keys = Vec::with_capacity(pairs.len());
        for (id, gateway_id) in pairs {
            case.push_str(&format!(
                " WHEN ${} THEN ${}",
                args.len() + 1,
                args.len() + 2
            ));
            keys.push(format!("${}", args.len() + 1));
            args.push(Val::S(id));
            args.push(Val::S(gateway_id));
        }
        let sql = format!(
            "UPDATE payment_authorizations SET gateway_authorization = CASE id{case} END WHERE tenant_id = $1 AND id IN ({})",
            keys.join(", ")
        );
        if let Err(e) = tx.exec(&sql, args).await {
            tracing::warn!(error = %e, "could not store the gateway's authorization ids; recovery will void by reference");
        }
    }
}

/// A whole-batch failure of a batch of one, as that order's outcome.
fn place_error(e: StoreError) -> PlaceError {
    match e {
        StoreError::AuthorizationLost => PlaceError::AuthorizationLost,
        StoreError::CapacityRaced => {
            PlaceError::NoRoute(vec![ordo_domain::routing::ReasonCode::AtCapacity])
        }
        other => PlaceError::Store(other),
    }
}

/// Places one round; a round that lost a race for a node's last daily capacity to another
/// process is placed again (against the new loads) a few times before it fails as a whole.
async fn place_scoped(
    tx: &mut Tx<'_>,
    scope: Scope,
    tenant: &str,
    orders: Vec<NewOrder>,
    lock_rows: bool,
) -> Result<Vec<Result<Order, PlaceError>>, StoreError> {
    let mut attempt = 0;
    loop {
        match place_round(tx, scope, tenant, orders.clone(), lock_rows).await {
            Err(StoreError::CapacityRaced) if attempt < 3 => attempt += 1,
            other => return other,
        }
    }
}

async fn place_round(
    tx: &mut Tx<'_>,
    scope: Scope,
    tenant: &str,
    orders: Vec<NewOrder>,
    lock_rows: bool,
) -> Result<Vec<Result<Order, PlaceError>>, StoreError> {
    let gateway_ids: Vec<(String, NewOrder)> = orders
        .iter()
        .map(|o| (tenant.to_string(), o.clone()))
        .collect();
    scope.begin(tx, tenant).await?;
    let placed = place_set(tx, tenant, orders, lock_rows).await;
    if placed.is_ok() {
        // Last in the round, on rows the round already holds: no lock is taken out of order.
        record_gateway_ids(tx, &gateway_ids).await;
    }
    match placed {
        Ok(rs) => match scope.commit(tx).await {
            Ok(()) => Ok(rs),
            Err(e) => {
                let _ = scope.rollback(tx).await;
                Err(e)
            }
        },
        Err(e) => {
            scope.rollback(tx).await?;
            Err(e)
        }
    }
}
