//! Shipping options priced from the routing plan and the chosen nodes' load
//! (`ordo_domain::routing::shipping_options` has the formula): what
//! `GET /v1/carts/{id}/shipping-options` answers, and the price of the option a cart chose.

use super::carts;
use super::error::{Result, ServiceError};
use crate::AppState;
use crate::auth::Caller;
use ordo_domain::pricing::standard_shipping;
use ordo_domain::routing::{ShippingOption, shipping_options};
use ordo_domain::{CartDoc, Currency};
use ordo_store::CartPlan;
use serde::Serialize;

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
    let shipments = carts::explicit_shipments(doc);
    let standard = ordo_domain::Money::new(
        standard_shipping(currency).amount * shipments.len() as i64,
        currency,
    );
    Ok(
        match state
            .store
            .plan_cart(caller.tenant(), cart_id, &shipments, currency)
            .await?
        {
            CartPlan::Planned {
                decision,
                input,
                today,
            } => Ok(shipping_options(
                &decision,
                &input,
                &today,
                standard,
                &state.config.shipping_rates,
            )),
            CartPlan::Short(short) => {
                Err(super::holds::short_conflict("no shipping options", &short))
            }
            CartPlan::NoRoute(codes) => Err(super::holds::no_route_conflict(
                "no shipping options",
                &codes,
            )),
            CartPlan::Unroutable(errs) => Err(errs.into()),
        },
    )
}

/// `GET /v1/carts/{id}/shipping-options`.
pub async fn options(
    state: &AppState,
    caller: &Caller,
    cart_id: &str,
) -> Result<ShippingOptionsView> {
    let rec = carts::load(state, caller, cart_id).await?;
    if rec.order_id.is_some() {
        return Err(super::holds::ordered_conflict(cart_id));
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
