//! Placing an order: everything parsed, re-priced against the live catalog (any change is a 409
//! listing the differences), the Idempotency-Key claimed and every authorization recorded (one
//! commit) before the gateway is asked, tenders authorized outside any transaction (a decline
//! voids the others: 402), then the order committed by the placement engine. A retry with the
//! same key and body replays the first answer; a duplicate arriving while the first is still
//! running gets 409 `request-in-progress` and never reaches the gateway. A shopper's order above
//! the tenant's threshold first needs a passkey step-up (`passkeys::check_step_up`).

use super::error::{ConflictReason, Result, ServiceError};
use super::idempotency::{self, Answer, Operation};
use crate::AppState;
use crate::auth::{Caller, Role};
use crate::services::{carts, pricing, rfc3339, year_month_now};
use ordo_domain::order::OrderLine;
use ordo_domain::payment::{CardBrand, Tender, TenderStatus};
use ordo_domain::pricing::{Change, LineRequest, ShipmentRequest, check_shipment_split};
use ordo_domain::{
    CartDoc, Customer, CustomerRef, FieldErrors, Money, Order, OrderId, OrderNumber, OrderStatus,
    Sku,
};
use ordo_store::{
    AuthorizationStatus, Claim, IdempotencyKey, NewOrder, PendingAuthorization, PlaceError,
    Shortage, TokenRecord,
};
use serde_json::{Value, json};
use std::collections::HashMap;

/// Where the order's lines come from.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckoutSource {
    /// A cart the app synced.
    Cart(String),
    /// Lines given inline, with the unit prices the app says it showed.
    Lines {
        lines: Vec<LineRequest>,
        quoted: Vec<(Sku, Money)>,
    },
}

/// A parsed `POST /v1/orders` body: domain values only (the API edge parsed them).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckoutRequest {
    pub source: CheckoutSource,
    /// Overrides of the cart's codes, customer and shipments.
    pub promo_codes: Option<Vec<String>>,
    pub customer: Option<CustomerRef>,
    pub shipments: Option<Vec<ShipmentRequest>>,
    /// (payment token, amount) per tender.
    pub tenders: Vec<(String, Money)>,
    /// The total the shopper confirmed.
    pub expected_total: Option<Money>,
    /// A passkey assertion answering a step-up challenge (orders above the tenant's threshold).
    pub step_up: Option<super::passkeys::PasskeyAssertion>,
}

fn change_value(c: &Change) -> Value {
    serde_json::to_value(c).unwrap_or(Value::Null)
}

fn shortage_value(s: &Shortage) -> Value {
    let mut v = if s.available == 0 {
        change_value(&Change::LineRemoved {
            sku: s.sku.clone(),
            requested: s.requested,
            reason: "out_of_stock".into(),
        })
    } else {
        change_value(&Change::QuantityLimited {
            sku: s.sku.clone(),
            requested: s.requested,
            available: s.available,
        })
    };
    // With several addresses, which shipment is short (the stock that may ship there differs).
    if let (Some(i), Value::Object(m)) = (s.address_index, &mut v) {
        m.insert("address_index".into(), i.into());
    }
    v
}

