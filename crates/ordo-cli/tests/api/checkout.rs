use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn cart(app: &TestApp, body: Value) -> Value {
    let r = app.post("/v1/carts", &body).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

#[tokio::test]
async fn cart_sync_reconciles_and_explains_every_change() {
    let app = TestApp::spawn().await;
    app.product("A", 1000, 3).await;
    app.product("B", 2500, 0).await;
    app.store
        .upsert_promotion(
            &app.tenant,
            &ordo_domain::promotion::Promotion::new(
                "TEN",
                ordo_domain::promotion::PromotionKind::Percent { bps: 1000 },
            ),
        )
        .await
        .unwrap();
    let c = cart(&app, json!({"lines": [{"sku": "A", "quantity": 5}, {"sku": "B", "quantity": 1}, {"sku": "GHOST", "quantity": 1}], "promo_codes": ["ten", "NOPE"]})).await;
    assert_eq!(c["lines"].as_array().unwrap().len(), 1);
    assert_eq!(c["lines"][0]["quantity"], 3);
    assert_eq!(c["lines"][0]["available"], 3);
    assert_eq!(c["totals"]["subtotal"]["amount"], 3000);
    assert_eq!(c["totals"]["discount"]["amount"], 300);
    let types: Vec<&str> = c["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "quantity_limited",
            "line_removed",
            "line_removed",
            "promo_rejected"
        ]
    );
    assert_eq!(c["changes"][3]["reason"], "unknown_code");
    let id = c["id"].as_str().unwrap();

    // The price moves: the next read says so, with old and new price.
    app.put(
        "/v1/products/A",
        &json!({"name": "A", "price": {"amount": 1200, "currency": "USD"}}),
    )
    .await;
    let g: Value = app
        .get(&format!("/v1/carts/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(g["changes"][0]["type"], "price_changed");
    assert_eq!(g["changes"][0]["old_unit_price"]["amount"], 1000);
    assert_eq!(g["changes"][0]["new_unit_price"]["amount"], 1200);
    assert_eq!(g["totals"]["subtotal"]["amount"], 3600);

    // Syncing accepts the new price; the change is reported once, then the cart is clean.
    let s: Value = app
        .put(
            &format!("/v1/carts/{id}"),
            &json!({"lines": [{"sku": "A", "quantity": 2}], "promo_codes": ["TEN"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(s["changes"][0]["type"], "price_changed");
    let g: Value = app
        .get(&format!("/v1/carts/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(g["changes"].as_array().unwrap().len(), 0, "{g}");
    assert_eq!(g["lines"][0]["quantity"], 2);
    assert_eq!(g["promo_codes"], json!(["TEN"]));

    assert_eq!(
        app.get("/v1/carts/cart_0193aaaaaaaaaaaaaaaaaaaaaaaaaaaa")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/v1/carts/nonsense").await.status(),
        StatusCode::NOT_FOUND
    );
    let r = app.put("/v1/carts/nonsense", &json!({"lines": []})).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn guest_checkout_with_split_shipments_and_split_payment() {
    let app = TestApp::spawn().await;
    app.product("A", 1000, 10).await;
    app.product("B", 2500, 10).await;
    let de = json!({"name": "Max", "line1": "Hauptstr. 1", "city": "Berlin", "postal_code": "10115", "country": "DE", "phone": "+4930123456"});
    let c = cart(
        &app,
        json!({
            "lines": [{"sku": "A", "quantity": 3}, {"sku": "B", "quantity": 1}],
            "customer": guest(),
            "shipments": [
                {"address": address(), "lines": [{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 1}]},
                {"address": de, "lines": [{"sku": "A", "quantity": 1}]}
            ]
        }),
    )
    .await;
    assert_eq!(c["changes"].as_array().unwrap().len(), 0, "{c}");
    let total = c["totals"]["total"]["amount"].as_i64().unwrap();
    // 2×A + B to CA (7.25 %), 1×A to DE (19 %), 5.99 shipping each.
    assert_eq!(c["totals"]["shipping"]["amount"], 1198);
    assert_eq!(c["totals"]["tax"]["amount"], 370 + 304);
    assert_eq!(total, 5500 + 1198 + 674);

    let t1 = app.token("4242424242424242").await;
    let t2 = app.token("5555555555554444").await;
    let body = json!({
        "cart_id": c["id"],
        "payments": [
            {"token": t1, "amount": {"amount": 5000, "currency": "USD"}},
            {"token": t2, "amount": {"amount": total - 5000, "currency": "USD"}}
        ],
        "expected_total": {"amount": total, "currency": "USD"}
    });
    let (s, order) = app.place("split-1", &body).await;
    assert_eq!(s, StatusCode::CREATED, "{order}");
    let number = order["number"].as_str().unwrap();
    assert!(number.starts_with("ORD-") && number.len() == 13, "{number}");
    assert!(order["id"].as_str().unwrap().starts_with("ord_"));
    assert_eq!(order["status"], "allocated");
    assert_eq!(order["payments"].as_array().unwrap().len(), 2);
    assert_eq!(order["payments"][1]["brand"], "mastercard");
    assert_eq!(order["payments"][1]["last4"], "4444");
    assert_eq!(order["shipments"].as_array().unwrap().len(), 2);
    assert_eq!(order["totals"]["total"]["amount"], total);

    // Readable by id and by number, identical.
    let by_id: Value = app
        .get(&format!("/v1/orders/{}", order["id"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    let by_number: Value = app
        .get(&format!("/v1/orders/{number}"))
        .await
        .json()
        .await
        .unwrap();
    let mut order = order;
    assert!(
        order
            .as_object_mut()
            .unwrap()
            .remove("guest_token")
            .is_some(),
        "a guest order placed by the app carries its guest token"
    );
    assert_eq!(by_id, order);
    assert_eq!(by_number, order);
    assert_eq!(app.inventory("A").await["reserved"], 3);
    assert_eq!(app.inventory("B").await["reserved"], 1);
    assert_eq!(
        app.store
            .outbox_count(&app.tenant, "ordo.order.placed")
            .await
            .unwrap(),
        1
    );

    // Same key, same body: the same order, not a second one.
    let (s2, mut again) = app.place("split-1", &body).await;
    assert_eq!(s2, StatusCode::CREATED);
    assert!(
        again
            .as_object_mut()
            .unwrap()
            .remove("guest_token")
            .is_some(),
        "a replay carries a fresh guest token"
    );
    assert_eq!(again, order);
    assert_eq!(app.store.count_orders(&app.tenant).await.unwrap(), 1);
    assert_eq!(app.inventory("A").await["reserved"], 3);

    // Same key, different body: refused.
    let mut other = body.clone();
    other["expected_total"]["amount"] = json!(1);
    let (s3, p) = app.place("split-1", &other).await;
    assert_eq!(s3, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(problem_paths(&p), ["Idempotency-Key"]);

    // A used token cannot pay again under a new key.
    let (s4, p) = app.place("split-2", &body).await;
    assert_eq!(s4, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert!(problem_paths(&p).contains(&"payments[0].token".to_string()));
}

#[tokio::test]
async fn tenders_must_sum_to_the_total_and_a_decline_places_nothing() {
    let app = TestApp::spawn().await;
    app.product("A", 1000, 5).await;
    let total = quote(&app, "A", 2).await;
    let ok = app.token("4242424242424242").await;
    let declined = app.token("4000000000000002").await;
    let poor = app.token("4000000000009995").await;

    let mut body = inline_order("A", 2, &ok, total - 1);
    body["payments"] = json!([]);
    let (s, p) = app.place("none-1", &body).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem_paths(&p), ["payments"]);
    body["payments"] = json!([{"token": ok, "amount": {"amount": total - 1, "currency": "USD"}}]);
    let (s, p) = app.place("sum-1", &body).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(p["errors"][0]["code"], "sum_mismatch");

    body["payments"] = json!([
        {"token": ok, "amount": {"amount": 1000, "currency": "USD"}},
        {"token": declined, "amount": {"amount": total - 1000, "currency": "USD"}}
    ]);
    let (s, p) = app.place("decl-1", &body).await;
    assert_eq!(s, StatusCode::PAYMENT_REQUIRED, "{p}");
    assert_eq!(p["payment"]["tender"], 1);
    assert_eq!(p["payment"]["reason"], "card_declined");
    assert_eq!(app.inventory("A").await["reserved"], 0);
    assert_eq!(app.store.count_orders(&app.tenant).await.unwrap(), 0);

    body["payments"] = json!([{"token": poor, "amount": {"amount": total, "currency": "USD"}}]);
    let (s, p) = app.place("decl-2", &body).await;
    assert_eq!(s, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(p["payment"]["reason"], "insufficient_funds");

    // The approved token was not consumed by the failed attempts.
    let (s, p) = app.place("ok-1", &inline_order("A", 2, &ok, total)).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
}

#[tokio::test]
async fn changed_stock_price_or_total_is_a_409_with_differences() {
    let app = TestApp::spawn().await;
    app.product("A", 1000, 5).await;
    let c = cart(&app, json!({"lines": [{"sku": "A", "quantity": 4}], "customer": guest(), "shipments": [{"address": address()}]})).await;
    let total = c["totals"]["total"]["amount"].as_i64().unwrap();
    let token = app.token("4242424242424242").await;
    let body = json!({"cart_id": c["id"], "payments": [{"token": token, "amount": {"amount": total, "currency": "USD"}}]});

    // Price moved after the cart was quoted.
    app.put(
        "/v1/products/A",
        &json!({"name": "A", "price": {"amount": 1100, "currency": "USD"}}),
    )
    .await;
    let (s, p) = app.place("chg-1", &body).await;
    assert_eq!(s, StatusCode::CONFLICT, "{p}");
    assert_eq!(p["differences"][0]["type"], "price_changed");
    assert_eq!(p["differences"][0]["new_unit_price"]["amount"], 1100);

    // Back to the old price, but stock dropped below the cart's quantity.
    app.put(
        "/v1/products/A",
        &json!({"name": "A", "price": {"amount": 1000, "currency": "USD"}}),
    )
    .await;
    app.set_stock("A", "wh-1", 3).await;
    let (s, p) = app.place("chg-2", &body).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(
        p["differences"][0],
        json!({"type": "quantity_limited", "sku": "A", "requested": 4, "available": 3})
    );

    // Expected total differs from the real one.
    app.set_stock("A", "wh-1", 5).await;
    let mut b = body.clone();
    b["expected_total"] = json!({"amount": total + 1, "currency": "USD"});
    let (s, p) = app.place("chg-3", &b).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(p["differences"][0]["type"], "total_changed");

    // Nothing was reserved by any refused attempt; the unchanged request now succeeds.
    assert_eq!(app.inventory("A").await["reserved"], 0);
    let (s, p) = app.place("chg-4", &body).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
}

#[tokio::test]
async fn promotions_in_checkout_respect_limits() {
    let app = TestApp::spawn().await;
    app.product("A", 10_000, 100).await;
    let usd = |a| ordo_domain::Money::new(a, ordo_domain::Currency::parse("USD").unwrap());
    let mut p = ordo_domain::promotion::Promotion::new(
        "ONCE",
        ordo_domain::promotion::PromotionKind::Fixed { amount: usd(1000) },
    );
    p.min_subtotal = Some(usd(5000));
    p.usage_limit = Some(2);
    p.per_customer_limit = Some(1);
    app.store.upsert_promotion(&app.tenant, &p).await.unwrap();
    p.code = "SHIPFREE".into();
    p.kind = ordo_domain::promotion::PromotionKind::FreeShipping;
    p.usage_limit = None;
    p.per_customer_limit = None;
    app.store.upsert_promotion(&app.tenant, &p).await.unwrap();

    let order_for = |email: &str, token: &str, total: i64| {
        json!({
            "lines": [{"sku": "A", "quantity": 1}], "promo_codes": ["once", "shipfree"],
            "customer": {"email": email, "phone": "+14155550100", "name": "X"},
            "shipments": [{"address": address()}],
            "payments": [{"token": token, "amount": {"amount": total, "currency": "USD"}}]
        })
    };
    // 10 000 − 1 000 discount, free shipping, CA tax 7.25 % of 9 000 = 652.5 → 653.
    let total = 9000 + 653;
    let t = app.token("4242424242424242").await;
    let (s, o) = app
        .place("p-1", &order_for("a@example.com", &t, total))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    assert_eq!(o["totals"]["discount"]["amount"], 1000);
    assert_eq!(o["totals"]["shipping"]["amount"], 0);

    // Same customer again: the per-customer limit rejects the code → the total differs → 409.
    let t = app.token("4242424242424242").await;
    let (s, p) = app
        .place("p-2", &order_for("A@example.com", &t, total))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{p}");
    assert_eq!(p["differences"][0]["reason"], "customer_limit_reached");

    let t = app.token("4242424242424242").await;
    let (s, _) = app
        .place("p-3", &order_for("b@example.com", &t, total))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // The code's usage limit (2) is reached.
    let t = app.token("4242424242424242").await;
    let (s, p) = app
        .place("p-4", &order_for("c@example.com", &t, total))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(p["differences"][0]["reason"], "usage_limit_reached");
}

#[tokio::test]
async fn member_checkout_and_card_data_never_stored() {
    let app = TestApp::spawn().await;
    app.product("A", 1000, 5).await;
    app.store
        .upsert_customer(&app.tenant, "cus_1", "m@example.com", "Mia", None)
        .await
        .unwrap();
    let total = quote(&app, "A", 1).await;
    let r = app.post("/v1/payment-tokens", &json!({"number": "4000 0566 5566 5556", "exp_month": "7", "exp_year": 31, "cvc": "987"})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let tok: Value = r.json().await.unwrap();
    assert_eq!(tok["last4"], "5556");
    assert_eq!(tok["exp_year"], 2031);
    let mut body = inline_order("A", 1, tok["token"].as_str().unwrap(), total);
    body["customer"] = json!({"customer_id": "cus_1"});
    // The app's own token cannot order in a member's name; the member's token can.
    let (s, p) = app.place("m-0", &body).await;
    assert_eq!(
        (s, p["errors"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("sign_in_required"))
    );
    let mia = client_as(&app.token_as(ordo_server::auth::Role::Shopper, "cus_1"));
    let (s, o) = place_at(&mia, &app.base, "m-1", &body).await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    assert_eq!(o["customer"]["kind"], "member");
    assert_eq!(o["customer"]["email"], "m@example.com");

    body["customer"] = json!({"customer_id": "cus_nobody"});
    let (s, p) = place_at(&mia, &app.base, "m-2", &body).await;
    assert_eq!(
        (s, p["errors"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("not_you"))
    );
    assert_eq!(problem_paths(&p), ["customer.customer_id"]);
    let nobody = client_as(&app.token_as(ordo_server::auth::Role::Shopper, "cus_nobody"));
    let (s, p) = place_at(&nobody, &app.base, "m-3", &body).await;
    assert_eq!(
        (s, p["errors"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_customer"))
    );

    // The card number and CVC are nowhere on disk (embedded backend: scan every file).
    if let ordo_store::StorageConfig::Sqlite { data_dir } = &app.storage {
        app.store.close().await;
        for entry in std::fs::read_dir(data_dir).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            let hay = String::from_utf8_lossy(&bytes);
            assert!(
                !hay.contains("4000056655665556"),
                "card number found on disk"
            );
            assert!(
                !hay.contains("4000 0566 5566 5556"),
                "card number found on disk"
            );
        }
    }
}

#[tokio::test]
async fn card_validation_names_the_field_without_echoing_the_number() {
    let app = TestApp::spawn().await;
    for (body, path) in [
        (
            json!({"number": "4242424242424241", "exp_month": 12, "exp_year": 2031, "cvc": "123"}),
            "number",
        ),
        (
            json!({"number": "4242424242424242", "exp_month": 13, "exp_year": 2031, "cvc": "123"}),
            "exp_month",
        ),
        (
            json!({"number": "4242424242424242", "exp_month": 1, "exp_year": 2020, "cvc": "123"}),
            "exp_year",
        ),
        (
            json!({"number": "4242424242424242", "exp_month": 1, "exp_year": 2031, "cvc": "12"}),
            "cvc",
        ),
        (
            json!({"number": "4242424242424242", "exp_month": 1, "exp_year": 2031}),
            "cvc",
        ),
        (
            json!({"number": ["4242424242424241"], "exp_month": 1, "exp_year": 2031, "cvc": "123"}),
            "number",
        ),
    ] {
        let r = app.post("/v1/payment-tokens", &body).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let text = r.text().await.unwrap();
        assert!(
            !text.contains("424242424242424"),
            "the number is echoed: {text}"
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(
            problem_paths(&v).contains(&path.to_string()),
            "{body} → {v}"
        );
    }
}

#[tokio::test]
async fn confirming_the_new_total_accepts_the_changes() {
    let app = TestApp::spawn().await;
    app.product("A", 1000, 5).await;
    let c = cart(&app, json!({"lines": [{"sku": "A", "quantity": 2}], "customer": guest(), "shipments": [{"address": address()}]})).await;
    let old_total = c["totals"]["total"].clone();
    let token = app.token("4242424242424242").await;
    app.put(
        "/v1/products/A",
        &json!({"name": "A", "price": {"amount": 1200, "currency": "USD"}}),
    )
    .await;
    let body = |total: &Value| json!({"cart_id": c["id"], "payments": [{"token": token, "amount": total}], "expected_total": total});
    let (s, p) = app.place("confirm-1", &body(&old_total)).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let kinds: Vec<&str> = p["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["price_changed", "total_changed"]);
    // The app shows the new cart; the shopper confirms its total.
    let now: Value = app
        .get(&format!("/v1/carts/{}", c["id"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    let new_total = now["totals"]["total"].clone();
    assert_ne!(new_total, old_total);
    let (s, o) = app.place("confirm-2", &body(&new_total)).await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    assert_eq!(o["lines"][0]["unit_price"]["amount"], 1200);
    assert_eq!(o["totals"]["total"], new_total);
}

#[tokio::test]
async fn a_cart_becomes_an_order_once() {
    let app = TestApp::spawn().await;
    app.product("A", 1000, 10).await;
    let c = cart(&app, json!({"lines": [{"sku": "A", "quantity": 1}], "customer": guest(), "shipments": [{"address": address()}]})).await;
    let total = c["totals"]["total"].clone();
    let body =
        |token: &str| json!({"cart_id": c["id"], "payments": [{"token": token, "amount": total}]});
    let (s, first) = app
        .place("cart-once-1", &body(&app.token("4242424242424242").await))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    // The app lost the key and makes a new one: no second order from the same cart.
    let (s, p) = app
        .place("cart-once-2", &body(&app.token("4242424242424242").await))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{p}");
    assert_eq!(p["differences"][0]["type"], "cart_already_ordered");
    assert_eq!(app.store.count_orders(&app.tenant).await.unwrap(), 1);
    assert_eq!(app.inventory("A").await["reserved"], 1);
}

#[tokio::test]
async fn buy_two_tees_get_the_cheapest_free() {
    let app = TestApp::spawn().await;
    for (sku, price) in [
        ("TEE-CREW", 1900),
        ("TEE-VNECK", 2200),
        ("TEE-POCKET", 2500),
        ("MUG-1", 1400),
    ] {
        app.product(sku, price, 10).await;
    }
    let tees = ordo_domain::promotion::BuyXGetY::new(2, 1, vec!["TEE-".into()]).unwrap();
    let promo = ordo_domain::promotion::Promotion::new(
        "TEES3FOR2",
        ordo_domain::promotion::PromotionKind::BuyXGetY(tees),
    );
    app.store
        .upsert_promotion(&app.tenant, &promo)
        .await
        .unwrap();

    // Three tees and a mug: the cheapest tee is free; the mug is cheaper but not eligible.
    let c = cart(
        &app,
        json!({
            "lines": [{"sku": "TEE-CREW", "quantity": 1}, {"sku": "TEE-VNECK", "quantity": 1}, {"sku": "TEE-POCKET", "quantity": 1}, {"sku": "MUG-1", "quantity": 1}],
            "promo_codes": ["tees3for2"],
            "customer": guest(),
            "shipments": [{"address": address()}]
        }),
    )
    .await;
    assert_eq!(c["changes"].as_array().unwrap().len(), 0, "{c}");
    assert_eq!(c["promo_codes"], json!(["TEES3FOR2"]));
    assert_eq!(
        c["promotions"][0],
        json!({"code": "TEES3FOR2", "kind": "buy_x_get_y", "amount": {"amount": 1900, "currency": "USD"}})
    );
    assert_eq!(c["totals"]["subtotal"]["amount"], 8000);
    assert_eq!(c["totals"]["discount"]["amount"], 1900);
    // CA 7.25 % of (8 000 − 1 900 + 5.99 shipping) = 485.68 → 486.
    assert_eq!(c["totals"]["tax"]["amount"], 486);
    let total = c["totals"]["total"].clone();
    assert_eq!(total["amount"], 8000 - 1900 + 599 + 486);

    let token = app.token("4242424242424242").await;
    let (s, o) = app.place("tees-1", &json!({"cart_id": c["id"], "payments": [{"token": token, "amount": total}], "expected_total": total})).await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    assert_eq!(o["totals"], c["totals"]);
    assert_eq!(o["promotions"], c["promotions"]);
    assert_eq!(
        app.store
            .promotions(&app.tenant, &["TEES3FOR2".into()])
            .await
            .unwrap()["TEES3FOR2"]
            .times_used,
        1
    );

    // Two tees and a mug are three units, but not three tees: the code is rejected.
    let c = cart(
        &app,
        json!({"lines": [{"sku": "TEE-CREW", "quantity": 1}, {"sku": "TEE-POCKET", "quantity": 1}, {"sku": "MUG-1", "quantity": 1}], "promo_codes": ["TEES3FOR2"]}),
    )
    .await;
    assert_eq!(c["changes"].as_array().unwrap().len(), 1, "{c}");
    assert_eq!(c["changes"][0]["type"], "promo_rejected");
    assert_eq!(c["changes"][0]["code"], "TEES3FOR2");
    assert_eq!(c["changes"][0]["reason"], "not_enough_eligible_items");
    assert!(!c["changes"][0]["message"].as_str().unwrap().is_empty());
    assert_eq!(c["totals"]["discount"]["amount"], 0);
    assert_eq!(c["promo_codes"], json!([]));
}
