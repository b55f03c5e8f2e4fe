//! Test harness: spawns the real server on a random port against fresh storage (SQLite in a
//! temp dir, or a new PostgreSQL database when ORDO_TEST_DATABASE_URL is set) and speaks HTTP.

use ordo_server::Config;
use ordo_store::{Store, StorageConfig};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Store,
    pub storage: StorageConfig,
    pub tenant: String,
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
        authorization_grace: Duration::from_secs(60),
        batch_max_orders: 64,
        batch_max_wait: Duration::ZERO,
        batch_workers: None,
        write_queue_capacity: 4096,
        request_timeout: Duration::from_secs(30),
        test_routes: false,
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(256).timeout(Duration::from_secs(60)).build().unwrap()
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        let tmp = tempfile::tempdir().unwrap();
        let storage = ordo_store::testing::test_storage(tmp.path()).await.expect("test storage");
        Self::spawn_on(storage, tmp, false).await
    }

    pub async fn spawn_on(storage: StorageConfig, tmp: tempfile::TempDir, demo: bool) -> TestApp {
        Self::spawn_configured(storage, tmp, |c| c.demo = demo).await
    }

    /// A server on fresh storage whose configuration `adjust` changes first (e.g. turning on
    /// `test_routes`, shortening `request_timeout`, a slow gateway or a tiny write queue).
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        let tmp = tempfile::tempdir().unwrap();
        let storage = ordo_store::testing::test_storage(tmp.path()).await.expect("test storage");
        Self::spawn_configured(storage, tmp, adjust).await
    }

    async fn spawn_configured(storage: StorageConfig, tmp: tempfile::TempDir, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let mut cfg = config(storage.clone());
        adjust(&mut cfg);
        let server = ordo_server::start(cfg).await.expect("server starts");
        let app = TestApp {
            base: format!("http://{}", server.addr),
            client: client(),
            store: server.store.clone(),
            storage,
            tenant: "default".into(),
            shutdown: Some(server.shutdown),
            _tmp: tmp,
        };
        app.store
            .upsert_location(
                &app.tenant,
                &ordo_domain::Location {
                    id: ordo_domain::LocationId::parse("wh-1").unwrap(),
                    name: "Warehouse 1".into(),
                    kind: ordo_domain::LocationKind::Warehouse,
                    lat: 40.0,
                    lon: -74.0,
                },
            )
            .await
            .unwrap();
        app.store
            .upsert_location(
                &app.tenant,
                &ordo_domain::Location {
                    id: ordo_domain::LocationId::parse("store-2").unwrap(),
                    name: "Store 2".into(),
                    kind: ordo_domain::LocationKind::Store,
                    lat: 41.0,
                    lon: -87.0,
                },
            )
            .await
            .unwrap();
        app
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.client.post(self.url(path)).json(body).send().await.unwrap()
    }

    pub async fn put(&self, path: &str, body: &Value) -> Response {
        self.client.put(self.url(path)).json(body).send().await.unwrap()
    }

    /// Creates a product priced in USD cents with stock at wh-1 (and optionally store-2).
    pub async fn product(&self, sku: &str, price: i64, stock: i64) {
        let r = self.put(&format!("/v1/products/{sku}"), &json!({"name": format!("Product {sku}"), "price": {"amount": price, "currency": "USD"}, "category": "test"})).await;
        assert!(r.status().is_success(), "product upsert: {}", r.text().await.unwrap());
        if stock > 0 {
            self.set_stock(sku, "wh-1", stock).await;
        }
    }

    /// `POST /v1/inventory/adjustments` under a fresh Idempotency-Key.
    pub async fn adjust(&self, body: &Value) -> Response {
        self.client.post(self.url("/v1/inventory/adjustments")).header("Idempotency-Key", uuid::Uuid::new_v4().to_string()).json(body).send().await.unwrap()
    }

    pub async fn set_stock(&self, sku: &str, location: &str, n: i64) {
        let r = self
            .client
            .post(self.url("/v1/inventory/adjustments"))
            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
            .json(&json!({"sku": sku, "location_id": location, "set_on_hand": n, "reason": "count"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "adjustment: {}", r.text().await.unwrap());
    }

    pub async fn token(&self, number: &str) -> String {
        let r = self.post("/v1/payment-tokens", &json!({"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"})).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string()
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

pub async fn place_at(client: &reqwest::Client, base: &str, key: &str, body: &Value) -> (StatusCode, Value) {
    let r = client.post(format!("{base}/v1/orders")).header("Idempotency-Key", key).json(body).send().await.unwrap();
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
    v["errors"].as_array().map(|a| a.iter().map(|e| e["path"].as_str().unwrap_or("").to_string()).collect()).unwrap_or_default()
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
pub fn spawn_ordo_with(storage: &ordo_store::StorageConfig, demo: bool, extra: &[&str]) -> (Proc, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ordo"));
    cmd.args(["serve", "--addr", "127.0.0.1:0"]).args(extra).env("ORDO_LOG", "warn").stdout(Stdio::piped()).stderr(Stdio::inherit());
    match storage {
        ordo_store::StorageConfig::Sqlite { data_dir } => cmd.arg("--data-dir").arg(data_dir),
        ordo_store::StorageConfig::Postgres { url, .. } => cmd.args(["--database-url", url]),
    };
    if demo {
        cmd.arg("--demo");
    }
    let mut child = cmd.spawn().expect("ordo starts");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap_or_else(|| panic!("no URL in {line:?}")).to_string();
    (Proc(child), url)
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
