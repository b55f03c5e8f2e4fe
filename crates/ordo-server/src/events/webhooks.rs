//! Webhook delivery, run by the relay's lease holder.
//!
//! The supervisor wakes on every event the relay logs (and every 200 ms): it copies each
//! subscription's new events into deliveries (`fan_out`) and keeps one worker per subscription.
//! A worker sends, concurrently, the oldest pending delivery of each subject that is due, waits
//! for all of them, records the attempts in one commit, and starts over — so one subject's events
//! reach an endpoint in order, and a failing delivery holds back only later events of its own
//! subject. A dead delivery (retries exhausted) no longer holds anything back.
//!
//! Retries: 1 s after the first failure (within 2 s), then 5 s doubling to at most 1 h, each
//! ±20 % jitter, until 24 h after the delivery was created (or replayed): then a dead letter.
//! Circuit breaker: after 5 failures in a row with no success, no attempts for 30 s, doubling
//! with every further failure up to 10 min (`EventSettings` holds both periods); then one delivery probes (half-open), and a success
//! closes it. A 2xx within 10 s is success; redirects are not followed; a URL whose host resolves
//! to a loopback, private, link-local or otherwise non-public address is refused at every
//! attempt unless `--webhooks-allow-private`.

use crate::AppState;
use hmac::{Hmac, Mac};
use ordo_domain::events::TypeFilter;
use ordo_store::{AttemptOutcome, AttemptRecord, DeliveryRecord, WebhookRecord};
use sha2::Sha256;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Failures in a row that open the circuit.
pub const BREAKER_THRESHOLD: i64 = 5;
/// The most deliveries of one subscription in flight at once.
const MAX_IN_FLIGHT: usize = 128;

/// `v1=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed with the secret's bytes>`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("v1={hex}")
}

/// Whether an address is one a webhook may be sent to: public unicast.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64.0.0/10, shared address space
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0.0/24, protocol assignments
                || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18.0.0/15, benchmarking
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || s[0] == 0x2002 // 6to4 (reaches IPv4 space)
                || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64 (reaches IPv4 space)
                || s[..6] == [0; 6] // IPv4-compatible ::a.b.c.d
                || (s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0)) // SIIT ::ffff:0:a.b.c.d
        }
    }
}

/// Checks a webhook URL: absolute http(s), a host, no credentials, and (unless private
/// addresses are allowed) a host that resolves only to public addresses.
pub async fn check_url(raw: &str, allow_private: bool) -> Result<reqwest::Url, String> {
    if raw.len() > 2048 {
        return Err("a webhook URL is at most 2,048 characters".into());
    }
    let url = reqwest::Url::parse(raw).map_err(|e| format!("not an absolute URL: {e}"))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err("a webhook URL is http:// or https://".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a webhook URL carries no credentials; verify the signature instead".into());
    }
    if url.fragment().is_some() {
        return Err("a webhook URL has no #fragment".into());
    }
    let Some(host) = url.host_str() else {
        return Err("a webhook URL names a host".into());
    };
    if allow_private {
        return Ok(url);
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::lookup_host((host, port)),
        )
        .await
        .map_err(|_| format!("resolving {host} timed out"))?
        .map_err(|e| format!("{host} does not resolve: {e}"))?
        .collect(),
    };
    if addrs.is_empty() {
        return Err(format!("{host} resolves to no address"));
    }
    if addrs.iter().any(|a| !is_public(a.ip())) {
        // Which address is not said: the answer would map internal names for the caller.
        return Err(format!(
            "{host} resolves to a loopback, private, link-local or reserved address (start Ordo with --webhooks-allow-private to allow it)"
        ));
    }
    Ok(url)
}

