//! Ordo's storage: one `Store` type over two real backends, SQLite (embedded default, one file,
//! WAL, a single writer connection) and PostgreSQL (many processes share it). Both run the same
//! SQL (the common dialect: `$n` placeholders, `ON CONFLICT`, `RETURNING`) through sqlx's `Any`
//! driver; each backend has its own migrations. Invariants kept here: stock never goes below its
//! reservations, an order and its reservation, tenders, idempotency record and outbox event commit
//! together, and a 'placed' answer is only returned after that commit.

mod audit;
mod authorizations;
mod batcher;
mod carts;
mod catalog;
mod commit;
mod engine;
mod events;
mod exchanges;
mod feed;
mod forecasts;
mod holds;
mod idempotency;
mod identity;
mod inventory;
mod lifecycle;
mod notifications;
mod orders;
mod passkeys;
mod payments;
mod returns;
mod routing;
mod sandbox;
mod sql;
pub mod testing;
mod unit;
mod webhooks;
mod writer;

pub use audit::{AuditEntry, AuditRecord};
pub use authorizations::{AuthorizationStatus, PendingAuthorization, StaleAuthorization};
pub use carts::{CartRecord, CartSave};
pub use catalog::{ProductUpsert, ProductView};
pub use commit::BatchConfig;
pub use events::StoredEvent;
pub use exchanges::{Charge, ExchangeQuote, ExchangeRequest, ExchangeView};
pub use feed::{FeedEntry, StockChangeRow};
pub use forecasts::{ForecastRow, ModelChangeError, ModelRecord, NewModel};
pub use holds::{CartPlan, HeldUnits, HoldOutcome};
pub use idempotency::{Claim, IdempotencyKey, IdempotencyRecord, Idempotent, Render};
pub use identity::{ClientRecord, RefreshRecord, RefreshUse, SigningKeyRecord, UserRecord};
pub use inventory::{AdjustError, Adjustment, StockChange};
pub use lifecycle::{
    Actor, Cancellation, FulfillmentView, LifecycleError, OpOutcome, PaymentOp, Picked, ShipClaim,
    ShortPick, TimelineEntry, Tracking, TrackingRow,
};
pub use notifications::{NotificationRecord, Preferences, PushSubscriptionRecord, SendOutcome};
pub use orders::{NewOrder, PlaceError, Shortage};
pub use passkeys::{ChallengePurpose, ChallengeRecord, ChallengeUse, PasskeyRecord};
pub use payments::TokenRecord;
pub use returns::{Disposition, Receipt, ReturnLine, ReturnView};
pub use sandbox::{SandboxEntry, SandboxSums};
pub use sql::Tx;
pub use unit::BoxFuture;
pub use webhooks::{AttemptOutcome, AttemptRecord, DeliveryRecord, NewDelivery, WebhookRecord};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Where the data lives.
#[derive(Debug, Clone)]
pub enum StorageConfig {
    /// A SQLite file `ordo.db` inside this directory (created if missing).
    Sqlite { data_dir: PathBuf },
    /// A PostgreSQL database URL (`postgres://…`).
    Postgres { url: String, max_connections: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot prepare the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("embedded database error: {0}")]
    Embedded(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The write queue is full: the caller should retry shortly (429 with Retry-After).
    #[error("the write queue is full")]
    Busy,
    /// An authorization of a batch was voided by recovery before the batch committed (the
    /// batch is placed again order by order, and that order fails with this).
    #[error("an authorization was voided before its order committed")]
    AuthorizationLost,
    /// The database or the write path cannot be reached right now (no pooled connection in
    /// time, the writer gone, the file locked by another process): 503 with Retry-After.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Another process's round took a node past its daily capacity first: the round is placed
    /// again against the new loads.
    #[error("a node's daily capacity was reached by a concurrent placement")]
    CapacityRaced,
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
                StoreError::Unavailable(e.to_string())
            }
            other => StoreError::Db(other),
        }
    }
}