/// The cart document and quoted prices the order is priced from.
async fn checkout_doc(
    state: &AppState,
    caller: &Caller,
    req: &CheckoutRequest,
) -> Result<(CartDoc, HashMap<Sku, Money>, Option<String>)> {
    let mut errs = FieldErrors::default();
    let (mut doc, mut quoted, cart_id) = match &req.source {
        CheckoutSource::Cart(id) => {
            let rec = match carts::load(state, caller, id).await {
                Ok(rec) => rec,
                Err(ServiceError::NotFound(_)) => {
                    return Err(ServiceError::field(
                        "cart_id",
                        "unknown_cart",
                        format!("no cart has id {id}"),
                    ));
                }
                Err(e) => return Err(e),
            };
            (
                carts::cart_doc(&rec)?,
                carts::cart_quoted(&rec),
                Some(id.clone()),
            )
        }
        CheckoutSource::Lines { lines, .. } => (
            CartDoc {
                lines: lines.clone(),
                ..CartDoc::default()
            },
            HashMap::new(),
            None,
        ),
    };
    if let CheckoutSource::Lines { quoted: hints, .. } = &req.source {
        quoted.extend(hints.iter().cloned());
    }
    if let Some(codes) = &req.promo_codes {
        doc.promo_codes = codes.clone();
    }
    if let Some(c) = &req.customer {
        doc.customer = Some(c.clone());
    }
    if let Some(s) = &req.shipments {
        doc.shipments = s.clone();
    }
    if doc.lines.is_empty() {
        errs.add(
            if cart_id.is_some() {
                "cart_id"
            } else {
                "lines"
            },
            "empty",
            "an order needs at least one line",
        );
    }
    if doc.customer.is_none() {
        if let Some(p) = caller
            .principal
            .as_ref()
            .filter(|p| p.role == Role::Shopper)
        {
            doc.customer = Some(CustomerRef::Member {
                customer_id: p.subject.clone(),
            });
        }
    }
    if doc.customer.is_none() {
        errs.add(
            "customer",
            "required",
            "a guest's email, phone and name, or a member's customer_id",
        );
    }
    if doc.shipments.is_empty() {
        errs.add(
            "shipments",
            "required",
            "an order needs at least one shipping address",
        );
    }
    errs.into_result()?;
    Ok((doc, quoted, cart_id))
}

/// Who the order is for. A shopper orders as themselves (a missing customer means them); the
/// app's own credentials place guest orders only, so no client can order in a member's name.
async fn resolve_customer(state: &AppState, caller: &Caller, c: &CustomerRef) -> Result<Customer> {
    match (caller.role(), c) {
        (Some(Role::App), CustomerRef::Member { .. }) => {
            return Err(ServiceError::field(
                "customer.customer_id",
                "sign_in_required",
                "a member orders with their own token (POST /v1/auth/token, grant_type=password); the app's token places guest orders",
            ));
        }
        (Some(Role::Shopper), CustomerRef::Member { customer_id })
            if Some(customer_id.as_str())
                != caller.principal.as_ref().map(|p| p.subject.as_str()) =>
        {
            return Err(ServiceError::field(
                "customer.customer_id",
                "not_you",
                "a shopper orders as themselves",
            ));
        }
        _ => {}
    }
    match c {
        CustomerRef::Guest(g) => Ok(Customer::Guest(g.clone())),
        CustomerRef::Member { customer_id } => {
            match state.store.customer(caller.tenant(), customer_id).await? {
                Some((email, name)) => Ok(Customer::Member {
                    customer_id: customer_id.clone(),
                    email,
                    name,
                }),
                None => Err(ServiceError::field(
                    "customer.customer_id",
                    "unknown_customer",
                    format!("no customer has id {customer_id}"),
                )),
            }
        }
    }
}

