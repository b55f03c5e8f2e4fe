//! Operations endpoints: liveness, readiness (the database answers) and the OpenAPI document.

use super::problem::Problem;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use serde_json::{Value, json};

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Object)))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The process can serve: storage answers.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, body = Object), (status = 503, body = Problem)))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, axum::response::Response> {
    match state.store.ping().await {
        Ok(()) => Ok(Json(json!({"status": "ready", "backend": format!("{:?}", state.store.backend()).to_lowercase()}))),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(super::problem::problem_response(Problem {
                kind: "https://ordo.dev/problems/not-ready".into(),
                title: "Not ready".into(),
                status: 503,
                detail: "the database does not answer".into(),
                errors: vec![],
                differences: vec![],
                payment: None,
                request_id: None,
            }))
        }
    }
}
