//! The foundations the OMS builds on, over HTTP on either backend: one placement engine that
//! cannot deadlock across processes, every creating write idempotent, one writer per SQLite
//! file for every write, a watched and bounded write path, and read-only ordered carts.

use crate::helpers::*;
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};

const IN_PROGRESS: &str = "https://ordo.dev/problems/request-in-progress";

async fn post_keyed(
    base: &str,
    tokens: &Tokens,
    path: &str,
    key: &str,
    body: &Value,
) -> (StatusCode, Value, bool) {
    let bearer = if path.starts_with("/v1/inventory") {
        &tokens.admin
    } else {
        &tokens.app
    };
    let r = client_as(bearer)
        .post(format!("{base}{path}"))
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let replayed = r.headers().get("idempotent-replayed").is_some();
    (status, r.json().await.unwrap_or(Value::Null), replayed)
}

fn cart_body(sku: &str, promo: bool) -> Value {
    let codes: Vec<&str> = if promo { vec!["LIMITED"] } else { vec![] };
    json!({"lines": [{"sku": sku, "quantity": 1}], "promo_codes": codes, "customer": guest(), "shipments": [{"address": address()}]})
}

fn order_from_cart(cart: &Value, token: &str) -> Value {
    let total = cart["totals"]["total"]["amount"].as_i64().unwrap();
    json!({"cart_id": cart["id"], "payments": [{"token": token, "amount": {"amount": total, "currency": "USD"}}],
           "expected_total": {"amount": total, "currency": "USD"}})
}

