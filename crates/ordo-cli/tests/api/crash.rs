//! Acknowledged means durable: SIGKILL `ordo serve` in the middle of an order storm from real
//! parallel clients, restart it on the same storage (with --demo again), and prove that every
//! acknowledged order is there, every retry gets a definite answer (the same order for an
//! acknowledged one), and the stock taken equals the distinct orders placed.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

const BUYERS: usize = 300;
const SKU: &str = "TEE-1-BLA-S";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_nine_mid_storm_loses_no_acknowledged_order_and_places_none_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = ordo_store::testing::test_storage(tmp.path()).await.unwrap();
    // Small commits (4 orders) behind a 30 ms gateway keep part of the storm in flight when the
    // 15th order is acknowledged, however fast the machine answers the rest.
    let (mut p1, base1) = spawn_ordo_with(
        &storage,
        true,
        &[
            "--sandbox-gateway-latency",
            "30ms",
            "--batch-max-orders",
            "4",
        ],
    );
    let app_token = token_for(&base1, "demo-app", "demo-secret").await;
    let c = client_as(&app_token);
    let admin = client_as(&token_for(&base1, "demo-admin", "demo-admin-secret").await);
    // A staff adjustment before the storm: a reseed on restart would undo it.
    let r = admin
        .post(format!("{base1}/v1/inventory/adjustments"))
        .header("Idempotency-Key", "pre-storm-damage")
        .json(&serde_json::json!({"sku": SKU, "location_id": "wh-east", "delta": -1, "reason": "damage"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let inv0: Value = admin
        .get(format!("{base1}/v1/inventory/{SKU}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let on_hand0 = inv0["on_hand"].as_i64().unwrap();
    assert!(
        on_hand0 > 0 && on_hand0 < BUYERS as i64,
        "the storm must be able to sell out: {inv0}"
    );

    // Tokens and bodies first, so the storm is only placements.
    let mut bodies = Vec::with_capacity(BUYERS);
    let total = total_at(&c, &base1).await;
    for _ in 0..BUYERS {
        bodies.push(inline_order(SKU, 1, &token_at(&c, &base1).await, total));
    }

    // The storm: kill -9 the server once a few orders were acknowledged.
    let (tx, mut rx) =
        tokio::sync::mpsc::unbounded_channel::<(usize, Option<(StatusCode, Value)>)>();
    for (i, body) in bodies.iter().enumerate() {
        let (tx, base, body, c) = (
            tx.clone(),
            base1.clone(),
            body.clone(),
            client_as(&app_token),
        );
        tokio::spawn(async move {
            let r = c
                .post(format!("{base}/v1/orders"))
                .header("Idempotency-Key", format!("crash-{i}"))
                .json(&body)
                .send()
                .await;
            let answer = match r {
                Ok(r) => {
                    let s = r.status();
                    r.json::<Value>().await.ok().map(|v| (s, v))
                }
                Err(_) => None,
            };
            let _ = tx.send((i, answer));
        });
    }
    drop(tx);
    let mut answers: HashMap<usize, Option<(StatusCode, Value)>> = HashMap::new();
    let mut acked = 0;
    while let Some((i, a)) = rx.recv().await {
        if matches!(&a, Some((s, _)) if *s == StatusCode::CREATED) {
            acked += 1;
            if acked == 15 {
                p1.0.kill().unwrap(); // SIGKILL
            }
        }
        answers.insert(i, a);
    }
    let _ = p1.0.wait();
    let acknowledged: HashMap<usize, Value> = answers
        .iter()
        .filter_map(|(i, a)| match a {
            Some((s, v)) if *s == StatusCode::CREATED => Some((*i, v.clone())),
            _ => None,
        })
        .collect();
    let unanswered = answers.values().filter(|a| a.is_none()).count();
    assert!(
        acknowledged.len() >= 15,
        "the storm got going before the kill"
    );
    // On a starved machine the whole storm can be answered before the kill lands; the restart,
    // retry and reconciliation checks below hold either way, so say so instead of failing.
    if unanswered == 0 {
        eprintln!(
            "note: the storm finished before the kill -9 landed; checking recovery after the kill anyway"
        );
    }
    for (s, v) in answers.values().flatten() {
        assert!(!s.is_server_error(), "a 5xx before the crash: {s} {v}");
    }

    // Restart on the same storage, with --demo again: nothing may be reseeded or reset.
    // Claims the killed process held are abandoned; they can be taken over once their lease
    // (the authorization grace, 2 s here) ran out, and until then a retry is told to wait.
    let (_p2, base2) = spawn_ordo_with(&storage, true, &["--authorization-grace", "2s"]);
    for v in acknowledged.values() {
        let id = v["id"].as_str().unwrap();
        let got: Value = admin
            .get(format!("{base2}/v1/orders/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut acked = v.clone();
        assert!(
            acked
                .as_object_mut()
                .unwrap()
                .remove("guest_token")
                .is_some(),
            "a guest order's 201 carries its guest token"
        );
        assert_eq!(
            got, acked,
            "an acknowledged order survives the crash unchanged"
        );
    }
    // Every request retried with its key gets a definite answer; acknowledged ones the same order.
    let mut final_ids = HashSet::new();
    for (i, body) in bodies.iter().enumerate() {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let (s, v) = loop {
            let (s, v) = place_at(&c, &base2, &format!("crash-{i}"), body).await;
            let in_progress = s == StatusCode::CONFLICT
                && v["type"] == "https://ordo.dev/problems/request-in-progress";
            if !in_progress || std::time::Instant::now() > deadline {
                break (s, v);
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        };
        assert!(
            s == StatusCode::CREATED || s == StatusCode::CONFLICT,
            "retry {i}: {s} {v}"
        );
        if let Some(first) = acknowledged.get(&i) {
            assert_eq!(s, StatusCode::CREATED);
            assert_eq!(
                v["id"], first["id"],
                "a retried acknowledged order is the same order"
            );
        }
        if s == StatusCode::CREATED {
            assert!(
                final_ids.insert(v["id"].as_str().unwrap().to_string()),
                "two keys share an order"
            );
        }
    }
    let store = ordo_store::Store::open(&storage).await.unwrap();
    let orders = store.count_orders("default").await.unwrap();
    assert_eq!(
        orders as usize,
        final_ids.len(),
        "every order belongs to exactly one key"
    );
    let (on_hand, reserved, allocated) = store
        .stock_reconciliation("default", &ordo_domain::Sku::parse(SKU).unwrap())
        .await
        .unwrap();
    assert_eq!(on_hand, on_hand0, "restart with --demo did not reset stock");
    assert_eq!(reserved, orders, "stock taken equals distinct orders");
    assert_eq!(allocated, orders);
    assert_eq!(
        orders, on_hand0,
        "{BUYERS} buyers for {on_hand0} units sell every unit in the end"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_between_authorization_and_commit_leaves_no_authorization_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = ordo_store::testing::test_storage(tmp.path()).await.unwrap();
    // A slow gateway keeps the order between "authorization recorded" and "committed".
    let (mut p1, base1) = spawn_ordo_with(&storage, true, &["--sandbox-gateway-latency", "5s"]);
    let c = client_as(&token_for(&base1, "demo-app", "demo-secret").await);
    let body = inline_order(
        SKU,
        1,
        &token_at(&c, &base1).await,
        total_at(&c, &base1).await,
    );
    let (b, u, c2) = (body.clone(), base1.clone(), c.clone());
    let in_flight = tokio::spawn(async move {
        c2.post(format!("{u}/v1/orders"))
            .header("Idempotency-Key", "auth-crash")
            .json(&b)
            .send()
            .await
            .map(|r| r.status())
            .ok()
    });

    let store = ordo_store::Store::open(&storage).await.unwrap();
    let counts = |store: ordo_store::Store| async move {
        store.authorization_counts("default").await.unwrap()
    };
    assert!(
        wait_until(10, || {
            let s = store.clone();
            async move { counts(s).await.get("pending") == Some(&1) }
        })
        .await,
        "the authorization is recorded before the gateway answers"
    );
    p1.0.kill().unwrap(); // SIGKILL while the gateway call is in flight
    let _ = p1.0.wait();
    assert_eq!(
        in_flight.await.unwrap(),
        None,
        "the killed server never answered"
    );
    assert_eq!(store.count_orders("default").await.unwrap(), 0);

    // Restart: recovery voids the orphaned authorization.
    let (_p2, base2) = spawn_ordo_with(&storage, true, &["--authorization-grace", "0s"]);
    assert!(
        wait_until(10, || {
            let s = store.clone();
            async move { counts(s).await == [("voided".to_string(), 1)].into_iter().collect() }
        })
        .await,
        "recovery voids it: {:?}",
        counts(store.clone()).await
    );
    // The shopper's retry with the same key places the order on a fresh authorization.
    let (s, order) = place_at(&c, &base2, "auth-crash", &body).await;
    assert_eq!(s, StatusCode::CREATED, "{order}");
    let after = counts(store.clone()).await;
    assert_eq!(
        (
            after.get("voided"),
            after.get("attached"),
            after.get("pending")
        ),
        (Some(&1), Some(&1), None)
    );
}

/// A fresh payment token from the server at `base`.
async fn token_at(c: &reqwest::Client, base: &str) -> String {
    let r: Value = c
        .post(format!("{base}/v1/payment-tokens"))
        .json(&serde_json::json!({"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["token"].as_str().unwrap().to_string()
}

/// The total of one unit of `SKU` shipped to the test address, as the server prices it.
async fn total_at(c: &reqwest::Client, base: &str) -> i64 {
    let cart: Value = c
        .post(format!("{base}/v1/carts"))
        .json(&serde_json::json!({"lines": [{"sku": SKU, "quantity": 1}], "shipments": [{"address": address()}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    cart["totals"]["total"]["amount"].as_i64().unwrap()
}
