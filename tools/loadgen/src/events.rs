//! Event latency under load: how long from an order's commit (its CloudEvent's `time`) until
//! the event reached NATS JetStream (`--nats-url`) and a webhook endpoint this tool serves
//! (`--webhook`; the server needs `--webhooks-allow-private`), and how many events a second
//! arrived.

use futures::StreamExt;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Arrivals of one sink: (when, commit-to-arrival in µs).
type Arrivals = Arc<Mutex<Vec<(Instant, u64)>>>;

pub struct Watch {
    sinks: Vec<(&'static str, Arrivals, tokio::task::JoinHandle<()>)>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        for (_, _, t) in &self.sinks {
            t.abort();
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Commit-to-now of an event body, in µs (millisecond resolution: the event's `time`).
fn latency_us(body: &[u8]) -> Option<u64> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let t = v["time"].as_str()?;
    let ms = parse_rfc3339_ms(t)?;
    Some(((now_ms() - ms).max(0) as u64) * 1000)
}

/// `2026-11-26T15:42:58.872Z` → Unix ms (UTC, as Ordo writes it).
fn parse_rfc3339_ms(t: &str) -> Option<i64> {
    let (date, rest) = t.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let rest = rest.strip_suffix('Z')?;
    let (hms, frac) = rest.split_once('.').unwrap_or((rest, "0"));
    let mut h = hms.split(':').map(|p| p.parse::<i64>());
    let (hh, mm, ss) = (h.next()?.ok()?, h.next()?.ok()?, h.next()?.ok()?);
    let millis: i64 = format!("{frac:0<3}")[..3].parse().ok()?;
    // Days from the civil date (proleptic Gregorian).
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000) + millis)
}

impl Watch {
    pub async fn start(
        nats_url: Option<&str>,
        webhook: bool,
        admin: &reqwest::Client,
        base: &str,
    ) -> Result<Watch, String> {
        let mut sinks = Vec::new();
        if let Some(url) = nats_url {
            let client = async_nats::connect(url)
                .await
                .map_err(|e| format!("NATS at {url}: {e}"))?;
            let js = async_nats::jetstream::new(client);
            // The server creates the stream once it relays: wait for it.
            let mut stream = None;
            for _ in 0..100 {
                if let Ok(s) = js.get_stream("ORDO_EVENTS").await {
                    stream = Some(s);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let stream = stream.ok_or(
                "the ORDO_EVENTS stream never appeared: is the server started with --nats-url?",
            )?;
            let consumer = stream
                .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
                    filter_subject: "ordo.*.order.placed".into(),
                    deliver_policy: async_nats::jetstream::consumer::DeliverPolicy::New,
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())?;
            let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
            let arrivals: Arrivals = Arc::default();
            let sink = arrivals.clone();
            let task = tokio::spawn(async move {
                while let Some(Ok(m)) = messages.next().await {
                    if let Some(l) = latency_us(&m.payload) {
                        sink.lock().unwrap().push((Instant::now(), l));
                    }
                }
            });
            sinks.push(("nats", arrivals, task));
        }
        if webhook {
            let arrivals: Arrivals = Arc::default();
            let sink = arrivals.clone();
            let app = axum::Router::new().route(
                "/hook",
                axum::routing::post(move |body: axum::body::Bytes| {
                    let sink = sink.clone();
                    async move {
                        if let Some(l) = latency_us(&body) {
                            sink.lock().unwrap().push((Instant::now(), l));
                        }
                        axum::http::StatusCode::NO_CONTENT
                    }
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| e.to_string())?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            let task = tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            let r = admin
                .post(format!("{base}/v1/webhooks"))
                .json(
                    &json!({"url": format!("http://{addr}/hook"), "events": ["ordo.order.placed"]}),
                )
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if r.status() != reqwest::StatusCode::CREATED {
                return Err(format!(
                    "subscribing the webhook: {} {} (start the server with --webhooks-allow-private)",
                    r.status(),
                    r.text().await.unwrap_or_default()
                ));
            }
            sinks.push(("webhook", arrivals, task));
        }
        Ok(Watch { sinks })
    }

    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    /// Waits (up to 60 s) until every sink received `placed` events; then each sink's arrivals:
    /// count, events per second between the first and the last, latency percentiles.
    pub async fn report(&self, placed: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline
            && self
                .sinks
                .iter()
                .any(|(_, a, _)| (a.lock().unwrap().len() as u64) < placed)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut out = serde_json::Map::new();
        for (name, arrivals, _) in &self.sinks {
            let a = arrivals.lock().unwrap().clone();
            let mut lat: Vec<u64> = a.iter().map(|(_, l)| *l).collect();
            let span = match (a.first(), a.last()) {
                (Some(f), Some(l)) => l.0.duration_since(f.0).as_secs_f64(),
                _ => 0.0,
            };
            out.insert(
                name.to_string(),
                json!({
                    "received": a.len(),
                    "expected": placed,
                    "events_per_s": if span > 0.0 { a.len() as f64 / span } else { 0.0 },
                    "commit_to_arrival_ms": crate::summary(&mut lat),
                }),
            );
        }
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_times_parse_to_unix_ms() {
        assert_eq!(super::parse_rfc3339_ms("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(
            super::parse_rfc3339_ms("2023-11-14T22:13:20.123Z"),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            super::parse_rfc3339_ms("2026-03-01T00:00:01.5Z"),
            Some(1_772_323_201_500)
        );
    }
}