/// A place held in the placement queue: taken before the card is authorized, so a full queue
/// refuses the checkout before any money is held, never after.
pub struct PlacementSlot(SlotInner);

enum SlotInner {
    Sqlite(tokio::sync::mpsc::OwnedPermit<writer::Job>),
    Postgres(tokio::sync::mpsc::OwnedPermit<batcher::Job>),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The handle every service uses. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    /// Serves reads (and, on PostgreSQL, units of writes). On SQLite, read-only connections
    /// beside the single writer (WAL).
    read: AnyPool,
    engine: Engine,
}

/// How writes reach the database — one variant per backend, nothing optional.
#[derive(Clone)]
enum Engine {
    /// One writer thread owns the only write connection; every write goes through it. Hot reads
    /// run inline on pooled read-only rusqlite connections (an indexed lookup takes
    /// microseconds, less than a hop to another thread and back).
    Sqlite {
        writer: writer::Writer,
        readers: std::sync::Arc<sql::Readers>,
    },
    /// Placements through the group-commit queue; other writes as units on the pool.
    Postgres {
        placer: batcher::Placer,
        claimer: batcher::Claimer,
    },
}

static MIGRATE_SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static MIGRATE_POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Store {
    /// Opens (and creates) the storage and applies pending migrations, with the standard
    /// group-commit settings (`BatchConfig::standard`).
    pub async fn open(config: &StorageConfig) -> Result<Store> {
        let batch = BatchConfig::standard(match config {
            StorageConfig::Sqlite { .. } => Backend::Sqlite,
            StorageConfig::Postgres { .. } => Backend::Postgres,
        });
        Self::open_with(config, batch).await
    }

    /// Opens the storage with explicit group-commit settings.
    pub async fn open_with(config: &StorageConfig, batch: BatchConfig) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let store = match config {
            StorageConfig::Sqlite { data_dir } => {
                std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
                    path: data_dir.display().to_string(),
                    source,
                })?;
                let file = data_dir.join("ordo.db");
                let url = format!("sqlite://{}?mode=rwc", file.display());
                let opts = AnyConnectOptions::from_str(&url)?;
                // Migrations run on a connection of their own, closed before the writer starts:
                // from then on the writer is the only connection that writes.
                let migrator = AnyPoolOptions::new()
                    .max_connections(1)
                    .after_connect(sqlite_pragmas)
                    .connect_with(opts.clone())
                    .await?;
                MIGRATE_SQLITE.run(&migrator).await?;
                migrator.close().await;
                let read = AnyPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(sqlite_pragmas)
                    .connect_with(opts)
                    .await?;
                let writer = writer::Writer::start(&file, batch)?;
                let readers = std::sync::Arc::new(sql::Readers::new(file.clone()));
                Store {
                    read,
                    engine: Engine::Sqlite { writer, readers },
                }
            }
            StorageConfig::Postgres {
                url,
                max_connections,
            } => {
                // Keep every statement the write path uses prepared on each connection.
                let url = if url.contains("statement-cache-capacity") {
                    url.clone()
                } else {
                    format!(
                        "{url}{}statement-cache-capacity=512",
                        if url.contains('?') { '&' } else { '?' }
                    )
                };
                let opts = AnyConnectOptions::from_str(&url)?;
                // Migrations run as the connecting user, on a connection of their own; the pool's
                // sessions then act as `ordo_app`, which row-level security binds (see 0012).
                let migrator = AnyPoolOptions::new()
                    .max_connections(1)
                    .connect_with(opts.clone())
                    .await?;
                MIGRATE_POSTGRES.run(&migrator).await?;
                migrator.close().await;
                let pool = AnyPoolOptions::new()
                    .max_connections(*max_connections)
                    .acquire_timeout(Duration::from_secs(30))
                    // No ping before every checkout (a round trip each): `Store::conn` sets the
                    // row-level security scope first thing, which proves the connection alive, and
                    // the write path's first statement does the same for its connections.
                    .test_before_acquire(false)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // Acknowledged means durable: never relax this per session.
                            conn.execute("SET synchronous_commit = on").await?;
                            let may_act_as_app: Option<bool> = sqlx::query_scalar(
                                "SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = 'ordo_app'",
                            )
                            .fetch_optional(&mut *conn)
                            .await?;
                            if may_act_as_app == Some(true) {
                                conn.execute("SET ROLE ordo_app").await?;
                            }
                            Ok(())
                        })
                    })
                    .connect_with(opts)
                    .await?;
                let placer = batcher::Placer::start(pool.clone(), batch);
                let claimer = batcher::Claimer::start(pool.clone(), batch.max_orders);
                Store {
                    read: pool,
                    engine: Engine::Postgres { placer, claimer },
                }
            }
        };
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        match self.engine {
            Engine::Sqlite { .. } => Backend::Sqlite,
            Engine::Postgres { .. } => Backend::Postgres,
        }
    }

    /// Places one order through group commit; returns after the commit that holds it.
    pub async fn place(
        &self,
        tenant: &str,
        new: orders::NewOrder,
    ) -> Result<ordo_domain::Order, orders::PlaceError> {
        let slot = self.reserve_placement()?;
        self.place_in(slot, tenant, new).await
    }

    /// Holds a place in the placement queue (`Busy` when it is full).
    pub fn reserve_placement(&self) -> Result<PlacementSlot> {
        let r = match &self.engine {
            Engine::Sqlite { writer, .. } => writer.reserve().map(SlotInner::Sqlite),
            Engine::Postgres { placer, .. } => placer.reserve().map(SlotInner::Postgres),
        };
        if matches!(r, Err(StoreError::Busy)) {
            metrics::counter!("ordo_placements_total", "outcome" => "busy").increment(1);
        }
        r.map(PlacementSlot)
    }

    /// Places one order in a place reserved before; returns after the commit that holds it.
    pub async fn place_in(
        &self,
        slot: PlacementSlot,
        tenant: &str,
        new: orders::NewOrder,
    ) -> Result<ordo_domain::Order, orders::PlaceError> {
        let r = match slot.0 {
            SlotInner::Sqlite(permit) => writer::Writer::place_with(permit, tenant, new).await,
            SlotInner::Postgres(permit) => batcher::Placer::place_with(permit, tenant, new).await,
        };
        metrics::counter!("ordo_placements_total", "outcome" => place_outcome(&r)).increment(1);
        r
    }

    /// Places these orders as one batch now, bypassing the queue (bulk imports; tests that need
    /// a batch's exact composition). Answers come back in input order after the commit.
    pub async fn place_batch(
        &self,
        batch: Vec<(String, orders::NewOrder)>,
    ) -> Vec<std::result::Result<ordo_domain::Order, orders::PlaceError>> {
        let n = batch.len();
        let failed = |e: &StoreError| {
            (0..n)
                .map(|_| {
                    Err(orders::PlaceError::Store(StoreError::Corrupt(
                        e.to_string(),
                    )))
                })
                .collect()
        };
        match &self.engine {
            Engine::Sqlite { .. } => {
                let r = self
                    .unit(ALL_TENANTS, move |tx| {
                        let batch = batch.clone();
                        Box::pin(async move {
                            Ok((
                                commit::place_batch(tx, commit::Scope::Savepoint, batch).await,
                                true,
                            ))
                        })
                    })
                    .await;
                r.map(|(rs, _)| rs).unwrap_or_else(|e| failed(&e))
            }
            Engine::Postgres { .. } => batcher::place_now(self, batch).await,
        }
    }

    /// Batches the group-commit driver had to re-place order by order since the process
    /// started (an operations signal, also `ordo_batch_fallbacks_total`; tests use it to prove the
    /// set-based path ran).
    pub fn batch_fallbacks() -> u64 {
        commit::FALLBACKS.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs a unit of write logic in the write path's transaction (see `unit.rs`): `f` returns
    /// its value and whether its writes stand. Returns after the commit.
    pub async fn unit<T, F>(&self, tenant: &str, f: F) -> Result<(T, bool)>
    where
        T: Send + 'static,
        F: for<'a, 'c> Fn(&'a mut Tx<'c>) -> BoxFuture<'a, Result<(T, bool)>>
            + Send
            + Sync
            + 'static,
    {
        self.unit_admitted(tenant, f, writer::Admission::New).await
    }

    pub(crate) async fn unit_admitted<T, F>(
        &self,
        tenant: &str,
        f: F,
        admission: writer::Admission,
    ) -> Result<(T, bool)>
    where
        T: Send + 'static,
        F: for<'a, 'c> Fn(&'a mut Tx<'c>) -> BoxFuture<'a, Result<(T, bool)>>
            + Send
            + Sync
            + 'static,
    {
        let f = unit::erase(f);
        let (v, keep) = match &self.engine {
            Engine::Sqlite { writer, .. } => writer.unit(f, admission).await?,
            Engine::Postgres { .. } => batcher::run_unit(self, tenant, f).await?,
        };
        let v = v
            .downcast::<T>()
            .map_err(|_| corrupt("a write unit returned a value of the wrong type"))?;
        Ok((*v, keep))
    }

    /// Runs one write statement in the write path; returns its rows (for `RETURNING`).
    pub(crate) async fn write_rows(
        &self,
        tenant: &str,
        sql: &str,
        args: Vec<sql::Val>,
    ) -> Result<Vec<sql::Row>> {
        self.write_rows_admitted(tenant, sql, args, writer::Admission::New)
            .await
    }

    /// A write that finishes work already accepted (a void, a claim release): never refused
    /// for a full queue.
    pub(crate) async fn follow_up_rows(
        &self,
        tenant: &str,
        sql: &str,
        args: Vec<sql::Val>,
    ) -> Result<Vec<sql::Row>> {
        self.write_rows_admitted(tenant, sql, args, writer::Admission::FollowUp)
            .await
    }

    async fn write_rows_admitted(
        &self,
        tenant: &str,
        sql: &str,
        args: Vec<sql::Val>,
        admission: writer::Admission,
    ) -> Result<Vec<sql::Row>> {
        use sql::Sql;
        let sql = sql.to_string();
        match &self.engine {
            Engine::Sqlite { .. } => {
                let (rows, _) = self
                    .unit_admitted(
                        tenant,
                        move |tx| {
                            let (sql, args) = (sql.clone(), args.clone());
                            Box::pin(async move { Ok((tx.rows(&sql, args).await?, true)) })
                        },
                        admission,
                    )
                    .await?;
                Ok(rows)
            }
            Engine::Postgres { .. } => {
                // A single statement commits by itself.
                let mut conn = self.conn(tenant).await?;
                (*conn).rows(&sql, args).await
            }
        }
    }

    /// Whether the write path is running: the SQLite writer thread, or every PostgreSQL batch
    /// worker. `/readyz` reports not ready when it is not.
    pub fn write_path_alive(&self) -> bool {
        match &self.engine {
            Engine::Sqlite { writer, .. } => writer.alive(),
            Engine::Postgres { placer, .. } => placer.alive(),
        }
    }

    /// Stops the write path, as a crash of the writer would (tests of `/readyz`).
    #[doc(hidden)]
    pub async fn halt_write_path(&self) {
        match &self.engine {
            Engine::Sqlite { writer, .. } => writer.halt().await,
            Engine::Postgres { placer, .. } => placer.halt().await,
        }
        for _ in 0..200 {
            if !self.write_path_alive() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Runs one read query: inline on SQLite, on the pool on PostgreSQL.
    pub(crate) async fn read_rows(
        &self,
        tenant: &str,
        sql: &str,
        args: Vec<sql::Val>,
    ) -> Result<Vec<sql::Row>> {
        use sql::Sql;
        match &self.engine {
            Engine::Sqlite { readers, .. } => readers.rows(sql, &args),
            Engine::Postgres { .. } => {
                let mut conn = self.conn(tenant).await?;
                (*conn).rows(sql, args).await
            }
        }
    }

    /// A pooled connection that sees the rows of `scope` only: on PostgreSQL, row-level security
    /// admits a row when its `tenant_id` is one of the tenants in the session's `ordo.tenants`
    /// (set here, on every checkout of a connection from the pool, before any query runs). A
    /// query that forgets its tenant filter sees this scope's rows, never another tenant's.
    /// `scope` is a tenant id, several joined by `scopes`, or `ALL_TENANTS` (work that spans
    /// tenants by design: recovery sweeps, resolving a credential to its tenant).
    pub(crate) async fn conn(&self, scope: &str) -> Result<sqlx::pool::PoolConnection<sqlx::Any>> {
        if self.backend() != Backend::Postgres {
            return Ok(self.read.acquire().await?);
        }
        // Setting the scope is also the connection's health check: a connection the server
        // dropped (a restart) fails it and is closed, and the next one is tried.
        let mut last = None;
        for _ in 0..3 {
            let mut conn = self.read.acquire().await?;
            match set_scope(&mut conn, scope).await {
                Ok(()) => return Ok(conn),
                Err(StoreError::Db(
                    e @ (sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::Tls(_)),
                )) => {
                    conn.close_on_drop();
                    last = Some(StoreError::Db(e));
                }
                Err(e) => return Err(e),
            }
        }
        Err(last
            .unwrap_or_else(|| StoreError::Unavailable("no healthy database connection".into())))
    }

    /// PostgreSQL's count of deadlocks detected in this database (`pg_stat_database`; a backend
    /// reports its own when it ends or goes idle) and how many other sessions are connected to
    /// it under another `application_name`. `None` on SQLite, whose single writer cannot deadlock.
    pub async fn postgres_activity(&self) -> Result<Option<(i64, i64)>> {
        if self.backend() != Backend::Postgres {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT CAST((SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()) AS BIGINT) AS deadlocks, \
             CAST((SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' \
             AND application_name <> current_setting('application_name')) AS BIGINT) AS others",
        )
        .fetch_one(&self.read)
        .await?;
        use sqlx::Row as _;
        Ok(Some((row.try_get("deadlocks")?, row.try_get("others")?)))
    }

    /// A cheap round trip to the database, for `/readyz`.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.read.close().await;
    }

    /// A per-tenant marker (e.g. `demo_seeded`), set once.
    pub async fn meta(&self, tenant: &str, key: &str) -> Result<Option<String>> {
        let v: Option<String> =
            sqlx::query_scalar("SELECT value FROM meta WHERE tenant_id = $1 AND key = $2")
                .bind(tenant)
                .bind(key)
                .fetch_optional(&mut *self.conn(tenant).await?)
                .await?;
        Ok(v)
    }

    /// The marker's value, set to `value` first if it had none (whoever sets it first wins;
    /// every caller gets the same value back).
    pub async fn meta_or_insert(&self, tenant: &str, key: &str, value: &str) -> Result<String> {
        self.write_rows(tenant,
            "INSERT INTO meta (tenant_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (tenant_id, key) DO NOTHING",
            vec![tenant.into(), key.into(), value.into()],
        )
        .await?;
        self.meta(tenant, key)
            .await?
            .ok_or_else(|| corrupt(format!("meta {key} vanished")))
    }

    pub async fn set_meta(&self, tenant: &str, key: &str, value: &str) -> Result<()> {
        self.write_rows(tenant,
            "INSERT INTO meta (tenant_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (tenant_id, key) DO UPDATE SET value = excluded.value",
            vec![tenant.into(), key.into(), value.into()],
        )
        .await?;
        Ok(())
    }

    /// Counts the rows of the outbox for an event type (operators and tests read it).
    pub async fn outbox_count(&self, tenant: &str, event_type: &str) -> Result<i64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE tenant_id = $1 AND event_type = $2",
        )
        .bind(tenant)
        .bind(event_type)
        .fetch_one(&mut *self.conn(tenant).await?)
        .await?;
        Ok(n)
    }
}

/// Every SQLite connection: WAL, an fsync per commit (acknowledged means durable), and a busy
/// timeout so a reader never fails while the writer checkpoints.
fn sqlite_pragmas<'c>(
    conn: &'c mut sqlx::AnyConnection,
    _meta: sqlx::pool::PoolConnectionMetadata,
) -> futures_core::future::BoxFuture<'c, Result<(), sqlx::Error>> {
    Box::pin(async move {
        conn.execute("PRAGMA journal_mode = WAL").await?;
        conn.execute("PRAGMA synchronous = FULL").await?;
        conn.execute("PRAGMA busy_timeout = 10000").await?;
        Ok(())
    })
}

