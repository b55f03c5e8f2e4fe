//! Publishing the log to NATS JetStream: subject `ordo.<tenant>.<type without "ordo.">`, the
//! CloudEvent as the body (structured mode), its id as `Nats-Msg-Id`, so the stream drops a
//! re-publication within its duplicate window. The publisher follows the log from its cursor
//! (`event_cursors.nats`) while this process holds the relay's lease, and moves the cursor past
//! what JetStream acknowledged.
//!
//! Order per subject: a round publishes in waves, each wave holding at most one event per
//! subject, and waits for every acknowledgement of a wave before the next; a failure ends the
//! round, so no event is in the stream before an earlier event of its subject. The cursor moves
//! over the acknowledged prefix of the log; the rest is published again (and de-duplicated).
//!
//! NATS down: the publisher retries with backoff (up to 10 s); orders are still accepted and the
//! log grows; the backlog drains when NATS is back.

use super::EventSettings;
use crate::AppState;
use async_nats::jetstream;
use std::collections::HashMap;
use std::time::Duration;

/// The stream's limits: every `ordo.>` subject, kept for the event retention (and at most
/// 10 GiB, oldest dropped first), on disk, re-publications of one id within 10 minutes dropped.
pub fn stream_config(name: &str, retention: Duration) -> jetstream::stream::Config {
    jetstream::stream::Config {
        name: name.to_string(),
        subjects: vec!["ordo.>".into()],
        max_age: retention,
        max_bytes: 10 * 1024 * 1024 * 1024,
        storage: jetstream::stream::StorageType::File,
        discard: jetstream::stream::DiscardPolicy::Old,
        duplicate_window: Duration::from_secs(600),
        ..Default::default()
    }
}

pub(super) async fn run(state: AppState, url: String, settings: EventSettings) {
    let client = match async_nats::ConnectOptions::new()
        .name("ordo")
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        .connect(url.as_str())
        .await
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, url = %url, "cannot use NATS: events are not published to it");
            return;
        }
    };
    let js = jetstream::new(client);
    let mut backoff = Duration::from_millis(200);
    let mut stream_ready = false;
    loop {
        if !state.events.is_leader() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        if !stream_ready {
            match js
                .get_or_create_stream(stream_config(&settings.nats_stream, settings.retention))
                .await
            {
                Ok(_) => stream_ready = true,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot create the JetStream stream; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            }
        }
        match round(&state, &js).await {
            Ok(0) => {
                backoff = Duration::from_millis(200);
                tokio::time::sleep(settings.poll).await;
            }
            Ok(_) => backoff = Duration::from_millis(200),
            Err(e) => {
                metrics::counter!("ordo_event_publish_failures_total", "sink" => "nats")
                    .increment(1);
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "publishing events to NATS failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// One round: publish up to 1,000 events after the cursor; how many the cursor moved over.
async fn round(state: &AppState, js: &jetstream::Context) -> Result<usize, String> {
    let store = &state.store;
    let cursor = store
        .event_cursor("nats")
        .await
        .map_err(|e| e.to_string())?;
    let events = store
        .log_after(cursor, 1000)
        .await
        .map_err(|e| e.to_string())?;
    if events.is_empty() {
        return Ok(0);
    }
    // Waves: the k-th event of a subject within this round goes in wave k.
    let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
    let mut waves: Vec<Vec<usize>> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let k = seen
            .entry((e.tenant.as_str(), e.subject.as_str()))
            .or_insert(0);
        if waves.len() <= *k {
            waves.push(Vec::new());
        }
        waves[*k].push(i);
        *k += 1;
    }
    let mut acked = vec![false; events.len()];
    let mut failure = None;
    'waves: for wave in &waves {
        let mut pending = Vec::with_capacity(wave.len());
        for &i in wave {
            let e = &events[i];
            let Some(kind) = ordo_domain::events::EventType::parse(&e.kind) else {
                // A type this build does not know (written by a newer one): left out of NATS.
                tracing::warn!(kind = %e.kind, "unknown event type: not published to NATS");
                acked[i] = true;
                continue;
            };
            let body = e.to_json().into_bytes();
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", e.id.as_str());
            headers.insert("Content-Type", "application/cloudevents+json");
            match js
                .publish_with_headers(kind.nats_subject(&e.tenant), headers, body.into())
                .await
            {
                Ok(ack) => pending.push((i, ack)),
                Err(err) => {
                    failure = Some(err.to_string());
                    break 'waves;
                }
            }
        }
        for (i, ack) in pending {
            match ack.await {
                Ok(ack) => {
                    acked[i] = true;
                    if ack.duplicate {
                        metrics::counter!("ordo_event_publish_duplicates_total", "sink" => "nats")
                            .increment(1);
                    }
                }
                Err(err) => failure = Some(err.to_string()),
            }
        }
        if failure.is_some() {
            break;
        }
    }
    let prefix = acked.iter().take_while(|a| **a).count();
    if prefix > 0 {
        let to = events[prefix - 1].position.unwrap_or(cursor);
        let now = ordo_store::now_ms();
        for e in &events[..prefix] {
            metrics::histogram!("ordo_event_publish_delay_seconds", "sink" => "nats")
                .record((now - e.created_at_ms).max(0) as f64 / 1000.0);
        }
        metrics::counter!("ordo_events_published_total", "sink" => "nats").increment(prefix as u64);
        store
            .advance_event_cursor(&state.events.holder, "nats", to)
            .await
            .map_err(|e| e.to_string())?;
    }
    match failure {
        Some(f) => Err(f),
        None => Ok(prefix),
    }
}
