//! The `ordo` binary: `serve` runs the API (embedded SQLite by default, PostgreSQL with
//! `--database-url`), `migrate` applies the schema and exits. Flags also read `ORDO_*` env vars.

mod events;
mod forecast;
mod models;

use clap::{Args, Parser, Subcommand};
use ordo_server::Config;
use ordo_server::auth::Role;
use ordo_store::{StorageConfig, Store};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "ordo",
    version,
    about = "Ordo: order management for mobile commerce"
)]
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
    /// Create OAuth2 clients and users (staff, admins).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Demand forecasts and backtests from a sales-history CSV.
    #[command(subcommand)]
    Forecast(forecast::ForecastCommand),
    /// The model registry: list, activate, roll back.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Load public sales history into the database.
    #[command(subcommand)]
    Import(models::ImportCommand),
    /// Read Ordo's events from NATS JetStream.
    #[command(subcommand)]
    Events(EventsCommand),
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Print events published to NATS JetStream, one CloudEvent JSON per line.
    Tail(TailArgs),
}

#[derive(Args)]
struct TailArgs {
    /// The NATS server `ordo serve --nats-url` publishes to.
    #[arg(long, env = "ORDO_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// The JetStream stream (`ordo serve --nats-stream`).
    #[arg(long, env = "ORDO_NATS_STREAM", default_value = "ORDO_EVENTS")]
    stream: String,
    /// Subjects to follow: `ordo.<tenant>.<type without "ordo.">`, wildcards allowed.
    #[arg(long, default_value = "ordo.>")]
    subject: String,
    /// Start from the oldest event the stream keeps (default: only new events).
    #[arg(long)]
    from_start: bool,
    /// Use (or create) this durable consumer: acknowledge each event once printed and resume
    /// after the last acknowledged one next time.
    #[arg(long)]
    durable: Option<String>,
    /// Stop after this many events.
    #[arg(long)]
    count: Option<u64>,
    /// Stop when no event arrived for this long, e.g. 5s.
    #[arg(long, value_parser = parse_positive_duration)]
    idle_timeout: Option<Duration>,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an OAuth2 client (client credentials); prints its secret once.
    CreateClient(CreateClientArgs),
    /// Create a user who signs in with the password grant; the password is read from stdin.
    CreateUser(CreateUserArgs),
    /// Set the order total above which shoppers confirm with a passkey (or turn it off).
    SetStepUpThreshold(StepUpArgs),
}

#[derive(Args)]
struct StepUpArgs {
    /// Minor units, e.g. 100000 for $1,000.00: a shopper's order above it needs a passkey step-up.
    #[arg(long, required_unless_present = "off", conflicts_with = "off", value_parser = clap::value_parser!(i64).range(0..))]
    amount: Option<i64>,
    /// No step-up in this tenant.
    #[arg(long)]
    off: bool,
    #[arg(long, env = "ORDO_TENANT", default_value = "default")]
    tenant: String,
    #[command(flatten)]
    storage: StorageArgs,
}

#[derive(Args)]
struct CreateClientArgs {
    /// The client id (letters, digits, '-', '_', '.').
    #[arg(long)]
    client_id: String,
    /// app, staff, admin or channel.
    #[arg(long, value_parser = parse_role)]
    role: Role,
    #[arg(long, env = "ORDO_TENANT", default_value = "default")]
    tenant: String,
    /// The channel a channel client speaks for.
    #[arg(long)]
    channel: Option<String>,
    /// Limit a staff client to these locations (repeatable).
    #[arg(long = "location")]
    locations: Vec<String>,
    #[command(flatten)]
    storage: StorageArgs,
}

#[derive(Args)]
struct CreateUserArgs {
    #[arg(long)]
    email: String,
    #[arg(long)]
    name: String,
    /// staff or admin (shoppers sign up through the API).
    #[arg(long, value_parser = parse_role)]
    role: Role,
    #[arg(long, env = "ORDO_TENANT", default_value = "default")]
    tenant: String,
    /// Limit a staff member to these locations (repeatable).
    #[arg(long = "location")]
    locations: Vec<String>,
    #[command(flatten)]
    storage: StorageArgs,
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("'{s}' is not a role; use app, staff, admin or channel"))
}

