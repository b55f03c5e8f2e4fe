//! `--lifecycle-orders N`: the order lifecycle under load. N orders are placed from synced carts
//! (by the app, before the clock starts); then `--clients` concurrent staff clients take every
//! order from placed to delivered — pick, pack, ship (which captures the payment through the
//! gateway), deliver — and each transition's latency is recorded. Reports transitions per second
//! and latency percentiles per step, errors by status, and checks at the end that every order is
//! delivered with its whole total captured.

use super::{PRICE, address, customer, make_token, must, summary};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Mutex;

#[derive(Default)]
struct Steps {
    latency_us: BTreeMap<&'static str, Vec<u64>>,
    by_status: BTreeMap<String, u64>,
    transitions: u64,
}

/// Places `n` orders of one unit each (SKUs round-robin) with `clients` app clients; returns
/// (order id, fulfilment ids, total) of each.
async fn place_all(
    client: &reqwest::Client,
    base: &str,
    skus: &[String],
    n: usize,
    clients: usize,
) -> Result<Vec<(String, Vec<String>, i64)>, String> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let placed = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let mut handles = Vec::new();
    for _ in 0..clients.max(1) {
        let (client, base, skus, next, placed) = (
            client.clone(),
            base.to_string(),
            skus.to_vec(),
            next.clone(),
            placed.clone(),
        );
        handles.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), String>(());
                }
                let sku = &skus[i % skus.len()];
                let cart = must(
                    client.post(format!("{base}/v1/carts")).json(&json!({"lines": [{"sku": sku, "quantity": 1}], "customer": customer(i as u64), "shipments": [{"address": address()}]})).send().await,
                    "cart",
                )
                .await?;
                let token = make_token(&client, &base).await?;
                let total = cart["totals"]["total"].clone();
                let order = must(
                    client.post(format!("{base}/v1/orders")).header("Idempotency-Key", format!("lc-{}-{i}", std::process::id())).json(&json!({"cart_id": cart["id"], "payments": [{"token": token, "amount": total}], "expected_total": total})).send().await,
                    "order",
                )
                .await?;
                let fuls: Vec<String> = order["fulfillments"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|f| f["id"].as_str().map(String::from)).collect())
                    .unwrap_or_default();
                let id = order["id"].as_str().unwrap_or_default().to_string();
                let amount = total["amount"].as_i64().unwrap_or(PRICE);
                placed.lock().await.push((id, fuls, amount));
            }
        }));
    }
    for h in handles {
        h.await.map_err(|e| e.to_string())??;
    }
    let out = std::mem::take(&mut *placed.lock().await);
    Ok(out)
}

/// Runs the lifecycle benchmark; prints its report (JSON with `--json`).
pub async fn run(
    args: &super::Args,
    client: &reqwest::Client,
    staff: &reqwest::Client,
    base: &str,
    skus: &[String],
    orders: usize,
) -> Result<(), String> {
    if !args.json {
        eprintln!("placing {orders} orders from synced carts…");
    }
    let t_place = Instant::now();
    let placed = place_all(client, base, skus, orders, args.clients).await?;
    let placing_s = t_place.elapsed().as_secs_f64();
    if !args.json {
        eprintln!(
            "taking them from placed to delivered with {} staff clients…",
            args.clients
        );
    }
    let queue: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(
        placed
            .iter()
            .flat_map(|(_, f, _)| f.iter().cloned())
            .collect(),
    ));
    let steps = Arc::new(Mutex::new(Steps::default()));
    let start = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..args.clients.max(1) {
        let (staff, base, queue, steps) = (
            staff.clone(),
            base.to_string(),
            queue.clone(),
            steps.clone(),
        );
        handles.push(tokio::spawn(async move {
            loop {
                let Some(ful) = queue.lock().await.pop() else {
                    return;
                };
                for step in ["pick", "pack", "ship", "deliver"] {
                    let mut req = staff.post(format!("{base}/v1/fulfillments/{ful}/{step}"));
                    if step == "ship" {
                        req = req.json(
                            &json!({"carrier": "UPS", "tracking_number": format!("1Z{ful}")}),
                        );
                    }
                    let t0 = Instant::now();
                    let status = match req.send().await {
                        Ok(r) => {
                            let s = r.status().as_u16().to_string();
                            let _ = r.bytes().await;
                            s
                        }
                        Err(e) if e.is_timeout() => "timeout".into(),
                        Err(_) => "connect_error".into(),
                    };
                    let us = t0.elapsed().as_micros() as u64;
                    let mut s = steps.lock().await;
                    let ok = status == "200";
                    *s.by_status.entry(format!("{step} {status}")).or_default() += 1;
                    if ok {
                        s.transitions += 1;
                        s.latency_us.entry(step).or_default().push(us);
                    } else {
                        break;
                    }
                }
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    // Every order delivered, its whole total captured.
    let mut delivered = 0;
    let mut money_ok = 0;
    for (id, _, total) in &placed {
        let o = must(
            staff.get(format!("{base}/v1/orders/{id}")).send().await,
            "read order",
        )
        .await?;
        if o["status"] == "delivered" {
            delivered += 1;
        }
        let captured: i64 = o["payments"]
            .as_array()
            .map(|p| {
                p.iter()
                    .filter_map(|t| t["captured"]["amount"].as_i64())
                    .sum()
            })
            .unwrap_or(0);
        if captured == *total {
            money_ok += 1;
        }
    }
    let mut s = steps.lock().await;
    let mut all: Vec<u64> = s.latency_us.values().flatten().copied().collect();
    let per_step: BTreeMap<&str, Value> = s
        .latency_us
        .iter_mut()
        .map(|(k, v)| (*k, summary(v)))
        .collect();
    let report = json!({
        "mode": "lifecycle",
        "orders": placed.len(),
        "staff_clients": args.clients,
        "placing_s": placing_s,
        "duration_s": elapsed,
        "transitions": s.transitions,
        "transitions_per_s": s.transitions as f64 / elapsed,
        "orders_delivered_per_s": delivered as f64 / elapsed,
        "latency": summary(&mut all),
        "per_step": per_step,
        "by_status": s.by_status,
        "delivered": delivered,
        "captured_in_full": money_ok,
    });
    if args.json {
        println!("{report}");
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    }
    if delivered != placed.len() || money_ok != placed.len() {
        return Err(format!(
            "{delivered} of {} orders delivered, {money_ok} captured in full",
            placed.len()
        ));
    }
    Ok(())
}
