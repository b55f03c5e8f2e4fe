//! The handful of SQL operations the write paths need, over either driver: sqlx (PostgreSQL) or
//! rusqlite (SQLite's single writer thread, which runs a whole batch without a thread hop per
//! statement, and the inline readers). The same SQL text runs on both; `Tx` is the one
//! connection type every write is written against.

use crate::StoreError;
use sqlx::any::{Any, AnyTypeInfoKind};
use sqlx::{Row as _, ValueRef as _};
use std::future::Future;

/// A bound parameter or a column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    I(i64),
    F(f64),
    S(String),
    /// SQL NULL of a text column.
    NullText,
    /// SQL NULL of an integer column.
    NullInt,
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::I(v)
    }
}
impl From<f64> for Val {
    fn from(v: f64) -> Val {
        Val::F(v)
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::S(v.to_string())
    }
}
impl From<String> for Val {
    fn from(v: String) -> Val {
        Val::S(v)
    }
}
impl From<&String> for Val {
    fn from(v: &String) -> Val {
        Val::S(v.clone())
    }
}
impl From<Option<&str>> for Val {
    fn from(v: Option<&str>) -> Val {
        v.map(|s| Val::S(s.to_string())).unwrap_or(Val::NullText)
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Val {
        v.map(Val::S).unwrap_or(Val::NullText)
    }
}
impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Val {
        v.map(Val::I).unwrap_or(Val::NullInt)
    }
}

impl Val {
    pub fn int(&self) -> Result<i64, StoreError> {
        match self {
            Val::I(i) => Ok(*i),
            other => Err(StoreError::Corrupt(format!(
                "expected an integer, found {other:?}"
            ))),
        }
    }
    pub fn text(&self) -> Result<String, StoreError> {
        match self {
            Val::S(s) => Ok(s.clone()),
            other => Err(StoreError::Corrupt(format!(
                "expected text, found {other:?}"
            ))),
        }
    }
    pub fn real(&self) -> Result<f64, StoreError> {
        match self {
            Val::F(f) => Ok(*f),
            Val::I(i) => Ok(*i as f64),
            other => Err(StoreError::Corrupt(format!(
                "expected a number, found {other:?}"
            ))),
        }
    }
    pub fn opt_int(&self) -> Result<Option<i64>, StoreError> {
        match self {
            Val::I(i) => Ok(Some(*i)),
            Val::NullText | Val::NullInt => Ok(None),
            other => Err(StoreError::Corrupt(format!(
                "expected an integer, found {other:?}"
            ))),
        }
    }
    pub fn opt_text(&self) -> Result<Option<String>, StoreError> {
        match self {
            Val::S(s) => Ok(Some(s.clone())),
            Val::NullText | Val::NullInt => Ok(None),
            other => Err(StoreError::Corrupt(format!(
                "expected text, found {other:?}"
            ))),
        }
    }
}

pub type Row = Vec<Val>;

/// A transaction (or connection) that runs parameterised SQL.
pub trait Sql: Send {
    /// Runs a statement; returns the rows it affected.
    fn exec(
        &mut self,
        sql: &str,
        args: Vec<Val>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Runs a query; returns its rows.
    fn rows(
        &mut self,
        sql: &str,
        args: Vec<Val>,
    ) -> impl Future<Output = Result<Vec<Row>, StoreError>> + Send;
}

fn bind<'q>(
    mut q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    args: Vec<Val>,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    for a in args {
        q = match a {
            Val::I(i) => q.bind(i),
            Val::F(f) => q.bind(f),
            Val::S(s) => q.bind(s),
            Val::NullText => q.bind(None::<String>),
            Val::NullInt => q.bind(None::<i64>),
        };
    }
    q
}

fn any_row(row: &sqlx::any::AnyRow) -> Result<Row, StoreError> {
    let mut out = Vec::with_capacity(row.len());
    for i in 0..row.len() {
        let raw = row.try_get_raw(i)?;
        if raw.is_null() {
            out.push(Val::NullText);
            continue;
        }
        let v = match raw.type_info().kind() {
            AnyTypeInfoKind::SmallInt
            | AnyTypeInfoKind::Integer
            | AnyTypeInfoKind::BigInt
            | AnyTypeInfoKind::Bool => Val::I(row.try_get::<i64, _>(i)?),
            AnyTypeInfoKind::Real | AnyTypeInfoKind::Double => Val::F(row.try_get::<f64, _>(i)?),
            _ => Val::S(row.try_get::<String, _>(i)?),
        };
        out.push(v);
    }
    Ok(out)
}

impl Sql for sqlx::AnyConnection {
    async fn exec(&mut self, sql: &str, args: Vec<Val>) -> Result<u64, StoreError> {
        let q = bind(sqlx::query(sqlx::AssertSqlSafe(sql.to_string())), args);
        Ok(q.execute(&mut *self).await?.rows_affected())
    }
    async fn rows(&mut self, sql: &str, args: Vec<Val>) -> Result<Vec<Row>, StoreError> {
        let q = bind(sqlx::query(sqlx::AssertSqlSafe(sql.to_string())), args);
        q.fetch_all(&mut *self).await?.iter().map(any_row).collect()
    }
}

/// The SQLite writer thread's connection.
pub struct Embedded<'c>(pub &'c mut rusqlite::Connection);

fn to_sqlite(v: &Val) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match v {
        Val::I(i) => Value::Integer(*i),
        Val::F(f) => Value::Real(*f),
        Val::S(s) => Value::Text(s.clone()),
        Val::NullText | Val::NullInt => Value::Null,
    }
}

