//! Idempotency records, the storage half of `services::idempotency`: one row per tenant and
//! scoped key (the service puts the operation — and, once principals exist, the principal — in
//! the key). A row is either a claim in progress (`status` 0, with the claim's id and time) or a
//! finished answer (`status` and `response`) that every retry gets back. A claim older than its
//! lease can be taken over by a retry of the same request: its holder died, and anything it
//! would still commit checks its claim first (`engine.rs`) and gives up.

use crate::sql::{Sql, Tx};
use crate::{Result, Store, StoreError};

/// The stored first answer (or claim in progress) for a key.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyRecord {
    pub request_hash: String,
    /// The HTTP status of the stored answer; 0 while a claim is in progress.
    pub status: i64,
    pub response: Option<String>,
}

impl IdempotencyRecord {
    pub fn in_progress(&self) -> bool {
        self.status == 0
    }
}

/// A key with the hash of the request it was sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// Already scoped by the caller (e.g. `orders:<client key>`).
    pub key: String,
    pub request_hash: String,
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This attempt holds the key; it must commit its effects with this claim id.
    Claimed { claim_id: String },
    /// Someone else holds it or already answered it.
    Existing(IdempotencyRecord),
}

/// The outcome of an idempotent write: done now, or answered before (replay it).
#[derive(Debug)]
pub enum Idempotent<T> {
    Done(T),
    Replay(IdempotencyRecord),
}

const RECORD: &str =
    "SELECT request_hash, status, response FROM idempotency WHERE tenant_id = $1 AND key = $2";

/// Decodes the first row of `RECORD`.
fn record(rows: &[crate::sql::Row]) -> Result<Option<IdempotencyRecord>> {
    rows.first()
        .map(|r| {
            Ok(IdempotencyRecord {
                request_hash: r[0].text()?,
                status: r[1].int()?,
                response: r[2].opt_text()?,
            })
        })
        .transpose()
}

pub(crate) async fn lookup(
    tx: &mut Tx<'_>,
    tenant: &str,
    key: &str,
) -> Result<Option<IdempotencyRecord>> {
    record(&tx.rows(RECORD, vec![tenant.into(), key.into()]).await?)
}

/// Claims `key` as in progress (or takes over a claim of the same request older than
/// `lease_cutoff_ms`). `Ok(None)`: claimed with `claim_id`.
pub(crate) async fn claim(
    tx: &mut Tx<'_>,
    tenant: &str,
    key: &IdempotencyKey,
    claim_id: &str,
    now: i64,
    lease_cutoff_ms: i64,
) -> Result<Option<IdempotencyRecord>> {
    let rows = tx
        .rows(
            "INSERT INTO idempotency (tenant_id, key, request_hash, status, response, created_at_ms, claim_id, claimed_at_ms) \
             VALUES ($1, $2, $3, 0, NULL, $4, $5, $4) \
             ON CONFLICT (tenant_id, key) DO UPDATE SET claim_id = excluded.claim_id, claimed_at_ms = excluded.claimed_at_ms \
             WHERE idempotency.status = 0 AND idempotency.request_hash = excluded.request_hash AND idempotency.claimed_at_ms <= $6 \
             RETURNING claim_id",
            vec![tenant.into(), (&key.key).into(), (&key.request_hash).into(), now.into(), claim_id.into(), lease_cutoff_ms.into()],
        )
        .await?;
    if rows
        .first()
        .map(|r| r[0].opt_text())
        .transpose()?
        .flatten()
        .as_deref()
        == Some(claim_id)
    {
        return Ok(None);
    }
    lookup(tx, tenant, &key.key)
        .await?
        .map(Some)
        .ok_or_else(|| StoreError::Corrupt("idempotency record vanished".into()))
}

