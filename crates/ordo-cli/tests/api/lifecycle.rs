//! The order after placement, over HTTP on the backend under test: fulfilments picked, packed,
//! shipped (capturing their value) and delivered by staff; cancellations by guests and staff
//! (stock released, authorizations voided); payment failures at capture; the timeline; and the
//! money and stock rules after every step.

use crate::helpers::*;
use ordo_server::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Places a guest order of `lines` (paid with `card`) to the usual address; its 201 body.
async fn order_with(app: &TestApp, lines: Value, card: &str) -> Value {
    let cart: Value = app
        .post(
            "/v1/carts",
            &json!({"lines": lines, "shipments": [{"address": address()}]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let total = cart["totals"]["total"]["amount"].as_i64().unwrap();
    let token = app.token(card).await;
    let body = json!({"cart_id": cart["id"], "customer": guest(),
        "payments": [{"token": token, "amount": {"amount": total, "currency": "USD"}}]});
    let (status, v) = app.place(&uuid::Uuid::new_v4().to_string(), &body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v
}

async fn act(app: &TestApp, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut r = app.admin.post(app.url(path));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn read_order(app: &TestApp, id: &str) -> Value {
    let r = app
        .admin
        .get(app.url(&format!("/v1/orders/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// (on_hand, reserved) of `sku` at `location`.
async fn stock_at(app: &TestApp, sku: &str, location: &str) -> (i64, i64) {
    let inv = app.inventory(sku).await;
    inv["locations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["location_id"] == location)
        .map(|l| {
            (
                l["on_hand"].as_i64().unwrap(),
                l["reserved"].as_i64().unwrap(),
            )
        })
        .unwrap_or((0, 0))
}

fn tender(order: &Value, field: &str) -> i64 {
    order["payments"][0][field]["amount"]
        .as_i64()
        .unwrap_or_else(|| panic!("no payments[0].{field} in {order}"))
}

fn ship_body() -> Value {
    json!({"carrier": "UPS", "tracking_number": "1Z999AA10123456784"})
}

async fn pick_pack(app: &TestApp, ful: &str) {
    for step in ["pick", "pack"] {
        let (s, v) = act(app, &format!("/v1/fulfillments/{ful}/{step}"), None).await;
        assert_eq!(s, StatusCode::OK, "{step}: {v}");
    }
}

#[tokio::test]
async fn an_order_is_picked_packed_shipped_and_delivered_with_its_money_captured() {
    let app = TestApp::spawn().await;
    app.product("LIFE-1", 1500, 10).await;
    let placed = order_with(
        &app,
        json!([{"sku": "LIFE-1", "quantity": 2}]),
        "4242424242424242",
    )
    .await;
    assert_eq!(placed["status"], "allocated");
    let id = placed["id"].as_str().unwrap();
    let total = placed["totals"]["total"]["amount"].as_i64().unwrap();
    let fuls = placed["fulfillments"].as_array().unwrap();
    assert_eq!(fuls.len(), 1, "{placed}");
    let ful = fuls[0]["id"].as_str().unwrap().to_string();
    assert_eq!(fuls[0]["location_id"], "wh-1");
    assert_eq!(fuls[0]["lines"], json!([{"sku": "LIFE-1", "quantity": 2}]));

    // The pick list of wh-1 names it; store-2's does not.
    let list: Value = app
        .admin
        .get(app.url("/v1/locations/wh-1/pick-list"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == ful.as_str()),
        "{list}"
    );
    let other: Value = app
        .admin
        .get(app.url("/v1/locations/store-2/pick-list"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(other["items"], json!([]));

    // Shipping before packing is refused, naming where it stands.
    let (s, v) = act(
        &app,
        &format!("/v1/fulfillments/{ful}/ship"),
        Some(ship_body()),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["type"], "https://ordo.dev/problems/illegal-transition");
    assert_eq!(v["current_status"], "allocated");

    let (s, v) = act(&app, &format!("/v1/fulfillments/{ful}/pick"), None).await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("picked")),
        "{v}"
    );
    assert_eq!(read_order(&app, id).await["status"], "picking");
    let (s, _) = act(&app, &format!("/v1/fulfillments/{ful}/pack"), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(read_order(&app, id).await["status"], "packed");
    assert_eq!(stock_at(&app, "LIFE-1", "wh-1").await, (10, 2));

    let (s, v) = act(
        &app,
        &format!("/v1/fulfillments/{ful}/ship"),
        Some(ship_body()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "shipped");
    assert_eq!(v["tracking_number"], "1Z999AA10123456784");
    let shipped = read_order(&app, id).await;
    assert_eq!(shipped["status"], "shipped");
    assert_eq!(
        tender(&shipped, "captured"),
        total,
        "the whole order was captured: {shipped}"
    );
    assert_eq!(shipped["payments"][0]["status"], "captured");
    assert_eq!(shipped["lines"][0]["shipped"], 2);
    // The units left the building: out of on-hand and out of reserved.
    assert_eq!(stock_at(&app, "LIFE-1", "wh-1").await, (8, 0));
    let (on_hand, reserved, allocated) = app
        .store
        .stock_reconciliation(&app.tenant, &ordo_domain::Sku::parse("LIFE-1").unwrap())
        .await
        .unwrap();
    assert_eq!((on_hand, reserved, allocated), (8, 0, 0));

    let (s, _) = act(&app, &format!("/v1/fulfillments/{ful}/deliver"), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(read_order(&app, id).await["status"], "delivered");
    // Delivered is final: picking again names the state.
    let (s, v) = act(&app, &format!("/v1/fulfillments/{ful}/pick"), None).await;
    assert_eq!(
        (s, v["current_status"].as_str()),
        (StatusCode::CONFLICT, Some("delivered"))
    );

    // The timeline, oldest first, with actors.
    let tl: Value = app
        .admin
        .get(app.url(&format!("/v1/orders/{id}/timeline")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = tl["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "order.placed",
            "order.confirmed",
            "order.allocated",
            "fulfillment.picked",
            "fulfillment.packed",
            "fulfillment.shipped",
            "fulfillment.delivered"
        ]
    );
    let items = tl["items"].as_array().unwrap();
    assert_eq!(items[0]["actor"], "guest");
    assert!(
        items[3]["actor"].as_str().unwrap().starts_with("admin:"),
        "{tl}"
    );
    assert_eq!(
        (items[5]["from"].as_str(), items[5]["to"].as_str()),
        (Some("packed"), Some("shipped"))
    );
    let ats: Vec<&str> = items.iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(
        ats.windows(2).all(|w| w[0] <= w[1]),
        "oldest first: {ats:?}"
    );
    // The staff actions are in the audit log.
    let audit: Value = app
        .admin
        .get(app.url("/v1/audit"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(audit.to_string().contains("fulfillment.shipped"), "{audit}");
}

#[tokio::test]
async fn a_partial_shipment_then_staff_cancel_the_rest_captures_and_voids_exactly() {
    let app = TestApp::spawn().await;
    app.product("PART-A", 2000, 5).await; // at wh-1
    app.product("PART-B", 3000, 0).await;
    app.set_stock("PART-B", "store-2", 5).await;
    let placed = order_with(
        &app,
        json!([{"sku": "PART-A", "quantity": 1}, {"sku": "PART-B", "quantity": 2}]),
        "4242424242424242",
    )
    .await;
    let id = placed["id"].as_str().unwrap();
    let total = placed["totals"]["total"]["amount"].as_i64().unwrap();
    let fuls = placed["fulfillments"].as_array().unwrap();
    assert_eq!(fuls.len(), 2, "one per node: {placed}");
    let at = |loc: &str| {
        fuls.iter().find(|f| f["location_id"] == loc).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (a, b) = (at("wh-1"), at("store-2"));
    pick_pack(&app, &a).await;
    let (s, v) = act(
        &app,
        &format!("/v1/fulfillments/{a}/ship"),
        Some(ship_body()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let partly = read_order(&app, id).await;
    assert_eq!(partly["status"], "partially_shipped");
    let captured = tender(&partly, "captured");
    assert!(
        captured > 0 && captured < total,
        "captured {captured} of {total}"
    );
    assert_eq!(partly["payments"][0]["status"], "partially_captured");

    // A shopper-side cancel is no longer possible; staff cancel what is left.
    let guest_token = placed["guest_token"].as_str().unwrap();
    let r = client_as(guest_token)
        .post(app.url(&format!("/v1/orders/{id}/cancel")))
        .json(&json!({"reason": "changed my mind"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["current_status"], "partially_shipped");

    let (s, v) = act(&app, &format!("/v1/orders/{id}/cancel"), Some(json!({"reason": "out of stock at the store", "lines": [{"sku": "PART-B", "quantity": 3}]}))).await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "more than is left: {v}"
    );
    assert_eq!(problem_paths(&v), ["lines[0].quantity"]);
    let (s, v) = act(&app, &format!("/v1/orders/{id}/cancel"), Some(json!({"reason": "out of stock at the store", "lines": [{"sku": "PART-B", "quantity": 1}]}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "partially_shipped");
    assert_eq!(v["lines"][1]["cancelled"], 1);
    assert_eq!(stock_at(&app, "PART-B", "store-2").await, (5, 1));
    let (s, v) = act(
        &app,
        &format!("/v1/orders/{id}/cancel"),
        Some(json!({"reason": "customer asked"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Shipped fulfilments give the status; the rest is cancelled.
    assert_eq!(v["status"], "shipped", "{v}");
    assert_eq!(v["lines"][1]["cancelled"], 2);
    assert_eq!(
        v["fulfillments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == b.as_str())
            .unwrap()["status"],
        "cancelled"
    );
    assert_eq!(stock_at(&app, "PART-B", "store-2").await, (5, 0));
    // Money: what shipped was captured, the rest voided, nothing left open.
    assert_eq!(tender(&v, "captured"), captured);
    assert_eq!(v["payments"][0]["status"], "captured");
    let ops = app.store.payment_operations(&app.tenant, id).await.unwrap();
    let voided: i64 = ops.iter().filter(|o| o.1 == "void").map(|o| o.3).sum();
    assert_eq!(captured + voided, total, "{ops:?}");
    assert!(ops.iter().all(|o| o.4 == "succeeded"), "{ops:?}");
}

#[tokio::test]
async fn a_guest_cancels_before_picking_and_not_after() {
    let app = TestApp::spawn().await;
    app.product("CXL-1", 1200, 4).await;
    let placed = order_with(
        &app,
        json!([{"sku": "CXL-1", "quantity": 2}]),
        "4242424242424242",
    )
    .await;
    let id = placed["id"].as_str().unwrap();
    let guest = client_as(placed["guest_token"].as_str().unwrap());
    assert_eq!(stock_at(&app, "CXL-1", "wh-1").await, (4, 2));
    let r = guest
        .post(app.url(&format!("/v1/orders/{id}/cancel")))
        .json(&json!({"reason": "ordered by mistake", "lines": [{"sku": "CXL-1", "quantity": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CONFLICT,
        "a guest cancels the whole order only"
    );
    let r = guest
        .post(app.url(&format!("/v1/orders/{id}/cancel")))
        .json(&json!({"reason": "ordered by mistake"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "cancelled");
    assert_eq!(v["payments"][0]["status"], "voided");
    assert_eq!(stock_at(&app, "CXL-1", "wh-1").await, (4, 0));
    let r = guest
        .post(app.url(&format!("/v1/orders/{id}/cancel")))
        .json(&json!({"reason": "again"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(
        r.json::<Value>().await.unwrap()["current_status"],
        "cancelled"
    );
    let tl: Value = guest
        .get(app.url(&format!("/v1/orders/{id}/timeline")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let last = tl["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (
            last["action"].as_str(),
            last["actor"].as_str(),
            last["reason"].as_str()
        ),
        (
            Some("order.cancelled"),
            Some("guest"),
            Some("ordered by mistake")
        )
    );

    // Once picking began, the guest is refused and staff may still cancel.
    let placed = order_with(
        &app,
        json!([{"sku": "CXL-1", "quantity": 1}]),
        "4242424242424242",
    )
    .await;
    let id = placed["id"].as_str().unwrap();
    let ful = placed["fulfillments"][0]["id"].as_str().unwrap();
    act(&app, &format!("/v1/fulfillments/{ful}/pick"), None).await;
    let r = client_as(placed["guest_token"].as_str().unwrap())
        .post(app.url(&format!("/v1/orders/{id}/cancel")))
        .json(&json!({"reason": "too late?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(
        r.json::<Value>().await.unwrap()["current_status"],
        "picking"
    );
    let (s, v) = act(
        &app,
        &format!("/v1/orders/{id}/cancel"),
        Some(json!({"reason": "damaged in the warehouse"})),
    )
    .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("cancelled")),
        "{v}"
    );
    assert_eq!(stock_at(&app, "CXL-1", "wh-1").await, (4, 0));
}

#[tokio::test]
async fn a_declined_capture_keeps_the_fulfilment_packed_and_a_lost_answer_captures_once() {
    let app = TestApp::spawn().await;
    app.product("PAY-1", 2500, 10).await;
    // Captures on this card are declined.
    let placed = order_with(
        &app,
        json!([{"sku": "PAY-1", "quantity": 1}]),
        "4000000000000341",
    )
    .await;
    let (id, ful) = (
        placed["id"].as_str().unwrap(),
        placed["fulfillments"][0]["id"].as_str().unwrap(),
    );
    pick_pack(&app, ful).await;
    let (s, v) = act(
        &app,
        &format!("/v1/fulfillments/{ful}/ship"),
        Some(ship_body()),
    )
    .await;
    assert_eq!(s, StatusCode::PAYMENT_REQUIRED, "{v}");
    assert_eq!(v["payment"]["reason"], "capture_failed");
    let after = read_order(&app, id).await;
    assert_eq!(after["status"], "packed");
    assert_eq!(tender(&after, "captured"), 0);
    assert_eq!(
        stock_at(&app, "PAY-1", "wh-1").await,
        (10, 1),
        "nothing left the building"
    );
    // The claim is gone: staff may cancel (voiding the authorization).
    let (s, v) = act(
        &app,
        &format!("/v1/orders/{id}/cancel"),
        Some(json!({"reason": "payment failed"})),
    )
    .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("cancelled")),
        "{v}"
    );

    // The answer to this card's first capture is lost; the status query finds it; one capture.
    let placed = order_with(
        &app,
        json!([{"sku": "PAY-1", "quantity": 2}]),
        "4000000000000259",
    )
    .await;
    let (id, ful) = (
        placed["id"].as_str().unwrap(),
        placed["fulfillments"][0]["id"].as_str().unwrap(),
    );
    let total = placed["totals"]["total"]["amount"].as_i64().unwrap();
    pick_pack(&app, ful).await;
    let (s, v) = act(
        &app,
        &format!("/v1/fulfillments/{ful}/ship"),
        Some(ship_body()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let after = read_order(&app, id).await;
    assert_eq!(tender(&after, "captured"), total);
    let ops = app.store.payment_operations(&app.tenant, id).await.unwrap();
    assert_eq!(
        ops.iter().filter(|o| o.1 == "capture").count(),
        1,
        "{ops:?}"
    );
    let entry = app.store.sandbox_entry(&ops[0].0).await.unwrap().unwrap();
    assert_eq!(
        (entry.amount, entry.answered),
        (total, false),
        "the gateway captured once, answer lost"
    );
}

#[tokio::test]
async fn an_expired_authorization_cannot_be_captured() {
    let app =
        TestApp::spawn_with(|c| c.sandbox_authorization_ttl = std::time::Duration::from_millis(1))
            .await;
    app.product("EXP-1", 900, 3).await;
    let placed = order_with(
        &app,
        json!([{"sku": "EXP-1", "quantity": 1}]),
        "4242424242424242",
    )
    .await;
    let ful = placed["fulfillments"][0]["id"].as_str().unwrap();
    pick_pack(&app, ful).await;
    let (s, v) = act(
        &app,
        &format!("/v1/fulfillments/{ful}/ship"),
        Some(ship_body()),
    )
    .await;
    assert_eq!(s, StatusCode::PAYMENT_REQUIRED, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("expired"), "{v}");
}

#[tokio::test]
async fn cancel_racing_ship_has_exactly_one_winner() {
    let app =
        TestApp::spawn_with(|c| c.sandbox_gateway_latency = std::time::Duration::from_millis(30))
            .await;
    app.product("RACE-1", 1000, 50).await;
    for round in 0..6 {
        let placed = order_with(
            &app,
            json!([{"sku": "RACE-1", "quantity": 1}]),
            "4242424242424242",
        )
        .await;
        let (id, ful) = (
            placed["id"].as_str().unwrap().to_string(),
            placed["fulfillments"][0]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        let total = placed["totals"]["total"]["amount"].as_i64().unwrap();
        pick_pack(&app, &ful).await;
        let (ship_path, cancel_path) = (
            format!("/v1/fulfillments/{ful}/ship"),
            format!("/v1/orders/{id}/cancel"),
        );
        let ship = act(&app, &ship_path, Some(ship_body()));
        let cancel = act(&app, &cancel_path, Some(json!({"reason": "race"})));
        let ((s1, v1), (s2, v2)) = tokio::join!(ship, cancel);
        let wins = [s1, s2].iter().filter(|s| s.is_success()).count();
        assert_eq!(wins, 1, "round {round}: ship {s1} {v1}, cancel {s2} {v2}");
        assert!(
            [s1, s2].contains(&StatusCode::CONFLICT),
            "the loser gets 409: {s1} {s2}"
        );
        let o = read_order(&app, &id).await;
        if s1.is_success() {
            assert_eq!(
                (o["status"].as_str(), tender(&o, "captured")),
                (Some("shipped"), total)
            );
        } else {
            assert_eq!(
                (o["status"].as_str(), tender(&o, "captured")),
                (Some("cancelled"), 0)
            );
        }
    }
    let (on_hand, reserved, allocated) = app
        .store
        .stock_reconciliation(&app.tenant, &ordo_domain::Sku::parse("RACE-1").unwrap())
        .await
        .unwrap();
    assert_eq!(reserved, allocated);
    assert_eq!(reserved, 0);
    assert!(on_hand <= 50 && on_hand >= 44, "{on_hand}");
}

#[tokio::test]
async fn bad_lifecycle_requests_get_problems() {
    let app = TestApp::spawn().await;
    app.product("BAD-1", 1000, 5).await;
    let placed = order_with(
        &app,
        json!([{"sku": "BAD-1", "quantity": 1}]),
        "4242424242424242",
    )
    .await;
    let (id, ful) = (
        placed["id"].as_str().unwrap(),
        placed["fulfillments"][0]["id"].as_str().unwrap(),
    );
    let (s, v) = act(
        &app,
        "/v1/fulfillments/ful_00000000000000000000000000000000/pick",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, v) = act(
        &app,
        &format!("/v1/fulfillments/{ful}/ship"),
        Some(json!({"carrier": " ", "tracking_number": "x", "extra": 1})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = act(
        &app,
        &format!("/v1/fulfillments/{ful}/ship"),
        Some(json!({"carrier": "", "tracking_number": "x"})),
    )
    .await;
    assert_eq!(
        (s, problem_paths(&v)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["carrier".to_string()]
        )
    );
    for (body, path) in [
        (json!({"reason": ""}), "reason"),
        (
            json!({"reason": "x", "lines": [{"sku": "BAD-1", "quantity": 0}]}),
            "lines[0].quantity",
        ),
        (
            json!({"reason": "x", "lines": [{"sku": "NOPE", "quantity": 1}]}),
            "lines[0].sku",
        ),
        (json!({"reason": "x", "lines": []}), "lines"),
    ] {
        let (s, v) = act(&app, &format!("/v1/orders/{id}/cancel"), Some(body.clone())).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert_eq!(problem_paths(&v), [path], "{body}: {v}");
    }
    let r = app
        .admin
        .get(app.url("/v1/locations/nowhere/pick-list"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .admin
        .get(app.url("/v1/locations/wh-1/pick-list?limit=0&cursor=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Staff who work at store-2 do not see wh-1's fulfilments; the app's token is no staff token.
    let mut p = principal(&app.tenant, Role::Staff);
    p.locations = vec!["store-2".into()];
    let store_staff = client_as(
        &app.auth
            .access_token(&p, std::time::Duration::from_secs(60))
            .unwrap()
            .0,
    );
    let r = store_staff
        .post(app.url(&format!("/v1/fulfillments/{ful}/pick")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .client
        .post(app.url(&format!("/v1/fulfillments/{ful}/pick")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A stranger's cancel finds no order.
    let stranger = client_as(&app.token_as(Role::Shopper, "cus_stranger"));
    let r = stranger
        .post(app.url(&format!("/v1/orders/{id}/cancel")))
        .json(&json!({"reason": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        read_order(&app, id).await["status"],
        "allocated",
        "nothing changed"
    );
}
