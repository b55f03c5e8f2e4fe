//! The audit log: who (actor, role) did what (action) to which target, the target before and
//! after, from where (client IP, request id) and when. An entry is written in the same
//! transaction as the change it describes; the table is append-only (triggers refuse updates
//! and deletes on both backends).

use crate::sql::{Sql, Tx};
use crate::{Result, Store};
use sqlx::Row;

/// Who is acting, as the service layer knows it; the store adds the before/after states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub actor: String,
    pub role: String,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
}

/// One stored entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: i64,
    pub at_ms: i64,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub target: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
}

/// Appends an entry inside the caller's transaction.
pub(crate) async fn append(
    tx: &mut Tx<'_>,
    tenant: &str,
    who: &AuditEntry,
    action: &str,
    target: &str,
    before: Option<String>,
    after: Option<String>,
) -> Result<()> {
    tx.exec(
        "INSERT INTO audit_log (tenant_id, at_ms, actor, role, action, target, before_state, after_state, client_ip, request_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        vec![
            tenant.into(),
            crate::now_ms().into(),
            who.actor.as_str().into(),
            who.role.as_str().into(),
            action.into(),
            target.into(),
            before.as_deref().into(),
            after.as_deref().into(),
            who.client_ip.as_deref().into(),
            who.request_id.as_deref().into(),
        ],
    )
    .await?;
    Ok(())
}

impl Store {
    /// Entries of `tenant` after id `after` (oldest first), at most `limit`.
    pub async fn audit_page(
        &self,
        tenant: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditRecord>> {
        let rows = sqlx::query(
            "SELECT id, at_ms, actor, role, action, target, before_state, after_state, client_ip, request_id FROM audit_log \
             WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(tenant)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *self.conn(tenant).await?)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRecord {
                    id: r.try_get("id")?,
                    at_ms: r.try_get("at_ms")?,
                    actor: r.try_get("actor")?,
                    role: r.try_get("role")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    before: r.try_get("before_state")?,
                    after: r.try_get("after_state")?,
                    client_ip: r.try_get("client_ip")?,
                    request_id: r.try_get("request_id")?,
                })
            })
            .collect()
    }
}
