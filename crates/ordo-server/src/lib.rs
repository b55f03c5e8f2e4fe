//! The Ordo application: configuration, the HTTP API (`api/`), the use-case services that
//! compose domain rules with storage (`services/`), the sandbox payment gateway and demo data.
//! Handlers stay thin; services own transactions through the store; nothing here writes SQL.

pub mod api;
pub mod config;
pub mod demo;
pub mod gateway;
pub mod services;

pub use config::Config;

use ordo_store::Store;
use std::sync::Arc;

/// Everything a request needs, shared by all handlers.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,

    pub gateway: Arc<gateway::SandboxGateway>,
    /// Authorizations this process is working on (recovery leaves them alone).
    pub inflight: services::recovery::InFlight,
    pub config: Arc<Config>,
    /// The process's Prometheus recorder (`api::telemetry`), rendered by `GET /metrics`.
    pub prometheus: metrics_exporter_prometheus::PrometheusHandle,
}

impl AppState {
    pub fn tenant(&self) -> &str {
        self.config.tenant.as_str()
    }
}

/// A running server: its bound address and a handle to stop it.
pub struct RunningServer {
    pub addr: std::net::SocketAddr,
    pub shutdown: tokio::sync::oneshot::Sender<()>,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
    pub store: Store,
}

/// Opens storage (migrating it), seeds demo data when asked, binds the address and serves
/// until the shutdown sender fires or is dropped.
pub async fn start(config: Config) -> Result<RunningServer, StartError> {
    let store = Store::open_with(&config.storage, config.batch_for(&config.storage)).await?;
    if config.demo {
        demo::seed(&store, &config.tenant).await?;
    }
    let listener = tokio::net::TcpListener::bind(config.addr).await.map_err(|e| StartError::Bind(config.addr.to_string(), e))?;
    let addr = listener.local_addr().map_err(|e| StartError::Bind(config.addr.to_string(), e))?;
    let state = AppState {
        store: store.clone(),
        gateway: Arc::new(gateway::SandboxGateway::new(config.sandbox_gateway_latency)),
        inflight: services::recovery::InFlight::default(),
        config: Arc::new(config),
        prometheus: api::telemetry::prometheus(),
    };
    services::recovery::spawn(state.clone(), state.config.authorization_grace, std::time::Duration::from_secs(10));
    let app = api::router(state);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    Ok(RunningServer { addr, shutdown: tx, task, store })
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("storage: {0}")]
    Store(#[from] ordo_store::StoreError),
    #[error("cannot listen on {0}: {1}")]
    Bind(String, std::io::Error),
}
