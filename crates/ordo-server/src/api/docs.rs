//! `/docs`: a browsable reference of `/openapi.json` (Swagger UI, its files compiled into the
//! binary: nothing is fetched from a CDN, so it works offline and behind a strict firewall).

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use std::sync::{Arc, OnceLock};
use utoipa_swagger_ui::Config;

fn config() -> Arc<Config<'static>> {
    static CONFIG: OnceLock<Arc<Config<'static>>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            Arc::new(
                Config::new(["/openapi.json"])
                    .try_it_out_enabled(true)
                    .persist_authorization(false)
                    .display_request_duration(true),
            )
        })
        .clone()
}

/// `/docs` → `/docs/` (the page loads its files relative to the folder).
pub async fn root() -> Redirect {
    Redirect::permanent("/docs/")
}

/// The page and its files.
pub async fn index() -> Response {
    file("").await
}

/// One file of the page (`/docs/swagger-ui.css`, …).
pub async fn asset(Path(rest): Path<String>) -> Response {
    file(&rest).await
}

async fn file(rest: &str) -> Response {
    match utoipa_swagger_ui::serve(if rest.is_empty() { "index.html" } else { rest }, config()) {
        Ok(Some(f)) => {
            let mut res = (StatusCode::OK, f.bytes.into_owned()).into_response();
            if let Ok(ct) = HeaderValue::from_str(&f.content_type) {
                res.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            res.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            );
            res
        }
        Ok(None) => super::problem::ApiError::NotFound(format!("/docs/{rest}")).into_response(),
        Err(e) => super::problem::ApiError::Internal(format!("docs page: {e}")).into_response(),
    }
}
