//! The embedded database's writer: one thread owns SQLite's write connection (rusqlite) and
//! commits everything that is queued together — order placements (set-based, `batch.rs`), carts,
//! payment tokens, authorization records — in one transaction with one fsync.
//! Callers are answered only after that commit. A whole batch runs without a thread hop per
//! statement, which is what keeps the single writer fast. If the batch as a whole fails, every
//! job runs again in a transaction of its own.

use crate::batcher::BatchConfig;
use crate::batch::place_set;
use crate::orders::{NewOrder, PlaceError, place_in_tx};
use crate::sql::{Embedded, Row, Val, embedded};
use crate::StoreError;
use ordo_domain::Order;
use std::path::Path;
use tokio::sync::{mpsc, oneshot};

pub(crate) enum Job {
    Place { tenant: String, new: NewOrder, reply: oneshot::Sender<Result<Order, PlaceError>> },
    Write { sql: String, args: Vec<Val>, reply: oneshot::Sender<Result<Vec<Row>, StoreError>> },
}

enum Outcome {
    Placed(Result<Order, PlaceError>),
    Wrote(Result<Vec<Row>, StoreError>),
}

#[derive(Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Job>,
}

impl Writer {
    /// Opens the write connection on `file` and starts the writer thread.
    pub fn start(file: &Path, batch: BatchConfig) -> Result<Writer, StoreError> {
        let conn = rusqlite::Connection::open(file).map_err(embedded)?;
        // FULL: every commit is fsync'd before its callers hear of it. Savepoint journals stay in
        // memory.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000; \
             PRAGMA temp_store = MEMORY;",
        )
        .map_err(embedded)?;
        conn.set_prepared_statement_cache_capacity(64);
        let (tx, rx) = mpsc::channel::<Job>(batch.max_orders.max(1) * 64);
        std::thread::Builder::new()
            .name("ordo-sqlite-writer".into())
            .spawn(move || run(conn, rx, batch))
            .map_err(|e| StoreError::Embedded(e.to_string()))?;
        Ok(Writer { queue: tx })
    }

    pub async fn place(&self, tenant: &str, new: NewOrder) -> Result<Order, PlaceError> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Job::Place { tenant: tenant.to_string(), new, reply }).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    pub async fn write(&self, sql: &str, args: Vec<Val>) -> Result<Vec<Row>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Job::Write { sql: sql.to_string(), args, reply }).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Embedded("the SQLite writer stopped".into())
}

fn run(mut conn: rusqlite::Connection, mut rx: mpsc::Receiver<Job>, batch: BatchConfig) {
    loop {
        let Some(first) = rx.blocking_recv() else { return };
        let mut jobs = vec![first];
        let deadline = std::time::Instant::now() + batch.max_wait;
        while jobs.len() < batch.max_orders {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) if std::time::Instant::now() >= deadline => break,
                Err(_) => std::thread::sleep(std::time::Duration::from_micros(50)),
            }
        }
        let outcomes = match run_batch(&mut conn, &jobs) {
            Ok(outcomes) => outcomes,
            Err(e) => {
                tracing::warn!(error = %e, jobs = jobs.len(), "SQLite batch failed as a whole; running its jobs one by one");
                let _ = conn.execute_batch("ROLLBACK");
                jobs.iter().map(|j| run_alone(&mut conn, j)).collect()
            }
        };
        for (job, outcome) in jobs.into_iter().zip(outcomes) {
            match (job, outcome) {
                (Job::Place { reply, .. }, Outcome::Placed(r)) => {
                    let _ = reply.send(r);
                }
                (Job::Write { reply, .. }, Outcome::Wrote(r)) => {
                    let _ = reply.send(r);
                }
                _ => unreachable_pairing(),
            }
        }
    }
}

/// Jobs and outcomes are produced pairwise in order; a mismatch would be a bug in this file.
fn unreachable_pairing() {
    tracing::error!("SQLite writer paired a job with the wrong outcome");
}

