//! The order after placement: staff pick, pack, ship and deliver fulfilments; shoppers, guests
//! and staff cancel; everyone who may see an order reads its timeline. Money moves through the
//! gateway outside every transaction: a ship claims its fulfilment and the captures it needs in
//! one commit, captures, then commits the shipment (or releases the claim and refunds what a
//! partly failed capture took); a cancellation commits first and sends its voids after.

use super::error::{ConflictReason, Result, ServiceError};
use crate::AppState;
use crate::auth::{Caller, Role};
use crate::gateway::{GatewayError, OperationStatus};
use ordo_domain::lifecycle::{Canceller, FulfillmentCommand, FulfillmentStatus, TrackingStatus};
use ordo_domain::{Currency, Money, Order, Sku};
use ordo_store::{Actor, FulfillmentView, LifecycleError, OpOutcome, PaymentOp};

/// The timeline's actor and the audit entry for this caller.
pub fn actor(caller: &Caller) -> Actor {
    let label = match &caller.principal {
        None => "system".to_string(),
        Some(p) => match p.role {
            Role::Guest => "guest".to_string(),
            r => format!("{}:{}", r.as_str(), p.subject),
        },
    };
    let audit = match caller.role() {
        Some(Role::Staff | Role::Admin) => caller.audit_entry(),
        _ => None,
    };
    Actor { label, audit }
}

/// Staff limited to locations act only there; anyone else is told the fulfilment does not exist.
pub(crate) fn may_act_at(caller: &Caller, location: &str) -> bool {
    match &caller.principal {
        Some(p) if matches!(p.role, Role::Staff) => {
            p.locations.is_empty() || p.locations.iter().any(|l| l == location)
        }
        Some(p) => matches!(p.role, Role::Admin),
        None => false,
    }
}

pub(crate) fn refused(e: LifecycleError) -> ServiceError {
    match e {
        LifecycleError::UnknownFulfillment(id) => {
            ServiceError::NotFound(format!("fulfillment {id}"))
        }
        LifecycleError::UnknownOrder(id) => ServiceError::NotFound(format!("order {id}")),
        LifecycleError::Illegal(m) => ServiceError::WrongState {
            detail: format!("{m}"),
            current_status: m.from.as_str().to_string(),
        },
        LifecycleError::Cancel { current, refusal } => ServiceError::WrongState {
            detail: refusal.to_string(),
            current_status: current.as_str().to_string(),
        },
        LifecycleError::PaymentInProgress => ServiceError::conflict(
            ConflictReason::PaymentInProgress,
            "a payment operation of this order is in progress; retry shortly",
            vec![],
        ),
        LifecycleError::TooMany {
            path,
            sku,
            asked,
            left,
        } => ServiceError::field(
            path,
            "exceeds_remaining",
            format!("{asked} units of {sku} asked, {left} left to act on"),
        ),
        LifecycleError::NotInOrder { path, sku } => ServiceError::field(
            path,
            "not_in_order",
            format!("the order has no line with SKU {sku}"),
        ),
        LifecycleError::NotShipped { current } => ServiceError::WrongState {
            detail: format!(
                "the fulfilment is {}: tracking starts once it shipped",
                current.as_str()
            ),
            current_status: current.as_str().to_string(),
        },
        LifecycleError::ReturnUnits {
            path,
            sku,
            asked,
            left,
            what,
        } => ServiceError::conflict(
            ConflictReason::ReturnUnitsExceeded,
            format!("{path}: {asked} of {sku} asked, but only {left} {what}"),
            vec![serde_json::json!({"path": path, "sku": sku, "requested": asked, "left": left})],
        ),
        LifecycleError::NotReceived { current } => ServiceError::WrongState {
            detail: format!("the return is {current}: receive its units first"),
            current_status: current,
        },
        LifecycleError::ExchangeUnits => ServiceError::field(
            "lines",
            "exchange_units",
            "an exchange's units are picked in full; cancel the exchange's fulfilment instead",
        ),
        LifecycleError::Repriced => ServiceError::conflict(
            ConflictReason::PricesChanged,
            "the exchange's price moved while it was being made; nothing was exchanged, retry",
            vec![],
        ),
        LifecycleError::NoNode { sku, reason_codes } => ServiceError::conflict(
            ConflictReason::OutOfStock,
            format!("no node can ship {sku} to the order's address"),
            vec![serde_json::json!({"sku": sku, "reason_codes": reason_codes})],
        ),
        LifecycleError::UnknownReturn(id) => ServiceError::NotFound(format!("return {id}")),
        LifecycleError::UnknownLocation(id) => ServiceError::field(
            "location_id",
            "unknown_location",
            format!("no location has id {id}"),
        ),
        LifecycleError::OtherNode { expected } => ServiceError::field(
            "location_id",
            "other_location",
            format!("this return is being received at {expected}; receive the rest there"),
        ),
        LifecycleError::NothingShipped { current } => ServiceError::WrongState {
            detail: "nothing of this order has shipped yet: cancel it instead".into(),
            current_status: current.as_str().to_string(),
        },
        LifecycleError::WindowClosed { days } => ServiceError::field(
            "lines",
            "return_window_closed",
            format!("the return window of {days} days after delivery has closed"),
        ),
        LifecycleError::Uncovered { needed, open } => ServiceError::PaymentDeclined {
            detail: format!(
                "the order's authorizations hold {open} (minor units) open, {needed} are needed to ship; the order needs a new payment"
            ),
            payment: serde_json::json!({"reason": "authorization_exhausted", "needed": needed, "open": open}),
        },
    }
}

