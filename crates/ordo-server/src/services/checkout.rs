//! Placing an order: parse and validate everything, re-price against the live catalog (any
//! change is a 409 listing the differences), authorize every tender with the gateway outside any
//! transaction (a decline voids the others: 402), then commit order + reservation + tenders +
//! idempotency record + outbox event in one store call. A retry with the same Idempotency-Key
//! and body replays the first answer; the same key with another body is refused.

use crate::api::inputs::{
    CartDoc, CustomerRef, OrderInput, TenderInput, parse_customer, parse_lines, parse_money, parse_promo_codes, parse_shipments,
};
use crate::api::problem::ApiError;
use crate::services::{carts, pricing, rfc3339, year_month_now};
use crate::AppState;
use ordo_domain::order::OrderLine;
use ordo_domain::payment::{CardBrand, Tender, TenderStatus};
use ordo_domain::pricing::{Change, check_shipment_split};
use ordo_domain::{Customer, FieldErrors, Money, Order, OrderId, OrderNumber, OrderStatus, Sku};
use ordo_store::{NewOrder, PendingAuthorization, PlaceError, Shortage, TokenRecord};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The answer to a placement: the order's JSON, and whether it is a replay of an earlier answer.
pub struct Placed {
    pub body: String,
    pub order_id: String,
    pub replayed: bool,
}

/// Validates an `Idempotency-Key` header value.
pub fn parse_idempotency_key(v: Option<&str>) -> Result<String, ApiError> {
    match v.map(str::trim) {
        None | Some("") => Err(ApiError::BadRequest {
            kind: "idempotency-key-missing",
            title: "Idempotency-Key required",
            detail: "POST /v1/orders needs an Idempotency-Key header (e.g. a UUID the app makes per checkout attempt)".into(),
        }),
        Some(k) if k.len() > 255 || !k.bytes().all(|b| (0x21..0x7f).contains(&b)) => Err(ApiError::BadRequest {
            kind: "idempotency-key-invalid",
            title: "Invalid Idempotency-Key",
            detail: "an Idempotency-Key has 1 to 255 visible ASCII characters".into(),
        }),
        Some(k) => Ok(k.to_string()),
    }
}

