//! Group commit on PostgreSQL: placements queue here; each of `workers` tasks takes every
//! placement waiting (up to `max_orders`, waiting at most `max_wait` for more), hands them to the
//! group-commit driver (`commit.rs`, each round a transaction of its own) and answers each caller
//! after the commit that holds its order. The queue is bounded: when it is full a placement is
//! refused at once (`StoreError::Busy`, 429 at the API). A worker that panics answers its batch
//! with an error, closes the connection it may have left mid-transaction and goes on; `/readyz`
//! fails if a worker is gone.

use crate::commit::{self, AliveGuard, BatchConfig, Scope};
use crate::orders::{NewOrder, PlaceError};
use crate::sql::Tx;
use crate::{Store, StoreError};
use futures::FutureExt as _;
use ordo_domain::Order;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{Mutex, mpsc, oneshot};

pub(crate) enum Job {
    Place {
        tenant: String,
        new: NewOrder,
        reply: oneshot::Sender<Result<Order, PlaceError>>,
    },
    Halt,
}

/// The handle placements go through on PostgreSQL. Cheap to clone.
#[derive(Clone)]
pub struct Placer {
    queue: mpsc::Sender<Job>,
    alive: Arc<AtomicUsize>,
    workers: usize,
}

impl Placer {
    /// Starts the batch workers on the current runtime.
    pub(crate) fn start(pool: sqlx::AnyPool, config: BatchConfig) -> Placer {
        let (tx, rx) = mpsc::channel::<Job>(config.queue_capacity.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let workers = config.workers.max(1);
        let alive = Arc::new(AtomicUsize::new(workers));
        for _ in 0..workers {
            let (pool, rx, guard) = (pool.clone(), rx.clone(), AliveGuard(alive.clone()));
            tokio::spawn(async move {
                let _guard = guard;
                run_worker(pool, rx, config).await
            });
        }
        Placer {
            queue: tx,
            alive,
            workers,
        }
    }

    /// Holds a place in the queue for a placement to come.
    pub(crate) fn reserve(&self) -> Result<mpsc::OwnedPermit<Job>, StoreError> {
        let r = self.queue.clone().try_reserve_owned().map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => StoreError::Busy,
            mpsc::error::TrySendError::Closed(_) => stopped(),
        });
        metrics::gauge!("ordo_write_queue_depth")
            .set((self.queue.max_capacity() - self.queue.capacity()) as f64);
        r
    }

    /// Places one order in a reserved place; returns after the commit that holds it.
    pub(crate) async fn place_with(
        permit: mpsc::OwnedPermit<Job>,
        tenant: &str,
        new: NewOrder,
    ) -> Result<Order, PlaceError> {
        let (reply, answer) = oneshot::channel();
        permit.send(Job::Place {
            tenant: tenant.to_string(),
            new,
            reply,
        });
        answer.await.map_err(|_| PlaceError::Store(stopped()))?
    }

    pub(crate) fn alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst) == self.workers && !self.queue.is_closed()
    }

    pub(crate) async fn halt(&self) {
        for _ in 0..self.workers {
            let _ = self.queue.send(Job::Halt).await;
        }
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the placement workers stopped".into())
}