/// A fulfilment the caller may act on.
async fn visible(state: &AppState, caller: &Caller, id: &str) -> Result<FulfillmentView> {
    state
        .store
        .fulfillment(caller.tenant(), id)
        .await?
        .filter(|f| may_act_at(caller, f.fulfillment.location_id.as_str()))
        .ok_or_else(|| ServiceError::NotFound(format!("fulfillment {id}")))
}

/// A fulfilment the caller may see.
pub async fn fulfillment(state: &AppState, caller: &Caller, id: &str) -> Result<FulfillmentView> {
    visible(state, caller, id).await
}

/// Picks a fulfilment; `picked` names SKUs found fewer than carried (a short pick: the rest is
/// routed to another node, or cancelled and voided when none has it).
pub async fn pick(
    state: &AppState,
    caller: &Caller,
    id: &str,
    picked: &[(Sku, i64)],
) -> Result<(FulfillmentView, Vec<ordo_store::ShortPick>)> {
    visible(state, caller, id).await?;
    let p = state
        .store
        .pick_fulfillment(caller.tenant(), id, picked, &actor(caller))
        .await?
        .map_err(refused)?;
    send_ops(state, caller.tenant(), &p.voids).await;
    Ok((p.view, p.shorts))
}

/// Pack or deliver a fulfilment.
pub async fn step(
    state: &AppState,
    caller: &Caller,
    id: &str,
    command: FulfillmentCommand,
) -> Result<FulfillmentView> {
    visible(state, caller, id).await?;
    state
        .store
        .step_fulfillment(caller.tenant(), id, command, &actor(caller))
        .await?
        .map_err(refused)
}

pub(crate) fn money(amount: i64, currency: &str) -> Result<Money> {
    let c = Currency::parse(currency).map_err(|e| ServiceError::Internal(e.message))?;
    Ok(Money::new(amount, c))
}

/// One operation's outcome, asking the gateway's status after a timeout. `None`: still unknown.
pub(crate) async fn resolve(
    state: &AppState,
    op: &PaymentOp,
    first: std::result::Result<String, GatewayError>,
) -> Option<OpOutcome> {
    match first {
        Ok(gateway_ref) => Some(OpOutcome::Succeeded { gateway_ref }),
        Err(GatewayError::Timeout) => match state.gateway.status(&op.id).await {
            Ok(OperationStatus::Succeeded { reference }) => Some(OpOutcome::Succeeded {
                gateway_ref: reference,
            }),
            Ok(OperationStatus::Failed { reason }) => Some(OpOutcome::Failed { reason }),
            // Never seen: a capture did not happen (the ship is released); a void or refund is
            // left pending, for recovery to send again under the same key.
            Ok(OperationStatus::Unknown) if op.kind == "capture" => Some(OpOutcome::Failed {
                reason: "the gateway never received the operation".into(),
            }),
            Ok(OperationStatus::Unknown) | Err(_) => None,
        },
        Err(e) => Some(OpOutcome::Failed {
            reason: e.to_string(),
        }),
    }
}

