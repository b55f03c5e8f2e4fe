//! The `ordo` binary: `serve` runs the API (embedded SQLite by default, PostgreSQL with
//! `--database-url`), `migrate` applies the schema and exits. Flags also read `ORDO_*` env vars.

mod forecast;
mod models;

use clap::{Args, Parser, Subcommand};
use ordo_server::Config;
use ordo_store::{StorageConfig, Store};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "ordo", version, about = "Ordo: order management for mobile commerce")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API and web pages on one port.
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate(StorageArgs),
    /// Demand forecasts and backtests from a sales-history CSV.
    #[command(subcommand)]
    Forecast(forecast::ForecastCommand),
    /// The model registry: list, activate, roll back.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Load public sales history into the database.
    #[command(subcommand)]
    Import(models::ImportCommand),
}

#[derive(Args)]
struct StorageArgs {
    /// Directory of the embedded SQLite database (the default storage).
    #[arg(long, env = "ORDO_DATA_DIR", default_value = "./ordo-data", conflicts_with = "database_url")]
    data_dir: PathBuf,
    /// PostgreSQL URL (postgres://user@host:5432/db) instead of the embedded database.
    #[arg(long, env = "ORDO_DATABASE_URL")]
    database_url: Option<String>,
    /// PostgreSQL pool size per process.
    #[arg(long, env = "ORDO_DB_MAX_CONNECTIONS", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=500))]
    db_max_connections: u32,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "ORDO_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    #[command(flatten)]
    storage: StorageArgs,
    /// Seed demo data (catalog, locations, stock, promotions) if not seeded before.
    #[arg(long, env = "ORDO_DEMO")]
    demo: bool,
    /// Tenant served by this process.
    #[arg(long, env = "ORDO_TENANT", default_value = "default")]
    tenant: String,
    /// Simulated sandbox gateway authorization latency, e.g. 150ms or 1s.
    #[arg(long, env = "ORDO_SANDBOX_GATEWAY_LATENCY", default_value = "0ms", value_parser = parse_duration)]
    sandbox_gateway_latency: Duration,
    /// Recovery voids pending card authorizations older than this whose order never committed.
    #[arg(long, env = "ORDO_AUTHORIZATION_GRACE", default_value = "60s", value_parser = parse_duration)]
    authorization_grace: Duration,
    /// Group commit: most orders committed together.
    #[arg(long, env = "ORDO_BATCH_MAX_ORDERS", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1000))]
    batch_max_orders: u32,
    /// Group commit: longest wait for more orders once one is queued (0ms: take what is queued).
    #[arg(long, env = "ORDO_BATCH_MAX_WAIT", default_value = "0ms", value_parser = parse_duration)]
    batch_max_wait: Duration,
    /// Group commit: batches committed concurrently (default 1 on SQLite, 2 on PostgreSQL).
    #[arg(long, env = "ORDO_BATCH_WORKERS", value_parser = clap::value_parser!(u32).range(1..=64))]
    batch_workers: Option<u32>,

    /// Most writes waiting for the write path; one more is answered 429 with Retry-After at once.
    #[arg(long, env = "ORDO_WRITE_QUEUE_CAPACITY", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    write_queue_capacity: u32,
    /// A request still running after this is answered 503 (request-timeout, with Retry-After).
    #[arg(long, env = "ORDO_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_positive_duration)]
    request_timeout: Duration,
    /// Mount the routes the API tests use to provoke failures (a panicking handler, a slow one).
    #[arg(long, env = "ORDO_TEST_ROUTES", hide = true)]
    test_routes: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("'{s}' is not a duration like 150ms or 2s"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        _ => Err(format!("'{s}': use ms or s, e.g. 150ms")),
    }
}

fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).and_then(|d| if d.is_zero() { Err(format!("'{s}' must be longer than zero")) } else { Ok(d) })
}

impl StorageArgs {
    fn config(&self) -> Result<StorageConfig, String> {
        match &self.database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(StorageConfig::Postgres { url: url.clone(), max_connections: self.db_max_connections })
            }
            Some(url) => Err(format!("--database-url must start with postgres:// (got '{url}'); omit it to use the embedded database")),
            None => Ok(StorageConfig::Sqlite { data_dir: self.data_dir.clone() }),
        }
    }
}

fn describe(storage: &StorageConfig) -> String {
    match storage {
        StorageConfig::Sqlite { data_dir } => format!("embedded SQLite in {}", data_dir.display()),
        StorageConfig::Postgres { .. } => "PostgreSQL".to_string(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("ORDO_LOG").unwrap_or_else(|_| "info,sqlx=warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Forecast(command) => forecast::run(command).await,
        Command::Models(command) => models::run_models(command).await,
        Command::Import(command) => models::run_import(command).await,
        Command::Migrate(storage) => {
            let config = storage.config()?;
            let store = Store::open(&config).await.map_err(|e| e.to_string())?;
            store.close().await;
            println!("migrations applied ({})", describe(&config));
            Ok(())
        }
        Command::Serve(args) => {
            let storage = args.storage.config()?;
            if args.tenant.trim().is_empty() {
                return Err("--tenant must not be empty".into());
            }
            let what = describe(&storage);
            let config = Config {
                addr: args.addr,
                storage,
                demo: args.demo,
                tenant: args.tenant,
                default_currency: ordo_domain::Currency::parse("USD").map_err(|e| e.message)?,
                sandbox_gateway_latency: args.sandbox_gateway_latency,
                authorization_grace: args.authorization_grace,
                batch_max_orders: args.batch_max_orders as usize,
                batch_max_wait: args.batch_max_wait,
                batch_workers: args.batch_workers.map(|w| w as usize),
                write_queue_capacity: args.write_queue_capacity as usize,
                request_timeout: args.request_timeout,
                test_routes: args.test_routes,
            };
            let server = ordo_server::start(config).await.map_err(|e| e.to_string())?;
            println!("Ordo is serving on http://{} ({what})", server.addr);
            let ordo_server::RunningServer { shutdown, mut task, store, .. } = server;
            tokio::select! {
                _ = shutdown_signal() => {
                    let _ = shutdown.send(());
                    let _ = (&mut task).await;
                }
                r = &mut task => {
                    r.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
                }
            }
            store.close().await;
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or(());
}