async fn run_worker(pool: sqlx::AnyPool, rx: Arc<Mutex<mpsc::Receiver<Job>>>, config: BatchConfig) {
    loop {
        let mut jobs = Vec::with_capacity(config.max_orders);
        {
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(Job::Halt) | None => return,
                Some(job) => jobs.push(job),
            }
            let deadline = tokio::time::Instant::now() + config.max_wait;
            while jobs.len() < config.max_orders {
                let next = match rx.try_recv() {
                    Ok(job) => Some(job),
                    Err(_) if config.max_wait.is_zero() => None,
                    Err(_) => tokio::time::timeout_at(deadline, rx.recv())
                        .await
                        .ok()
                        .flatten(),
                };
                match next {
                    Some(Job::Halt) => {
                        for job in jobs {
                            answer(job, Err(PlaceError::Store(stopped())));
                        }
                        return;
                    }
                    Some(job) => jobs.push(job),
                    None => break,
                }
            }
        }
        metrics::histogram!("ordo_batch_size").record(jobs.len() as f64);
        let batch: Vec<(String, NewOrder)> = jobs
            .iter()
            .filter_map(|j| match j {
                Job::Place { tenant, new, .. } => Some((tenant.clone(), new.clone())),
                Job::Halt => None,
            })
            .collect();
        let started = std::time::Instant::now();
        let results = match pool.acquire().await {
            Err(e) => {
                let e = StoreError::from(e);
                jobs.iter()
                    .map(|_| Err(PlaceError::Store(StoreError::Unavailable(e.to_string()))))
                    .collect()
            }
            Ok(mut conn) => {
                let placed = std::panic::AssertUnwindSafe(commit::place_batch(
                    &mut Tx::Pooled(&mut conn),
                    Scope::Transaction,
                    batch,
                ))
                .catch_unwind()
                .await;
                match placed {
                    Ok(rs) => {
                        metrics::histogram!("ordo_commit_seconds")
                            .record(started.elapsed().as_secs_f64());
                        if rs.iter().any(|r| matches!(r, Err(PlaceError::Store(_)))) {
                            // A failure may have left the connection mid-transaction: never hand it back.
                            conn.close_on_drop();
                        }
                        rs
                    }
                    Err(_) => {
                        tracing::error!(
                            orders = jobs.len(),
                            "a placement worker caught a panic; its batch got an error"
                        );
                        conn.close_on_drop();
                        jobs.iter()
                            .map(|_| {
                                Err(PlaceError::Store(StoreError::Corrupt(
                                    "the placement failed unexpectedly".into(),
                                )))
                            })
                            .collect()
                    }
                }
            }
        };
        for (job, result) in jobs.into_iter().zip(results) {
            answer(job, result);
        }
    }
}

fn answer(job: Job, result: Result<Order, PlaceError>) {
    if let Job::Place { reply, .. } = job {
        let _ = reply.send(result);
    }
}

/// Runs one unit on a pooled connection in a transaction of its own (PostgreSQL). The unit runs
/// in a task of its own, so a caller that goes away (a timed-out request, a client that hung up)
/// never leaves a transaction open on a pooled connection: the unit finishes, commits or rolls
/// back, and only then is the connection handed back. A connection a failure or panic may have
/// left mid-transaction is closed, never reused.
pub(crate) async fn run_unit(
    store: &Store,
    tenant: &str,
    f: crate::unit::UnitFn,
) -> Result<(crate::unit::Erased, bool), StoreError> {
    let (pool, begin) = (store.read.clone(), crate::begin_scoped(tenant));
    let task = tokio::spawn(async move {
        let mut conn = pool.acquire().await?;
        let r = std::panic::AssertUnwindSafe(crate::unit::alone(
            &mut Tx::Pooled(&mut conn),
            &begin,
            &f,
        ))
        .catch_unwind()
        .await;
        match r {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(e)) => {
                conn.close_on_drop();
                Err(e)
            }
            Err(_) => {
                conn.close_on_drop();
                Err(StoreError::Corrupt("a write failed unexpectedly".into()))
            }
        }
    });
    task.await
        .map_err(|e| StoreError::Corrupt(format!("a write task failed: {e}")))?
}

/// Places a batch now on a pooled connection, in a task of its own (see `run_unit`).
pub(crate) async fn place_now(
    store: &Store,
    batch: Vec<(String, NewOrder)>,
) -> Vec<Result<Order, PlaceError>> {
    let (pool, n) = (store.read.clone(), batch.len());
    let task = tokio::spawn(async move {
        let mut conn = match pool.acquire().await {
            Ok(c) => c,
            Err(e) => {
                return (0..n)
                    .map(|_| Err(PlaceError::Store(StoreError::Unavailable(e.to_string()))))
                    .collect();
            }
        };
        let placed = std::panic::AssertUnwindSafe(commit::place_batch(
            &mut Tx::Pooled(&mut conn),
            Scope::Transaction,
            batch,
        ))
        .catch_unwind()
        .await;
        match placed {
            Ok(rs) => {
                if rs.iter().any(|r| matches!(r, Err(PlaceError::Store(_)))) {
                    conn.close_on_drop();
                }
                rs
            }
            Err(_) => {
                conn.close_on_drop();
                (0..n)
                    .map(|_| {
                        Err(PlaceError::Store(StoreError::Corrupt(
                            "the placement failed unexpectedly".into(),
                        )))
                    })
                    .collect()
            }
        }
    });
    task.await.unwrap_or_else(|e| {
        (0..n)
            .map(|_| {
                Err(PlaceError::Store(StoreError::Corrupt(format!(
                    "a placement task failed: {e}"
                ))))
            })
            .collect()
    })
}