/// Places an order under `key` (the client's Idempotency-Key) for a request whose canonical body
/// hashes to `request_hash`.
pub async fn place_order(
    state: &AppState,
    caller: &Caller,
    key: &str,
    request_hash: &str,
    req: CheckoutRequest,
) -> Result<Answer> {
    let tenant = caller.tenant();
    let key = IdempotencyKey {
        key: idempotency::scoped_key(Operation::PlaceOrder, caller, "", key),
        request_hash: request_hash.to_string(),
    };
    if let Some(rec) = state.store.idempotency_record(tenant, &key.key).await? {
        // A claim of this very request still in progress may be abandoned (its process died):
        // the claim below takes it over once its lease ran out, or answers 409 until then.
        if !(rec.in_progress() && rec.request_hash == key.request_hash) {
            return idempotency::settle(&rec, &key.request_hash);
        }
    }

    let (doc, quoted, cart_id) = checkout_doc(state, caller, &req).await?;
    let customer_ref = doc
        .customer
        .clone()
        .ok_or_else(|| ServiceError::field("customer", "required", "a customer is required"))?;
    let customer = resolve_customer(state, caller, &customer_ref).await?;

    // Re-price against the live catalog; any difference from what the shopper saw is a 409.
    let priced = pricing::price(state, caller, &doc, &quoted, cart_id.as_deref()).await?;
    let mut differences: Vec<Value> = priced
        .changes
        .iter()
        .filter(|ch| ch.alters_order())
        .map(change_value)
        .collect();
    // A chosen option no longer offered is priced, and recorded, as standard.
    let shipping_option = priced.kept_shipping_option(doc.shipping_option);
    let totals = priced.totals;
    match (req.expected_total, totals) {
        // The shopper confirmed exactly the current total: the changes were seen and accepted.
        (Some(expected), Some(t)) if expected == t.total => differences.clear(),
        (Some(expected), Some(t)) => differences
            .push(json!({"type": "total_changed", "expected": expected, "actual": t.total})),
        _ => {}
    }
    if !differences.is_empty() {
        let actual = totals
            .map(|t| t.total.to_string())
            .unwrap_or_else(|| "no total".into());
        return Err(ServiceError::conflict(
            ConflictReason::CheckoutChanged,
            format!(
                "the order was not placed: show the shopper the differences (GET the cart for the reconciled lines), then \
                 confirm again with expected_total set to the new total ({actual}), or sync the cart first"
            ),
            differences,
        ));
    }
    let totals = totals
        .ok_or_else(|| ServiceError::field("lines", "empty", "an order needs at least one line"))?;
    let currency = totals.total.currency;

    // Shipments must split the lines exactly; tenders must be known, in the order's currency and sum to the total.
    let mut errs = FieldErrors::default();
    for e in check_shipment_split(&priced.lines, &doc.shipments) {
        errs.push(e);
    }
    // Every address must be on the routing engine's map (coordinates, a US ZIP prefix or a known
    // country), before any money is held.
    for (i, s) in doc.shipments.iter().enumerate() {
        let point = match (s.address.lat, s.address.lon) {
            (Some(lat), Some(lon)) => ordo_domain::routing::GeoPoint::parse(lat, lon).ok(),
            _ => None,
        };
        if let Err(e) = ordo_domain::routing::Destination::resolve(
            &s.address.country,
            Some(&s.address.postal_code),
            point,
        ) {
            errs.push(ordo_domain::FieldError {
                path: format!("shipments[{i}].address.{}", e.path),
                ..e
            });
        }
    }
    let mut tokens: Vec<TokenRecord> = Vec::with_capacity(req.tenders.len());
    for (i, (token, amount)) in req.tenders.iter().enumerate() {
        if amount.currency != currency {
            errs.add(
                format!("payments[{i}].amount.currency"),
                "currency_mismatch",
                format!("the order is in {currency}"),
            );
        }
        match state.store.payment_token(tenant, token).await? {
            None => errs.add(
                format!("payments[{i}].token"),
                "unknown_token",
                "no payment token has this value",
            ),
            Some(t) if t.order_id.is_some() => {
                // A concurrent retry of this very request may have just used it: answer as that one did.
                if let Some(rec) = state.store.idempotency_record(tenant, &key.key).await? {
                    return idempotency::settle(&rec, &key.request_hash);
                }
                errs.add(
                    format!("payments[{i}].token"),
                    "token_used",
                    "this token already paid for an order",
                )
            }
            Some(t) => tokens.push(t),
        }
    }
    let paid: i64 = req.tenders.iter().map(|(_, m)| m.amount).sum();
    if req.tenders.is_empty() && totals.total.amount > 0 {
        errs.add(
            "payments",
            "required",
            format!(
                "the order total is {}: give at least one payment tender",
                totals.total
            ),
        );
    } else if errs.is_empty() && paid != totals.total.amount {
        errs.add(
            "payments",
            "sum_mismatch",
            format!(
                "the tenders sum to {}, but the order total is {}",
                Money::new(paid, currency),
                totals.total
            ),
        );
    }
    errs.into_result()?;

    // Above the tenant's threshold a shopper confirms with a passkey first. Nothing is claimed
    // before, so the retry carrying the assertion reuses the same Idempotency-Key.
    if let Err(e) =
        super::passkeys::check_step_up(state, caller, totals.total, req.step_up.as_ref()).await
    {
        // A concurrent retry of this very request may have consumed the challenge: answer as it did.
        if matches!(e, ServiceError::StepUpFailed(_)) {
            if let Some(rec) = state.store.idempotency_record(tenant, &key.key).await? {
                return idempotency::settle(&rec, &key.request_hash);
            }
        }
        return Err(e);
    }

    // Claim the key and record every authorization as pending, in one commit, before the
    // gateway is asked. Whoever does not get the claim never reaches the gateway.
    let pending: Vec<PendingAuthorization> = tokens
        .iter()
        .zip(&req.tenders)
        .map(|(t, (_, amount))| PendingAuthorization {
            id: format!("pa_{}", uuid::Uuid::now_v7().simple()),
            token: t.token.clone(),
            amount: *amount,
        })
        .collect();
    let auth_ids: Vec<String> = pending.iter().map(|p| p.id.clone()).collect();
    let _inflight = state.inflight.hold(&auth_ids);
    // Hold a place in the placement queue first: a full queue refuses the checkout (429) before
    // any card is authorized, never after.
    let slot = state.store.reserve_placement()?;
    let lease_cutoff = ordo_store::now_ms() - state.config.authorization_grace.as_millis() as i64;
    let claim_id = match state
        .store
        .claim_checkout(tenant, &key, lease_cutoff, &pending)
        .await?
    {
        Claim::Claimed { claim_id } => claim_id,
        Claim::Existing(rec) => return idempotency::settle(&rec, &key.request_hash),
    };
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
                authorized: Some(p.amount),
                captured: Some(Money::new(0, p.amount.currency)),
                refunded: Some(Money::new(0, p.amount.currency)),
                voided: Some(Money::new(0, p.amount.currency)),
            }),
            Err(reason) => {
                if let Err(e) = state
                    .store
                    .finish_authorizations(
                        tenant,
                        &auth_ids[i..i + 1],
                        AuthorizationStatus::Declined,
                    )
                    .await
                {
                    // Left pending: recovery voids it (a void of a declined authorization is harmless).
                    tracing::warn!(error = %e, "could not record a declined authorization");
                }
                let others: Vec<String> = auth_ids
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, id)| id.clone())
                    .collect();
                void_all(state, tenant, &others).await;
                release(state, tenant, &key, &claim_id).await;
                return Err(ServiceError::PaymentDeclined {
                    detail: format!(
                        "tender {i} ({} …{}): {}; no payment was taken and the order was not placed",
                        t.brand,
                        t.last4,
                        reason.message()
                    ),
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
                shipped: 0,
                cancelled: 0,
                returned: 0,
            })
            .collect(),
        shipments: explicit_shipments(&doc.shipments, &priced.lines),
        payments: tenders.clone(),
        promotions: priced.promotions.clone(),
        totals,
        allocations: vec![],
        fulfillments: vec![],
        cart_id: cart_id.clone(),
        shipping_option: shipping_option,
        created_at: rfc3339(ordo_store::now_ms()),
    };
    let new = NewOrder {
        order,
        customer_key: customer_ref.promotion_key(),
        idempotency_key: key.key.clone(),
        claim_id: claim_id.clone(),
        authorization_ids: auth_ids.clone(),
    };
    // The gateway's authorization ids travel with the order: the group-commit driver stores them
    // before its round begins, so recovery can void a real provider's authorization by its own id.
    let placed = state.store.place_in(slot, tenant, new).await;
    match placed {
        Ok(order) => {
            let body =
                serde_json::to_string(&order).map_err(|e| ServiceError::Internal(e.to_string()))?;
            Ok(Answer {
                status: 201,
                body,
                replayed: false,
            })
        }
        Err(PlaceError::ClaimLost) => {
            // The claim's lease ran out and a retry took it over, or this very order committed
            // and its answer was lost on the way: the record says which.
            void_all(state, tenant, &auth_ids).await;
            match state.store.idempotency_record(tenant, &key.key).await? {
                Some(rec) => idempotency::settle(&rec, &key.request_hash),
                None => Err(ServiceError::conflict(
                    ConflictReason::RequestInProgress,
                    "this attempt lost its Idempotency-Key claim to a retry; retry to get that request's answer",
                    vec![],
                )),
            }
        }
        Err(e) => {
            void_all(state, tenant, &auth_ids).await;
            if matches!(e, PlaceError::Store(_) | PlaceError::AuthorizationLost) {
                release(state, tenant, &key, &claim_id).await;
            }
            Err(placement_error(e))
        }
    }
}