/// Ships a packed fulfilment: captures its value, then records the shipment. A capture that
/// fails leaves the fulfilment packed (402, what other tenders captured is refunded).
pub async fn ship(
    state: &AppState,
    caller: &Caller,
    id: &str,
    carrier: &str,
    tracking_number: &str,
) -> Result<FulfillmentView> {
    visible(state, caller, id).await?;
    let tenant = caller.tenant();
    let claim = state
        .store
        .claim_ship(tenant, id, carrier, tracking_number)
        .await?
        .map_err(refused)?;
    let mut outcomes = Vec::new();
    for op in &claim.captures {
        let amount = money(op.amount, &op.currency)?;
        let first = state
            .gateway
            .capture(&op.id, &op.authorization_id, amount)
            .await;
        match resolve(state, op, first).await {
            Some(o) => outcomes.push((op.id.clone(), o)),
            None => {
                // The outcome is unknown: the claim stays until recovery's status query settles it.
                return Err(ServiceError::Unavailable(
                    "the payment gateway did not answer; the shipment is held until its capture is confirmed"
                        .into(),
                ));
            }
        }
    }
    let failed: Vec<String> = outcomes
        .iter()
        .filter_map(|(_, o)| match o {
            OpOutcome::Failed { reason } => Some(reason.clone()),
            OpOutcome::Succeeded { .. } => None,
        })
        .collect();
    let (done, refunds) = state
        .store
        .finish_ship(tenant, id, &outcomes, &actor(caller))
        .await?
        .map_err(refused)?;
    if failed.is_empty() {
        if done.fulfillment.status != FulfillmentStatus::Shipped {
            // Settled meanwhile by recovery, which found the capture failed.
            return Err(ServiceError::WrongState {
                detail:
                    "the shipment's payment was settled without it; the fulfilment did not ship"
                        .into(),
                current_status: done.fulfillment.status.as_str().to_string(),
            });
        }
        return Ok(done);
    }
    // What the other tenders captured for this shipment goes back (booked with the release).
    send_ops(state, tenant, &refunds).await;
    Err(ServiceError::PaymentDeclined {
        detail: format!(
            "the capture for this shipment failed ({}); the fulfilment stays packed and anything captured was refunded",
            failed.join("; ")
        ),
        payment: serde_json::json!({"reason": "capture_failed", "fulfillment_id": id, "errors": failed}),
    })
}

/// Sends recorded voids and refunds to the gateway and records their answers (one without an
/// answer stays pending: recovery sends it again under the same key).
pub(crate) async fn send_ops(state: &AppState, tenant: &str, ops: &[PaymentOp]) {
    for op in ops {
        let Ok(amount) = money(op.amount, &op.currency) else {
            continue;
        };
        let first = match op.kind.as_str() {
            "void" => {
                state
                    .gateway
                    .void(&op.id, &op.authorization_id, amount)
                    .await
            }
            _ => {
                state
                    .gateway
                    .refund(&op.id, &op.authorization_id, amount)
                    .await
            }
        };
        if let Some(outcome) = resolve(state, op, first).await {
            if let Err(e) = state
                .store
                .finish_payment_op(tenant, &op.id, &outcome)
                .await
            {
                tracing::warn!(op = %op.id, error = %e, "could not record a payment operation's answer");
            }
        }
    }
}

/// Cancels an order (all its unshipped units) or, for staff, some of its lines.
pub async fn cancel(
    state: &AppState,
    caller: &Caller,
    id: &str,
    reason: &str,
    lines: &[(Sku, i64)],
) -> Result<Order> {
    let not_found = || ServiceError::NotFound(format!("order {id}"));
    let order = state
        .store
        .order(caller.tenant(), id)
        .await?
        .filter(|o| caller.may_see_order(&o.id.to_string(), o.customer.customer_id()))
        .ok_or_else(not_found)?;
    // Staff limited to locations cancel only orders whose open units are all theirs.
    let open_elsewhere = order.fulfillments.iter().any(|f| {
        !f.status.is_shipped()
            && f.status != FulfillmentStatus::Cancelled
            && !may_act_at(caller, f.location_id.as_str())
    });
    if caller.role() == Some(Role::Staff) && open_elsewhere {
        return Err(not_found());
    }
    let who = match caller.role() {
        Some(Role::Staff | Role::Admin) => Canceller::Staff,
        _ => Canceller::Customer,
    };
    let order_id = order.id.to_string();
    let done = state
        .store
        .cancel_units(
            caller.tenant(),
            &order_id,
            who,
            lines,
            reason,
            &actor(caller),
        )
        .await?
        .map_err(refused)?;
    send_ops(state, caller.tenant(), &done.voids).await;
    state
        .store
        .order(caller.tenant(), &order_id)
        .await?
        .ok_or_else(not_found)
}

