//! Cart sync: the app sends its whole local cart; the server stores the reconciled cart (lines
//! limited to stock, rejected codes dropped) with the unit prices it quoted, and answers with
//! every change it made. Reading a cart re-prices it without storing anything. A cart that
//! became an order is read-only: syncing it is refused (409), never applied.

use super::error::{ConflictReason, Result, ServiceError};
use super::idempotency::{self, Answer};
use crate::AppState;
use crate::services::{pricing, rfc3339};
use ordo_domain::pricing::{
    AppliedPromotion, Change, PricedCart, PricedLine, ShipmentRequest, Totals,
};
use ordo_domain::{CartDoc, CartId, CustomerRef, Money, Sku};
use ordo_store::{CartRecord, CartSave, IdempotencyKey, Idempotent, Render};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

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
    /// The chosen shipping speed (`standard` unless the cart chose another).
    pub shipping_option: ordo_domain::routing::ShippingSpeed,
    pub totals: Totals,
    /// Every adjustment the server made to what the app sent, with the reason.
    pub changes: Vec<Change>,
    /// The order this cart became, once it did (the cart is read-only from then on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
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
        shipping_option: doc
            .shipping_option
            .unwrap_or(ordo_domain::routing::ShippingSpeed::Standard),
        totals: priced.totals.unwrap_or(Totals {
            subtotal: zero,
            discount: zero,
            shipping: zero,
            tax: zero,
            total: zero,
        }),
        changes: priced.changes,
        order_id: rec.order_id.clone(),
        created_at: rfc3339(rec.created_at_ms),
        updated_at: rfc3339(rec.updated_at_ms),
    }
}

fn quoted_of(rec: &CartRecord) -> HashMap<Sku, Money> {
    serde_json::from_value(rec.quoted.clone()).unwrap_or_default()
}

/// The cart as stored after reconciliation: priced quantities and applied codes only.
fn reconciled(doc: &CartDoc, priced: &PricedCart) -> (CartDoc, HashMap<Sku, Money>) {
    let lines = priced
        .lines
        .iter()
        .map(|l| ordo_domain::pricing::LineRequest {
            sku: l.sku.clone(),
            quantity: l.quantity,
        })
        .collect();
    let promo_codes = priced.promotions.iter().map(|p| p.code.clone()).collect();
    let quoted = priced
        .lines
        .iter()
        .map(|l| (l.sku.clone(), l.unit_price))
        .collect();
    (
        CartDoc {
            lines,
            promo_codes,
            customer: doc.customer.clone(),
            shipments: fit_shipments(&doc.shipments, &priced.lines),
            // A chosen option no longer offered falls back to standard (the change says so).
            shipping_option: priced.kept_shipping_option(doc.shipping_option),
        },
        quoted,
    )
}

/// Explicit shipment lines shrunk to what the reconciled lines still hold: a line removed or
/// limited by reconciliation leaves the shipments too (earlier shipments keep their units
/// first), and a shipment left with nothing to ship goes (unless it is the only one). Without it,
/// the cart would carry a split its own order refuses.
fn fit_shipments(shipments: &[ShipmentRequest], lines: &[PricedLine]) -> Vec<ShipmentRequest> {
    if shipments.iter().all(|s| s.lines.is_empty()) {
        return shipments.to_vec();
    }
    let mut left: HashMap<&Sku, i64> = HashMap::new();
    for l in lines {
        *left.entry(&l.sku).or_default() += l.quantity;
    }
    let mut out: Vec<ShipmentRequest> = Vec::with_capacity(shipments.len());
    for s in shipments {
        let mut fitted = s.clone();
        fitted.lines = s
            .lines
            .iter()
            .filter_map(|l| {
                let room = left.get_mut(&l.sku)?;
                let q = l.quantity.min(*room);
                *room -= q;
                (q > 0).then(|| ordo_domain::pricing::LineRequest {
                    sku: l.sku.clone(),
                    quantity: q,
                })
            })
            .collect();
        if !fitted.lines.is_empty() || s.lines.is_empty() {
            out.push(fitted);
        }
    }
    if out.is_empty() {
        return shipments
            .iter()
            .take(1)
            .map(|s| ShipmentRequest {
                address: s.address.clone(),
                lines: Vec::new(),
            })
            .collect();
    }
    out
}

/// Prices `doc` and returns what to store and the view to answer with (given the record).
async fn reconcile(
    state: &AppState,
    caller: &crate::auth::Caller,
    doc: &CartDoc,
    quoted: &HashMap<Sku, Money>,
    cart_id: Option<&str>,
) -> Result<(CartDoc, serde_json::Value, serde_json::Value, PricedCart)> {
    if let Some(CustomerRef::Member { customer_id }) = &doc.customer {
        if state
            .store
            .customer(caller.tenant(), customer_id)
            .await?
            .is_none()
        {
            return Err(ServiceError::field(
                "customer.customer_id",
                "unknown_customer",
                format!("no customer has id {customer_id}"),
            ));
        }
    }
    let priced = pricing::price(state, caller, doc, quoted, cart_id).await?;
    let (stored, new_quoted) = reconciled(doc, &priced);
    let body = serde_json::to_value(&stored).map_err(|e| ServiceError::Internal(e.to_string()))?;
    let quoted_json =
        serde_json::to_value(&new_quoted).map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok((stored, body, quoted_json, priced))
}