fn request_hash(input: &OrderInput) -> String {
    // serde_json maps are sorted by key, so equal requests hash equally however they were spelled.
    let canonical = serde_json::to_value(input).map(|v| v.to_string()).unwrap_or_default();
    let digest = Sha256::digest(canonical.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn replay(rec: &ordo_store::IdempotencyRecord, hash: &str) -> Result<Placed, ApiError> {
    if rec.request_hash != hash {
        return Err(ApiError::field(
            "Idempotency-Key",
            "key_reused",
            "this Idempotency-Key was already used for a different request; use a new key for a new checkout",
        ));
    }
    let body = rec.response.clone().ok_or_else(|| ApiError::Internal("idempotency record without response".into()))?;
    let order_id = serde_json::from_str::<Value>(&body).ok().and_then(|v| v["id"].as_str().map(String::from)).unwrap_or_default();
    Ok(Placed { body, order_id, replayed: true })
}

fn change_value(c: &Change) -> Value {
    serde_json::to_value(c).unwrap_or(Value::Null)
}

fn shortage_value(s: &Shortage) -> Value {
    if s.available == 0 {
        change_value(&Change::LineRemoved { sku: s.sku.clone(), requested: s.requested, reason: "out_of_stock".into() })
    } else {
        change_value(&Change::QuantityLimited { sku: s.sku.clone(), requested: s.requested, available: s.available })
    }
}

/// Everything the order needs, parsed from the body (and the cart, when given).
struct Checkout {
    doc: CartDoc,
    quoted: HashMap<Sku, Money>,
    cart_id: Option<String>,
    tenders: Vec<(String, Money)>,
    expected_total: Option<Money>,
}

async fn parse_checkout(state: &AppState, input: &OrderInput) -> Result<Checkout, ApiError> {
    let mut errs = FieldErrors::default();
    let mut hints = Vec::new();
    let (mut doc, mut quoted, cart_id) = match (&input.cart_id, &input.lines) {
        (Some(_), Some(_)) => {
            errs.add("lines", "conflicting", "give either cart_id or lines, not both");
            (CartDoc::default(), HashMap::new(), None)
        }
        (Some(id), None) => {
            let rec = match carts::load(state, id).await {
                Ok(rec) => rec,
                Err(ApiError::NotFound(_)) => {
                    return Err(ApiError::field("cart_id", "unknown_cart", format!("no cart has id {id}")));
                }
                Err(e) => return Err(e),
            };
            (carts::cart_doc(&rec)?, carts::cart_quoted(&rec), Some(id.clone()))
        }
        (None, Some(lines)) => {
            let lines = parse_lines(lines, "lines", &mut errs, &mut hints);
            (CartDoc { lines, ..CartDoc::default() }, HashMap::new(), None)
        }
        (None, None) => {
            errs.add("lines", "required", "give cart_id or lines");
            (CartDoc::default(), HashMap::new(), None)
        }
    };
    quoted.extend(hints);
    if let Some(codes) = &input.promo_codes {
        doc.promo_codes = parse_promo_codes(codes, "promo_codes", &mut errs);
    }
    if let Some(c) = &input.customer {
        doc.customer = parse_customer(c, "customer", &mut errs);
    }
    if let Some(s) = &input.shipments {
        doc.shipments = parse_shipments(s, "shipments", &mut errs);
    }
    if doc.lines.is_empty() && errs.is_empty() {
        errs.add(if cart_id.is_some() { "cart_id" } else { "lines" }, "empty", "an order needs at least one line");
    }
    if doc.customer.is_none() && input.customer.is_none() {
        errs.add("customer", "required", "a guest's email, phone and name, or a member's customer_id");
    }
    if doc.shipments.is_empty() && input.shipments.as_ref().is_none_or(|s| s.is_empty()) {
        errs.add("shipments", "required", "an order needs at least one shipping address");
    }
    let tenders = parse_tenders(&input.payments, &mut errs);
    let expected_total = input.expected_total.as_ref().and_then(|m| parse_money(m, "expected_total", &mut errs));
    errs.into_result()?;
    Ok(Checkout { doc, quoted, cart_id, tenders, expected_total })
}

fn parse_tenders(payments: &[TenderInput], errs: &mut FieldErrors) -> Vec<(String, Money)> {
    if payments.is_empty() {
        // Checked against the total once it is known: only a zero total needs no tender.
        return vec![];
    }
    if payments.len() > crate::api::inputs::MAX_TENDERS {
        errs.add("payments", "too_many", format!("at most {} tenders", crate::api::inputs::MAX_TENDERS));
        return vec![];
    }
    let mut out = Vec::new();
    for (i, t) in payments.iter().enumerate() {
        let p = format!("payments[{i}]");
        let token = t.token.trim();
        if token.is_empty() || token.len() > 64 {
            errs.add(format!("{p}.token"), "invalid_token", "a payment token from POST /v1/payment-tokens is required");
        }
        if payments[..i].iter().any(|o| o.token.trim() == token) {
            errs.add(format!("{p}.token"), "duplicate_token", "each tender needs its own token");
        }
        if let Some(m) = parse_money(&t.amount, &format!("{p}.amount"), errs) {
            if m.amount == 0 {
                errs.add(format!("{p}.amount.amount"), "not_positive", "a tender amount must be positive");
            }
            out.push((token.to_string(), m));
        }
    }
    out
}

async fn resolve_customer(state: &AppState, c: &CustomerRef) -> Result<Customer, ApiError> {
    match c {
        CustomerRef::Guest(g) => Ok(Customer::Guest(g.clone())),
        CustomerRef::Member { customer_id } => match state.store.customer(state.tenant(), customer_id).await? {
            Some((email, name)) => Ok(Customer::Member { customer_id: customer_id.clone(), email, name }),
            None => Err(ApiError::field("customer.customer_id", "unknown_customer", format!("no customer has id {customer_id}"))),
        },
    }
}

pub async fn place_order(state: &AppState, key: String, input: OrderInput) -> Result<Placed, ApiError> {
    let tenant = state.tenant();
    let hash = request_hash(&input);
    if let Some(rec) = state.store.idempotency_record(tenant, &key).await? {
        return replay(&rec, &hash);
    }

    let c = parse_checkout(state, &input).await?;
    let customer_ref = c.doc.customer.clone().ok_or_else(|| ApiError::field("customer", "required", "a customer is required"))?;
    let customer = resolve_customer(state, &customer_ref).await?;

    // Re-price against the live catalog; any difference from what the shopper saw is a 409.
    let priced = pricing::price(state, &c.doc, &c.quoted).await?;
    let mut differences: Vec<Value> = priced.changes.iter().filter(|ch| ch.alters_order()).map(change_value).collect();
    let totals = priced.totals;
    match (c.expected_total, totals) {
        // The shopper confirmed exactly the current total: the changes were seen and accepted.
        (Some(expected), Some(t)) if expected == t.total => differences.clear(),
        (Some(expected), Some(t)) => differences.push(json!({"type": "total_changed", "expected": expected, "actual": t.total})),
        _ => {}
    }
    if !differences.is_empty() {
        let actual = totals.map(|t| t.total.to_string()).unwrap_or_else(|| "no total".into());
        return Err(ApiError::Conflict {
            kind: "checkout-changed",
            title: "Stock or prices changed",
            detail: format!(
                "the order was not placed: show the shopper the differences (GET the cart for the reconciled lines), then \
                 confirm again with expected_total set to the new total ({actual}), or sync the cart first"
            ),
            differences,
        });
    }
    let totals = totals.ok_or_else(|| ApiError::field("lines", "empty", "an order needs at least one line"))?;
    let currency = totals.total.currency;

    // Shipments must split the lines exactly; tenders must be known, in the order's currency and sum to the total.
    let mut errs = FieldErrors::default();
    for e in check_shipment_split(&priced.lines, &c.doc.shipments) {
        errs.push(e);
    }
    let mut tokens: Vec<TokenRecord> = Vec::with_capacity(c.tenders.len());
    for (i, (token, amount)) in c.tenders.iter().enumerate() {
        if amount.currency != currency {
            errs.add(format!("payments[{i}].amount.currency"), "currency_mismatch", format!("the order is in {currency}"));
        }
        match state.store.payment_token(tenant, token).await? {
            None => errs.add(format!("payments[{i}].token"), "unknown_token", "no payment token has this value"),
            Some(t) if t.order_id.is_some() => {
                // A concurrent retry of this very request may have just used it: answer as that one did.
                if let Some(rec) = state.store.idempotency_record(tenant, &key).await? {
                    return replay(&rec, &hash);
                }
                errs.add(format!("payments[{i}].token"), "token_used", "this token already paid for an order")
            }
            Some(t) => tokens.push(t),
        }
    }
    let paid: i64 = c.tenders.iter().map(|(_, m)| m.amount).sum();
    if c.tenders.is_empty() && totals.total.amount > 0 && input.payments.is_empty() {
        errs.add("payments", "required", format!("the order total is {}: give at least one payment tender", totals.total));
    } else if errs.is_empty() && paid != totals.total.amount {
        errs.add(
            "payments",
            "sum_mismatch",
            format!("the tenders sum to {}, but the order total is {}", Money::new(paid, currency), totals.total),
        );
    }
    errs.into_result()?;

    // Record every authorization as pending (durably), then ask the gateway, outside any
    // transaction. One decline voids the rest. Recovery voids what a crash leaves pending.
    let pending: Vec<PendingAuthorization> = tokens
        .iter()
        .zip(&c.tenders)
        .map(|(t, (_, amount))| PendingAuthorization { id: format!("pa_{}", uuid::Uuid::now_v7().simple()), token: t.token.clone(), amount: *amount })
        .collect();
    let auth_ids: Vec<String> = pending.iter().map(|p| p.id.clone()).collect();
    let _inflight = state.inflight.hold(&auth_ids);
    state.store.record_pending_authorizations(tenant, &key, &pending).await?;
    let now = year_month_now();
    let mut tenders: Vec<Tender> = Vec::with_capacity(tokens.len());
    for (i, (t, p)) in tokens.iter().zip(&pending).enumerate() {
        match state.gateway.authorize(&p.id, t, p.amount, now).await {
            Ok(authorization_id) => tenders.push(Tender {
                token: t.token.clone(),
                brand: CardBrand::parse(&t.brand),
                last4: t.last4.clone(),
                amount: p.amount,
                authorization_id,
                status: TenderStatus::Authorized,
            }),
            Err(reason) => {
                state.store.finish_authorizations(tenant, &auth_ids[i..i + 1], "declined").await?;
                let others: Vec<String> = auth_ids.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, id)| id.clone()).collect();
                void_all(state, tenant, &others).await;
                return Err(ApiError::PaymentDeclined {
                    detail: format!("tender {i} ({} …{}): {}; no payment was taken and the order was not placed", t.brand, t.last4, reason.message()),
                    payment: json!({"tender": i, "path": format!("payments[{i}]"), "reason": reason}),
                });
            }
        }
    }

    let order = Order {
        id: OrderId::new(),
        number: OrderNumber::generate(),
        status: OrderStatus::Placed,
        channel: "mobile".into(),
        customer: customer.clone(),
        lines: priced
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| OrderLine {
                line_no: i as i64 + 1,
                sku: l.sku.clone(),
                name: l.name.clone(),
                quantity: l.quantity,
                unit_price: l.unit_price,
                line_total: l.line_total,
            })
            .collect(),
        shipments: explicit_shipments(&c.doc.shipments, &priced.lines),
        payments: tenders.clone(),
        promotions: priced.promotions.clone(),
        totals,
        allocations: vec![],
        cart_id: c.cart_id.clone(),
        created_at: rfc3339(ordo_store::now_ms()),
    };
    let new = NewOrder {
        order,
        customer_key: pricing::customer_key(&customer_ref),
        idempotency_key: key.clone(),
        request_hash: hash.clone(),
        authorization_ids: auth_ids.clone(),
    };
    match state.store.place(tenant, new).await {
        Ok(order) => {
            let body = serde_json::to_string(&order).map_err(|e| ApiError::Internal(e.to_string()))?;
            Ok(Placed { body, order_id: order.id.to_string(), replayed: false })
        }
        Err(e) => {
            void_all(state, tenant, &auth_ids).await;
            Err(match e {
                PlaceError::KeyTaken(rec) => return replay(&rec, &hash),
                PlaceError::Shortage(s) => ApiError::Conflict {
                    kind: "out-of-stock",
                    title: "Not enough stock",
                    detail: "the order was not placed: some lines are no longer available in the quantity asked".into(),
                    differences: s.iter().map(shortage_value).collect(),
                },
                PlaceError::PriceMoved(moved) => ApiError::Conflict {
                    kind: "checkout-changed",
                    title: "Prices changed",
                    detail: "the order was not placed: prices changed while it was being placed".into(),
                    differences: moved
                        .iter()
                        .map(|(sku, old, new)| json!({"type": "price_changed", "sku": sku, "old_unit_price": old, "new_unit_price": new}))
                        .collect(),
                },
                PlaceError::PromotionExhausted(code) => ApiError::Conflict {
                    kind: "checkout-changed",
                    title: "Promotion used up",
                    detail: format!("the order was not placed: promotion {code} reached its usage limit"),
                    differences: vec![json!({"type": "promo_rejected", "code": code, "reason": "usage_limit_reached"})],
                },
                PlaceError::CustomerLimitReached(code) => ApiError::Conflict {
                    kind: "checkout-changed",
                    title: "Promotion already used",
                    detail: format!("the order was not placed: promotion {code} reached its per-customer limit"),
                    differences: vec![json!({"type": "promo_rejected", "code": code, "reason": "customer_limit_reached"})],
                },
                PlaceError::AuthorizationLost => ApiError::Conflict {
                    kind: "authorization-expired",
                    title: "Payment authorization expired",
                    detail: "the order was not placed: its card authorization expired before it could commit; place it again".into(),
                    differences: vec![json!({"type": "authorization_expired"})],
                },
                PlaceError::CartOrdered(cart) => ApiError::Conflict {
                    kind: "cart-already-ordered",
                    title: "Cart already ordered",
                    detail: format!(
                        "cart {cart} has already become an order; a retry must reuse that checkout's Idempotency-Key, a new order needs a new cart"
                    ),
                    differences: vec![json!({"type": "cart_already_ordered", "cart_id": cart})],
                },
                PlaceError::TokenUsed(i) => ApiError::field(format!("payments[{i}].token"), "token_used", "this token already paid for an order"),
                PlaceError::Store(e) => e.into(),
            })
        }
    }
}

