//! Routing inside placement, over HTTP: every order is routed by the engine in its own commit
//! (allocations with their address), its decision log explains the choice node by node, hard
//! rules and daily capacity hold, and an order no plan can fill is a 409 naming what is short.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn node(lat: f64, lon: f64, extra: Value) -> Value {
    let mut v = json!({"name": "node", "kind": "warehouse", "lat": lat, "lon": lon, "country": "US",
        "handling_cost": {"amount": 350, "currency": "USD"}, "cost_per_100km": {"amount": 40, "currency": "USD"}, "active": true});
    if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        m.extend(e.clone());
    }
    v
}

/// The test tenant's network: wh-1 near Newark, store-2 in Chicago, wh-west in Reno; all with
/// the same package costs, so distance decides.
async fn network(app: &TestApp, west_extra: Value, east_extra: Value) {
    for (id, body) in [
        ("wh-1", node(40.0, -74.0, east_extra)),
        ("store-2", node(41.88, -87.63, json!({"kind": "store"}))),
        ("wh-west", node(39.53, -119.81, west_extra)),
    ] {
        let r = app
            .admin
            .put(app.url(&format!("/v1/locations/{id}")))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{id}: {}", r.text().await.unwrap());
    }
}

fn nyc() -> Value {
    json!({"name": "Bo Chen", "line1": "350 5th Ave", "city": "New York", "region": "NY", "postal_code": "10118", "country": "US"})
}

/// Places an order of `lines` to `shipments` (each `{address, lines}`), paying what a cart
/// quotes for it.
async fn order(app: &TestApp, key: &str, lines: Value, shipments: Value) -> (StatusCode, Value) {
    let cart: Value = app
        .post(
            "/v1/carts",
            &json!({"lines": lines, "shipments": shipments}),
        )
        .await
        .json()
        .await
        .unwrap();
    let total = cart["totals"]["total"]["amount"]
        .as_i64()
        .unwrap_or_else(|| panic!("no total in {cart}"));
    let token = app.token("4242424242424242").await;
    let body = json!({"lines": lines, "customer": guest(), "shipments": shipments,
        "payments": [{"token": token, "amount": {"amount": total, "currency": "USD"}}]});
    app.place(key, &body).await
}