/// Creates a cart from the app's parsed cart (`hints`: unit prices the app says it showed).
/// With a key, a retry returns the first answer instead of a second cart.
pub async fn create_cart(
    state: &AppState,
    caller: &crate::auth::Caller,
    doc: &CartDoc,
    hints: Vec<(Sku, Money)>,
    key: Option<IdempotencyKey>,
) -> Result<Answer> {
    let tenant = caller.tenant();
    if let Some(answer) = idempotency::answered(state, caller, key.as_ref()).await? {
        return Ok(answer);
    }
    // The id first: a chosen shipping option is priced from the cart's plan.
    let id = CartId::new().to_string();
    let (stored, body, quoted, priced) =
        reconcile(state, caller, doc, &hints.into_iter().collect(), Some(&id)).await?;
    let now = ordo_store::now_ms();
    let rec = CartRecord {
        id,
        body,
        quoted,
        created_at_ms: now,
        updated_at_ms: now,
        order_id: None,
    };
    let answer = serde_json::to_string(&view(state, &rec, &stored, priced))
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    let rendered = answer.clone();
    let render: Render<CartRecord> = Arc::new(move |_| (201, rendered.clone()));
    let hash = key
        .as_ref()
        .map(|k| k.request_hash.clone())
        .unwrap_or_default();
    match state
        .store
        .create_cart(tenant, &rec, key.map(|k| (k, render)))
        .await?
    {
        Idempotent::Done(_) => Ok(Answer {
            status: 201,
            body: answer,
            replayed: false,
        }),
        Idempotent::Replay(rec) => idempotency::settle(&rec, &hash),
    }
}

/// Syncs the whole local cart; refused once the cart became an order.
pub async fn sync_cart(
    state: &AppState,
    caller: &crate::auth::Caller,
    id: &str,
    doc: &CartDoc,
    hints: Vec<(Sku, Money)>,
) -> Result<CartView> {
    let rec = load(state, caller, id).await?;
    if let Some(order_id) = &rec.order_id {
        return Err(ordered(id, order_id));
    }
    let mut quoted = quoted_of(&rec);
    quoted.extend(hints);
    let (stored, body, quoted_json, priced) =
        reconcile(state, caller, doc, &quoted, Some(id)).await?;
    match state
        .store
        .sync_cart(
            caller.tenant(),
            id,
            &body,
            &quoted_json,
            ordo_store::now_ms(),
        )
        .await?
    {
        CartSave::Saved(rec) => Ok(view(state, &rec, &stored, priced)),
        CartSave::Ordered(order_id) => Err(ordered(id, &order_id)),
    }
}

fn ordered(id: &str, order_id: &str) -> ServiceError {
    ServiceError::conflict(
        ConflictReason::CartAlreadyOrdered,
        format!(
            "cart {id} has already become order {order_id} and can no longer change; start a new cart"
        ),
        vec![
            serde_json::json!({"type": "cart_already_ordered", "cart_id": id, "order_id": order_id}),
        ],
    )
}

pub async fn get_cart(
    state: &AppState,
    caller: &crate::auth::Caller,
    id: &str,
) -> Result<CartView> {
    let rec = load(state, caller, id).await?;
    let doc = cart_doc(&rec)?;
    let priced = pricing::price(state, caller, &doc, &quoted_of(&rec), Some(id)).await?;
    Ok(view(state, &rec, &doc, priced))
}

/// A stored cart, or 404.
pub async fn load(state: &AppState, caller: &crate::auth::Caller, id: &str) -> Result<CartRecord> {
    if CartId::parse(id).is_err() {
        return Err(ServiceError::NotFound(format!("cart {id}")));
    }
    state
        .store
        .cart(caller.tenant(), id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("cart {id}")))
}

/// The cart's shipments with their lines spelled out: a lone shipment without lines takes every
/// line (what routing, holds and shipping options plan with).
pub fn explicit_shipments(doc: &CartDoc) -> Vec<ShipmentRequest> {
    let mut shipments = doc.shipments.clone();
    if let [only] = shipments.as_mut_slice()
        && only.lines.is_empty()
    {
        only.lines = doc
            .lines
            .iter()
            .map(|l| ordo_domain::pricing::LineRequest {
                sku: l.sku.clone(),
                quantity: l.quantity,
            })
            .collect();
    }
    shipments
}

pub fn cart_doc(rec: &CartRecord) -> Result<CartDoc> {
    serde_json::from_value(rec.body.clone())
        .map_err(|e| ServiceError::Internal(format!("stored cart {} unreadable: {e}", rec.id)))
}

pub fn cart_quoted(rec: &CartRecord) -> HashMap<Sku, Money> {
    quoted_of(rec)
}
