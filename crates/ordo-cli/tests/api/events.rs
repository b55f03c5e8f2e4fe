//! The event backbone over HTTP on the backend under test: every change writes a CloudEvent in
//! its transaction; the relay puts them in the log in commit order with gap-free per-subject
//! sequences; `GET /v1/events` pages through it; the in-process bus carries the same events.

use crate::helpers::*;
use crate::lifecycle::{act, order_with, pick_pack, ship_body};
use ordo_server::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};

/// Every event of the tenant's log, paging with `limit` (asserts paging neither repeats nor skips).
pub(crate) async fn whole_log(app: &TestApp, limit: usize) -> Vec<Value> {
    let mut all: Vec<Value> = Vec::new();
    let mut after = 0i64;
    loop {
        let r = app
            .admin
            .get(app.url(&format!("/v1/events?after={after}&limit={limit}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let page: Value = r.json().await.unwrap();
        let items = page["items"].as_array().unwrap().clone();
        let next = page["next_after"].as_i64().unwrap();
        assert!(items.len() <= limit);
        if items.is_empty() {
            assert_eq!(next, after, "an empty page stays where it was");
            return all;
        }
        assert!(next > after, "next_after moves forward");
        after = next;
        all.extend(items);
    }
}

/// Waits until the log holds at least `n` events of `kind` (the relay runs every few ms).
pub(crate) async fn wait_for_events(app: &TestApp, kind: &str, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let page: Value = app
            .admin
            .get(app.url(&format!("/v1/events?types={kind}&limit=1000")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let found = page["items"].as_array().unwrap().clone();
        if found.len() >= n {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{n} {kind} events never reached the log: {found:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn every_change_is_a_cloudevent_numbered_per_subject_in_commit_order() {
    let app = TestApp::spawn().await;
    let mut bus = app.events.subscribe();
    app.product("EV-1", 1200, 20).await;
    // One order through its whole life, one cancelled, one stock receipt.
    let shipped = order_with(
        &app,
        json!([{"sku": "EV-1", "quantity": 2}]),
        "4242424242424242",
    )
    .await;
    let id = shipped["id"].as_str().unwrap().to_string();
    let ful = shipped["fulfillments"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    pick_pack(&app, &ful).await;
    let (s, v) = act(
        &app,
        &format!("/v1/fulfillments/{ful}/ship"),
        Some(ship_body()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = act(&app, &format!("/v1/fulfillments/{ful}/deliver"), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let cancelled = order_with(
        &app,
        json!([{"sku": "EV-1", "quantity": 1}]),
        "4242424242424242",
    )
    .await;
    let cid = cancelled["id"].as_str().unwrap().to_string();
    let (s, v) = act(
        &app,
        &format!("/v1/orders/{cid}/cancel"),
        Some(json!({"reason": "duplicate order"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let r = app
        .adjust(&json!({"sku": "EV-1", "location_id": "store-2", "delta": 7, "reason": "receipt"}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    wait_for_events(&app, "ordo.order.cancelled", 1).await;
    wait_for_events(&app, "ordo.inventory.updated", 4).await;
    let log = whole_log(&app, 2).await;
    // The whole log in one page is the same log.
    assert_eq!(log, whole_log(&app, 1000).await);

    let kinds_of = |subject: &str| -> Vec<String> {
        log.iter()
            .filter(|e| e["subject"] == subject)
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        kinds_of(&id),
        [
            "ordo.order.placed",
            "ordo.fulfillment.picked",
            "ordo.fulfillment.packed",
            "ordo.fulfillment.shipped",
            "ordo.fulfillment.delivered"
        ]
    );
    assert_eq!(
        kinds_of(&cid),
        ["ordo.order.placed", "ordo.order.cancelled"]
    );
    // Inventory: the stock count, the ship took units off hand, the cancel released a
    // reservation, the receipt.
    let inv: Vec<&Value> = log.iter().filter(|e| e["subject"] == "EV-1").collect();
    let reasons: Vec<&str> = inv
        .iter()
        .map(|e| e["data"]["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        ["count", "shipped", "released", "receipt"],
        "{inv:?}"
    );
    assert_eq!(inv[1]["data"]["levels"][0]["on_hand"], 18);
    assert_eq!(inv[3]["data"]["levels"][0]["location_id"], "store-2");
    assert_eq!(inv[3]["data"]["levels"][0]["on_hand"], 7);

    // The envelope, unique ids, and per-subject sequences 1, 2, 3 … in log order.
    let mut ids = HashSet::new();
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for e in &log {
        assert_eq!(e["specversion"], "1.0");
        assert_eq!(e["source"], "/ordo/default");
        assert_eq!(e["datacontenttype"], "application/json");
        assert!(e["time"].as_str().unwrap().ends_with('Z'), "{e}");
        assert!(
            ids.insert(e["id"].as_str().unwrap().to_string()),
            "id twice: {e}"
        );
        let subject = e["subject"].as_str().unwrap().to_string();
        let seq = e["sequence"].as_i64().unwrap();
        let prev = last.insert(subject.clone(), seq).unwrap_or(0);
        assert_eq!(seq, prev + 1, "{subject}: {seq} after {prev}");
    }
    assert_eq!(
        log.iter().find(|e| e["subject"] == id.as_str()).unwrap()["data"]["id"],
        id.as_str()
    );

    // The in-process bus carried the same events in the same order.
    let mut carried = Vec::new();
    while carried.len() < log.len() {
        let e = tokio::time::timeout(std::time::Duration::from_secs(10), bus.recv())
            .await
            .expect("the bus carries every event")
            .unwrap();
        carried.push(serde_json::to_value(e.cloud_event().unwrap()).unwrap());
        let written: Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(
            &written,
            carried.last().unwrap(),
            "the JSON written for consumers is the event"
        );
    }
    assert_eq!(carried, log);

    // After an event id, and filtered by type.
    let third = log[2]["id"].as_str().unwrap();
    let page: Value = app
        .admin
        .get(app.url(&format!("/v1/events?after={third}&limit=1000")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap()[..], log[3..]);
    let page: Value = app
        .admin
        .get(app.url("/v1/events?types=ordo.order.placed,ordo.order.cancelled"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "ordo.order.placed",
            "ordo.order.placed",
            "ordo.order.cancelled"
        ]
    );
}

#[tokio::test]
async fn the_event_log_refuses_bad_queries_and_callers_who_are_not_admins() {
    let app = TestApp::spawn().await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("after=-1", "after"),
        ("after=yesterday", "after"),
        ("types=ordo.order.teleported", "types"),
        ("types=order.placed", "types"),
    ] {
        let r = app
            .admin
            .get(app.url(&format!("/v1/events?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let v: Value = r.json().await.unwrap();
        assert_eq!(problem_paths(&v), [field], "{query}: {v}");
    }
    let unknown = uuid::Uuid::now_v7();
    let r = app
        .admin
        .get(app.url(&format!("/v1/events?after={unknown}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = client().get(app.url("/v1/events")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    for role in [Role::Staff, Role::App] {
        let r = client_as(&app.token_as(role, "someone"))
            .get(app.url("/v1/events"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{role:?}");
    }
}

/// The JSON Schema of each event type, from `docs/events/`.
fn schemas() -> BTreeMap<String, Value> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/events");
    let mut all = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if let Some(kind) = name.strip_suffix(".schema.json") {
            let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            all.insert(kind.to_string(), schema);
        }
    }
    all
}

#[test]
fn every_event_type_has_a_json_schema_and_every_schema_a_type() {
    let schemas = schemas();
    let types: Vec<String> = ordo_domain::events::EventType::ALL
        .iter()
        .map(|t| t.as_str().to_string())
        .collect();
    assert_eq!(schemas.keys().cloned().collect::<Vec<_>>(), {
        let mut t = types.clone();
        t.sort();
        t
    });
    for (kind, schema) in &schemas {
        assert_eq!(schema["properties"]["type"]["const"], kind.as_str());
        jsonschema::validator_for(schema).unwrap_or_else(|e| panic!("{kind}: {e}"));
    }
}

#[tokio::test]
async fn real_events_of_every_kind_match_their_json_schemas() {
    let app = TestApp::spawn().await;
    app.product("SCH-1", 2500, 10).await;
    app.product("SCH-2", 900, 10).await;
    // Placed, picked short (one unit re-routed to store-2), packed, shipped, tracked, delivered,
    // returned, received with its refund, dispositioned.
    app.set_stock("SCH-1", "store-2", 5).await;
    let placed = order_with(
        &app,
        json!([{"sku": "SCH-1", "quantity": 2}]),
        "4242424242424242",
    )
    .await;
    let id = placed["id"].as_str().unwrap().to_string();
    let ful = placed["fulfillments"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = act(
        &app,
        &format!("/v1/fulfillments/{ful}/pick"),
        Some(json!({"lines": [{"sku": "SCH-1", "quantity": 1}]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = act(&app, &format!("/v1/fulfillments/{ful}/pack"), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = act(
        &app,
        &format!("/v1/fulfillments/{ful}/ship"),
        Some(ship_body()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let carrier = client_as(&app.token_as(Role::Channel, "carrier-ups"));
    for (status, minutes) in [
        ("in_transit", -30),
        ("out_for_delivery", -10),
        ("exception", -5),
        ("delivered", 0),
    ] {
        let at = ordo_server::services::rfc3339(ordo_store::now_ms() + minutes * 60_000);
        let r = carrier
            .post(app.url(&format!("/v1/fulfillments/{ful}/tracking-events")))
            .json(&json!({"status": status, "at": at, "lat": 37.7, "lon": -122.4}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "{status}");
    }
    let (s, ret) = act(
        &app,
        &format!("/v1/orders/{id}/returns"),
        Some(json!({"lines": [{"sku": "SCH-1", "quantity": 1, "reason": "too_small"}]})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{ret}");
    let rid = ret["id"].as_str().unwrap();
    let (s, v) = act(&app, &format!("/v1/returns/{rid}/receive"), Some(json!({"location_id": "wh-1", "lines": [{"sku": "SCH-1", "quantity": 1, "condition": "new"}]}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = act(
        &app,
        &format!("/v1/returns/{rid}/disposition"),
        Some(json!({"lines": [{"sku": "SCH-1", "quantity": 1, "disposition": "restock"}]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Cancelled in part, then whole; a fulfilment picked with nothing left is cancelled.
    let two = order_with(
        &app,
        json!([{"sku": "SCH-2", "quantity": 3}]),
        "4242424242424242",
    )
    .await;
    let tid = two["id"].as_str().unwrap();
    let (s, v) = act(
        &app,
        &format!("/v1/orders/{tid}/cancel"),
        Some(json!({"reason": "customer asked", "lines": [{"sku": "SCH-2", "quantity": 1}]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = act(
        &app,
        &format!("/v1/orders/{tid}/cancel"),
        Some(json!({"reason": "customer asked"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let three = order_with(
        &app,
        json!([{"sku": "SCH-2", "quantity": 1}]),
        "4242424242424242",
    )
    .await;
    let f3 = three["fulfillments"][0]["id"].as_str().unwrap();
    let (s, v) = act(
        &app,
        &format!("/v1/fulfillments/{f3}/pick"),
        Some(json!({"lines": [{"sku": "SCH-2", "quantity": 0}]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    wait_for_events(&app, "ordo.fulfillment.cancelled", 1).await;
    let log = whole_log(&app, 1000).await;
    let schemas = schemas();
    let mut seen = std::collections::BTreeSet::new();
    for e in &log {
        let kind = e["type"].as_str().unwrap();
        let schema = schemas
            .get(kind)
            .unwrap_or_else(|| panic!("no schema for {kind}"));
        let validator = jsonschema::validator_for(schema).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(e)
            .map(|err| format!("{} at {}", err, err.instance_path))
            .collect();
        assert!(errors.is_empty(), "{kind}: {errors:?}\n{e:#}");
        seen.insert(kind.to_string());
    }
    for kind in [
        "ordo.order.placed",
        "ordo.order.cancelled",
        "ordo.order.lines_cancelled",
        "ordo.fulfillment.picked",
        "ordo.fulfillment.packed",
        "ordo.fulfillment.shipped",
        "ordo.fulfillment.delivered",
        "ordo.fulfillment.short_picked",
        "ordo.fulfillment.cancelled",
        "ordo.tracking.in_transit",
        "ordo.tracking.out_for_delivery",
        "ordo.tracking.exception",
        "ordo.return.requested",
        "ordo.return.received",
        "ordo.return.dispositioned",
        "ordo.refund.issued",
        "ordo.inventory.updated",
    ] {
        assert!(seen.contains(kind), "no {kind} in {seen:?}");
    }
    // A schema rejects what its type must not carry.
    let placed_event = log
        .iter()
        .find(|e| e["type"] == "ordo.order.placed")
        .unwrap();
    let mut broken = placed_event.clone();
    broken["sequence"] = json!(0);
    assert!(
        !jsonschema::validator_for(&schemas["ordo.order.placed"])
            .unwrap()
            .is_valid(&broken)
    );
}
