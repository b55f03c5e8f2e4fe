//! Operations endpoints: liveness, and readiness (the write path runs and the database answers).

use super::problem::Problem;
use crate::AppState;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Object)))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The process can serve: storage answers.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, body = Object), (status = 503, body = Problem)))]
pub async fn readyz(
    State(state): State<AppState>,
) -> Result<Json<Value>, axum::response::Response> {
    if !state.store.write_path_alive() {
        tracing::error!(
            "readiness check failed: the write path (writer thread or batch workers) is gone"
        );
        return Err(super::problem::problem_response(super::problem::problem(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            "Not ready",
            "the write path is not running: writes cannot be accepted".into(),
        )));
    }
    match state.store.ping().await {
        Ok(()) => Ok(Json(
            json!({"status": "ready", "backend": format!("{:?}", state.store.backend()).to_lowercase()}),
        )),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(super::problem::problem_response(super::problem::problem(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "not-ready",
                "Not ready",
                "the database does not answer".into(),
            )))
        }
    }
}
