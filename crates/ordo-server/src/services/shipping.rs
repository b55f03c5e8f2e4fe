//! Shipping options priced from the routing plan and the chosen nodes' load
//! (`ordo_domain::routing::shipping_options` has the formula): what
//! `GET /v1/carts/{id}/shipping-options` answers, and the price of the option a cart chose.

use super::carts;
use super::error::{ConflictReason, Result, ServiceError};
use crate::AppState;
use crate::auth::Caller;
use ordo_domain::pricing::{LineRequest, standard_shipping};
use ordo_domain::routing::{ShippingOption, shipping_options};
use ordo_domain::{CartDoc, Currency};
use ordo_store::CartPlan;
use serde::Serialize;
use serde_json::json;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ShippingOptionsView {
    pub options: Vec<ShippingOption>,
}

/// The options for a stored cart's document as it is now; `Ok(Err(_))` says why there are none.
pub async fn options_for(
    state: &AppState,
    caller: &Caller,
    cart_id: &str,
    doc: &CartDoc,
    currency: Currency,
) -> Result<std::result::Result<Vec<ShippingOption>, ServiceError>> {
    if doc.lines.is_empty() {
        return Ok(Err(ServiceError::field(
            "lines",
            "empty",
            "the cart has no lines to ship",
        )));
    }
    if doc.shipments.is_empty() {
        return Ok(Err(ServiceError::field(
            "shipments",
            "required",
            "shipping options need the cart's shipping address",
        )));
    }
    let mut shipments = doc.shipments.clone();
    if let [only] = shipments.as_mut_slice()
        && only.lines.is_empty()
    {
        only.lines = doc
            .lines
            .iter()
            .map(|l| LineRequest {
                sku: l.sku.clone(),
                quantity: l.quantity,
            })
            .collect();
    }
    let standard = ordo_domain::Money::new(
        standard_shipping(currency).amount * shipments.len() as i64,
        currency,
    );
    Ok(match state.store.plan_cart(caller.tenant(), cart_id, &shipments, currency).await? {
        CartPlan::Planned { decision, input, today } => Ok(shipping_options(&decision, &input, &today, standard, &state.config.shipping_rates)),
        CartPlan::Short(short) => Err(ServiceError::conflict(
            ConflictReason::OutOfStock,
            "no shipping options: some lines are not available in the quantity asked",
            short.iter().map(|s| json!({"type": "quantity_limited", "sku": s.sku, "requested": s.requested, "available": s.available})).collect(),
        )),
        CartPlan::NoRoute(codes) => Err(ServiceError::conflict(
            ConflictReason::NoFulfilmentNode,
            "no shipping options: no node holding the stock may ship it there today (see reason_codes)",
            vec![json!({"type": "no_route", "reason_codes": codes})],
        )),
        CartPlan::Unroutable(errs) => Err(errs.into()),
    })
}

/// `GET /v1/carts/{id}/shipping-options`.
pub async fn options(
    state: &AppState,
    caller: &Caller,
    cart_id: &str,
) -> Result<ShippingOptionsView> {
    let rec = carts::load(state, caller, cart_id).await?;
    if rec.order_id.is_some() {
        return Err(ServiceError::conflict(
            ConflictReason::CartAlreadyOrdered,
            format!("cart {cart_id} has already become an order"),
            vec![json!({"type": "cart_already_ordered", "cart_id": cart_id})],
        ));
    }
    let doc = carts::cart_doc(&rec)?;
    let skus: Vec<&ordo_domain::Sku> = doc.lines.iter().map(|l| &l.sku).collect();
    let catalog = state
        .store
        .catalog_entries(caller.tenant(), &skus, None)
        .await?;
    let currency = catalog
        .values()
        .next()
        .map_or(state.config.default_currency, |e| e.price.currency);
    let options = options_for(state, caller, cart_id, &doc, currency).await??;
    Ok(ShippingOptionsView { options })
}
