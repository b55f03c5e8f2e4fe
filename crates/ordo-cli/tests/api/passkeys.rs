//! Passkey step-up over HTTP, on both backends: a shopper registers a passkey with a software
//! authenticator (a real P-256 key, real authenticator data, clientDataJSON, CBOR attestation and
//! ECDSA signatures), an order above the tenant's threshold answers 403 `step-up-required` with a
//! WebAuthn challenge and places nothing, and the same request with the signed assertion is
//! placed. Every forged, replayed, stale or mismatched assertion is refused without placing.

use crate::helpers::*;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ciborium::Value as Cbor;
use ordo_server::auth::Role;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const THRESHOLD: i64 = 100_000;
const ORIGIN: &str = "http://localhost:8080";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A software authenticator holding one passkey. Its RP ID, origin and flags can be changed to
/// forge ceremonies a real browser would never produce.
struct Authenticator {
    key: SigningKey,
    credential_id: Vec<u8>,
    counter: u32,
    rp_id: String,
    origin: String,
    flags: u8,
}

impl Authenticator {
    fn new(seed: &str) -> Authenticator {
        Authenticator {
            key: SigningKey::from_bytes(&Sha256::digest(seed.as_bytes())).unwrap(),
            credential_id: Sha256::digest(format!("credential {seed}").as_bytes())[..16].to_vec(),
            counter: 0,
            rp_id: "localhost".into(),
            origin: ORIGIN.into(),
            // user present, user verified
            flags: 0x05,
        }
    }

