//! Test support shared by the store's conformance suite and the API tests: the storage a test
//! runs against. SQLite in a fresh temporary directory by default; a fresh PostgreSQL database
//! when `ORDO_TEST_DATABASE_URL` is set (the URL of any database on the server to connect to).

use crate::{StorageConfig, StoreError};
use sqlx::Connection;
use std::str::FromStr;

/// The backend the test suite was asked to use.
pub fn test_database_url() -> Option<String> {
    std::env::var("ORDO_TEST_DATABASE_URL").ok().filter(|s| !s.trim().is_empty())
}

/// Creates an empty PostgreSQL database next to `admin_url`'s and returns its URL.
pub async fn fresh_postgres_database(admin_url: &str) -> Result<String, StoreError> {
    sqlx::any::install_default_drivers();
    let name = format!("ordo_test_{}", uuid::Uuid::new_v4().simple());
    let opts = sqlx::any::AnyConnectOptions::from_str(admin_url)?;
    let mut conn = sqlx::AnyConnection::connect_with(&opts).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await?;
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
        Some(admin) => Ok(StorageConfig::Postgres { url: fresh_postgres_database(&admin).await?, max_connections: 16 }),
        None => Ok(StorageConfig::Sqlite { data_dir: tmp.to_path_buf() }),
    }
}

/// Whether storage refuses to update or delete audit entries of `tenant` (it must: the log is
/// append-only). Tries both through the write path; each attempt must fail.
pub async fn audit_log_refuses_changes(store: &crate::Store, tenant: &str) -> bool {
    let update = store.write_rows("UPDATE audit_log SET actor = 'someone else' WHERE tenant_id = $1", vec![tenant.into()]).await;
    let delete = store.write_rows("DELETE FROM audit_log WHERE tenant_id = $1", vec![tenant.into()]).await;
    update.is_err() && delete.is_err()
}

/// Makes the WebAuthn challenge `id` of `tenant` expire now (tests of refused, stale challenges;
/// waiting for a real expiry would make a test slow).
pub async fn expire_challenge(store: &crate::Store, tenant: &str, id: &str) -> Result<(), StoreError> {
    store.write_rows("UPDATE webauthn_challenges SET expires_at_ms = $3 WHERE tenant_id = $1 AND id = $2", vec![tenant.into(), id.into(), (crate::now_ms() - 1).into()]).await?;
    Ok(())
}
