//! Ordo's storage: one `Store` type over two real backends, SQLite (embedded default, one file,
//! WAL, a single writer connection) and PostgreSQL (many processes share it). Both run the same
//! SQL (the common dialect: `$n` placeholders, `ON CONFLICT`, `RETURNING`) through sqlx's `Any`
//! driver; each backend has its own migrations. Invariants kept here: stock never goes below its
//! reservations, an order and its reservation, tenders, idempotency record and outbox event commit
//! together, and a 'placed' answer is only returned after that commit.

mod authorizations;
mod batch;
mod batcher;
mod carts;
mod catalog;
mod inventory;
mod orders;
mod payments;
mod sql;
mod writer;
pub mod testing;

pub use authorizations::{PendingAuthorization, StaleAuthorization};
pub use batcher::{BatchConfig, Placer};
pub use carts::CartRecord;
pub use catalog::{ProductUpsert, ProductView};
pub use inventory::{AdjustError, Adjustment, StockChange};
pub use orders::{IdempotencyRecord, NewOrder, PlaceError, Shortage};
pub use payments::TokenRecord;

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
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot prepare the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("embedded database error: {0}")]
    Embedded(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The handle every service uses. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// Serves reads. On SQLite, several read connections run beside the writer (WAL).
    read: AnyPool,
    /// Serves writes. On SQLite this pool has exactly one connection, so writers queue instead
    /// of failing with SQLITE_BUSY; on PostgreSQL it is the same pool as `read`.
    write: AnyPool,
    /// SQLite only: the writer thread that group-commits placements and the hot writes.
    writer: Option<writer::Writer>,
    /// PostgreSQL only: the group-commit queue for placements.
    queue: Option<batcher::Placer>,
    /// SQLite only: read connections used inline (an indexed lookup takes microseconds, less
    /// than handing it to another thread and back).
    readers: Option<std::sync::Arc<sql::Readers>>,
    /// How many batches had to be re-placed order by order (an operations signal; tests use it
    /// to prove the set-based path ran).
    fallbacks: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

static MIGRATE_SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static MIGRATE_POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
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
                std::fs::create_dir_all(data_dir)
                    .map_err(|source| StoreError::DataDir { path: data_dir.display().to_string(), source })?;
                let file = data_dir.join("ordo.db");
                let url = format!("sqlite://{}?mode=rwc", file.display());
                let opts = AnyConnectOptions::from_str(&url)?;
                let write = AnyPoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .acquire_timeout(Duration::from_secs(60))
                    .after_connect(sqlite_pragmas)
                    .connect_with(opts.clone())
                    .await?;
                MIGRATE_SQLITE.run(&write).await?;
                let read = AnyPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(sqlite_pragmas)
                    .connect_with(opts)
                    .await?;
                let writer = Some(writer::Writer::start(&file, batch)?);
                let readers = Some(std::sync::Arc::new(sql::Readers::new(file.clone())));
                Store { backend: Backend::Sqlite, read, write, writer, queue: None, readers, fallbacks: Default::default() }
            }
            StorageConfig::Postgres { url, max_connections } => {
                let opts = AnyConnectOptions::from_str(url)?;
                let pool = AnyPoolOptions::new()
                    .max_connections(*max_connections)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // Acknowledged means durable: never relax this per session.
                            conn.execute("SET synchronous_commit = on").await?;
                            Ok(())
                        })
                    })
                    .connect_with(opts)
                    .await?;
                MIGRATE_POSTGRES.run(&pool).await?;
                let store = Store { backend: Backend::Postgres, read: pool.clone(), write: pool, writer: None, queue: None, readers: None, fallbacks: Default::default() };
                Store { queue: Some(batcher::Placer::start(store.clone(), batch)), ..store }
            }
        };
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a write transaction. SQLite takes the write lock up front (`BEGIN IMMEDIATE`) so
    /// that writers from several processes on one file queue on the busy timeout instead of
    /// failing when a read lock cannot be upgraded.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.write.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.write.begin().await,
        }
    }

    /// Places one order through group commit; returns after the commit that holds it.
    pub async fn place(&self, tenant: &str, new: orders::NewOrder) -> Result<ordo_domain::Order, orders::PlaceError> {
        match (&self.writer, &self.queue) {
            (Some(w), _) => w.place(tenant, new).await,
            (None, Some(q)) => q.place(tenant, new).await,
            (None, None) => self.place_order(tenant, new).await,
        }
    }

    /// Runs one write statement: through the SQLite writer (sharing its batch's commit) or on
    /// the PostgreSQL pool. Returns the statement's rows (for `RETURNING`).
    pub(crate) async fn write_rows(&self, sql: &str, args: Vec<sql::Val>) -> Result<Vec<sql::Row>> {
        match (&self.writer, &self.queue) {
            (Some(w), _) => w.write(sql, args).await,
            (None, Some(q)) => q.write(sql, args).await,
            (None, None) => self.write_direct(sql, args).await,
        }
    }

    /// Runs one write statement on its own, on the pool.
    pub(crate) async fn write_direct(&self, sql: &str, args: Vec<sql::Val>) -> Result<Vec<sql::Row>> {
        use sql::Sql;
        let mut conn = self.write.acquire().await?;
        (*conn).rows(sql, args).await
    }

    /// Runs one read query: inline on SQLite, on the pool on PostgreSQL.
    pub(crate) async fn read_rows(&self, sql: &str, args: Vec<sql::Val>) -> Result<Vec<sql::Row>> {
        use sql::Sql;
        match &self.readers {
            Some(r) => r.rows(sql, &args),
            None => {
                let mut conn = self.read.acquire().await?;
                (*conn).rows(sql, args).await
            }
        }
    }

    /// Batches that fell back to order-by-order placement since this handle was opened.
    pub fn batch_fallbacks(&self) -> u64 {
        self.fallbacks.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A cheap round trip to the database, for `/readyz`.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }

    /// A per-tenant marker (e.g. `demo_seeded`), set once.
    pub async fn meta(&self, tenant: &str, key: &str) -> Result<Option<String>> {
        let v: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE tenant_id = $1 AND key = $2")
            .bind(tenant)
            .bind(key)
            .fetch_optional(&self.read)
            .await?;
        Ok(v)
    }

    pub async fn set_meta(&self, tenant: &str, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO meta (tenant_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (tenant_id, key) DO UPDATE SET value = excluded.value",
        )
        .bind(tenant)
        .bind(key)
        .bind(value)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Counts the rows of the outbox for an event type (operators and tests read it).
    pub async fn outbox_count(&self, tenant: &str, event_type: &str) -> Result<i64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE tenant_id = $1 AND event_type = $2")
            .bind(tenant)
            .bind(event_type)
            .fetch_one(&self.read)
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

/// `$from, $from+1, …` placeholders for an `IN (…)` list of `n` values.
pub(crate) fn placeholders(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}
