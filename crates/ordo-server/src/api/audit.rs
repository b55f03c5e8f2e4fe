//! `GET /v1/audit`: the tenant's audit log for admins, oldest first, paged by cursor. Entries are
//! written by the services in the transaction of the change; nothing here writes.

use super::problem::{ApiError, Problem};
use crate::AppState;
use crate::auth::Caller;
use crate::services::rfc3339;
use axum::extract::{Query, State};
use axum::{Extension, Json};
use ordo_domain::FieldErrors;
use serde::Serialize;
use std::collections::HashMap;

/// One staff or admin action.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditEntryBody {
    pub id: i64,
    /// RFC 3339, UTC.
    pub at: String,
    /// The token's subject (user or client id).
    pub actor: String,
    pub role: String,
    /// e.g. `product.updated`, `stock.adjusted`.
    pub action: String,
    /// e.g. `product:TEE-1`, `stock:TEE-1@wh-east`.
    pub target: String,
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntryBody>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The audit log, oldest first.
#[utoipa::path(get, path = "/v1/audit", tag = "audit",
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "1 to 500, default 100"),
           ("cursor" = Option<String>, Query, pattern = "^[0-9]{0,18}$", description = "next_cursor of the previous page")),
    responses((status = 200, body = AuditPage), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<AuditPage>, ApiError> {
    let mut errs = FieldErrors::default();
    let limit = match params.get("limit").map(|l| l.parse::<i64>()) {
        None => 100,
        Some(Ok(n)) if (1..=500).contains(&n) => n,
        Some(_) => {
            errs.add("limit", "out_of_range", "limit is an integer from 1 to 500");
            100
        }
    };
    let after = match params
        .get("cursor")
        .filter(|c| !c.is_empty())
        .map(|c| c.parse::<i64>())
    {
        None => 0,
        Some(Ok(n)) if n >= 0 => n,
        Some(_) => {
            errs.add(
                "cursor",
                "invalid_cursor",
                "pass a next_cursor value returned by this endpoint",
            );
            0
        }
    };
    errs.into_result()?;
    let mut rows = state
        .store
        .audit_page(caller.tenant(), after, limit + 1)
        .await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.id.to_string())
    } else {
        None
    };
    let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
    let items = rows
        .into_iter()
        .map(|r| AuditEntryBody {
            id: r.id,
            at: rfc3339(r.at_ms),
            actor: r.actor,
            role: r.role,
            action: r.action,
            target: r.target,
            before: parse(r.before),
            after: parse(r.after),
            client_ip: r.client_ip,
            request_id: r.request_id,
        })
        .collect();
    Ok(Json(AuditPage { items, next_cursor }))
}
