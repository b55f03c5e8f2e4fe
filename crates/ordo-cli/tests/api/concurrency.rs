//! No oversell under real parallel clients: one process, and two `ordo serve` processes sharing
//! one database (PostgreSQL when ORDO_TEST_DATABASE_URL is set, else one SQLite file).

use crate::helpers::*;
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;

const UNITS: i64 = 50;
const BUYERS: usize = 200;

async fn tokens(app: &TestApp, n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(app.token("4242424242424242").await);
    }
    out
}

/// Fires every buyer at once (each on its own connection) and tallies the answers.
async fn storm(
    bases: &[String],
    bearer: &str,
    sku: &str,
    tokens: &[String],
    total: i64,
) -> (usize, usize, Vec<(StatusCode, Value)>) {
    let futures = tokens.iter().enumerate().map(|(i, t)| {
        let base = bases[i % bases.len()].clone();
        let body = inline_order(sku, 1, t, total);
        let bearer = bearer.to_string();
        async move {
            let client = client_as(&bearer);
            place_at(&client, &base, &format!("storm-{i}"), &body).await
        }
    });
    let results = join_all(futures).await;
    let placed = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let sold_out = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CONFLICT)
        .count();
    (placed, sold_out, results)
}

async fn assert_reconciles(app: &TestApp, sku: &str, placed: usize) {
    let inv = app.inventory(sku).await;
    assert_eq!(inv["available"], 0, "{inv}");
    assert_eq!(inv["reserved"], placed as i64);
    let (on_hand, reserved, allocated) = app
        .store
        .stock_reconciliation(&app.tenant, &ordo_domain::Sku::parse(sku).unwrap())
        .await
        .unwrap();
    assert_eq!((on_hand, reserved, allocated), (UNITS, UNITS, UNITS));
    assert_eq!(
        app.store.count_orders(&app.tenant).await.unwrap(),
        placed as i64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_buyers_fifty_units_exactly_fifty_sold() {
    let app = TestApp::spawn().await;
    app.product("HOT", 1500, 0).await;
    app.set_stock("HOT", "wh-1", 30).await;
    app.set_stock("HOT", "store-2", 20).await;
    let total = quote(&app, "HOT", 1).await;
    let toks = tokens(&app, BUYERS).await;
    let (placed, sold_out, results) =
        storm(&[app.base.clone()], &app.tokens.app, "HOT", &toks, total).await;
    let others: Vec<_> = results
        .iter()
        .filter(|(s, _)| *s != StatusCode::CREATED && *s != StatusCode::CONFLICT)
        .collect();
    assert!(others.is_empty(), "unexpected answers: {others:?}");
    assert_eq!(placed, UNITS as usize);
    assert_eq!(sold_out, BUYERS - UNITS as usize);
    let conflict = results
        .iter()
        .find(|(s, _)| *s == StatusCode::CONFLICT)
        .unwrap();
    assert_eq!(conflict.1["differences"][0]["type"], "line_removed");
    assert_reconciles(&app, "HOT", placed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_server_processes_sharing_one_database_never_oversell() {
    let app = TestApp::spawn().await;
    app.product("HOT2", 1500, 0).await;
    app.set_stock("HOT2", "wh-1", 25).await;
    app.set_stock("HOT2", "store-2", 25).await;
    let total = quote(&app, "HOT2", 1).await;
    let toks = tokens(&app, BUYERS).await;
    let (_p1, b1) = spawn_ordo(&app.storage, false);
    let (_p2, b2) = spawn_ordo(&app.storage, false);
    let (placed, sold_out, results) = storm(&[b1, b2], &app.tokens.app, "HOT2", &toks, total).await;
    let others: Vec<_> = results
        .iter()
        .filter(|(s, _)| *s != StatusCode::CREATED && *s != StatusCode::CONFLICT)
        .collect();
    assert!(others.is_empty(), "unexpected answers: {others:?}");
    assert_eq!(
        (placed, sold_out),
        (UNITS as usize, BUYERS - UNITS as usize)
    );
    assert_reconciles(&app, "HOT2", placed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_of_one_key_place_one_order_and_reach_the_gateway_once() {
    // A slow gateway keeps the first request in flight while its duplicates arrive.
    let app =
        TestApp::spawn_with(|c| c.sandbox_gateway_latency = std::time::Duration::from_millis(1500))
            .await;
    app.product("A", 1000, 100).await;
    let total = quote(&app, "A", 1).await;
    let token = app.token("4242424242424242").await;
    let body = inline_order("A", 1, &token, total);
    let results = join_all((0..20).map(|_| {
        let base = app.base.clone();
        let body = body.clone();
        let bearer = app.tokens.app.clone();
        async move { place_at(&client_as(&bearer), &base, "same-key", &body).await }
    }))
    .await;
    let ids: std::collections::HashSet<String> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .map(|(_, v)| v["id"].as_str().unwrap().to_string())
        .collect();
    let in_progress = results
        .iter()
        .filter(|(s, v)| {
            *s == StatusCode::CONFLICT
                && v["type"] == "https://ordo.dev/problems/request-in-progress"
        })
        .count();
    let bad: Vec<_> = results
        .iter()
        .filter(|(s, v)| {
            *s != StatusCode::CREATED
                && !(*s == StatusCode::CONFLICT
                    && v["type"] == "https://ordo.dev/problems/request-in-progress")
        })
        .collect();
    assert!(
        bad.is_empty(),
        "a duplicate gets the first answer or request-in-progress: {bad:?}"
    );
    assert!(
        in_progress > 0,
        "duplicates arriving during the first request are told it is in progress"
    );
    assert_eq!(ids.len(), 1);
    // The gateway was asked once: one authorization, attached; nothing authorized and voided after the fact.
    let auths = app.store.authorization_counts(&app.tenant).await.unwrap();
    assert_eq!(
        auths.into_iter().collect::<Vec<_>>(),
        vec![("attached".to_string(), 1)]
    );
    // Once it finished, a retry replays the first answer.
    let r = app
        .client
        .post(app.url("/v1/orders"))
        .header("Idempotency-Key", "same-key")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        r.headers()
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["id"]
            .as_str()
            .unwrap(),
        ids.iter().next().unwrap()
    );
    assert_eq!(app.store.count_orders(&app.tenant).await.unwrap(), 1);
    assert_eq!(app.inventory("A").await["reserved"], 1);
}
