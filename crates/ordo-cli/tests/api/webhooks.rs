//! Webhooks over HTTP on the backend under test, against a local receiver that verifies every
//! signature: signed deliveries in order per subject, retries that hold back only their own
//! subject, the circuit breaker, dead letters and replays, and the subscription API's refusals.

use crate::events::wait_for_events;
use crate::helpers::*;
use crate::lifecycle::{act, order_with};
use crate::receiver::{Receiver, always_ok};
use ordo_server::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

async fn subscribe(app: &TestApp, receiver: &Receiver, events: Value) -> Value {
    let r = app
        .admin
        .post(app.url("/v1/webhooks"))
        .json(&json!({"url": receiver.url, "events": events}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let hook: Value = r.json().await.unwrap();
    assert_eq!(
        location,
        format!("/v1/webhooks/{}", hook["id"].as_str().unwrap())
    );
    receiver.set_secret(hook["secret"].as_str().unwrap());
    hook
}

async fn wait_accepted(receiver: &Receiver, n: usize, secs: u64) -> Vec<crate::receiver::Received> {
    let ok = wait_until(secs, || async { receiver.accepted().len() >= n }).await;
    let got = receiver.accepted();
    assert!(
        ok,
        "{n} deliveries expected, {} accepted: {:?}",
        got.len(),
        receiver.received()
    );
    got
}

async fn deliveries(app: &TestApp, hook: &str, query: &str) -> Value {
    let r = app
        .admin
        .get(app.url(&format!("/v1/webhooks/{hook}/deliveries?{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

#[tokio::test]
async fn deliveries_are_signed_ordered_per_subject_and_a_failure_holds_back_only_its_subject() {
    let app = TestApp::spawn().await;
    app.product("WH-1", 1000, 50).await;
    // The first order's placement fails twice before it is accepted.
    let slow = Arc::new(std::sync::Mutex::new(String::new()));
    let s2 = slow.clone();
    let receiver = Receiver::start(Arc::new(move |e: &Value, n| {
        let slow = s2.lock().unwrap();
        if e["subject"] == slow.as_str() && e["type"] == "ordo.order.placed" && n <= 2 {
            503
        } else {
            200
        }
    }))
    .await;
    let hook = subscribe(
        &app,
        &receiver,
        json!(["ordo.order.placed", "ordo.fulfillment.picked"]),
    )
    .await;
    assert!(hook["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(hook["circuit"], "closed");

    let x = order_with(
        &app,
        json!([{"sku": "WH-1", "quantity": 1}]),
        "4242424242424242",
    )
    .await;
    let xid = x["id"].as_str().unwrap().to_string();
    *slow.lock().unwrap() = xid.clone();
    let y = order_with(
        &app,
        json!([{"sku": "WH-1", "quantity": 2}]),
        "4242424242424242",
    )
    .await;
    let yid = y["id"].as_str().unwrap().to_string();
    for o in [&x, &y] {
        let ful = o["fulfillments"][0]["id"].as_str().unwrap();
        let (s, v) = act(&app, &format!("/v1/fulfillments/{ful}/pick"), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    // An adjustment is not subscribed to: never delivered.
    let r = app
        .adjust(&json!({"sku": "WH-1", "location_id": "wh-1", "delta": 1, "reason": "receipt"}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    let accepted = wait_accepted(&receiver, 4, 20).await;
    let all = receiver.received();
    assert!(all.iter().all(|r| r.verified), "every signature verifies");
    let kinds = |id: &str| -> Vec<String> {
        accepted
            .iter()
            .filter(|r| r.body["subject"] == id)
            .map(|r| r.body["type"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        kinds(&xid),
        ["ordo.order.placed", "ordo.fulfillment.picked"]
    );
    assert_eq!(
        kinds(&yid),
        ["ordo.order.placed", "ordo.fulfillment.picked"]
    );
    assert_eq!(accepted.len(), 4, "{accepted:?}");
    for r in &accepted {
        assert_eq!(
            r.id,
            r.body["id"].as_str().unwrap(),
            "Ordo-Webhook-Id is the CloudEvent's id"
        );
    }
    // X's picked event waited for X's placement; Y's events did not wait for X.
    let at = |id: &str, kind: &str| {
        accepted
            .iter()
            .find(|r| r.body["subject"] == id && r.body["type"] == kind)
            .unwrap()
            .at
    };
    assert!(
        at(&yid, "ordo.fulfillment.picked") < at(&xid, "ordo.order.placed"),
        "Y is not held back by X's failures"
    );
    let x_attempts: Vec<&crate::receiver::Received> = all
        .iter()
        .filter(|r| r.body["subject"] == xid.as_str() && r.body["type"] == "ordo.order.placed")
        .collect();
    assert_eq!(
        x_attempts.iter().map(|r| r.status).collect::<Vec<_>>(),
        [503, 503, 200]
    );
    let first_retry = x_attempts[1].at - x_attempts[0].at;
    assert!(
        first_retry <= Duration::from_millis(2500),
        "first retry within 2 s: {first_retry:?}"
    );

    // The deliveries API shows the attempts.
    let page = deliveries(&app, hook["id"].as_str().unwrap(), "").await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{page}");
    let xd = items
        .iter()
        .find(|d| d["subject"] == xid.as_str() && d["event_type"] == "ordo.order.placed")
        .unwrap();
    assert_eq!(xd["status"], "delivered");
    let codes: Vec<i64> = xd["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [503, 503, 200]);
    assert!(xd["attempts"][0]["error"].as_str().unwrap().contains("503"));
    // Paging: two at a time, newest first, nothing repeated.
    let p1 = deliveries(&app, hook["id"].as_str().unwrap(), "limit=2").await;
    let cursor = p1["next_cursor"].as_str().unwrap().to_string();
    let p2 = deliveries(
        &app,
        hook["id"].as_str().unwrap(),
        &format!("limit=2&cursor={cursor}"),
    )
    .await;
    let mut ids: Vec<&str> = p1["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(p2["items"].as_array().unwrap())
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 4);
    assert_eq!(p2["next_cursor"], Value::Null);
}

#[tokio::test]
async fn a_failing_endpoint_opens_its_circuit_dead_letters_can_be_replayed() {
    let app = TestApp::spawn_with(|c| {
        c.events.webhook_retry_window = Duration::from_secs(3);
        c.events.webhook_breaker_open = Duration::from_millis(500);
    })
    .await;
    app.product("WH-2", 1000, 50).await;
    let receiver = Receiver::start(Arc::new(|_, _| 500)).await;
    let hook = subscribe(&app, &receiver, json!(["ordo.order.placed"])).await;
    let id = hook["id"].as_str().unwrap().to_string();
    let placed = order_with(
        &app,
        json!([{"sku": "WH-2", "quantity": 1}]),
        "4242424242424242",
    )
    .await;
    let oid = placed["id"].as_str().unwrap().to_string();
    wait_for_events(&app, "ordo.order.placed", 1).await;
    // Retries run out within the window: a dead letter.
    let dead = wait_until(20, || async {
        deliveries(&app, &id, "status=dead").await["items"]
            .as_array()
            .unwrap()
            .len()
            == 1
    })
    .await;
    assert!(dead, "{}", deliveries(&app, &id, "").await);
    let page = deliveries(&app, &id, "status=dead").await;
    let d = &page["items"][0];
    assert_eq!(d["subject"], oid.as_str());
    let attempts = d["attempts"].as_array().unwrap().len();
    assert!(attempts >= 2, "retried before giving up: {d}");
    assert!(
        receiver
            .received()
            .iter()
            .all(|r| r.status == 500 && r.verified)
    );
    // The failures opened the circuit at some point (5 in a row across its deliveries) or the
    // webhook reports them.
    let w: Value = app
        .admin
        .get(app.url(&format!("/v1/webhooks/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        w["consecutive_failures"].as_i64().unwrap() >= attempts as i64,
        "{w}"
    );

    // The endpoint recovers; the dead letter is replayed and delivered.
    receiver.set_policy(always_ok());
    let r = app
        .admin
        .post(app.url(&format!(
            "/v1/webhooks/{id}/deliveries/{}/replay",
            d["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let replayed: Value = r.json().await.unwrap();
    assert_eq!(replayed["status"], "pending");
    let accepted = wait_accepted(&receiver, 1, 20).await;
    assert_eq!(accepted[0].body["subject"], oid.as_str());
    let ok = wait_until(10, || async {
        deliveries(&app, &id, "status=delivered").await["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == d["id"])
    })
    .await;
    assert!(ok);
    let w: Value = app
        .admin
        .get(app.url(&format!("/v1/webhooks/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        w["consecutive_failures"], 0,
        "a success closes the circuit: {w}"
    );
    assert_eq!(w["circuit"], "closed");
}

#[tokio::test]
async fn the_circuit_opens_after_five_failures_in_a_row() {
    let app = TestApp::spawn_with(|c| {
        c.events.webhook_breaker_open = Duration::from_secs(60);
    })
    .await;
    app.product("WH-3", 1000, 50).await;
    let receiver = Receiver::start(Arc::new(|_, _| 500)).await;
    let hook = subscribe(&app, &receiver, json!(["ordo.order.placed"])).await;
    let id = hook["id"].as_str().unwrap().to_string();
    for _ in 0..6 {
        order_with(
            &app,
            json!([{"sku": "WH-3", "quantity": 1}]),
            "4242424242424242",
        )
        .await;
    }
    let open = wait_until(20, || async {
        let w: Value = app
            .admin
            .get(app.url(&format!("/v1/webhooks/{id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        w["circuit"] == "open"
    })
    .await;
    assert!(open);
    // While open, nothing more is sent.
    let before = receiver.received().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        receiver.received().len(),
        before,
        "no attempts while the circuit is open"
    );
    assert!(before >= 5);
}

#[tokio::test]
async fn subscriptions_are_checked_listed_deleted_and_idempotent() {
    let app = TestApp::spawn_with(|c| c.webhooks_allow_private = false).await;
    let post = |body: Value| app.admin.post(app.url("/v1/webhooks")).json(&body).send();
    for (body, field) in [
        (
            json!({"url": "ftp://example.com/x", "events": ["*"]}),
            "url",
        ),
        (
            json!({"url": "http://127.0.0.1:9/x", "events": ["*"]}),
            "url",
        ),
        (json!({"url": "http://10.0.0.8/x", "events": ["*"]}), "url"),
        (
            json!({"url": "http://169.254.169.254/latest", "events": ["*"]}),
            "url",
        ),
        (json!({"url": "http://[::1]/x", "events": ["*"]}), "url"),
        (
            json!({"url": "https://user:pw@93.184.216.34/x", "events": ["*"]}),
            "url",
        ),
        (
            json!({"url": "https://93.184.216.34/x", "events": []}),
            "events",
        ),
        (
            json!({"url": "https://93.184.216.34/x", "events": ["ordo.order.teleported"]}),
            "events",
        ),
        (
            json!({"url": "https://93.184.216.34/x", "events": ["*"], "secret": "short"}),
            "secret",
        ),
        (
            json!({"url": "https://93.184.216.34/x", "events": ["*"], "secrett": "x"}),
            "secrett",
        ),
    ] {
        let r = post(body.clone()).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(problem_paths(&v), [field], "{body}: {v}");
    }
    // A public address is accepted (nothing is sent until an event arrives).
    let body = json!({"url": "https://93.184.216.34/ordo", "events": ["ordo.order.placed"], "secret": "s3cret-s3cret-s3cret"});
    let send = || {
        app.admin
            .post(app.url("/v1/webhooks"))
            .header("Idempotency-Key", "hook-1")
            .json(&body)
            .send()
    };
    let first: Value = send().await.unwrap().json().await.unwrap();
    let again = send().await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["id"], again["id"], "the same key creates one webhook");
    assert_eq!(again["secret"], "s3cret-s3cret-s3cret");
    let id = first["id"].as_str().unwrap();
    let list: Value = app
        .admin
        .get(app.url("/v1/webhooks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(
        list["items"][0].get("secret").is_none(),
        "the secret is shown only at creation"
    );
    for (query, field) in [
        ("limit=0", "limit"),
        ("cursor=x", "cursor"),
        ("status=lost", "status"),
    ] {
        let r = app
            .admin
            .get(app.url(&format!("/v1/webhooks/{id}/deliveries?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(problem_paths(&v), [field], "{query}: {v}");
    }
    let r = app
        .admin
        .post(app.url(&format!("/v1/webhooks/{id}/deliveries/dlv_nope/replay")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Staff and the app may not manage webhooks; anonymous callers are asked to authenticate.
    for role in [Role::Staff, Role::App] {
        let r = client_as(&app.token_as(role, "x"))
            .get(app.url("/v1/webhooks"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(
        client()
            .get(app.url("/v1/webhooks"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let r = app
        .admin
        .delete(app.url(&format!("/v1/webhooks/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    for path in [
        format!("/v1/webhooks/{id}"),
        format!("/v1/webhooks/{id}/deliveries"),
    ] {
        assert_eq!(
            app.admin.get(app.url(&path)).send().await.unwrap().status(),
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(
        app.admin
            .delete(app.url(&format!("/v1/webhooks/{id}")))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn redirects_are_not_followed_and_private_addresses_are_refused_at_delivery_too() {
    // A server that allows no private address; a subscription that points at one anyway (made
    // before the rule, or by a name that resolved elsewhere then): every attempt is refused
    // before anything is sent.
    let app = TestApp::spawn_with(|c| {
        c.webhooks_allow_private = false;
        c.events.webhook_retry_window = Duration::from_secs(2);
    })
    .await;
    app.product("WH-4", 1000, 50).await;
    let private = Receiver::start(always_ok()).await;
    app.store
        .create_webhook(
            &app.tenant,
            "whk_private",
            &private.url,
            &["ordo.order.placed".to_string()],
            "s3cret-s3cret-s3cret",
            None,
        )
        .await
        .unwrap();
    // An endpoint that redirects (allowed here only to show the redirect is not followed).
    let redirecting =
        TestApp::spawn_with(|c| c.events.webhook_retry_window = Duration::from_secs(2)).await;
    redirecting.product("WH-4", 1000, 50).await;
    let receiver = Receiver::start(Arc::new(|_, _| 302)).await;
    let hook = subscribe(&redirecting, &receiver, json!(["ordo.order.placed"])).await;
    order_with(
        &app,
        json!([{"sku": "WH-4", "quantity": 1}]),
        "4242424242424242",
    )
    .await;
    order_with(
        &redirecting,
        json!([{"sku": "WH-4", "quantity": 1}]),
        "4242424242424242",
    )
    .await;

    let dead = wait_until(20, || async {
        deliveries(&app, "whk_private", "status=dead").await["items"]
            .as_array()
            .unwrap()
            .len()
            == 1
    })
    .await;
    assert!(dead, "{}", deliveries(&app, "whk_private", "").await);
    assert!(
        private.received().is_empty(),
        "nothing reached the private address"
    );
    let d = &deliveries(&app, "whk_private", "").await["items"][0];
    assert!(
        d["attempts"][0]["error"]
            .as_str()
            .unwrap()
            .contains("public"),
        "{d}"
    );
    assert_eq!(d["attempts"][0]["status_code"], Value::Null);

    let id = hook["id"].as_str().unwrap();
    let dead = wait_until(20, || async {
        deliveries(&redirecting, id, "status=dead").await["items"]
            .as_array()
            .unwrap()
            .len()
            == 1
    })
    .await;
    assert!(dead);
    let d = &deliveries(&redirecting, id, "").await["items"][0];
    assert_eq!(d["attempts"][0]["status_code"], 302);
    assert!(
        d["attempts"][0]["error"]
            .as_str()
            .unwrap()
            .contains("redirect"),
        "{d}"
    );
}

#[tokio::test]
async fn the_log_and_finished_deliveries_are_pruned_after_the_retention() {
    let app = TestApp::spawn_with(|c| {
        c.events.retention = Duration::from_millis(1);
        c.events.prune_every = Duration::from_millis(300);
    })
    .await;
    app.product("WH-5", 1000, 50).await;
    let receiver = Receiver::start(always_ok()).await;
    let hook = subscribe(&app, &receiver, json!(["ordo.order.placed"])).await;
    let id = hook["id"].as_str().unwrap().to_string();
    order_with(
        &app,
        json!([{"sku": "WH-5", "quantity": 1}]),
        "4242424242424242",
    )
    .await;
    wait_accepted(&receiver, 1, 20).await;
    // Delivered and past the retention: the log and the delivery history empty out.
    let pruned = wait_until(20, || async {
        let log: Value = app
            .admin
            .get(app.url("/v1/events?limit=1000"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let d = deliveries(&app, &id, "").await;
        log["items"].as_array().unwrap().is_empty() && d["items"].as_array().unwrap().is_empty()
    })
    .await;
    assert!(
        pruned,
        "published events and finished deliveries are pruned"
    );
    assert_eq!(receiver.accepted().len(), 1, "pruning re-sends nothing");
}