/// The DNS resolver of delivery requests: public addresses only (unless private ones are
/// allowed), so a name that was public at subscription and points inwards now is refused.
struct PublicOnly {
    allow_private: bool,
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// An HTTP client for outbound deliveries: no redirects, 10 s, public addresses only (unless
/// allowed).
pub(crate) fn client(allow_private: bool) -> reqwest::Client {
    crate::install_tls_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // A proxy from the environment would resolve names itself, past the resolver below.
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .dns_resolver(Arc::new(PublicOnly { allow_private }))
        .user_agent(concat!("Ordo-Webhooks/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(MAX_IN_FLIGHT)
        .build()
        .expect("the webhook client builds")
}

/// When to try again after attempt `attempt` failed at `now` (`None`: give up, `window_ms`
/// after `window_start_ms`).
pub fn retry_at(attempt: i64, now_ms: i64, window_start_ms: i64, window_ms: i64) -> Option<i64> {
    let base_ms: i64 = if attempt <= 1 {
        1_000
    } else {
        (5_000i64 << (attempt - 2).min(20)).min(3_600_000)
    };
    let jitter = if attempt <= 1 {
        rand::random_range(0..=500)
    } else {
        rand::random_range(-(base_ms / 5)..=(base_ms / 5))
    };
    let at = now_ms + base_ms + jitter;
    (at <= window_start_ms + window_ms).then_some(at)
}

/// How long the circuit stays open after `failures` in a row (`None`: closed): `base`, doubling
/// with every further failure, at most 20 × `base` (10 min for the standard 30 s).
pub fn open_for(failures: i64, base: Duration) -> Option<Duration> {
    (failures >= BREAKER_THRESHOLD).then(|| {
        let doublings = (failures - BREAKER_THRESHOLD).min(5) as u32;
        (base * 2u32.pow(doublings)).min(base * 20)
    })
}

/// Starts the supervisor.
pub fn spawn(state: &AppState) {
    tokio::spawn(supervise(state.clone()));
}

struct Worker {
    wake: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

async fn supervise(state: AppState) {
    let http = client(state.config.webhooks_allow_private);
    let mut logged = state.events.subscribe();
    let mut workers: HashMap<(String, String), Worker> = HashMap::new();
    loop {
        tokio::select! {
            _ = logged.recv() => {}
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        // One pass serves every event logged meanwhile.
        while logged.try_recv().is_ok() {}
        if !state.events.is_leader() {
            continue;
        }
        let hooks = match state.store.all_webhooks().await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list webhooks");
                continue;
            }
        };
        let live: HashSet<(String, String)> = hooks
            .iter()
            .map(|h| (h.tenant.clone(), h.id.clone()))
            .collect();
        workers.retain(|k, w| live.contains(k) && !w.task.is_finished());
        for hook in hooks {
            let added = match fan_out(&state, &hook).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, webhook = %hook.id, "webhook fan-out failed");
                    0
                }
            };
            let key = (hook.tenant.clone(), hook.id.clone());
            let worker = workers.entry(key).or_insert_with(|| {
                let wake = Arc::new(Notify::new());
                let task = tokio::spawn(work(
                    state.clone(),
                    http.clone(),
                    hook.tenant.clone(),
                    hook.id.clone(),
                    wake.clone(),
                ));
                Worker { wake, task }
            });
            if added > 0 {
                worker.wake.notify_one();
            }
        }
    }
}

/// Copies a subscription's new events into deliveries; how many it added.
async fn fan_out(state: &AppState, hook: &WebhookRecord) -> Result<usize, ordo_store::StoreError> {
    let filter = TypeFilter::parse(&hook.events).unwrap_or(TypeFilter::All);
    let mut cursor = hook.cursor;
    let mut added = 0;
    loop {
        let events = state
            .store
            .events_after(&hook.tenant, cursor, &[], 500)
            .await?;
        let Some(last) = events.last().and_then(|e| e.position) else {
            return Ok(added);
        };
        let new: Vec<ordo_store::NewDelivery> = events
            .iter()
            .filter(|e| filter.admits(&e.kind))
            .map(|e| {
                (
                    e.position.unwrap_or_default(),
                    e.id.clone(),
                    e.kind.clone(),
                    e.subject.clone(),
                    e.to_json(),
                )
            })
            .collect();
        let n = new.len();
        if !state
            .store
            .fan_out(&hook.tenant, &hook.id, cursor, last, new)
            .await?
        {
            return Ok(added); // someone else moved the cursor; the next tick reads it again
        }
        added += n;
        cursor = last;
        if events.len() < 500 {
            return Ok(added);
        }
    }
}