/// The scope of work that spans tenants by design (see `Store::conn`).
pub(crate) const ALL_TENANTS: &str = "*";

/// The scope of several tenants (a placement or claim batch mixes them).
pub(crate) fn scopes<'a>(tenants: impl IntoIterator<Item = &'a str>) -> String {
    let mut v: Vec<&str> = tenants.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    v.join("\u{1f}")
}

/// `BEGIN` for a PostgreSQL transaction that sees `scope`'s rows only: the scope is set for the
/// transaction in the same round trip (a simple-protocol batch), so it costs nothing.
pub(crate) fn begin_scoped(scope: &str) -> String {
    format!(
        "BEGIN; SELECT set_config('ordo.tenants', '{}', true)",
        scope.replace('\'', "''")
    )
}

/// Sets the session's row-level security scope (PostgreSQL).
pub(crate) async fn set_scope(conn: &mut sqlx::AnyConnection, scope: &str) -> Result<()> {
    sqlx::query("SELECT set_config('ordo.tenants', $1, false)")
        .bind(scope)
        .execute(conn)
        .await?;
    Ok(())
}

/// `$from, $from+1, …` placeholders for an `IN (…)` list of `n` values.
pub(crate) fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// The `outcome` label of `ordo_placements_total`.
fn place_outcome(r: &std::result::Result<ordo_domain::Order, orders::PlaceError>) -> &'static str {
    use orders::PlaceError as E;
    match r {
        Ok(_) => "placed",
        Err(E::Shortage(_)) => "out_of_stock",
        Err(E::NoRoute(_) | E::Unroutable(_)) => "no_route",
        Err(E::PriceMoved(_)) => "price_moved",
        Err(E::PromotionExhausted(_) | E::CustomerLimitReached(_) | E::PromotionInvalid(..)) => {
            "promotion_refused"
        }
        Err(E::TokenUsed(_)) => "token_used",
        Err(E::CartOrdered(_)) => "cart_ordered",
        Err(E::ClaimLost) => "claim_lost",
        Err(E::AuthorizationLost) => "authorization_lost",
        Err(E::Store(StoreError::Busy)) => "busy",
        Err(E::Store(_)) => "error",
    }
}

impl Store {
    /// Runs a checkout's claim statement through the PostgreSQL claim worker (shared commits).
    pub(crate) async fn run_claim(
        &self,
        tenant: &str,
        key: &str,
        sql: String,
        args: Vec<sql::Val>,
    ) -> Result<Vec<sql::Row>> {
        match &self.engine {
            Engine::Postgres { claimer, .. } => {
                claimer.run(tenant, key.to_string(), sql, args).await
            }
            Engine::Sqlite { .. } => self.write_rows(tenant, &sql, args).await,
        }
    }
}
