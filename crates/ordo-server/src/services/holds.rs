//! Checkout holds: `POST /v1/carts/{id}/hold` keeps the cart's stock at the nodes routing would
//! ship it from, for `--hold-ttl`; the cart's order consumes the hold, and recovery's sweep gives
//! expired holds back. Holding again refreshes the hold for the cart as it is now.

use super::error::{ConflictReason, Result, ServiceError};
use super::{carts, pricing, rfc3339};
use crate::AppState;
use crate::auth::Caller;
use ordo_store::HoldOutcome;
use serde::Serialize;
use serde_json::json;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HeldLine {
    pub sku: String,
    pub location_id: String,
    pub quantity: i64,
}

/// A cart's hold.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HoldView {
    pub cart_id: String,
    /// RFC 3339, UTC: until then no one else can buy these units.
    pub expires_at: String,
    pub holds: Vec<HeldLine>,
}

pub async fn hold(state: &AppState, caller: &Caller, cart_id: &str) -> Result<HoldView> {
    let rec = carts::load(state, caller, cart_id).await?;
    if rec.order_id.is_some() {
        return Err(ordered_conflict(cart_id));
    }
    let doc = carts::cart_doc(&rec)?;
    if doc.lines.is_empty() {
        return Err(ServiceError::field(
            "lines",
            "empty",
            "the cart has no lines to hold",
        ));
    }
    if doc.shipments.is_empty() {
        return Err(ServiceError::field(
            "shipments",
            "required",
            "a hold needs the cart's shipping address: the stock is held where it would ship from",
        ));
    }
    let priced = pricing::price(
        state,
        caller,
        &doc,
        &carts::cart_quoted(&rec),
        Some(cart_id),
    )
    .await?;
    let currency = priced
        .totals
        .as_ref()
        .map_or(state.config.default_currency, |t| t.total.currency);
    let shipments = carts::explicit_shipments(&doc);
    let ttl_ms = i64::try_from(state.config.hold_ttl.as_millis()).unwrap_or(i64::MAX / 2);
    let expires = ordo_store::now_ms() + ttl_ms;
    match state
        .store
        .hold_cart(caller.tenant(), cart_id, shipments, currency, expires)
        .await?
    {
        HoldOutcome::Held {
            units,
            expires_at_ms,
        } => Ok(HoldView {
            cart_id: cart_id.to_string(),
            expires_at: rfc3339(expires_at_ms),
            holds: units
                .into_iter()
                .map(|u| HeldLine {
                    sku: u.sku,
                    location_id: u.location_id,
                    quantity: u.quantity,
                })
                .collect(),
        }),
        HoldOutcome::Short(short) => Err(short_conflict("nothing was held", &short)),
        HoldOutcome::NoRoute(codes) => Err(no_route_conflict("nothing was held", &codes)),
        HoldOutcome::Unroutable(errs) => Err(errs.into()),
        HoldOutcome::CartOrdered => Err(ordered_conflict(cart_id)),
    }
}

/// A cart that became an order: nothing to hold or ship any more.
pub(super) fn ordered_conflict(cart_id: &str) -> ServiceError {
    ServiceError::conflict(
        ConflictReason::CartAlreadyOrdered,
        format!("cart {cart_id} has already become an order"),
        vec![json!({"type": "cart_already_ordered", "cart_id": cart_id})],
    )
}

/// Lines the network cannot cover now (`what`: what did not happen).
pub(super) fn short_conflict(what: &str, short: &[ordo_store::Shortage]) -> ServiceError {
    ServiceError::conflict(
        ConflictReason::OutOfStock,
        format!("{what}: some lines are not available in the quantity asked"),
        short
            .iter()
            .map(|s| json!({"type": "quantity_limited", "sku": s.sku, "requested": s.requested, "available": s.available, "address_index": s.address_index}))
            .collect(),
    )
}

/// Stock no eligible node may ship there today, with the engine's reasons.
pub(super) fn no_route_conflict(
    what: &str,
    codes: &[ordo_domain::routing::ReasonCode],
) -> ServiceError {
    ServiceError::conflict(
        ConflictReason::NoFulfilmentNode,
        format!("{what}: no node holding the stock may ship it there today (see reason_codes)"),
        vec![json!({"type": "no_route", "reason_codes": codes})],
    )
}
