//! Card authorizations as Ordo records them. Before the gateway is asked, the checkout's
//! idempotency key is claimed and each authorization is recorded `pending` — one commit, so a
//! concurrent duplicate of the request never reaches the gateway. The gateway's own authorization
//! id is stored as soon as it answers; the record becomes `attached` in the transaction that
//! commits its order, or `declined` / `voided`. Recovery finds pending ones whose order never
//! committed and voids them at the gateway by that id (or by Ordo's reference when the crash
//! came before it was stored). Never holds a transaction across a gateway call.

use crate::idempotency::{self, Claim, IdempotencyKey};
use crate::sql::{Sql, Tx, Val};
use crate::{Result, Store, now_ms, placeholders};
use ordo_domain::Money;
use sqlx::Row;

/// Where an authorization record is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AuthorizationStatus {
    /// Recorded before the gateway call; not yet part of an order.
    Pending,
    /// Part of a committed order.
    Attached,
    /// The gateway refused it.
    Declined,
    /// Claimed for voiding; the void at the gateway may not have happened yet.
    Voiding,
    /// Released at the gateway.
    Voided,
}

impl AuthorizationStatus {
    pub const ALL: [AuthorizationStatus; 5] = [
        Self::Pending,
        Self::Attached,
        Self::Declined,
        Self::Voiding,
        Self::Voided,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Attached => "attached",
            Self::Declined => "declined",
            Self::Voiding => "voiding",
            Self::Voided => "voided",
        }
    }

    pub fn parse(s: &str) -> Option<AuthorizationStatus> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

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
    /// The gateway's id for it, when it answered before the crash.
    pub gateway_authorization: Option<String>,
    /// Already claimed for voiding by an interrupted void.
    pub voiding: bool,
}

impl Store {
    /// Claims the checkout's idempotency key and, if this attempt got it, records its
    /// authorizations as pending — in one commit, before the gateway is called. A claim of the
    /// same request older than `lease_cutoff_ms` (its holder died) is taken over.
    pub async fn claim_checkout(
        &self,
        tenant: &str,
        key: &IdempotencyKey,
        lease_cutoff_ms: i64,
        auths: &[PendingAuthorization],
    ) -> Result<Claim> {
        let claim_id = idempotency::new_claim_id();
        if self.backend() == crate::Backend::Postgres {
            return self
                .claim_checkout_in_one_statement(tenant, key, lease_cutoff_ms, auths, claim_id)
                .await;
        }
        let (tenant, key, auths, id) = (
            tenant.to_string(),
            key.clone(),
            auths.to_vec(),
            claim_id.clone(),
        );
        let (claim, _) = self
            .unit(&tenant.clone(), move |tx| {
                let (tenant, key, auths, id) =
                    (tenant.clone(), key.clone(), auths.clone(), id.clone());
                Box::pin(async move {
                    let now = now_ms();
                    if let Some(existing) =
                        idempotency::claim(tx, &tenant, &key, &id, now, lease_cutoff_ms).await?
                    {
                        return Ok((Claim::Existing(existing), false));
                    }
                    record_pending(tx, &tenant, &key.key, &auths, now).await?;
                    Ok((Claim::Claimed { claim_id: id }, true))
                })
            })
            .await?;
        Ok(claim)
    }

    /// `claim_checkout` on PostgreSQL: the claim and the pending records in one statement (data-
    /// modifying CTEs), run by the claim worker, which commits the claims waiting together.
    async fn claim_checkout_in_one_statement(
        &self,
        tenant: &str,
        key: &IdempotencyKey,
        lease_cutoff_ms: i64,
        auths: &[PendingAuthorization],
        claim_id: String,
    ) -> Result<Claim> {
        let now = now_ms();
        let mut args: Vec<Val> = vec![
            tenant.into(),
            (&key.key).into(),
            (&key.request_hash).into(),
            now.into(),
            (&claim_id).into(),
            lease_cutoff_ms.into(),
            AuthorizationStatus::Pending.as_str().into(),
        ];
        let mut sql = String::from(
            "WITH claim AS (INSERT INTO idempotency (tenant_id, key, request_hash, status, response, created_at_ms, claim_id, claimed_at_ms) \
             VALUES ($1, $2, $3, 0, NULL, $4, $5, $4) \
             ON CONFLICT (tenant_id, key) DO UPDATE SET claim_id = excluded.claim_id, claimed_at_ms = excluded.claimed_at_ms \
             WHERE idempotency.status = 0 AND idempotency.request_hash = excluded.request_hash AND idempotency.claimed_at_ms <= $6 \
             RETURNING claim_id)",
        );
        if !auths.is_empty() {
            let rows: Vec<String> = auths
                .iter()
                .map(|a| {
                    let first = args.len() + 1;
                    args.extend([
                        Val::from(&a.id),
                        Val::from(&a.token),
                        a.amount.amount.into(),
                        a.amount.currency.code().into(),
                    ]);
                    format!(
                        "(${first}, ${}, CAST(${} AS BIGINT), ${})",
                        first + 1,
                        first + 2,
                        first + 3
                    )
                })
                .collect();
            sql.push_str(&format!(
                ", pending AS (INSERT INTO payment_authorizations (tenant_id, id, idempotency_key, token, amount, currency, status, created_at_ms, updated_at_ms) \
                 SELECT $1, v.id, $2, v.token, v.amount, v.currency, $7, $4, $4 FROM (VALUES {}) AS v(id, token, amount, currency) \
                 WHERE EXISTS (SELECT 1 FROM claim WHERE claim_id = $5) RETURNING id)",
                rows.join(", ")
            ));
        }
        sql.push_str(" SELECT (SELECT claim_id FROM claim)");
        let rows = self.run_claim(tenant, &key.key, sql, args).await?;
        if rows
            .first()
            .map(|r| r[0].opt_text())
            .transpose()?
            .flatten()
            .as_deref()
            == Some(claim_id.as_str())
        {
            return Ok(Claim::Claimed { claim_id });
        }
        match self.idempotency_record(tenant, &key.key).await? {
            Some(rec) => Ok(Claim::Existing(rec)),
            None => Err(crate::corrupt("idempotency record vanished")),
        }
    }