/// Why the engine refused an order, as the service reports it.
fn placement_error(e: PlaceError) -> ServiceError {
    match e {
        PlaceError::Shortage(s) => ServiceError::conflict(
            ConflictReason::OutOfStock,
            "the order was not placed: some lines are no longer available in the quantity asked",
            s.iter().map(shortage_value).collect(),
        ),
        PlaceError::PriceMoved(moved) => ServiceError::conflict(
            ConflictReason::PricesChanged,
            "the order was not placed: prices changed while it was being placed",
            moved
                .iter()
                .map(|(sku, old, new)| json!({"type": "price_changed", "sku": sku, "old_unit_price": old, "new_unit_price": new}))
                .collect(),
        ),
        PlaceError::PromotionExhausted(code) => ServiceError::conflict(
            ConflictReason::PromotionUsedUp,
            format!("the order was not placed: promotion {code} reached its usage limit"),
            vec![json!({"type": "promo_rejected", "code": code, "reason": "usage_limit_reached"})],
        ),
        PlaceError::CustomerLimitReached(code) => ServiceError::conflict(
            ConflictReason::PromotionAlreadyUsed,
            format!("the order was not placed: promotion {code} reached its per-customer limit"),
            vec![json!({"type": "promo_rejected", "code": code, "reason": "customer_limit_reached"})],
        ),
        PlaceError::PromotionInvalid(code, reason) => ServiceError::conflict(
            ConflictReason::PromotionNoLongerApplies,
            format!("the order was not placed: promotion {code} no longer applies ({})", reason.message()),
            vec![json!({"type": "promo_rejected", "code": code, "reason": reason})],
        ),
        PlaceError::AuthorizationLost => ServiceError::conflict(
            ConflictReason::AuthorizationExpired,
            "the order was not placed: its card authorization expired before it could commit; place it again",
            vec![json!({"type": "authorization_expired"})],
        ),
        PlaceError::CartOrdered(cart) => ServiceError::conflict(
            ConflictReason::CartAlreadyOrdered,
            format!("cart {cart} has already become an order; a retry must reuse that checkout's Idempotency-Key, a new order needs a new cart"),
            vec![json!({"type": "cart_already_ordered", "cart_id": cart})],
        ),
        PlaceError::NoRoute(codes) => ServiceError::conflict(
            ConflictReason::NoFulfilmentNode,
            "the order was not placed: no node holding its stock may ship it there today (reason_codes say why: capacity, country, capabilities or routing rules)",
            vec![json!({"type": "no_route", "reason_codes": codes})],
        ),
        PlaceError::Unroutable(errs) => errs.into(),
        PlaceError::TokenUsed(i) => ServiceError::field(format!("payments[{i}].token"), "token_used", "this token already paid for an order"),
        PlaceError::ClaimLost => ServiceError::conflict(
            ConflictReason::RequestInProgress,
            "another attempt holds this Idempotency-Key; retry to get its answer",
            vec![],
        ),
        PlaceError::Store(e) => e.into(),
    }
}

