//! Prometheus metrics: the process-wide recorder (installed once, so any crate's `metrics::`
//! macros land here), the per-request counter and latency histogram, and `GET /metrics`.
//! Labels are bounded: routes are axum templates (`/v1/orders/{id}`), never raw paths.

use crate::AppState;
use crate::auth::Caller;
use axum::Extension;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const REQUESTS_TOTAL: &str = "ordo_http_requests_total";
pub const REQUEST_DURATION: &str = "ordo_http_request_duration_seconds";
pub const PAYMENT_AUTHORIZATIONS: &str = "ordo_payment_authorizations";

/// Upper bounds (seconds) of every `*_seconds` histogram: an API answers in half a millisecond
/// to a few seconds; 10 s is near the request timeout.
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Statuses an authorization record moves through; each is exported, at 0 when none has it.
const AUTHORIZATION_STATUSES: &[&str] = &["pending", "voiding", "attached", "declined", "voided"];

const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process's Prometheus recorder, installed as the global `metrics` recorder on first use.
/// Several servers in one process (the API tests) share it.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .expect("the bucket list is not empty")
                .set_buckets_for_metric(Matcher::Full("ordo_batch_size".into()), &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0])
                .expect("the bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            if let Err(e) = metrics::set_global_recorder(recorder) {
                tracing::warn!(error = %e, "another metrics recorder is installed; /metrics will miss what is recorded through it");
            }
            metrics::describe_counter!(REQUESTS_TOTAL, "HTTP requests answered, by method, route template and status");
            metrics::describe_histogram!(REQUEST_DURATION, metrics::Unit::Seconds, "Time to answer an HTTP request, by method and route template");
            metrics::describe_gauge!(PAYMENT_AUTHORIZATIONS, "Card authorization records of this tenant by status, read at scrape time");
            metrics::describe_histogram!("ordo_batch_size", "Jobs committed together by one write-path batch");
            metrics::describe_histogram!("ordo_commit_seconds", metrics::Unit::Seconds, "Time to run and commit one write-path batch");
            metrics::describe_gauge!("ordo_write_queue_depth", "Writes waiting for the write path");
            metrics::describe_counter!("ordo_placements_total", "Order placements by outcome (placed, out_of_stock, busy, …)");
            metrics::describe_counter!("ordo_batch_fallbacks_total", "Placement rounds that failed as a whole and were placed order by order");
            // Histograms are drained on scrape; upkeep bounds their memory when nobody scrapes.
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new().name("ordo-metrics-upkeep".into()).spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "metrics upkeep thread did not start; histograms are drained on scrape only");
            }
            handle
        })
        .clone()
}

/// Request methods as a bounded label: anything unusual is `OTHER`.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Counts and times every request under its route template (`unmatched` for unknown paths).
/// Runs after routing (layered with `Router::layer`), outside the timeout and catch-panic
/// layers, so timeouts and panics are counted with the status the client saw.
pub async fn record_request(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::counter!(REQUESTS_TOTAL, "method" => method, "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!(REQUEST_DURATION, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    res
}

/// Prometheus text exposition of every metric this process records (HTTP, storage, checkout),
/// with the caller's tenant's authorization counts read from storage at scrape time.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain; version=0.0.4", body = String)))]
pub async fn scrape(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Response {
    match state.store.authorization_counts(caller.tenant()).await {
        Ok(counts) => {
            for status in AUTHORIZATION_STATUSES {
                let n = counts.get(*status).copied().unwrap_or(0);
                metrics::gauge!(PAYMENT_AUTHORIZATIONS, "status" => *status).set(n as f64);
            }
            for (status, n) in counts
                .iter()
                .filter(|(s, _)| !AUTHORIZATION_STATUSES.contains(&s.as_str()))
            {
                metrics::gauge!(PAYMENT_AUTHORIZATIONS, "status" => status.clone()).set(*n as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "authorization counts unavailable for /metrics"),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.prometheus.render(),
    )
        .into_response()
}
