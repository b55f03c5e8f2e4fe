//! The order after placement, over HTTP on the backend under test: fulfilments picked, packed,
//! shipped (capturing their value) and delivered by staff; cancellations by guests and staff
//! (stock released, authorizations voided); payment failures at capture; the timeline; and the
//! money and stock rules after every step.

use crate::helpers::*;
use ordo_server::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Places a guest order of `lines` (paid with `card`) to the usual address; its 201 body.
pub(crate) async fn order_with(app: &TestApp, lines: Value, card: &str) -> Value {
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

pub(crate) async fn act(app: &TestApp, path: &str, body: Option<Value>) -> (StatusCode, Value) {
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

pub(crate) fn ship_body() -> Value {
    json!({"carrier": "UPS", "tracking_number": "1Z999AA10123456784"})
}

pub(crate) async fn pick_pack(app: &TestApp, ful: &str) {
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
        .post(app.url(&format!("/v1/orders/{id}/cancel")))
        .json(&json!({"reason": "not my node"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "its open units are at wh-1"
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

/// Places, picks, packs, ships and delivers an order of `qty` units of `sku`; its id and total.
async fn delivered(app: &TestApp, sku: &str, qty: i64) -> (String, i64) {
    let placed = order_with(
        app,
        json!([{"sku": sku, "quantity": qty}]),
        "4242424242424242",
    )
    .await;
    let ful = placed["fulfillments"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    pick_pack(app, &ful).await;
    let (s, v) = act(
        app,
        &format!("/v1/fulfillments/{ful}/ship"),
        Some(ship_body()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = act(app, &format!("/v1/fulfillments/{ful}/deliver"), None).await;
    assert_eq!(s, StatusCode::OK);
    (
        placed["id"].as_str().unwrap().to_string(),
        placed["totals"]["total"]["amount"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn returns_are_received_refunded_and_dispositioned() {
    let app = TestApp::spawn().await;
    app.product("RET-1", 1999, 10).await;
    let (id, total) = delivered(&app, "RET-1", 3).await;
    assert_eq!(stock_at(&app, "RET-1", "wh-1").await, (7, 0));

    // Asked back: one unit, by staff (the same works for the order's shopper or guest).
    let (s, r1) = act(
        &app,
        &format!("/v1/orders/{id}/returns"),
        Some(json!({"lines": [{"sku": "RET-1", "quantity": 1, "reason": "too_small"}]})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{r1}");
    assert_eq!(r1["status"], "requested");
    assert!(
        r1["rma_number"].as_str().unwrap().starts_with("RMA-"),
        "{r1}"
    );
    // Three more would be more than shipped and not yet asked back.
    let (s, v) = act(
        &app,
        &format!("/v1/orders/{id}/returns"),
        Some(json!({"lines": [{"sku": "RET-1", "quantity": 3, "reason": "other"}]})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(
        v["type"],
        "https://ordo.dev/problems/return-exceeds-shipped"
    );

    let rid = r1["id"].as_str().unwrap();
    let (s, rec) = act(&app, &format!("/v1/returns/{rid}/receive"), Some(json!({"location_id": "wh-1", "lines": [{"sku": "RET-1", "quantity": 1, "condition": "new"}]}))).await;
    assert_eq!(s, StatusCode::OK, "{rec}");
    assert_eq!(rec["status"], "received");
    let first_refund = rec["refunded"]["amount"].as_i64().unwrap();
    assert_eq!(
        first_refund,
        total / 3,
        "a third of the total, rounded down: {rec}"
    );
    let o = read_order(&app, &id).await;
    assert_eq!(o["status"], "partially_returned");
    assert_eq!(
        (tender(&o, "captured"), tender(&o, "refunded")),
        (total, first_refund)
    );
    assert_eq!(o["payments"][0]["status"], "partially_refunded");
    assert_eq!(o["lines"][0]["returned"], 1);
    // Receiving again: nothing left to receive on this return.
    let (s, _) = act(&app, &format!("/v1/returns/{rid}/receive"), Some(json!({"location_id": "wh-1", "lines": [{"sku": "RET-1", "quantity": 1, "condition": "new"}]}))).await;
    assert_eq!(s, StatusCode::CONFLICT);
    // Nothing is back on hand until staff decide.
    assert_eq!(stock_at(&app, "RET-1", "wh-1").await, (7, 0));
    let (s, v) = act(
        &app,
        &format!("/v1/returns/{rid}/disposition"),
        Some(json!({"lines": [{"sku": "RET-1", "quantity": 2, "disposition": "restock"}]})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "more than received: {v}");
    assert_eq!(v["type"], "https://ordo.dev/problems/return-units-exceeded");
    let (s, v) = act(
        &app,
        &format!("/v1/returns/{rid}/disposition"),
        Some(json!({"lines": [{"sku": "RET-1", "quantity": 1, "disposition": "restock"}]})),
    )
    .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("closed")),
        "{v}"
    );
    assert_eq!(
        stock_at(&app, "RET-1", "wh-1").await,
        (8, 0),
        "restocked at the receiving node"
    );

    // The other two units, one refurbished and one written off: the whole capture comes back.
    let (s, r2) = act(
        &app,
        &format!("/v1/orders/{id}/returns"),
        Some(json!({"lines": [{"sku": "RET-1", "quantity": 2, "reason": "damaged"}]})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{r2}");
    let rid2 = r2["id"].as_str().unwrap();
    let (s, rec) = act(&app, &format!("/v1/returns/{rid2}/receive"), Some(json!({"location_id": "wh-1", "lines": [{"sku": "RET-1", "quantity": 2, "condition": "damaged"}]}))).await;
    assert_eq!(s, StatusCode::OK, "{rec}");
    let (s, v) = act(
        &app,
        &format!("/v1/returns/{rid2}/disposition"),
        Some(json!({"lines": [{"sku": "RET-1", "quantity": 1, "disposition": "refurbish"}]})),
    )
    .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("received")),
        "{v}"
    );
    let (s, v) = act(
        &app,
        &format!("/v1/returns/{rid2}/disposition"),
        Some(json!({"lines": [{"sku": "RET-1", "quantity": 1, "disposition": "write_off"}]})),
    )
    .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("closed")),
        "{v}"
    );
    assert_eq!(
        stock_at(&app, "RET-1", "wh-1").await,
        (8, 0),
        "neither comes back on hand"
    );
    let o = read_order(&app, &id).await;
    assert_eq!(o["status"], "returned");
    assert_eq!(
        tender(&o, "refunded"),
        total,
        "refunded exactly what was captured: {o}"
    );
    assert_eq!(o["payments"][0]["status"], "refunded");
    let ops = app
        .store
        .payment_operations(&app.tenant, &id)
        .await
        .unwrap();
    let refunds: i64 = ops
        .iter()
        .filter(|o| o.1 == "refund" && o.4 == "succeeded")
        .map(|o| o.3)
        .sum();
    assert_eq!(refunds, total, "the gateway refunded it: {ops:?}");
    // A third return of the same units: nothing is left to return.
    let (s, _) = act(
        &app,
        &format!("/v1/orders/{id}/returns"),
        Some(json!({"lines": [{"sku": "RET-1", "quantity": 1, "reason": "other"}]})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
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
    assert!(
        actions.ends_with(&[
            "return.requested",
            "return.received",
            "return.dispositioned",
            "return.requested",
            "return.received",
            "return.dispositioned",
            "return.dispositioned"
        ]),
        "{actions:?}"
    );
}

#[tokio::test]
async fn a_guest_returns_with_a_key_and_bad_returns_are_refused() {
    let app = TestApp::spawn().await;
    app.product("RET-2", 1000, 10).await;
    // Nothing shipped: a return is refused, naming where the order stands.
    let placed = order_with(
        &app,
        json!([{"sku": "RET-2", "quantity": 1}]),
        "4242424242424242",
    )
    .await;
    let guest = client_as(placed["guest_token"].as_str().unwrap());
    let pid = placed["id"].as_str().unwrap();
    let r = guest
        .post(app.url(&format!("/v1/orders/{pid}/returns")))
        .json(&json!({"lines": [{"sku": "RET-2", "quantity": 1, "reason": "changed_mind"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(
        r.json::<Value>().await.unwrap()["current_status"],
        "allocated"
    );

    let placed = order_with(
        &app,
        json!([{"sku": "RET-2", "quantity": 2}]),
        "4242424242424242",
    )
    .await;
    let id = placed["id"].as_str().unwrap().to_string();
    let guest = client_as(placed["guest_token"].as_str().unwrap());
    let ful = placed["fulfillments"][0]["id"].as_str().unwrap();
    pick_pack(&app, ful).await;
    act(
        &app,
        &format!("/v1/fulfillments/{ful}/ship"),
        Some(ship_body()),
    )
    .await;
    let path = format!("/v1/orders/{id}/returns");
    for (body, field) in [
        (json!({"lines": []}), "lines"),
        (
            json!({"lines": [{"sku": "RET-2", "quantity": 0, "reason": "too_small"}]}),
            "lines[0].quantity",
        ),
        (
            json!({"lines": [{"sku": "RET-2", "quantity": 1, "reason": "meh"}]}),
            "lines[0].reason",
        ),
        (
            json!({"lines": [{"sku": "NOT-IN", "quantity": 1, "reason": "other"}]}),
            "lines[0].sku",
        ),
    ] {
        let r = guest.post(app.url(&path)).json(&body).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(problem_paths(&r.json().await.unwrap()), [field], "{body}");
    }
    // The same key twice: one return, the first answer replayed.
    let body = json!({"lines": [{"sku": "RET-2", "quantity": 2, "reason": "changed_mind"}]});
    let send = || {
        guest
            .post(app.url(&path))
            .header("Idempotency-Key", "ret-once")
            .json(&body)
            .send()
    };
    let (a, b) = (send().await.unwrap(), send().await.unwrap());
    assert_eq!(
        (a.status(), b.status()),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    assert_eq!(b.headers()["idempotent-replayed"], "true");
    let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    assert_eq!(a["id"], b["id"]);
    let r = guest
        .get(app.url(&format!("/v1/returns/{}", a["id"].as_str().unwrap())))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Receiving is staff work; an unknown node is named.
    let rid = a["id"].as_str().unwrap();
    let r = guest.post(app.url(&format!("/v1/returns/{rid}/receive"))).json(&json!({"location_id": "wh-1", "lines": [{"sku": "RET-2", "quantity": 1, "condition": "new"}]})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (s, v) = act(&app, &format!("/v1/returns/{rid}/receive"), Some(json!({"location_id": "nowhere", "lines": [{"sku": "RET-2", "quantity": 1, "condition": "new"}]}))).await;
    assert_eq!(
        (s, problem_paths(&v)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["location_id".to_string()]
        )
    );
    let (s, v) = act(&app, &format!("/v1/returns/{rid}/receive"), Some(json!({"location_id": "wh-1", "lines": [{"sku": "RET-2", "quantity": 1, "condition": "wet"}]}))).await;
    assert_eq!(
        (s, problem_paths(&v)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["lines[0].condition".to_string()]
        )
    );
    // Nothing received yet: a disposition is refused, naming the return's state.
    let (s, v) = act(
        &app,
        &format!("/v1/returns/{rid}/disposition"),
        Some(json!({"lines": [{"sku": "RET-2", "quantity": 1, "disposition": "restock"}]})),
    )
    .await;
    assert_eq!(
        (s, v["current_status"].as_str()),
        (StatusCode::CONFLICT, Some("requested")),
        "{v}"
    );
    let (s, _) = act(&app, "/v1/returns/ret_00000000000000000000000000000000/receive", Some(json!({"location_id": "wh-1", "lines": [{"sku": "RET-2", "quantity": 1, "condition": "new"}]}))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn returns_past_the_window_are_refused() {
    let app = TestApp::spawn_with(|c| c.return_window = std::time::Duration::from_millis(1)).await;
    app.product("RET-3", 1000, 5).await;
    let (id, _) = delivered(&app, "RET-3", 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (s, v) = act(
        &app,
        &format!("/v1/orders/{id}/returns"),
        Some(json!({"lines": [{"sku": "RET-3", "quantity": 1, "reason": "too_large"}]})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["errors"][0]["code"], "return_window_closed");
}

/// RFC 3339 of now plus `minutes`.
fn at(minutes: i64) -> String {
    ordo_server::services::rfc3339(ordo_store::now_ms() + minutes * 60_000)
}

#[tokio::test]
async fn carriers_track_a_shipment_with_a_live_position_and_eta() {
    let app = TestApp::spawn().await;
    app.product("TRK-1", 2000, 5).await;
    let placed = order_with(
        &app,
        json!([{"sku": "TRK-1", "quantity": 1}]),
        "4242424242424242",
    )
    .await;
    let (id, ful) = (
        placed["id"].as_str().unwrap(),
        placed["fulfillments"][0]["id"].as_str().unwrap(),
    );
    let track = format!("/v1/fulfillments/{ful}/tracking-events");
    // Not shipped yet: refused, naming where it stands.
    let (s, v) = act(
        &app,
        &track,
        Some(json!({"status": "in_transit", "at": at(-5)})),
    )
    .await;
    assert_eq!(
        (s, v["current_status"].as_str()),
        (StatusCode::CONFLICT, Some("allocated")),
        "{v}"
    );
    pick_pack(&app, ful).await;
    act(
        &app,
        &format!("/v1/fulfillments/{ful}/ship"),
        Some(ship_body()),
    )
    .await;

    // A carrier's channel client posts events; one arrives out of time order.
    let carrier = client_as(&app.token_as(Role::Channel, "carrier-ups"));
    let post = |body: Value| carrier.post(app.url(&track)).json(&body).send();
    let r = post(json!({"status": "in_transit", "at": at(-60), "lat": 39.1, "lon": -94.6, "description": "Kansas City hub"})).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let first: Value = r.json().await.unwrap();
    let eta_far = first["eta"].as_str().unwrap().to_string();
    let r =
        post(json!({"status": "out_for_delivery", "at": at(-10), "lat": 37.78, "lon": -122.41}))
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = post(json!({"status": "in_transit", "at": at(-120), "lat": 38.6, "lon": -90.2}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "an older event is kept");
    let tracking: Value = client_as(placed["guest_token"].as_str().unwrap())
        .get(app.url(&format!("/v1/orders/{id}/tracking")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let f = &tracking["fulfillments"][0];
    let statuses: Vec<&str> = f["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["in_transit", "in_transit", "out_for_delivery"],
        "oldest first: {tracking}"
    );
    assert_eq!(
        (f["position"]["lat"].as_f64(), f["position"]["lon"].as_f64()),
        (Some(37.78), Some(-122.41)),
        "the latest by time: {f}"
    );
    let eta_near = f["eta"].as_str().unwrap();
    assert!(
        eta_near < eta_far.as_str(),
        "closer means sooner: {eta_near} vs {eta_far}"
    );
    assert!(eta_near > at(-10).as_str(), "{eta_near}");
    assert_eq!(tracking["eta_model"], "speed-v1");

    // Bad events: each names its field.
    for (body, path) in [
        (json!({"status": "lost", "at": at(0)}), "status"),
        (json!({"status": "in_transit", "at": "yesterday"}), "at"),
        (json!({"status": "in_transit", "at": at(60 * 24)}), "at"),
        (
            json!({"status": "in_transit", "at": at(0), "lat": 91.0, "lon": 0.0}),
            "lat",
        ),
        (
            json!({"status": "in_transit", "at": at(0), "lat": 10.0, "lon": 181.0}),
            "lon",
        ),
        (
            json!({"status": "in_transit", "at": at(0), "lat": 10.0}),
            "lon",
        ),
    ] {
        let r = post(body.clone()).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(problem_paths(&r.json().await.unwrap()), [path], "{body}");
    }
    // A guest cannot post; an unknown fulfilment is not found.
    let r = client_as(placed["guest_token"].as_str().unwrap())
        .post(app.url(&track))
        .json(&json!({"status": "delivered", "at": at(0)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = carrier
        .post(app.url("/v1/fulfillments/ful_00000000000000000000000000000000/tracking-events"))
        .json(&json!({"status": "delivered", "at": at(0)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Delivered: the fulfilment and the order follow; the ETA is the delivery time.
    let delivered_at = at(-1);
    let r =
        post(json!({"status": "delivered", "at": delivered_at, "lat": 37.7793, "lon": -122.4193}))
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "delivered");
    assert_eq!(read_order(&app, id).await["status"], "delivered");
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
    assert!(
        actions.ends_with(&[
            "tracking.in_transit",
            "tracking.out_for_delivery",
            "tracking.in_transit",
            "fulfillment.delivered"
        ]),
        "{actions:?}"
    );
    assert!(
        tl["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"] == "channel:carrier-ups"),
        "{tl}"
    );
}

/// Reads server-sent events from `r` until `n` events (blocks separated by a blank line) came.
async fn sse_events(r: &mut reqwest::Response, n: usize) -> Vec<(String, String, Value)> {
    let mut buf = String::new();
    let mut out = Vec::new();
    while out.len() < n {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), r.chunk())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .expect("the stream stays open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let (mut event, mut id, mut data) = (String::new(), String::new(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().into();
                } else if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().into();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if !event.is_empty() {
                out.push((
                    event,
                    id,
                    serde_json::from_str(&data).unwrap_or(Value::Null),
                ));
            }
        }
    }
    out
}

#[tokio::test]
async fn the_app_follows_an_order_live_and_resumes_after_a_reconnect() {
    let app = TestApp::spawn().await;
    app.product("SSE-1", 1500, 5).await;
    let placed = order_with(
        &app,
        json!([{"sku": "SSE-1", "quantity": 1}]),
        "4242424242424242",
    )
    .await;
    let (id, ful) = (
        placed["id"].as_str().unwrap(),
        placed["fulfillments"][0]["id"].as_str().unwrap(),
    );
    let guest = client_as(placed["guest_token"].as_str().unwrap());
    let mut stream = guest
        .get(app.url(&format!("/v1/orders/{id}/events")))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let snap = sse_events(&mut stream, 1).await;
    assert_eq!(snap[0].0, "snapshot");
    assert_eq!(snap[0].2["status"], "allocated");
    // Another Ordo process on the same PostgreSQL database makes the change when there is one.
    let other = match &app.storage {
        ordo_store::StorageConfig::Postgres { .. } => {
            Some(TestApp::spawn_on(app.storage.clone(), tempfile::tempdir().unwrap(), false).await)
        }
        _ => None,
    };
    let actor = other.as_ref().unwrap_or(&app);
    pick_pack(actor, ful).await;
    let got = sse_events(&mut stream, 2).await;
    assert_eq!(
        got.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
        ["fulfillment.picked", "fulfillment.packed"]
    );
    assert_eq!(got[1].2["to"], "packed");
    let picked_id = got[0].1.clone();
    drop(stream);
    // Resume after the picked event: the packed one comes again, then what happens next.
    let mut again = guest
        .get(app.url(&format!("/v1/orders/{id}/events")))
        .header("Last-Event-ID", &picked_id)
        .send()
        .await
        .unwrap();
    act(
        &app,
        &format!("/v1/fulfillments/{ful}/ship"),
        Some(ship_body()),
    )
    .await;
    let got = sse_events(&mut again, 2).await;
    assert_eq!(
        got.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
        ["fulfillment.packed", "fulfillment.shipped"]
    );
    // An id this stream never sent is ignored: a fresh start with a snapshot.
    let mut fresh = guest
        .get(app.url(&format!("/v1/orders/{id}/events")))
        .header("Last-Event-ID", "abc")
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), StatusCode::OK);
    let snap = sse_events(&mut fresh, 1).await;
    assert_eq!(
        (snap[0].0.as_str(), snap[0].2["status"].as_str()),
        ("snapshot", Some("shipped"))
    );
    let stranger = client_as(&app.token_as(Role::Shopper, "cus_nobody"));
    let r = stranger
        .get(app.url(&format!("/v1/orders/{id}/events")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn recovery_settles_a_ship_whose_process_died_between_capture_and_commit() {
    let app = TestApp::spawn_with(|c| {
        c.authorization_grace = std::time::Duration::from_millis(200);
        // Operations are settled once no live request can still be working on them.
        c.request_timeout = std::time::Duration::from_secs(1);
    })
    .await;
    app.product("REC-1", 1800, 5).await;
    // Two packed fulfilments; each ship is claimed, as a process would before asking the gateway.
    let mut claims = Vec::new();
    for _ in 0..2 {
        let placed = order_with(
            &app,
            json!([{"sku": "REC-1", "quantity": 1}]),
            "4242424242424242",
        )
        .await;
        let ful = placed["fulfillments"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        pick_pack(&app, &ful).await;
        let claim = app
            .store
            .claim_ship(&app.tenant, &ful, "UPS", "1Z1")
            .await
            .unwrap()
            .unwrap();
        claims.push((placed["id"].as_str().unwrap().to_string(), ful, claim));
    }
    // The first one's capture reached the gateway before the crash; the second's never did.
    let op = &claims[0].2.captures[0];
    let (entry, _) = app
        .store
        .sandbox_operation(&op.id, "capture", &op.authorization_id, op.amount, |_| {
            ("ok".into(), true)
        })
        .await
        .unwrap();
    assert_eq!(entry.outcome, "ok");
    // While a claim stands, a cancel is refused.
    let (s, v) = act(
        &app,
        &format!("/v1/orders/{}/cancel", claims[1].0),
        Some(json!({"reason": "x"})),
    )
    .await;
    assert_eq!(
        (s, v["type"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("https://ordo.dev/problems/payment-in-progress")
        ),
        "{v}"
    );
    // Recovery (every 10 s) asks the gateway and settles both.
    let settled = wait_until(25, || async {
        let a = read_order(&app, &claims[0].0).await;
        let b = app
            .store
            .payment_operations(&app.tenant, &claims[1].0)
            .await
            .unwrap();
        a["status"] == "shipped" && b.iter().all(|o| o.4 == "failed")
    })
    .await;
    assert!(settled, "recovery settled the claims");
    let a = read_order(&app, &claims[0].0).await;
    assert_eq!(tender(&a, "captured"), claims[0].2.value);
    let b = read_order(&app, &claims[1].0).await;
    assert_eq!(
        (b["status"].as_str(), tender(&b, "captured")),
        (Some("packed"), 0)
    );
    // The released fulfilment ships normally now.
    let (s, v) = act(
        &app,
        &format!("/v1/fulfillments/{}/ship", claims[1].1),
        Some(ship_body()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn a_short_pick_reroutes_the_missing_units_or_cancels_them() {
    let app = TestApp::spawn().await;
    app.product("SHORT-1", 1000, 3).await; // at wh-1 only: the order is allocated there
    let placed = order_with(
        &app,
        json!([{"sku": "SHORT-1", "quantity": 2}]),
        "4242424242424242",
    )
    .await;
    let (id, ful) = (
        placed["id"].as_str().unwrap(),
        placed["fulfillments"][0]["id"].as_str().unwrap(),
    );
    assert_eq!(placed["fulfillments"][0]["location_id"], "wh-1");
    app.set_stock("SHORT-1", "store-2", 5).await;
    // Bad pick bodies name their field.
    for (body, path) in [
        (
            json!({"lines": [{"sku": "SHORT-1", "quantity": 3}]}),
            "lines[0].quantity",
        ),
        (
            json!({"lines": [{"sku": "SHORT-1", "quantity": -1}]}),
            "lines[0].quantity",
        ),
        (
            json!({"lines": [{"sku": "OTHER", "quantity": 1}]}),
            "lines[0].sku",
        ),
    ] {
        let (s, v) = act(
            &app,
            &format!("/v1/fulfillments/{ful}/pick"),
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            (s, problem_paths(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, vec![path.to_string()]),
            "{body}: {v}"
        );
    }
    // One of two found: wh-1 picks one; the other goes to store-2 on a new fulfilment.
    let (s, v) = act(
        &app,
        &format!("/v1/fulfillments/{ful}/pick"),
        Some(json!({"lines": [{"sku": "SHORT-1", "quantity": 1}]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "picked");
    assert_eq!(v["lines"], json!([{"sku": "SHORT-1", "quantity": 1}]));
    let short = &v["short"][0];
    assert_eq!(
        (short["missing"].as_i64(), short["cancelled"].as_i64()),
        (Some(1), Some(0)),
        "{v}"
    );
    assert_eq!(short["rerouted_to"][0], "store-2");
    // wh-1's count was wrong: one unit fewer on hand; store-2 reserves the rerouted one.
    assert_eq!(stock_at(&app, "SHORT-1", "wh-1").await, (2, 1));
    assert_eq!(stock_at(&app, "SHORT-1", "store-2").await, (5, 1));
    let o = read_order(&app, id).await;
    let fuls = o["fulfillments"].as_array().unwrap();
    assert_eq!(fuls.len(), 2, "{o}");
    let moved = fuls.iter().find(|f| f["location_id"] == "store-2").unwrap();
    assert_eq!(
        (
            moved["status"].as_str(),
            moved["lines"][0]["quantity"].as_i64()
        ),
        (Some("allocated"), Some(1))
    );
    assert_eq!(o["status"], "picking");
    // The re-route is a routing decision of its own, in the log; the placement's stays the order's.
    let decisions: Value = app
        .admin
        .get(app.url("/v1/routing/decisions?limit=5"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rerouted = decisions["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["decision_id"] == short["decision_id"])
        .expect("the re-route's decision");
    assert_eq!(rerouted["order_id"], id);
    let routing: Value = app
        .admin
        .get(app.url(&format!("/v1/orders/{id}/routing")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(routing["decision_id"], short["decision_id"]);
    let tl: Value = app
        .admin
        .get(app.url(&format!("/v1/orders/{id}/timeline")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sp = tl["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "fulfillment.short_picked")
        .unwrap();
    assert!(
        sp["reason"].as_str().unwrap().contains("routed to store-2"),
        "{sp}"
    );
    // The whole order still ships and captures its total.
    let total = o["totals"]["total"]["amount"].as_i64().unwrap();
    for f in fuls {
        let fid = f["id"].as_str().unwrap();
        if f["status"] == "allocated" {
            act(&app, &format!("/v1/fulfillments/{fid}/pick"), None).await;
        }
        act(&app, &format!("/v1/fulfillments/{fid}/pack"), None).await;
        let (s, v) = act(
            &app,
            &format!("/v1/fulfillments/{fid}/ship"),
            Some(ship_body()),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let o = read_order(&app, id).await;
    assert_eq!(
        (o["status"].as_str(), tender(&o, "captured")),
        (Some("shipped"), total)
    );

    // Nowhere else has it: the missing unit is cancelled and its value voided.
    app.product("SHORT-2", 1000, 2).await;
    let placed = order_with(
        &app,
        json!([{"sku": "SHORT-2", "quantity": 2}]),
        "4242424242424242",
    )
    .await;
    let (id, ful) = (
        placed["id"].as_str().unwrap(),
        placed["fulfillments"][0]["id"].as_str().unwrap(),
    );
    let (s, v) = act(
        &app,
        &format!("/v1/fulfillments/{ful}/pick"),
        Some(json!({"lines": [{"sku": "SHORT-2", "quantity": 1}]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["short"][0]["cancelled"].as_i64(),
            v["short"][0]["rerouted_to"].is_null()
        ),
        (Some(1), true),
        "{v}"
    );
    let o = read_order(&app, id).await;
    assert_eq!(o["lines"][0]["cancelled"], 1);
    assert_eq!(stock_at(&app, "SHORT-2", "wh-1").await, (1, 1));
    let ops = app.store.payment_operations(&app.tenant, id).await.unwrap();
    let voided: i64 = ops
        .iter()
        .filter(|o| o.1 == "void" && o.4 == "succeeded")
        .map(|o| o.3)
        .sum();
    assert_eq!(
        voided,
        o["totals"]["total"]["amount"].as_i64().unwrap() / 2,
        "{ops:?}"
    );
    // A pick that finds nothing at all cancels the fulfilment (and, here, the order).
    app.product("SHORT-3", 1000, 1).await;
    let placed = order_with(
        &app,
        json!([{"sku": "SHORT-3", "quantity": 1}]),
        "4242424242424242",
    )
    .await;
    let ful = placed["fulfillments"][0]["id"].as_str().unwrap();
    let (s, v) = act(
        &app,
        &format!("/v1/fulfillments/{ful}/pick"),
        Some(json!({"lines": [{"sku": "SHORT-3", "quantity": 0}]})),
    )
    .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("cancelled")),
        "{v}"
    );
    assert_eq!(
        read_order(&app, placed["id"].as_str().unwrap()).await["status"],
        "cancelled"
    );
}

#[tokio::test]
async fn an_exchange_returns_one_variant_ships_another_and_settles_the_difference() {
    let app = TestApp::spawn().await;
    app.product("EXA-M", 2000, 5).await;
    app.product("EXA-L", 9000, 5).await;
    app.product("EXA-S", 500, 5).await;
    let (id, total) = delivered(&app, "EXA-M", 2).await;
    let path = format!("/v1/orders/{id}/exchanges");
    // Bad requests name their field; nothing is exchanged.
    for (body, field) in [
        (
            json!({"return": {"sku": "EXA-M", "quantity": 1, "reason": "too_small"}, "for": {"sku": "NOPE", "quantity": 1}}),
            "for.sku",
        ),
        (
            json!({"return": {"sku": "EXA-M", "quantity": 0, "reason": "too_small"}, "for": {"sku": "EXA-L", "quantity": 1}}),
            "return.quantity",
        ),
        (
            json!({"return": {"sku": "EXA-M", "quantity": 1, "reason": "meh"}, "for": {"sku": "EXA-L", "quantity": 1}}),
            "return.reason",
        ),
    ] {
        let (s, v) = act(&app, &path, Some(body.clone())).await;
        assert_eq!(
            (s, problem_paths(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, vec![field.to_string()]),
            "{body}: {v}"
        );
    }
    let (s, v) = act(&app, &path, Some(json!({"return": {"sku": "EXA-M", "quantity": 3, "reason": "too_small"}, "for": {"sku": "EXA-L", "quantity": 1}}))).await;
    assert_eq!(s, StatusCode::CONFLICT, "more than shipped: {v}");

    // Up: one M for one L, which costs more: the difference is authorized now, captured at ship.
    let (s, ex) = act(&app, &path, Some(json!({"return": {"sku": "EXA-M", "quantity": 1, "reason": "too_small"}, "for": {"sku": "EXA-L", "quantity": 1}}))).await;
    assert_eq!(s, StatusCode::CREATED, "{ex}");
    let value_out = ex["value_out"]["amount"].as_i64().unwrap();
    assert_eq!(
        value_out,
        total / 2,
        "one of two units is worth half the total: {ex}"
    );
    assert_eq!(ex["value_in"]["amount"], 9000);
    let difference = ex["difference"]["amount"].as_i64().unwrap();
    assert_eq!(difference, 9000 - value_out);
    let o = read_order(&app, &id).await;
    assert_eq!(
        o["payments"].as_array().unwrap().len(),
        2,
        "the difference's tender: {o}"
    );
    assert_eq!(o["payments"][1]["authorized"]["amount"], difference);
    assert_eq!(
        stock_at(&app, "EXA-L", "wh-1").await,
        (5, 1),
        "the new unit is reserved"
    );
    let ful = ex["fulfillment_id"].as_str().unwrap();
    pick_pack(&app, ful).await;
    let (s, v) = act(
        &app,
        &format!("/v1/fulfillments/{ful}/ship"),
        Some(ship_body()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let o = read_order(&app, &id).await;
    assert_eq!(o["payments"][1]["captured"]["amount"], difference);
    assert_eq!(
        o["payments"][0]["captured"]["amount"], total,
        "the first card is untouched"
    );
    // The M comes back: its value paid for the L, nothing is refunded.
    let rid = ex["return_id"].as_str().unwrap();
    let (s, rec) = act(&app, &format!("/v1/returns/{rid}/receive"), Some(json!({"location_id": "wh-1", "lines": [{"sku": "EXA-M", "quantity": 1, "condition": "new"}]}))).await;
    assert_eq!(s, StatusCode::OK, "{rec}");
    assert_eq!(rec["refunded"]["amount"], 0);

    // Down: the other M for an S, which costs less: the receipt refunds the difference.
    let (s, ex) = act(&app, &path, Some(json!({"return": {"sku": "EXA-M", "quantity": 1, "reason": "too_large"}, "for": {"sku": "EXA-S", "quantity": 1}}))).await;
    assert_eq!(s, StatusCode::CREATED, "{ex}");
    let difference = ex["difference"]["amount"].as_i64().unwrap();
    assert!(difference < 0, "{ex}");
    assert_eq!(
        read_order(&app, &id).await["payments"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "no new tender"
    );
    let rid = ex["return_id"].as_str().unwrap();
    let (s, rec) = act(&app, &format!("/v1/returns/{rid}/receive"), Some(json!({"location_id": "wh-1", "lines": [{"sku": "EXA-M", "quantity": 1, "condition": "opened"}]}))).await;
    assert_eq!(s, StatusCode::OK, "{rec}");
    assert_eq!(rec["refunded"]["amount"].as_i64(), Some(-difference));
    // Cancelling the S before it ships: nothing of it was charged; the order is consistent.
    let tl: Value = app
        .admin
        .get(app.url(&format!("/v1/orders/{id}/timeline")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        tl["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "exchange.requested")
            .count(),
        2
    );
}

#[tokio::test]
async fn a_cancelled_exchange_releases_its_difference() {
    let app = TestApp::spawn().await;
    app.product("EXB-M", 1000, 5).await;
    app.product("EXB-L", 8000, 5).await;
    let (id, _) = delivered(&app, "EXB-M", 1).await;
    // Under an Idempotency-Key, a retry gets the first answer: one exchange, one charge.
    let body = json!({"return": {"sku": "EXB-M", "quantity": 1, "reason": "too_small"}, "for": {"sku": "EXB-L", "quantity": 1}});
    let send = || {
        app.admin
            .post(app.url(&format!("/v1/orders/{id}/exchanges")))
            .header("Idempotency-Key", "swap-once")
            .json(&body)
            .send()
    };
    let (first, again) = (send().await.unwrap(), send().await.unwrap());
    assert_eq!(
        (first.status(), again.status()),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let (ex, ex2): (Value, Value) = (first.json().await.unwrap(), again.json().await.unwrap());
    assert_eq!(ex["id"], ex2["id"]);
    assert_eq!(
        read_order(&app, &id).await["payments"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "one charge"
    );
    let difference = ex["difference"]["amount"].as_i64().unwrap();
    assert!(difference > 0);
    let (s, v) = act(
        &app,
        &format!("/v1/orders/{id}/cancel"),
        Some(json!({"reason": "customer kept the M"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["payments"][1]["status"], "voided", "{v}");
    assert_eq!(stock_at(&app, "EXB-L", "wh-1").await, (5, 0));
    // The M still comes back: with the L cancelled, its whole value is refunded.
    let rid = ex["return_id"].as_str().unwrap();
    let (s, rec) = act(&app, &format!("/v1/returns/{rid}/receive"), Some(json!({"location_id": "wh-1", "lines": [{"sku": "EXB-M", "quantity": 1, "condition": "new"}]}))).await;
    assert_eq!(s, StatusCode::OK, "{rec}");
    assert_eq!(
        rec["refunded"], ex["value_out"],
        "no credit for cancelled units: {rec}"
    );
    let ops = app
        .store
        .payment_operations(&app.tenant, &id)
        .await
        .unwrap();
    assert!(
        ops.iter()
            .any(|o| o.1 == "void" && o.3 == difference && o.4 == "succeeded"),
        "{ops:?}"
    );
}

#[tokio::test]
async fn staff_cancel_at_each_stage_until_it_ships() {
    let app = TestApp::spawn().await;
    app.product("STG-1", 1300, 20).await;
    // (steps done before the cancel, the order's status then, whether staff may still cancel)
    for (steps, status, ok) in [
        (vec![], "allocated", true),
        (vec!["pick"], "picking", true),
        (vec!["pick", "pack"], "packed", true),
        (vec!["pick", "pack", "ship"], "shipped", false),
        (vec!["pick", "pack", "ship", "deliver"], "delivered", false),
    ] {
        let placed = order_with(
            &app,
            json!([{"sku": "STG-1", "quantity": 1}]),
            "4242424242424242",
        )
        .await;
        let (id, ful) = (
            placed["id"].as_str().unwrap(),
            placed["fulfillments"][0]["id"].as_str().unwrap(),
        );
        let total = placed["totals"]["total"]["amount"].as_i64().unwrap();
        for step in &steps {
            let body = (*step == "ship").then(ship_body);
            let (s, v) = act(&app, &format!("/v1/fulfillments/{ful}/{step}"), body).await;
            assert_eq!(s, StatusCode::OK, "{step}: {v}");
        }
        assert_eq!(read_order(&app, id).await["status"], status);
        let (s, v) = act(
            &app,
            &format!("/v1/orders/{id}/cancel"),
            Some(json!({"reason": "stage test"})),
        )
        .await;
        let o = read_order(&app, id).await;
        if ok {
            assert_eq!(
                (s, o["status"].as_str()),
                (StatusCode::OK, Some("cancelled")),
                "at {status}: {v}"
            );
            assert_eq!(
                (tender(&o, "captured"), o["payments"][0]["status"].as_str()),
                (0, Some("voided"))
            );
        } else {
            assert_eq!(
                (s, v["current_status"].as_str()),
                (StatusCode::CONFLICT, Some(status)),
                "at {status}: {v}"
            );
            assert_eq!(tender(&o, "captured"), total, "nothing changed at {status}");
        }
    }
    // Every unit is either gone with its shipment or back in stock.
    let (on_hand, reserved, allocated) = app
        .store
        .stock_reconciliation(&app.tenant, &ordo_domain::Sku::parse("STG-1").unwrap())
        .await
        .unwrap();
    assert_eq!((on_hand, reserved, allocated), (18, 0, 0));
}

#[tokio::test]
async fn a_refund_the_gateway_refuses_comes_off_the_books_and_says_so() {
    let app = TestApp::spawn().await;
    app.product("RFD-1", 1200, 5).await;
    // Captures work on this card; refunds are declined.
    let placed = order_with(
        &app,
        json!([{"sku": "RFD-1", "quantity": 1}]),
        "4000000000005126",
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
    let (s, r) = act(
        &app,
        &format!("/v1/orders/{id}/returns"),
        Some(json!({"lines": [{"sku": "RFD-1", "quantity": 1, "reason": "damaged"}]})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let rid = r["id"].as_str().unwrap();
    let (s, rec) = act(&app, &format!("/v1/returns/{rid}/receive"), Some(json!({"location_id": "wh-1", "lines": [{"sku": "RFD-1", "quantity": 1, "condition": "damaged"}]}))).await;
    assert_eq!(s, StatusCode::OK, "{rec}");
    assert_eq!(
        rec["refunded"]["amount"], 0,
        "the refund did not happen: {rec}"
    );
    let o = read_order(&app, id).await;
    assert_eq!((tender(&o, "captured"), tender(&o, "refunded")), (total, 0));
    assert_eq!(o["payments"][0]["status"], "captured");
    let ops = app.store.payment_operations(&app.tenant, id).await.unwrap();
    assert!(
        ops.iter()
            .any(|o| o.1 == "refund" && o.4 == "failed" && o.3 == total),
        "{ops:?}"
    );
    let tl: Value = app
        .admin
        .get(app.url(&format!("/v1/orders/{id}/timeline")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let failed = tl["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "refund.failed")
        .expect("the timeline says so");
    assert!(
        failed["reason"].as_str().unwrap().contains("declined"),
        "{failed}"
    );
}

#[tokio::test]
async fn a_partly_failed_capture_is_booked_and_given_back_and_a_claim_blocks_short_picks() {
    let app = TestApp::spawn().await;
    app.product("TWO-1", 3000, 5).await;
    // Two cards: the first captures, the second declines every capture.
    let cart: Value = app.post("/v1/carts", &json!({"lines": [{"sku": "TWO-1", "quantity": 2}], "shipments": [{"address": address()}]})).await.json().await.unwrap();
    let total = cart["totals"]["total"]["amount"].as_i64().unwrap();
    let (good, bad) = (
        app.token("4242424242424242").await,
        app.token("4000000000000341").await,
    );
    let body = json!({"cart_id": cart["id"], "customer": guest(), "payments": [
        {"token": good, "amount": {"amount": total / 4, "currency": "USD"}},
        {"token": bad, "amount": {"amount": total - total / 4, "currency": "USD"}}]});
    let (s, placed) = app.place("two-cards", &body).await;
    assert_eq!(s, StatusCode::CREATED, "{placed}");
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
    let o = read_order(&app, id).await;
    assert_eq!(o["status"], "packed");
    let first = &o["payments"][0];
    assert_eq!(
        (
            first["captured"]["amount"].as_i64(),
            first["refunded"]["amount"].as_i64()
        ),
        (Some(total / 4), Some(total / 4)),
        "captured and given back: {o}"
    );
    assert_eq!(o["payments"][1]["captured"]["amount"], 0);
    let ops = app.store.payment_operations(&app.tenant, id).await.unwrap();
    assert!(
        ops.iter()
            .any(|o| o.1 == "refund" && o.3 == total / 4 && o.4 == "succeeded"),
        "{ops:?}"
    );

    // While a ship of the order holds its claim, a short pick of another fulfilment waits.
    app.product("TWO-A", 1000, 3).await;
    app.product("TWO-B", 1000, 0).await;
    app.set_stock("TWO-B", "store-2", 3).await;
    let placed = order_with(
        &app,
        json!([{"sku": "TWO-A", "quantity": 1}, {"sku": "TWO-B", "quantity": 1}]),
        "4242424242424242",
    )
    .await;
    let fuls = placed["fulfillments"].as_array().unwrap();
    let at = |loc: &str| {
        fuls.iter().find(|f| f["location_id"] == loc).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (a, b) = (at("wh-1"), at("store-2"));
    pick_pack(&app, &a).await;
    app.store
        .claim_ship(&app.tenant, &a, "UPS", "1")
        .await
        .unwrap()
        .unwrap();
    let (s, v) = act(
        &app,
        &format!("/v1/fulfillments/{b}/pick"),
        Some(json!({"lines": [{"sku": "TWO-B", "quantity": 0}]})),
    )
    .await;
    assert_eq!(
        (s, v["type"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("https://ordo.dev/problems/payment-in-progress")
        ),
        "{v}"
    );
    let (s, _) = act(&app, &format!("/v1/fulfillments/{b}/pick"), None).await;
    assert_eq!(
        s,
        StatusCode::OK,
        "a full pick moves no money and goes ahead"
    );
}