/// Gives the key back after a failure that committed nothing, so a retry is evaluated afresh.
async fn release(state: &AppState, tenant: &str, key: &IdempotencyKey, claim_id: &str) {
    if let Err(e) = state.store.release_claim(tenant, &key.key, claim_id).await {
        // The claim expires after its lease; a retry takes it over then.
        tracing::warn!(error = %e, "could not release an idempotency claim");
    }
}

/// The order records where every unit goes: a lone shipment without lines takes them all.
fn explicit_shipments(
    shipments: &[ShipmentRequest],
    lines: &[ordo_domain::pricing::PricedLine],
) -> Vec<ShipmentRequest> {
    let mut out = shipments.to_vec();
    if let [only] = out.as_mut_slice() {
        if only.lines.is_empty() {
            only.lines = lines
                .iter()
                .map(|l| ordo_domain::pricing::LineRequest {
                    sku: l.sku.clone(),
                    quantity: l.quantity,
                })
                .collect();
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
    for (id, gateway_id) in &claimed {
        state
            .gateway
            .void_authorization(id, gateway_id.as_deref())
            .await;
    }
    let ids: Vec<String> = claimed.into_iter().map(|(id, _)| id).collect();
    if let Err(e) = state
        .store
        .finish_authorizations(tenant, &ids, AuthorizationStatus::Voided)
        .await
    {
        // Left as 'voiding': recovery voids them again (voiding is idempotent).
        tracing::warn!(error = %e, "could not record voided authorizations");
    }
}
