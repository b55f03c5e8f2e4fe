//! Ordo's load generator: drives order placement over HTTP the way mobile apps do and prints
//! throughput, latency percentiles, errors by status, oversold units and the server's RSS.
//!
//! Modes: closed loop (`--clients C`: each client sends its next request when the last returns),
//! open loop (`--rate R`: requests start on a schedule and latency counts from the scheduled
//! start, so queueing is not hidden), and flash sale (`--flash-stock S --buyers B`: B buyers fire
//! at once at one SKU with S units). `--mode checkout` runs cart → token → order per iteration;
//! `--mode order` places orders with pre-made tokens and, by default, from pre-synced carts
//! (`cart_id`, the mobile app's path; `--from lines` sends inline lines instead).
//! `--lifecycle-orders N` takes N orders from placed to delivered with concurrent staff clients.

mod events;
mod lifecycle;

use clap::{Parser, ValueEnum};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Cart → payment token → order (three calls per checkout).
    Checkout,
    /// Order placement only (carts and tokens are made before the clock starts).
    Order,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum From {
    /// From a synced cart (`cart_id`), as the mobile app places orders.
    Cart,
    /// From inline lines.
    Lines,
}

/// What one order-mode request needs, made before the clock starts.
struct Prepared {
    token: String,
    /// The synced cart and its total (`--from cart`).
    cart: Option<(Value, Value)>,
}

#[derive(Parser, Debug, Clone)]
#[command(
    name = "loadgen",
    about = "Drive Ordo with mobile checkouts and measure it"
)]
struct Args {
    /// Base URL of a running Ordo.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// More base URLs (other Ordo processes); requests are spread round-robin.
    #[arg(long = "also-url")]
    also_url: Vec<String>,
    #[arg(long, value_enum, default_value_t = Mode::Order)]
    mode: Mode,
    /// Order mode: place from pre-synced carts (the mobile path) or from inline lines.
    #[arg(long, value_enum, default_value_t = From::Cart)]
    from: From,
    /// Closed loop: this many concurrent clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Open loop: start this many requests (checkouts in checkout mode) per second instead.
    #[arg(long)]
    rate: Option<u64>,
    /// How long to run (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Number of SKUs to spread orders over (created by loadgen with ample stock).
    #[arg(long, default_value_t = 1000)]
    skus: usize,
    /// Location to stock the loadgen SKUs at (must exist; the demo has wh-east).
    #[arg(long, default_value = "wh-east")]
    location: String,
    /// Flash sale: one SKU with this many units, `--buyers` buyers fire at once.
    #[arg(long)]
    flash_stock: Option<i64>,
    #[arg(long, default_value_t = 200)]
    buyers: usize,
    /// PID of the server process(es), to report their peak RSS.
    #[arg(long = "server-pid")]
    server_pid: Vec<u32>,
    /// Order mode, closed loop: payment tokens to make before the clock starts (each pays for
    /// one order; the run ends early if they run out). Default: enough for 6,000 orders/s.
    #[arg(long)]
    tokens: Option<usize>,
    /// The order lifecycle instead: place this many orders (before the clock starts), then take
    /// each from placed to delivered (pick, pack, ship with its capture, deliver) with
    /// `--clients` concurrent staff clients; reports transitions per second and latency per step.
    #[arg(long)]
    lifecycle_orders: Option<usize>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// OAuth2 client the shoppers' app uses (places the orders).
    /// Measure commit-to-NATS latency of `ordo.order.placed` events on this NATS server (the
    /// server runs with the same --nats-url).
    #[arg(long)]
    nats_url: Option<String>,
    /// Serve a webhook endpoint, subscribe it to `ordo.order.placed` and measure commit-to-webhook
    /// latency (the server needs --webhooks-allow-private).
    #[arg(long)]
    webhook: bool,
    #[arg(long, default_value = "demo-app")]
    app_client_id: String,
    #[arg(long, default_value = "demo-secret")]
    app_client_secret: String,
    /// OAuth2 client with the admin role (creates the SKUs, sets and reads stock).
    #[arg(long, default_value = "demo-admin")]
    admin_client_id: String,
    #[arg(long, default_value = "demo-admin-secret")]
    admin_client_secret: String,
}

