//! Crash safety of the event backbone: `kill -9` of `ordo serve` in the middle of an order
//! burst, then a restart on the same storage. No committed event is lost (the log, a webhook
//! endpoint and NATS get every one), no event is delivered to the endpoint again once its
//! acknowledgement was recorded (only a 2xx racing the kill may repeat, under the same
//! `Ordo-Webhook-Id`), each subject's events arrive in order, and NATS holds no event twice.

use crate::helpers::*;
use crate::nats::{Collector, Seen, check_once_and_in_order, nats_url};
use crate::receiver::{Receiver, always_ok};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

const ORDERS: usize = 160;
const SKUS: [&str; 4] = ["TEE-1-BLA-S", "TEE-1-BLA-M", "TEE-1-WHI-S", "TEE-1-WHI-M"];

/// The whole log of the server at `base` after the event `after` (None: from the start).
async fn log_after(admin: &reqwest::Client, base: &str, after: Option<&str>) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor = after.map(str::to_string).unwrap_or_else(|| "0".into());
    loop {
        let page: Value = admin
            .get(format!("{base}/v1/events?after={cursor}&limit=1000"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = page["items"].as_array().unwrap().clone();
        if items.is_empty() {
            return all;
        }
        cursor = page["next_after"].as_i64().unwrap().to_string();
        all.extend(items);
    }
}

async fn total_for(c: &reqwest::Client, base: &str, sku: &str) -> i64 {
    let cart: Value = c
        .post(format!("{base}/v1/carts"))
        .json(
            &json!({"lines": [{"sku": sku, "quantity": 1}], "shipments": [{"address": address()}]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    cart["totals"]["total"]["amount"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_nine_mid_burst_loses_no_event_repeats_none_after_its_ack_and_keeps_order() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = ordo_store::testing::test_storage(tmp.path()).await.unwrap();
    let nats = nats_url();
    let collector = match &nats {
        Some(url) => Some(Collector::start(url, "default").await),
        None => None,
    };
    let mut flags = vec![
        "--webhooks-allow-private",
        "--sandbox-gateway-latency",
        "10ms",
        "--batch-max-orders",
        "8",
    ];
    if let Some(url) = &nats {
        flags.extend(["--nats-url", url.as_str()]);
    }
    let (mut p1, base1) = spawn_ordo_with(&storage, true, &flags);
    let app_token = token_for(&base1, "demo-app", "demo-secret").await;
    let admin = client_as(&token_for(&base1, "demo-admin", "demo-admin-secret").await);
    let c = client_as(&app_token);

    // The demo's own events first settle in the log; the subscription starts after them.
    let mut settled = Vec::new();
    for _ in 0..100 {
        let now = log_after(&admin, &base1, None).await;
        if !now.is_empty() && now.len() == settled.len() {
            break;
        }
        settled = now;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let start_after = settled
        .last()
        .map(|e| e["id"].as_str().unwrap().to_string());
    let receiver = Receiver::start(always_ok()).await;
    let r = admin
        .post(format!("{base1}/v1/webhooks"))
        .json(&json!({"url": receiver.url, "events": ["*"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let hook: Value = r.json().await.unwrap();
    receiver.set_secret(hook["secret"].as_str().unwrap());
    let hook_id = hook["id"].as_str().unwrap().to_string();

    // Bodies first, so the burst is only placements.
    let mut bodies = Vec::with_capacity(ORDERS);
    let mut totals = HashMap::new();
    for sku in SKUS {
        totals.insert(sku, total_for(&c, &base1, sku).await);
    }
    for i in 0..ORDERS {
        let sku = SKUS[i % SKUS.len()];
        let r: Value = c
            .post(format!("{base1}/v1/payment-tokens"))
            .json(&json!({"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        bodies.push(inline_order(
            sku,
            1,
            r["token"].as_str().unwrap(),
            totals[sku],
        ));
    }

    // The burst: kill -9 once a third of it was acknowledged.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Option<StatusCode>)>();
    for (i, body) in bodies.iter().enumerate() {
        let (tx, base, body, c) = (tx.clone(), base1.clone(), body.clone(), c.clone());
        tokio::spawn(async move {
            let r = c
                .post(format!("{base}/v1/orders"))
                .header("Idempotency-Key", format!("event-crash-{i}"))
                .json(&body)
                .send()
                .await;
            let _ = tx.send((i, r.ok().map(|r| r.status())));
        });
    }
    drop(tx);
    let mut acked = 0;
    let mut killed_at = None;
    while let Some((_, s)) = rx.recv().await {
        if s == Some(StatusCode::CREATED) {
            acked += 1;
            if acked == ORDERS / 3 && killed_at.is_none() {
                p1.0.kill().unwrap(); // SIGKILL
                killed_at = Some(Instant::now());
            }
        }
    }
    let _ = p1.0.wait();
    let killed_at = killed_at.expect("the burst reached the kill");

    // Restart on the same storage; retry every order of the burst under its key, so every
    // acknowledged one is known and the rest get placed.
    let (_p2, base2) = spawn_ordo_with(&storage, true, &flags);
    let restarted_at = Instant::now();
    let c2 = client_as(&token_for(&base2, "demo-app", "demo-secret").await);
    let admin2 = client_as(&token_for(&base2, "demo-admin", "demo-admin-secret").await);
    let mut placed = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let r = c2
            .post(format!("{base2}/v1/orders"))
            .header("Idempotency-Key", format!("event-crash-{i}"))
            .json(body)
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::CREATED {
            let v: Value = r.json().await.unwrap();
            placed.push(v["id"].as_str().unwrap().to_string());
        }
    }
    assert!(placed.len() >= acked, "every acknowledged order is there");

    // Every placed order's event reaches the log (the new process takes the relay's lease once
    // the dead one's lapses), then the endpoint and NATS.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = log_after(&admin2, &base2, start_after.as_deref()).await;
        let logged = log
            .iter()
            .filter(|e| e["type"] == "ordo.order.placed")
            .count();
        if placed.iter().all(|id| {
            log.iter()
                .any(|e| e["type"] == "ordo.order.placed" && e["subject"] == id.as_str())
        }) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} placed, {logged} placement events in the log",
            placed.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = log_after(&admin2, &base2, start_after.as_deref()).await;
    let want: Vec<&str> = log.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let ok = wait_until(60, || async {
        let got = receiver.accepted();
        want.iter().all(|id| got.iter().any(|r| r.id == *id))
    })
    .await;
    assert!(ok, "every committed event reaches the webhook endpoint");
    assert!(receiver.received().iter().all(|r| r.verified));

    // No event repeated once its acknowledgement was recorded: the delivery log holds one
    // success per delivery, as its last attempt; the endpoint saw an event twice only when the
    // first 2xx raced the kill.
    let mut cursor = String::new();
    let mut recorded = 0;
    loop {
        let page: Value = admin2
            .get(format!(
                "{base2}/v1/webhooks/{hook_id}/deliveries?limit=100&cursor={cursor}"
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for d in page["items"].as_array().unwrap() {
            let attempts = d["attempts"].as_array().unwrap();
            let ok: Vec<usize> = attempts
                .iter()
                .enumerate()
                .filter(|(_, a)| {
                    a["status_code"]
                        .as_i64()
                        .is_some_and(|c| (200..300).contains(&c))
                })
                .map(|(i, _)| i)
                .collect();
            if d["status"] == "delivered" {
                assert_eq!(
                    ok,
                    [attempts.len() - 1],
                    "one recorded success, the last attempt: {d}"
                );
                recorded += 1;
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert!(recorded >= want.len());
    let accepted = receiver.accepted();
    let mut times: HashMap<&str, Vec<Instant>> = HashMap::new();
    for r in &accepted {
        times.entry(r.id.as_str()).or_default().push(r.at);
    }
    let repeats: Vec<(&&str, &Vec<Instant>)> = times.iter().filter(|(_, t)| t.len() > 1).collect();
    for (id, t) in &repeats {
        assert_eq!(t.len(), 2, "{id} delivered {} times", t.len());
        assert!(
            t[0] <= killed_at + Duration::from_millis(200) && t[1] >= restarted_at,
            "{id}: only a success racing the kill repeats"
        );
    }
    assert!(
        repeats.len() <= 128,
        "at most one wave in flight at the kill: {}",
        repeats.len()
    );

    // Each subject's events reached the endpoint in sequence order (first arrivals).
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    let mut first_seen = std::collections::HashSet::new();
    for r in &accepted {
        if !first_seen.insert(r.id.clone()) {
            continue;
        }
        let subject = r.body["subject"].as_str().unwrap().to_string();
        let seq = r.body["sequence"].as_i64().unwrap();
        let prev = last.insert(subject.clone(), seq).unwrap_or(0);
        assert!(seq > prev, "{subject}: {seq} arrived after {prev}");
    }

    // NATS: every committed event exactly once, in order per subject.
    if let Some(collector) = &collector {
        collector.wait_for(&log, 60).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let seen: Vec<Seen> = collector
            .seen()
            .into_iter()
            .filter(|s| want.contains(&s.msg_id.as_str()))
            .collect();
        check_once_and_in_order(&seen, &log, "default");
    }
}

/// PostgreSQL: two processes place orders on one database; one relays at a time. The log holds
/// every event once, each subject in sequence order, and NATS gets each once — also after the
/// process that relayed is killed and the other takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_share_one_log_and_the_survivor_takes_over_the_relay() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = ordo_store::testing::test_storage(tmp.path()).await.unwrap();
    if !matches!(storage, ordo_store::StorageConfig::Postgres { .. }) {
        eprintln!("two processes share one database on PostgreSQL only");
        return;
    }
    let nats = nats_url();
    let collector = match &nats {
        Some(url) => Some(Collector::start(url, "default").await),
        None => None,
    };
    let mut flags = vec!["--sandbox-gateway-latency", "5ms"];
    if let Some(url) = &nats {
        flags.extend(["--nats-url", url.as_str()]);
    }
    let (mut pa, base_a) = spawn_ordo_with(&storage, true, &flags);
    let (_pb, base_b) = spawn_ordo_with(&storage, true, &flags);
    let ca = client_as(&token_for(&base_a, "demo-app", "demo-secret").await);
    let cb = client_as(&token_for(&base_b, "demo-app", "demo-secret").await);
    let admin_b = client_as(&token_for(&base_b, "demo-admin", "demo-admin-secret").await);
    let total = total_for(&ca, &base_a, SKUS[0]).await;
    let place = |c: reqwest::Client, base: String, i: usize| async move {
        let t: Value = c
            .post(format!("{base}/v1/payment-tokens"))
            .json(&json!({"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let r = c
            .post(format!("{base}/v1/orders"))
            .header("Idempotency-Key", format!("two-{i}"))
            .json(&inline_order(SKUS[0], 1, t["token"].as_str()?, total))
            .send()
            .await
            .ok()?;
        (r.status() == StatusCode::CREATED).then_some(())
    };
    // Both processes take orders at once; then A dies; B goes on alone.
    let mut tasks = Vec::new();
    for i in 0..60 {
        let (c, base) = if i % 2 == 0 {
            (ca.clone(), base_a.clone())
        } else {
            (cb.clone(), base_b.clone())
        };
        tasks.push(tokio::spawn(place(c, base, i)));
    }
    let placed_before = futures::future::join_all(tasks)
        .await
        .into_iter()
        .filter(|r| matches!(r, Ok(Some(()))))
        .count();
    assert_eq!(placed_before, 60);
    pa.0.kill().unwrap();
    let _ = pa.0.wait();
    for i in 60..80 {
        assert!(place(cb.clone(), base_b.clone(), i).await.is_some());
    }
    // B relays once A's lease lapses: 80 placements in the log, each subject in order, once.
    let deadline = Instant::now() + Duration::from_secs(60);
    let log = loop {
        let log = log_after(&admin_b, &base_b, None).await;
        if log
            .iter()
            .filter(|e| e["type"] == "ordo.order.placed")
            .count()
            >= 80
        {
            break log;
        }
        assert!(
            Instant::now() < deadline,
            "the survivor never relayed the backlog"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut ids = std::collections::HashSet::new();
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for e in &log {
        assert!(
            ids.insert(e["id"].as_str().unwrap().to_string()),
            "an event twice in the log"
        );
        let subject = e["subject"].as_str().unwrap().to_string();
        let seq = e["sequence"].as_i64().unwrap();
        let prev = last.insert(subject.clone(), seq).unwrap_or(0);
        assert_eq!(seq, prev + 1, "{subject}");
    }
    if let Some(collector) = &collector {
        collector.wait_for(&log, 60).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let want: Vec<&str> = log.iter().map(|e| e["id"].as_str().unwrap()).collect();
        let seen: Vec<Seen> = collector
            .seen()
            .into_iter()
            .filter(|s| want.contains(&s.msg_id.as_str()))
            .collect();
        check_once_and_in_order(&seen, &log, "default");
    }
}
