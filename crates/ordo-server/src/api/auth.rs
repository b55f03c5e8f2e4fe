//! `/v1/auth/token` (RFC 6749, form-encoded; its errors are RFC 6749 `{error, error_description}`
//! bodies, what OAuth clients parse), `/v1/auth/signup` (problem+json like every other route)
//! and `/.well-known/jwks.json`. Token answers are never cached (`Cache-Control: no-store`).

use super::json::ApiJson;
use super::problem::{ApiError, Problem};
use crate::AppState;
use crate::auth::Caller;
use crate::auth::tokens::{OAuthError, TokenResponse};
use crate::services::accounts::{self, SignupInput};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Extension, FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Serialize;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The form fields of a token request (documentation; the handler reads the form itself).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct TokenForm {
    /// `client_credentials`, `password` or `refresh_token`.
    grant_type: String,
    /// The client (or send it with HTTP Basic authentication).
    client_id: Option<String>,
    client_secret: Option<String>,
    /// `password` grant: the shopper's email.
    username: Option<String>,
    /// `password` grant.
    password: Option<String>,
    /// `refresh_token` grant.
    refresh_token: Option<String>,
    /// Space-separated; at most what the client or user is granted.
    scope: Option<String>,
}

/// An RFC 6749 §5.2 error body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OAuthErrorBody {
    error: String,
    error_description: String,
}

fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let body = OAuthErrorBody {
            error: self.error.to_string(),
            error_description: self.description,
        };
        let mut res = no_store((status, axum::Json(body)).into_response());
        match self.status {
            401 => {
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"ordo\""),
                );
            }
            429 => {
                let secs = crate::auth::tokens::LOCKOUT.as_secs().to_string();
                if let Ok(v) = HeaderValue::from_str(&secs) {
                    res.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            503 => {
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        res
    }
}

fn token_ok(t: TokenResponse, status: StatusCode) -> Response {
    no_store((status, axum::Json(t)).into_response())
}

/// The client's address (the connection's peer).
pub(crate) fn client_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// Parses `application/x-www-form-urlencoded`; a repeated parameter is an error (RFC 6749 §3.2).
fn form(body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| OAuthError::new(400, "invalid_request", "the body is not a valid form"))?;
    let mut out = HashMap::new();
    for (k, v) in pairs {
        if out.insert(k.clone(), v).is_some() {
            return Err(OAuthError::new(
                400,
                "invalid_request",
                format!("the parameter {k} is repeated"),
            ));
        }
    }
    Ok(out)
}

/// Client id and secret from HTTP Basic (RFC 6749 §2.3.1) or the form.
fn client_auth(
    headers: &HeaderMap,
    f: &HashMap<String, String>,
) -> Result<Option<(String, String)>, OAuthError> {
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let bad = || {
            OAuthError::new(
                401,
                "invalid_client",
                "the Authorization header must be HTTP Basic client credentials",
            )
        };
        let v = v.to_str().map_err(|_| bad())?;
        let (scheme, rest) = v.split_once(' ').ok_or_else(bad)?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(bad());
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .map_err(|_| bad())?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
        let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
        let id = percent_decode(id);
        let secret = percent_decode(secret);
        return Ok(Some((id, secret)));
    }
    match (f.get("client_id"), f.get("client_secret")) {
        (Some(id), Some(secret)) => Ok(Some((id.clone(), secret.clone()))),
        (Some(_), None) => Err(OAuthError::new(
            401,
            "invalid_client",
            "client_secret is missing",
        )),
        (None, Some(_)) => Err(OAuthError::new(
            400,
            "invalid_request",
            "client_id is missing",
        )),
        (None, None) => Ok(None),
    }
}

fn percent_decode(s: &str) -> String {
    serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
        .ok()
        .and_then(|mut v| v.pop())
        .map(|(_, v)| v)
        .unwrap_or_else(|| s.to_string())
}

fn required<'a>(f: &'a HashMap<String, String>, name: &str) -> Result<&'a str, OAuthError> {
    match f.get(name).map(String::as_str) {
        Some(v) if !v.is_empty() => {
            if v.len() > crate::auth::passwords::MAX_LEN.max(crate::auth::tokens::MAX_TOKEN_LEN) {
                return Err(OAuthError::new(
                    400,
                    "invalid_request",
                    format!("{name} is too long"),
                ));
            }
            Ok(v)
        }
        _ => Err(OAuthError::new(
            400,
            "invalid_request",
            format!("{name} is missing"),
        )),
    }
}