/// Two processes, one hot SKU, a promotion with a usage limit, and requests that repeat a key,
/// a token or a cart — all at once. Every answer is definite (no 5xx), nothing is oversold or
/// over-redeemed, and PostgreSQL detects no deadlock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_with_repeated_keys_tokens_and_carts_never_deadlock() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = ordo_store::testing::test_storage(tmp.path()).await.unwrap();
    let auth = {
        let store = ordo_store::Store::open(&storage).await.unwrap();
        for (id, lat) in [("wh-1", 40.0), ("store-2", 41.0)] {
            let l = ordo_domain::Location::new(
                ordo_domain::LocationId::parse(id).unwrap(),
                id,
                ordo_domain::LocationKind::Warehouse,
                lat,
                -80.0,
            );
            store.upsert_location("default", &l).await.unwrap();
        }
        let limited = ordo_domain::promotion::Promotion {
            usage_limit: Some(10),
            ..ordo_domain::promotion::Promotion::new(
                "LIMITED",
                ordo_domain::promotion::PromotionKind::Percent { bps: 1000 },
            )
        };
        store.upsert_promotion("default", &limited).await.unwrap();
        let auth = mint_tokens(&store, "default").await;
        store.close().await;
        auth
    };
    let (p1, b1) = spawn_ordo(&storage, false);
    let (p2, b2) = spawn_ordo(&storage, false);
    let bases = [b1.clone(), b2.clone()];
    let auth = &auth;
    let c = client_as(&auth.admin);
    let r = c
        .put(format!("{b1}/v1/products/HOT"))
        .json(&json!({"name": "Hot", "price": {"amount": 2000, "currency": "USD"}}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    for (loc, n) in [("wh-1", 25), ("store-2", 15)] {
        let (s, v, _) = post_keyed(
            &b1,
            auth,
            "/v1/inventory/adjustments",
            &format!("stock-{loc}"),
            &json!({"sku": "HOT", "location_id": loc, "set_on_hand": n, "reason": "count"}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    // 100 carts (half with the limited code) and a token each.
    let mut carts = Vec::new();
    let mut tokens = Vec::new();
    for i in 0..100 {
        let (s, cart, _) = post_keyed(
            &bases[i % 2],
            auth,
            "/v1/carts",
            &format!("cart-{i}"),
            &cart_body("HOT", i < 50),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{cart}");
        carts.push(cart);
        let (s, t, _) = post_keyed(
            &bases[i % 2],
            auth,
            "/v1/payment-tokens",
            &format!("tok-{i}"),
            &json!({"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
        tokens.push(t["token"].as_str().unwrap().to_string());
    }
    // Each cart's own order; then repeats: the same key again (20), the same cart under a new key
    // (20), the same token for another cart's order under a new key (10).
    let mut requests: Vec<(String, Value)> = (0..100)
        .map(|i| (format!("order-{i}"), order_from_cart(&carts[i], &tokens[i])))
        .collect();
    for i in 0..20 {
        requests.push((format!("order-{i}"), order_from_cart(&carts[i], &tokens[i])));
    }
    for i in 20..40 {
        let (s, t, _) = post_keyed(
            &b2,
            auth,
            "/v1/payment-tokens",
            &format!("tok-extra-{i}"),
            &json!({"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
        requests.push((
            format!("order-{i}-again"),
            order_from_cart(&carts[i], t["token"].as_str().unwrap()),
        ));
    }
    for i in 40..50 {
        requests.push((
            format!("order-{i}-token"),
            order_from_cart(&carts[i + 50], &tokens[i]),
        ));
    }
    let answers = join_all(requests.iter().enumerate().map(|(n, (key, body))| {
        let base = bases[n % 2].clone();
        async move { post_keyed(&base, auth, "/v1/orders", key, body).await }
    }))
    .await;

    let mut by_key: HashMap<&str, HashSet<String>> = HashMap::new();
    let mut placed_ids = HashSet::new();
    for ((key, _), (s, v, _)) in requests.iter().zip(&answers) {
        assert!(!s.is_server_error(), "{key}: {s} {v}");
        match *s {
            StatusCode::CREATED => {
                by_key
                    .entry(key)
                    .or_default()
                    .insert(v["id"].as_str().unwrap().to_string());
                placed_ids.insert(v["id"].as_str().unwrap().to_string());
            }
            StatusCode::CONFLICT => {
                let t = v["type"].as_str().unwrap_or("");
                assert!(
                    t == IN_PROGRESS
                        || t.ends_with("/out-of-stock")
                        || t.ends_with("/checkout-changed")
                        || t.ends_with("/cart-already-ordered"),
                    "{key}: {v}"
                );
            }
            StatusCode::UNPROCESSABLE_ENTITY => {
                assert_eq!(v["errors"][0]["code"], "token_used", "{key}: {v}")
            }
            other => panic!("{key}: unexpected {other} {v}"),
        }
    }
    assert!(
        by_key.values().all(|ids| ids.len() == 1),
        "one key, one order"
    );
    drop((p1, p2));

    // Checked through sessions of their own name, so the killed processes' can be told apart.
    let checker = match &storage {
        ordo_store::StorageConfig::Postgres {
            url,
            max_connections,
        } => {
            let sep = if url.contains('?') { '&' } else { '?' };
            ordo_store::StorageConfig::Postgres {
                url: format!("{url}{sep}application_name=ordo-check"),
                max_connections: *max_connections,
            }
        }
        sqlite => sqlite.clone(),
    };
    let store = ordo_store::Store::open(&checker).await.unwrap();
    let orders = store.count_orders("default").await.unwrap();
    assert_eq!(
        orders as usize,
        placed_ids.len(),
        "every acknowledged order exists, and nothing else"
    );
    assert!(orders > 0 && orders <= 40);
    let (on_hand, reserved, allocated) = store
        .stock_reconciliation("default", &ordo_domain::Sku::parse("HOT").unwrap())
        .await
        .unwrap();
    assert_eq!(
        (on_hand, reserved, allocated),
        (40, orders, orders),
        "never oversold; reserved = allocations"
    );
    let used = store
        .promotions("default", &["LIMITED".into()])
        .await
        .unwrap()["LIMITED"]
        .times_used;
    assert!(used <= 10, "the usage limit holds: {used}");
    if let Some((_, _)) = store.postgres_activity().await.unwrap() {
        // The killed processes' sessions end and report their statistics; then read the count.
        let ended = wait_until(20, || async {
            store
                .postgres_activity()
                .await
                .unwrap()
                .is_some_and(|(_, others)| others == 0)
        })
        .await;
        assert!(ended, "the other sessions ended");
        let (deadlocks, _) = store.postgres_activity().await.unwrap().unwrap();
        assert_eq!(deadlocks, 0, "PostgreSQL detected a deadlock");
    }
}

/// Every creating write takes an Idempotency-Key: a retry gets the first answer (marked
/// replayed), the same key with another body is refused, and nothing happens twice.
#[tokio::test]
async fn every_creating_write_replays_under_its_key() {
    let app = TestApp::spawn().await;
    app.product("A", 1000, 10).await;

    let cart = json!({"lines": [{"sku": "A", "quantity": 1}]});
    let (s1, c1, r1) = post_keyed(&app.base, &app.tokens, "/v1/carts", "c-1", &cart).await;
    let (s2, c2, r2) = post_keyed(&app.base, &app.tokens, "/v1/carts", "c-1", &cart).await;
    assert_eq!(
        (s1, s2, r1, r2),
        (StatusCode::CREATED, StatusCode::CREATED, false, true)
    );
    assert_eq!(c1, c2, "the same cart, not a second one");
    let (s, v, _) = post_keyed(
        &app.base,
        &app.tokens,
        "/v1/carts",
        "c-1",
        &json!({"lines": [{"sku": "A", "quantity": 2}]}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["errors"][0]["code"], "key_reused");

    let card =
        json!({"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"});
    let (_, t1, _) = post_keyed(&app.base, &app.tokens, "/v1/payment-tokens", "t-1", &card).await;
    let (s, t2, replayed) =
        post_keyed(&app.base, &app.tokens, "/v1/payment-tokens", "t-1", &card).await;
    assert_eq!((s, replayed), (StatusCode::CREATED, true));
    assert_eq!(t1["token"], t2["token"]);
    assert!(
        !t2.to_string().contains("4242424242424242"),
        "the replay never holds the card number"
    );
    let other_card =
        json!({"number": "4000000000000002", "exp_month": 12, "exp_year": 2031, "cvc": "123"});
    assert_eq!(
        post_keyed(
            &app.base,
            &app.tokens,
            "/v1/payment-tokens",
            "t-1",
            &other_card
        )
        .await
        .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // Same first six, last four and expiry, another card: still another request.
    let look_alike =
        json!({"number": "4242421000084242", "exp_month": 12, "exp_year": 2031, "cvc": "123"});
    assert_eq!(
        post_keyed(
            &app.base,
            &app.tokens,
            "/v1/payment-tokens",
            "t-1",
            &look_alike
        )
        .await
        .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    let receipt = json!({"sku": "A", "location_id": "wh-1", "delta": 5, "reason": "receipt"});
    let (s, a1, _) = post_keyed(
        &app.base,
        &app.tokens,
        "/v1/inventory/adjustments",
        "r-1",
        &receipt,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{a1}");
    let (s, a2, replayed) = post_keyed(
        &app.base,
        &app.tokens,
        "/v1/inventory/adjustments",
        "r-1",
        &receipt,
    )
    .await;
    assert_eq!((s, replayed), (StatusCode::CREATED, true));
    assert_eq!(a1, a2);
    assert_eq!(
        app.inventory("A").await["on_hand"],
        15,
        "a retried receipt adds the stock once"
    );
    let r = app.post("/v1/inventory/adjustments", &receipt).await;
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "an adjustment needs a key"
    );

    let product = json!({"name": "B", "price": {"amount": 500, "currency": "USD"}});
    let put = |key: &'static str, body: Value| {
        let url = app.url("/v1/products/B");
        let admin_token = app.tokens.admin.clone();
        async move {
            let r = client_as(&admin_token)
                .put(url)
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                r.status(),
                r.headers().get("idempotent-replayed").is_some(),
                r.json::<Value>().await.unwrap(),
            )
        }
    };
    let (s1, r1, v1) = put("p-1", product.clone()).await;
    let (s2, r2, v2) = put("p-1", product.clone()).await;
    assert_eq!(
        (s1, r1, s2, r2),
        (StatusCode::CREATED, false, StatusCode::CREATED, true),
        "the first answer, status included"
    );
    assert_eq!(v1, v2);
    assert_eq!(
        put(
            "p-1",
            json!({"name": "B2", "price": {"amount": 500, "currency": "USD"}})
        )
        .await
        .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let r = app
        .admin
        .put(app.url("/v1/products/B"))
        .header("Idempotency-Key", "clé")
        .json(&product)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

/// The embedded default has one writer per file for every write: admin writes never fail
/// while placements saturate it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_writes_succeed_while_placements_saturate_the_writer() {
    let app = TestApp::spawn().await;
    app.product("HOT", 1000, 0).await;
    app.set_stock("HOT", "wh-1", 100_000).await;
    let total = quote(&app, "HOT", 1).await;
    let mut toks = Vec::new();
    for _ in 0..300 {
        toks.push(app.token("4242424242424242").await);
    }
    let base = app.base.clone();
    let shopper = app.client.clone();
    let storm = tokio::spawn(async move {
        join_all(toks.iter().enumerate().map(|(i, t)| {
            let (base, body, c) = (
                base.clone(),
                inline_order("HOT", 1, t, total),
                shopper.clone(),
            );
            async move { place_at(&c, &base, &format!("sat-{i}"), &body).await.0 }
        }))
        .await
    });
    let mut admin = Vec::new();
    for i in 0..40 {
        let r = app.put(&format!("/v1/products/ADM-{i}"), &json!({"name": format!("Admin {i}"), "price": {"amount": 100 + i, "currency": "USD"}})).await;
        admin.push(r.status());
        let r = app
            .adjust(
                &json!({"sku": "HOT", "location_id": "store-2", "delta": 1, "reason": "receipt"}),
            )
            .await;
        admin.push(r.status());
    }
    let placed = storm.await.unwrap();
    assert!(
        admin.iter().all(|s| s.is_success()),
        "every admin write succeeded: {admin:?}"
    );
    assert!(
        placed.iter().all(|s| *s == StatusCode::CREATED),
        "{placed:?}"
    );
    assert_eq!(app.inventory("HOT").await["reserved"], 300);
    assert_eq!(app.inventory("HOT").await["on_hand"], 100_040);
}

/// A bounded queue: when it is full, a write is refused at once with 429 and Retry-After, its
/// authorization voided and its key released, so the retry places the order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_write_queue_answers_429_and_the_retry_succeeds() {
    let app = TestApp::spawn_with(|c| {
        c.write_queue_capacity = 4;
        c.batch_max_orders = 1;
        c.batch_workers = Some(1);
    })
    .await;
    app.product("A", 1000, 1000).await;
    let total = quote(&app, "A", 1).await;
    let mut bodies = Vec::new();
    for _ in 0..120 {
        bodies.push(inline_order(
            "A",
            1,
            &app.token("4242424242424242").await,
            total,
        ));
    }
    let answers = join_all(bodies.iter().enumerate().map(|(i, b)| {
        let (base, c) = (app.base.clone(), app.client.clone());
        async move {
            let r = c
                .post(format!("{base}/v1/orders"))
                .header("Idempotency-Key", format!("q-{i}"))
                .json(b)
                .send()
                .await
                .unwrap();
            let retry_after = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            (r.status(), retry_after, r.json::<Value>().await.unwrap())
        }
    }))
    .await;
    let refused: Vec<usize> = answers
        .iter()
        .enumerate()
        .filter(|(_, a)| a.0 == StatusCode::TOO_MANY_REQUESTS)
        .map(|(i, _)| i)
        .collect();
    assert!(!refused.is_empty(), "a full queue refuses");
    for (s, retry_after, v) in &answers {
        assert!(
            *s == StatusCode::CREATED || *s == StatusCode::TOO_MANY_REQUESTS,
            "{s} {v}"
        );
        if *s == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(retry_after.as_deref(), Some("1"));
            assert_eq!(v["type"], "https://ordo.dev/problems/too-many-requests");
        }
    }
    let i = refused[0];
    let (s, v) = place_at(&app.client, &app.base, &format!("q-{i}"), &bodies[i]).await;
    assert_eq!(
        s,
        StatusCode::CREATED,
        "the retry under the same key places the order: {v}"
    );
    let placed = answers
        .iter()
        .filter(|a| a.0 == StatusCode::CREATED)
        .count()
        + 1;
    assert_eq!(
        app.store.count_orders(&app.tenant).await.unwrap(),
        placed as i64
    );
    let auths = app.store.authorization_counts(&app.tenant).await.unwrap();
    assert_eq!(auths.get("attached"), Some(&(placed as i64)));
    assert_eq!(
        auths.get("pending"),
        None,
        "no authorization is left pending: refused ones were voided or never made"
    );
    assert_eq!(auths.get("voiding"), None);
    assert!(auths.get("voided").copied().unwrap_or(0) <= refused.len() as i64);
}

/// `/readyz` fails when the write path is gone.
#[tokio::test]
async fn readyz_fails_when_the_write_path_is_gone() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
    app.store.halt_write_path().await;
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert_eq!(
        app.get("/healthz").await.status(),
        StatusCode::OK,
        "alive, but not ready"
    );
}

/// A cart that became an order is read-only.
#[tokio::test]
async fn an_ordered_cart_cannot_change() {
    let app = TestApp::spawn().await;
    app.product("A", 1000, 10).await;
    let (_, cart, _) = post_keyed(
        &app.base,
        &app.tokens,
        "/v1/carts",
        "c",
        &cart_body("A", false),
    )
    .await;
    let token = app.token("4242424242424242").await;
    let (s, order) = app.place("o", &order_from_cart(&cart, &token)).await;
    assert_eq!(s, StatusCode::CREATED, "{order}");
    let r = app
        .put(
            &format!("/v1/carts/{}", cart["id"].as_str().unwrap()),
            &json!({"lines": [{"sku": "A", "quantity": 5}]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "https://ordo.dev/problems/cart-already-ordered");
    assert_eq!(v["differences"][0]["order_id"], order["id"]);
    let got: Value = app
        .get(&format!("/v1/carts/{}", cart["id"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["lines"][0]["quantity"], 1, "unchanged");
    assert_eq!(got["order_id"], order["id"]);
}

/// A promotion whose window closed after the cart was priced is not granted at placement.
#[tokio::test]
async fn an_expired_promotion_is_not_granted_at_placement() {
    let app = TestApp::spawn().await;
    app.product("A", 1000, 10).await;
    let ends = ordo_store::now_ms() + 1500;
    let p = ordo_domain::promotion::Promotion {
        ends_at_ms: Some(ends),
        ..ordo_domain::promotion::Promotion::new(
            "BRIEF",
            ordo_domain::promotion::PromotionKind::Percent { bps: 2000 },
        )
    };
    app.store.upsert_promotion(&app.tenant, &p).await.unwrap();
    let body = json!({"lines": [{"sku": "A", "quantity": 1}], "promo_codes": ["BRIEF"], "customer": guest(), "shipments": [{"address": address()}]});
    let (_, cart, _) = post_keyed(&app.base, &app.tokens, "/v1/carts", "c", &body).await;
    assert_eq!(cart["promo_codes"][0], "BRIEF", "{cart}");
    assert!(wait_until(5, || async { ordo_store::now_ms() > ends }).await);
    let token = app.token("4242424242424242").await;
    let (s, v) = app.place("o", &order_from_cart(&cart, &token)).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["differences"][0]["code"], "BRIEF");
    assert_eq!(v["differences"][0]["reason"], "expired");
    assert_eq!(app.store.count_orders(&app.tenant).await.unwrap(), 0);
}
