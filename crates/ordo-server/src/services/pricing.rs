//! Prices a parsed cart against the live catalog: loads prices, availability, promotions and the
//! customer's past redemptions, then runs the pure `ordo_domain::pricing::price_cart`.

use super::error::Result;
use crate::AppState;
use ordo_domain::pricing::{Change, PricedCart, PricingInput, price_cart};
use ordo_domain::routing::ShippingSpeed;
use ordo_domain::{CartDoc, Money, Sku};
use std::collections::HashMap;

pub async fn price(
    state: &AppState,
    caller: &crate::auth::Caller,
    doc: &CartDoc,
    quoted: &HashMap<Sku, Money>,
    cart_id: Option<&str>,
) -> Result<PricedCart> {
    let tenant = caller.tenant();
    let skus: Vec<&Sku> = doc.lines.iter().map(|l| &l.sku).collect();
    // A stored cart's own checkout hold is available to it.
    let catalog = state.store.catalog_entries(tenant, &skus, cart_id).await?;
    let promotions = state.store.promotions(tenant, &doc.promo_codes).await?;
    let customer_uses = match (&doc.customer, doc.promo_codes.is_empty()) {
        (Some(c), false) => {
            state
                .store
                .customer_redemptions(tenant, &c.promotion_key(), &doc.promo_codes)
                .await?
        }
        _ => HashMap::new(),
    };
    // A faster shipping option the cart chose is priced from its plan; one no longer offered
    // leaves standard shipping and says so.
    let mut unavailable = None;
    let shipping_price = match (doc.shipping_option, cart_id) {
        (Some(speed), Some(cart)) if speed != ShippingSpeed::Standard => {
            let currency = catalog.values().next().map(|e| e.price.currency);
            let offered = match currency {
                Some(c) => super::shipping::options_for(state, caller, cart, doc, c)
                    .await?
                    .ok(),
                None => None,
            };
            match offered.and_then(|o| o.into_iter().find(|o| o.id == speed)) {
                Some(o) => Some(o.price),
                None => {
                    unavailable = Some(speed);
                    None
                }
            }
        }
        _ => None,
    };
    let mut priced = price_cart(&PricingInput {
        lines: &doc.lines,
        catalog: &catalog,
        promo_codes: &doc.promo_codes,
        promotions: &promotions,
        customer_uses: &customer_uses,
        shipments: &doc.shipments,
        quoted,
        now_ms: ordo_store::now_ms(),
        shipping_price,
    });
    if let Some(option) = unavailable {
        priced
            .changes
            .push(Change::ShippingOptionUnavailable { option });
    }
    Ok(priced)
}
