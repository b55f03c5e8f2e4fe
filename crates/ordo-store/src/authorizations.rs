//! Card authorizations as Ordo records them: each one is written as `pending` (and committed)
//! before the gateway is asked, becomes `attached` in the transaction that commits its order,
//! or `declined` / `voided`. Recovery finds pending ones whose order never committed (a crash,
//! a lost batch) and hands them back to be voided. Never holds a transaction across a gateway call.

use crate::{Result, Store, now_ms, placeholders};
use ordo_domain::Money;
use crate::sql::Val;
use sqlx::Row;

/// One authorization about to be requested from the gateway.
#[derive(Debug, Clone)]
pub struct PendingAuthorization {
    /// Ordo's reference, also given to the gateway (so it can be voided by reference).
    pub id: String,
    pub token: String,
    pub amount: Money,
}

/// A pending authorization that recovery should void.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleAuthorization {
    pub tenant_id: String,
    pub id: String,
    /// Already claimed for voiding by an interrupted void.
    pub voiding: bool,
}

impl Store {
    /// Records authorizations as pending, durably, before the gateway is called.
    pub async fn record_pending_authorizations(&self, tenant: &str, idempotency_key: &str, auths: &[PendingAuthorization]) -> Result<()> {
        if auths.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let mut sql = String::from(
            "INSERT INTO payment_authorizations (tenant_id, id, idempotency_key, token, amount, currency, status, created_at_ms, updated_at_ms) VALUES ",
        );
        for i in 0..auths.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            sql.push_str(&placeholders(i * 8 + 1, 6));
            sql.push_str(&format!(", 'pending', ${}, ${})", i * 8 + 7, i * 8 + 8));
        }
        let mut args: Vec<Val> = Vec::with_capacity(auths.len() * 8);
        for a in auths {
            args.extend([
                tenant.into(),
                (&a.id).into(),
                idempotency_key.into(),
                (&a.token).into(),
                a.amount.amount.into(),
                a.amount.currency.code().into(),
                now.into(),
                now.into(),
            ]);
        }
        self.write_rows(&sql, args).await?;
        Ok(())
    }

    /// Marks authorizations that will not become part of an order: `declined` (from pending)
    /// or `voided` (from voiding, once the gateway released it).
    pub async fn finish_authorizations(&self, tenant: &str, ids: &[String], status: &str) -> Result<()> {
        for id in ids {
            self.write_rows(
                "UPDATE payment_authorizations SET status = $3, updated_at_ms = $4 \
                 WHERE tenant_id = $1 AND id = $2 AND status IN ('pending', 'voiding')",
                vec![tenant.into(), id.into(), status.into(), now_ms().into()],
            )
            .await?;
        }
        Ok(())
    }

    /// Claims pending authorizations for voiding (`pending` → `voiding`) and returns the ids it
    /// claimed. Only a claimed authorization may be voided at the gateway: one that became
    /// `attached` to a committed order in the meantime is left alone, and an order can no longer
    /// attach one that is being voided.
    pub async fn claim_for_void(&self, tenant: &str, ids: &[String]) -> Result<Vec<String>> {
        let mut claimed = Vec::new();
        for id in ids {
            let rows = self
                .write_rows(
                    "UPDATE payment_authorizations SET status = 'voiding', updated_at_ms = $3 \
                     WHERE tenant_id = $1 AND id = $2 AND status = 'pending' RETURNING id",
                    vec![tenant.into(), id.into(), now_ms().into()],
                )
                .await?;
            if !rows.is_empty() {
                claimed.push(id.clone());
            }
        }
        Ok(claimed)
    }

    /// Authorizations older than `older_than_ms` (unix ms) still `pending` (their order never
    /// committed) or `voiding` (a void was interrupted).
    pub async fn stale_authorizations(&self, older_than_ms: i64) -> Result<Vec<StaleAuthorization>> {
        let rows = sqlx::query(
            "SELECT tenant_id, id, status FROM payment_authorizations WHERE status IN ('pending', 'voiding') AND created_at_ms <= $1 \
             ORDER BY created_at_ms LIMIT 500",
        )
        .bind(older_than_ms)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                let status: String = r.try_get("status")?;
                Ok(StaleAuthorization { tenant_id: r.try_get("tenant_id")?, id: r.try_get("id")?, voiding: status == "voiding" })
            })
            .collect()
    }

    /// Counts authorizations by status for one tenant (operators and tests read it).
    pub async fn authorization_counts(&self, tenant: &str) -> Result<std::collections::BTreeMap<String, i64>> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM payment_authorizations WHERE tenant_id = $1 GROUP BY status")
            .bind(tenant)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(|r| Ok((r.try_get("status")?, r.try_get("n")?))).collect()
    }
}
