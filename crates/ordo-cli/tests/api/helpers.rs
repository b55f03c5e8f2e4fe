//! Test harness: spawns the real server on a random port against fresh storage (SQLite in a
//! temp dir, or a new PostgreSQL database when ORDO_TEST_DATABASE_URL is set) and speaks HTTP.

use ordo_server::Config;
use ordo_server::auth::{Principal, Role};
use ordo_store::{StorageConfig, Store};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct TestApp {
    pub base: String,
    /// Speaks as the mobile app (role app: catalog, carts, payment tokens, guest orders).
    pub client: reqwest::Client,
    /// Speaks as an admin (products, inventory, reading any order, metrics).
    pub admin: reqwest::Client,
    pub tokens: Tokens,
    /// The server's token authority, to mint tokens for any principal.
    pub auth: std::sync::Arc<ordo_server::auth::tokens::Authority>,
    pub store: Store,
    pub storage: StorageConfig,
    pub tenant: String,
    /// The server's in-process event bus.
    pub events: std::sync::Arc<ordo_server::events::Hub>,
    /// Where the server writes emails without SMTP.
    pub mailbox: std::path::PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _tmp: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn config(storage: StorageConfig) -> Config {
    Config {
        addr: "127.0.0.1:0".parse().unwrap(),
        storage,
        demo: false,
        tenant: "default".into(),
        default_currency: ordo_domain::Currency::parse("USD").unwrap(),
        sandbox_gateway_latency: Duration::ZERO,
        sandbox_authorization_ttl: Duration::from_secs(7 * 86_400),
        return_window: Duration::from_secs(30 * 86_400),
        authorization_grace: Duration::from_secs(60),
        hold_ttl: Duration::from_secs(600),
        shipping_rates: ordo_domain::routing::ShippingRates::STANDARD,
        batch_max_orders: 64,
        batch_max_wait: Duration::ZERO,
        batch_workers: None,
        write_queue_capacity: 4096,
        request_timeout: Duration::from_secs(30),
        issuer: "ordo".into(),
        audience: "ordo-api".into(),
        access_token_ttl: Duration::from_secs(900),
        oidc: None,
        rate_limit_per_ip: 0,
        rate_limit_per_subject: 0,
        cors_origins: vec![],
        header_read_timeout: Duration::from_secs(10),
        test_routes: false,
        events: ordo_server::events::EventSettings::default(),
        webhooks_allow_private: true,
        notify: ordo_server::events::notify::NotifySettings {
            mailbox_dir: std::env::temp_dir().join(format!(
                "ordo-test-mailbox-{}",
                uuid::Uuid::new_v4().simple()
            )),
            ..Default::default()
        },
        webauthn: ordo_server::auth::webauthn::RelyingParty {
            id: "localhost".into(),
            origins: vec!["http://localhost:8080".into()],
        },
    }
}

/// A client without credentials.
pub fn client() -> reqwest::Client {
    ordo_server::install_tls_provider();
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A client that sends `token` as its bearer token on every request (a request's own
/// Authorization header wins).
pub fn client_as(token: &str) -> reqwest::Client {
    ordo_server::install_tls_provider();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(60))
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Access tokens of the default tenant, one per role the tests speak as.
#[derive(Clone)]
pub struct Tokens {
    pub app: String,
    pub admin: String,
    pub staff: String,
}

/// A principal of `tenant` with `role` (subject `test-<role>`).
pub fn principal(tenant: &str, role: Role) -> Principal {
    Principal {
        tenant: tenant.into(),
        subject: format!("test-{}", role.as_str()),
        role,
        scope: role.default_scope().into(),
        order_id: None,
        locations: vec![],
        channel: None,
    }
}

/// Mints tokens with the deployment's own signing keys, read from `store` (processes started on
/// that storage afterwards verify them).
pub async fn mint_tokens(store: &Store, tenant: &str) -> Tokens {
    let keys = ordo_server::auth::keys::KeyRing::open(store).await.unwrap();
    let settings = ordo_server::auth::tokens::TokenSettings {
        issuer: "ordo".into(),
        audience: "ordo-api".into(),
        access_ttl: Duration::from_secs(900),
    };
    tokens_from(
        &ordo_server::auth::tokens::Authority::new(keys, settings),
        tenant,
    )
}

pub fn tokens_from(auth: &ordo_server::auth::tokens::Authority, tenant: &str) -> Tokens {
    let mint = |role| {
        auth.access_token(&principal(tenant, role), Duration::from_secs(900))
            .unwrap()
            .0
    };
    Tokens {
        app: mint(Role::App),
        admin: mint(Role::Admin),
        staff: mint(Role::Staff),
    }
}

/// A token from a running server's token endpoint (client credentials).
pub async fn token_for(base: &str, client_id: &str, secret: &str) -> String {
    let r = client()
        .post(format!("{base}/v1/auth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "token for {client_id}");
    r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        let tmp = tempfile::tempdir().unwrap();
        let storage = ordo_store::testing::test_storage(tmp.path())
            .await
            .expect("test storage");
        Self::spawn_on(storage, tmp, false).await
    }

    pub async fn spawn_on(storage: StorageConfig, tmp: tempfile::TempDir, demo: bool) -> TestApp {
        Self::spawn_configured(storage, tmp, |c| c.demo = demo).await
    }

    /// A server on fresh storage whose configuration `adjust` changes first (e.g. turning on
    /// `test_routes`, shortening `request_timeout`, a slow gateway or a tiny write queue).
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        let tmp = tempfile::tempdir().unwrap();
        let storage = ordo_store::testing::test_storage(tmp.path())
            .await
            .expect("test storage");
        Self::spawn_configured(storage, tmp, adjust).await
    }

    async fn spawn_configured(
        storage: StorageConfig,
        tmp: tempfile::TempDir,
        adjust: impl FnOnce(&mut Config),
    ) -> TestApp {
        let mut cfg = config(storage.clone());
        cfg.notify.mailbox_dir = tmp.path().join("mailbox");
        adjust(&mut cfg);
        let mailbox = cfg.notify.mailbox_dir.clone();
        let server = ordo_server::start(cfg).await.expect("server starts");
        let tokens = tokens_from(&server.auth, "default");
        let app = TestApp {
            base: format!("http://{}", server.addr),
            client: client_as(&tokens.app),
            admin: client_as(&tokens.admin),
            tokens,
            auth: server.auth.clone(),
            store: server.store.clone(),
            storage,
            tenant: "default".into(),
            events: server.events.clone(),
            mailbox,
            shutdown: Some(server.shutdown),
            _tmp: tmp,
        };
        app.store
            .upsert_location(
                &app.tenant,
                &ordo_domain::Location::new(
                    ordo_domain::LocationId::parse("wh-1").unwrap(),
                    "Warehouse 1",
                    ordo_domain::LocationKind::Warehouse,
                    40.0,
                    -74.0,
                ),
            )
            .await
            .unwrap();
        app.store
            .upsert_location(
                &app.tenant,
                &ordo_domain::Location::new(
                    ordo_domain::LocationId::parse("store-2").unwrap(),
                    "Store 2",
                    ordo_domain::LocationKind::Store,
                    41.0,
                    -87.0,
                ),
            )
            .await
            .unwrap();
        app
    }

    /// A token of this tenant for `role` with subject `subject` (e.g. a shopper's customer id).
    pub fn token_as(&self, role: Role, subject: &str) -> String {
        let p = Principal {
            subject: subject.into(),
            ..principal(&self.tenant, role)
        };
        self.auth
            .access_token(&p, Duration::from_secs(900))
            .unwrap()
            .0
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The client whose role may call `method path`: staff work (products, inventory, reading
    /// orders, metrics) as admin, the shopping routes as the app.
    pub fn as_needed(&self, method: &str, path: &str) -> &reqwest::Client {
        let staff_work = path.starts_with("/v1/inventory")
            || path.starts_with("/metrics")
            || path.starts_with("/v1/forecasts")
            || path.starts_with("/v1/replenishment")
            || path.starts_with("/v1/audit")
            || (method == "PUT" && path.starts_with("/v1/products"))
            || (method == "GET" && path.starts_with("/v1/orders/"));
        if staff_work {
            &self.admin
        } else {
            &self.client
        }
    }

    pub async fn get(&self, path: &str) -> Response {
        self.as_needed("GET", path)
            .get(self.url(path))
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.as_needed("POST", path)
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn put(&self, path: &str, body: &Value) -> Response {
        self.as_needed("PUT", path)
            .put(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Creates a product priced in USD cents with stock at wh-1 (and optionally store-2).
    pub async fn product(&self, sku: &str, price: i64, stock: i64) {
        let r = self.put(&format!("/v1/products/{sku}"), &json!({"name": format!("Product {sku}"), "price": {"amount": price, "currency": "USD"}, "category": "test"})).await;
        assert!(
            r.status().is_success(),
            "product upsert: {}",
            r.text().await.unwrap()
        );
        if stock > 0 {
            self.set_stock(sku, "wh-1", stock).await;
        }
    }

    /// `POST /v1/inventory/adjustments` under a fresh Idempotency-Key.
    pub async fn adjust(&self, body: &Value) -> Response {
        self.admin
            .post(self.url("/v1/inventory/adjustments"))
            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn set_stock(&self, sku: &str, location: &str, n: i64) {
        let r = self
            .admin
            .post(self.url("/v1/inventory/adjustments"))
            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
            .json(
                &json!({"sku": sku, "location_id": location, "set_on_hand": n, "reason": "count"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "adjustment: {}",
            r.text().await.unwrap()
        );
    }

    pub async fn token(&self, number: &str) -> String {
        let r = self
            .post(
                "/v1/payment-tokens",
                &json!({"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn inventory(&self, sku: &str) -> Value {
        let r = self.get(&format!("/v1/inventory/{sku}")).await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }

    pub async fn place(&self, key: &str, body: &Value) -> (StatusCode, Value) {
        place_at(&self.client, &self.base, key, body).await
    }
}

pub async fn place_at(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let r = client
        .post(format!("{base}/v1/orders"))
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v = r.json::<Value>().await.unwrap_or(Value::Null);
    (status, v)
}

pub fn address() -> Value {
    json!({"name": "Ana Lima", "line1": "1 Market St", "city": "San Francisco", "region": "CA", "postal_code": "94105", "country": "US"})
}

pub fn guest() -> Value {
    json!({"email": "ana@example.com", "phone": "+14155550100", "name": "Ana Lima"})
}

/// An inline single-line order body paying `total` with `token`.
pub fn inline_order(sku: &str, qty: i64, token: &str, total: i64) -> Value {
    json!({
        "lines": [{"sku": sku, "quantity": qty}],
        "customer": guest(),
        "shipments": [{"address": address()}],
        "payments": [{"token": token, "amount": {"amount": total, "currency": "USD"}}],
    })
}

/// The total the server will charge for an inline order (priced through a throwaway cart).
pub async fn quote(app: &TestApp, sku: &str, qty: i64) -> i64 {
    let r = app
        .post("/v1/carts", &json!({"lines": [{"sku": sku, "quantity": qty}], "shipments": [{"address": address()}]}))
        .await;
    let v: Value = r.json().await.unwrap();
    v["totals"]["total"]["amount"].as_i64().unwrap()
}

pub fn problem_paths(v: &Value) -> Vec<String> {
    v["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["path"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

pub struct Proc(pub Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `ordo serve` as its own process on the given storage; returns it and its base URL.
pub fn spawn_ordo(storage: &ordo_store::StorageConfig, demo: bool) -> (Proc, String) {
    spawn_ordo_with(storage, demo, &[])
}

/// `spawn_ordo` with extra `ordo serve` flags.
pub fn spawn_ordo_with(
    storage: &ordo_store::StorageConfig,
    demo: bool,
    extra: &[&str],
) -> (Proc, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ordo"));
    // The tests fire hundreds of requests from one address: no per-IP limit unless a test asks.
    cmd.args([
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--rate-limit-per-ip",
        "0",
        "--rate-limit-per-subject",
        "0",
    ])
    .args(extra)
    .env("ORDO_LOG", "warn")
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    match storage {
        ordo_store::StorageConfig::Sqlite { data_dir } => cmd.arg("--data-dir").arg(data_dir),
        ordo_store::StorageConfig::Postgres { url, .. } => cmd.args(["--database-url", url]),
    };
    if demo {
        cmd.arg("--demo");
    }
    started(cmd)
}

/// Starts `cmd` (an `ordo serve` with piped stdout) and reads its URL from the "serving on"
/// line (`--demo` prints its credentials first).
fn started(mut cmd: Command) -> (Proc, String) {
    let mut child = cmd.spawn().expect("ordo starts");
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("serving on") {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
    }
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    (Proc(child), url)
}

/// `ordo serve` with its log (stderr, at debug level) written to `log`.
pub fn spawn_ordo_logging(
    storage: &ordo_store::StorageConfig,
    log: &std::path::Path,
    extra: &[&str],
) -> (Proc, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ordo"));
    let file = std::fs::File::create(log).unwrap();
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--rate-limit-per-ip", "0"])
        .args(extra)
        .env("ORDO_LOG", "debug,sqlx=warn,hyper=info,h2=info")
        .stdout(Stdio::piped())
        .stderr(file);
    match storage {
        ordo_store::StorageConfig::Sqlite { data_dir } => cmd.arg("--data-dir").arg(data_dir),
        ordo_store::StorageConfig::Postgres { url, .. } => cmd.args(["--database-url", url]),
    };
    started(cmd)
}

/// Polls `check` every 50 ms until it returns true or `secs` pass; returns whether it did.
pub async fn wait_until<F, Fut>(secs: u64, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
