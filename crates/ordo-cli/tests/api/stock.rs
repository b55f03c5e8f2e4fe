//! Safety stock and the inventory change feed over HTTP: units held back are never sold online,
//! and the feed gives every change of every stock row once, in order, placements included.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;

async fn adjust_with(app: &TestApp, key: &str, body: Value) -> (StatusCode, Value) {
    let r = app
        .admin
        .post(app.url("/v1/inventory/adjustments"))
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn feed(app: &TestApp, query: &str) -> (StatusCode, Value) {
    let r = app
        .admin
        .get(app.url(&format!("/v1/inventory/changes{query}")))
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn safety_stock_is_held_back_from_online_sale() {
    let app = TestApp::spawn().await;
    app.product("SS-1", 1000, 10).await;
    let (s, v) = adjust_with(
        &app,
        "ss-1",
        json!({"sku": "SS-1", "location_id": "wh-1", "reason": "safety_stock", "safety_stock": 4}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (
            v["on_hand"].as_i64(),
            v["safety_stock"].as_i64(),
            v["available"].as_i64()
        ),
        (Some(10), Some(4), Some(6)),
        "{v}"
    );
    let inv = app.inventory("SS-1").await;
    assert_eq!(
        (inv["safety_stock"].as_i64(), inv["available"].as_i64()),
        (Some(4), Some(6)),
        "{inv}"
    );
    let product: Value = app.get("/v1/products/SS-1").await.json().await.unwrap();
    assert_eq!(
        product["available"], 6,
        "the catalog shows what can be sold: {product}"
    );

    // Six sell; the seventh would eat into the safety stock.
    let total1 = quote(&app, "SS-1", 1).await;
    let total = quote(&app, "SS-1", 6).await;
    let (s, placed) = app
        .place(
            "ss-o1",
            &inline_order("SS-1", 6, &app.token("4242424242424242").await, total),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{placed}");
    let (s, refused) = app
        .place(
            "ss-o2",
            &inline_order("SS-1", 1, &app.token("4242424242424242").await, total1),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{refused}");
    // A count below reserved + safety is allowed (less is held back); below reserved is not.
    let (s, v) = adjust_with(
        &app,
        "ss-2",
        json!({"sku": "SS-1", "location_id": "wh-1", "set_on_hand": 7, "reason": "count"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (
            v["on_hand"].as_i64(),
            v["reserved"].as_i64(),
            v["available"].as_i64()
        ),
        (Some(7), Some(6), Some(0)),
        "{v}"
    );
    let (s, _) = adjust_with(
        &app,
        "ss-3",
        json!({"sku": "SS-1", "location_id": "wh-1", "set_on_hand": 5, "reason": "count"}),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // Releasing the safety stock makes the held unit sellable again.
    let (s, v) = adjust_with(
        &app,
        "ss-4",
        json!({"sku": "SS-1", "location_id": "wh-1", "reason": "safety_stock", "safety_stock": 0}),
    )
    .await;
    assert_eq!(
        (s, v["available"].as_i64()),
        (StatusCode::CREATED, Some(1)),
        "{v}"
    );

    // Bad input names the field.
    for (body, path) in [
        (
            json!({"sku": "SS-1", "location_id": "wh-1", "reason": "safety_stock"}),
            "safety_stock",
        ),
        (
            json!({"sku": "SS-1", "location_id": "wh-1", "reason": "safety_stock", "safety_stock": 2, "delta": 1}),
            "safety_stock",
        ),
        (
            json!({"sku": "SS-1", "location_id": "wh-1", "reason": "safety_stock", "safety_stock": -1}),
            "safety_stock",
        ),
        (
            json!({"sku": "SS-1", "location_id": "wh-1", "reason": "receipt", "safety_stock": 2}),
            "safety_stock",
        ),
    ] {
        let (s, v) = adjust_with(&app, &format!("bad-{body}"), body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert!(problem_paths(&v).contains(&path.to_string()), "{body}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_change_feed_gives_every_change_once_in_order() {
    let app = TestApp::spawn().await;
    app.product("FD-1", 1000, 50).await;
    app.set_stock("FD-1", "store-2", 5).await;

    // From the beginning: the stock as it was set, oldest first.
    let (s, first) = feed(&app, "").await;
    assert_eq!(s, StatusCode::OK, "{first}");
    let items = first["items"].as_array().unwrap();
    let mine: Vec<(&str, i64)> = items
        .iter()
        .filter(|i| i["sku"] == "FD-1")
        .map(|i| {
            (
                i["location_id"].as_str().unwrap(),
                i["on_hand"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(mine, vec![("wh-1", 50), ("store-2", 5)], "{first}");
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    // Nothing new: no items, the same cursor to poll from.
    let (_, idle) = feed(&app, &format!("?since={cursor}")).await;
    assert_eq!(
        (
            idle["items"].as_array().map(Vec::len),
            idle["next_cursor"].as_str()
        ),
        (Some(0), Some(cursor.as_str())),
        "{idle}"
    );

    // Orders from many clients at once, and adjustments between them.
    let mut tasks = Vec::new();
    for i in 0..12 {
        let total = quote(&app, "FD-1", 1).await;
        let body = inline_order("FD-1", 1, &app.token("4242424242424242").await, total);
        let (client, base) = (app.client.clone(), app.base.clone());
        tasks.push(tokio::spawn(async move {
            place_at(&client, &base, &format!("fd-{i}"), &body).await.0
        }));
    }
    let (s, _) = adjust_with(
        &app,
        "fd-adj",
        json!({"sku": "FD-1", "location_id": "store-2", "delta": 3, "reason": "receipt"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::CREATED);
    }

    // One page at a time from the cursor: consecutive, never repeated, and replaying them gives
    // the stock as it stands.
    let mut since = cursor.clone();
    let mut seen = 0;
    let mut state: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut reserved_seen: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    loop {
        let (s, page) = feed(&app, &format!("?since={since}&limit=2")).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        let next = page["next_cursor"].as_str().unwrap().to_string();
        if items.is_empty() {
            assert_eq!(next, since, "the last page's cursor is where to poll from");
            break;
        }
        assert!(next.parse::<i64>().unwrap() > since.parse::<i64>().unwrap());
        for i in items {
            seen += 1;
            let loc = i["location_id"].as_str().unwrap().to_string();
            let (on_hand, reserved) = (
                i["on_hand"].as_i64().unwrap(),
                i["reserved"].as_i64().unwrap(),
            );
            assert_eq!(
                i["available"].as_i64().unwrap(),
                on_hand - reserved - i["safety_stock"].as_i64().unwrap(),
                "{i}"
            );
            reserved_seen.entry(loc.clone()).or_default().push(reserved);
            state.insert(loc, (on_hand, reserved));
        }
        since = next;
    }
    assert!(
        seen >= 2,
        "at least one placement and the adjustment: {seen}"
    );
    for (loc, r) in &reserved_seen {
        assert!(
            r.windows(2).all(|w| w[0] <= w[1]),
            "{loc}: reservations only grow here, so in order they never go back: {r:?}"
        );
    }
    let inv = app.inventory("FD-1").await;
    let now: BTreeMap<String, (i64, i64)> = inv["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["location_id"].as_str().unwrap().to_string(),
                (
                    l["on_hand"].as_i64().unwrap(),
                    l["reserved"].as_i64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(state, now, "replaying the feed gives the stock: {inv}");
    assert_eq!(now.values().map(|v| v.1).sum::<i64>(), 12);

    // Bad cursors and limits are 422 naming the parameter; staff read it, the app cannot.
    for (q, path) in [
        ("?since=abc", "since"),
        ("?since=-3", "since"),
        ("?since=999999999", "since"),
        ("?limit=0", "limit"),
        ("?limit=1001", "limit"),
    ] {
        let (s, v) = feed(&app, q).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{q}: {v}");
        assert_eq!(problem_paths(&v), vec![path], "{q}");
    }
    assert_eq!(
        client_as(&app.tokens.staff)
            .get(app.url("/v1/inventory/changes"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.client
            .get(app.url("/v1/inventory/changes"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
}

async fn cart(app: &TestApp, sku: &str, qty: i64) -> Value {
    let r = app.post("/v1/carts", &json!({"lines": [{"sku": sku, "quantity": qty}], "customer": guest(), "shipments": [{"address": address()}]})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

async fn hold(app: &TestApp, cart_id: &str) -> (StatusCode, Value) {
    let r = app
        .client
        .post(app.url(&format!("/v1/carts/{cart_id}/hold")))
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn order_cart(app: &TestApp, key: &str, cart: &Value) -> (StatusCode, Value) {
    let total = cart["totals"]["total"].clone();
    let token = app.token("4242424242424242").await;
    app.place(
        key,
        &json!({"cart_id": cart["id"], "payments": [{"token": token, "amount": total}]}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_cart_keeps_its_stock_until_its_order_consumes_the_hold() {
    let app = TestApp::spawn().await;
    app.product("HD-1", 1000, 3).await;
    let quote_total = quote(&app, "HD-1", 1).await;
    let mine = cart(&app, "HD-1", 2).await;
    let (s, held) = hold(&app, mine["id"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{held}");
    assert_eq!(
        held["holds"],
        json!([{"sku": "HD-1", "location_id": "wh-1", "quantity": 2}]),
        "{held}"
    );
    let expires = held["expires_at"].as_str().unwrap();
    assert!(
        expires > ordo_server::services::rfc3339(ordo_store::now_ms() + 590_000).as_str(),
        "about ten minutes from now: {expires}"
    );
    let inv = app.inventory("HD-1").await;
    assert_eq!(
        (
            inv["held"].as_i64(),
            inv["available"].as_i64(),
            inv["reserved"].as_i64()
        ),
        (Some(2), Some(1), Some(0)),
        "{inv}"
    );
    // Holding again refreshes the hold; it does not hold twice.
    let (s, again) = hold(&app, mine["id"].as_str().unwrap()).await;
    assert_eq!(
        (s, again["holds"][0]["quantity"].as_i64()),
        (StatusCode::OK, Some(2)),
        "{again}"
    );
    assert_eq!(app.inventory("HD-1").await["held"], 2);

    // Someone else cannot take the held units: their cart is limited to the one left.
    let theirs = cart(&app, "HD-1", 2).await;
    assert_eq!(theirs["lines"][0]["quantity"], 1, "{theirs}");
    let (s, held) = hold(&app, theirs["id"].as_str().unwrap()).await;
    assert_eq!(
        (s, held["holds"][0]["quantity"].as_i64()),
        (StatusCode::OK, Some(1)),
        "{held}"
    );
    let inv = app.inventory("HD-1").await;
    assert_eq!(
        (inv["held"].as_i64(), inv["available"].as_i64()),
        (Some(3), Some(0)),
        "{inv}"
    );
    let (s, refused) = app
        .place(
            "hd-other",
            &inline_order("HD-1", 1, &app.token("4242424242424242").await, quote_total),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "every unit is held: {refused}");

    // Each held cart's order consumes its hold: held goes to reserved.
    let (s, placed) = order_cart(&app, "hd-mine", &mine).await;
    assert_eq!(s, StatusCode::CREATED, "{placed}");
    let inv = app.inventory("HD-1").await;
    assert_eq!(
        (
            inv["held"].as_i64(),
            inv["reserved"].as_i64(),
            inv["available"].as_i64()
        ),
        (Some(1), Some(2), Some(0)),
        "{inv}"
    );
    let (s, placed) = order_cart(&app, "hd-theirs", &theirs).await;
    assert_eq!(s, StatusCode::CREATED, "{placed}");
    let inv = app.inventory("HD-1").await;
    assert_eq!(
        (
            inv["held"].as_i64(),
            inv["reserved"].as_i64(),
            inv["available"].as_i64()
        ),
        (Some(0), Some(3), Some(0)),
        "{inv}"
    );
    let (s, refused) = hold(&app, mine["id"].as_str().unwrap()).await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "an ordered cart holds nothing: {refused}"
    );
    assert_eq!(
        app.store
            .stock_reconciliation("default", &ordo_domain::Sku::parse("HD-1").unwrap())
            .await
            .unwrap(),
        (3, 3, 3)
    );

    // Bad requests: unknown cart, a cart without lines or address.
    assert_eq!(hold(&app, "cart_nope").await.0, StatusCode::NOT_FOUND);
    app.product("HD-2", 1000, 3).await;
    let r = app
        .post(
            "/v1/carts",
            &json!({"lines": [{"sku": "HD-2", "quantity": 1}]}),
        )
        .await;
    let bare: Value = r.json().await.unwrap();
    let (s, v) = hold(&app, bare["id"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(problem_paths(&v), vec!["shipments"]);
    let staff = client_as(&app.tokens.staff);
    assert_eq!(
        staff
            .post(app.url(&format!("/v1/carts/{}/hold", bare["id"].as_str().unwrap())))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_holds_are_released() {
    let app = TestApp::spawn_with(|c| c.hold_ttl = std::time::Duration::from_secs(1)).await;
    app.product("HX-1", 1000, 2).await;
    let mine = cart(&app, "HX-1", 2).await;
    let (s, held) = hold(&app, mine["id"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{held}");
    assert_eq!(app.inventory("HX-1").await["available"], 0);
    // Not yet expired: the sweep keeps it.
    assert_eq!(
        app.store
            .release_expired_holds(ordo_store::now_ms(), 100)
            .await
            .unwrap(),
        0
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        app.store
            .release_expired_holds(ordo_store::now_ms(), 100)
            .await
            .unwrap(),
        1
    );
    let inv = app.inventory("HX-1").await;
    assert_eq!(
        (inv["held"].as_i64(), inv["available"].as_i64()),
        (Some(0), Some(2)),
        "{inv}"
    );
    // The change feed saw the hold and its release.
    let (_, page) = feed(&app, "").await;
    let helds: Vec<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["sku"] == "HX-1")
        .map(|i| i["held"].as_i64().unwrap())
        .collect();
    assert_eq!(helds, vec![0, 2, 0], "{page}");
    // The cart still orders (routed afresh).
    let (s, placed) = order_cart(&app, "hx", &mine).await;
    assert_eq!(s, StatusCode::CREATED, "{placed}");
}
