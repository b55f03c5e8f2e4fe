//! Routes for the API tests only, mounted when `Config.test_routes` is on (hidden flag
//! `--test-routes`): a handler that panics and one that outlives the request timeout. They
//! prove the edge's catch-panic and timeout layers; production never mounts them.

use super::json::PathParam;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use std::time::Duration;

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/v1/_test/panic", get(panic_on_purpose))
        .route("/v1/_test/sleep/{ms}", get(sleep))
}

async fn panic_on_purpose() -> StatusCode {
    panic!("deliberate panic from the test route")
}

/// Sleeps `ms` milliseconds (at most a minute), then answers 204.
async fn sleep(PathParam(ms): PathParam) -> StatusCode {
    let Ok(ms) = ms.parse::<u64>() else {
        return StatusCode::NOT_FOUND;
    };
    tokio::time::sleep(Duration::from_millis(ms.min(60_000))).await;
    StatusCode::NO_CONTENT
}