/// Binds `$n` placeholders by their number. SQLite numbers named parameters in order of first
/// appearance, so `SET a = $3 WHERE b = $1` must not be bound positionally.
fn bind_numbered(st: &mut rusqlite::CachedStatement<'_>, args: &[Val]) -> Result<(), StoreError> {
    for i in 1..=st.parameter_count() {
        let n = st
            .parameter_name(i)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|k| k.parse::<usize>().ok())
            .unwrap_or(i);
        let v = args
            .get(n.wrapping_sub(1))
            .ok_or_else(|| StoreError::Embedded(format!("no value for parameter ${n}")))?;
        st.raw_bind_parameter(i, to_sqlite(v)).map_err(embedded)?;
    }
    Ok(())
}

impl Embedded<'_> {
    pub fn exec_now(&mut self, sql: &str, args: &[Val]) -> Result<u64, StoreError> {
        let mut st = self.0.prepare_cached(sql).map_err(embedded)?;
        bind_numbered(&mut st, args)?;
        Ok(st.raw_execute().map_err(embedded)? as u64)
    }
    pub fn rows_now(&mut self, sql: &str, args: &[Val]) -> Result<Vec<Row>, StoreError> {
        let mut st = self.0.prepare_cached(sql).map_err(embedded)?;
        let n = st.column_count();
        bind_numbered(&mut st, args)?;
        let mut rows = st.raw_query();
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(embedded)? {
            let mut row = Vec::with_capacity(n);
            for i in 0..n {
                use rusqlite::types::ValueRef;
                row.push(match r.get_ref(i).map_err(embedded)? {
                    ValueRef::Null => Val::NullText,
                    ValueRef::Integer(i) => Val::I(i),
                    ValueRef::Real(f) => Val::F(f),
                    ValueRef::Text(t) => Val::S(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Val::S(String::from_utf8_lossy(b).into_owned()),
                });
            }
            out.push(row);
        }
        Ok(out)
    }
}

impl Sql for Embedded<'_> {
    async fn exec(&mut self, sql: &str, args: Vec<Val>) -> Result<u64, StoreError> {
        self.exec_now(sql, &args)
    }
    async fn rows(&mut self, sql: &str, args: Vec<Val>) -> Result<Vec<Row>, StoreError> {
        self.rows_now(sql, &args)
    }
}

pub fn embedded(e: rusqlite::Error) -> StoreError {
    StoreError::Embedded(e.to_string())
}

/// Prepared statements kept per SQLite connection. Batches build `IN (…)` lists of padded sizes
/// (`engine::padded`), so the distinct statements stay few; this keeps them all prepared.
pub const STATEMENT_CACHE: usize = 512;

/// A small pool of SQLite read connections used on the calling thread.
pub struct Readers {
    file: std::path::PathBuf,
    idle: std::sync::Mutex<Vec<rusqlite::Connection>>,
}

impl Readers {
    pub fn new(file: std::path::PathBuf) -> Readers {
        Readers {
            file,
            idle: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn open(&self) -> Result<rusqlite::Connection, StoreError> {
        let conn = rusqlite::Connection::open_with_flags(
            &self.file,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(embedded)?;
        conn.execute_batch("PRAGMA busy_timeout = 10000;")
            .map_err(embedded)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }

    pub fn rows(&self, sql: &str, args: &[Val]) -> Result<Vec<Row>, StoreError> {
        let taken = self.idle.lock().ok().and_then(|mut v| v.pop());
        let mut conn = match taken {
            Some(c) => c,
            None => self.open()?,
        };
        let result = Embedded(&mut conn).rows_now(sql, args);
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < 8 {
                idle.push(conn);
            }
        }
        result
    }
}

/// The connection a write runs on inside its transaction: the SQLite writer's (rusqlite) or a
/// pooled sqlx connection (PostgreSQL). Every write path — placements, idempotent writes,
/// adjustments, single statements — is written once against this.
pub enum Tx<'c> {
    Embedded(Embedded<'c>),
    Pooled(&'c mut sqlx::AnyConnection),
}

impl Sql for Tx<'_> {
    async fn exec(&mut self, sql: &str, args: Vec<Val>) -> Result<u64, StoreError> {
        match self {
            Tx::Embedded(e) => e.exec_now(sql, &args),
            Tx::Pooled(c) => (**c).exec(sql, args).await,
        }
    }
    async fn rows(&mut self, sql: &str, args: Vec<Val>) -> Result<Vec<Row>, StoreError> {
        match self {
            Tx::Embedded(e) => e.rows_now(sql, &args),
            Tx::Pooled(c) => (**c).rows(sql, args).await,
        }
    }
}

impl Tx<'_> {
    /// Whether rows must be locked explicitly (`FOR UPDATE`): on PostgreSQL. SQLite's single
    /// writer holds the whole database while it writes.
    pub fn locks_rows(&self) -> bool {
        matches!(self, Tx::Pooled(_))
    }

    /// Runs transaction-control SQL (`BEGIN`, `SAVEPOINT s`, `COMMIT`, …).
    pub async fn control(&mut self, sql: &str) -> Result<(), StoreError> {
        match self {
            Tx::Embedded(e) => e.0.execute_batch(sql).map_err(embedded),
            Tx::Pooled(c) => {
                use sqlx::Executor as _;
                (**c).execute(sqlx::AssertSqlSafe(sql.to_string())).await?;
                Ok(())
            }
        }
    }
}
