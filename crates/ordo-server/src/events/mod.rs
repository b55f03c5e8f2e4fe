//! The event backbone's running parts: the relay that puts committed outbox rows into the log
//! (`relay`), the sinks that follow the log — the in-process bus (`Hub`), NATS JetStream (`nats`)
//! — and the settings they share. One process at a time holds the relay's lease (in storage, so
//! several processes sharing one PostgreSQL never number or publish an event twice); the others
//! stand by and take over when its lease runs out.

pub mod nats;
pub mod notify;
pub mod push;
pub mod relay;
pub mod webhooks;

use ordo_store::StoredEvent;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How the backbone runs (`ordo serve` flags).
#[derive(Debug, Clone)]
pub struct EventSettings {
    /// Publish the log to NATS JetStream at this URL (`--nats-url`).
    pub nats_url: Option<String>,
    /// The JetStream stream events go to (`--nats-stream`).
    pub nats_stream: String,
    /// How long events stay in the log after they entered it (`--event-retention`).
    pub retention: Duration,
    /// How often the relay looks for new events when it found none.
    pub poll: Duration,
    /// How long the relay's lease lasts without renewal.
    pub lease: Duration,
    /// Run the relay in this process at all (tests of a process without one).
    pub relay: bool,
    /// How long a webhook delivery is retried before it becomes a dead letter (24 h).
    pub webhook_retry_window: Duration,
    /// How long a webhook's circuit first stays open (30 s; doubling to at most 10 min).
    pub webhook_breaker_open: Duration,
    /// How often the lease holder prunes what the retention lets go (1 min).
    pub prune_every: Duration,
}

impl Default for EventSettings {
    fn default() -> Self {
        Self {
            nats_url: None,
            nats_stream: "ORDO_EVENTS".into(),
            retention: Duration::from_secs(7 * 24 * 3600),
            poll: Duration::from_millis(10),
            lease: Duration::from_secs(10),
            relay: true,
            webhook_retry_window: Duration::from_secs(24 * 3600),
            webhook_breaker_open: Duration::from_secs(30),
            prune_every: Duration::from_secs(60),
        }
    }
}

/// The in-process bus: every event the relay put in the log, in log order, to whoever in this
/// process subscribed (a subscriber that falls more than 4,096 events behind misses some and
/// should read `GET /v1/events` instead). Only the lease holder's bus carries events.
pub struct Hub {
    sender: tokio::sync::broadcast::Sender<Arc<StoredEvent>>,
    leader: AtomicBool,
    /// Until when this process may act as the lease holder: the last renewal plus the lease
    /// less a safety margin. Past it (renewals stalled), consumers stop by themselves.
    leader_until: std::sync::Mutex<Option<std::time::Instant>>,
    /// This process's name on the relay's lease.
    pub holder: String,
}

impl Hub {
    pub fn new() -> Arc<Self> {
        let (sender, _) = tokio::sync::broadcast::channel(4096);
        Arc::new(Self {
            sender,
            leader: AtomicBool::new(false),
            leader_until: std::sync::Mutex::new(None),
            holder: format!("ordo-{}", uuid::Uuid::now_v7()),
        })
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<StoredEvent>> {
        self.sender.subscribe()
    }

    pub(crate) fn publish(&self, event: Arc<StoredEvent>) {
        // No subscriber is fine: the log in storage is the record.
        let _ = self.sender.send(event);
    }

    /// Whether this process holds the relay's lease (and renewed it recently enough to be sure).
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Acquire)
            && self
                .leader_until
                .lock()
                .map(|u| u.is_some_and(|t| std::time::Instant::now() < t))
                .unwrap_or(false)
    }

    /// Records a renewal (`Some(lease)`: held for that long from now, less a margin) or a loss.
    pub(crate) fn set_leader(&self, held_for: Option<Duration>) {
        if let Ok(mut u) = self.leader_until.lock() {
            *u = held_for.map(|d| std::time::Instant::now() + d.mul_f64(0.6));
        }
        self.leader.store(held_for.is_some(), Ordering::Release);
    }
}