#[derive(Args)]
struct StorageArgs {
    /// Directory of the embedded SQLite database (the default storage).
    #[arg(
        long,
        env = "ORDO_DATA_DIR",
        default_value = "./ordo-data",
        conflicts_with = "database_url"
    )]
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
    /// Publish every event to NATS JetStream at this URL (e.g. nats://127.0.0.1:4222); without
    /// it, events go to the in-process bus, `GET /v1/events` and webhooks only.
    #[arg(long, env = "ORDO_NATS_URL")]
    nats_url: Option<String>,
    /// The JetStream stream events are published to (created when missing, subjects `ordo.>`).
    #[arg(long, env = "ORDO_NATS_STREAM", default_value = "ORDO_EVENTS", value_parser = parse_stream_name)]
    nats_stream: String,
    /// Accept webhook URLs that resolve to loopback, private or link-local addresses (tests,
    /// a private network you trust); refused by default.
    #[arg(long, env = "ORDO_WEBHOOKS_ALLOW_PRIVATE")]
    webhooks_allow_private: bool,
    /// Send shoppers' emails over SMTP at this URL (smtp://host:port without TLS,
    /// smtp://host:port?tls=required for STARTTLS, smtps://host:port; user:password@ for AUTH).
    /// Without it, emails are written to the mailbox folder as .eml files.
    #[arg(long, env = "ORDO_SMTP_URL")]
    smtp_url: Option<String>,
    /// Where emails go without --smtp-url (default: <data-dir>/mailbox), one folder per tenant.
    #[arg(long, env = "ORDO_MAILBOX_DIR")]
    mailbox_dir: Option<PathBuf>,
    /// The From of shoppers' emails.
    #[arg(
        long,
        env = "ORDO_MAIL_FROM",
        default_value = "Ordo <orders@ordo.localhost>"
    )]
    mail_from: String,
    /// A folder of per-tenant templates overriding the built-in ones:
    /// <dir>/<tenant>/<order_placed|fulfillment_shipped|fulfillment_delivered|refund_issued>.<subject|txt|html>.
    #[arg(long, env = "ORDO_NOTIFICATION_TEMPLATES")]
    notification_templates: Option<PathBuf>,
    /// `off`: Ordo sends shoppers no email, in-app or push notifications (when another system
    /// sends them from the events).
    #[arg(long, env = "ORDO_NOTIFICATIONS", default_value = "on", value_parser = ["on", "off"])]
    notifications: String,
    /// The shop's name in messages to shoppers.
    #[arg(long, env = "ORDO_SHOP_NAME", default_value = "Ordo")]
    shop_name: String,
    /// `off`: this process never relays events (nor sends webhooks or notifications); another
    /// process on the same database must. For API-only nodes, and for measuring the relay's cost.
    #[arg(long, env = "ORDO_EVENT_RELAY", default_value = "on", value_parser = ["on", "off"])]
    event_relay: String,
    /// How long events stay in the log (and the NATS stream) after they were published, e.g. 7d.
    #[arg(long, env = "ORDO_EVENT_RETENTION", default_value = "7d", value_parser = parse_positive_duration)]
    event_retention: Duration,
    /// How long after delivery (or shipment) units may be returned, e.g. 30d.
    #[arg(long, env = "ORDO_RETURN_WINDOW", default_value = "30d", value_parser = parse_positive_duration)]
    return_window: Duration,
    /// How long a sandbox card authorization can be captured, e.g. 7d or 30s.
    #[arg(long, env = "ORDO_SANDBOX_AUTHORIZATION_TTL", default_value = "7d", value_parser = parse_positive_duration)]
    sandbox_authorization_ttl: Duration,
    /// Recovery voids pending card authorizations older than this whose order never committed.
    #[arg(long, env = "ORDO_AUTHORIZATION_GRACE", default_value = "60s", value_parser = parse_duration)]
    authorization_grace: Duration,
    /// How long a checkout hold (POST /v1/carts/{id}/hold) keeps a cart's stock, e.g. 10m.
    #[arg(long, env = "ORDO_HOLD_TTL", default_value = "10m", value_parser = parse_hold_ttl)]
    hold_ttl: Duration,
    /// Express shipping per package, minor units (before the load surge).
    #[arg(long, env = "ORDO_EXPRESS_BASE", default_value_t = 1499, value_parser = clap::value_parser!(i64).range(0..=10_000_000))]
    express_base: i64,
    /// Same-day shipping per package, minor units (before the load surge).
    #[arg(long, env = "ORDO_SAME_DAY_BASE", default_value_t = 2499, value_parser = clap::value_parser!(i64).range(0..=10_000_000))]
    same_day_base: i64,
    /// How much express and same-day prices rise at a node's full daily capacity, in basis
    /// points (10000: they double; linear in load_today / daily_capacity).
    #[arg(long, env = "ORDO_SHIPPING_SURGE_BPS", default_value_t = 10_000, value_parser = clap::value_parser!(i64).range(0..=100_000))]
    shipping_surge_bps: i64,
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
    /// `iss` of the access tokens this process issues.
    #[arg(long, env = "ORDO_TOKEN_ISSUER", default_value = "ordo")]
    issuer: String,
    /// `aud` of the access tokens.
    #[arg(long, env = "ORDO_TOKEN_AUDIENCE", default_value = "ordo-api")]
    audience: String,
    /// Lifetime of access tokens (at most 1h).
    #[arg(long, env = "ORDO_ACCESS_TOKEN_TTL", default_value = "15m", value_parser = parse_positive_duration)]
    access_token_ttl: Duration,
    /// Also accept JWTs of this external identity provider (its `iss`, e.g. https://id.example.com).
    #[arg(long, env = "ORDO_OIDC_ISSUER", requires = "oidc_audience")]
    oidc_issuer: Option<String>,
    /// The `aud` the provider's tokens must name.
    #[arg(long, env = "ORDO_OIDC_AUDIENCE", requires = "oidc_issuer")]
    oidc_audience: Option<String>,
    /// The provider's JWKS URL (default: `jwks_uri` of its /.well-known/openid-configuration).
    #[arg(long, env = "ORDO_OIDC_JWKS_URL", requires = "oidc_issuer")]
    oidc_jwks_url: Option<String>,
    /// Requests per second per client IP (bursts of twice that); 0 turns the limit off.
    #[arg(long, env = "ORDO_RATE_LIMIT_PER_IP", default_value_t = 100)]
    rate_limit_per_ip: u32,
    /// Requests per second per token subject (the app's shared client is never limited as a
    /// whole; its shoppers' IPs are); 0 turns the limit off.
    #[arg(long, env = "ORDO_RATE_LIMIT_PER_SUBJECT", default_value_t = 50)]
    rate_limit_per_subject: u32,
    /// A web origin allowed to call the API from a browser (CORS), e.g. https://shop.example.com; repeatable.
    #[arg(long = "cors-origin", env = "ORDO_CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Vec<String>,
    /// A client must send its request headers within this.
    #[arg(long, env = "ORDO_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_positive_duration)]
    header_read_timeout: Duration,
    /// The WebAuthn RP ID passkeys are scoped to: the site's registrable domain, e.g. shop.example.com.
    #[arg(long, env = "ORDO_WEBAUTHN_RP_ID", default_value = "localhost")]
    webauthn_rp_id: String,
    /// An origin allowed to run passkey ceremonies (a web origin, or a mobile app's such as
    /// android:apk-key-hash:…); repeatable.
    #[arg(
        long = "webauthn-origin",
        env = "ORDO_WEBAUTHN_ORIGINS",
        value_delimiter = ',',
        default_value = "http://localhost:8080"
    )]
    webauthn_origins: Vec<String>,
    /// Mount the routes the API tests use to provoke failures (a panicking handler, a slow one).
    #[arg(long, env = "ORDO_TEST_ROUTES", hide = true)]
    test_routes: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 150ms or 2s"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        "d" => Ok(Duration::from_secs(n * 86_400)),
        _ => Err(format!("'{s}': use ms, s, m, h or d, e.g. 150ms")),
    }
}

