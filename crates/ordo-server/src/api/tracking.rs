//! Live tracking over HTTP: carriers (or staff) post tracking events of a shipped fulfilment;
//! the app reads each fulfilment's position, ETA and events, and follows every change of the
//! order as server-sent events.

use super::json::{ApiJson, PathParam};
use super::problem::{ApiError, Problem};
use crate::AppState;
use crate::auth::Caller;
use crate::services::lifecycle::{self as svc, TrackingBody, TrackingEventInput};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::{Extension, Json};
use futures::stream::Stream;
use ordo_domain::FieldErrors;
use ordo_domain::lifecycle::TrackingStatus;
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackingInput {
    #[schema(pattern = "^(in_transit|out_for_delivery|delivered|exception)$")]
    pub status: String,
    /// When it happened (RFC 3339).
    #[schema(example = "2026-11-26T14:05:00Z")]
    pub at: String,
    #[schema(minimum = -90, maximum = 90)]
    pub lat: Option<f64>,
    #[schema(minimum = -180, maximum = 180)]
    pub lon: Option<f64>,
    #[schema(max_length = 500)]
    pub description: Option<String>,
}

/// Record a carrier's tracking event on a shipped fulfilment (staff or a carrier's `channel`
/// client). Events arriving out of time order are kept; the position is the latest by `at`; a
/// `delivered` event delivers the fulfilment.
#[utoipa::path(post, path = "/v1/fulfillments/{id}/tracking-events", tag = "fulfillment",
    params(("id" = String, Path, description = "fulfilment id (ful_…)")),
    request_body(content = TrackingInput, example = json!({"status": "in_transit", "at": "2026-11-26T14:05:00Z", "lat": 39.1, "lon": -94.6, "description": "departed Kansas City hub"})),
    responses((status = 201, body = TrackingBody, description = "recorded; the fulfilment's position and ETA after it"),
              (status = 404, body = Problem, content_type = "application/problem+json", description = "unknown fulfilment"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "`illegal-transition`: the fulfilment has not shipped (see `current_status`)"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "invalid fields: status, a time that is not RFC 3339 or lies in the future, coordinates out of range or only one of them")))]
pub async fn post_event(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
    ApiJson(input): ApiJson<TrackingInput>,
) -> Result<(axum::http::StatusCode, Json<TrackingBody>), ApiError> {
    let mut errs = FieldErrors::default();
    let status = TrackingStatus::parse(&input.status);
    if status.is_none() {
        errs.add(
            "status",
            "unknown_value",
            "status is in_transit, out_for_delivery, delivered or exception",
        );
    }
    let at = time::OffsetDateTime::parse(&input.at, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64);
    match at {
        None => errs.add(
            "at",
            "invalid_format",
            "at is an RFC 3339 time, e.g. 2026-11-26T14:05:00Z",
        ),
        Some(ms) if ms > ordo_store::now_ms() + 300_000 => errs.add(
            "at",
            "in_future",
            "at lies more than 5 minutes in the future",
        ),
        Some(ms) if ms < 0 => errs.add("at", "out_of_range", "at lies before 1970"),
        Some(_) => {}
    }
    let point = match (input.lat, input.lon) {
        (None, None) => None,
        (Some(lat), Some(lon)) => match ordo_domain::routing::GeoPoint::parse(lat, lon) {
            Ok(p) => Some((p.lat(), p.lon())),
            Err(e) => {
                errs.add(e.path.clone(), &e.code, e.message.clone());
                None
            }
        },
        (Some(_), None) => {
            errs.add("lon", "required", "give lon with lat");
            None
        }
        (None, Some(_)) => {
            errs.add("lat", "required", "give lat with lon");
            None
        }
    };
    let description = input
        .description
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty());
    if let Some(d) = description {
        if d.chars().count() > 500 || d.chars().any(char::is_control) {
            errs.add(
                "description",
                "invalid_format",
                "a description has at most 500 characters and no control characters",
            );
        }
    }
    errs.into_result()?;
    let event = TrackingEventInput {
        status: status.unwrap_or(TrackingStatus::Exception),
        at_ms: at.unwrap_or_default(),
        point,
        description: description.map(str::to_string),
    };
    let body = svc::track(&state, &caller, &id, event).await?;
    Ok((axum::http::StatusCode::CREATED, Json(body)))
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct OrderTracking {
    pub fulfillments: Vec<TrackingBody>,
    /// The ETA model's version.
    pub eta_model: String,
}

