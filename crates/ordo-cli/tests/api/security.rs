//! Security over HTTP: the OAuth2 token endpoint and sign-up, token verification (every forged
//! or stale token refused), the role policy (401 / 403 / 404), guest and shopper order access,
//! and tenant isolation. Runs on both backends like every API test.

use crate::helpers::*;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ordo_server::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

async fn clients(app: &TestApp) {
    for (id, secret, role) in [
        ("app-1", "app-1-secret", Role::App),
        ("staff-1", "staff-1-secret", Role::Staff),
    ] {
        ordo_server::services::accounts::create_client(
            &app.store,
            "default",
            id,
            role,
            None,
            &[],
            Some(secret.into()),
        )
        .await
        .unwrap();
    }
    ordo_server::services::accounts::create_client(
        &app.store,
        "acme",
        "acme-admin",
        Role::Admin,
        None,
        &[],
        Some("acme-admin-secret".into()),
    )
    .await
    .unwrap();
}

async fn token_request(
    app: &TestApp,
    form: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let r = client()
        .post(app.url("/v1/auth/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    let (s, h) = (r.status(), r.headers().clone());
    (s, h, r.json().await.unwrap_or(Value::Null))
}

fn as_bearer(token: &str) -> reqwest::Client {
    client_as(token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_issue_short_lived_bearer_tokens() {
    let app = TestApp::spawn().await;
    clients(&app).await;
    let (s, h, v) = token_request(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "app-1"),
            ("client_secret", "app-1-secret"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(h.get("cache-control").unwrap(), "no-store");
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 900);
    assert!(
        v.get("refresh_token").is_none(),
        "client credentials get no refresh token"
    );
    assert_eq!(v["scope"], "catalog carts orders");
    // The token works, and its claims say who and where.
    let token = v["access_token"].as_str().unwrap();
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    for claim in [
        "iss", "sub", "aud", "exp", "iat", "jti", "tenant", "role", "scope",
    ] {
        assert!(claims.get(claim).is_some(), "claim {claim} in {claims}");
    }
    assert_eq!(
        (
            claims["sub"].as_str(),
            claims["role"].as_str(),
            claims["tenant"].as_str()
        ),
        (Some("app-1"), Some("app"), Some("default"))
    );
    let r = as_bearer(token)
        .post(app.url("/v1/carts"))
        .json(&json!({"lines": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // HTTP Basic client authentication works too.
    let r = client()
        .post(app.url("/v1/auth/token"))
        .basic_auth("staff-1", Some("staff-1-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // A narrower scope is granted; a wider one is refused.
    let (s, _, v) = token_request(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "app-1"),
            ("client_secret", "app-1-secret"),
            ("scope", "carts"),
        ],
    )
    .await;
    assert_eq!((s, v["scope"].as_str()), (StatusCode::OK, Some("carts")));
    let (s, _, v) = token_request(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "app-1"),
            ("client_secret", "app-1-secret"),
            ("scope", "admin"),
        ],
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );
    // The keys that verify it are published.
    let jwks: Value = client()
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "EdDSA");
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == header["kid"] && k["kty"] == "OKP" && k["crv"] == "Ed25519")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_endpoint_answers_bad_requests_in_oauth_terms() {
    let app = TestApp::spawn().await;
    clients(&app).await;
    let cases: Vec<(Vec<(&str, &str)>, StatusCode, &str)> = vec![
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "app-1"),
                ("client_secret", "wrong"),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "nobody"),
                ("client_secret", "x"),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            vec![("grant_type", "client_credentials")],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            vec![("grant_type", "authorization_code"), ("code", "x")],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            vec![("client_id", "app-1")],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![("grant_type", "password"), ("username", "a@example.com")],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "made-up"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
    ];
    for (form, status, error) in cases {
        let (s, h, v) = token_request(&app, &form).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (status, Some(error)),
            "{form:?}: {v}"
        );
        assert!(v["error_description"].is_string());
        assert_eq!(h.get("content-type").unwrap(), "application/json");
    }
    // A repeated parameter, JSON instead of a form, a 10 MB password: clear 4xx, never 5xx.
    let r = client()
        .post(app.url("/v1/auth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=password&grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = client()
        .post(app.url("/v1/auth/token"))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    // Under the body limit but far over any password: refused before hashing.
    let long = "p".repeat(900 << 10);
    let r = client()
        .post(app.url("/v1/auth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "a@example.com"),
            ("password", &long),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = client()
        .post(app.url("/v1/auth/signup"))
        .json(&json!({"email": "big@example.com", "password": long, "name": "Big"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // 10 MB: 413, or the connection closed while the client was still sending; never a 5xx.
    let huge = "p".repeat(10 << 20);
    for r in [
        client()
            .post(app.url("/v1/auth/token"))
            .form(&[
                ("grant_type", "password"),
                ("username", "a@example.com"),
                ("password", &huge),
            ])
            .send()
            .await,
        client()
            .post(app.url("/v1/auth/signup"))
            .json(&json!({"email": "big@example.com", "password": huge, "name": "Big"}))
            .send()
            .await,
    ] {
        if let Ok(r) = r {
            assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shoppers_sign_up_sign_in_and_refresh_tokens_rotate() {
    let app = TestApp::spawn().await;
    let signup = json!({"email": "Zoe@Example.com", "password": "correct horse", "name": "Zoe", "phone": "+14155550123"});
    let r = client()
        .post(app.url("/v1/auth/signup"))
        .json(&signup)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers().get("cache-control").unwrap(), "no-store");
    let v: Value = r.json().await.unwrap();
    assert!(v["refresh_token"].is_string() && v["access_token"].is_string());
    // The same email again: 409; bad fields: 422 naming them.
    let r = client()
        .post(app.url("/v1/auth/signup"))
        .json(&signup)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = client()
        .post(app.url("/v1/auth/signup"))
        .json(&json!({"email": "nope", "password": "short", "name": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let mut paths = problem_paths(&r.json().await.unwrap());
    paths.sort();
    assert_eq!(paths, vec!["email", "name", "password"]);
    let r = client().post(app.url("/v1/auth/signup")).json(&json!({"email": "a@example.com", "password": "long enough", "name": "A", "role": "admin"})).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown fields (a role!) are refused"
    );

    // Sign in with the password grant (the email in any case).
    let (s, _, v) = token_request(
        &app,
        &[
            ("grant_type", "password"),
            ("username", "zoe@example.com"),
            ("password", "correct horse"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let first_refresh = v["refresh_token"].as_str().unwrap().to_string();
    let (s, _, v) = token_request(
        &app,
        &[
            ("grant_type", "password"),
            ("username", "zoe@example.com"),
            ("password", "wrong horse"),
        ],
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    // Refresh rotates: a new refresh token each time.
    let (s, _, v) = token_request(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &first_refresh),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let second_refresh = v["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(second_refresh, first_refresh);
    // Reusing the first one (stolen?) revokes the family: the second stops working too.
    let (s, _, v) = token_request(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &first_refresh),
        ],
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (s, _, _) = token_request(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &second_refresh),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "the whole family is revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failed_sign_ins_are_throttled() {
    let app = TestApp::spawn().await;
    let r = client()
        .post(app.url("/v1/auth/signup"))
        .json(&json!({"email": "lock@example.com", "password": "right password", "name": "L"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    for i in 0..10 {
        let (s, _, _) = token_request(
            &app,
            &[
                ("grant_type", "password"),
                ("username", "lock@example.com"),
                ("password", "wrong password"),
            ],
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "failure {i}");
    }
    let (s, h, v) = token_request(
        &app,
        &[
            ("grant_type", "password"),
            ("username", "lock@example.com"),
            ("password", "right password"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert!(h.get("retry-after").is_some());
}

/// Signs `claims` with the deployment's current key (read from storage) under `kid`.
async fn forge(
    app: &TestApp,
    header_alg: jsonwebtoken::Algorithm,
    kid: Option<&str>,
    claims: &Value,
) -> String {
    let keys = app.store.signing_keys(ordo_store::now_ms()).await.unwrap();
    let k = &keys[0];
    let mut header = jsonwebtoken::Header::new(header_alg);
    header.kid = Some(kid.unwrap_or(&k.kid).to_string());
    let key = match header_alg {
        jsonwebtoken::Algorithm::EdDSA => {
            let seed: [u8; 32] = STANDARD.decode(&k.private_key).unwrap().try_into().unwrap();
            let der = ed25519_dalek::SigningKey::from_bytes(&seed)
                .to_pkcs8_der()
                .unwrap();
            jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes())
        }
        // The classic confusion attack: HMAC keyed with the published public key.
        _ => {
            jsonwebtoken::EncodingKey::from_secret(&URL_SAFE_NO_PAD.decode(&k.public_key).unwrap())
        }
    };
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_stale_and_foreign_tokens_are_refused_with_invalid_token() {
    let app = TestApp::spawn().await;
    let now = (ordo_store::now_ms() / 1000) as i64;
    let claims = |f: &dyn Fn(&mut Value)| {
        let mut c = json!({"iss": "ordo", "sub": "admin-x", "aud": "ordo-api", "exp": now + 600, "iat": now, "nbf": now,
                           "jti": "j", "tenant": "default", "role": "admin", "scope": "admin"});
        f(&mut c);
        c
    };
    use jsonwebtoken::Algorithm::{EdDSA, HS256};
    let good = forge(&app, EdDSA, None, &claims(&|_| {})).await;
    let r = as_bearer(&good)
        .get(app.url("/v1/inventory/X"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "a correctly signed token passes (the SKU does not exist)"
    );

    let unsigned = {
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let c = URL_SAFE_NO_PAD.encode(claims(&|_| {}).to_string());
        format!("{h}.{c}.")
    };
    let bad = vec![
        ("alg none", unsigned),
        (
            "HS256 keyed with the public key",
            forge(&app, HS256, None, &claims(&|_| {})).await,
        ),
        (
            "expired",
            forge(&app, EdDSA, None, &claims(&|c| c["exp"] = json!(now - 120))).await,
        ),
        (
            "not yet valid",
            forge(&app, EdDSA, None, &claims(&|c| c["nbf"] = json!(now + 600))).await,
        ),
        (
            "wrong audience",
            forge(
                &app,
                EdDSA,
                None,
                &claims(&|c| c["aud"] = json!("someone-else")),
            )
            .await,
        ),
        (
            "wrong issuer",
            forge(&app, EdDSA, None, &claims(&|c| c["iss"] = json!("evil"))).await,
        ),
        (
            "unknown kid",
            forge(&app, EdDSA, Some("no-such-key"), &claims(&|_| {})).await,
        ),
        ("garbage", "not.a.token".to_string()),
        ("huge", "a".repeat(20_000)),
        ("tampered", {
            let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
            parts[1] = URL_SAFE_NO_PAD.encode(claims(&|c| c["tenant"] = json!("acme")).to_string());
            parts.join(".")
        }),
    ];
    for (what, token) in bad {
        let r = client()
            .get(app.url("/v1/inventory/X"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what}");
        let challenge = r
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\""),
            "{what}: {challenge}"
        );
        assert_eq!(
            r.headers().get("content-type").unwrap(),
            "application/problem+json"
        );
    }
    // No token, or not a bearer token: 401 with a Bearer challenge.
    let r = client()
        .get(app.url("/v1/inventory/X"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let r = client()
        .get(app.url("/v1/inventory/X"))
        .basic_auth("admin", Some("pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_decide_routes_and_orders_are_seen_only_by_their_people() {
    let app = TestApp::spawn().await;
    app.product("A", 1000, 10).await;
    let anon = client();
    // Anonymous catalog reads; nothing else.
    assert_eq!(
        anon.get(app.url("/v1/products/A"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        anon.post(app.url("/v1/carts"))
            .json(&json!({"lines": []}))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // The app may not change the catalog or stock; staff may adjust stock but not prices.
    let product = json!({"name": "A", "price": {"amount": 1, "currency": "USD"}});
    let r = app
        .client
        .put(app.url("/v1/products/A"))
        .json(&product)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        r.headers().get("content-type").unwrap(),
        "application/problem+json"
    );
    let staff = client_as(&app.tokens.staff);
    assert_eq!(
        staff
            .put(app.url("/v1/products/A"))
            .json(&product)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    let r = staff
        .post(app.url("/v1/inventory/adjustments"))
        .header("Idempotency-Key", "s-1")
        .json(&json!({"sku": "A", "location_id": "wh-1", "delta": 1, "reason": "receipt"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        app.client
            .get(app.url("/v1/inventory/A"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    for staff_read in ["/v1/forecasts/A", "/v1/replenishment", "/v1/audit"] {
        assert_eq!(
            app.client
                .get(app.url(staff_read))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::FORBIDDEN,
            "{staff_read}"
        );
        assert_eq!(
            anon.get(app.url(staff_read)).send().await.unwrap().status(),
            StatusCode::UNAUTHORIZED,
            "{staff_read}"
        );
    }
    assert_eq!(
        app.admin
            .post(app.url("/v1/carts"))
            .json(&json!({"lines": []}))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );

    // A guest order: its 201 carries a guest token that opens that order and no other.
    let total = quote(&app, "A", 1).await;
    let (s, first) = app
        .place(
            "g-1",
            &inline_order("A", 1, &app.token("4242424242424242").await, total),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    let (s, second) = app
        .place(
            "g-2",
            &inline_order("A", 1, &app.token("4242424242424242").await, total),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let guest = client_as(first["guest_token"].as_str().expect("a guest token"));
    let id1 = first["id"].as_str().unwrap();
    let id2 = second["id"].as_str().unwrap();
    let r = guest
        .get(app.url(&format!("/v1/orders/{id1}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let number = first["number"].as_str().unwrap();
    assert_eq!(
        guest
            .get(app.url(&format!("/v1/orders/{number}")))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        guest
            .get(app.url(&format!("/v1/orders/{id2}")))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND,
        "never 403"
    );
    assert_eq!(
        guest
            .post(app.url("/v1/carts"))
            .json(&json!({"lines": []}))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.client
            .get(app.url(&format!("/v1/orders/{id1}")))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        anon.get(app.url(&format!("/v1/orders/{id1}")))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.admin
            .get(app.url(&format!("/v1/orders/{id2}")))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // A shopper orders as themselves and sees only their own orders.
    let mut shoppers = Vec::new();
    for email in ["one@example.com", "two@example.com"] {
        let r = client()
            .post(app.url("/v1/auth/signup"))
            .json(&json!({"email": email, "password": "long enough", "name": email}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        shoppers.push(client_as(
            r.json::<Value>().await.unwrap()["access_token"]
                .as_str()
                .unwrap(),
        ));
    }
    let body = json!({"lines": [{"sku": "A", "quantity": 1}], "shipments": [{"address": address()}],
                      "payments": [{"token": app.token("4242424242424242").await, "amount": {"amount": total, "currency": "USD"}}]});
    let (s, mine) = place_at(&shoppers[0], &app.base, "m-1", &body).await;
    assert_eq!(s, StatusCode::CREATED, "{mine}");
    assert_eq!(mine["customer"]["kind"], "member");
    assert!(mine.get("guest_token").is_none());
    let id = mine["id"].as_str().unwrap();
    assert_eq!(
        shoppers[0]
            .get(app.url(&format!("/v1/orders/{id}")))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        shoppers[1]
            .get(app.url(&format!("/v1/orders/{id}")))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        shoppers[1]
            .get(app.url(&format!("/v1/orders/{id1}")))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    // The app's token cannot order in a member's name.
    let mut as_member = inline_order("A", 1, &app.token("4242424242424242").await, total);
    as_member["customer"] = json!({"customer_id": mine["customer"]["customer_id"]});
    let (s, v) = app.place("m-2", &as_member).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(problem_paths(&v), vec!["customer.customer_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenant_can_neither_read_nor_change_another() {
    let app = TestApp::spawn().await;
    clients(&app).await;
    app.product("SECRET-1", 4200, 5).await;
    let total = quote(&app, "SECRET-1", 1).await;
    let (s, order) = app
        .place(
            "t-1",
            &inline_order("SECRET-1", 1, &app.token("4242424242424242").await, total),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let cart: Value = app
        .post(
            "/v1/carts",
            &json!({"lines": [{"sku": "SECRET-1", "quantity": 1}]}),
        )
        .await
        .json()
        .await
        .unwrap();

    let acme = client_as(&token_for(&app.base, "acme-admin", "acme-admin-secret").await);
    let acme_app = client_as(&tokens_from(&app_authority(&app).await, "acme").app);
    let id = order["id"].as_str().unwrap();
    let cart_id = cart["id"].as_str().unwrap();
    for path in [
        format!("/v1/orders/{id}"),
        format!("/v1/orders/{}", order["number"].as_str().unwrap()),
        "/v1/inventory/SECRET-1".into(),
        "/v1/products/SECRET-1".into(),
    ] {
        let r = acme.get(app.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let page: Value = acme
        .get(app.url("/v1/products"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        page["items"].as_array().map(Vec::len),
        Some(0),
        "acme's catalog is its own: {page}"
    );
    assert_eq!(
        acme_app
            .get(app.url(&format!("/v1/carts/{cart_id}")))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    let r = acme
        .post(app.url("/v1/inventory/adjustments"))
        .header("Idempotency-Key", "steal")
        .json(&json!({"sku": "SECRET-1", "location_id": "wh-1", "delta": 100, "reason": "receipt"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    // Creating a product of the same SKU in acme changes nothing of default's.
    let r = acme
        .put(app.url("/v1/products/SECRET-1"))
        .json(&json!({"name": "Acme's", "price": {"amount": 1, "currency": "USD"}}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let mine: Value = app.get("/v1/products/SECRET-1").await.json().await.unwrap();
    assert_eq!(mine["price"]["amount"], 4200);
    assert_eq!(app.inventory("SECRET-1").await["on_hand"], 5);
    let order_now: Value = app
        .get(&format!("/v1/orders/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(order_now["id"], order["id"]);

    // The rest of the routes: syncing default's cart, ordering from it or paying with its
    // token, reading its forecasts, replenishment and audit log.
    let mut covered = vec![
        ("GET", "/v1/orders/{id}"),
        ("GET", "/v1/inventory/{sku}"),
        ("GET", "/v1/products/{sku}"),
        ("GET", "/v1/products"),
        ("GET", "/v1/carts/{id}"),
        ("POST", "/v1/inventory/adjustments"),
        ("PUT", "/v1/products/{sku}"),
    ];
    let r = acme_app
        .put(app.url(&format!("/v1/carts/{cart_id}")))
        .json(&json!({"lines": [{"sku": "SECRET-1", "quantity": 2}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "another tenant's cart cannot be synced"
    );
    covered.push(("PUT", "/v1/carts/{id}"));
    let token = app.token("4242424242424242").await;
    let from_cart = json!({"cart_id": cart_id, "payments": [{"token": token, "amount": {"amount": total, "currency": "USD"}}]});
    let r = acme_app
        .post(app.url("/v1/orders"))
        .header("Idempotency-Key", "steal-cart")
        .json(&from_cart)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "another tenant's cart and token are unknown here"
    );
    let problem: Value = r.json().await.unwrap();
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["path"].as_str())
        .collect();
    assert!(fields.contains(&"cart_id"), "{problem}");
    let r = acme_app
        .post(app.url("/v1/orders"))
        .header("Idempotency-Key", "steal-token")
        .json(&inline_order("SECRET-1", 1, &token, 1))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    assert_eq!(
        app.get(&format!("/v1/carts/{cart_id}")).await.status(),
        StatusCode::OK,
        "the cart is untouched and still default's"
    );
    covered.extend([
        ("POST", "/v1/orders"),
        ("POST", "/v1/carts"),
        ("POST", "/v1/payment-tokens"),
    ]);
    let r = acme
        .get(app.url("/v1/forecasts/SECRET-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let lines: Value = acme
        .get(app.url("/v1/replenishment"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        lines
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["sku"] != "SECRET-1" || l["on_hand"] == 0),
        "{lines}"
    );
    let audit: Value = acme
        .get(app.url("/v1/audit"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = audit["items"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .all(|e| e["after"]["price"]["amount"] != 4200),
        "default's audit entries stay default's: {audit}"
    );
    assert_eq!(
        entries.len(),
        1,
        "acme sees its own product upsert only: {audit}"
    );
    covered.extend([
        ("GET", "/v1/forecasts/{sku}"),
        ("GET", "/v1/replenishment"),
        ("GET", "/v1/audit"),
    ]);
    assert_eq!(
        acme.get(app.url("/v1/locations/wh-1"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    let nodes: Value = acme
        .get(app.url("/v1/locations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        nodes["items"],
        json!([]),
        "acme's network is its own: {nodes}"
    );
    let r = acme
        .put(app.url("/v1/locations/wh-1"))
        .json(&json!({"name": "Acme's", "kind": "store", "lat": 0.0, "lon": 0.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "a location of the same id in acme is acme's own"
    );
    let mine: Value = app
        .admin
        .get(app.url("/v1/locations/wh-1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine["name"], "Warehouse 1");
    covered.extend([
        ("GET", "/v1/locations/{id}"),
        ("GET", "/v1/locations"),
        ("PUT", "/v1/locations/{id}"),
    ]);
    // A passkey challenge issued to a shopper of default cannot be answered by a shopper of acme.
    let default_shopper = client_as(&app.token_as(Role::Shopper, "test-shopper"));
    let r = default_shopper
        .post(app.url("/v1/auth/passkeys/registration-options"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let options: Value = r.json().await.unwrap();
    let acme_shopper = client_as(
        &app_authority(&app)
            .await
            .access_token(&principal("acme", Role::Shopper), Duration::from_secs(900))
            .unwrap()
            .0,
    );
    let r = acme_shopper
        .post(app.url("/v1/auth/passkeys"))
        .json(&json!({"challenge_id": options["challenge_id"], "credential_id": "AAAA", "client_data_json": "e30", "attestation_object": "oA"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "another tenant's challenge registers nothing here"
    );
    covered.extend([
        ("POST", "/v1/auth/passkeys/registration-options"),
        ("POST", "/v1/auth/passkeys"),
    ]);
    // Routing rules are per tenant: acme's change leaves default's alone, and names only acme's nodes.
    let r = app.admin.put(app.url("/v1/routing/rules")).json(&json!({"cutoff_penalty": {"amount": 500, "currency": "USD"}, "rules": [{"kind": "country_only_from", "country": "CA", "nodes": ["wh-1"]}]})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = acme.put(app.url("/v1/routing/rules")).json(&json!({"cutoff_penalty": {"amount": 0, "currency": "USD"}, "rules": [{"kind": "country_only_from", "country": "CA", "nodes": ["store-2"]}]})).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "default's locations are unknown to acme"
    );
    let theirs: Value = acme
        .get(app.url("/v1/routing/rules"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        theirs["version"], 0,
        "acme sees none of default's rules: {theirs}"
    );
    covered.extend([("GET", "/v1/routing/rules"), ("PUT", "/v1/routing/rules")]);
    // Decision logs: default's order's decision is not acme's to read, nor in acme's listing.
    assert_eq!(
        acme.get(app.url(&format!("/v1/orders/{id}/routing")))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    let decisions: Value = acme
        .get(app.url("/v1/routing/decisions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        decisions["items"],
        json!([]),
        "acme has placed no order: {decisions}"
    );
    let ours: Value = app
        .admin
        .get(app.url("/v1/routing/decisions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ours["items"].as_array().map(Vec::len), Some(1), "{ours}");
    covered.extend([
        ("GET", "/v1/orders/{id}/routing"),
        ("GET", "/v1/routing/decisions"),
    ]);
    // The event log: default's events are in default's log only; acme cannot even page after one.
    let ours = crate::events::wait_for_events(&app, "ordo.order.placed", 1).await;
    let theirs: Value = acme
        .get(app.url("/v1/events?limit=1000"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        theirs["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["source"] == "/ordo/acme"),
        "{theirs}"
    );
    let r = acme
        .get(app.url(&format!(
            "/v1/events?after={}",
            ours[0]["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    covered.push(("GET", "/v1/events"));
    // Webhooks: default's subscription is invisible to acme and beyond its reach.
    let receiver = crate::receiver::Receiver::start(crate::receiver::always_ok()).await;
    let hook: Value = app
        .admin
        .post(app.url("/v1/webhooks"))
        .json(&json!({"url": receiver.url, "events": ["*"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hid = hook["id"].as_str().unwrap();
    for (method, path) in [
        ("GET", format!("/v1/webhooks/{hid}")),
        ("GET", format!("/v1/webhooks/{hid}/deliveries")),
        (
            "POST",
            format!("/v1/webhooks/{hid}/deliveries/dlv_x/replay"),
        ),
        ("DELETE", format!("/v1/webhooks/{hid}")),
    ] {
        let r = acme
            .request(method.parse().unwrap(), app.url(&path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{method} {path}");
    }
    let theirs: Value = acme
        .get(app.url("/v1/webhooks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["items"], json!([]));
    let r = acme
        .post(app.url("/v1/webhooks"))
        .json(&json!({"url": receiver.url, "events": ["*"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "acme subscribes for itself"
    );
    assert_eq!(
        app.admin
            .get(app.url(&format!("/v1/webhooks/{hid}")))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK,
        "acme's DELETE left default's webhook alone"
    );
    covered.extend([
        ("POST", "/v1/webhooks"),
        ("GET", "/v1/webhooks"),
        ("GET", "/v1/webhooks/{id}"),
        ("DELETE", "/v1/webhooks/{id}"),
        ("GET", "/v1/webhooks/{id}/deliveries"),
        ("POST", "/v1/webhooks/{id}/deliveries/{delivery}/replay"),
    ]);
    // A shopper's things are per tenant: an acme shopper with the same subject as a default
    // shopper sees none of theirs and cannot remove their push subscription.
    let ours = client_as(&app.token_as(Role::Shopper, "same-subject"));
    let theirs = client_as(
        &app_authority(&app)
            .await
            .access_token(
                &ordo_server::auth::Principal {
                    subject: "same-subject".into(),
                    ..principal("acme", Role::Shopper)
                },
                Duration::from_secs(900),
            )
            .unwrap()
            .0,
    );
    let browser = crate::push_receiver::PushSubscriber::start().await;
    let r = ours
        .post(app.url("/v1/me/push-subscriptions"))
        .json(&browser.subscription_json())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let sub: Value = r.json().await.unwrap();
    let r = ours
        .put(app.url("/v1/me/notification-preferences"))
        .json(&json!({"email": false, "push": true, "in_app": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let get = |c: &reqwest::Client, path: &str| c.get(app.url(path)).send();
    let list: Value = get(&theirs, "/v1/me/push-subscriptions")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"], json!([]));
    let prefs: Value = get(&theirs, "/v1/me/notification-preferences")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        prefs,
        json!({"email": true, "push": true, "in_app": true}),
        "acme's shopper has their own"
    );
    let r = theirs
        .delete(app.url(&format!(
            "/v1/me/push-subscriptions/{}",
            sub["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let page: Value = get(&theirs, "/v1/me/notifications")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"], json!([]));
    let k1: Value = get(&ours, "/v1/me/push-key")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let k2: Value = get(&theirs, "/v1/me/push-key")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(
        k1["public_key"], k2["public_key"],
        "each tenant signs pushes with its own key"
    );
    let r = theirs
        .get(app.url("/v1/me/notifications/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    covered.extend([
        ("GET", "/v1/me/notifications"),
        ("GET", "/v1/me/notifications/stream"),
        ("GET", "/v1/me/notification-preferences"),
        ("PUT", "/v1/me/notification-preferences"),
        ("GET", "/v1/me/push-key"),
        ("POST", "/v1/me/push-subscriptions"),
        ("GET", "/v1/me/push-subscriptions"),
        ("DELETE", "/v1/me/push-subscriptions/{id}"),
    ]);
    // The change feed: acme's holds only acme's stock changes (none of default's SKUs).
    let changes: Value = acme
        .get(app.url("/v1/inventory/changes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        changes["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["sku"] != "SECRET-1"),
        "{changes}"
    );
    let ours: Value = app
        .admin
        .get(app.url("/v1/inventory/changes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        ours["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["sku"] == "SECRET-1"),
        "{ours}"
    );
    covered.push(("GET", "/v1/inventory/changes"));
    let r = acme_app
        .post(app.url(&format!("/v1/carts/{cart_id}/hold")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "another tenant's cart cannot be held"
    );
    covered.push(("POST", "/v1/carts/{id}/hold"));
    let r = acme_app
        .get(app.url(&format!("/v1/carts/{cart_id}/shipping-options")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "another tenant's cart has no options here"
    );
    covered.push(("GET", "/v1/carts/{id}/shipping-options"));
    // The lifecycle: default's order and fulfilment are unknown to acme's admin.
    let ful = order["fulfillments"][0]["id"].as_str().unwrap();
    for (method, path, template) in [
        (
            "POST",
            format!("/v1/orders/{id}/cancel"),
            "/v1/orders/{id}/cancel",
        ),
        (
            "GET",
            format!("/v1/orders/{id}/timeline"),
            "/v1/orders/{id}/timeline",
        ),
        (
            "GET",
            format!("/v1/fulfillments/{ful}"),
            "/v1/fulfillments/{id}",
        ),
        (
            "POST",
            format!("/v1/fulfillments/{ful}/pick"),
            "/v1/fulfillments/{id}/pick",
        ),
        (
            "POST",
            format!("/v1/fulfillments/{ful}/pack"),
            "/v1/fulfillments/{id}/pack",
        ),
        (
            "POST",
            format!("/v1/fulfillments/{ful}/ship"),
            "/v1/fulfillments/{id}/ship",
        ),
        (
            "POST",
            format!("/v1/fulfillments/{ful}/deliver"),
            "/v1/fulfillments/{id}/deliver",
        ),
        (
            "GET",
            "/v1/locations/wh-1/pick-list".to_string(),
            "/v1/locations/{id}/pick-list",
        ),
    ] {
        let r = match (method, template) {
            ("GET", _) => acme.get(app.url(&path)),
            (_, "/v1/orders/{id}/cancel") => {
                acme.post(app.url(&path)).json(&json!({"reason": "theft"}))
            }
            (_, "/v1/fulfillments/{id}/ship") => acme
                .post(app.url(&path))
                .json(&json!({"carrier": "UPS", "tracking_number": "1"})),
            _ => acme.post(app.url(&path)),
        }
        .send()
        .await
        .unwrap();
        if template == "/v1/locations/{id}/pick-list" && r.status() == StatusCode::OK {
            // Acme made its own wh-1 above: its pick list is its own.
            let list: Value = r.json().await.unwrap();
            assert_eq!(list["items"], json!([]), "{list}");
        } else {
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{method} {path}");
        }
        covered.push((method, template));
    }
    let still: Value = app
        .get(&format!("/v1/orders/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        still["status"], "allocated",
        "acme changed nothing: {still}"
    );
    assert_eq!(still["fulfillments"][0]["status"], "allocated");
    // Returns: default ships the order and a return is asked; acme can neither ask nor touch it.
    for step in ["pick", "pack"] {
        let r = app
            .admin
            .post(app.url(&format!("/v1/fulfillments/{ful}/{step}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = app
        .admin
        .post(app.url(&format!("/v1/fulfillments/{ful}/ship")))
        .json(&json!({"carrier": "UPS", "tracking_number": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let ask = json!({"lines": [{"sku": "SECRET-1", "quantity": 1, "reason": "other"}]});
    let swap = json!({"return": {"sku": "SECRET-1", "quantity": 1, "reason": "other"}, "for": {"sku": "SECRET-1", "quantity": 1}});
    let r = acme
        .post(app.url(&format!("/v1/orders/{id}/exchanges")))
        .json(&swap)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "another tenant's order cannot be exchanged"
    );
    covered.push(("POST", "/v1/orders/{id}/exchanges"));
    let r = acme
        .post(app.url(&format!("/v1/orders/{id}/returns")))
        .json(&ask)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let ret: Value = app
        .admin
        .post(app.url(&format!("/v1/orders/{id}/returns")))
        .json(&ask)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rid = ret["id"].as_str().unwrap();
    let r = acme
        .get(app.url(&format!("/v1/returns/{rid}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = acme.post(app.url(&format!("/v1/returns/{rid}/receive"))).json(&json!({"location_id": "wh-1", "lines": [{"sku": "SECRET-1", "quantity": 1, "condition": "new"}]})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = acme
        .post(app.url(&format!("/v1/returns/{rid}/disposition")))
        .json(&json!({"lines": [{"sku": "SECRET-1", "quantity": 1, "disposition": "restock"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let mine: Value = app
        .admin
        .get(app.url(&format!("/v1/returns/{rid}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine["status"], "requested", "acme received nothing: {mine}");
    let r = acme
        .post(app.url(&format!("/v1/fulfillments/{ful}/tracking-events")))
        .json(&json!({"status": "delivered", "at": "2026-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    for path in [
        format!("/v1/orders/{id}/tracking"),
        format!("/v1/orders/{id}/events"),
    ] {
        let r = acme.get(app.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    covered.extend([
        ("POST", "/v1/fulfillments/{id}/tracking-events"),
        ("GET", "/v1/orders/{id}/tracking"),
        ("GET", "/v1/orders/{id}/events"),
    ]);
    covered.extend([
        ("POST", "/v1/orders/{id}/returns"),
        ("GET", "/v1/returns/{id}"),
        ("POST", "/v1/returns/{id}/receive"),
        ("POST", "/v1/returns/{id}/disposition"),
    ]);
    // Every route that holds tenant data is covered above: a new one must be added here.
    let global = [
        "/healthz",
        "/readyz",
        "/metrics",
        "/.well-known/jwks.json",
        "/v1/auth/token",
        "/v1/auth/signup",
    ];
    for (e, _) in ordo_server::api::endpoints() {
        if e.documented && !global.contains(&e.path) {
            assert!(
                covered.contains(&(e.method.as_str(), e.path)),
                "{} {} has no cross-tenant check in this test",
                e.method,
                e.path
            );
        }
    }
}

/// An authority over the app's storage (its signing keys), to mint tokens of another tenant.
async fn app_authority(app: &TestApp) -> ordo_server::auth::tokens::Authority {
    let keys = ordo_server::auth::keys::KeyRing::open(&app.store)
        .await
        .unwrap();
    let settings = ordo_server::auth::tokens::TokenSettings {
        issuer: "ordo".into(),
        audience: "ordo-api".into(),
        access_ttl: Duration::from_secs(900),
    };
    ordo_server::auth::tokens::Authority::new(keys, settings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_and_admin_actions_are_in_the_audit_log() {
    let app = TestApp::spawn().await;
    let r = app
        .admin
        .put(app.url("/v1/products/AUD-1"))
        .json(&json!({"name": "Audited", "price": {"amount": 700, "currency": "USD"}}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let r = app
        .admin
        .put(app.url("/v1/products/AUD-1"))
        .json(&json!({"name": "Audited", "price": {"amount": 900, "currency": "USD"}}))
        .send()
        .await
        .unwrap();
    let price_change_request = r
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let r = client_as(&app.tokens.staff)
        .post(app.url("/v1/inventory/adjustments"))
        .header("Idempotency-Key", "aud-1")
        .json(&json!({"sku": "AUD-1", "location_id": "wh-1", "delta": 7, "reason": "receipt", "note": "PO 42"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // A refused change leaves no entry.
    let r = client_as(&app.tokens.staff)
        .post(app.url("/v1/inventory/adjustments"))
        .header("Idempotency-Key", "aud-2")
        .json(&json!({"sku": "AUD-1", "location_id": "wh-1", "delta": -100, "reason": "damage"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());

    assert_eq!(
        client_as(&app.tokens.staff)
            .get(app.url("/v1/audit"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    let page: Value = app
        .admin
        .get(app.url("/v1/audit?limit=2"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(
        (items[0]["action"].as_str(), items[0]["before"].is_null()),
        (Some("product.created"), true)
    );
    assert_eq!(items[1]["action"], "product.updated");
    assert_eq!(
        (
            items[1]["before"]["price"].as_i64(),
            items[1]["after"]["price"].as_i64()
        ),
        (Some(700), Some(900))
    );
    assert_eq!(items[1]["actor"], "test-admin");
    assert_eq!(items[1]["role"], "admin");
    assert_eq!(items[1]["request_id"], price_change_request.as_str());
    assert_eq!(items[1]["client_ip"], "127.0.0.1");
    let next: Value = app
        .admin
        .get(app.url(&format!(
            "/v1/audit?cursor={}",
            page["next_cursor"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rest = next["items"].as_array().unwrap();
    assert_eq!(rest.len(), 1, "{next}");
    assert_eq!(
        (
            rest[0]["action"].as_str(),
            rest[0]["actor"].as_str(),
            rest[0]["role"].as_str()
        ),
        (Some("stock.adjusted"), Some("test-staff"), Some("staff"))
    );
    assert_eq!(
        (
            rest[0]["before"]["on_hand"].as_i64(),
            rest[0]["after"]["on_hand"].as_i64()
        ),
        (Some(0), Some(7))
    );
    assert_eq!(rest[0]["after"]["note"], "PO 42");
    assert!(next["next_cursor"].is_null());
    let r = app
        .admin
        .get(app.url("/v1/audit?cursor=abc&limit=9999"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        ordo_store::testing::audit_log_refuses_changes(&app.store, &app.tenant).await,
        "the audit log is append-only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_with_retry_after_per_ip_and_per_subject() {
    let app = TestApp::spawn_with(|c| c.rate_limit_per_ip = 5).await;
    let first = client().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(first.headers().get("ratelimit-limit").unwrap(), "10");
    assert!(first.headers().get("ratelimit-remaining").is_some());
    let mut refused = None;
    for _ in 0..40 {
        let r = client().get(app.url("/healthz")).send().await.unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(r);
            break;
        }
    }
    let r = refused.expect("a burst over the per-IP limit is refused");
    assert!(
        r.headers()
            .get("retry-after")
            .unwrap()
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(r.headers().get("ratelimit-remaining").unwrap(), "0");
    assert_eq!(
        r.json::<Value>().await.unwrap()["type"],
        "https://ordo.dev/problems/rate-limited"
    );

    let app = TestApp::spawn_with(|c| c.rate_limit_per_subject = 2).await;
    let staff = client_as(&app.tokens.staff);
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(
            staff
                .get(app.url("/v1/inventory/NONE"))
                .send()
                .await
                .unwrap()
                .status(),
        );
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    // The app's shared credential is never limited as a whole.
    for _ in 0..12 {
        assert_eq!(
            app.client
                .get(app.url("/v1/products"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
        assert_ne!(
            app.client
                .post(app.url("/v1/carts"))
                .json(&json!({"lines": []}))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::TOO_MANY_REQUESTS
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_get_cors_for_configured_origins_and_every_answer_security_headers() {
    let app =
        TestApp::spawn_with(|c| c.cors_origins = vec!["https://shop.example.com".into()]).await;
    let preflight = |origin: &'static str| {
        client()
            .request(reqwest::Method::OPTIONS, app.url("/v1/orders"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type, idempotency-key",
            )
            .send()
    };
    let r = preflight("https://shop.example.com").await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        r.headers().get("access-control-allow-origin").unwrap(),
        "https://shop.example.com"
    );
    let allowed = r
        .headers()
        .get("access-control-allow-headers")
        .unwrap()
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("idempotency-key"),
        "{allowed}"
    );
    let r = preflight("https://evil.example.com").await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    for path in ["/healthz", "/v1/products", "/v1/nope", "/openapi.json"] {
        let r = client().get(app.url(path)).send().await.unwrap();
        assert_eq!(
            r.headers().get("x-content-type-options").unwrap(),
            "nosniff",
            "{path}"
        );
        assert_eq!(
            r.headers().get("x-frame-options").unwrap(),
            "DENY",
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sending_headers_slowly_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(|c| c.header_read_timeout = Duration::from_millis(500)).await;
    let mut s = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 1024];
    let outcome = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("the server gives up on the client");
    let n = outcome.unwrap_or(0);
    let answer = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(
        n == 0 || answer.starts_with("HTTP/1.1 408"),
        "closed or 408, got {answer:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// No secret at rest or in logs: after sign-ups, sign-ins, refreshes, client credentials, card
/// tokenization and a checkout, neither the database (every file of the embedded backend, or a
/// `pg_dump`) nor the server's log holds a password, a refresh token, a client secret or the
/// card number; the log carries no ANSI colour codes when it is not a terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_is_stored_or_logged() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = ordo_store::testing::test_storage(tmp.path()).await.unwrap();
    let log_path = tmp.path().join("ordo.log");
    let (proc_, base) = spawn_ordo_logging(&storage, &log_path, &["--demo"]);
    const PASSWORD: &str = "Hunter2-is-a-great-password";
    const CARD: &str = "4000056655665556";

    let r = client()
        .post(format!("{base}/v1/auth/signup"))
        .json(&json!({"email": "secret@example.com", "password": PASSWORD, "name": "S"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let signed_up: Value = r.json().await.unwrap();
    let form = [
        ("grant_type", "password"),
        ("username", "secret@example.com"),
        ("password", PASSWORD),
    ];
    let signed_in: Value = client()
        .post(format!("{base}/v1/auth/token"))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh = signed_in["refresh_token"].as_str().unwrap().to_string();
    let rotated: Value = client()
        .post(format!("{base}/v1/auth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let shopper = client_as(rotated["access_token"].as_str().unwrap());
    let app_token = token_for(&base, "demo-app", "demo-secret").await;
    let app = client_as(&app_token);
    // Checkouts from carts: the shopper's own, then a guest's by the app (contact details on the cart).
    let checkout = |who: reqwest::Client, card: &'static str, cart: Value, key: &'static str| {
        let base = base.clone();
        let app = app.clone();
        async move {
            let post = |c: &reqwest::Client, path: &str, body: Value| {
                c.post(format!("{base}{path}")).json(&body).send()
            };
            let card: Value = post(
                &app,
                "/v1/payment-tokens",
                json!({"number": card, "exp_month": 12, "exp_year": 2031, "cvc": "987"}),
            )
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
            let cart: Value = post(&who, "/v1/carts", cart)
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let total = cart["totals"]["total"].clone();
            let body = json!({"cart_id": cart["id"], "payments": [{"token": card["token"], "amount": total}], "expected_total": total});
            let (s, order) = place_at(&who, &base, key, &body).await;
            assert_eq!(s, StatusCode::CREATED, "{order}");
        }
    };
    let line = json!([{"sku": "TEE-1-BLA-S", "quantity": 1}]);
    checkout(
        shopper,
        CARD,
        json!({"lines": line, "shipments": [{"address": address()}]}),
        "secret-order",
    )
    .await;
    checkout(
        app.clone(),
        "4242424242424242",
        json!({"lines": line, "customer": guest(), "shipments": [{"address": address()}]}),
        "guest-order",
    )
    .await;
    drop(proc_);

    let secrets = [
        ("a password", PASSWORD.to_string()),
        (
            "a refresh token",
            signed_up["refresh_token"].as_str().unwrap().to_string(),
        ),
        ("a refresh token", refresh),
        (
            "a refresh token",
            rotated["refresh_token"].as_str().unwrap().to_string(),
        ),
        ("a client secret", "demo-admin-secret".to_string()),
        ("a client secret", "acme-secret".to_string()),
        ("the card number", CARD.to_string()),
    ];
    let mut haystacks: Vec<(String, Vec<u8>)> =
        vec![("the log".into(), std::fs::read(&log_path).unwrap())];
    match &storage {
        ordo_store::StorageConfig::Sqlite { data_dir } => {
            // Every file under the data directory: the database and the mailbox's emails.
            let mut dirs = vec![data_dir.clone()];
            while let Some(dir) = dirs.pop() {
                for entry in std::fs::read_dir(&dir).unwrap() {
                    let path = entry.unwrap().path();
                    if path.is_dir() {
                        dirs.push(path);
                    } else if let Ok(bytes) = std::fs::read(&path) {
                        haystacks.push((path.display().to_string(), bytes));
                    }
                }
            }
        }
        ordo_store::StorageConfig::Postgres { url, .. } => {
            let dump = std::process::Command::new("pg_dump")
                .arg(url)
                .output()
                .expect("pg_dump runs");
            assert!(
                dump.status.success(),
                "{}",
                String::from_utf8_lossy(&dump.stderr)
            );
            haystacks.push(("pg_dump".into(), dump.stdout));
        }
    }
    for (place, bytes) in &haystacks {
        let hay = String::from_utf8_lossy(bytes);
        for (what, secret) in &secrets {
            assert!(!hay.contains(secret.as_str()), "{what} found in {place}");
        }
    }
    let log = String::from_utf8_lossy(&haystacks[0].1).to_string();
    assert!(log.contains("INFO"), "the log was captured: {log}");
    assert!(
        !log.contains('\u{1b}'),
        "no ANSI escape codes in a log that is not a terminal"
    );
    // Personal data stays out of the log (debug level), however a line might come to carry it.
    for (what, pii) in [
        ("the shopper's email", "secret@example.com"),
        ("the street", "1 Market St"),
        ("the guest's phone", "+14155550100"),
        ("the guest's email", "ana@example.com"),
    ] {
        assert!(!log.contains(pii), "{what} found in the log");
    }
}

/// Serves `body` as JSON to every request on a loopback port (a stand-in identity provider).
async fn serve_json(body: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(body.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_identity_providers_tokens_are_accepted_and_checked() {
    let seed: [u8; 32] = [7; 32];
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": "idp-1",
                                "x": URL_SAFE_NO_PAD.encode(signing.verifying_key().to_bytes())}]});
    let idp = serve_json(jwks.to_string()).await;
    let issuer = "https://id.example.com";
    let app = TestApp::spawn_with(|c| {
        c.oidc = Some(ordo_server::auth::oidc::OidcSettings {
            issuer: issuer.into(),
            audience: "ordo-prod".into(),
            jwks_url: Some(format!("{idp}/jwks.json")),
            default_tenant: "default".into(),
        })
    })
    .await;
    let key = jsonwebtoken::EncodingKey::from_ed_der(signing.to_pkcs8_der().unwrap().as_bytes());
    let now = (ordo_store::now_ms() / 1000) as i64;
    let token = |kid: &str, f: &dyn Fn(&mut Value)| {
        let mut c = json!({"iss": issuer, "sub": "staff-9", "aud": "ordo-prod", "exp": now + 300, "iat": now, "role": "staff"});
        f(&mut c);
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        h.kid = Some(kid.into());
        jsonwebtoken::encode(&h, &c, &key).unwrap()
    };
    let get = |t: String| {
        let url = app.url("/v1/inventory/NONE");
        async move {
            client()
                .get(url)
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        get(token("idp-1", &|_| {})).await,
        StatusCode::NOT_FOUND,
        "a valid provider token passes (the SKU does not exist)"
    );
    assert_eq!(
        get(token("idp-1", &|c| c["role"] = json!("app"))).await,
        StatusCode::FORBIDDEN,
        "its role decides"
    );
    assert_eq!(
        get(token("idp-1", &|c| c["aud"] = json!("other"))).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(token("idp-1", &|c| c["exp"] = json!(now - 600))).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(token("idp-2", &|_| {})).await,
        StatusCode::UNAUTHORIZED,
        "unknown kid"
    );
    assert_eq!(
        get(token("idp-1", &|c| c["role"] = json!("superuser"))).await,
        StatusCode::UNAUTHORIZED
    );
    let forged = {
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"idp-1"}"#);
        let c = URL_SAFE_NO_PAD.encode(json!({"iss": issuer, "sub": "x", "aud": "ordo-prod", "exp": now + 300, "role": "admin"}).to_string());
        format!("{h}.{c}.")
    };
    assert_eq!(get(forged).await, StatusCode::UNAUTHORIZED);
    // Ordo's own tokens still work beside the provider's.
    assert_eq!(
        client_as(&app.tokens.staff)
            .get(app.url("/v1/inventory/NONE"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
}
