//! Test support shared by the store's conformance suite and the API tests: the storage a test
//! runs against. SQLite in a fresh temporary directory by default; a fresh PostgreSQL database
//! when `ORDO_TEST_DATABASE_URL` is set (the URL of any database on the server to connect to).

use crate::{StorageConfig, StoreError};
use sqlx::Connection;
use std::str::FromStr;

/// The backend the test suite was asked to use.
pub fn test_database_url() -> Option<String> {
    std::env::var("ORDO_TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// Creates an empty PostgreSQL database next to `admin_url`'s and returns its URL.
pub async fn fresh_postgres_database(admin_url: &str) -> Result<String, StoreError> {
    sqlx::any::install_default_drivers();
    let name = format!("ordo_test_{}", uuid::Uuid::new_v4().simple());
    let opts = sqlx::any::AnyConnectOptions::from_str(admin_url)?;
    let mut conn = sqlx::AnyConnection::connect_with(&opts).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin_url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    Ok(format!("{host_part}/{name}{query}"))
}

/// Storage for one test: a fresh PostgreSQL database or a SQLite file under `tmp`.
pub async fn test_storage(tmp: &std::path::Path) -> Result<StorageConfig, StoreError> {
    match test_database_url() {
        Some(admin) => Ok(StorageConfig::Postgres {
            url: fresh_postgres_database(&admin).await?,
            max_connections: 16,
        }),
        None => Ok(StorageConfig::Sqlite {
            data_dir: tmp.to_path_buf(),
        }),
    }
}

/// Whether storage refuses to update or delete audit entries of `tenant` (it must: the log is
/// append-only). Tries both through the write path; each attempt must fail.
pub async fn audit_log_refuses_changes(store: &crate::Store, tenant: &str) -> bool {
    let update = store
        .write_rows(
            tenant,
            "UPDATE audit_log SET actor = 'someone else' WHERE tenant_id = $1",
            vec![tenant.into()],
        )
        .await;
    let delete = store
        .write_rows(
            tenant,
            "DELETE FROM audit_log WHERE tenant_id = $1",
            vec![tenant.into()],
        )
        .await;
    update.is_err() && delete.is_err()
}

/// What a session of the application sees on PostgreSQL with row-level security, queried
/// without any tenant filter (`None` on SQLite, which has one tenant column and no policies).
#[derive(Debug)]
pub struct RowSecurityReport {
    /// `current_user` of the application's sessions.
    pub session_role: String,
    /// Products seen with no scope set, with `a`'s scope, and `b`'s rows seen with `a`'s scope.
    pub unscoped: i64,
    pub scoped_to_a: i64,
    pub b_seen_from_a: i64,
    /// Products of `a` counted with an explicit filter, as the superuser (the truth).
    pub a_truth: i64,
    /// Whether writing a row of `b` in `a`'s scope was refused.
    pub cross_write_refused: bool,
    /// Tables with a tenant_id whose row-level security is not enabled and forced.
    pub unprotected_tables: Vec<String>,
}

pub async fn row_security_report(
    store: &crate::Store,
    a: &str,
    b: &str,
) -> Result<Option<RowSecurityReport>, StoreError> {
    use sqlx::Row as _;
    if store.backend() != crate::Backend::Postgres {
        return Ok(None);
    }
    let mut conn = store.conn("").await?;
    let session_role: String = sqlx::query_scalar("SELECT CAST(current_user AS TEXT)")
        .fetch_one(&mut *conn)
        .await?;
    let unscoped: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM products")
        .fetch_one(&mut *conn)
        .await?;
    drop(conn);
    let mut conn = store.conn(a).await?;
    let scoped_to_a: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM products")
        .fetch_one(&mut *conn)
        .await?;
    let b_seen_from_a: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM products WHERE tenant_id = $1")
            .bind(b)
            .fetch_one(&mut *conn)
            .await?;
    let cross_write_refused =
        sqlx::query("INSERT INTO meta (tenant_id, key, value) VALUES ($1, 'rls-probe', 'x')")
            .bind(b)
            .execute(&mut *conn)
            .await
            .is_err();
    drop(conn);
    let mut conn = store.conn(crate::ALL_TENANTS).await?;
    let a_truth: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM products WHERE tenant_id = $1")
        .bind(a)
        .fetch_one(&mut *conn)
        .await?;
    let rows = sqlx::query(
        "SELECT CAST(c.relname AS TEXT) AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN information_schema.columns col ON col.table_schema = n.nspname AND col.table_name = c.relname AND col.column_name = 'tenant_id' \
         WHERE n.nspname = current_schema() AND c.relkind = 'r' AND NOT (c.relrowsecurity AND c.relforcerowsecurity) ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    let unprotected_tables = rows
        .iter()
        .map(|r| r.try_get::<String, _>("name"))
        .collect::<Result<_, _>>()?;
    Ok(Some(RowSecurityReport {
        session_role,
        unscoped,
        scoped_to_a,
        b_seen_from_a,
        a_truth,
        cross_write_refused,
        unprotected_tables,
    }))
}

/// Makes the WebAuthn challenge `id` of `tenant` expire now (tests of refused, stale challenges;
/// waiting for a real expiry would make a test slow).
pub async fn expire_challenge(
    store: &crate::Store,
    tenant: &str,
    id: &str,
) -> Result<(), StoreError> {
    store
        .write_rows(
            tenant,
            "UPDATE webauthn_challenges SET expires_at_ms = $3 WHERE tenant_id = $1 AND id = $2",
            vec![tenant.into(), id.into(), (crate::now_ms() - 1).into()],
        )
        .await?;
    Ok(())
}