/// A JetStream stream name: letters, digits, `-` and `_`, at most 64.
fn parse_stream_name(s: &str) -> Result<String, String> {
    if s.is_empty()
        || s.len() > 64
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err("a stream name is 1 to 64 letters, digits, '-' or '_'".into());
    }
    Ok(s.to_string())
}

fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).and_then(|d| {
        if d.is_zero() {
            Err(format!("'{s}' must be longer than zero"))
        } else {
            Ok(d)
        }
    })
}

/// A hold lasts from a second to a day.
fn parse_hold_ttl(s: &str) -> Result<Duration, String> {
    parse_duration(s).and_then(|d| {
        if d < Duration::from_secs(1) || d > Duration::from_secs(86_400) {
            Err(format!("'{s}': a hold lasts from 1s to 24h"))
        } else {
            Ok(d)
        }
    })
}

impl StorageArgs {
    fn config(&self) -> Result<StorageConfig, String> {
        match &self.database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(StorageConfig::Postgres {
                    url: url.clone(),
                    max_connections: self.db_max_connections,
                })
            }
            Some(url) => Err(format!(
                "--database-url must start with postgres:// (got '{url}'); omit it to use the embedded database"
            )),
            None => Ok(StorageConfig::Sqlite {
                data_dir: self.data_dir.clone(),
            }),
        }
    }
}

