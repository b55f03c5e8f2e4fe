//! Events on the real local NATS JetStream (`ORDO_TEST_NATS_URL`, set by CI): every event once,
//! under its subject, in order per subject; NATS unreachable for a while loses nothing and the
//! backlog drains in order when it returns. Without `ORDO_TEST_NATS_URL` these tests say so and
//! pass vacuously (CI always sets it).

use crate::events::whole_log;
use crate::helpers::*;
use crate::lifecycle::{act, order_with};
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub fn nats_url() -> Option<String> {
    std::env::var("ORDO_TEST_NATS_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// A message seen on NATS: its subject, `Nats-Msg-Id` and body.
#[derive(Debug, Clone)]
pub struct Seen {
    pub subject: String,
    pub msg_id: String,
    pub body: Value,
}

/// Collects every new message on `ordo.<tenant>.>` of Ordo's stream from now on.
pub struct Collector {
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Collector {
    pub async fn start(url: &str, tenant: &str) -> Collector {
        let client = async_nats::connect(url).await.expect("NATS is reachable");
        let js = jetstream::new(client);
        let stream = js
            .get_or_create_stream(ordo_server::events::nats::stream_config(
                "ORDO_EVENTS",
                Duration::from_secs(7 * 24 * 3600),
            ))
            .await
            .expect("the stream exists or is created");
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: format!("ordo.{tenant}.>"),
                deliver_policy: consumer::DeliverPolicy::New,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut messages = consumer.messages().await.unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let task = tokio::spawn(async move {
            while let Some(Ok(m)) = messages.next().await {
                let msg_id = m
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("Nats-Msg-Id"))
                    .map(|v| v.as_str().to_string())
                    .unwrap_or_default();
                sink.lock().unwrap().push(Seen {
                    subject: m.subject.as_str().to_string(),
                    msg_id,
                    body: serde_json::from_slice(&m.payload).unwrap_or(Value::Null),
                });
            }
        });
        Collector { seen, task }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until every id of `events` was seen; returns what was seen of them.
    pub async fn wait_for(&self, events: &[Value], secs: u64) -> Vec<Seen> {
        let want: Vec<String> = events
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect();
        let ok = wait_until(secs, || async {
            let seen = self.seen();
            want.iter().all(|id| seen.iter().any(|s| &s.msg_id == id))
        })
        .await;
        let seen: Vec<Seen> = self
            .seen()
            .into_iter()
            .filter(|s| want.contains(&s.msg_id))
            .collect();
        assert!(ok, "{} of {} events reached NATS", seen.len(), want.len());
        seen
    }
}

/// Checks NATS got each of `log`'s events exactly once, on its subject, with its id as
/// `Nats-Msg-Id` and its body, and each subject's events in sequence order.
pub fn check_once_and_in_order(seen: &[Seen], log: &[Value], tenant: &str) {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for s in seen {
        *count.entry(s.msg_id.as_str()).or_default() += 1;
    }
    for e in log {
        let id = e["id"].as_str().unwrap();
        assert_eq!(
            count.get(id),
            Some(&1),
            "event {id} reached NATS {:?} times",
            count.get(id)
        );
        let s = seen.iter().find(|s| s.msg_id == id).unwrap();
        let kind = e["type"].as_str().unwrap();
        assert_eq!(s.subject, format!("ordo.{tenant}.{}", &kind[5..]));
        assert_eq!(&s.body, e);
    }
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for s in seen {
        let subject = s.body["subject"].as_str().unwrap().to_string();
        let seq = s.body["sequence"].as_i64().unwrap();
        let prev = last.insert(subject.clone(), seq).unwrap_or(0);
        assert!(seq > prev, "{subject}: {seq} arrived after {prev}");
    }
}

#[tokio::test]
async fn every_event_reaches_nats_once_on_its_subject_in_order_per_subject() {
    let Some(url) = nats_url() else {
        eprintln!("ORDO_TEST_NATS_URL is not set: NATS tests not run");
        return;
    };
    let collector = Collector::start(&url, "default").await;
    let app = TestApp::spawn_with(|c| c.events.nats_url = Some(url.clone())).await;
    app.product("NATS-1", 700, 100).await;
    let mut orders = Vec::new();
    for _ in 0..8 {
        orders.push(
            order_with(
                &app,
                json!([{"sku": "NATS-1", "quantity": 1}]),
                "4242424242424242",
            )
            .await,
        );
    }
    for o in &orders[..3] {
        let ful = o["fulfillments"][0]["id"].as_str().unwrap();
        let (s, v) = act(&app, &format!("/v1/fulfillments/{ful}/pick"), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let ok = wait_until(20, || async {
        whole_log(&app, 1000)
            .await
            .iter()
            .filter(|e| e["type"] == "ordo.fulfillment.picked")
            .count()
            == 3
    })
    .await;
    assert!(ok);
    let log = whole_log(&app, 1000).await;
    collector.wait_for(&log, 20).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen: Vec<Seen> = collector
        .seen()
        .into_iter()
        .filter(|s| log.iter().any(|e| e["id"] == s.msg_id.as_str()))
        .collect();
    assert!(seen.len() >= log.len());
    check_once_and_in_order(&seen, &log, "default");
}

/// A TCP proxy in front of NATS that a test can cut (NATS unreachable) and restore.
pub struct Proxy {
    pub url: String,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}

impl Proxy {
    pub async fn start(nats_url: &str) -> Proxy {
        let target = nats_url.trim_start_matches("nats://").to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (up2, conns2) = (up.clone(), conns.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let h = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns2.lock().unwrap().push(h);
            }
        });
        Proxy {
            url: format!("nats://{addr}"),
            up,
            conns,
            task,
        }
    }

    /// NATS is unreachable: open connections are cut, new ones refused.
    pub fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn with_nats_unreachable_orders_are_accepted_and_the_backlog_drains_in_order() {
    let Some(url) = nats_url() else {
        eprintln!("ORDO_TEST_NATS_URL is not set: NATS tests not run");
        return;
    };
    let collector = Collector::start(&url, "default").await;
    let proxy = Proxy::start(&url).await;
    let app = TestApp::spawn_with(|c| c.events.nats_url = Some(proxy.url.clone())).await;
    app.product("NATS-2", 700, 100).await;
    let before = order_with(
        &app,
        json!([{"sku": "NATS-2", "quantity": 1}]),
        "4242424242424242",
    )
    .await;
    let ok = wait_until(20, || async {
        collector
            .seen()
            .iter()
            .any(|s| s.body["subject"] == before["id"])
    })
    .await;
    assert!(ok, "NATS is reachable at first");

    proxy.down();
    let mut during = Vec::new();
    for _ in 0..5 {
        during.push(
            order_with(
                &app,
                json!([{"sku": "NATS-2", "quantity": 2}]),
                "4242424242424242",
            )
            .await,
        );
    }
    let ful = during[0]["fulfillments"][0]["id"].as_str().unwrap();
    let (s, v) = act(&app, &format!("/v1/fulfillments/{ful}/pick"), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // The log has them at once; NATS has none of them.
    let ok = wait_until(20, || async {
        whole_log(&app, 1000)
            .await
            .iter()
            .any(|e| e["type"] == "ordo.fulfillment.picked")
    })
    .await;
    assert!(ok, "the event log does not wait for NATS");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ids: Vec<&str> = during.iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert!(
        !collector
            .seen()
            .iter()
            .any(|s| ids.contains(&s.body["subject"].as_str().unwrap_or(""))),
        "nothing can reach NATS while it is unreachable"
    );

    proxy.restore();
    let log = whole_log(&app, 1000).await;
    collector.wait_for(&log, 60).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen: Vec<Seen> = collector
        .seen()
        .into_iter()
        .filter(|s| log.iter().any(|e| e["id"] == s.msg_id.as_str()))
        .collect();
    check_once_and_in_order(&seen, &log, "default");
}

/// The client the README tells integrators to use: `ordo events tail` prints CloudEvents from the
/// stream, and a durable consumer resumes after what it acknowledged.
#[tokio::test]
async fn ordo_events_tail_prints_events_and_a_durable_consumer_resumes() {
    let Some(url) = nats_url() else {
        eprintln!("ORDO_TEST_NATS_URL is not set: NATS tests not run");
        return;
    };
    let collector = Collector::start(&url, "default").await;
    let app = TestApp::spawn_with(|c| c.events.nats_url = Some(url.clone())).await;
    app.product("NATS-3", 700, 100).await;
    let mut placed = Vec::new();
    for _ in 0..2 {
        placed.push(
            order_with(
                &app,
                json!([{"sku": "NATS-3", "quantity": 1}]),
                "4242424242424242",
            )
            .await,
        );
    }
    let ok = wait_until(20, || async {
        placed.iter().all(|o| {
            collector
                .seen()
                .iter()
                .any(|s| s.body["subject"] == o["id"])
        })
    })
    .await;
    assert!(ok);
    let durable = format!("readme-{}", uuid::Uuid::new_v4().simple());
    let tail = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ordo"))
            .args([
                "events",
                "tail",
                "--nats-url",
                &url,
                "--subject",
                "ordo.default.order.placed",
                "--from-start",
                "--durable",
                &durable,
                "--count",
                "1",
                "--idle-timeout",
                "10s",
            ])
            .output()
            .expect("ordo runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        serde_json::from_str::<Value>(lines[0]).unwrap()
    };
    let first = tail();
    assert_eq!(first["specversion"], "1.0");
    assert_eq!(first["type"], "ordo.order.placed");
    let second = tail();
    assert_eq!(second["type"], "ordo.order.placed");
    assert_ne!(
        first["id"], second["id"],
        "the durable consumer resumes after the acknowledged event"
    );
    // A bad server is a clear error, not a hang.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ordo"))
        .args([
            "events",
            "tail",
            "--nats-url",
            "nats://127.0.0.1:1",
            "--count",
            "1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect to NATS"));
}
