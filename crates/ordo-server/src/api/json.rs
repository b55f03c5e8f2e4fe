//! The JSON body extractor: requires a JSON content type, limits the size, and reports a
//! malformed body as a problem naming the exact field path (`lines[2].quantity`), including
//! fields the input structs do not know (`code: unknown_field`).

use super::problem::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

pub const BODY_LIMIT: usize = 1 << 20;

pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                let mime = ct
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A body that could not be read: too large (413) or cut off by the client (400).
pub fn body_error(e: axum::extract::rejection::BytesRejection) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::BadRequest {
            kind: "unreadable-body",
            title: "Unreadable body",
            detail: format!("the request body could not be read: {e}"),
        }
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::BadRequest {
                kind: "malformed-json",
                title: "Malformed JSON",
                detail: format!("the body is not valid JSON: {inner}"),
            }
        } else {
            let path = if path == "." { String::new() } else { path };
            let msg = inner.to_string();
            // serde's message ends with " at line L column C"; the path says where instead.
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            // For a missing field serde_path_to_error stops at the parent object: the field's
            // name is in serde's message, between backticks. An unknown field's path already ends
            // with its key (captured while the key was read); the message names it otherwise.
            let code = if msg.starts_with("missing field") {
                "required"
            } else if msg.starts_with("unknown field") {
                "unknown_field"
            } else {
                "invalid_type"
            };
            let path = match (code, named_field(&msg)) {
                ("required", Some(field)) => child_path(&path, field),
                ("unknown_field", Some(field)) if path.is_empty() => field.to_string(),
                _ => path,
            };
            ApiError::field(path, code, msg)
        }
    })?;
    de.end().map_err(|e| ApiError::BadRequest {
        kind: "malformed-json",
        title: "Malformed JSON",
        detail: format!("the body has more than one JSON value: {e}"),
    })?;
    Ok(value)
}

/// The field a serde message names: `missing field `x`` or
/// `unknown field `x`, expected one of `a`, `b``. An unknown name may itself contain a
/// backtick, so it ends at the last "`, " before serde's own text (or at the message's end).
fn named_field(msg: &str) -> Option<&str> {
    let rest = msg.split_once('`')?.1;
    let end = [
        rest.find("`, expected"),
        rest.find("`, there are no fields"),
        rest.rfind('`'),
    ]
    .into_iter()
    .flatten()
    .next()?;
    Some(&rest[..end])
}

/// `parent.field`, or `field` at the top level (an empty parent).
pub fn child_path(parent: &str, field: &str) -> String {
    if parent.is_empty() {
        field.to_string()
    } else {
        format!("{parent}.{field}")
    }
}

/// The single path parameter of a route (`{sku}`, `{id}`). A parameter that is not valid
/// UTF-8 cannot name anything, so it is a 404 problem rather than axum's plain-text 400.
pub struct PathParam(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        match axum::extract::Path::<String>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(PathParam(v)),
            Err(_) => Err(ApiError::NotFound(format!("the path {}", parts.uri.path()))),
        }
    }
}

/// The two path parameters of a nested route (`/v1/webhooks/{id}/deliveries/{delivery}`).
pub struct PathPair(pub String, pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PathPair {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        match axum::extract::Path::<(String, String)>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path((a, b))) => Ok(PathPair(a, b)),
            Err(_) => Err(ApiError::NotFound(format!("the path {}", parts.uri.path()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_domain::FieldError;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Line {
        sku: String,
        quantity: i64,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        #[serde(default)]
        lines: Vec<Line>,
    }

    fn field_error(body: &str) -> FieldError {
        match parse_json::<Body>(body.as_bytes()) {
            Err(ApiError::Validation(mut errors)) if errors.len() == 1 => errors.remove(0),
            other => panic!("expected one field error, got {other:?}"),
        }
    }

    #[test]
    fn unknown_fields_are_named_with_their_full_path() {
        let e = field_error(r#"{"lines": [], "promo_code": "X"}"#);
        assert_eq!(
            (e.path.as_str(), e.code.as_str()),
            ("promo_code", "unknown_field")
        );
        assert!(
            e.message.contains("expected") && e.message.contains("lines"),
            "{}",
            e.message
        );
        let e = field_error(r#"{"lines": [{"sku": "A", "quantity": 1}, {"sku": "A", "qty": 1}]}"#);
        assert_eq!(
            (e.path.as_str(), e.code.as_str()),
            ("lines[1].qty", "unknown_field")
        );
        let e = field_error(r#"{"lines": [{"sku": "A"}]}"#);
        assert_eq!(
            (e.path.as_str(), e.code.as_str()),
            ("lines[0].quantity", "required")
        );
        let e = field_error(r#"{"we`ird": 1}"#);
        assert_eq!(e.path, "we`ird");
    }
}
