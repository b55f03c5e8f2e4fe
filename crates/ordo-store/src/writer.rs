//! The embedded database's single writer: one thread owns SQLite's only write connection
//! (rusqlite) and every write of the process goes through it — placements, idempotent creates,
//! adjustments, admin upserts, single statements. It takes everything queued, runs it in one
//! transaction (each unit in a savepoint, placements through the group-commit driver) and commits
//! once, with one fsync; callers hear back only after that commit. The queue is bounded: a full
//! queue refuses at once (`StoreError::Busy`) rather than letting callers pile up. A panic inside a
//! batch is caught: the batch is rolled back, its callers get an error, and the writer goes on.

use crate::StoreError;
use crate::commit::{self, AliveGuard, BatchConfig, Scope};
use crate::orders::{NewOrder, PlaceError};
use crate::sql::{Embedded, Tx, embedded};
use crate::unit::{self, Erased, UnitFn};
use ordo_domain::Order;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{mpsc, oneshot};

pub(crate) enum Job {
    Place {
        tenant: String,
        new: NewOrder,
        reply: oneshot::Sender<Result<Order, PlaceError>>,
    },
    Unit {
        f: UnitFn,
        reply: oneshot::Sender<Result<(Erased, bool), StoreError>>,
    },
    /// Stops the writer (tests of the watched write path).
    Halt,
}

/// Whether a write may be refused when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// New work: refused at once when the queue is full (429).
    New,
    /// Finishing work already accepted: waits for room.
    FollowUp,
}

#[derive(Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Job>,
    alive: Arc<AtomicUsize>,
}

impl Writer {
    /// Opens the write connection on `file` and starts the writer thread.
    pub fn start(file: &Path, batch: BatchConfig) -> Result<Writer, StoreError> {
        let conn = rusqlite::Connection::open(file).map_err(embedded)?;
        // FULL: every commit is fsync'd before its callers hear of it. Savepoint journals stay in
        // memory. The busy timeout only matters when another process shares the file.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000; \
             PRAGMA temp_store = MEMORY;",
        )
        .map_err(embedded)?;
        conn.set_prepared_statement_cache_capacity(crate::sql::STATEMENT_CACHE);
        let (tx, rx) = mpsc::channel::<Job>(batch.queue_capacity.max(1));
        let alive = Arc::new(AtomicUsize::new(1));
        let guard = AliveGuard(alive.clone());
        std::thread::Builder::new()
            .name("ordo-sqlite-writer".into())
            .spawn(move || {
                let _guard = guard;
                run(conn, rx, batch)
            })
            .map_err(|e| StoreError::Embedded(e.to_string()))?;
        Ok(Writer { queue: tx, alive })
    }

    fn enqueue(&self, job: Job) -> Result<(), StoreError> {
        let r = self.queue.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => StoreError::Busy,
            mpsc::error::TrySendError::Closed(_) => stopped(),
        });
        metrics::gauge!("ordo_write_queue_depth")
            .set((self.queue.max_capacity() - self.queue.capacity()) as f64);
        r
    }

    /// Holds a place in the queue for a placement to come.
    pub fn reserve(&self) -> Result<mpsc::OwnedPermit<Job>, StoreError> {
        let r = self.queue.clone().try_reserve_owned().map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => StoreError::Busy,
            mpsc::error::TrySendError::Closed(_) => stopped(),
        });
        metrics::gauge!("ordo_write_queue_depth")
            .set((self.queue.max_capacity() - self.queue.capacity()) as f64);
        r
    }

    /// Places one order in a reserved place; returns after the commit that holds it.
    pub async fn place_with(
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
        answer.await.map_err(|_| stopped())?
    }

    /// Runs a unit. New work is refused when the queue is full (`Admission::New`); follow-ups of
    /// work already accepted (voids, claim releases) wait for room instead, so refusing new work
    /// never strands what was started.
    pub async fn unit(
        &self,
        f: UnitFn,
        admission: Admission,
    ) -> Result<(Erased, bool), StoreError> {
        let (reply, answer) = oneshot::channel();
        match admission {
            Admission::New => self.enqueue(Job::Unit { f, reply })?,
            Admission::FollowUp => self
                .queue
                .send(Job::Unit { f, reply })
                .await
                .map_err(|_| stopped())?,
        }
        answer.await.map_err(|_| stopped())?
    }

    pub fn alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst) > 0 && !self.queue.is_closed()
    }

    pub async fn halt(&self) {
        let _ = self.queue.send(Job::Halt).await;
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the SQLite writer stopped".into())
}

fn run(mut conn: rusqlite::Connection, mut rx: mpsc::Receiver<Job>, batch: BatchConfig) {
    loop {
        let Some(first) = rx.blocking_recv() else {
            return;
        };
        let mut jobs = vec![first];
        let deadline = std::time::Instant::now() + batch.max_wait;
        while jobs.len() < batch.max_orders {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) if std::time::Instant::now() >= deadline => break,
                Err(_) => std::thread::sleep(std::time::Duration::from_micros(50)),
            }
        }
        if jobs.iter().any(|j| matches!(j, Job::Halt)) {
            for job in jobs {
                answer_error(job, || stopped());
            }
            return;
        }
        metrics::histogram!("ordo_batch_size").record(jobs.len() as f64);
        let started = std::time::Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            futures_executor::block_on(run_batch(&mut conn, &jobs))
        }));
        let outcomes: Vec<Done> = match outcome {
            Ok(Ok(outcomes)) => {
                metrics::histogram!("ordo_commit_seconds").record(started.elapsed().as_secs_f64());
                outcomes
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, jobs = jobs.len(), "SQLite batch failed as a whole; running its jobs one by one");
                let _ = conn.execute_batch("ROLLBACK");
                let mut outcomes = Vec::with_capacity(jobs.len());
                for job in &jobs {
                    let one = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        futures_executor::block_on(run_alone(&mut conn, job))
                    }));
                    outcomes.push(one.unwrap_or_else(|_| {
                        let _ = conn.execute_batch("ROLLBACK");
                        failed(
                            job,
                            StoreError::Embedded("the write failed unexpectedly".into()),
                        )
                    }));
                }
                outcomes
            }
            Err(_) => {
                tracing::error!(
                    jobs = jobs.len(),
                    "the SQLite writer caught a panic; its batch was rolled back"
                );
                let _ = conn.execute_batch("ROLLBACK");
                jobs.iter()
                    .map(|j| {
                        failed(
                            j,
                            StoreError::Embedded("the write failed unexpectedly".into()),
                        )
                    })
                    .collect()
            }
        };
        for (job, done) in jobs.into_iter().zip(outcomes) {
            deliver(job, done);
        }
    }
}

