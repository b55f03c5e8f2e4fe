use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn products_page_with_cursor_and_search() {
    let app = TestApp::spawn().await;
    for i in 0..25 {
        app.product(&format!("SKU-{i:02}"), 1000 + i, i).await;
    }
    app.put("/v1/products/HAT-1", &json!({"name": "Wool Hat", "price": {"amount": 2500, "currency": "USD"}, "category": "Accessories"})).await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/products?limit=10&cursor={c}"),
            None => "/v1/products?limit=10".to_string(),
        };
        let page: Value = app.get(&path).await.json().await.unwrap();
        for item in page["items"].as_array().unwrap() {
            seen.push(item["sku"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 26, "every product exactly once");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen);

    let hits: Value = app.get("/v1/products?q=WOOL").await.json().await.unwrap();
    assert_eq!(hits["items"].as_array().unwrap().len(), 1);
    assert_eq!(hits["items"][0]["sku"], "HAT-1");
    let by_category: Value = app
        .get("/v1/products?q=accessories")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_category["items"][0]["sku"], "HAT-1");
    let none: Value = app.get("/v1/products?q=100%25").await.json().await.unwrap();
    assert_eq!(
        none["items"].as_array().unwrap().len(),
        0,
        "% is literal, not a wildcard"
    );

    let one: Value = app.get("/v1/products/SKU-07").await.json().await.unwrap();
    assert_eq!(one["price"], json!({"amount": 1007, "currency": "USD"}));
    assert_eq!(one["available"], 7);
}

