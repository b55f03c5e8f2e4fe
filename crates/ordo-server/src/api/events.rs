//! `GET /v1/events`: the tenant's event log in log order, for a consumer that lost its place
//! (admins). Each item is a CloudEvent; `next_after` is where the next call continues.

use super::problem::{ApiError, Problem};
use crate::AppState;
use crate::auth::Caller;
use crate::services;
use axum::extract::{Query, State};
use axum::{Extension, Json};
use ordo_domain::FieldErrors;
use ordo_domain::events::{CloudEvent, TypeFilter};
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventPage {
    /// Events after `after`, oldest first.
    pub items: Vec<CloudEvent>,
    /// The log position of the last item (or `after` when there was none): pass it as `after`
    /// to continue. Positions only grow; a later event never gets a smaller one.
    pub next_after: i64,
}

/// The event log after a position: every event of the tenant in the order it entered the log
/// (per subject, in `sequence` order). `after` is a position from `next_after` (0 or absent: from
/// the oldest event kept) or the `id` of an event already seen.
#[utoipa::path(get, path = "/v1/events", tag = "events",
    params(
        ("after" = Option<String>, Query, pattern = "^([0-9]{0,18}|[0-9a-fA-F-]{36})$", description = "a `next_after` value, or the id of an event seen last; absent: from the start of the log"),
        ("types" = Option<String>, Query, description = "comma-separated event types, e.g. `ordo.order.placed,ordo.refund.issued`; absent: all"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "1 to 1000, default 100")),
    responses((status = 200, body = EventPage),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "`after` names an event id this tenant's log does not hold"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<EventPage>, ApiError> {
    let mut errs = FieldErrors::default();
    let limit = match params.get("limit").map(|l| l.parse::<i64>()) {
        None => 100,
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        Some(_) => {
            errs.add(
                "limit",
                "out_of_range",
                "limit is an integer from 1 to 1000",
            );
            100
        }
    };
    let after = match params
        .get("after")
        .map(|a| a.trim())
        .filter(|a| !a.is_empty())
    {
        None => services::events::After::Start,
        Some(a) => match a.parse::<i64>() {
            Ok(n) if n >= 0 => services::events::After::Position(n),
            Ok(_) => {
                errs.add("after", "out_of_range", "a position is 0 or more");
                services::events::After::Start
            }
            Err(_) => match uuid::Uuid::parse_str(a) {
                Ok(id) => services::events::After::Event(id.to_string()),
                Err(_) => {
                    errs.add(
                        "after",
                        "invalid",
                        "pass a next_after value or the id of an event",
                    );
                    services::events::After::Start
                }
            },
        },
    };
    let types = match params
        .get("types")
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
    {
        None => vec![],
        Some(t) => {
            let names: Vec<&str> = t.split(',').map(str::trim).collect();
            match TypeFilter::parse(&names) {
                Ok(TypeFilter::All) => vec![],
                Ok(TypeFilter::Only(ts)) => ts.iter().map(|t| t.as_str().to_string()).collect(),
                Err(e) => {
                    errs.add("types", "unknown_type", &e);
                    vec![]
                }
            }
        }
    };
    errs.into_result()?;
    let (items, next_after) =
        services::events::after(&state, &caller, after, &types, limit).await?;
    Ok(Json(EventPage { items, next_after }))
}