fn describe_service_error(e: &ordo_server::services::ServiceError) -> String {
    match e {
        ordo_server::services::ServiceError::Invalid(errors) => errors
            .iter()
            .map(|f| format!("{}: {}", f.path, f.message))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
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
    // Personal data redacted from every line; colours only for a person at a terminal; ORDO_LOG_FORMAT=json gives one JSON object a line.
    let filter = tracing_subscriber::EnvFilter::try_from_env("ORDO_LOG")
        .unwrap_or_else(|_| "info,sqlx=warn,async_nats=warn".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(ordo_server::logging::RedactedStderr);
    if std::env::var("ORDO_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        logs.json().with_current_span(true).init();
    } else {
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    ordo_server::install_tls_provider();
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
        Command::Events(EventsCommand::Tail(a)) => {
            events::tail(events::Tail {
                nats_url: a.nats_url,
                stream: a.stream,
                subject: a.subject,
                from_start: a.from_start,
                durable: a.durable,
                count: a.count,
                idle_timeout: a.idle_timeout,
            })
            .await
        }
        Command::Migrate(storage) => {
            let config = storage.config()?;
            let store = Store::open(&config).await.map_err(|e| e.to_string())?;
            store.close().await;
            println!("migrations applied ({})", describe(&config));
            Ok(())
        }
        Command::Admin(AdminCommand::CreateClient(a)) => {
            let store = Store::open(&a.storage.config()?)
                .await
                .map_err(|e| e.to_string())?;
            let created = ordo_server::services::accounts::create_client(
                &store,
                &a.tenant,
                &a.client_id,
                a.role,
                a.channel.as_deref(),
                &a.locations,
                None,
            )
            .await
            .map_err(|e| describe_service_error(&e))?;
            store.close().await;
            match created {
                Some(secret) => {
                    println!(
                        "client {} (tenant {}, role {}) created",
                        a.client_id,
                        a.tenant,
                        a.role.as_str()
                    );
                    println!("client_secret: {secret}");
                    println!("(shown once; Ordo stores only its hash)");
                    Ok(())
                }
                None => Err(format!("client id {} is taken", a.client_id)),
            }
        }
        Command::Admin(AdminCommand::SetStepUpThreshold(a)) => {
            let store = Store::open(&a.storage.config()?)
                .await
                .map_err(|e| e.to_string())?;
            store
                .set_step_up_threshold(&a.tenant, a.amount)
                .await
                .map_err(|e| e.to_string())?;
            store.close().await;
            match a.amount {
                Some(n) => println!(
                    "tenant {}: shoppers confirm orders above {n} minor units with a passkey",
                    a.tenant
                ),
                None => println!("tenant {}: no passkey step-up", a.tenant),
            }
            Ok(())
        }
        Command::Admin(AdminCommand::CreateUser(a)) => {
            if !matches!(a.role, Role::Staff | Role::Admin) {
                return Err(
                    "--role must be staff or admin (shoppers sign up through POST /v1/auth/signup)"
                        .into(),
                );
            }
            eprintln!("password for {} (read from stdin, one line):", a.email);
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .map_err(|e| format!("cannot read the password: {e}"))?;
            let password = password.trim_end_matches(['\r', '\n']).to_string();
            let store = Store::open(&a.storage.config()?)
                .await
                .map_err(|e| e.to_string())?;
            let created = ordo_server::services::accounts::create_user(
                &store,
                &a.tenant,
                &a.email,
                &a.name,
                a.role,
                password,
                &a.locations,
            )
            .await
            .map_err(|e| describe_service_error(&e))?;
            store.close().await;
            if created {
                println!(
                    "user {} (tenant {}, role {}) created; sign in with grant_type=password",
                    a.email,
                    a.tenant,
                    a.role.as_str()
                );
                Ok(())
            } else {
                Err(format!(
                    "a user with email {} exists in tenant {}",
                    a.email, a.tenant
                ))
            }
        }
        Command::Serve(args) => {
            let storage = args.storage.config()?;
            if args.tenant.trim().is_empty() {
                return Err("--tenant must not be empty".into());
            }
            let what = describe(&storage);
            let oidc = match (args.oidc_issuer, args.oidc_audience) {
                (Some(issuer), Some(audience)) => Some(ordo_server::auth::oidc::OidcSettings {
                    issuer,
                    audience,
                    jwks_url: args.oidc_jwks_url,
                    default_tenant: args.tenant.clone(),
                }),
                _ => None,
            };
            let config = Config {
                addr: args.addr,
                storage,
                demo: args.demo,
                tenant: args.tenant,
                default_currency: ordo_domain::Currency::parse("USD").map_err(|e| e.message)?,
                sandbox_gateway_latency: args.sandbox_gateway_latency,
                sandbox_authorization_ttl: args.sandbox_authorization_ttl,
                return_window: args.return_window,
                authorization_grace: args.authorization_grace,
                hold_ttl: args.hold_ttl,
                shipping_rates: ordo_domain::routing::ShippingRates {
                    express_base: args.express_base,
                    same_day_base: args.same_day_base,
                    surge_bps: args.shipping_surge_bps,
                    ..ordo_domain::routing::ShippingRates::STANDARD
                },
                batch_max_orders: args.batch_max_orders as usize,
                batch_max_wait: args.batch_max_wait,
                batch_workers: args.batch_workers.map(|w| w as usize),
                write_queue_capacity: args.write_queue_capacity as usize,
                request_timeout: args.request_timeout,
                issuer: args.issuer,
                audience: args.audience,
                access_token_ttl: args.access_token_ttl,
                oidc,
                rate_limit_per_ip: args.rate_limit_per_ip,
                rate_limit_per_subject: args.rate_limit_per_subject,
                cors_origins: args.cors_origins,
                header_read_timeout: args.header_read_timeout,
                test_routes: args.test_routes,
                webhooks_allow_private: args.webhooks_allow_private,
                notify: ordo_server::events::notify::NotifySettings {
                    smtp_url: args.smtp_url,
                    mailbox_dir: args
                        .mailbox_dir
                        .unwrap_or_else(|| args.storage.data_dir.join("mailbox")),
                    mail_from: args.mail_from,
                    templates_dir: args.notification_templates,
                    shop_name: args.shop_name,
                    enabled: args.notifications == "on",
                },
                events: ordo_server::events::EventSettings {
                    nats_url: args.nats_url,
                    nats_stream: args.nats_stream,
                    retention: args.event_retention,
                    relay: args.event_relay == "on",
                    ..Default::default()
                },
                webauthn: ordo_server::auth::webauthn::RelyingParty {
                    id: args.webauthn_rp_id,
                    origins: args.webauthn_origins,
                },
            };
            if config.webauthn.id.trim().is_empty()
                || config.webauthn.origins.iter().any(|o| o.trim().is_empty())
            {
                return Err("--webauthn-rp-id and --webauthn-origin must not be empty".into());
            }
            if args.access_token_ttl > Duration::from_secs(3600) {
                return Err("--access-token-ttl must be at most 1h".into());
            }
            let server = ordo_server::start(config)
                .await
                .map_err(|e| e.to_string())?;
            if !server.demo_credentials.is_empty() {
                println!(
                    "Demo credentials (OAuth2 client credentials; printed once, never logged):"
                );
                for c in &server.demo_credentials {
                    println!(
                        "  tenant {:<8} {:<11} {:<18} role {}",
                        c.tenant,
                        c.client_id,
                        c.secret,
                        c.role.as_str()
                    );
                }
                println!(
                    "  get a token: curl -s http://{}/v1/auth/token -d grant_type=client_credentials -d client_id=demo-app -d client_secret=demo-secret",
                    server.addr
                );
            }
            println!("Ordo is serving on http://{} ({what})", server.addr);
            let ordo_server::RunningServer {
                shutdown,
                mut task,
                store,
                ..
            } = server;
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
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
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