/// Issue an access token (RFC 6749): `client_credentials` for the app, staff tools and
/// channels; `password` for shoppers (email and password); `refresh_token` to rotate a session.
#[utoipa::path(post, path = "/v1/auth/token", tag = "auth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded",
        example = json!({"grant_type": "client_credentials", "client_id": "demo-app", "client_secret": "demo-secret"})),
    responses((status = 200, body = TokenResponse, description = "the token (Cache-Control: no-store)"),
              (status = 400, body = OAuthErrorBody, description = "invalid_request, invalid_grant, unsupported_grant_type, invalid_scope"),
              (status = 401, body = OAuthErrorBody, description = "invalid_client"),
              (status = 413, body = Problem, content_type = "application/problem+json"),
              (status = 415, body = OAuthErrorBody, description = "the body is not form-encoded"),
              (status = 429, body = OAuthErrorBody, description = "too many failed sign-ins; Retry-After says when to try again"),
              (status = 503, body = OAuthErrorBody, description = "temporarily_unavailable")))]
pub async fn token(State(state): State<AppState>, request: Request) -> Response {
    match issue(&state, request).await {
        Ok(t) => token_ok(t, StatusCode::OK),
        Err(e) => e.into_response(),
    }
}

async fn issue(state: &AppState, request: Request) -> Result<TokenResponse, OAuthError> {
    let ip = client_ip(&request);
    let headers = request.headers().clone();
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
        .unwrap_or(false);
    if !is_form {
        return Err(OAuthError::new(
            415,
            "invalid_request",
            "send the token request as application/x-www-form-urlencoded",
        ));
    }
    let body = Bytes::from_request(request, &()).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            OAuthError::new(413, "invalid_request", "the request body is too large")
        } else {
            OAuthError::new(400, "invalid_request", "the request body could not be read")
        }
    })?;
    let f = form(&body)?;
    let grant = required(&f, "grant_type")?;
    let scope = f.get("scope").map(String::as_str);
    let auth = &state.auth;
    match grant {
        "client_credentials" => {
            let (id, secret) = client_auth(&headers, &f)?.ok_or_else(|| {
                OAuthError::new(
                    401,
                    "invalid_client",
                    "client_id and client_secret are required",
                )
            })?;
            auth.client_credentials(&state.store, &id, &secret, scope, ip)
                .await
        }
        "password" => {
            let tenant = match client_auth(&headers, &f)? {
                // The first-party app may name itself; its tenant is the shopper's.
                Some((id, secret)) => {
                    auth.authenticate_client(&state.store, &id, &secret, ip)
                        .await?
                        .tenant_id
                }
                None => state.config.tenant.clone(),
            };
            let username = required(&f, "username")?;
            let password = required(&f, "password")?;
            auth.password(&state.store, &tenant, username, password, scope, ip)
                .await
        }
        "refresh_token" => {
            auth.refresh(&state.store, required(&f, "refresh_token")?, scope)
                .await
        }
        other => Err(OAuthError::new(
            400,
            "unsupported_grant_type",
            format!(
                "the grant type {other:?} is not supported; use client_credentials, password or refresh_token"
            ),
        )),
    }
}

/// Sign up as a shopper: `{email, password, name, phone?}` (password 8–1024 characters). Answers
/// the token body (with a refresh token) and 201. The tenant is the caller's app token's, or the
/// default tenant without one.
#[utoipa::path(post, path = "/v1/auth/signup", tag = "auth",
    request_body(content = SignupInput, example = json!({"email": "ana@example.com", "password": "correct horse battery", "name": "Ana Lima", "phone": "+14155550100"})),
    responses((status = 201, body = TokenResponse, description = "signed up and signed in (Cache-Control: no-store)"),
              (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "the email is taken"),
              (status = 415, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json"),
              (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn signup(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(input): ApiJson<SignupInput>,
) -> Result<Response, ApiError> {
    let t = accounts::sign_up(&state, &caller, input).await?;
    Ok(token_ok(t, StatusCode::CREATED))
}

/// The public keys that verify Ordo's access tokens (RFC 7517).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "the JSON Web Key Set", body = Object)))]
pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut res = axum::Json(state.auth.keys.jwks()).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    res
}