/// An access token from Ordo's token endpoint (client credentials); `None` from a server that
/// predates authentication (no token endpoint), so older builds can be measured alike.
async fn access_token(base: &str, id: &str, secret: &str) -> Result<Option<String>, String> {
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/auth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ])
        .send()
        .await;
    if matches!(&r, Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND) {
        return Ok(None);
    }
    let v = must(r, &format!("token for {id}")).await?;
    v["access_token"]
        .as_str()
        .map(|t| Some(t.to_string()))
        .ok_or_else(|| format!("token for {id}: no access_token in {v}"))
}

/// A client that sends `token` as its bearer token (none: no Authorization header).
fn client_with(token: Option<String>, pool: usize) -> Result<reqwest::Client, String> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = token {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}")
                .parse()
                .map_err(|_| "a token that is not a header value".to_string())?,
        );
    }
    reqwest::Client::builder()
        .pool_max_idle_per_host(pool)
        .timeout(Duration::from_secs(30))
        .default_headers(headers)
        .build()
        .map_err(|e| e.to_string())
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 10s"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("'{s}': use ms, s or m")),
    }
}

const PRICE: i64 = 1000;
/// Oregon: no sales tax, so an order's total is price × qty + shipping.
fn address() -> Value {
    json!({"name": "Load Gen", "line1": "1 Main St", "city": "Portland", "region": "OR", "postal_code": "97201", "country": "US"})
}
fn customer(i: u64) -> Value {
    json!({"email": format!("buyer{i}@example.com"), "phone": "+14155550100", "name": "Buyer"})
}

#[derive(Default)]
struct Tally {
    order_latency_us: Vec<u64>,
    checkout_latency_us: Vec<u64>,
    by_status: BTreeMap<String, u64>,
    placed: u64,
}

struct Shared {
    args: Args,
    client: reqwest::Client,
    bases: Vec<String>,
    tally: Mutex<Tally>,
    counter: AtomicU64,
    skus: Vec<String>,
    tokens: Mutex<Vec<Prepared>>,
}

impl Shared {
    fn base(&self, i: u64) -> &str {
        &self.bases[i as usize % self.bases.len()]
    }
}

async fn must(r: Result<reqwest::Response, reqwest::Error>, what: &str) -> Result<Value, String> {
    let r = r.map_err(|e| format!("{what}: {e}"))?;
    let status = r.status();
    let body: Value = r.json().await.map_err(|e| format!("{what}: {e}"))?;
    if !status.is_success() {
        return Err(format!("{what}: {status} {body}"));
    }
    Ok(body)
}

async fn make_token(client: &reqwest::Client, base: &str) -> Result<String, String> {
    let v = must(
        client.post(format!("{base}/v1/payment-tokens")).json(&json!({"number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"})).send().await,
        "tokenize",
    )
    .await?;
    v["token"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| "tokenize: no token".into())
}

/// A benchmark places far more orders than a node's daily capacity: the stocking location's
/// capacity is lifted (every placement still counts its packages; only the limit goes). A server
/// without the locations API (an older build under A/B comparison) is left as it is.
async fn lift_capacity(client: &reqwest::Client, base: &str, location: &str) -> Result<(), String> {
    let url = format!("{base}/v1/locations/{location}");
    let resp = client
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("read location: {e}"))?;
    if !resp.status().is_success() {
        return Ok(());
    }
    let mut body: serde_json::Value = resp
        .json()
        .await
        .map_err(|e| format!("read location: {e}"))?;
    if let Some(m) = body.as_object_mut() {
        for k in ["id", "load_today", "daily_capacity"] {
            m.remove(k);
        }
    }
    must(
        client.put(&url).json(&body).send().await,
        "lift the location's daily capacity",
    )
    .await?;
    Ok(())
}

async fn setup_skus(
    client: &reqwest::Client,
    base: &str,
    prefix: &str,
    n: usize,
    stock: i64,
    location: &str,
) -> Result<Vec<String>, String> {
    lift_capacity(client, base, location).await?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let sku = format!("{prefix}-{i:05}");
        must(
            client.put(format!("{base}/v1/products/{sku}")).json(&json!({"name": format!("Loadgen item {i}"), "price": {"amount": PRICE, "currency": "USD"}, "category": "loadgen"})).send().await,
            "create product",
        )
        .await?;
        must(
            client.post(format!("{base}/v1/inventory/adjustments")).header("Idempotency-Key", format!("loadgen-stock-{sku}-{}", std::process::id())).json(&json!({"sku": sku, "location_id": location, "set_on_hand": stock, "reason": "receipt"})).send().await,
            "stock product",
        )
        .await?;
        out.push(sku);
    }
    Ok(out)
}

