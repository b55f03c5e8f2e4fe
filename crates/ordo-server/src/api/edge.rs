//! The watched edge every request crosses (layered in `api::router`): a request id on the way in
//! and out, a deadline, and a panic turned into a 500 problem. Every problem+json answer leaves
//! with the request's id in its body; nothing here knows about resources or storage.

use super::problem::{ApiError, Problem, problem, problem_response};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::any::Any;
use std::time::Duration;
use tower_http::request_id::RequestId;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Seconds a client should wait before retrying a request that ran out of time.
const RETRY_AFTER_SECS: u64 = 5;

/// The largest problem body the edge will re-read to stamp the request id on it.
const PROBLEM_LIMIT: usize = 256 * 1024;

/// A client's request id is kept when it is 1 to 128 letters, digits, `-`, `_`, `.` or `:`
/// (UUIDs, ULIDs, trace ids); anything else could forge log lines, so a fresh one replaces it.
pub fn is_sane_request_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    (1..=128).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(c))
}

/// Runs before `SetRequestId`: removes a client's request id that is not sane (or repeated), so
/// a UUID is generated in its place.
pub async fn drop_unsafe_request_id(mut req: Request) -> Request {
    let mut ids = req.headers().get_all(&REQUEST_ID).iter();
    let keep = match (ids.next(), ids.next()) {
        (Some(v), None) => is_sane_request_id(v),
        (None, _) => true,
        (Some(_), Some(_)) => false,
    };
    if !keep {
        req.headers_mut().remove(&REQUEST_ID);
    }
    req
}

/// The tracing span of one request, carrying its id so every log line inside names it. It is
/// an ERROR-level span so that it stays enabled, and the id stays on the line, whatever
/// `ORDO_LOG` filters out (a span below the filter's level would vanish from warnings).
pub fn request_span(req: &Request) -> tracing::Span {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::error_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
}

/// Writes the request id into every `application/problem+json` body, whichever layer, extractor
/// or handler produced it, so a client can quote it when reporting a failure.
pub async fn stamp_request_id_on_problems(req: Request, next: Next) -> Response {
    let id = req
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .map(String::from);
    let res = next.run(req).await;
    let Some(id) = id else { return res };
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/problem+json"));
    if !is_problem {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let stamped = axum::body::to_bytes(body, PROBLEM_LIMIT)
        .await
        .ok()
        .and_then(|bytes| {
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes).ok()
        })
        .and_then(|mut doc| {
            doc.insert("request_id".into(), serde_json::Value::String(id.clone()));
            serde_json::to_vec(&doc).ok()
        });
    match stamped {
        Some(body) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(body))
        }
        None => {
            tracing::error!(status = %parts.status, "a problem+json body could not be read to stamp its request id");
            let mut p = problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                "the server failed; it has been logged".into(),
            );
            p.request_id = Some(id);
            problem_response(p)
        }
    }
}

/// A request still running after `limit` is abandoned and answered 503 `request-timeout` with
/// `Retry-After`. An order whose commit was already queued may still be placed: the client's
/// retry with the same `Idempotency-Key` returns it.
pub async fn enforce_timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => {
            // The request span already names the method, path and request id.
            tracing::warn!(limit_ms = limit.as_millis() as u64, "request timed out");
            let p: Problem = problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "request-timeout",
                "Request timed out",
                format!(
                    "the request did not complete within {} ms; retry later (orders: with the same Idempotency-Key)",
                    limit.as_millis()
                ),
            );
            let mut res = problem_response(p);
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
            res
        }
    }
}

/// `CatchPanicLayer`'s answer: the panic is logged (never sent) and the client gets a 500
/// `internal` problem; the process and its other requests carry on.
pub fn panic_problem(payload: Box<dyn Any + Send + 'static>) -> Response {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic payload".into());
    ApiError::Internal(format!("a handler panicked: {what}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_from_clients_are_kept_only_when_sane() {
        for ok in [
            "0190b1b2-7c1e-7d2a-9f00-5a1b2c3d4e5f",
            "req_42",
            "a",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(is_sane_request_id(&HeaderValue::from_static(ok)), "{ok}");
        }
        let long = "x".repeat(129);
        for bad in ["", "two words", "a\"b", "id\\n", "<script>", long.as_str()] {
            assert!(
                !is_sane_request_id(&HeaderValue::from_str(bad).unwrap()),
                "{bad}"
            );
        }
        assert!(!is_sane_request_id(
            &HeaderValue::from_bytes("clé".as_bytes()).unwrap()
        ));
    }
}

/// Headers every answer carries: no MIME sniffing, no framing, no referrer leaks, and a strict
/// content policy (the index page uses inline script and style, nothing from elsewhere).
pub fn security_headers() -> tower::layer::util::Stack<
    tower_http::set_header::SetResponseHeaderLayer<HeaderValue>,
    tower::layer::util::Stack<
        tower_http::set_header::SetResponseHeaderLayer<HeaderValue>,
        tower_http::set_header::SetResponseHeaderLayer<HeaderValue>,
    >,
> {
    use tower_http::set_header::SetResponseHeaderLayer as Set;
    tower::layer::util::Stack::new(
        Set::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        tower::layer::util::Stack::new(
            Set::overriding(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            Set::if_not_present(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ),
    )
}

/// CORS for the configured web origins (none: browsers on other origins get no CORS headers).
pub fn cors(origins: &[String]) -> tower_http::cors::CorsLayer {
    use axum::http::Method;
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let list: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(list))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("passkey-assertion"),
            header::IF_NONE_MATCH,
            REQUEST_ID,
        ])
        .expose_headers([
            REQUEST_ID,
            header::RETRY_AFTER,
            header::LOCATION,
            header::ETAG,
            HeaderName::from_static("idempotent-replayed"),
            HeaderName::from_static("ratelimit-limit"),
            HeaderName::from_static("ratelimit-remaining"),
            HeaderName::from_static("ratelimit-reset"),
        ])
        .max_age(Duration::from_secs(600))
}