fn run_job(conn: &mut rusqlite::Connection, job: &Job) -> Outcome {
    match job {
        Job::Place { tenant, new, .. } => {
            Outcome::Placed(futures_executor::block_on(place_in_tx(&mut Embedded(conn), tenant, new.clone())))
        }
        Job::Write { sql, args, .. } => Outcome::Wrote(Embedded(conn).rows_now(sql, args)),
    }
}

fn failed(o: &Outcome) -> bool {
    matches!(o, Outcome::Placed(Err(_)) | Outcome::Wrote(Err(_)))
}

fn run_batch(conn: &mut rusqlite::Connection, jobs: &[Job]) -> Result<Vec<Outcome>, rusqlite::Error> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let mut outcomes: Vec<Option<Outcome>> = (0..jobs.len()).map(|_| None).collect();
    // Writes first, each in a savepoint.
    for (i, job) in jobs.iter().enumerate() {
        if let Job::Write { .. } = job {
            outcomes[i] = Some(in_savepoint(conn, job)?);
        }
    }
    // Placements: set-based per tenant; repeats of a key or token in the batch go after, alone.
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    let mut later = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, job) in jobs.iter().enumerate() {
        if let Job::Place { tenant, new, .. } = job {
            let mut marks = vec![format!("k:{tenant}:{}", new.idempotency_key)];
            marks.extend(new.order.payments.iter().map(|p| format!("t:{tenant}:{}", p.token)));
            marks.extend(new.order.cart_id.iter().map(|c| format!("c:{tenant}:{c}")));
            if marks.iter().any(|m| seen.contains(m)) {
                later.push(i);
                continue;
            }
            seen.extend(marks);
            match groups.iter_mut().find(|(t, _)| *t == tenant.as_str()) {
                Some((_, idx)) => idx.push(i),
                None => groups.push((tenant.as_str(), vec![i])),
            }
        }
    }
    for (tenant, idx) in groups {
        let orders: Vec<NewOrder> = idx
            .iter()
            .filter_map(|i| match &jobs[*i] {
                Job::Place { new, .. } => Some(new.clone()),
                Job::Write { .. } => None,
            })
            .collect();
        conn.execute_batch("SAVEPOINT batch")?;
        match futures_executor::block_on(place_set(&mut Embedded(conn), tenant, orders, false)) {
            Ok(results) => {
                conn.execute_batch("RELEASE SAVEPOINT batch")?;
                for (i, r) in idx.iter().zip(results) {
                    outcomes[*i] = Some(Outcome::Placed(r));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, orders = idx.len(), "set-based placement failed; placing the batch's orders one by one");
                conn.execute_batch("ROLLBACK TO SAVEPOINT batch; RELEASE SAVEPOINT batch")?;
                for i in idx {
                    outcomes[i] = Some(in_savepoint(conn, &jobs[i])?);
                }
            }
        }
    }
    for i in later {
        outcomes[i] = Some(in_savepoint(conn, &jobs[i])?);
    }
    conn.execute_batch("COMMIT")?;
    Ok(outcomes.into_iter().map(|o| o.unwrap_or(Outcome::Wrote(Err(StoreError::Embedded("job skipped".into()))))).collect())
}

/// Runs one job inside a savepoint, rolled back if the job fails.
fn in_savepoint(conn: &mut rusqlite::Connection, job: &Job) -> Result<Outcome, rusqlite::Error> {
    conn.execute_batch("SAVEPOINT job")?;
    let o = run_job(conn, job);
    if failed(&o) {
        conn.execute_batch("ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job")?;
    } else {
        conn.execute_batch("RELEASE SAVEPOINT job")?;
    }
    Ok(o)
}

fn run_alone(conn: &mut rusqlite::Connection, job: &Job) -> Outcome {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        return error_outcome(job, e);
    }
    let o = run_job(conn, job);
    let end = if failed(&o) { conn.execute_batch("ROLLBACK") } else { conn.execute_batch("COMMIT") };
    match end {
        Ok(()) => o,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            error_outcome(job, e)
        }
    }
}

fn error_outcome(job: &Job, e: rusqlite::Error) -> Outcome {
    match job {
        Job::Place { .. } => Outcome::Placed(Err(PlaceError::Store(embedded(e)))),
        Job::Write { .. } => Outcome::Wrote(Err(embedded(e))),
    }
}