/// The order records where every unit goes: a lone shipment without lines takes them all.
fn explicit_shipments(
    shipments: &[ordo_domain::pricing::ShipmentRequest],
    lines: &[ordo_domain::pricing::PricedLine],
) -> Vec<ordo_domain::pricing::ShipmentRequest> {
    let mut out = shipments.to_vec();
    if let [only] = out.as_mut_slice() {
        if only.lines.is_empty() {
            only.lines = lines.iter().map(|l| ordo_domain::pricing::LineRequest { sku: l.sku.clone(), quantity: l.quantity }).collect();
        }
    }
    out
}

/// Voids this request's authorizations that are still pending. One that is already attached
/// (its order committed after all, e.g. the commit's answer was lost) is never voided.
async fn void_all(state: &AppState, tenant: &str, auth_ids: &[String]) {
    let claimed = match state.store.claim_for_void(tenant, auth_ids).await {
        Ok(c) => c,
        Err(e) => {
            // Still pending in storage: recovery claims and voids them later.
            tracing::warn!(error = %e, "could not claim authorizations for voiding");
            return;
        }
    };
    for id in &claimed {
        state.gateway.void(id).await;
    }
    if let Err(e) = state.store.finish_authorizations(tenant, &claimed, "voided").await {
        // Left as 'voiding': recovery voids them again (voiding is idempotent).
        tracing::warn!(error = %e, "could not record voided authorizations");
    }
}