#[tokio::test]
async fn product_upsert_creates_then_updates_and_validates() {
    let app = TestApp::spawn().await;
    let body = json!({"name": "Tee", "price": {"amount": 1999, "currency": "usd"}, "attributes": {"color": "red"}});
    assert_eq!(
        app.put("/v1/products/TEE-1", &body).await.status(),
        StatusCode::CREATED
    );
    let body = json!({"name": "Tee v2", "price": {"amount": 2199, "currency": "USD"}});
    let r = app.put("/v1/products/TEE-1", &body).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["name"], "Tee v2");
    assert_eq!(v["price"]["amount"], 2199);

    let r = app
        .put(
            "/v1/products/bad%20sku",
            &json!({"name": "", "price": {"amount": -1, "currency": "XXX"}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let v: Value = r.json().await.unwrap();
    let paths = problem_paths(&v);
    for p in ["sku", "name", "price.currency"] {
        assert!(paths.contains(&p.to_string()), "{p} in {paths:?}");
    }
}

#[tokio::test]
async fn inventory_adjustments_keep_reservations_safe() {
    let app = TestApp::spawn().await;
    app.product("A", 1000, 10).await;
    let r = app
        .adjust(&json!({"sku": "A", "location_id": "store-2", "delta": 5, "reason": "receipt"}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let inv = app.inventory("A").await;
    assert_eq!(inv["on_hand"], 15);
    assert_eq!(inv["available"], 15);
    assert_eq!(inv["locations"].as_array().unwrap().len(), 2);

    // Reserve 8 through an order, then try to count below the reservation.
    let token = app.token("4242424242424242").await;
    let total = quote(&app, "A", 12).await;
    let (s, order) = app
        .place("adj-1", &inline_order("A", 12, &token, total))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{order}");
    let inv = app.inventory("A").await;
    assert_eq!(inv["reserved"], 12);
    assert_eq!(inv["available"], 3);
    let wh1_reserved = inv["locations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["location_id"] == "wh-1")
        .unwrap()["reserved"]
        .as_i64()
        .unwrap();
    let r = app.adjust(&json!({"sku": "A", "location_id": "wh-1", "set_on_hand": wh1_reserved - 1, "reason": "count"})).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(
        app.inventory("A").await["on_hand"],
        15,
        "a refused adjustment changes nothing"
    );

    for (body, path) in [
        (
            json!({"sku": "A", "location_id": "wh-1", "delta": 1, "set_on_hand": 1, "reason": "count"}),
            "delta",
        ),
        (
            json!({"sku": "A", "location_id": "wh-1", "delta": 1, "reason": "because"}),
            "reason",
        ),
        (
            json!({"sku": "NOPE", "location_id": "wh-1", "delta": 1, "reason": "receipt"}),
            "sku",
        ),
        (
            json!({"sku": "A", "location_id": "mars", "delta": 1, "reason": "receipt"}),
            "location_id",
        ),
        (
            json!({"sku": "A", "location_id": "wh-1", "delta": 9_000_000_000_000_000_000i64, "reason": "receipt"}),
            "delta",
        ),
        (
            json!({"sku": "A", "location_id": "wh-1", "reason": "receipt"}),
            "delta",
        ),
        (
            json!({"sku": "A", "location_id": "wh-1", "delta": i64::MIN, "reason": "receipt"}),
            "delta",
        ),
        (
            json!({"sku": "A", "location_id": "wh-1", "delta": 1, "reason": "receipt", "note": "a\u{0}b"}),
            "note",
        ),
    ] {
        let r = app.adjust(&body).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let v: Value = r.json().await.unwrap();
        assert!(
            problem_paths(&v).contains(&path.to_string()),
            "{body} → {v}"
        );
    }
    assert_eq!(
        app.get("/v1/inventory/NOPE").await.status(),
        StatusCode::NOT_FOUND
    );
    assert!(
        app.store
            .outbox_count(&app.tenant, "ordo.inventory.updated")
            .await
            .unwrap()
            >= 2
    );
}

#[tokio::test]
async fn demo_seed_is_rich_and_happens_once() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = ordo_store::testing::test_storage(tmp.path()).await.unwrap();
    let app = TestApp::spawn_on(storage.clone(), tmp, true).await;
    let n = app.store.count_products(&app.tenant).await.unwrap();
    assert!(n >= 200, "{n} products");
    let categories: std::collections::HashSet<String> = {
        let page: Value = app
            .get("/v1/products?limit=100")
            .await
            .json()
            .await
            .unwrap();
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["category"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(categories.len() >= 3, "{categories:?}");
    assert!(app.store.locations(&app.tenant).await.unwrap().len() >= 3);
    // Both demo tenants ask shoppers for a passkey above $1,000.00.
    for tenant in [app.tenant.as_str(), ordo_server::demo::SECOND_TENANT] {
        assert_eq!(
            app.store.step_up_threshold(tenant).await.unwrap(),
            Some(100_000),
            "{tenant}"
        );
    }
    // The demo's buy-2-get-1 code on tees: of tees at 19, 22 and 25, the 19 one is free.
    let tees = json!([{"sku": "TEE-1-BLA-S", "quantity": 1}, {"sku": "TEE-2-BLA-S", "quantity": 1}, {"sku": "TEE-3-BLA-S", "quantity": 1}]);
    let c: Value = app
        .post(
            "/v1/carts",
            &json!({"lines": tees, "promo_codes": ["TEES3FOR2"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(c["totals"]["discount"]["amount"], 1900, "{c}");
    // Sell something, then restart with --demo: nothing may be reseeded or reset.
    let sku = "TEE-1-BLA-S";
    let before = app.inventory(sku).await["available"].as_i64().unwrap();
    let token = app.token("4242424242424242").await;
    let total = quote(&app, sku, 2).await;
    let (s, _) = app
        .place("demo-1", &inline_order(sku, 2, &token, total))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let seeded_again = ordo_server::demo::seed(&app.store, &app.tenant)
        .await
        .unwrap();
    assert!(!seeded_again);
    assert_eq!(
        app.inventory(sku).await["available"].as_i64().unwrap(),
        before - 2
    );
}

/// Products and stock carry ETags: a client holding a copy asks with If-None-Match and gets 304
/// (no body) until the price, availability or stock changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn products_and_stock_answer_304_until_they_change() {
    let app = TestApp::spawn().await;
    app.product("ETAG-1", 1000, 5).await;
    let first = app
        .client
        .get(app.url("/v1/products/ETAG-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), reqwest::StatusCode::OK);
    let tag = first.headers()["etag"].to_str().unwrap().to_string();
    assert!(tag.starts_with('"') && tag.ends_with('"'), "{tag}");
    let again = app
        .client
        .get(app.url("/v1/products/ETAG-1"))
        .header("If-None-Match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), reqwest::StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), tag);
    assert!(again.bytes().await.unwrap().is_empty());
    let weak = app
        .client
        .get(app.url("/v1/products/ETAG-1"))
        .header("If-None-Match", format!("\"other\", W/{tag}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        weak.status(),
        reqwest::StatusCode::NOT_MODIFIED,
        "any listed tag matches; weak comparison"
    );

    // Stock moves: the product's availability and the inventory change, so do their tags.
    let inv = app
        .admin
        .get(app.url("/v1/inventory/ETAG-1"))
        .send()
        .await
        .unwrap();
    let inv_tag = inv.headers()["etag"].to_str().unwrap().to_string();
    let r = app.adjust(&serde_json::json!({"sku": "ETAG-1", "location_id": "wh-1", "delta": 3, "reason": "receipt"})).await;
    assert!(r.status().is_success());
    let moved = app
        .client
        .get(app.url("/v1/products/ETAG-1"))
        .header("If-None-Match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(
        moved.status(),
        reqwest::StatusCode::OK,
        "availability changed"
    );
    assert_ne!(moved.headers()["etag"].to_str().unwrap(), tag);
    let inv_moved = app
        .admin
        .get(app.url("/v1/inventory/ETAG-1"))
        .header("If-None-Match", &inv_tag)
        .send()
        .await
        .unwrap();
    assert_eq!(inv_moved.status(), reqwest::StatusCode::OK);
    let inv_tag2 = inv_moved.headers()["etag"].to_str().unwrap().to_string();
    let same = app
        .admin
        .get(app.url("/v1/inventory/ETAG-1"))
        .header("If-None-Match", &inv_tag2)
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), reqwest::StatusCode::NOT_MODIFIED);

    // A price change changes the product's tag.
    let now = app
        .client
        .get(app.url("/v1/products/ETAG-1"))
        .send()
        .await
        .unwrap()
        .headers()["etag"]
        .to_str()
        .unwrap()
        .to_string();
    app.product("ETAG-1", 1200, 0).await;
    let repriced = app
        .client
        .get(app.url("/v1/products/ETAG-1"))
        .header("If-None-Match", &now)
        .send()
        .await
        .unwrap();
    assert_eq!(repriced.status(), reqwest::StatusCode::OK);
    let body: serde_json::Value = repriced.json().await.unwrap();
    assert_eq!(body["price"]["amount"], 1200);
}
