//! Cart sync: the app sends its whole local cart; the server stores the reconciled cart (lines
//! limited to stock, rejected codes dropped) with the unit prices it quoted, and answers with
//! every change it made. Reading a cart re-prices it without storing anything.

use crate::api::inputs::{CartDoc, CartInput, CustomerRef, parse_cart};
use crate::api::problem::ApiError;
use crate::services::{pricing, rfc3339};
use crate::AppState;
use ordo_domain::pricing::{AppliedPromotion, Change, PricedCart, PricedLine, ShipmentRequest, Totals};
use ordo_domain::{CartId, Money, Sku};
use ordo_store::CartRecord;
use serde::Serialize;
use std::collections::HashMap;

/// The reconciled cart the app renders.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CartView {
    pub id: String,
    #[schema(value_type = String)]
    pub currency: ordo_domain::Currency,
    pub lines: Vec<PricedLine>,
    /// Codes currently applied.
    pub promo_codes: Vec<String>,
    pub promotions: Vec<AppliedPromotion>,
    #[schema(value_type = Option<Object>)]
    pub customer: Option<CustomerRef>,
    pub shipments: Vec<ShipmentRequest>,
    pub totals: Totals,
    /// Every adjustment the server made to what the app sent, with the reason.
    pub changes: Vec<Change>,
    pub created_at: String,
    pub updated_at: String,
}

fn view(state: &AppState, rec: &CartRecord, doc: &CartDoc, priced: PricedCart) -> CartView {
    let currency = priced.currency.unwrap_or(state.config.default_currency);
    let zero = Money::zero(currency);
    CartView {
        id: rec.id.clone(),
        currency,
        lines: priced.lines,
        promo_codes: priced.promotions.iter().map(|p| p.code.clone()).collect(),
        promotions: priced.promotions,
        customer: doc.customer.clone(),
        shipments: doc.shipments.clone(),
        totals: priced.totals.unwrap_or(Totals { subtotal: zero, discount: zero, shipping: zero, tax: zero, total: zero }),
        changes: priced.changes,
        created_at: rfc3339(rec.created_at_ms),
        updated_at: rfc3339(rec.updated_at_ms),
    }
}

fn quoted_of(rec: &CartRecord) -> HashMap<Sku, Money> {
    serde_json::from_value(rec.quoted.clone()).unwrap_or_default()
}

/// The cart as stored after reconciliation: priced quantities and applied codes only.
fn reconciled(doc: &CartDoc, priced: &PricedCart) -> (CartDoc, HashMap<Sku, Money>) {
    let lines = priced.lines.iter().map(|l| ordo_domain::pricing::LineRequest { sku: l.sku.clone(), quantity: l.quantity }).collect();
    let promo_codes = priced.promotions.iter().map(|p| p.code.clone()).collect();
    let quoted = priced.lines.iter().map(|l| (l.sku.clone(), l.unit_price)).collect();
    (CartDoc { lines, promo_codes, customer: doc.customer.clone(), shipments: doc.shipments.clone() }, quoted)
}

async fn sync(state: &AppState, id: &str, input: &CartInput, mut quoted: HashMap<Sku, Money>) -> Result<CartView, ApiError> {
    let (doc, hints) = parse_cart(input)?;
    quoted.extend(hints);
    if let Some(CustomerRef::Member { customer_id }) = &doc.customer {
        if state.store.customer(state.tenant(), customer_id).await?.is_none() {
            return Err(ApiError::field("customer.customer_id", "unknown_customer", format!("no customer has id {customer_id}")));
        }
    }
    let priced = pricing::price(state, &doc, &quoted).await?;
    let (stored, new_quoted) = reconciled(&doc, &priced);
    let body = serde_json::to_value(&stored).map_err(|e| ApiError::Internal(e.to_string()))?;
    let quoted_json = serde_json::to_value(&new_quoted).map_err(|e| ApiError::Internal(e.to_string()))?;
    let rec = state.store.save_cart(state.tenant(), id, &body, &quoted_json).await?;
    Ok(view(state, &rec, &stored, priced))
}

pub async fn create_cart(state: &AppState, input: &CartInput) -> Result<CartView, ApiError> {
    sync(state, &CartId::new().to_string(), input, HashMap::new()).await
}

pub async fn sync_cart(state: &AppState, id: &str, input: &CartInput) -> Result<CartView, ApiError> {
    let rec = load(state, id).await?;
    sync(state, id, input, quoted_of(&rec)).await
}

pub async fn get_cart(state: &AppState, id: &str) -> Result<CartView, ApiError> {
    let rec = load(state, id).await?;
    let doc = cart_doc(&rec)?;
    let priced = pricing::price(state, &doc, &quoted_of(&rec)).await?;
    Ok(view(state, &rec, &doc, priced))
}

/// A stored cart and its parsed document, or 404.
pub async fn load(state: &AppState, id: &str) -> Result<CartRecord, ApiError> {
    if CartId::parse(id).is_err() {
        return Err(ApiError::NotFound(format!("cart {id}")));
    }
    state.store.cart(state.tenant(), id).await?.ok_or_else(|| ApiError::NotFound(format!("cart {id}")))
}

pub fn cart_doc(rec: &CartRecord) -> Result<CartDoc, ApiError> {
    serde_json::from_value(rec.body.clone()).map_err(|e| ApiError::Internal(format!("stored cart {} unreadable: {e}", rec.id)))
}

pub fn cart_quoted(rec: &CartRecord) -> HashMap<Sku, Money> {
    quoted_of(rec)
}