/// One entry of an order's timeline.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TimelineItem {
    /// RFC 3339, UTC.
    pub at: String,
    /// `shopper:<id>`, `guest`, `staff:<id>`, `admin:<id>`, `channel:<id>` or `system`.
    pub actor: String,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
}

/// Every change of an order, oldest first: its placement (placed, confirmed, allocated in one
/// commit), then each transition.
pub async fn timeline(state: &AppState, caller: &Caller, id: &str) -> Result<Vec<TimelineItem>> {
    let order = state
        .store
        .order(caller.tenant(), id)
        .await?
        .filter(|o| caller.may_see_order(&o.id.to_string(), o.customer.customer_id()))
        .ok_or_else(|| ServiceError::NotFound(format!("order {id}")))?;
    let placer = match order.customer.customer_id() {
        Some(c) => format!("shopper:{c}"),
        None => "guest".to_string(),
    };
    let placed = |action: &str, from: Option<&str>, to: &str| TimelineItem {
        at: order.created_at.clone(),
        actor: if action == "order.placed" {
            placer.clone()
        } else {
            "system".into()
        },
        action: action.into(),
        from: from.map(str::to_string),
        to: Some(to.into()),
        reason: None,
        detail: None,
    };
    let mut out = vec![
        placed("order.placed", None, "placed"),
        placed("order.confirmed", Some("placed"), "confirmed"),
        placed("order.allocated", Some("confirmed"), "allocated"),
    ];
    out[0].detail = Some(serde_json::json!({"channel": order.channel}));
    for e in state
        .store
        .timeline(caller.tenant(), &order.id.to_string())
        .await?
    {
        out.push(TimelineItem {
            at: super::rfc3339(e.at_ms),
            actor: e.actor,
            action: e.action,
            from: e.from,
            to: e.to,
            reason: e.reason,
            detail: e.detail,
        });
    }
    Ok(out)
}

/// What a location has to pick: its allocated fulfilments, oldest first, a page after `after`.
pub async fn pick_list(
    state: &AppState,
    caller: &Caller,
    location: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<(Vec<FulfillmentView>, Option<String>)> {
    let known = state
        .store
        .locations(caller.tenant())
        .await?
        .iter()
        .any(|l| l.id.as_str() == location);
    if !known || !may_act_at(caller, location) {
        return Err(ServiceError::NotFound(format!("location {location}")));
    }
    let mut rows = state
        .store
        .fulfillments_at(
            caller.tenant(),
            location,
            &[FulfillmentStatus::Allocated],
            after,
            limit + 1,
        )
        .await?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|f| f.fulfillment.id.clone())
    } else {
        None
    };
    Ok((rows, next))
}