fn allocations(order: &Value) -> Vec<(String, String, i64, i64)> {
    let mut v: Vec<(String, String, i64, i64)> = order["allocations"]
        .as_array()
        .unwrap_or_else(|| panic!("no allocations in {order}"))
        .iter()
        .map(|a| {
            (
                a["sku"].as_str().unwrap().into(),
                a["location_id"].as_str().unwrap().into(),
                a["quantity"].as_i64().unwrap(),
                a["address_index"].as_i64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn candidate<'a>(decision: &'a Value, id: &str) -> &'a Value {
    decision["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["location_id"] == id)
        .unwrap_or_else(|| panic!("{id} is not a candidate in {decision}"))
}

fn codes(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_ships_from_the_nearest_node_with_stock_and_its_decision_explains_why() {
    let app = TestApp::spawn().await;
    network(&app, json!({}), json!({})).await;
    app.product("RT-1", 1000, 5).await; // at wh-1
    app.set_stock("RT-1", "wh-west", 5).await;

    // San Francisco: Reno is nearest and has the stock.
    let (s, placed) = order(
        &app,
        "rt-sf",
        json!([{"sku": "RT-1", "quantity": 2}]),
        json!([{"address": address()}]),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{placed}");
    assert_eq!(
        allocations(&placed),
        vec![("RT-1".into(), "wh-west".into(), 2, 0)]
    );
    let inv = app.inventory("RT-1").await;
    let west = inv["locations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["location_id"] == "wh-west")
        .unwrap()
        .clone();
    assert_eq!(
        (west["reserved"].as_i64(), west["available"].as_i64()),
        (Some(2), Some(3)),
        "{inv}"
    );

    // Staff read the decision: the plan, its cost, every node with its reasons, in sentences too.
    let staff = client_as(&app.tokens.staff);
    let id = placed["id"].as_str().unwrap();
    let r = staff
        .get(app.url(&format!("/v1/orders/{id}/routing")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let d: Value = r.json().await.unwrap();
    assert!(
        d["decision_id"].as_str().unwrap().starts_with("rtd_"),
        "{d}"
    );
    assert_eq!(d["order_id"], id);
    assert_eq!(d["engine_version"], "routing-1");
    assert_eq!(d["packages"].as_array().unwrap().len(), 1, "{d}");
    let p = &d["packages"][0];
    assert_eq!(
        (p["location_id"].as_str(), p["address_index"].as_i64()),
        (Some("wh-west"), Some(0))
    );
    assert_eq!(p["lines"][0]["sku"], "RT-1");
    assert_eq!(p["lines"][0]["quantity"], 2);
    let km = p["distance_km"].as_f64().unwrap();
    assert!(
        (250.0..400.0).contains(&km),
        "Reno to San Francisco is about 300 km, got {km}"
    );
    // 350 handling + 40 per 100 km.
    let want = 350 + (40.0 * km / 100.0).round() as i64;
    assert!(
        (p["cost"]["amount"].as_i64().unwrap() - want).abs() <= 1,
        "{p}"
    );
    assert_eq!(d["total_cost"], p["cost"]);
    assert!(
        codes(&d["reason_codes"]).contains(&"lowest_cost".to_string()),
        "{d}"
    );
    let east = candidate(&d, "wh-1");
    assert_eq!(
        (east["eligible"].as_bool(), east["selected"].as_bool()),
        (Some(true), Some(false)),
        "{east}"
    );
    assert!(
        east["cost"]["amount"].as_i64().unwrap() > p["cost"]["amount"].as_i64().unwrap(),
        "{east}"
    );
    let store = candidate(&d, "store-2");
    assert_eq!(store["eligible"], false);
    assert!(
        codes(&store["reasons"]).contains(&"insufficient_stock".to_string()),
        "{store}"
    );
    let explanation: Vec<&str> = d["explanation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(
        explanation[0].starts_with("Ships in 1 package"),
        "{explanation:?}"
    );
    assert!(
        explanation
            .iter()
            .any(|s| s.starts_with("From wh-west to address 0")),
        "{explanation:?}"
    );
    assert!(
        explanation
            .iter()
            .any(|s| s.starts_with("store-2 was excluded: does not hold all the stock")),
        "{explanation:?}"
    );
    // The input is kept with the decision: the stock each node had of the order's SKUs.
    let west_in = d["input"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "wh-west")
        .unwrap();
    assert_eq!(west_in["stock"]["RT-1"], 5, "{west_in}");

    // New York: Newark is nearest.
    let (s, placed) = order(
        &app,
        "rt-ny",
        json!([{"sku": "RT-1", "quantity": 1}]),
        json!([{"address": nyc()}]),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{placed}");
    assert_eq!(
        allocations(&placed),
        vec![("RT-1".into(), "wh-1".into(), 1, 0)]
    );

    // Two addresses in one order: each from its own nearest node.
    let lines = json!([{"sku": "RT-1", "quantity": 2}]);
    let shipments = json!([{"address": address(), "lines": [{"sku": "RT-1", "quantity": 1}]}, {"address": nyc(), "lines": [{"sku": "RT-1", "quantity": 1}]}]);
    let (s, placed) = order(&app, "rt-two", lines, shipments).await;
    assert_eq!(s, StatusCode::CREATED, "{placed}");
    assert_eq!(
        allocations(&placed),
        vec![
            ("RT-1".into(), "wh-1".into(), 1, 1),
            ("RT-1".into(), "wh-west".into(), 1, 0)
        ]
    );

    // Unknown orders are 404; the app cannot read decision logs; replays don't route again.
    assert_eq!(
        staff
            .get(app.url("/v1/orders/ord_nope/routing"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.client
            .get(app.url(&format!("/v1/orders/{id}/routing")))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    let page: Value = app
        .admin
        .get(app.url("/v1/routing/decisions?limit=10"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        3,
        "one decision per order: {page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_rules_split_orders_and_daily_capacity_shape_the_plan() {
    let app = TestApp::spawn().await;
    // Only wh-1 handles hazardous goods; wh-west ships one package a day.
    network(
        &app,
        json!({"daily_capacity": 1}),
        json!({"capabilities": ["hazmat"]}),
    )
    .await;
    let hz = app.admin.put(app.url("/v1/products/HZ-1")).json(&json!({"name": "Power bank", "price": {"amount": 2000, "currency": "USD"}, "hazmat": true})).send().await.unwrap();
    assert!(hz.status().is_success());
    app.set_stock("HZ-1", "wh-1", 5).await;
    app.set_stock("HZ-1", "wh-west", 5).await;
    let (s, placed) = order(
        &app,
        "hz",
        json!([{"sku": "HZ-1", "quantity": 1}]),
        json!([{"address": address()}]),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{placed}");
    assert_eq!(
        allocations(&placed),
        vec![("HZ-1".into(), "wh-1".into(), 1, 0)],
        "hazmat ships from the hazmat node although Reno is nearer"
    );
    let d: Value = app
        .admin
        .get(app.url(&format!(
            "/v1/orders/{}/routing",
            placed["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        codes(&candidate(&d, "wh-west")["reasons"]).contains(&"rule_hazmat".to_string()),
        "{d}"
    );

    // A line only one node holds, and another only another node holds: split, and said so.
    app.product("SP-A", 1000, 3).await; // wh-1
    app.product("SP-B", 1000, 0).await;
    app.set_stock("SP-B", "wh-west", 3).await;
    let (s, placed) = order(
        &app,
        "split",
        json!([{"sku": "SP-A", "quantity": 1}, {"sku": "SP-B", "quantity": 1}]),
        json!([{"address": address()}]),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{placed}");
    assert_eq!(
        allocations(&placed),
        vec![
            ("SP-A".into(), "wh-1".into(), 1, 0),
            ("SP-B".into(), "wh-west".into(), 1, 0)
        ]
    );
    let d: Value = app
        .admin
        .get(app.url(&format!(
            "/v1/orders/{}/routing",
            placed["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        codes(&d["reason_codes"]).contains(&"split_no_single_node".to_string()),
        "{d}"
    );
    // That package was wh-west's one for today: it reads so, and the next order goes east.
    let west: Value = app
        .admin
        .get(app.url("/v1/locations/wh-west"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(west["load_today"], 1, "{west}");
    app.set_stock("SP-B", "wh-1", 3).await;
    let (s, placed) = order(
        &app,
        "after-cap",
        json!([{"sku": "SP-B", "quantity": 1}]),
        json!([{"address": address()}]),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{placed}");
    assert_eq!(
        allocations(&placed),
        vec![("SP-B".into(), "wh-1".into(), 1, 0)]
    );
    let d: Value = app
        .admin
        .get(app.url(&format!(
            "/v1/orders/{}/routing",
            placed["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        codes(&candidate(&d, "wh-west")["reasons"]).contains(&"at_capacity".to_string()),
        "{d}"
    );

    // Stock for two addresses at a node with one package left today: no plan, a 409 that says
    // why, nothing reserved.
    let r = app
        .admin
        .put(app.url("/v1/locations/store-2"))
        .json(&node(
            41.88,
            -87.63,
            json!({"kind": "store", "daily_capacity": 1}),
        ))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    app.product("CAP-1", 1000, 0).await;
    app.set_stock("CAP-1", "store-2", 4).await;
    let two = json!([{"address": address(), "lines": [{"sku": "CAP-1", "quantity": 1}]}, {"address": nyc(), "lines": [{"sku": "CAP-1", "quantity": 1}]}]);
    let (s, refused) = order(&app, "cap", json!([{"sku": "CAP-1", "quantity": 2}]), two).await;
    assert_eq!(s, StatusCode::CONFLICT, "{refused}");
    assert!(
        refused["type"]
            .as_str()
            .unwrap()
            .ends_with("/no-fulfilment-node"),
        "{refused}"
    );
    assert_eq!(
        codes(&refused["differences"][0]["reason_codes"]),
        vec!["at_capacity"]
    );
    let inv = app.inventory("CAP-1").await;
    assert!(
        inv["locations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["reserved"] == 0),
        "{inv}"
    );
    // One address fits its last package; after that its stock cannot ship today.
    let (s, placed) = order(
        &app,
        "cap-1",
        json!([{"sku": "CAP-1", "quantity": 1}]),
        json!([{"address": address()}]),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{placed}");
    assert_eq!(
        allocations(&placed),
        vec![("CAP-1".into(), "store-2".into(), 1, 0)]
    );
    let (s, refused) = order(
        &app,
        "cap-2",
        json!([{"sku": "CAP-1", "quantity": 1}]),
        json!([{"address": address()}]),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{refused}");
    assert_eq!(
        refused["differences"][0]["available"].as_i64().unwrap_or(0),
        0,
        "no eligible node can ship it: {refused}"
    );

    // More than the network holds: 409 naming the short line, its address and what can ship.
    let (s, refused) = order(
        &app,
        "short2",
        json!([{"sku": "HZ-1", "quantity": 5}]),
        json!([{"address": address()}]),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{refused}");
    assert!(
        refused["type"].as_str().unwrap().ends_with("/out-of-stock"),
        "{refused}"
    );
    let diff = &refused["differences"][0];
    assert_eq!(
        (
            diff["sku"].as_str(),
            diff["requested"].as_i64(),
            diff["available"].as_i64(),
            diff["address_index"].as_i64()
        ),
        (Some("HZ-1"), Some(5), Some(4), Some(0)),
        "only wh-1 may ship hazmat: {refused}"
    );

    // Stock no node may ship (cold chain, and no node has one): not "out of stock" but a
    // routing refusal that says why.
    let r = app.admin.put(app.url("/v1/products/CC-1")).json(&json!({"name": "Ice cream", "price": {"amount": 900, "currency": "USD"}, "cold_chain": true})).send().await.unwrap();
    assert!(r.status().is_success());
    app.set_stock("CC-1", "wh-1", 5).await;
    let (s, refused) = order(
        &app,
        "cold",
        json!([{"sku": "CC-1", "quantity": 1}]),
        json!([{"address": address()}]),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{refused}");
    assert!(
        refused["type"]
            .as_str()
            .unwrap()
            .ends_with("/no-fulfilment-node"),
        "{refused}"
    );
    assert!(
        codes(&refused["differences"][0]["reason_codes"]).contains(&"rule_cold_chain".to_string()),
        "{refused}"
    );

    // A 40 kg unit needs an oversize node: only wh-west (made one here) ships it, though wh-1
    // is nearer to New York.
    let west = node(
        39.53,
        -119.81,
        json!({"capabilities": ["oversize"], "daily_capacity": 100}),
    );
    assert!(
        app.admin
            .put(app.url("/v1/locations/wh-west"))
            .json(&west)
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let r = app.admin.put(app.url("/v1/products/OS-1")).json(&json!({"name": "Treadmill", "price": {"amount": 90000, "currency": "USD"}, "weight_grams": 40000})).send().await.unwrap();
    assert!(r.status().is_success());
    app.set_stock("OS-1", "wh-1", 2).await;
    app.set_stock("OS-1", "wh-west", 2).await;
    let (s, placed) = order(
        &app,
        "oversize",
        json!([{"sku": "OS-1", "quantity": 1}]),
        json!([{"address": nyc()}]),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{placed}");
    assert_eq!(
        allocations(&placed),
        vec![("OS-1".into(), "wh-west".into(), 1, 0)]
    );
    let d: Value = app
        .admin
        .get(app.url(&format!(
            "/v1/orders/{}/routing",
            placed["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        codes(&candidate(&d, "wh-1")["reasons"]).contains(&"rule_oversize".to_string()),
        "{d}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_off_the_map_and_bad_listing_parameters_are_refused() {
    let app = TestApp::spawn().await;
    app.product("MAP-1", 1000, 5).await;
    // Antarctica has no centroid: without coordinates it cannot be routed.
    let aq = json!({"name": "Base", "line1": "1 Ice Rd", "city": "McMurdo", "postal_code": "0000", "country": "AQ"});
    let lines = json!([{"sku": "MAP-1", "quantity": 1}]);
    let (s, refused) = order(&app, "aq", lines.clone(), json!([{"address": aq}])).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(
        problem_paths(&refused),
        vec!["shipments[0].address.country"],
        "{refused}"
    );
    // With coordinates it can.
    let mut aq2 = aq.clone();
    aq2["lat"] = json!(-77.85);
    aq2["lon"] = json!(166.67);
    let (s, placed) = order(&app, "aq2", lines.clone(), json!([{"address": aq2}])).await;
    assert_eq!(s, StatusCode::CREATED, "{placed}");

    for q in ["limit=0", "limit=101", "limit=x", "cursor=-1", "cursor=abc"] {
        let r = app
            .admin
            .get(app.url(&format!("/v1/routing/decisions?{q}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{q}");
    }
    let staff = client_as(&app.tokens.staff);
    assert_eq!(
        staff
            .get(app.url("/v1/routing/decisions"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN,
        "admins list decisions"
    );
    // Paging: newest first, one at a time, every decision once.
    let (s, _) = order(
        &app,
        "second",
        lines.clone(),
        json!([{"address": address()}]),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: Value = app
            .admin
            .get(app.url(&format!("/v1/routing/decisions?limit=1&cursor={cursor}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for d in page["items"].as_array().unwrap() {
            seen.push(d["order_id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1], placed["id"].as_str().unwrap(), "newest first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipping_options_are_priced_from_the_plan_and_the_nodes_load() {
    let app = TestApp::spawn().await;
    network(&app, json!({}), json!({})).await;
    // Market Street, with coordinates: 1 km from the store.
    let mut sf = address();
    sf["lat"] = json!(37.7897);
    sf["lon"] = json!(-122.4000);
    // A store in San Francisco, no cut-off, ten packages a day.
    let r = app
        .admin
        .put(app.url("/v1/locations/store-sf"))
        .json(&node(
            37.78,
            -122.41,
            json!({"kind": "store", "daily_capacity": 10}),
        ))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    app.product("SO-1", 1000, 0).await;
    app.set_stock("SO-1", "store-sf", 50).await;
    // Five packages today: the store is half loaded.
    for i in 0..5 {
        let (s, v) = order(
            &app,
            &format!("so-load-{i}"),
            json!([{"sku": "SO-1", "quantity": 1}]),
            json!([{"address": sf}]),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(
            allocations(&v),
            vec![("SO-1".into(), "store-sf".into(), 1, 0)]
        );
    }
    let cart: Value = app.post("/v1/carts", &json!({"lines": [{"sku": "SO-1", "quantity": 2}], "customer": guest(), "shipments": [{"address": sf}]})).await.json().await.unwrap();
    let id = cart["id"].as_str().unwrap();
    assert_eq!(cart["shipping_option"], "standard");
    let r = app
        .client
        .get(app.url(&format!("/v1/carts/{id}/shipping-options")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    let by: std::collections::HashMap<String, Value> = v["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["id"].as_str().unwrap().to_string(), o.clone()))
        .collect();
    assert_eq!(
        by["standard"]["price"]["amount"], cart["totals"]["shipping"]["amount"],
        "{v}"
    );
    assert_eq!(
        by["express"]["price"]["amount"], 2249,
        "1499 × (1 + 50 % load), half up: {v}"
    );
    assert_eq!(
        by["same_day"]["price"]["amount"], 3749,
        "2499 × 1.5, half up: {v}"
    );
    for o in by.values() {
        assert_eq!(o["promised_by"].as_str().unwrap().len(), 10, "{o}");
    }
    assert!(
        by["same_day"]["promised_by"].as_str() <= by["express"]["promised_by"].as_str()
            && by["express"]["promised_by"].as_str() < by["standard"]["promised_by"].as_str(),
        "{v}"
    );

    // Choosing express prices it into the cart and the order keeps it.
    let r = app.client.put(app.url(&format!("/v1/carts/{id}"))).json(&json!({"lines": [{"sku": "SO-1", "quantity": 2}], "customer": guest(), "shipments": [{"address": sf}], "shipping_option": "express"})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let synced: Value = r.json().await.unwrap();
    assert_eq!(
        (
            synced["shipping_option"].as_str(),
            synced["totals"]["shipping"]["amount"].as_i64()
        ),
        (Some("express"), Some(2249)),
        "{synced}"
    );
    let token = app.token("4242424242424242").await;
    let (s, placed) = app.place("so-express", &json!({"cart_id": id, "payments": [{"token": token, "amount": synced["totals"]["total"]}]})).await;
    assert_eq!(s, StatusCode::CREATED, "{placed}");
    assert_eq!(
        (
            placed["shipping_option"].as_str(),
            placed["totals"]["shipping"]["amount"].as_i64()
        ),
        (Some("express"), Some(2249)),
        "{placed}"
    );

    // Far from every node there is no same day; an unknown option or a cart without address is a 422.
    let ny: Value = app
        .post(
            "/v1/carts",
            &json!({"lines": [{"sku": "SO-1", "quantity": 1}], "shipments": [{"address": nyc()}]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let v: Value = app
        .client
        .get(app.url(&format!(
            "/v1/carts/{}/shipping-options",
            ny["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = v["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["standard", "express"], "{v}");
    // Choosing same day there: the cart says it is not offered and falls back to standard, and
    // so does the order.
    let ny_id = ny["id"].as_str().unwrap();
    let body = json!({"lines": [{"sku": "SO-1", "quantity": 1}], "customer": guest(), "shipments": [{"address": nyc()}], "shipping_option": "same_day"});
    let synced: Value = app
        .client
        .put(app.url(&format!("/v1/carts/{ny_id}")))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(synced["shipping_option"], "standard", "{synced}");
    assert!(
        synced["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "shipping_option_unavailable"),
        "{synced}"
    );
    let token = app.token("4242424242424242").await;
    let (s, placed) = app.place("so-ny", &json!({"cart_id": ny_id, "payments": [{"token": token, "amount": synced["totals"]["total"]}]})).await;
    assert_eq!(s, StatusCode::CREATED, "{placed}");
    assert!(
        placed.get("shipping_option").is_none(),
        "standard is not recorded as a faster option: {placed}"
    );
    // A new cart that chooses express is priced with it at once.
    let fresh: Value = app.post("/v1/carts", &json!({"lines": [{"sku": "SO-1", "quantity": 1}], "customer": guest(), "shipments": [{"address": sf}], "shipping_option": "express"})).await.json().await.unwrap();
    assert_eq!(fresh["shipping_option"], "express", "{fresh}");
    assert!(
        fresh["totals"]["shipping"]["amount"].as_i64().unwrap() > 1499,
        "express with the store's load: {fresh}"
    );
    for bad in ["teleport", "", "Express"] {
        let r = app
            .post(
                "/v1/carts",
                &json!({"lines": [{"sku": "SO-1", "quantity": 1}], "shipping_option": bad}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}");
        assert_eq!(
            problem_paths(&r.json().await.unwrap()),
            vec!["shipping_option"]
        );
    }
    let bare: Value = app
        .post(
            "/v1/carts",
            &json!({"lines": [{"sku": "SO-1", "quantity": 1}]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let r = app
        .client
        .get(app.url(&format!(
            "/v1/carts/{}/shipping-options",
            bare["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem_paths(&r.json().await.unwrap()), vec!["shipments"]);
    assert_eq!(
        app.client
            .get(app.url("/v1/carts/cart_nope/shipping-options"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_network_keeps_one_currency() {
    let app = TestApp::spawn().await;
    network(&app, json!({}), json!({})).await;
    // Rules in another currency than the nodes' costs would leave every node out of routing.
    let r = app
        .admin
        .put(app.url("/v1/routing/rules"))
        .json(&json!({"cutoff_penalty": {"amount": 500, "currency": "EUR"}, "rules": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        problem_paths(&r.json().await.unwrap()),
        vec!["cutoff_penalty.currency"]
    );
    // So would a node whose costs are in another currency.
    let eur = node(
        48.85,
        2.35,
        json!({"handling_cost": {"amount": 300, "currency": "EUR"}, "cost_per_100km": {"amount": 30, "currency": "EUR"}}),
    );
    let r = app
        .admin
        .put(app.url("/v1/locations/wh-paris"))
        .json(&eur)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        problem_paths(&r.json().await.unwrap()),
        vec!["handling_cost.currency"]
    );
    let r = app
        .admin
        .put(app.url("/v1/routing/rules"))
        .json(&json!({"cutoff_penalty": {"amount": 500, "currency": "USD"}, "rules": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .admin
        .put(app.url("/v1/locations/wh-paris"))
        .json(&eur)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "the rules' currency decides now"
    );
    // Orders still route.
    app.product("CUR-1", 1000, 3).await;
    let (s, v) = order(
        &app,
        "cur",
        json!([{"sku": "CUR-1", "quantity": 1}]),
        json!([{"address": address()}]),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_cart_loses_the_lines_reconciliation_removed() {
    let app = TestApp::spawn().await;
    network(&app, json!({}), json!({})).await;
    app.product("SPL-A", 1000, 5).await;
    app.product("SPL-B", 1000, 1).await;
    let lines = json!([{"sku": "SPL-A", "quantity": 2}, {"sku": "SPL-B", "quantity": 1}]);
    let shipments = json!([{"address": address(), "lines": [{"sku": "SPL-A", "quantity": 1}]},
                           {"address": nyc(), "lines": [{"sku": "SPL-A", "quantity": 1}, {"sku": "SPL-B", "quantity": 1}]}]);
    let cart: Value = app
        .post(
            "/v1/carts",
            &json!({"lines": lines, "customer": guest(), "shipments": shipments}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = cart["id"].as_str().unwrap();
    // SPL-B sells out before the shopper checks out.
    app.set_stock("SPL-B", "wh-1", 0).await;
    let r = app
        .client
        .put(app.url(&format!("/v1/carts/{id}")))
        .json(&json!({"lines": lines, "customer": guest(), "shipments": shipments}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let synced2: Value = r.json().await.unwrap();
    assert_eq!(synced2["lines"].as_array().unwrap().len(), 1, "{synced2}");
    let ship_skus: Vec<Vec<String>> = synced2["shipments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["sku"].as_str().unwrap().to_string())
                .collect()
        })
        .collect();
    assert_eq!(
        ship_skus,
        vec![vec!["SPL-A".to_string()], vec!["SPL-A".to_string()]],
        "the removed line left the split: {synced2}"
    );
    let token = app.token("4242424242424242").await;
    let (s, placed) = app.place("split-cart", &json!({"cart_id": id, "payments": [{"token": token, "amount": synced2["totals"]["total"]}]})).await;
    assert_eq!(
        s,
        StatusCode::CREATED,
        "the cart's own split is one its order accepts: {placed}"
    );
}
