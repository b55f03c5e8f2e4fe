//! The one place access is decided. Every route is registered with a `Policy` (see
//! `api::endpoints`, a table a test walks against the OpenAPI document); the `authorize` layer
//! verifies the bearer token, applies the policy and hands the handler a `Caller`.
//! Missing or bad token: 401; valid token, wrong role: 403; someone else's resource: the service
//! answers 404, so nobody learns that a resource exists.

use super::{Caller, Role};
use crate::AppState;
use crate::api::problem::{Problem, problem, problem_response};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Anyone. A valid token, if sent, selects its tenant; otherwise the default tenant.
    Anonymous,
    /// A valid token with one of these roles.
    Roles(&'static [Role]),
}

/// The mobile app (guest checkout) and signed-in shoppers: carts, payment tokens, placing orders.
pub const SHOPPING: Policy = Policy::Roles(&[Role::App, Role::Shopper]);
/// Signed-in shoppers only: their passkeys.
pub const SHOPPERS: Policy = Policy::Roles(&[Role::Shopper]);
/// Who may read an order (the service then hides other people's orders with 404).
pub const ORDER_READERS: Policy =
    Policy::Roles(&[Role::Shopper, Role::Guest, Role::Staff, Role::Admin]);
/// Store and warehouse staff, and admins.
pub const STAFF: Policy = Policy::Roles(&[Role::Staff, Role::Admin]);
/// Staff, admins, and channel clients (carriers post tracking events).
pub const CARRIERS: Policy = Policy::Roles(&[Role::Staff, Role::Admin, Role::Channel]);
/// Admins only.
pub const ADMIN: Policy = Policy::Roles(&[Role::Admin]);

impl Policy {
    /// The roles allowed (empty: anyone).
    pub fn roles(self) -> &'static [Role] {
        match self {
            Policy::Anonymous => &[],
            Policy::Roles(r) => r,
        }
    }
}

const CHALLENGE: &str = "Bearer realm=\"ordo\"";

fn refuse(
    status: StatusCode,
    kind: &str,
    title: &str,
    detail: String,
    challenge: Option<String>,
) -> Response {
    let p: Problem = problem(status, kind, title, detail);
    let mut res = problem_response(p);
    if let Some(c) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, c);
    }
    res
}

/// 401 for a request without a usable token.
pub fn unauthorized(detail: &str) -> Response {
    refuse(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Authentication required",
        detail.to_string(),
        Some(CHALLENGE.to_string()),
    )
}

/// 401 for a token that failed verification.
pub fn invalid_token(why: &str) -> Response {
    let challenge = format!(
        "{CHALLENGE}, error=\"invalid_token\", error_description=\"{}\"",
        why.replace('"', "'")
    );
    refuse(
        StatusCode::UNAUTHORIZED,
        "invalid-token",
        "Invalid token",
        why.to_string(),
        Some(challenge),
    )
}

/// The bearer token of a request: `Ok(None)` without an Authorization header.
fn bearer(req: &Request) -> Result<Option<&str>, &'static str> {
    let Some(v) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| "the Authorization header is not visible ASCII")?;
    let (scheme, token) = v
        .split_once(' ')
        .ok_or("the Authorization header must be `Bearer <token>`")?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err("the Authorization header must be `Bearer <token>`");
    }
    Ok(Some(token.trim()))
}

/// The per-route layer: verifies the token, applies `policy`, inserts the `Caller`.
pub async fn authorize(
    State((state, policy)): State<(AppState, Policy)>,
    mut req: Request,
    next: Next,
) -> Response {
    let token = match bearer(&req) {
        Ok(t) => t.map(str::to_string),
        Err(why) if policy == Policy::Anonymous => {
            let _ = why;
            None
        }
        Err(why) => return invalid_token(why),
    };
    let principal = match token {
        None => None,
        Some(t) => match state.auth.verify(&state.store, &t).await {
            Ok(p) => Some(p),
            // An anonymous route serves a caller whose token went stale as anyone else.
            Err(_) if policy == Policy::Anonymous => None,
            Err(e) => return invalid_token(&e.0),
        },
    };
    let request_id = req
        .headers()
        .get(crate::api::edge::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let client_ip = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let caller = match (policy, principal) {
        (Policy::Anonymous, p) => Caller {
            tenant: p
                .as_ref()
                .map(|p| p.tenant.clone())
                .unwrap_or_else(|| state.config.tenant.clone()),
            principal: p,
            request_id,
            client_ip,
        },
        (Policy::Roles(_), None) => {
            return unauthorized("this route needs a bearer token (POST /v1/auth/token)");
        }
        (Policy::Roles(roles), Some(p)) if !roles.contains(&p.role) => {
            let allowed: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            return refuse(
                StatusCode::FORBIDDEN,
                "forbidden",
                "Forbidden",
                format!(
                    "the role {} may not do this; allowed: {}",
                    p.role.as_str(),
                    allowed.join(", ")
                ),
                None,
            );
        }
        (Policy::Roles(_), Some(p)) => Caller {
            tenant: p.tenant.clone(),
            principal: Some(p),
            request_id,
            client_ip,
        },
    };
    // The mobile app's one credential speaks for all its shoppers: their IPs are limited instead.
    let verdict = match caller.principal.as_ref().filter(|p| p.role != Role::App) {
        Some(p) => state.limits.check_subject(&p.tenant, &p.subject),
        None => crate::api::limits::Verdict::Unlimited,
    };
    if let crate::api::limits::Verdict::Refused {
        limit,
        retry_after_secs,
    } = verdict
    {
        return crate::api::limits::refused(limit, retry_after_secs, "token subject");
    }
    req.extensions_mut().insert(caller);
    let mut res = next.run(req).await;
    crate::api::limits::annotate(&mut res, &verdict);
    res
}