    fn authenticator_data(&self, attested: bool) -> Vec<u8> {
        let mut out = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        out.push(if attested {
            self.flags | 0x40
        } else {
            self.flags
        });
        out.extend_from_slice(&self.counter.to_be_bytes());
        if attested {
            out.extend_from_slice(&[0; 16]); // aaguid
            out.extend_from_slice(&(self.credential_id.len() as u16).to_be_bytes());
            out.extend_from_slice(&self.credential_id);
            let point = self.key.verifying_key().to_encoded_point(false);
            let cose = Cbor::Map(vec![
                (Cbor::Integer(1.into()), Cbor::Integer(2.into())),
                (Cbor::Integer(3.into()), Cbor::Integer((-7).into())),
                (Cbor::Integer((-1).into()), Cbor::Integer(1.into())),
                (
                    Cbor::Integer((-2).into()),
                    Cbor::Bytes(point.x().unwrap().to_vec()),
                ),
                (
                    Cbor::Integer((-3).into()),
                    Cbor::Bytes(point.y().unwrap().to_vec()),
                ),
            ]);
            ciborium::into_writer(&cose, &mut out).unwrap();
        }
        out
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        json!({"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false})
            .to_string()
            .into_bytes()
    }

    /// The body of `POST /v1/auth/passkeys` answering registration `options`.
    fn attest(&self, options: &Value) -> Value {
        assert_eq!(options["rp"]["id"], self.rp_id.as_str());
        let object = Cbor::Map(vec![
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(vec![])),
            (
                Cbor::Text("authData".into()),
                Cbor::Bytes(self.authenticator_data(true)),
            ),
        ]);
        let mut attestation = vec![];
        ciborium::into_writer(&object, &mut attestation).unwrap();
        json!({
            "challenge_id": options["challenge_id"],
            "credential_id": b64(&self.credential_id),
            "client_data_json": b64(&self.client_data("webauthn.create", options["challenge"].as_str().unwrap())),
            "attestation_object": b64(&attestation),
        })
    }

    /// The JSON of a `Passkey-Assertion` answering the challenge of a `step-up-required` problem.
    fn assert(&mut self, problem: &Value, user_handle: &str) -> Value {
        self.counter += 1;
        let challenge = problem["challenge"]["challenge"]
            .as_str()
            .expect("a challenge");
        let client_data = self.client_data("webauthn.get", challenge);
        let auth = self.authenticator_data(false);
        let mut signed = auth.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let signature: Signature = self.key.sign(&signed);
        json!({
            "challenge_id": problem["challenge_id"],
            "credential_id": b64(&self.credential_id),
            "client_data_json": b64(&client_data),
            "authenticator_data": b64(&auth),
            "signature": b64(signature.to_der().as_bytes()),
            "user_handle": b64(user_handle.as_bytes()),
        })
    }
}

fn header(assertion: &Value) -> String {
    b64(assertion.to_string().as_bytes())
}

/// A shopper of the default tenant (a customer record and a token), and their client.
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

/// Registers `authenticator`'s passkey for the shopper behind `client`; returns its credential id.
async fn register(
    app: &TestApp,
    client: &reqwest::Client,
    authenticator: &Authenticator,
) -> String {
    let r = client
        .post(app.url("/v1/auth/passkeys/registration-options"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let options: Value = r.json().await.unwrap();
    let r = client
        .post(app.url("/v1/auth/passkeys"))
        .json(&authenticator.attest(&options))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["credential_id"].as_str().unwrap().to_string()
}

/// A member order (the shopper themselves) of `qty` × `sku`, paid in full with a fresh token.
async fn member_order(app: &TestApp, sku: &str, qty: i64) -> Value {
    let total = quote(app, sku, qty).await;
    json!({"lines": [{"sku": sku, "quantity": qty}], "shipments": [{"address": address()}],
           "payments": [{"token": app.token("4242424242424242").await, "amount": {"amount": total, "currency": "USD"}}]})
}

/// `POST /v1/orders` as `client`, with a `Passkey-Assertion` header when given.
async fn place_with(
    app: &TestApp,
    client: &reqwest::Client,
    key: &str,
    body: &Value,
    assertion: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = client
        .post(app.url("/v1/orders"))
        .header("Idempotency-Key", key)
        .json(body);
    if let Some(a) = assertion {
        req = req.header("Passkey-Assertion", a);
    }
    let r = req.send().await.unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    (status, headers, r.json().await.unwrap_or(Value::Null))
}

async fn placed(app: &TestApp) -> i64 {
    app.store
        .outbox_count(&app.tenant, "ordo.order.placed")
        .await
        .unwrap()
}

/// A server whose tenant asks for step-up above `THRESHOLD`, with a $600 product in stock.
async fn store_with_threshold() -> TestApp {
    let app = TestApp::spawn().await;
    app.store
        .set_step_up_threshold(&app.tenant, Some(THRESHOLD))
        .await
        .unwrap();
    app.product("TV", 60_000, 20).await;
    app.product("MUG", 1_500, 20).await;
    app
}

fn assert_step_up_required(status: StatusCode, headers: &reqwest::header::HeaderMap, v: &Value) {
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(
        headers.get("content-type").unwrap(),
        "application/problem+json"
    );
    assert_eq!(
        v["type"], "https://ordo.dev/problems/step-up-required",
        "{v}"
    );
}

fn assert_step_up_failed(what: &str, status: StatusCode, v: &Value) {
    assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {v}");
    assert_eq!(
        v["type"], "https://ordo.dev/problems/step-up-failed",
        "{what}: {v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_shopper_order_waits_for_a_passkey_and_is_then_placed() {
    let app = store_with_threshold().await;
    let ana = shopper(&app, "cus_ana").await;
    let mut authenticator = Authenticator::new("ana's phone");

    // Registration options in WebAuthn's JSON form, then the attestation.
    let r = ana
        .post(app.url("/v1/auth/passkeys/registration-options"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let options: Value = r.json().await.unwrap();
    assert_eq!(options["rp"], json!({"id": "localhost", "name": "Ordo"}));
    assert_eq!(options["user"]["id"], b64(b"cus_ana"));
    assert_eq!(options["user"]["name"], "cus_ana@example.com");
    assert_eq!(
        options["pubKeyCredParams"],
        json!([{"type": "public-key", "alg": -7}])
    );
    assert_eq!(options["attestation"], "none");
    assert!(options["timeout"].as_i64().unwrap() > 0);
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(options["challenge"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );
    let body = authenticator.attest(&options);
    let r = ana
        .post(app.url("/v1/auth/passkeys"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let credential = r.json::<Value>().await.unwrap()["credential_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(credential, b64(&authenticator.credential_id));
    // The registration challenge was single-use.
    let r = ana
        .post(app.url("/v1/auth/passkeys"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Above the threshold: 403 with the request options; nothing placed, nothing reserved.
    let order = member_order(&app, "TV", 2).await;
    let (s, h, problem) = place_with(&app, &ana, "big-1", &order, None).await;
    assert_step_up_required(s, &h, &problem);
    let challenge = &problem["challenge"];
    assert_eq!(challenge["rpId"], "localhost");
    assert_eq!(challenge["userVerification"], "required");
    assert_eq!(
        challenge["allowCredentials"],
        json!([{"type": "public-key", "id": credential}])
    );
    assert!(challenge["timeout"].as_i64().unwrap() > 0);
    assert!(
        problem["challenge_id"]
            .as_str()
            .unwrap()
            .starts_with("wch_")
    );
    assert_eq!(placed(&app).await, 0);
    assert_eq!(app.inventory("TV").await["reserved"], 0);

    // The same request (same key, same body) with the assertion is placed.
    let assertion = header(&authenticator.assert(&problem, "cus_ana"));
    let (s, _, v) = place_with(&app, &ana, "big-1", &order, Some(&assertion)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["customer"]["kind"], "member");
    assert_eq!(placed(&app).await, 1);
    assert_eq!(app.inventory("TV").await["reserved"], 2);
    // A retry of that request replays its answer.
    let (s, h, again) = place_with(&app, &ana, "big-1", &order, Some(&assertion)).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(h.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(again["id"], v["id"]);

    // The used challenge does not confirm another order of the same amount.
    let other = member_order(&app, "TV", 2).await;
    let (s, _, v) = place_with(&app, &ana, "big-2", &other, Some(&assertion)).await;
    assert_step_up_failed("replayed challenge", s, &v);
    assert_eq!(placed(&app).await, 1);
    assert_eq!(app.inventory("TV").await["reserved"], 2);

    // A signature counter that did not increase (a cloned authenticator?) is refused, and does
    // not use up the challenge: the authenticator's next, higher count confirms the order.
    let (s, h, problem) = place_with(&app, &ana, "big-2", &other, None).await;
    assert_step_up_required(s, &h, &problem);
    let used = authenticator.counter;
    authenticator.counter = used - 1;
    let (s, _, v) = place_with(
        &app,
        &ana,
        "big-2",
        &other,
        Some(&header(&authenticator.assert(&problem, "cus_ana"))),
    )
    .await;
    assert_step_up_failed("counter not increased", s, &v);
    authenticator.counter = used + 10;
    let (s, _, v) = place_with(
        &app,
        &ana,
        "big-2",
        &other,
        Some(&header(&authenticator.assert(&problem, "cus_ana"))),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(placed(&app).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_under_the_threshold_app_orders_and_tenants_without_one_need_no_step_up() {
    let app = store_with_threshold().await;
    let bo = shopper(&app, "cus_bo").await;
    // A shopper's small order: no passkey needed.
    let (s, _, v) = place_with(
        &app,
        &bo,
        "small",
        &member_order(&app, "MUG", 2).await,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // The app's guest orders, under and above the threshold, are placed as before.
    let total = quote(&app, "MUG", 1).await;
    let (s, v) = app
        .place(
            "guest-small",
            &inline_order("MUG", 1, &app.token("4242424242424242").await, total),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let total = quote(&app, "TV", 2).await;
    assert!(total > THRESHOLD);
    let (s, v) = app
        .place(
            "guest-big",
            &inline_order("TV", 2, &app.token("4242424242424242").await, total),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // A shopper without a passkey is told to register one; nothing is placed.
    let big = member_order(&app, "TV", 2).await;
    let (s, h, v) = place_with(&app, &bo, "big", &big, None).await;
    assert_step_up_required(s, &h, &v);
    assert!(v.get("challenge").is_none(), "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("/v1/auth/passkeys"),
        "{v}"
    );
    assert_eq!(placed(&app).await, 3);

    // Without a threshold there is no step-up: the same request is placed.
    app.store
        .set_step_up_threshold(&app.tenant, None)
        .await
        .unwrap();
    let (s, _, v) = place_with(&app, &bo, "big", &big, None).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_stale_foreign_and_mismatched_assertions_place_nothing() {
    let app = store_with_threshold().await;
    let ana = shopper(&app, "cus_ana").await;
    let cy = shopper(&app, "cus_cy").await;
    let mut phone = Authenticator::new("ana's phone");
    let mut cys_phone = Authenticator::new("cy's phone");
    register(&app, &ana, &phone).await;
    register(&app, &cy, &cys_phone).await;
    let order = member_order(&app, "TV", 2).await;
    let (s, h, problem) = place_with(&app, &ana, "k", &order, None).await;
    assert_step_up_required(s, &h, &problem);

    let mut refused: Vec<(&str, Value)> = vec![];
    // Signed by another key under Ana's credential id.
    let mut thief = Authenticator::new("a thief");
    thief.credential_id = phone.credential_id.clone();
    thief.counter = 50;
    refused.push(("wrong signature", thief.assert(&problem, "cus_ana")));
    // A phishing site's origin, another RP ID, no user verification.
    phone.origin = "https://evil.example".into();
    refused.push(("wrong origin", phone.assert(&problem, "cus_ana")));
    phone.origin = ORIGIN.into();
    phone.rp_id = "evil.example".into();
    refused.push(("wrong RP ID", phone.assert(&problem, "cus_ana")));
    phone.rp_id = "localhost".into();
    phone.flags = 0x01;
    refused.push(("user not verified", phone.assert(&problem, "cus_ana")));
    phone.flags = 0x05;
    // Cy's own valid passkey answering Ana's challenge.
    refused.push((
        "another shopper's credential",
        cys_phone.assert(&problem, "cus_cy"),
    ));
    // A good signature with a tampered signature counter in the data.
    let mut tampered = phone.assert(&problem, "cus_ana");
    let mut auth = URL_SAFE_NO_PAD
        .decode(tampered["authenticator_data"].as_str().unwrap())
        .unwrap();
    auth[36] ^= 0x80;
    tampered["authenticator_data"] = json!(b64(&auth));
    refused.push(("tampered authenticator data", tampered));
    // Someone else's user handle.
    refused.push(("foreign user handle", phone.assert(&problem, "cus_cy")));
    // A challenge issued for another amount (3 TVs) used for this order (2 TVs).
    let (_, _, three) =
        place_with(&app, &ana, "k3", &member_order(&app, "TV", 3).await, None).await;
    refused.push((
        "challenge for another amount",
        phone.assert(&three, "cus_ana"),
    ));
    // Ana's assertion over Cy's step-up challenge.
    let (_, _, cys) = place_with(&app, &cy, "kc", &member_order(&app, "TV", 2).await, None).await;
    refused.push(("another shopper's challenge", phone.assert(&cys, "cus_ana")));
    // A challenge of an unknown id.
    let mut unknown = phone.assert(&problem, "cus_ana");
    unknown["challenge_id"] = json!("wch_nope");
    refused.push(("unknown challenge", unknown));

    for (what, assertion) in &refused {
        let (s, _, v) = place_with(&app, &ana, "k", &order, Some(&header(assertion))).await;
        assert_step_up_failed(what, s, &v);
        assert_eq!(placed(&app).await, 0, "{what}");
        assert_eq!(app.inventory("TV").await["reserved"], 0, "{what}");
    }

    // An expired challenge is refused.
    let (_, _, stale) = place_with(&app, &ana, "k", &order, None).await;
    ordo_store::testing::expire_challenge(
        &app.store,
        &app.tenant,
        stale["challenge_id"].as_str().unwrap(),
    )
    .await
    .unwrap();
    let (s, _, v) = place_with(
        &app,
        &ana,
        "k",
        &order,
        Some(&header(&phone.assert(&stale, "cus_ana"))),
    )
    .await;
    assert_step_up_failed("expired challenge", s, &v);
    assert_eq!(placed(&app).await, 0);

    // None of the refusals used up the first challenge: the genuine assertion places the order.
    let (s, _, v) = place_with(
        &app,
        &ana,
        "k",
        &order,
        Some(&header(&phone.assert(&problem, "cus_ana"))),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(placed(&app).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_set_the_threshold_with_the_cli() {
    let app = TestApp::spawn().await;
    let admin = |extra: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ordo"));
        cmd.args(["admin", "set-step-up-threshold", "--tenant", "acme"])
            .args(extra);
        match &app.storage {
            ordo_store::StorageConfig::Sqlite { data_dir } => cmd.arg("--data-dir").arg(data_dir),
            ordo_store::StorageConfig::Postgres { url, .. } => cmd.args(["--database-url", url]),
        };
        cmd.output().unwrap()
    };
    assert!(admin(&["--amount", "25000"]).status.success());
    assert_eq!(
        app.store.step_up_threshold("acme").await.unwrap(),
        Some(25_000)
    );
    assert_eq!(
        app.store.step_up_threshold(&app.tenant).await.unwrap(),
        None,
        "one tenant's setting only"
    );
    assert!(admin(&["--off"]).status.success());
    assert_eq!(app.store.step_up_threshold("acme").await.unwrap(), None);
    assert!(
        !admin(&[]).status.success(),
        "an amount or --off is required"
    );
    assert!(!admin(&["--amount", "-5"]).status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_confirms_one_order_even_when_raced() {
    let app = store_with_threshold().await;
    let ana = shopper(&app, "cus_ana").await;
    let mut phone = Authenticator::new("ana's phone");
    register(&app, &ana, &phone).await;
    let (s, h, problem) = place_with(
        &app,
        &ana,
        "first",
        &member_order(&app, "TV", 2).await,
        None,
    )
    .await;
    assert_step_up_required(s, &h, &problem);
    let assertion = header(&phone.assert(&problem, "cus_ana"));
    // Six different orders of the same amount race with the one assertion.
    let mut bodies = vec![];
    for _ in 0..6 {
        bodies.push(member_order(&app, "TV", 2).await);
    }
    let races = bodies.iter().enumerate().map(|(i, body)| {
        let (app, ana, assertion) = (&app, &ana, &assertion);
        async move { place_with(app, ana, &format!("race-{i}"), body, Some(assertion)).await }
    });
    let answers = futures::future::join_all(races).await;
    let created = answers
        .iter()
        .filter(|(s, _, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(
        created,
        1,
        "{:?}",
        answers
            .iter()
            .map(|(s, _, v)| (s, v["type"].clone()))
            .collect::<Vec<_>>()
    );
    for (s, _, v) in answers.iter().filter(|(s, _, _)| *s != StatusCode::CREATED) {
        assert_step_up_failed("raced", *s, v);
    }
    assert_eq!(placed(&app).await, 1);
    assert_eq!(app.inventory("TV").await["reserved"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_passkey_input_is_a_clear_4xx_problem() {
    let app = store_with_threshold().await;
    let ana = shopper(&app, "cus_ana").await;
    let phone = Authenticator::new("ana's phone");
    register(&app, &ana, &phone).await;
    let order = member_order(&app, "TV", 2).await;
    let garbage = [
        ("huge", "A".repeat(40 << 10)),
        ("not base64url", "%%% not base64 %%%".to_string()),
        ("not JSON", b64(b"\x00\x01 definitely not json")),
        ("JSON missing fields", b64(br#"{"challenge_id":"wch_x"}"#)),
        ("JSON with an unknown field", b64(br#"{"challenge_id":"x","credential_id":"","client_data_json":"","authenticator_data":"","signature":"","extra":1}"#)),
        ("binary field not base64url", b64(br#"{"challenge_id":"x","credential_id":"!!","client_data_json":"","authenticator_data":"","signature":""}"#)),
        ("a JSON array", b64(b"[1,2,3]")),
    ];
    for (what, value) in &garbage {
        let (s, h, v) = place_with(&app, &ana, "k", &order, Some(value)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{what}: {v}");
        assert_eq!(
            h.get("content-type").unwrap(),
            "application/problem+json",
            "{what}"
        );
        assert_eq!(
            v["type"], "https://ordo.dev/problems/passkey-assertion-invalid",
            "{what}"
        );
    }
    // Well-formed but empty parts: refused as a failed step-up, never a 5xx.
    let empty = b64(br#"{"challenge_id":"x","credential_id":"","client_data_json":"","authenticator_data":"","signature":""}"#);
    let (s, _, v) = place_with(&app, &ana, "k", &order, Some(&empty)).await;
    assert_step_up_failed("empty parts", s, &v);
    assert_eq!(placed(&app).await, 0);

    // Registration: bad base64url, a broken attestation, an unknown challenge: 422 with paths.
    let r = ana
        .post(app.url("/v1/auth/passkeys/registration-options"))
        .send()
        .await
        .unwrap();
    let options: Value = r.json().await.unwrap();
    let good = phone.attest(&options);
    let mut bad_b64 = good.clone();
    bad_b64["attestation_object"] = json!("***");
    let mut broken = good.clone();
    broken["attestation_object"] = json!(b64(b"not cbor at all"));
    let mut unknown = good.clone();
    unknown["challenge_id"] = json!("wch_unknown");
    for (what, body, path) in [
        ("bad base64url", bad_b64, "attestation_object"),
        ("not CBOR", broken, "attestation_object"),
        ("unknown challenge", unknown, "challenge_id"),
    ] {
        let r = ana
            .post(app.url("/v1/auth/passkeys"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{what}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(problem_paths(&v), vec![path.to_string()], "{what}: {v}");
    }
    // The same passkey twice: refused (the challenge above is still good).
    let r = ana
        .post(app.url("/v1/auth/passkeys"))
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        problem_paths(&r.json::<Value>().await.unwrap()),
        vec!["credential_id".to_string()]
    );
    // Passkeys are the shoppers' own: the app's token may not register one.
    let r = app
        .client
        .post(app.url("/v1/auth/passkeys/registration-options"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = client()
        .post(app.url("/v1/auth/passkeys/registration-options"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