async fn work(
    state: AppState,
    http: reqwest::Client,
    tenant: String,
    id: String,
    wake: Arc<Notify>,
) {
    loop {
        if !state.events.is_leader() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let hook = match state.store.webhook(&tenant, &id).await {
            Ok(Some(h)) => h,
            Ok(None) => return, // deleted
            Err(e) => {
                tracing::warn!(error = %e, webhook = %id, "cannot read a webhook");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let now = ordo_store::now_ms();
        if hook.open_until_ms > now {
            let wait = Duration::from_millis((hook.open_until_ms - now).min(1000) as u64);
            tokio::time::sleep(wait).await;
            continue;
        }
        let half_open = hook.consecutive_failures >= BREAKER_THRESHOLD;
        let limit = if half_open { 1 } else { MAX_IN_FLIGHT as i64 };
        let mut due = match state.store.due_heads(&tenant, &id, now, limit).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, webhook = %id, "cannot read pending deliveries");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if due.is_empty() {
            let next = state.store.next_due(&tenant, &id).await.ok().flatten();
            let wait = next.map_or(1000, |n| (n - now).clamp(5, 1000)) as u64;
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
            }
            continue;
        }
        due.sort_by_key(|d| d.position);
        let sends = due.iter().map(|d| attempt(&state, &http, &hook, d));
        let outcomes: Vec<AttemptOutcome> = futures::future::join_all(sends).await;
        let successes = outcomes.iter().filter(|o| o.delivered).count() as i64;
        let failures = if successes > 0 {
            0
        } else {
            hook.consecutive_failures + outcomes.len() as i64
        };
        let open_until = open_for(failures, state.config.events.webhook_breaker_open)
            .map(|d| ordo_store::now_ms() + d.as_millis() as i64)
            .unwrap_or(0);
        if open_until > 0 && hook.open_until_ms == 0 {
            tracing::warn!(webhook = %id, failures, "webhook endpoint keeps failing: circuit open");
        }
        match state
            .store
            .record_attempts(
                &state.events.holder,
                &tenant,
                &id,
                outcomes,
                failures,
                open_until,
            )
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(webhook = %id, "the relay's lease moved on: attempts left to the new holder")
            }
            Err(e) => {
                tracing::warn!(error = %e, webhook = %id, "cannot record webhook attempts");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// One attempt at one delivery.
async fn attempt(
    state: &AppState,
    http: &reqwest::Client,
    hook: &WebhookRecord,
    d: &DeliveryRecord,
) -> AttemptOutcome {
    let started = std::time::Instant::now();
    let at_ms = ordo_store::now_ms();
    let n = d.attempts + 1;
    let (status_code, error) = match send(state, http, hook, d).await {
        Ok(code) if (200..300).contains(&code) => (Some(code as i64), None),
        Ok(code) if (300..400).contains(&code) => (
            Some(code as i64),
            Some("a redirect: webhooks do not follow redirects".to_string()),
        ),
        Ok(code) => (
            Some(code as i64),
            Some(format!("the endpoint answered {code}")),
        ),
        Err(e) => (None, Some(e)),
    };
    let delivered = error.is_none();
    let duration_ms = started.elapsed().as_millis() as i64;
    let outcome = if delivered { "delivered" } else { "failed" };
    metrics::counter!("ordo_webhook_attempts_total", "outcome" => outcome).increment(1);
    if delivered {
        if let Some(t) = serde_json::from_str::<serde_json::Value>(&d.body)
            .ok()
            .and_then(|b| b["time"].as_str().map(str::to_string))
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
        {
            let delay = (ordo_store::now_ms() - t.timestamp_millis()).max(0);
            metrics::histogram!("ordo_event_publish_delay_seconds", "sink" => "webhook")
                .record(delay as f64 / 1000.0);
        }
    }
    let retry = if delivered {
        None
    } else {
        let window = state.config.events.webhook_retry_window.as_millis() as i64;
        retry_at(n, at_ms + duration_ms, d.window_start_ms, window)
    };
    if !delivered && retry.is_none() {
        metrics::counter!("ordo_webhook_dead_letters_total").increment(1);
    }
    AttemptOutcome {
        delivery_id: d.id.clone(),
        attempt: AttemptRecord {
            attempt: n,
            at_ms,
            status_code,
            error,
            duration_ms,
        },
        delivered,
        retry_at_ms: retry,
    }
}

async fn send(
    state: &AppState,
    http: &reqwest::Client,
    hook: &WebhookRecord,
    d: &DeliveryRecord,
) -> Result<u16, String> {
    let url = reqwest::Url::parse(&hook.url).map_err(|e| e.to_string())?;
    // A literal address skips the resolver: check it here.
    if let Some(host) = url.host_str() {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            if !state.config.webhooks_allow_private && !is_public(ip) {
                return Err(format!("{ip} is not a public address"));
            }
        }
    }
    let timestamp = ordo_store::now_ms() / 1000;
    let response = http
        .post(url)
        .header("Content-Type", "application/cloudevents+json")
        .header("Ordo-Webhook-Id", &d.event_id)
        .header("Ordo-Webhook-Timestamp", timestamp.to_string())
        .header(
            "Ordo-Webhook-Signature",
            signature(&hook.secret, timestamp, d.body.as_bytes()),
        )
        .body(d.body.clone())
        .send()
        .await
        .map_err(|e| describe(&e))?;
    Ok(response.status().as_u16())
}

/// A transport error in words, without the URL (which the subscription shows anyway).
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "no answer within 10 s"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "the request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut cause = String::new();
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {cause}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
        assert_eq!(
            signature("whsec_test", 1_700_000_000, br#"{"a":1}"#),
            "v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn retries_start_within_two_seconds_back_off_and_stop_after_a_day() {
        let (start, day) = (0, 24 * 3_600_000);
        let first = retry_at(1, 0, start, day).unwrap();
        assert!((1_000..=1_500).contains(&first), "{first}");
        let second = retry_at(2, 0, start, day).unwrap();
        assert!((4_000..=6_000).contains(&second), "{second}");
        let late = retry_at(30, 0, start, day).unwrap();
        assert!(late <= 3_600_000 * 6 / 5, "capped at an hour: {late}");
        assert_eq!(retry_at(3, day, start, day), None, "a day later: dead");
    }

    #[test]
    fn the_breaker_opens_at_five_failures_and_backs_off_to_ten_minutes() {
        let base = Duration::from_secs(30);
        assert_eq!(open_for(4, base), None);
        assert_eq!(open_for(5, base), Some(Duration::from_secs(30)));
        assert_eq!(open_for(6, base), Some(Duration::from_secs(60)));
        assert_eq!(open_for(50, base), Some(Duration::from_secs(600)));
    }

    #[tokio::test]
    async fn urls_are_checked_before_anything_is_sent() {
        for bad in [
            "ftp://example.com/hook",
            "/relative",
            "https://user:pw@example.com/hook",
            "http://127.0.0.1:8080/hook",
            "http://[::1]/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://localhost/hook",
            "http://[::ffff:10.0.0.1]/hook",
            "http://[2002:a00:1::]/hook",
        ] {
            assert!(check_url(bad, false).await.is_err(), "{bad}");
        }
        assert!(check_url("http://127.0.0.1:8080/hook", true).await.is_ok());
        assert!(check_url("https://93.184.216.34/hook", false).await.is_ok());
    }
}
