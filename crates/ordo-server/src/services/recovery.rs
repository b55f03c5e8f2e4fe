//! Authorization recovery: voids card authorizations that were recorded as pending but whose
//! order never committed (the process crashed between the gateway call and the commit, or a
//! placement failed without voiding), and frees the idempotency claims such crashes abandoned.
//! Runs at start-up and then periodically. Authorizations
//! this process is still working on are skipped; `grace` protects other processes' in-flight ones.

use crate::AppState;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Authorization ids this process is between "recorded" and "attached or voided" on.
#[derive(Default, Clone)]
pub struct InFlight(Arc<Mutex<HashSet<String>>>);

/// Removes its ids from the in-flight set when dropped.
pub struct InFlightGuard {
    set: InFlight,
    ids: Vec<String>,
}

impl InFlight {
    pub fn hold(&self, ids: &[String]) -> InFlightGuard {
        if let Ok(mut s) = self.0.lock() {
            s.extend(ids.iter().cloned());
        }
        InFlightGuard {
            set: self.clone(),
            ids: ids.to_vec(),
        }
    }
    fn contains(&self, id: &str) -> bool {
        self.0.lock().map(|s| s.contains(id)).unwrap_or(true)
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if let Ok(mut s) = self.set.0.lock() {
            for id in &self.ids {
                s.remove(id);
            }
        }
    }
}

/// One recovery pass; returns how many authorizations it voided.
pub async fn recover_authorizations(
    state: &AppState,
    grace: Duration,
) -> Result<usize, ordo_store::StoreError> {
    let cutoff = ordo_store::now_ms() - grace.as_millis() as i64;
    let stale = state.store.stale_authorizations(cutoff).await?;
    let mut voided = 0;
    for a in stale.iter().filter(|a| !state.inflight.contains(&a.id)) {
        let id = std::slice::from_ref(&a.id);
        // Claim before voiding: an order that attached it meanwhile keeps it.
        if !a.voiding
            && state
                .store
                .claim_for_void(&a.tenant_id, id)
                .await?
                .is_empty()
        {
            continue;
        }
        // By the gateway's own id when it was stored before the crash, else by Ordo's reference.
        state
            .gateway
            .void_authorization(&a.id, a.gateway_authorization.as_deref())
            .await;
        state
            .store
            .finish_authorizations(&a.tenant_id, id, ordo_store::AuthorizationStatus::Voided)
            .await?;
        voided += 1;
    }
    if voided > 0 {
        tracing::warn!(
            voided,
            "recovery voided authorizations whose orders never committed"
        );
    }
    // Their idempotency claims were abandoned too: free the keys for a fresh retry.
    let released = state.store.release_abandoned_claims(cutoff).await?;
    if released > 0 {
        tracing::warn!(
            released,
            "recovery released idempotency claims abandoned by a crash"
        );
    }
    Ok(voided)
}

/// Runs recovery now and then every `every`, until the process ends.
pub fn spawn(state: AppState, grace: Duration, every: Duration) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = recover_authorizations(&state, grace).await {
                tracing::warn!(error = %e, "authorization recovery failed; will retry");
            }
            if let Err(e) = settle_payment_ops(&state, grace).await {
                tracing::warn!(error = %e, "settling open payment operations failed; will retry");
            }
            // Expired checkout holds give their stock back.
            match state
                .store
                .release_expired_holds(ordo_store::now_ms(), 1000)
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(released = n, "released expired checkout holds"),
                Err(e) => {
                    tracing::warn!(error = %e, "releasing expired checkout holds failed; will retry")
                }
            }
            tokio::time::sleep(every).await;
        }
    });
}

/// Settles payment operations a crash or a lost answer left open: each is asked of the gateway
/// by its key. A capture's claim is finished as its answers say (shipped, or released with what
/// was taken refunded); a void or refund never answered is sent again (the same key: the gateway
/// does it at most once). Returns how many operations it settled.
pub async fn settle_payment_ops(
    state: &AppState,
    grace: Duration,
) -> Result<usize, ordo_store::StoreError> {
    use crate::gateway::OperationStatus;
    use ordo_store::OpOutcome;
    // A live ship cannot outlast its request (`--request-timeout` drops it): only operations
    // older than that, and than the grace, are left by a crash rather than still in flight.
    let wait = grace.max(state.config.request_timeout + Duration::from_secs(5));
    let cutoff = ordo_store::now_ms() - wait.as_millis() as i64;
    let freed = state.store.release_free_claims(cutoff).await?;
    if freed > 0 {
        tracing::warn!(
            freed,
            "recovery released ship claims that needed no payment and never finished"
        );
    }
    let ops = state.store.stale_payment_ops(cutoff).await?;
    let mut settled = 0;
    // Captures, by the fulfilment whose ship claimed them.
    let mut claims: std::collections::BTreeMap<
        (String, String),
        Vec<(ordo_store::PaymentOp, Option<OpOutcome>)>,
    > = Default::default();
    for (tenant, op) in ops {
        let outcome = match state.gateway.status(&op.id).await {
            Ok(OperationStatus::Succeeded { reference }) => Some(OpOutcome::Succeeded {
                gateway_ref: reference,
            }),
            Ok(OperationStatus::Failed { reason }) => Some(OpOutcome::Failed { reason }),
            Ok(OperationStatus::Unknown) => None,
            Err(e) => {
                tracing::warn!(op = %op.id, error = %e, "gateway status unknown; will retry");
                continue;
            }
        };
        if op.kind == "capture" {
            // Never seen by the gateway: it did not happen.
            let outcome = outcome.unwrap_or(OpOutcome::Failed {
                reason: "the capture never reached the gateway".into(),
            });
            claims
                .entry((tenant, op.subject.clone()))
                .or_default()
                .push((op, Some(outcome)));
            continue;
        }
        let outcome = match outcome {
            Some(o) => o,
            None => {
                // Never sent (a crash after the commit): send it now, under its own key.
                let Ok(amount) = super::lifecycle::money(op.amount, &op.currency) else {
                    continue;
                };
                let sent = match op.kind.as_str() {
                    "void" => {
                        state
                            .gateway
                            .void(&op.id, &op.authorization_id, amount)
                            .await
                    }
                    _ => {
                        state
                            .gateway
                            .refund(&op.id, &op.authorization_id, amount)
                            .await
                    }
                };
                match super::lifecycle::resolve(state, &op, sent).await {
                    Some(o) => o,
                    None => continue,
                }
            }
        };
        state
            .store
            .finish_payment_op(&tenant, &op.id, &outcome)
            .await?;
        settled += 1;
    }
    for ((tenant, ful), ops) in claims {
        let outcomes: Vec<(String, OpOutcome)> = ops
            .iter()
            .filter_map(|(op, o)| o.clone().map(|o| (op.id.clone(), o)))
            .collect();
        // Every capture of the claim must be answered, else the store leaves it for next time.
        match state
            .store
            .finish_ship(&tenant, &ful, &outcomes, &ordo_store::Actor::system())
            .await?
        {
            Ok((_, refunds)) => {
                settled += outcomes.len();
                super::lifecycle::send_ops(state, &tenant, &refunds).await;
            }
            Err(e) => {
                tracing::warn!(fulfillment = %ful, error = %e, "a ship claim is not settled yet")
            }
        }
    }
    if settled > 0 {
        tracing::warn!(settled, "recovery settled payment operations left open");
    }
    Ok(settled)
}
