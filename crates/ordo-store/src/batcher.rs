//! Group commit for order placement. Placements queue here; a worker takes every placement that
//! is waiting (up to `max_orders`, waiting at most `max_wait` for more), commits them in one
//! transaction with `Store::place_batch`, and only then answers each caller. Under load many
//! orders share one commit (and one fsync); alone, an order is placed at once. Per-order
//! atomicity is kept by savepoints; the queue is bounded, so callers wait instead of piling up.

use crate::orders::{NewOrder, PlaceError};
use crate::sql::{Row, Sql, Val};
use crate::{Store, StoreError};
use ordo_domain::Order;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, mpsc, oneshot};

/// How placements are grouped. Documented in README (`--batch-*` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Most orders in one commit.
    pub max_orders: usize,
    /// Longest a worker waits for more orders after the first arrives (0: take what is queued).
    pub max_wait: Duration,
    /// Batches committed concurrently (1 for SQLite's single writer; several for PostgreSQL).
    pub workers: usize,
}

impl BatchConfig {
    /// The documented defaults: up to 64 orders per commit, no added wait, one writer on
    /// SQLite and two concurrent batches per process on PostgreSQL (measured: more batches in
    /// flight help orders spread over many SKUs a little and hurt a hot SKU a lot, since
    /// batches touching one row queue behind each other; BENCHMARKS.md).
    pub fn standard(backend: crate::Backend) -> BatchConfig {
        BatchConfig {
            max_orders: 64,
            max_wait: Duration::ZERO,
            workers: match backend {
                crate::Backend::Sqlite => 1,
                crate::Backend::Postgres => 2,
            },
        }
    }
}

enum Job {
    Place { tenant: String, new: NewOrder, reply: oneshot::Sender<Result<Order, PlaceError>> },
    /// A single write statement (cart, token, authorization record) sharing the batch's commit.
    Write { sql: String, args: Vec<Val>, reply: oneshot::Sender<Result<Vec<Row>, StoreError>> },
}

/// The handle services place orders through. Cheap to clone.
#[derive(Clone)]
pub struct Placer {
    queue: mpsc::Sender<Job>,
}

impl Placer {
    /// Starts the batch workers on the current runtime.
    pub fn start(store: Store, config: BatchConfig) -> Placer {
        let (tx, rx) = mpsc::channel::<Job>(config.max_orders.max(1) * 64);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..config.workers.max(1) {
            let (store, rx) = (store.clone(), rx.clone());
            tokio::spawn(async move { run_worker(store, rx, config).await });
        }
        Placer { queue: tx }
    }

    /// Places one order; returns after the commit that holds it (or its failure).
    pub async fn place(&self, tenant: &str, new: NewOrder) -> Result<Order, PlaceError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job::Place { tenant: tenant.to_string(), new, reply })
            .await
            .map_err(|_| PlaceError::Store(StoreError::Corrupt("the placement queue is closed".into())))?;
        answer.await.map_err(|_| PlaceError::Store(StoreError::Corrupt("the placement worker stopped".into())))?
    }

    /// Runs one write statement in the next batch's commit; returns its rows.
    pub(crate) async fn write(&self, sql: &str, args: Vec<Val>) -> Result<Vec<Row>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job::Write { sql: sql.to_string(), args, reply })
            .await
            .map_err(|_| StoreError::Corrupt("the write queue is closed".into()))?;
        answer.await.map_err(|_| StoreError::Corrupt("the write worker stopped".into()))?
    }
}

async fn run_worker(store: Store, rx: Arc<Mutex<mpsc::Receiver<Job>>>, config: BatchConfig) {
    loop {
        let mut jobs = Vec::with_capacity(config.max_orders);
        {
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(job) => jobs.push(job),
                None => return,
            }
            let deadline = tokio::time::Instant::now() + config.max_wait;
            while jobs.len() < config.max_orders {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) if config.max_wait.is_zero() => break,
                    Err(_) => match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(job)) => jobs.push(job),
                        _ => break,
                    },
                }
            }
        }
        let mut places = Vec::new();
        let mut place_replies = Vec::new();
        let mut writes = Vec::new();
        for job in jobs {
            match job {
                Job::Place { tenant, new, reply } => {
                    places.push((tenant, new));
                    place_replies.push(reply);
                }
                Job::Write { sql, args, reply } => writes.push((sql, args, reply)),
            }
        }
        if !writes.is_empty() {
            for (reply, result) in run_writes(&store, &writes).await.into_iter().zip(writes.into_iter().map(|w| w.2)).map(|(r, reply)| (reply, r)) {
                let _ = reply.send(result);
            }
        }
        if !places.is_empty() {
            let results = store.place_batch(places).await;
            for (reply, result) in place_replies.into_iter().zip(results) {
                let _ = reply.send(result);
            }
        }
    }
}

/// Runs the batch's write statements in one transaction (one commit); if that fails, each one
/// on its own.
async fn run_writes(store: &Store, writes: &[(String, Vec<Val>, oneshot::Sender<Result<Vec<Row>, StoreError>>)]) -> Vec<Result<Vec<Row>, StoreError>> {
    async fn together(store: &Store, writes: &[(String, Vec<Val>, oneshot::Sender<Result<Vec<Row>, StoreError>>)]) -> Result<Vec<Vec<Row>>, StoreError> {
        let mut tx = store.begin_write().await?;
        let mut out = Vec::with_capacity(writes.len());
        for (sql, args, _) in writes {
            out.push((*tx).rows(sql, args.clone()).await?);
        }
        tx.commit().await?;
        Ok(out)
    }
    if writes.len() == 1 {
        // Alone, a statement commits by itself: one round trip instead of three.
        let (sql, args, _) = &writes[0];
        return vec![store.write_direct(sql, args.clone()).await];
    }
    match together(store, writes).await {
        Ok(rows) => rows.into_iter().map(Ok).collect(),
        Err(_) => {
            let mut out = Vec::with_capacity(writes.len());
            for (sql, args, _) in writes {
                out.push(store.write_direct(sql, args.clone()).await);
            }
            out
        }
    }
}
