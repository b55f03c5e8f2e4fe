//! Bad input never yields a 500 or a panic: every case is a problem+json naming the field.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn expect_problem(r: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(r.status(), status);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let v: Value = r.json().await.unwrap();
    for f in ["type", "title", "status", "detail"] {
        assert!(v.get(f).is_some(), "problem lacks {f}: {v}");
    }
    assert_eq!(v["status"], status.as_u16());
    v
}

#[tokio::test]
async fn malformed_bodies_and_unknown_routes_are_problems() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .post(app.url("/v1/carts"))
        .header("content-type", "application/json")
        .body("{\"lines\": [")
        .send()
        .await
        .unwrap();
    expect_problem(r, StatusCode::BAD_REQUEST).await;
    let r = app
        .client
        .post(app.url("/v1/carts"))
        .header("content-type", "application/json")
        .body("{\"lines\": []}{\"x\": 1}")
        .send()
        .await
        .unwrap();
    expect_problem(r, StatusCode::BAD_REQUEST).await;
    let r = app
        .client
        .post(app.url("/v1/carts"))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    expect_problem(r, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    let r = app
        .client
        .post(app.url("/v1/carts"))
        .header("content-type", "application/json")
        .body(vec![b' '; 2 << 20])
        .send()
        .await
        .unwrap();
    expect_problem(r, StatusCode::PAYLOAD_TOO_LARGE).await;
    expect_problem(app.get("/v1/nothing-here").await, StatusCode::NOT_FOUND).await;
    expect_problem(
        app.client
            .delete(app.url("/v1/orders"))
            .send()
            .await
            .unwrap(),
        StatusCode::METHOD_NOT_ALLOWED,
    )
    .await;
    expect_problem(
        app.get("/v1/orders/ORD-0000-0000").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    expect_problem(app.get("/v1/orders/%00%ff").await, StatusCode::NOT_FOUND).await;
    expect_problem(
        app.get("/v1/products/%F0%9F%92%A9").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let v = expect_problem(
        app.get("/v1/products?limit=0&cursor=zz").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem_paths(&v), ["limit", "cursor"]);
}

#[tokio::test]
async fn cart_fields_are_validated_with_paths() {
    let app = TestApp::spawn().await;
    let body = json!({
        "lines": [{"sku": "A", "quantity": 0}, {"sku": "bad sku", "quantity": 1}, {"sku": "B", "quantity": 100001}],
        "customer": {"email": "not-an-email", "phone": "555-1234", "name": ""},
        "shipments": [{"address": {"name": "A", "line1": "x", "city": "y", "postal_code": "1", "country": "XX", "lat": 200.0, "lon": 0.0}}],
        "promo_codes": ["bad code!"]
    });
    let v = expect_problem(
        app.post("/v1/carts", &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let paths = problem_paths(&v);
    for p in [
        "lines[0].quantity",
        "lines[1].sku",
        "lines[2].quantity",
        "customer.email",
        "customer.phone",
        "customer.name",
        "shipments[0].address.country",
        "shipments[0].address.lat",
        "promo_codes[0]",
    ] {
        assert!(paths.contains(&p.to_string()), "{p} missing from {paths:?}");
    }
    // Control characters (NUL above all) never reach storage.
    let v = expect_problem(
        app.post("/v1/carts", &json!({"customer": {"email": "a@example.com", "phone": "+14155550100", "name": "Ana\u{0}Lima"}})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem_paths(&v), ["customer.name"]);
    // Type errors carry the path of the offending field.
    let v = expect_problem(
        app.post(
            "/v1/carts",
            &json!({"lines": [{"sku": "A", "quantity": "two"}]}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem_paths(&v), ["lines[0].quantity"]);
    let v = expect_problem(
        app.post("/v1/carts", &json!({"lines": [{"quantity": 1}]}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem_paths(&v), ["lines[0].sku"]);
    let v = expect_problem(
        app.post("/v1/carts", &json!([1, 2])).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(v["errors"][0]["code"], "invalid_type");
}

#[tokio::test]
async fn order_input_is_validated_with_paths() {
    let app = TestApp::spawn().await;
    app.product("A", 1000, 5).await;
    // No Idempotency-Key.
    let r = app.post("/v1/orders", &json!({})).await;
    let v = expect_problem(r, StatusCode::BAD_REQUEST).await;
    assert!(
        v["type"]
            .as_str()
            .unwrap()
            .ends_with("idempotency-key-missing")
    );
    let r = app
        .client
        .post(app.url("/v1/orders"))
        .header(
            "Idempotency-Key",
            reqwest::header::HeaderValue::from_bytes("clé-ü".as_bytes()).unwrap(),
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let v = expect_problem(r, StatusCode::BAD_REQUEST).await;
    assert!(
        v["type"]
            .as_str()
            .unwrap()
            .ends_with("idempotency-key-invalid"),
        "{v}"
    );
    // Nothing at all.
    let (s, v) = app.place("v-1", &json!({})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let paths = problem_paths(&v);
    for p in ["lines", "customer", "shipments"] {
        assert!(paths.contains(&p.to_string()), "{p} missing from {paths:?}");
    }
    // Both cart and lines; unknown cart.
    let (s, v) = app
        .place(
            "v-2",
            &json!({"cart_id": "cart_x", "lines": [{"sku": "A", "quantity": 1}]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(problem_paths(&v).contains(&"lines".to_string()));
    let (s, v) = app.place("v-3", &json!({"cart_id": "cart_x", "customer": guest(), "shipments": [{"address": address()}], "payments": [{"token": "tok_x", "amount": {"amount": 1, "currency": "USD"}}]})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem_paths(&v), ["cart_id"]);
    // Unknown token, wrong currency, zero amount, bad shipment split.
    let total = quote(&app, "A", 2).await;
    let body = json!({
        "lines": [{"sku": "A", "quantity": 2}],
        "customer": guest(),
        "shipments": [{"address": address(), "lines": [{"sku": "A", "quantity": 1}]}, {"address": address(), "lines": [{"sku": "A", "quantity": 2}]}],
        "payments": [{"token": "tok_unknown", "amount": {"amount": total, "currency": "EUR"}}, {"token": "tok_other", "amount": {"amount": 0, "currency": "USD"}}]
    });
    let (s, v) = app.place("v-4", &body).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let paths = problem_paths(&v);
    assert!(
        paths.contains(&"payments[1].amount.amount".to_string()),
        "{paths:?}"
    );
    let mut body = body;
    body["payments"] =
        json!([{"token": "tok_unknown", "amount": {"amount": total, "currency": "EUR"}}]);
    let (_, v) = app.place("v-5", &body).await;
    let paths = problem_paths(&v);
    for p in [
        "shipments",
        "payments[0].amount.currency",
        "payments[0].token",
    ] {
        assert!(paths.contains(&p.to_string()), "{p} missing from {paths:?}");
    }
    // Absurd numbers never overflow into a 500.
    let (s, _) = app.place("v-6", &json!({"lines": [{"sku": "A", "quantity": i64::MAX}], "customer": guest(), "shipments": [{"address": address()}], "payments": [{"token": "t", "amount": {"amount": i64::MAX, "currency": "USD"}}]})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.inventory("A").await["reserved"], 0);
}

#[tokio::test]
async fn operations_endpoints_answer() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    let r: Value = app.get("/readyz").await.json().await.unwrap();
    assert_eq!(r["status"], "ready");
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for p in [
        "/v1/products",
        "/v1/products/{sku}",
        "/v1/carts",
        "/v1/carts/{id}",
        "/v1/payment-tokens",
        "/v1/orders",
        "/v1/orders/{id}",
        "/v1/inventory/{sku}",
        "/v1/inventory/adjustments",
        "/metrics",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p} missing from OpenAPI");
    }
    assert!(doc["components"]["schemas"].get("Problem").is_some());
}

/// A 422 naming exactly one unknown field.
async fn expect_unknown_field(r: reqwest::Response, path: &str) -> Value {
    let v = expect_problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_paths(&v), [path], "{v}");
    assert_eq!(v["errors"][0]["code"], "unknown_field", "{v}");
    v
}

#[tokio::test]
async fn unknown_fields_are_refused_by_their_full_path() {
    let app = TestApp::spawn().await;
    app.product("A", 1000, 5).await;
    let token = app.token("4242424242424242").await;
    let total = quote(&app, "A", 1).await;

    // A typo'd promo field would silently drop the discount: it is a 422 naming it instead.
    let mut order = inline_order("A", 1, &token, total);
    order["promo_code"] = json!("WELCOME10");
    let r = app
        .client
        .post(app.url("/v1/orders"))
        .header("Idempotency-Key", "typo-1")
        .json(&order)
        .send()
        .await
        .unwrap();
    let v = expect_unknown_field(r, "promo_code").await;
    let msg = v["errors"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("promo_codes"),
        "the message lists the expected fields: {msg}"
    );

    // Nested: an address field and a line field.
    let mut order = inline_order("A", 1, &token, total);
    order["shipments"][0]["address"]["zip"] = json!("94105");
    let r = app
        .client
        .post(app.url("/v1/orders"))
        .header("Idempotency-Key", "typo-2")
        .json(&order)
        .send()
        .await
        .unwrap();
    expect_unknown_field(r, "shipments[0].address.zip").await;
    let r = app
        .post(
            "/v1/carts",
            &json!({"lines": [{"sku": "A", "quantity": 1}, {"sku": "A", "qty": 1}]}),
        )
        .await;
    expect_unknown_field(r, "lines[1].qty").await;
    let mut order = inline_order("A", 1, &token, total);
    order["payments"][0]["amount"]["cents"] = json!(1);
    let r = app
        .client
        .post(app.url("/v1/orders"))
        .header("Idempotency-Key", "typo-3")
        .json(&order)
        .send()
        .await
        .unwrap();
    expect_unknown_field(r, "payments[0].amount.cents").await;
    assert_eq!(
        app.inventory("A").await["reserved"],
        0,
        "no typo'd order was placed"
    );

    // Cart sync.
    let r = app
        .post(
            "/v1/carts",
            &json!({"lines": [{"sku": "A", "quantity": 1}]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let cart: Value = r.json().await.unwrap();
    let id = cart["id"].as_str().unwrap();
    expect_unknown_field(
        app.put(
            &format!("/v1/carts/{id}"),
            &json!({"lines": [], "promo_code": "SAVE5"}),
        )
        .await,
        "promo_code",
    )
    .await;
    expect_unknown_field(
        app.put(
            &format!("/v1/carts/{id}"),
            &json!({"lines": [{"sku": "A", "qty": 2}]}),
        )
        .await,
        "lines[0].qty",
    )
    .await;
    expect_unknown_field(
        app.put(
            &format!("/v1/carts/{id}"),
            &json!({"customer": {"email": "a@example.com", "mail": "x"}}),
        )
        .await,
        "customer.mail",
    )
    .await;

    // Staff endpoints.
    let r = app.post("/v1/inventory/adjustments", &json!({"sku": "A", "location_id": "wh-1", "delta": 1, "reason": "receipt", "notes": "x"})).await;
    expect_unknown_field(r, "notes").await;
    let r = app
        .put(
            "/v1/products/A",
            &json!({"name": "A", "price": {"amount": 1, "currency": "USD"}, "categroy": "x"}),
        )
        .await;
    expect_unknown_field(r, "categroy").await;
    let r = app
        .put(
            "/v1/products/A",
            &json!({"name": "A", "price": {"amount": 1, "currency": "USD", "tax": 0}}),
        )
        .await;
    expect_unknown_field(r, "price.tax").await;
    assert_eq!(
        app.get("/v1/products/A")
            .await
            .json::<Value>()
            .await
            .unwrap()["price"]["amount"],
        1000,
        "nothing was updated"
    );

    // Payment tokens: an extra key is named, its value (maybe a card number) is never echoed.
    let r = app.post("/v1/payment-tokens", &json!({"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123", "card_number": "4000000000000002"})).await;
    let v = expect_unknown_field(r, "card_number").await;
    let text = v.to_string();
    assert!(
        !text.contains("4242424242424242") && !text.contains("4000000000000002"),
        "{text}"
    );
}
