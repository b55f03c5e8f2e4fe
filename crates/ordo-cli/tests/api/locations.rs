//! The fulfilment network's locations over HTTP: admins write them (audited), staff and admins
//! read them with their load today; every bad field is a 422 naming it.

use crate::helpers::*;
use ordo_server::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn reno() -> Value {
    json!({"name": "Reno DC", "kind": "warehouse", "lat": 39.5296, "lon": -119.8138, "country": "US",
           "ships_to": ["US", "CA"], "capabilities": ["cold_chain", "hazmat"], "daily_capacity": 5000, "cutoff": "17:00",
           "timezone": "America/Los_Angeles", "handling_cost": {"amount": 350, "currency": "USD"},
           "cost_per_100km": {"amount": 40, "currency": "USD"}, "active": true})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_write_locations_staff_read_them_with_their_load() {
    let app = TestApp::spawn().await;
    let r = app
        .admin
        .put(app.url("/v1/locations/wh-reno"))
        .json(&reno())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    for (field, want) in [
        ("name", json!("Reno DC")),
        ("kind", json!("warehouse")),
        ("country", json!("US")),
        ("ships_to", json!(["US", "CA"])),
        ("capabilities", json!(["hazmat", "cold_chain"])),
        ("daily_capacity", json!(5000)),
        ("cutoff", json!("17:00")),
        ("timezone", json!("America/Los_Angeles")),
        ("handling_cost", json!({"amount": 350, "currency": "USD"})),
        ("active", json!(true)),
        ("load_today", json!(0)),
    ] {
        assert_eq!(created[field], want, "{field} in {created}");
    }
    // PUT replaces the whole location: absent optional fields take their defaults.
    let r = app.admin.put(app.url("/v1/locations/wh-reno")).json(&json!({"name": "Reno DC (closed)", "kind": "warehouse", "lat": 39.5, "lon": -119.8, "active": false})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let replaced: Value = r.json().await.unwrap();
    assert_eq!(replaced["active"], false);
    assert_eq!(replaced["capabilities"], json!([]));
    assert_eq!(replaced["daily_capacity"], Value::Null);

    // Staff read; the app and staff cannot write; unknown ids are 404.
    let staff = client_as(&app.tokens.staff);
    let one: Value = staff
        .get(app.url("/v1/locations/wh-reno"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["name"], "Reno DC (closed)");
    let all: Value = staff
        .get(app.url("/v1/locations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec!["store-2", "wh-1", "wh-reno"],
        "every location, by id"
    );
    assert_eq!(
        staff
            .put(app.url("/v1/locations/wh-x"))
            .json(&reno())
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.client
            .get(app.url("/v1/locations"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        staff
            .get(app.url("/v1/locations/nowhere"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );

    // Orders routed to a node count in its load today.
    app.product("LOC-1", 1000, 10).await;
    let total = quote(&app, "LOC-1", 1).await;
    let (s, _) = app
        .place(
            "loc-order",
            &inline_order("LOC-1", 1, &app.token("4242424242424242").await, total),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let wh1: Value = staff
        .get(app.url("/v1/locations/wh-1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(wh1["load_today"], 1, "{wh1}");

    // Both writes are in the audit log with their before and after.
    let audit: Value = app
        .admin
        .get(app.url("/v1/audit"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"] == "location:wh-reno")
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["location.created", "location.updated"]);
    let _ = Role::Admin;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_locations_are_refused_field_by_field() {
    let app = TestApp::spawn().await;
    let mut bad = reno();
    bad["lat"] = json!(91.5);
    bad["lon"] = json!(-181);
    bad["country"] = json!("XX");
    bad["ships_to"] = json!(["US", "ZZ"]);
    bad["capabilities"] = json!(["fragile"]);
    bad["daily_capacity"] = json!(-1);
    bad["cutoff"] = json!("25:00");
    bad["timezone"] = json!("Mars/Olympus_Mons");
    bad["handling_cost"] = json!({"amount": -5, "currency": "USD"});
    bad["kind"] = json!("depot");
    bad["name"] = json!("");
    let r = app
        .admin
        .put(app.url("/v1/locations/wh-bad"))
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let problem: Value = r.json().await.unwrap();
    let paths: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    for p in [
        "lat",
        "lon",
        "country",
        "ships_to[1]",
        "capabilities[0]",
        "daily_capacity",
        "cutoff",
        "timezone",
        "handling_cost.amount",
        "kind",
        "name",
    ] {
        assert!(paths.contains(&p), "{p} missing from {paths:?}");
    }
    let mut mixed = reno();
    mixed["cost_per_100km"] = json!({"amount": 40, "currency": "EUR"});
    let r = app
        .admin
        .put(app.url("/v1/locations/wh-bad"))
        .json(&mixed)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let mut typo = reno();
    typo["shipsto"] = json!(["US"]);
    let r = app
        .admin
        .put(app.url("/v1/locations/wh-bad"))
        .json(&typo)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown fields are refused"
    );
    let r = app
        .admin
        .put(app.url("/v1/locations/bad%20id"))
        .json(&reno())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let staff = client_as(&app.tokens.staff);
    assert_eq!(
        staff
            .get(app.url("/v1/locations/wh-bad"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND,
        "nothing was stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn products_carry_their_fulfilment_attributes() {
    let app = TestApp::spawn().await;
    let body = json!({"name": "Lithium Power Bank", "price": {"amount": 3900, "currency": "USD"}, "hazmat": true, "weight_grams": 310});
    let r = app
        .admin
        .put(app.url("/v1/products/PWR-1"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let p: Value = app
        .client
        .get(app.url("/v1/products/PWR-1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            p["hazmat"].clone(),
            p["cold_chain"].clone(),
            p["weight_grams"].clone()
        ),
        (json!(true), json!(false), json!(310)),
        "{p}"
    );
    let r = app.admin.put(app.url("/v1/products/ICE-1")).json(&json!({"name": "Gelato", "price": {"amount": 900, "currency": "USD"}, "cold_chain": true})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let p: Value = r.json().await.unwrap();
    assert_eq!(
        (
            p["hazmat"].clone(),
            p["cold_chain"].clone(),
            p["weight_grams"].clone()
        ),
        (json!(false), json!(true), Value::Null)
    );
    for (field, value) in [
        ("weight_grams", json!(-1)),
        ("weight_grams", json!(2_000_000)),
        ("hazmat", json!("yes")),
    ] {
        let mut bad = body.clone();
        bad[field] = value.clone();
        let r = app
            .admin
            .put(app.url("/v1/products/PWR-1"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field} = {value}"
        );
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["errors"][0]["path"], field, "{problem}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_rules_are_versioned_audited_and_name_only_known_locations() {
    let app = TestApp::spawn().await;
    let staff = client_as(&app.tokens.staff);
    let none: Value = staff
        .get(app.url("/v1/routing/rules"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (none["version"].clone(), none["rules"].clone()),
        (json!(0), json!([])),
        "{none}"
    );
    let body = json!({"cutoff_penalty": {"amount": 500, "currency": "USD"},
                      "rules": [{"kind": "country_only_from", "country": "CA", "nodes": ["wh-1"]},
                                {"kind": "country_never_from", "country": "us", "nodes": ["store-2"]}]});
    let r = app
        .admin
        .put(app.url("/v1/routing/rules"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v1: Value = r.json().await.unwrap();
    assert_eq!(v1["version"], 1);
    assert_eq!(
        v1["rules"][0],
        json!({"kind": "country_only_from", "country": "CA", "nodes": ["wh-1"]})
    );
    assert_eq!(
        v1["rules"][1]["country"], "US",
        "country codes are normalised"
    );
    let r = app
        .admin
        .put(app.url("/v1/routing/rules"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["version"],
        1,
        "the same rules again (a retried PUT) make no new version"
    );
    let r = app
        .admin
        .put(app.url("/v1/routing/rules"))
        .json(&json!({"cutoff_penalty": {"amount": 0, "currency": "USD"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["version"], 2);
    let now: Value = staff
        .get(app.url("/v1/routing/rules"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (now["version"].clone(), now["rules"].clone()),
        (json!(2), json!([]))
    );
    assert_eq!(
        staff
            .put(app.url("/v1/routing/rules"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );

    let bad = json!({"cutoff_penalty": {"amount": -1, "currency": "USD"},
                     "rules": [{"kind": "country_only_from", "country": "XX", "nodes": ["wh-1"]},
                               {"kind": "sometimes_from", "country": "US", "nodes": ["wh-1"]},
                               {"kind": "country_never_from", "country": "US", "nodes": ["wh-nowhere", "bad id"]}]});
    let r = app
        .admin
        .put(app.url("/v1/routing/rules"))
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = r.json().await.unwrap();
    let paths: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    for p in [
        "cutoff_penalty.amount",
        "rules[0].country",
        "rules[1].kind",
        "rules[2].nodes[1]",
    ] {
        assert!(paths.contains(&p), "{p} missing from {paths:?}");
    }
    let unknown = json!({"cutoff_penalty": {"amount": 0, "currency": "USD"}, "rules": [{"kind": "country_never_from", "country": "US", "nodes": ["wh-nowhere"]}]});
    let r = app
        .admin
        .put(app.url("/v1/routing/rules"))
        .json(&unknown)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(
        problem["errors"][0]["path"], "rules[0].nodes[0]",
        "{problem}"
    );
    assert_eq!(problem["errors"][0]["code"], "unknown_location");
    let after: Value = staff
        .get(app.url("/v1/routing/rules"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after["version"], 2, "refused changes make no version");

    let audit: Value = app
        .admin
        .get(app.url("/v1/audit"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let changes = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "routing_rules.changed")
        .count();
    assert_eq!(changes, 2);
}