/// Each fulfilment's live position, ETA and carrier events (oldest first).
#[utoipa::path(get, path = "/v1/orders/{id}/tracking", tag = "orders",
    params(("id" = String, Path, description = "internal id (ord_…) or order number (ORD-XXXX-XXXX)")),
    responses((status = 200, body = OrderTracking),
              (status = 404, body = Problem, content_type = "application/problem+json", description = "no such order (or not the caller's)")))]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
) -> Result<Json<OrderTracking>, ApiError> {
    Ok(Json(OrderTracking {
        fulfillments: svc::tracking(&state, &caller, &id).await?,
        eta_model: ordo_domain::lifecycle::ETA_MODEL_VERSION.into(),
    }))
}

/// The order's changes as server-sent events: `event:` the change (`fulfillment.shipped`,
/// `tracking.in_transit`, `order.cancelled`, …; first a `snapshot` of the order's status),
/// `data:` its JSON, `id:` its sequence number — reconnect with `Last-Event-ID` to resume after
/// it. Changes made by any Ordo process on the same database appear within a second.
#[utoipa::path(get, path = "/v1/orders/{id}/events", tag = "orders",
    params(("id" = String, Path, description = "internal id (ord_…) or order number (ORD-XXXX-XXXX)"),
           ("Last-Event-ID" = Option<String>, Header, description = "the id of the last event received, to resume after it (one this stream never sent is ignored)")),
    responses((status = 200, content_type = "text/event-stream", description = "a stream of events, kept alive with comments"),
              (status = 404, body = Problem, content_type = "application/problem+json", description = "no such order (or not the caller's)"),
))]
pub async fn stream(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // A Last-Event-ID this stream never sent (empty, or not one of its numbers) is ignored, as
    // the SSE specification lets a server do: the stream starts afresh with a snapshot.
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 18 && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse::<i64>().ok());
    let (snapshot, order_id, from) = svc::stream_start(&state, &caller, &id, last).await?;
    let tenant = caller.tenant().to_string();
    let first = snapshot.map(|(seq, data)| {
        Event::default()
            .event("snapshot")
            .id(seq.to_string())
            .data(data.to_string())
    });
    let store = state.store.clone();
    let follow = futures::stream::unfold(
        (store, tenant, order_id, from),
        |(store, tenant, order_id, after)| async move {
            loop {
                match store.timeline_after(&tenant, &order_id, after).await {
                    Ok(rows) if !rows.is_empty() => {
                        let next = rows.last().map_or(after, |(s, _)| *s);
                        let events: Vec<Result<Event, Infallible>> = rows
                            .into_iter()
                            .map(|(seq, e)| Ok(sse_event(seq, e)))
                            .collect();
                        return Some((
                            futures::stream::iter(events),
                            (store, tenant, order_id, next),
                        ));
                    }
                    Ok(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "order event stream could not read; ending it");
                        return None;
                    }
                }
            }
        },
    );
    use futures::StreamExt;
    let stream = futures::stream::iter(first.map(Ok)).chain(follow.flatten());
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// One timeline entry as a server-sent event: its action as the event name, its seq as the id.
fn sse_event(seq: i64, e: ordo_store::TimelineEntry) -> Event {
    let eta = e
        .detail
        .as_ref()
        .and_then(|d| d.get("eta_ms"))
        .and_then(|v| v.as_i64())
        .map(crate::services::rfc3339);
    let data = serde_json::json!({
        "seq": seq, "at": crate::services::rfc3339(e.at_ms), "actor": e.actor, "action": e.action,
        "from": e.from, "to": e.to, "reason": e.reason, "detail": e.detail, "eta": eta,
    });
    Event::default()
        .event(e.action)
        .id(seq.to_string())
        .data(data.to_string())
}