/// One unit of work: a whole checkout or one order. Records latencies and the outcome.
/// Returns false when there is nothing left to do (tokens ran out).
async fn one(shared: &Shared, scheduled: Instant) -> bool {
    let i = shared.counter.fetch_add(1, Ordering::Relaxed);
    let base = shared.base(i).to_string();
    let sku = &shared.skus[(i as usize * 7919) % shared.skus.len()];
    let client = &shared.client;
    let (status, order_us) = match shared.args.mode {
        Mode::Order => {
            let prepared = shared.tokens.lock().await.pop();
            let Some(Prepared { token, cart }) = prepared else {
                shared
                    .tally
                    .lock()
                    .await
                    .by_status
                    .entry("no_token_left".into())
                    .and_modify(|c| *c += 1)
                    .or_insert(1);
                return false;
            };
            let body = match cart {
                Some((id, total)) => {
                    json!({"cart_id": id, "payments": [{"token": token, "amount": total}], "expected_total": total})
                }
                None => {
                    json!({"lines": [{"sku": sku, "quantity": 1}], "customer": customer(i), "shipments": [{"address": address()}],
                               "payments": [{"token": token, "amount": {"amount": PRICE + 599, "currency": "USD"}}]})
                }
            };
            let t0 = Instant::now();
            let r = client
                .post(format!("{base}/v1/orders"))
                .header("Idempotency-Key", format!("lg-{}-{i}", std::process::id()))
                .json(&body)
                .send()
                .await;
            let s = match r {
                Ok(r) => {
                    let s = r.status().as_u16().to_string();
                    let _ = r.bytes().await;
                    s
                }
                Err(e) => {
                    if e.is_timeout() {
                        "timeout".into()
                    } else {
                        "connect_error".into()
                    }
                }
            };
            (s, t0.elapsed().as_micros() as u64)
        }
        Mode::Checkout => {
            let cart = client
                .post(format!("{base}/v1/carts"))
                .json(&json!({"lines": [{"sku": sku, "quantity": 1}], "customer": customer(i), "shipments": [{"address": address()}]}))
                .send()
                .await;
            let cart: Value = match cart {
                Ok(r) if r.status().is_success() => r.json().await.unwrap_or(Value::Null),
                Ok(r) => {
                    record(
                        shared,
                        format!("cart_{}", r.status().as_u16()),
                        None,
                        scheduled,
                    )
                    .await;
                    return true;
                }
                Err(_) => {
                    record(shared, "connect_error".into(), None, scheduled).await;
                    return true;
                }
            };
            let token = match make_token(client, &base).await {
                Ok(t) => t,
                Err(_) => {
                    record(shared, "token_error".into(), None, scheduled).await;
                    return true;
                }
            };
            let body = json!({"cart_id": cart["id"], "payments": [{"token": token, "amount": cart["totals"]["total"]}], "expected_total": cart["totals"]["total"]});
            let t0 = Instant::now();
            let r = client
                .post(format!("{base}/v1/orders"))
                .header("Idempotency-Key", format!("lg-{}-{i}", std::process::id()))
                .json(&body)
                .send()
                .await;
            let s = match r {
                Ok(r) => {
                    let s = r.status().as_u16().to_string();
                    let _ = r.bytes().await;
                    s
                }
                Err(_) => "connect_error".into(),
            };
            (s, t0.elapsed().as_micros() as u64)
        }
    };
    record(shared, status, Some(order_us), scheduled).await;
    true
}

async fn record(shared: &Shared, status: String, order_us: Option<u64>, scheduled: Instant) {
    let total_us = scheduled.elapsed().as_micros() as u64;
    let mut t = shared.tally.lock().await;
    if status == "201" {
        t.placed += 1;
    }
    *t.by_status.entry(status).or_default() += 1;
    if let Some(us) = order_us {
        // Open loop: the order's latency counts from its scheduled start (queueing included).
        let us = if shared.args.rate.is_some() && shared.args.mode == Mode::Order {
            total_us
        } else {
            us
        };
        t.order_latency_us.push(us);
    }
    if shared.args.mode == Mode::Checkout {
        t.checkout_latency_us.push(total_us);
    }
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[idx.min(sorted.len() - 1)] as f64 / 1000.0
}

