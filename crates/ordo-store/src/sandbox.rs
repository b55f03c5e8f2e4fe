//! The sandbox gateway's own ledger. The sandbox stands in for an outside payment service: it
//! keeps its state in its own table, written in transactions of its own (never inside one of
//! Ordo's), so it survives restarts and is shared by every Ordo process on the database, as a
//! real provider's would be.

use crate::sql::{Sql, Val};
use crate::{Result, Store, corrupt, now_ms};

/// One operation the sandbox performed (or refused), under the caller's idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxEntry {
    pub kind: String,
    pub auth_ref: String,
    pub amount: i64,
    /// `ok` or why it was refused.
    pub outcome: String,
    /// Whether the caller was given the answer (a simulated timeout performs the operation and
    /// loses the answer; the caller finds it by a status query).
    pub answered: bool,
}

/// What an authorization has seen: captured, refunded and voided so far (successful operations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SandboxSums {
    pub captured: i64,
    pub refunded: i64,
    pub voided: i64,
    /// Earlier operations of the same kind on this authorization, whatever their outcome.
    pub tries: i64,
}

impl Store {
    /// Performs `kind` on `auth_ref` once per `key`: an earlier entry under the key is returned as
    /// it was (`true`: it existed); else `decide` (given the authorization's sums so far) says the
    /// outcome and whether the answer reaches the caller, and the entry is stored.
    pub async fn sandbox_operation<F>(
        &self,
        key: &str,
        kind: &str,
        auth_ref: &str,
        amount: i64,
        decide: F,
    ) -> Result<(SandboxEntry, bool)>
    where
        F: Fn(SandboxSums) -> (String, bool) + Send + Sync + 'static,
    {
        let (key, kind, auth_ref) = (key.to_string(), kind.to_string(), auth_ref.to_string());
        let decide = std::sync::Arc::new(decide);
        let (out, _) = self
            .unit("sandbox", move |tx| {
                let (key, kind, auth_ref, decide) =
                    (key.clone(), kind.clone(), auth_ref.clone(), decide.clone());
                Box::pin(async move {
                    if tx.locks_rows() {
                        // One operation per authorization at a time.
                        tx.rows(
                            "SELECT 1 FROM (SELECT pg_advisory_xact_lock(hashtext($1))) AS l",
                            vec![auth_ref.as_str().into()],
                        )
                        .await?;
                    }
                    let found = tx
                        .rows(
                            "SELECT kind, auth_ref, amount, outcome, answered FROM sandbox_gateway WHERE key = $1",
                            vec![key.as_str().into()],
                        )
                        .await?;
                    if let Some(r) = found.first() {
                        return Ok(((entry(r)?, true), false));
                    }
                    let mut sums = SandboxSums::default();
                    for r in tx
                        .rows(
                            "SELECT kind, CAST(SUM(amount) AS BIGINT) FROM sandbox_gateway WHERE auth_ref = $1 AND outcome = 'ok' GROUP BY kind",
                            vec![auth_ref.as_str().into()],
                        )
                        .await?
                    {
                        let v = r[1].int()?;
                        match r[0].text()?.as_str() {
                            "capture" => sums.captured = v,
                            "refund" => sums.refunded = v,
                            "void" => sums.voided = v,
                            _ => {}
                        }
                    }
                    sums.tries = tx
                        .rows(
                            "SELECT COUNT(*) FROM sandbox_gateway WHERE auth_ref = $1 AND kind = $2",
                            vec![auth_ref.as_str().into(), kind.as_str().into()],
                        )
                        .await?
                        .first()
                        .map(|r| r[0].int())
                        .transpose()?
                        .unwrap_or(0);
                    let (outcome, answered) = decide(sums);
                    tx.exec(
                        "INSERT INTO sandbox_gateway (key, kind, auth_ref, amount, outcome, answered, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        vec![
                            key.as_str().into(),
                            kind.as_str().into(),
                            auth_ref.as_str().into(),
                            amount.into(),
                            outcome.as_str().into(),
                            i64::from(answered).into(),
                            now_ms().into(),
                        ],
                    )
                    .await?;
                    let e = SandboxEntry { kind, auth_ref, amount, outcome, answered };
                    Ok(((e, false), true))
                })
            })
            .await?;
        Ok(out)
    }

    /// The entry under `key`, if the sandbox performed (or refused) an operation under it.
    pub async fn sandbox_entry(&self, key: &str) -> Result<Option<SandboxEntry>> {
        let rows = self
            .read_rows(
                "sandbox",
                "SELECT kind, auth_ref, amount, outcome, answered FROM sandbox_gateway WHERE key = $1",
                vec![key.into()],
            )
            .await?;
        rows.first().map(|r| entry(r)).transpose()
    }
}

fn entry(r: &[Val]) -> Result<SandboxEntry> {
    Ok(SandboxEntry {
        kind: r[0].text()?,
        auth_ref: r[1].text()?,
        amount: r[2].int()?,
        outcome: r[3].text()?,
        answered: match r[4].int()? {
            0 => false,
            1 => true,
            _ => return Err(corrupt("sandbox answered flag")),
        },
    })
}
