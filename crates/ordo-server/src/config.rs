//! Configuration, loaded once by the CLI (flags + `ORDO_*` environment) and passed explicitly.

use ordo_store::StorageConfig;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub storage: StorageConfig,
    /// Seed the demo catalog, network and promotions (once; never resets existing data).
    pub demo: bool,
    /// The tenant this process serves (multi-tenant routing arrives with the security gateway).
    pub tenant: String,
    /// Currency of an empty cart's zero totals.
    pub default_currency: ordo_domain::Currency,
    /// Simulated authorization latency of the sandbox payment gateway.
    pub sandbox_gateway_latency: Duration,
    /// How long after delivery (or shipment) the order's units may be returned.
    pub return_window: Duration,
    /// How long a sandbox authorization can be captured.
    pub sandbox_authorization_ttl: Duration,
    /// Pending authorizations older than this, not attached to an order, are voided by recovery.
    pub authorization_grace: Duration,
    /// How long a checkout hold (`POST /v1/carts/{id}/hold`) keeps a cart's stock.
    pub hold_ttl: Duration,
    /// Express and same-day base prices and their surge with the node's load.
    pub shipping_rates: ordo_domain::routing::ShippingRates,
    /// Group commit: most orders per commit.
    pub batch_max_orders: usize,
    /// Group commit: longest wait for more orders once one is queued.
    pub batch_max_wait: Duration,
    /// Group commit: concurrent batches (None: 1 on SQLite, 2 on PostgreSQL).
    pub batch_workers: Option<usize>,
    /// Most writes waiting for the write path; one more is answered 429 at once.
    pub write_queue_capacity: usize,
    /// A request still running after this is answered 503 `request-timeout` (with Retry-After).
    pub request_timeout: Duration,
    /// `iss` of the access tokens this process issues (and requires of the ones it verifies).
    pub issuer: String,
    /// `aud` of the access tokens.
    pub audience: String,
    /// Lifetime of an access token (at most an hour).
    pub access_token_ttl: Duration,
    /// An external identity provider whose JWTs are accepted (its `iss`), with the audience they
    /// must name and, optionally, where its keys are (default: its discovery document's jwks_uri).
    pub oidc: Option<crate::auth::oidc::OidcSettings>,
    /// Requests per second per client IP (bursts of twice that); 0: no limit.
    pub rate_limit_per_ip: u32,
    /// Requests per second per token subject (not the app's shared client); 0: no limit.
    pub rate_limit_per_subject: u32,
    /// Web origins allowed to call the API from a browser (CORS); empty: none.
    pub cors_origins: Vec<String>,
    /// A client must send its request headers within this (slow-header clients are dropped).
    pub header_read_timeout: Duration,
    /// The WebAuthn relying party for passkeys: its RP ID and the origins allowed to run
    /// ceremonies (web origins and mobile apps' `android:apk-key-hash:…` origins).
    pub webauthn: crate::auth::webauthn::RelyingParty,
    /// Mount the routes the API tests use to provoke failures (`/v1/_test/…`); never in production.
    pub test_routes: bool,
    /// Allow webhook URLs that resolve to loopback, private or link-local addresses.
    pub webhooks_allow_private: bool,
    /// Email, in-app and push notifications to shoppers (`events::notify`).
    pub notify: crate::events::notify::NotifySettings,
    /// The event backbone: relay, NATS, retention (`events`).
    pub events: crate::events::EventSettings,
}

impl Config {
    pub fn batch_for(&self, storage: &StorageConfig) -> ordo_store::BatchConfig {
        let standard = ordo_store::BatchConfig::standard(match storage {
            StorageConfig::Sqlite { .. } => ordo_store::Backend::Sqlite,
            StorageConfig::Postgres { .. } => ordo_store::Backend::Postgres,
        });
        ordo_store::BatchConfig {
            max_orders: self.batch_max_orders.max(1),
            max_wait: self.batch_max_wait,
            workers: self.batch_workers.unwrap_or(standard.workers).max(1),
            queue_capacity: self.write_queue_capacity.max(1),
        }
    }
}
