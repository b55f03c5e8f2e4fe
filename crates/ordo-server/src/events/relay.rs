//! The relay: while this process holds the lease, it numbers committed outbox rows in the log
//! (oldest first, up to 1,000 a round), hands them to the in-process bus, and prunes what every
//! consumer has seen once it is older than the retention. Rounds follow each other at once while
//! there is work, every `poll` when there is none. Without the lease it checks every third of
//! the lease's length whether the holder is gone.

use super::EventSettings;
use crate::AppState;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Starts the relay, the webhook dispatcher, the notifier and, with `--nats-url`, the NATS
/// publisher.
pub fn spawn(state: &AppState) {
    let settings = state.config.events.clone();
    if !settings.relay {
        return;
    }
    tokio::spawn(run(state.clone(), settings.clone()));
    tokio::spawn(prune_loop(state.clone(), settings.clone()));
    super::webhooks::spawn(state);
    super::notify::spawn(state);
    if let Some(url) = settings.nats_url.clone() {
        tokio::spawn(super::nats::run(state.clone(), url, settings));
    }
}

async fn run(state: AppState, settings: EventSettings) {
    let hub = state.events.clone();
    let lease_ms = settings.lease.as_millis() as i64;
    let renew_every = settings.lease / 3;
    let mut renewed: Option<Instant> = None;
    loop {
        if renewed.is_none_or(|at| at.elapsed() >= renew_every) {
            match state.store.relay_lease(&hub.holder, lease_ms).await {
                Ok(yes) => {
                    if yes && !hub.is_leader() {
                        tracing::info!(holder = %hub.holder, "this process now relays events");
                    }
                    hub.set_leader(yes.then_some(settings.lease));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot renew the event relay's lease");
                    hub.set_leader(None);
                }
            }
            renewed = Some(Instant::now());
        }
        if !hub.is_leader() {
            tokio::time::sleep(renew_every.min(Duration::from_secs(1))).await;
            continue;
        }
        let moved = match sequence_round(&state).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "event relay round failed");
                tokio::time::sleep(Duration::from_millis(500)).await;
                0
            }
        };
        if moved == 0 {
            tokio::time::sleep(settings.poll).await;
        }
    }
}

/// One round: number up to 1,000 committed events and hand them to the bus; how many.
async fn sequence_round(state: &AppState) -> Result<usize, ordo_store::StoreError> {
    let hub = &state.events;
    let batch = state.store.unsequenced_events(1000).await?;
    if batch.is_empty() {
        return Ok(0);
    }
    let ids = batch.iter().map(|e| e.row_id).collect();
    let Some(positions) = state.store.sequence_events(&hub.holder, ids).await? else {
        tracing::info!(holder = %hub.holder, "the event relay's lease went to another process");
        hub.set_leader(None);
        return Ok(0);
    };
    let now = ordo_store::now_ms();
    let n = batch.len();
    for (mut e, p) in batch.into_iter().zip(positions) {
        e.position = Some(p);
        metrics::histogram!("ordo_event_log_delay_seconds")
            .record((now - e.created_at_ms).max(0) as f64 / 1000.0);
        hub.publish(Arc::new(e));
    }
    metrics::counter!("ordo_events_published_total", "sink" => "log").increment(n as u64);
    Ok(n)
}

/// Every `prune_every` (a minute), while this process holds the lease: prune (in a task of its own, so a long
/// prune never delays the lease's renewal).
async fn prune_loop(state: AppState, settings: EventSettings) {
    loop {
        tokio::time::sleep(settings.prune_every).await;
        if !state.events.is_leader() {
            continue;
        }
        if let Err(e) = prune(&state, &settings).await {
            tracing::warn!(error = %e, "pruning the event log failed");
        }
    }
}

/// Deletes events older than the retention that every consumer has seen, and finished webhook
/// deliveries and notifications older than the retention.
async fn prune(state: &AppState, settings: &EventSettings) -> Result<(), ordo_store::StoreError> {
    let store = &state.store;
    let mut upto = i64::MAX;
    if settings.nats_url.is_some() {
        upto = upto.min(store.event_cursor("nats").await?);
    }
    upto = upto.min(store.webhook_cursor_floor().await?.unwrap_or(i64::MAX));
    if state.config.notify.enabled {
        upto = upto.min(store.event_cursor("notifications").await?);
    }
    let before = ordo_store::now_ms() - settings.retention.as_millis() as i64;
    loop {
        let gone = store.prune_events(before, upto, 5000).await?;
        if gone < 5000 || !state.events.is_leader() {
            break;
        }
    }
    store
        .prune_deliveries_and_notifications(before, 5000)
        .await?;
    Ok(())
}