/// A job with its outcome, kept until the batch's commit.
enum Done {
    Placed(Result<Order, PlaceError>),
    Ran(Result<(Erased, bool), StoreError>),
}

/// Runs every job of the batch in one transaction and returns the outcomes in job order; the
/// caller delivers them only after this returned, i.e. after `COMMIT` succeeded.
async fn run_batch(conn: &mut rusqlite::Connection, jobs: &[Job]) -> Result<Vec<Done>, StoreError> {
    let mut tx = Tx::Embedded(Embedded(conn));
    if let Err(e) = tx.control("BEGIN IMMEDIATE").await {
        // The file is locked past the busy timeout (another process): retrying each job alone
        // would wait that long again per job. The whole batch is told to retry later.
        let why = format!("the database file is busy: {e}");
        return Ok(jobs
            .iter()
            .map(|j| failed(j, StoreError::Unavailable(why.clone())))
            .collect());
    }
    let mut outcomes: Vec<Option<Done>> = (0..jobs.len()).map(|_| None).collect();
    for (i, job) in jobs.iter().enumerate() {
        if let Job::Unit { f, .. } = job {
            outcomes[i] = Some(Done::Ran(unit::in_savepoint(&mut tx, f).await));
        }
    }
    let places: Vec<usize> = jobs
        .iter()
        .enumerate()
        .filter(|(_, j)| matches!(j, Job::Place { .. }))
        .map(|(i, _)| i)
        .collect();
    if !places.is_empty() {
        let batch: Vec<(String, NewOrder)> = places
            .iter()
            .filter_map(|i| match &jobs[*i] {
                Job::Place { tenant, new, .. } => Some((tenant.clone(), new.clone())),
                _ => None,
            })
            .collect();
        for (i, r) in places
            .iter()
            .zip(commit::place_batch(&mut tx, Scope::Savepoint, batch).await)
        {
            outcomes[*i] = Some(Done::Placed(r));
        }
    }
    tx.control("COMMIT").await?;
    Ok(outcomes
        .into_iter()
        .zip(jobs)
        .map(|(o, j)| {
            o.unwrap_or_else(|| failed(j, StoreError::Corrupt("a job got no outcome".into())))
        })
        .collect())
}

/// Runs one job in a transaction of its own (after its batch failed as a whole).
async fn run_alone(conn: &mut rusqlite::Connection, job: &Job) -> Done {
    let mut tx = Tx::Embedded(Embedded(conn));
    match job {
        Job::Unit { f, .. } => Done::Ran(unit::alone(&mut tx, "BEGIN IMMEDIATE", f).await),
        Job::Place { tenant, new, .. } => Done::Placed(match tx.control("BEGIN IMMEDIATE").await {
            Err(e) => Err(PlaceError::Store(e)),
            Ok(()) => {
                let mut rs = commit::place_batch(
                    &mut tx,
                    Scope::Savepoint,
                    vec![(tenant.clone(), new.clone())],
                )
                .await;
                match tx.control("COMMIT").await {
                    Ok(()) => rs
                        .pop()
                        .unwrap_or_else(|| Err(PlaceError::Store(stopped()))),
                    Err(e) => {
                        let _ = tx.control("ROLLBACK").await;
                        Err(PlaceError::Store(e))
                    }
                }
            }
        }),
        Job::Halt => Done::Ran(Err(stopped())),
    }
}

fn failed(job: &Job, e: StoreError) -> Done {
    match job {
        Job::Place { .. } => Done::Placed(Err(PlaceError::Store(e))),
        Job::Unit { .. } | Job::Halt => Done::Ran(Err(e)),
    }
}

fn deliver(job: Job, done: Done) {
    match (job, done) {
        (Job::Place { reply, .. }, Done::Placed(r)) => {
            let _ = reply.send(r);
        }
        (Job::Unit { reply, .. }, Done::Ran(r)) => {
            let _ = reply.send(r);
        }
        (Job::Place { reply, .. }, Done::Ran(_)) => {
            let _ = reply.send(Err(PlaceError::Store(StoreError::Corrupt(
                "the writer paired a placement with the wrong outcome".into(),
            ))));
        }
        (Job::Unit { reply, .. }, Done::Placed(_)) => {
            let _ = reply.send(Err(StoreError::Corrupt(
                "the writer paired a unit with the wrong outcome".into(),
            )));
        }
        (Job::Halt, _) => {}
    }
}

fn answer_error(job: Job, e: impl Fn() -> StoreError) {
    match job {
        Job::Place { reply, .. } => {
            let _ = reply.send(Err(PlaceError::Store(e())));
        }
        Job::Unit { reply, .. } => {
            let _ = reply.send(Err(e()));
        }
        Job::Halt => {}
    }
}