fn summary(v: &mut [u64]) -> Value {
    v.sort_unstable();
    json!({"count": v.len(), "p50_ms": pct(v, 50.0), "p95_ms": pct(v, 95.0), "p99_ms": pct(v, 99.0), "max_ms": pct(v, 100.0)})
}

/// An admin client with a pool as large as the closed loop's (the lifecycle's staff clients).
async fn admin_pool(args: &Args, base: &str) -> Result<reqwest::Client, String> {
    client_with(
        access_token(base, &args.admin_client_id, &args.admin_client_secret).await?,
        args.clients.max(8),
    )
}

fn rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    // reqwest's TLS needs the process's crypto provider before any client exists (ring; no OpenSSL).
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Err(e) = run(args).await {
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    let mut bases = vec![args.url.trim_end_matches('/').to_string()];
    bases.extend(
        args.also_url
            .iter()
            .map(|u| u.trim_end_matches('/').to_string()),
    );
    let base = bases[0].clone();
    must(
        reqwest::Client::new()
            .get(format!("{base}/readyz"))
            .send()
            .await,
        "readyz",
    )
    .await?;
    // Tokens live 15 minutes by default: longer than any run this tool makes.
    let pool = args.clients.max(args.buyers).max(64);
    let client = client_with(
        access_token(&base, &args.app_client_id, &args.app_client_secret).await?,
        pool,
    )?;
    let admin = client_with(
        access_token(&base, &args.admin_client_id, &args.admin_client_secret).await?,
        8,
    )?;
    let run_id = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            % 0xffffff
    );

    // Peak RSS of the server(s), sampled every 100 ms.
    let peak_rss = Arc::new(AtomicU64::new(0));
    let sampling = Arc::new(AtomicBool::new(true));
    {
        let (peak, on, pids) = (peak_rss.clone(), sampling.clone(), args.server_pid.clone());
        tokio::spawn(async move {
            while on.load(Ordering::Relaxed) {
                let total: u64 = pids.iter().filter_map(|p| rss_kb(*p)).sum();
                peak.fetch_max(total, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }

    if let Some(stock) = args.flash_stock {
        return flash_sale(
            &args, &client, &admin, &bases, &run_id, stock, peak_rss, sampling,
        )
        .await;
    }

    if !args.json {
        eprintln!("setting up {} SKUs…", args.skus);
    }
    let skus = setup_skus(
        &admin,
        &base,
        &format!("LG{run_id}"),
        args.skus,
        1_000_000_000,
        &args.location,
    )
    .await?;
    if let Some(n) = args.lifecycle_orders {
        let out = lifecycle::run(
            &args,
            &client,
            &admin_pool(&args, &base).await?,
            &base,
            &skus,
            n,
        )
        .await;
        sampling.store(false, Ordering::Relaxed);
        return out;
    }
    let expected = match (args.mode, args.rate) {
        (Mode::Order, Some(r)) => (r as f64 * args.duration.as_secs_f64() * 1.05) as usize + 16,
        (Mode::Order, None) => args.tokens.unwrap_or_else(|| {
            let secs = args.duration.as_secs_f64();
            ((args.clients as f64 * secs * 1000.0).min(secs * 6000.0)) as usize + 16
        }),
        _ => 0,
    };
    let mut tokens = Vec::new();
    if args.mode == Mode::Order {
        if !args.json {
            eprintln!(
                "making {expected} payment tokens{}…",
                if args.from == From::Cart {
                    " and synced carts"
                } else {
                    ""
                }
            );
        }
        let mut futs = Vec::new();
        for chunk in 0..32 {
            let (client, base, skus, from) =
                (client.clone(), base.clone(), skus.clone(), args.from);
            let n = expected / 32 + 1;
            futs.push(tokio::spawn(async move {
                let mut v = Vec::with_capacity(n);
                for k in 0..n {
                    let token = make_token(&client, &base).await?;
                    let cart = match from {
                        From::Lines => None,
                        From::Cart => {
                            let sku = &skus[((chunk * n + k) * 7919) % skus.len()];
                            let body = json!({"lines": [{"sku": sku, "quantity": 1}], "customer": customer((chunk * n + k) as u64), "shipments": [{"address": address()}]});
                            let c = must(client.post(format!("{base}/v1/carts")).json(&body).send().await, "sync cart").await?;
                            Some((c["id"].clone(), c["totals"]["total"].clone()))
                        }
                    };
                    v.push(Prepared { token, cart });
                }
                Ok::<_, String>(v)
            }));
        }
        for f in futs {
            tokens.extend(f.await.map_err(|e| e.to_string())??);
        }
    }
    let shared = Arc::new(Shared {
        args: args.clone(),
        client,
        bases,
        tally: Mutex::new(Tally::default()),
        counter: AtomicU64::new(0),
        skus,
        tokens: Mutex::new(tokens),
    });
    let watch = events::Watch::start(args.nats_url.as_deref(), args.webhook, &admin, &base).await?;
    if !args.json {
        eprintln!("running for {:?}…", args.duration);
    }
    let start = Instant::now();
    let end = start + args.duration;
    match args.rate {
        Some(rate) => {
            let interval = Duration::from_secs_f64(1.0 / rate as f64);
            let mut handles = Vec::new();
            let mut next = start;
            while next < end {
                tokio::time::sleep_until(next.into()).await;
                let s = shared.clone();
                let scheduled = next;
                handles.push(tokio::spawn(async move {
                    one(&s, scheduled).await;
                }));
                next += interval;
            }
            for h in handles {
                let _ = h.await;
            }
        }
        None => {
            let mut handles = Vec::new();
            for _ in 0..args.clients {
                let s = shared.clone();
                handles.push(tokio::spawn(async move {
                    while Instant::now() < end {
                        if !one(&s, Instant::now()).await {
                            break;
                        }
                    }
                }));
            }
            for h in handles {
                let _ = h.await;
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    sampling.store(false, Ordering::Relaxed);
    let mut t = shared.tally.lock().await;
    let placed = t.placed;
    let errors: u64 = t
        .by_status
        .iter()
        .filter(|(k, _)| k.as_str() != "201")
        .map(|(_, v)| *v)
        .sum();
    let report = json!({
        "mode": format!("{:?}", args.mode).to_lowercase(),
        "loop": if args.rate.is_some() { "open" } else { "closed" },
        "clients": if args.rate.is_some() { Value::Null } else { json!(args.clients) },
        "offered_rate": args.rate,
        "duration_s": elapsed,
        "placed": placed,
        "orders_per_s": placed as f64 / elapsed,
        "order_latency": summary(&mut t.order_latency_us),
        "checkout_latency": if args.mode == Mode::Checkout { summary(&mut t.checkout_latency_us) } else { Value::Null },
        "by_status": t.by_status,
        "errors": errors,
        "oversold": 0,
        "server_peak_rss_mb": if args.server_pid.is_empty() { Value::Null } else { json!(peak_rss.load(Ordering::Relaxed) as f64 / 1024.0) },
    });
    drop(t);
    let mut report = report;
    if !watch.is_empty() {
        report["events"] = watch.report(placed).await;
    }
    print_report(&args, &report);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn flash_sale(
    args: &Args,
    client: &reqwest::Client,
    admin: &reqwest::Client,
    bases: &[String],
    run_id: &str,
    stock: i64,
    peak_rss: Arc<AtomicU64>,
    sampling: Arc<AtomicBool>,
) -> Result<(), String> {
    let base = &bases[0];
    let sku = setup_skus(
        admin,
        base,
        &format!("FLASH{run_id}"),
        1,
        stock,
        &args.location,
    )
    .await?
    .remove(0);
    // Every buyer syncs a cart and tokenizes a card before the sale opens (`--from lines`:
    // inline orders instead).
    let mut prepared = Vec::with_capacity(args.buyers);
    for i in 0..args.buyers {
        let token = make_token(client, base).await?;
        let cart = match args.from {
            From::Lines => None,
            From::Cart => {
                let body = json!({"lines": [{"sku": sku, "quantity": 1}], "customer": customer(i as u64), "shipments": [{"address": address()}]});
                let c = must(
                    client
                        .post(format!("{base}/v1/carts"))
                        .json(&body)
                        .send()
                        .await,
                    "sync cart",
                )
                .await?;
                Some((c["id"].clone(), c["totals"]["total"].clone()))
            }
        };
        prepared.push(Prepared { token, cart });
    }
    let start = Instant::now();
    let futs = prepared.into_iter().enumerate().map(|(i, Prepared { token, cart })| {
        let client = client.clone();
        let base = bases[i % bases.len()].clone();
        let sku = sku.clone();
        async move {
            let body = match cart {
                Some((id, total)) => json!({"cart_id": id, "payments": [{"token": token, "amount": total}], "expected_total": total}),
                None => json!({"lines": [{"sku": sku, "quantity": 1}], "customer": customer(i as u64), "shipments": [{"address": address()}],
                               "payments": [{"token": token, "amount": {"amount": PRICE + 599, "currency": "USD"}}]}),
            };
            let t0 = Instant::now();
            let r = client.post(format!("{base}/v1/orders")).header("Idempotency-Key", format!("flash-{sku}-{i}")).json(&body).send().await;
            let status = match r {
                Ok(r) => r.status().as_u16().to_string(),
                Err(_) => "connect_error".to_string(),
            };
            (status, t0.elapsed().as_micros() as u64)
        }
    });
    let results = futures::future::join_all(futs).await;
    let elapsed = start.elapsed().as_secs_f64();
    sampling.store(false, Ordering::Relaxed);
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    let mut lat: Vec<u64> = Vec::new();
    for (s, us) in &results {
        *by_status.entry(s.clone()).or_default() += 1;
        lat.push(*us);
    }
    let placed = by_status.get("201").copied().unwrap_or(0) as i64;
    let inv = must(
        admin.get(format!("{base}/v1/inventory/{sku}")).send().await,
        "inventory",
    )
    .await?;
    let reserved = inv["reserved"].as_i64().unwrap_or(-1);
    let oversold = (placed - stock).max(0).max(reserved - stock);
    let report = json!({
        "mode": "flash_sale",
        "sku": sku,
        "stock": stock,
        "buyers": args.buyers,
        "duration_s": elapsed,
        "placed": placed,
        "sold_out_answers": by_status.get("409").copied().unwrap_or(0),
        "orders_per_s": placed as f64 / elapsed,
        "order_latency": summary(&mut lat),
        "by_status": by_status,
        "errors": results.iter().filter(|(s, _)| s != "201" && s != "409").count(),
        "reserved_after": reserved,
        "available_after": inv["available"],
        "oversold": oversold,
        "server_peak_rss_mb": if args.server_pid.is_empty() { Value::Null } else { json!(peak_rss.load(Ordering::Relaxed) as f64 / 1024.0) },
    });
    print_report(args, &report);
    if oversold > 0 {
        return Err(format!("OVERSOLD by {oversold}"));
    }
    Ok(())
}

fn print_report(args: &Args, r: &Value) {
    if args.json {
        println!("{r}");
        return;
    }
    let lat = &r["order_latency"];
    println!(
        "mode            {} ({})",
        r["mode"].as_str().unwrap_or(""),
        r["loop"].as_str().unwrap_or("burst")
    );
    println!(
        "placed          {} in {:.2} s = {:.0} orders/s",
        r["placed"],
        r["duration_s"].as_f64().unwrap_or(0.0),
        r["orders_per_s"].as_f64().unwrap_or(0.0)
    );
    println!(
        "order latency   p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        lat["p50_ms"].as_f64().unwrap_or(0.0),
        lat["p95_ms"].as_f64().unwrap_or(0.0),
        lat["p99_ms"].as_f64().unwrap_or(0.0),
        lat["max_ms"].as_f64().unwrap_or(0.0)
    );
    if let Some(c) = r.get("checkout_latency").filter(|c| !c.is_null()) {
        println!(
            "checkout        p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  max {:.2} ms (cart → token → order)",
            c["p50_ms"].as_f64().unwrap_or(0.0),
            c["p95_ms"].as_f64().unwrap_or(0.0),
            c["p99_ms"].as_f64().unwrap_or(0.0),
            c["max_ms"].as_f64().unwrap_or(0.0)
        );
    }
    println!("by status       {}", r["by_status"]);
    println!("errors          {}", r["errors"]);
    println!("oversold        {}", r["oversold"]);
    if !r["server_peak_rss_mb"].is_null() {
        println!(
            "server RSS      {:.1} MB peak",
            r["server_peak_rss_mb"].as_f64().unwrap_or(0.0)
        );
    }
}