/// One checkout's claim statement (`Store::claim_checkout` on PostgreSQL) waiting to be run.
pub(crate) struct ClaimJob {
    /// The idempotency key: claims of a batch run in key order, the order placement rounds lock
    /// idempotency rows in, so a claim batch and a round can never wait on each other in a cycle.
    pub key: String,
    pub tenant: String,
    pub sql: String,
    pub args: Vec<crate::sql::Val>,
    pub reply: oneshot::Sender<Result<Vec<crate::sql::Row>, StoreError>>,
}

/// Claims share commits on PostgreSQL: one worker takes every claim waiting and runs them in one
/// transaction, in key order (a claim touches only its own idempotency row and its own new
/// authorization rows). A lone claim commits by itself.
#[derive(Clone)]
pub(crate) struct Claimer {
    queue: mpsc::Sender<ClaimJob>,
}

impl Claimer {
    pub(crate) fn start(pool: sqlx::AnyPool, max_batch: usize) -> Claimer {
        let (tx, mut rx) = mpsc::channel::<ClaimJob>(4096);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut jobs = vec![first];
                while jobs.len() < max_batch.max(1) {
                    match rx.try_recv() {
                        Ok(j) => jobs.push(j),
                        Err(_) => break,
                    }
                }
                jobs.sort_by(|a, b| a.key.cmp(&b.key));
                let results = run_claims(&pool, &jobs).await;
                for (job, r) in jobs.into_iter().zip(results) {
                    let _ = job.reply.send(r);
                }
            }
        });
        Claimer { queue: tx }
    }

    pub(crate) async fn run(
        &self,
        tenant: &str,
        key: String,
        sql: String,
        args: Vec<crate::sql::Val>,
    ) -> Result<Vec<crate::sql::Row>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(ClaimJob {
                key,
                tenant: tenant.to_string(),
                sql,
                args,
                reply,
            })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// Runs a batch of claims in one transaction (or a lone one by itself); if the transaction
/// fails, each claim again on its own.
async fn run_claims(
    pool: &sqlx::AnyPool,
    jobs: &[ClaimJob],
) -> Vec<Result<Vec<crate::sql::Row>, StoreError>> {
    use crate::sql::Sql;
    let mut conn = match pool.acquire().await {
        Ok(c) => c,
        Err(e) => {
            let e = StoreError::from(e).to_string();
            return jobs
                .iter()
                .map(|_| Err(StoreError::Unavailable(e.clone())))
                .collect();
        }
    };
    // The batch's tenants, for the session (lone claims commit by themselves).
    if let Err(e) = crate::set_scope(
        &mut conn,
        &crate::scopes(jobs.iter().map(|j| j.tenant.as_str())),
    )
    .await
    {
        conn.close_on_drop();
        let e = e.to_string();
        return jobs
            .iter()
            .map(|_| Err(StoreError::Unavailable(e.clone())))
            .collect();
    }
    if jobs.len() > 1 {
        let together = async {
            let mut tx = Tx::Pooled(&mut conn);
            tx.control("BEGIN").await?;
            let mut out = Vec::with_capacity(jobs.len());
            for j in jobs {
                out.push(tx.rows(&j.sql, j.args.clone()).await?);
            }
            tx.control("COMMIT").await?;
            Ok::<_, StoreError>(out)
        };
        match std::panic::AssertUnwindSafe(together).catch_unwind().await {
            Ok(Ok(rows)) => return rows.into_iter().map(Ok).collect(),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, claims = jobs.len(), "a claim batch failed as a whole; claiming one by one");
                if Tx::Pooled(&mut conn).control("ROLLBACK").await.is_err() {
                    conn.close_on_drop();
                    return jobs
                        .iter()
                        .map(|_| Err(StoreError::Unavailable("the claim connection broke".into())))
                        .collect();
                }
            }
            Err(_) => {
                conn.close_on_drop();
                return jobs
                    .iter()
                    .map(|_| Err(StoreError::Corrupt("a claim failed unexpectedly".into())))
                    .collect();
            }
        }
    }
    let mut out = Vec::with_capacity(jobs.len());
    for j in jobs {
        out.push((*conn).rows(&j.sql, j.args.clone()).await);
    }
    out
}