/// A carrier event as the service takes it (validated at the edge).
#[derive(Debug, Clone)]
pub struct TrackingEventInput {
    pub status: TrackingStatus,
    pub at_ms: i64,
    pub point: Option<(f64, f64)>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Position {
    pub lat: f64,
    pub lon: f64,
    /// RFC 3339: when the carrier was there.
    pub at: String,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TrackingEventBody {
    pub status: TrackingStatus,
    /// RFC 3339.
    pub at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One fulfilment's tracking.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TrackingBody {
    pub id: String,
    pub status: FulfillmentStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
    /// The latest known position (by event time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
    /// RFC 3339: when it should arrive (the speed model; none before shipping or after an
    /// exception).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta: Option<String>,
    /// Oldest first, by event time.
    pub events: Vec<TrackingEventBody>,
}

/// The ETA of a tracked fulfilment under the speed model (`lifecycle::eta_ms`), in unix ms.
pub fn eta_of(t: &ordo_store::Tracking) -> Option<i64> {
    use ordo_domain::routing::{Destination, GeoPoint};
    if let Some(d) = t
        .events
        .iter()
        .find(|e| e.status == TrackingStatus::Delivered)
    {
        return Some(d.at_ms);
    }
    let latest = t.events.last()?;
    let address = t.destination.as_ref()?;
    let point = address
        .lat
        .zip(address.lon)
        .and_then(|(lat, lon)| GeoPoint::parse(lat, lon).ok());
    let dest = Destination::resolve(&address.country, Some(&address.postal_code), point).ok()?;
    let (lat, lon) = t.events.iter().rev().find_map(|e| e.point).or(t.origin)?;
    let from = GeoPoint::parse(lat, lon).ok()?;
    ordo_domain::lifecycle::eta_ms(latest.status, from.distance_m(&dest.point), latest.at_ms)
}

fn tracking_body(t: ordo_store::Tracking) -> TrackingBody {
    let eta = eta_of(&t).map(super::rfc3339);
    let position = t.events.iter().rev().find_map(|e| {
        e.point.map(|(lat, lon)| Position {
            lat,
            lon,
            at: super::rfc3339(e.at_ms),
        })
    });
    let f = t.fulfillment;
    TrackingBody {
        id: f.id,
        status: f.status,
        carrier: f.carrier,
        tracking_number: f.tracking_number,
        position,
        eta,
        events: t
            .events
            .into_iter()
            .map(|e| TrackingEventBody {
                status: e.status,
                at: super::rfc3339(e.at_ms),
                lat: e.point.map(|p| p.0),
                lon: e.point.map(|p| p.1),
                description: e.description,
            })
            .collect(),
    }
}

/// Records a carrier event (staff, admins, or a channel client for carriers).
pub async fn track(
    state: &AppState,
    caller: &Caller,
    id: &str,
    event: TrackingEventInput,
) -> Result<TrackingBody> {
    let carrier = matches!(caller.role(), Some(Role::Channel));
    if !carrier {
        visible(state, caller, id).await?;
    }
    let t = state
        .store
        .track(
            caller.tenant(),
            id,
            event.status,
            event.at_ms,
            event.point,
            event.description,
            eta_of,
            &actor(caller),
        )
        .await?
        .map_err(refused)?;
    Ok(tracking_body(t))
}

/// Every fulfilment's tracking of an order the caller may see.
pub async fn tracking(state: &AppState, caller: &Caller, id: &str) -> Result<Vec<TrackingBody>> {
    let order = state
        .store
        .order(caller.tenant(), id)
        .await?
        .filter(|o| caller.may_see_order(&o.id.to_string(), o.customer.customer_id()))
        .ok_or_else(|| ServiceError::NotFound(format!("order {id}")))?;
    Ok(state
        .store
        .tracking(caller.tenant(), &order)
        .await?
        .into_iter()
        .map(tracking_body)
        .collect())
}

/// Where a live stream starts: without `last`, a snapshot (its id the latest change's) and the
/// changes after it; with `last`, the changes after that id. (snapshot, order id, after).
pub async fn stream_start(
    state: &AppState,
    caller: &Caller,
    id: &str,
    last: Option<i64>,
) -> Result<(Option<(i64, serde_json::Value)>, String, i64)> {
    let order = state
        .store
        .order(caller.tenant(), id)
        .await?
        .filter(|o| caller.may_see_order(&o.id.to_string(), o.customer.customer_id()))
        .ok_or_else(|| ServiceError::NotFound(format!("order {id}")))?;
    let order_id = order.id.to_string();
    if let Some(after) = last {
        return Ok((None, order_id, after));
    }
    let head = state
        .store
        .timeline_head(caller.tenant(), &order_id)
        .await?;
    let snapshot = serde_json::json!({
        "order_id": order_id, "number": order.number.as_str(), "status": order.status,
        "fulfillments": order.fulfillments.iter().map(|f| serde_json::json!({"id": f.id, "status": f.status})).collect::<Vec<_>>(),
    });
    Ok((Some((head, snapshot)), order_id, head))
}
