//! Notifications to shoppers over HTTP on the backend under test: confirmation, shipped,
//! delivered and refund emails over real SMTP (a server the test starts, which also fails on
//! purpose) or into the mailbox folder; in-app notifications as server-sent events; Web Push to
//! a local push endpoint that checks VAPID and decrypts; preferences that switch channels off.

use crate::helpers::*;
use crate::lifecycle::{act, pick_pack, ship_body};
use crate::push_receiver::PushSubscriber;
use crate::smtp_server::SmtpServer;
use ordo_server::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

/// A signed-up shopper of the default tenant and their client.
async fn shopper(app: &TestApp, id: &str) -> reqwest::Client {
    app.store
        .upsert_customer(
            &app.tenant,
            id,
            &format!("{id}@example.com"),
            &format!("Shopper {id}"),
            None,
        )
        .await
        .unwrap();
    client_as(&app.token_as(Role::Shopper, id))
}

/// The shopper's order of `qty` × `sku`; its 201 body.
async fn shopper_order(app: &TestApp, client: &reqwest::Client, sku: &str, qty: i64) -> Value {
    let total = quote(app, sku, qty).await;
    let body = json!({"lines": [{"sku": sku, "quantity": qty}], "shipments": [{"address": address()}],
        "payments": [{"token": app.token("4242424242424242").await, "amount": {"amount": total, "currency": "USD"}}]});
    let r = client
        .post(app.url("/v1/orders"))
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

#[tokio::test]
async fn emails_go_out_over_smtp_for_placement_shipment_delivery_and_refund_and_failures_are_retried()
 {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let app = TestApp::spawn_with(|c| c.notify.smtp_url = Some(url)).await;
    app.product("MAIL-1", 1999, 10).await;
    let me = shopper(&app, "cust-mail").await;
    smtp.fail_next(1); // the confirmation's first attempt is refused for now (451)
    let order = shopper_order(&app, &me, "MAIL-1", 2).await;
    let number = order["number"].as_str().unwrap().to_string();
    let mails = smtp.wait_for_mails(1, Duration::from_secs(20)).await;
    assert_eq!(mails.len(), 1, "the confirmation arrives after its retry");
    assert!(smtp.attempts() >= 2);
    let confirmation = &mails[0];
    assert_eq!(confirmation.to, ["cust-mail@example.com"]);
    assert!(
        confirmation.header("Subject").unwrap().contains(&number),
        "{:?}",
        confirmation.header("Subject")
    );
    assert!(
        confirmation.data.contains("multipart/alternative"),
        "text and HTML parts"
    );
    assert!(confirmation.data.contains("text/plain") && confirmation.data.contains("text/html"));
    assert!(confirmation.data.contains("Shopper cust-mail"));
    assert!(
        confirmation.header("Message-ID").is_some(),
        "every email has a Message-ID"
    );
    for part in ["Subtotal", "Shipping", "Tax", "Total"] {
        assert!(
            confirmation.data.contains(part),
            "the confirmation adds up: no {part}"
        );
    }
    // The retry is visible in the record: two attempts, sent (recorded just after the send).
    let id = order["id"].as_str().unwrap();
    let ok = wait_until(10, || async {
        let rows = app
            .store
            .order_notifications(&app.tenant, id)
            .await
            .unwrap();
        rows.iter()
            .any(|n| n.channel == "email" && n.status == "sent")
    })
    .await;
    assert!(ok, "the email is recorded as sent");
    let rows = app
        .store
        .order_notifications(&app.tenant, id)
        .await
        .unwrap();
    let email = rows.iter().find(|n| n.channel == "email").unwrap();
    assert_eq!(
        (email.status.as_str(), email.attempts),
        ("sent", 2),
        "{email:?}"
    );
    assert!(
        email.last_error.as_deref().unwrap_or("").contains("451"),
        "{email:?}"
    );

    // Shipped, then delivered.
    let ful = order["fulfillments"][0]["id"].as_str().unwrap();
    pick_pack(&app, ful).await;
    let (s, v) = act(
        &app,
        &format!("/v1/fulfillments/{ful}/ship"),
        Some(ship_body()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mails = smtp.wait_for_mails(2, Duration::from_secs(20)).await;
    assert!(mails[1].header("Subject").unwrap().contains("on its way"));
    assert!(
        mails[1].data.contains("1Z999AA10123456784"),
        "the tracking number is in the email"
    );
    let (s, _) = act(&app, &format!("/v1/fulfillments/{ful}/deliver"), None).await;
    assert_eq!(s, StatusCode::OK);
    let mails = smtp.wait_for_mails(3, Duration::from_secs(20)).await;
    assert!(mails[2].header("Subject").unwrap().contains("delivered"));

    // A return received: the refund email names the amount.
    let (s, ret) = act(
        &app,
        &format!("/v1/orders/{id}/returns"),
        Some(json!({"lines": [{"sku": "MAIL-1", "quantity": 1, "reason": "too_small"}]})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{ret}");
    let rid = ret["id"].as_str().unwrap();
    let (s, v) = act(&app, &format!("/v1/returns/{rid}/receive"), Some(json!({"location_id": "wh-1", "lines": [{"sku": "MAIL-1", "quantity": 1, "condition": "new"}]}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mails = smtp.wait_for_mails(4, Duration::from_secs(20)).await;
    let subject = mails[3].header("Subject").unwrap();
    assert!(
        subject.contains("refund") && subject.contains("USD"),
        "{subject}"
    );
    assert_eq!(mails.len(), 4, "one email per event, none twice");
}

#[tokio::test]
async fn without_smtp_emails_are_written_to_the_mailbox_folder() {
    let app = TestApp::spawn().await;
    app.product("MAIL-2", 500, 10).await;
    let placed = crate::lifecycle::order_with(
        &app,
        json!([{"sku": "MAIL-2", "quantity": 1}]),
        "4242424242424242",
    )
    .await;
    let number = placed["number"].as_str().unwrap().to_string();
    let dir = app.mailbox.join("default");
    let ok = wait_until(20, || async {
        std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .any(|e| e.path().extension().is_some_and(|x| x == "eml"))
            })
            .unwrap_or(false)
    })
    .await;
    assert!(ok, "a .eml file appears in {}", dir.display());
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .unwrap();
    let text = std::fs::read_to_string(file.path()).unwrap();
    assert!(text.contains(&number), "the confirmation names the order");
    assert!(
        text.contains(&format!("To: {}", guest()["email"].as_str().unwrap()))
            || text.contains(guest()["email"].as_str().unwrap())
    );
}

#[tokio::test]
async fn shoppers_get_in_app_notifications_as_a_stream_and_preferences_switch_channels_off() {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let app = TestApp::spawn_with(|c| c.notify.smtp_url = Some(url)).await;
    app.product("INAPP-1", 800, 10).await;
    let me = shopper(&app, "cust-inapp").await;
    // The live stream, opened before the order.
    let r = me
        .get(app.url("/v1/me/notifications/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut r = r;
    let order = shopper_order(&app, &me, "INAPP-1", 1).await;
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !text.contains("event: ordo.order.placed") {
        let chunk = tokio::time::timeout_at(deadline, r.chunk())
            .await
            .expect("a notification arrives")
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains(order["number"].as_str().unwrap()), "{text}");
    let page: Value = me
        .get(app.url("/v1/me/notifications"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["order_id"], order["id"]);
    assert_eq!(page["next_after"], items[0]["position"]);
    // Resuming after it gives nothing new.
    let again: Value = me
        .get(app.url(&format!(
            "/v1/me/notifications?after={}",
            page["next_after"]
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["items"], json!([]));

    // Preferences: all on, then email off — the next order sends no email but still notifies in-app.
    let prefs: Value = me
        .get(app.url("/v1/me/notification-preferences"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prefs, json!({"email": true, "push": true, "in_app": true}));
    smtp.wait_for_mails(1, Duration::from_secs(20)).await;
    let r = me
        .put(app.url("/v1/me/notification-preferences"))
        .json(&json!({"email": false, "push": true, "in_app": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let second = shopper_order(&app, &me, "INAPP-1", 1).await;
    let ok = wait_until(20, || async {
        let p: Value = me
            .get(app.url("/v1/me/notifications"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        p["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["order_id"] == second["id"])
    })
    .await;
    assert!(ok);
    let rows = app
        .store
        .order_notifications(&app.tenant, second["id"].as_str().unwrap())
        .await
        .unwrap();
    assert!(rows.iter().all(|n| n.channel != "email"), "{rows:?}");
    assert_eq!(smtp.mails().len(), 1);

    // Bad preferences and queries are refused, naming the field; other roles are kept out.
    for (body, field) in [
        (
            json!({"email": "yes", "push": true, "in_app": true}),
            "email",
        ),
        (json!({"email": true, "push": true}), "in_app"),
        (
            json!({"email": true, "push": true, "in_app": true, "sms": true}),
            "sms",
        ),
    ] {
        let r = me
            .put(app.url("/v1/me/notification-preferences"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(problem_paths(&v), [field], "{v}");
    }
    let r = me
        .get(app.url("/v1/me/notifications?limit=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.client
            .get(app.url("/v1/me/notifications"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        client()
            .get(app.url("/v1/me/notifications"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn web_push_messages_are_signed_with_vapid_and_decrypt_at_the_browser() {
    let app = TestApp::spawn().await;
    app.product("PUSH-1", 1200, 10).await;
    let me = shopper(&app, "cust-push").await;
    let browser = PushSubscriber::start().await;
    let key: Value = me
        .get(app.url("/v1/me/push-key"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let public_key = key["public_key"].as_str().unwrap().to_string();
    assert_eq!(public_key.len(), 87, "base64url of a 65-byte point");
    let r = me
        .post(app.url("/v1/me/push-subscriptions"))
        .json(&browser.subscription_json())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let sub: Value = r.json().await.unwrap();
    assert_eq!(sub["endpoint"], browser.endpoint.as_str());
    browser.fail_next(1); // the push service is briefly unavailable: retried
    let order = shopper_order(&app, &me, "PUSH-1", 1).await;
    let messages = browser.wait_for_messages(1, Duration::from_secs(30)).await;
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert!(m.vapid_verified, "{:?}", m.vapid_error);
    assert_eq!(m.vapid_public_key.as_deref(), Some(public_key.as_str()));
    let payload: Value = serde_json::from_slice(&m.plaintext).unwrap();
    assert_eq!(payload["order_id"], order["id"]);
    assert_eq!(payload["event_type"], "ordo.order.placed");
    assert!(
        payload["title"]
            .as_str()
            .unwrap()
            .contains(order["number"].as_str().unwrap())
    );
    assert!(browser.attempts() >= 2);
    assert!(
        browser.rejections().is_empty(),
        "{:?}",
        browser.rejections()
    );

    // A subscription the push service says is gone is forgotten.
    browser.set_gone(true);
    shopper_order(&app, &me, "PUSH-1", 1).await;
    let ok = wait_until(20, || async {
        let l: Value = me
            .get(app.url("/v1/me/push-subscriptions"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        l["items"].as_array().unwrap().is_empty()
    })
    .await;
    assert!(ok, "a 410 from the push service removes the subscription");

    // Bad subscriptions are refused, naming the field.
    let good = browser.subscription_json();
    for (patch, field) in [
        (json!({"endpoint": "ftp://push.example.com/x"}), "endpoint"),
        (
            json!({"keys": {"p256dh": "AAAA", "auth": good["keys"]["auth"]}}),
            "keys.p256dh",
        ),
        (
            json!({"keys": {"p256dh": good["keys"]["p256dh"], "auth": "AAAA"}}),
            "keys.auth",
        ),
    ] {
        let mut body = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = me
            .post(app.url("/v1/me/push-subscriptions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(problem_paths(&v), [field], "{v}");
    }
    let r = me
        .delete(app.url("/v1/me/push-subscriptions/psh_unknown"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
