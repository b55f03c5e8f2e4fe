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
}