impl Store {
    /// The record stored for a key, if any (a cheap read before doing any work).
    pub async fn idempotency_record(
        &self,
        tenant: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>> {
        record(
            &self
                .read_rows(tenant, RECORD, vec![tenant.into(), key.into()])
                .await?,
        )
    }

    /// Releases a claim that will not become an answer (the request failed before committing
    /// anything), so a retry is evaluated afresh. A no-op if the claim is no longer this one's.
    pub async fn release_claim(&self, tenant: &str, key: &str, claim_id: &str) -> Result<()> {
        self.follow_up_rows(tenant,
            "DELETE FROM idempotency WHERE tenant_id = $1 AND key = $2 AND claim_id = $3 AND status = 0",
            vec![tenant.into(), key.into(), claim_id.into()],
        )
        .await?;
        Ok(())
    }
}

impl Store {
    /// Deletes claims still in progress that were made before `older_than_ms`: their holders
    /// died (a live holder's claim is younger than the lease). A retry then starts afresh, and
    /// anything the dead holder would still commit finds its claim gone and gives up.
    pub async fn release_abandoned_claims(&self, older_than_ms: i64) -> Result<u64> {
        // PostgreSQL: only rows nobody holds (a round holding a stale claim keeps it), so this
        // never waits on a placement and cannot close a lock cycle with one.
        let (n, _) = self
            .unit_admitted(
                crate::ALL_TENANTS,
                move |tx| {
                    Box::pin(async move {
                        let sql = if tx.locks_rows() {
                            "DELETE FROM idempotency WHERE (tenant_id, key) IN \
                             (SELECT tenant_id, key FROM idempotency WHERE status = 0 AND claimed_at_ms <= $1 FOR UPDATE SKIP LOCKED)"
                        } else {
                            "DELETE FROM idempotency WHERE status = 0 AND claimed_at_ms <= $1"
                        };
                        Ok((tx.exec(sql, vec![older_than_ms.into()]).await?, true))
                    })
                },
                crate::writer::Admission::FollowUp,
            )
            .await?;
        Ok(n)
    }
}

pub(crate) fn new_claim_id() -> String {
    format!("clm_{}", uuid::Uuid::now_v7().simple())
}

/// How the caller renders a write's result as the answer stored under its key: status and body.
pub type Render<T> = std::sync::Arc<dyn Fn(&T) -> (i64, String) + Send + Sync>;

impl Store {
    /// Runs `effect` as one unit with its idempotency record: with a key, the key is claimed
    /// first (a duplicate running at the same moment waits on it and then gets this answer), the
    /// effect runs, and its rendered answer is stored — all in one commit, so a retry can never
    /// apply the effect twice, even across a crash. Without a key, just the effect.
    pub(crate) async fn idempotent<T, F>(
        &self,
        tenant: &str,
        key: Option<(IdempotencyKey, Render<T>)>,
        effect: F,
    ) -> Result<Idempotent<T>>
    where
        T: Send + 'static,
        F: for<'a, 'c> Fn(&'a mut Tx<'c>) -> crate::unit::BoxFuture<'a, Result<(T, bool)>>
            + Send
            + Sync
            + 'static,
    {
        let tenant = tenant.to_string();
        let effect = std::sync::Arc::new(effect);
        let (out, _) = self
            .unit(&tenant.clone(), move |tx| {
                let (tenant, key, effect) = (tenant.clone(), key.clone(), effect.clone());
                Box::pin(async move {
                    let now = crate::now_ms();
                    if let Some((k, _)) = &key {
                        if let Some(existing) = claim(tx, &tenant, k, &new_claim_id(), now, i64::MIN).await? {
                            return Ok((Idempotent::Replay(existing), false));
                        }
                    }
                    let (value, keep) = effect(tx).await?;
                    if keep {
                        if let Some((k, render)) = &key {
                            let (status, body) = render(&value);
                            tx.exec(
                                "UPDATE idempotency SET status = $3, response = $4 WHERE tenant_id = $1 AND key = $2",
                                vec![tenant.as_str().into(), k.key.as_str().into(), status.into(), body.into()],
                            )
                            .await?;
                        }
                    }
                    Ok((Idempotent::Done(value), keep))
                })
            })
            .await?;
        Ok(out)
    }
}