    /// Stores the gateway's ids of approved authorizations (so recovery can void them by it).
    pub async fn record_gateway_authorizations(
        &self,
        tenant: &str,
        ids: &[(String, String)],
    ) -> Result<()> {
        for (id, gateway_id) in ids {
            self.follow_up_rows(tenant,
                "UPDATE payment_authorizations SET gateway_authorization = $3 WHERE tenant_id = $1 AND id = $2",
                vec![tenant.into(), id.into(), gateway_id.into()],
            )
            .await?;
        }
        Ok(())
    }

    /// Marks authorizations that will not become part of an order: `Declined` (from pending)
    /// or `Voided` (from voiding, once the gateway released it).
    pub async fn finish_authorizations(
        &self,
        tenant: &str,
        ids: &[String],
        status: AuthorizationStatus,
    ) -> Result<()> {
        for id in ids {
            self.follow_up_rows(tenant,
                "UPDATE payment_authorizations SET status = $3, updated_at_ms = $4 WHERE tenant_id = $1 AND id = $2 AND status IN ($5, $6)",
                vec![
                    tenant.into(),
                    id.into(),
                    status.as_str().into(),
                    now_ms().into(),
                    AuthorizationStatus::Pending.as_str().into(),
                    AuthorizationStatus::Voiding.as_str().into(),
                ],
            )
            .await?;
        }
        Ok(())
    }

    /// Claims pending authorizations for voiding (`Pending` → `Voiding`) and returns the ids it
    /// claimed with the gateway's id of each. Only a claimed authorization may be voided at the
    /// gateway: one that became `Attached` to a committed order in the meantime is left alone,
    /// and an order can no longer attach one that is being voided.
    pub async fn claim_for_void(
        &self,
        tenant: &str,
        ids: &[String],
    ) -> Result<Vec<(String, Option<String>)>> {
        let mut claimed = Vec::new();
        for id in ids {
            let rows = self
                .follow_up_rows(tenant,
                    "UPDATE payment_authorizations SET status = $4, updated_at_ms = $3 \
                     WHERE tenant_id = $1 AND id = $2 AND status = $5 RETURNING id, gateway_authorization",
                    vec![
                        tenant.into(),
                        id.into(),
                        now_ms().into(),
                        AuthorizationStatus::Voiding.as_str().into(),
                        AuthorizationStatus::Pending.as_str().into(),
                    ],
                )
                .await?;
            if let Some(r) = rows.first() {
                claimed.push((id.clone(), r[1].opt_text()?));
            }
        }
        Ok(claimed)
    }

    /// Authorizations older than `older_than_ms` (unix ms) still `Pending` (their order never
    /// committed) or `Voiding` (a void was interrupted).
    pub async fn stale_authorizations(
        &self,
        older_than_ms: i64,
    ) -> Result<Vec<StaleAuthorization>> {
        let rows = sqlx::query(
            "SELECT tenant_id, id, status, gateway_authorization FROM payment_authorizations WHERE status IN ($2, $3) AND created_at_ms <= $1 \
             ORDER BY created_at_ms LIMIT 500",
        )
        .bind(older_than_ms)
        .bind(AuthorizationStatus::Pending.as_str())
        .bind(AuthorizationStatus::Voiding.as_str())
        .fetch_all(&mut *self.conn(crate::ALL_TENANTS).await?)
        .await?;
        rows.iter()
            .map(|r| {
                let status: String = r.try_get("status")?;
                Ok(StaleAuthorization {
                    tenant_id: r.try_get("tenant_id")?,
                    id: r.try_get("id")?,
                    gateway_authorization: r.try_get("gateway_authorization")?,
                    voiding: AuthorizationStatus::parse(&status)
                        == Some(AuthorizationStatus::Voiding),
                })
            })
            .collect()
    }

    /// Counts authorizations by status for one tenant (operators, `/metrics` and tests read it).
    pub async fn authorization_counts(
        &self,
        tenant: &str,
    ) -> Result<std::collections::BTreeMap<String, i64>> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM payment_authorizations WHERE tenant_id = $1 GROUP BY status")
            .bind(tenant)
            .fetch_all(&mut *self.conn(tenant).await?)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
            .collect()
    }
}

/// Inserts the pending records of one checkout in the caller's transaction.
async fn record_pending(
    tx: &mut Tx<'_>,
    tenant: &str,
    idempotency_key: &str,
    auths: &[PendingAuthorization],
    now: i64,
) -> Result<()> {
    if auths.is_empty() {
        return Ok(());
    }
    let mut sql = String::from(
        "INSERT INTO payment_authorizations (tenant_id, id, idempotency_key, token, amount, currency, status, created_at_ms, updated_at_ms) VALUES ",
    );
    for i in 0..auths.len() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        sql.push_str(&placeholders(i * 9 + 1, 9));
        sql.push(')');
    }
    let mut args: Vec<Val> = Vec::with_capacity(auths.len() * 9);
    for a in auths {
        args.extend([
            tenant.into(),
            (&a.id).into(),
            idempotency_key.into(),
            (&a.token).into(),
            a.amount.amount.into(),
            a.amount.currency.code().into(),
            AuthorizationStatus::Pending.as_str().into(),
            now.into(),
            now.into(),
        ]);
    }
    tx.exec(&sql, args).await?;
    Ok(())
}
