//! The Ordo application: configuration, the HTTP API (`api/`), the use-case services that
//! compose domain rules with storage (`services/`), the sandbox payment gateway and demo data.
//! Handlers stay thin; services own transactions through the store; nothing here writes SQL.

pub mod api;
pub mod auth;
pub mod config;
pub mod demo;
pub mod events;
pub mod gateway;
pub mod logging;
pub mod services;

pub use config::Config;

use ordo_store::Store;
use std::sync::Arc;

/// Everything a request needs, shared by all handlers.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,

    pub gateway: Arc<dyn gateway::PaymentGateway>,
    /// Authorizations this process is working on (recovery leaves them alone).
    pub inflight: services::recovery::InFlight,
    pub config: Arc<Config>,
    /// The process's Prometheus recorder (`api::telemetry`), rendered by `GET /metrics`.
    pub prometheus: metrics_exporter_prometheus::PrometheusHandle,
    /// Issues and verifies tokens (`auth`).
    pub auth: Arc<auth::tokens::Authority>,
    /// Request-rate limits per IP and per token subject (`api::limits`).
    pub limits: Arc<api::limits::RateLimits>,
    /// The in-process event bus and whether this process relays events (`events`).
    pub events: Arc<events::Hub>,
}

/// A running server: its bound address and a handle to stop it.
pub struct RunningServer {
    pub addr: std::net::SocketAddr,
    pub shutdown: tokio::sync::oneshot::Sender<()>,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
    pub store: Store,
    /// The demo clients (only with `demo`), for the CLI to print once before serving.
    pub demo_credentials: Vec<demo::DemoCredential>,
    /// The token authority, for tests and tools that mint tokens in-process.
    pub auth: Arc<auth::tokens::Authority>,
    /// The in-process event bus (subscribe to see events as the relay logs them).
    pub events: Arc<events::Hub>,
}

/// Opens storage (migrating it), seeds demo data when asked, binds the address and serves
/// until the shutdown sender fires or is dropped.
pub async fn start(config: Config) -> Result<RunningServer, StartError> {
    let store = Store::open_with(&config.storage, config.batch_for(&config.storage)).await?;
    let demo_credentials = if config.demo {
        demo::seed_all(&store, &config.tenant)
            .await
            .map_err(|e| StartError::Demo(e.to_string()))?
    } else {
        vec![]
    };
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|e| StartError::Bind(config.addr.to_string(), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Bind(config.addr.to_string(), e))?;
    let keys = auth::keys::KeyRing::open(&store).await?;
    let settings = auth::tokens::TokenSettings {
        issuer: config.issuer.clone(),
        audience: config.audience.clone(),
        access_ttl: config.access_token_ttl,
    };
    // reqwest needs the process's TLS provider before its first client (ring; no OpenSSL).
    install_tls_provider();
    let mut authority = auth::tokens::Authority::new(keys, settings);
    if let Some(oidc) = config.oidc.clone() {
        authority = authority.with_external_issuer(auth::oidc::ExternalIssuer::new(oidc));
    }
    let state = AppState {
        auth: Arc::new(authority),
        limits: api::limits::RateLimits::new(
            config.rate_limit_per_ip,
            config.rate_limit_per_subject,
        ),
        store: store.clone(),
        gateway: Arc::new(gateway::SandboxGateway::new(
            config.sandbox_gateway_latency,
            config.sandbox_authorization_ttl,
            store.clone(),
        )),
        inflight: services::recovery::InFlight::default(),
        events: events::Hub::new(),
        config: Arc::new(config),
        prometheus: api::telemetry::prometheus(),
    };
    services::recovery::spawn(
        state.clone(),
        state.config.authorization_grace,
        std::time::Duration::from_secs(10),
    );
    events::relay::spawn(&state);
    let events = state.events.clone();
    let auth = state.auth.clone();
    let state_header_timeout = state.config.header_read_timeout;
    let app = api::router(state);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let header_read_timeout = state_header_timeout;
    let task = tokio::spawn(serve(listener, app, header_read_timeout, rx));
    Ok(RunningServer {
        addr,
        shutdown: tx,
        task,
        store,
        demo_credentials,
        auth,
        events,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("storage: {0}")]
    Store(#[from] ordo_store::StoreError),
    #[error("demo data: {0}")]
    Demo(String),
    #[error("cannot listen on {0}: {1}")]
    Bind(String, std::io::Error),
}

/// Installs ring as the process's TLS crypto provider (idempotent). Call before building any
/// HTTP client: without it, reqwest panics.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Serves `app` on `listener` until `shutdown` fires, then lets open requests finish (at most
/// 10 s). A client must finish sending its request headers within `header_read_timeout`, so a
/// slow-header client cannot hold a connection; bodies are bounded by the request timeout.
async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    header_read_timeout: std::time::Duration,
    shutdown: tokio::sync::oneshot::Receiver<()>,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use tower::Layer as _;
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, remote) = match accepted {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let service = axum::Extension(axum::extract::ConnectInfo(remote)).layer(app.clone());
                let service = hyper_util::service::TowerToHyperService::new(service);
                let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), graceful.shutdown()).await;
    Ok(())
}
