//! Returns: the order's shopper, guest or staff ask for shipped units back (within the tenant's
//! window, idempotently under a key); staff receive them at a node, which refunds their value to
//! the original tenders (booked in the receipt's commit, sent to the gateway after it, in tender
//! order: tender 0 first, each up to what it captured and has not refunded), and decide what
//! becomes of each unit (restock puts it back on hand at the receiving node).

use super::error::{ConflictReason, Result, ServiceError};
use super::idempotency::{self, Answer};
use super::lifecycle::{actor, refused};
use crate::AppState;
use crate::auth::{Caller, Role};
use ordo_store::{Disposition, IdempotencyKey, Idempotent, LifecycleError, Render, ReturnView};
use std::sync::Arc;

/// The reasons a shopper can give.
pub const REASONS: [&str; 6] = [
    "too_small",
    "too_large",
    "damaged",
    "not_as_described",
    "changed_mind",
    "other",
];

/// The conditions staff record at receipt.
pub const CONDITIONS: [&str; 3] = ["new", "damaged", "opened"];

/// A return as the API shows it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ReturnBody {
    #[schema(example = "ret_0193...")]
    pub id: String,
    pub order_id: String,
    #[schema(example = "RMA-7K3M-9Q2X")]
    pub rma_number: String,
    /// `requested`, `partially_received`, `received` or `closed`.
    pub status: String,
    #[schema(value_type = Vec<Object>)]
    pub lines: Vec<ordo_store::ReturnLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location_id: Option<String>,
    pub refunded: ordo_domain::Money,
    /// RFC 3339, UTC.
    pub created_at: String,
}

fn body(r: ReturnView, currency: ordo_domain::Currency) -> ReturnBody {
    ReturnBody {
        id: r.id,
        order_id: r.order_id,
        rma_number: r.rma_number,
        status: r.status,
        lines: r.lines,
        location_id: r.location_id,
        refunded: ordo_domain::Money::new(r.refunded, currency),
        created_at: super::rfc3339(r.created_at_ms),
    }
}

/// The order (visible to the caller) and its currency.
async fn visible_order(state: &AppState, caller: &Caller, id: &str) -> Result<ordo_domain::Order> {
    state
        .store
        .order(caller.tenant(), id)
        .await?
        .filter(|o| caller.may_see_order(&o.id.to_string(), o.customer.customer_id()))
        .ok_or_else(|| ServiceError::NotFound(format!("order {id}")))
}

/// Requests a return of `lines` (sku, quantity, reason) of an order.
pub async fn request(
    state: &AppState,
    caller: &Caller,
    order_id: &str,
    lines: Vec<(String, i64, String)>,
    key: Option<IdempotencyKey>,
) -> Result<Answer> {
    let order = visible_order(state, caller, order_id).await?;
    if let Some(answer) = idempotency::answered(state, caller, key.as_ref()).await? {
        return Ok(answer);
    }
    let currency = order.totals.total.currency;
    let render_body =
        move |r: &ReturnView| serde_json::to_string(&body(r.clone(), currency)).unwrap_or_default();
    let stored = render_body.clone();
    let render: Render<std::result::Result<ReturnView, LifecycleError>> =
        Arc::new(move |r| match r {
            Ok(r) => (201, stored(r)),
            Err(e) => (409, e.to_string()),
        });
    let hash = key.as_ref().map(|k| k.request_hash.clone());
    let window = state.config.return_window.as_millis() as i64;
    match state
        .store
        .request_return(
            caller.tenant(),
            &order.id.to_string(),
            &lines,
            window,
            &actor(caller),
            key.map(|k| (k, render)),
        )
        .await?
    {
        Idempotent::Done(Ok(r)) => Ok(Answer {
            status: 201,
            body: render_body(&r),
            replayed: false,
        }),
        Idempotent::Done(Err(e)) => Err(refused_return(e)),
        Idempotent::Replay(rec) => idempotency::settle(&rec, hash.as_deref().unwrap_or("")),
    }
}

/// "More than was shipped, or a second return of the same units" is a conflict with the order's
/// state, not a malformed request.
fn refused_return(e: LifecycleError) -> ServiceError {
    match e {
        LifecycleError::TooMany {
            path,
            sku,
            asked,
            left,
        } => ServiceError::conflict(
            ConflictReason::ReturnExceedsShipped,
            format!(
                "{path}: {asked} units of {sku}, but only {left} shipped and not yet returned or asked back"
            ),
            vec![
                serde_json::json!({"path": path, "sku": sku, "requested": asked, "returnable": left}),
            ],
        ),
        other => refused(other),
    }
}

/// A return the caller may see.
pub async fn get(state: &AppState, caller: &Caller, id: &str) -> Result<ReturnBody> {
    let not_found = || ServiceError::NotFound(format!("return {id}"));
    let r = state
        .store
        .return_by_id(caller.tenant(), id)
        .await?
        .ok_or_else(not_found)?;
    let order = visible_order(state, caller, &r.order_id)
        .await
        .map_err(|_| not_found())?;
    Ok(body(r, order.totals.total.currency))
}

/// Receives units of a return at `location` (staff); the refund follows automatically.
pub async fn receive(
    state: &AppState,
    caller: &Caller,
    id: &str,
    location: &str,
    lines: Vec<(String, i64, String)>,
) -> Result<ReturnBody> {
    staff_at(caller, location, id)?;
    let receipt = state
        .store
        .receive_return(caller.tenant(), id, location, &lines, &actor(caller))
        .await?
        .map_err(refused_return)?;
    super::lifecycle::send_ops(state, caller.tenant(), &receipt.refunds).await;
    get(state, caller, id).await
}

/// Decides what becomes of received units (staff).
pub async fn disposition(
    state: &AppState,
    caller: &Caller,
    id: &str,
    lines: Vec<(String, i64, Disposition)>,
) -> Result<ReturnBody> {
    if let Some(r) = state.store.return_by_id(caller.tenant(), id).await? {
        if let Some(loc) = &r.location_id {
            staff_at(caller, loc, id)?;
        }
    }
    state
        .store
        .disposition_return(caller.tenant(), id, &lines, &actor(caller))
        .await?
        .map_err(refused_return)?;
    get(state, caller, id).await
}

/// Staff limited to locations receive and disposition only there.
fn staff_at(caller: &Caller, location: &str, id: &str) -> Result<()> {
    match &caller.principal {
        Some(p) if p.role == Role::Staff && !p.locations.is_empty() => {
            if p.locations.iter().any(|l| l == location) {
                Ok(())
            } else {
                Err(ServiceError::NotFound(format!("return {id} at {location}")))
            }
        }
        _ => Ok(()),
    }
}

/// An exchange as the API shows it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ExchangeBody {
    #[schema(example = "exc_0193...")]
    pub id: String,
    pub order_id: String,
    /// The return of the units given back (receive it at a node as any return).
    pub return_id: String,
    pub rma_number: String,
    /// The fulfilment that ships the new units.
    pub fulfillment_id: String,
    /// What the units given back are worth.
    pub value_out: ordo_domain::Money,
    /// What the new units cost (catalog price now).
    pub value_in: ordo_domain::Money,
    /// `value_in − value_out`: charged on the order's card when positive (captured when the new
    /// units ship), refunded when the returned units are received when negative.
    pub difference: ordo_domain::Money,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// Exchanges `quantity_out` units of `sku_out` for `quantity_in` units of `sku_in`, as one
/// operation (the order's shopper, guest or staff).
#[allow(clippy::too_many_arguments)]
pub async fn exchange(
    state: &AppState,
    caller: &Caller,
    order_id: &str,
    sku_out: &str,
    quantity_out: i64,
    reason: &str,
    sku_in: &str,
    quantity_in: i64,
    key: Option<IdempotencyKey>,
) -> Result<Answer> {
    let order = visible_order(state, caller, order_id).await?;
    if let Some(answer) = idempotency::answered(state, caller, key.as_ref()).await? {
        return Ok(answer);
    }
    // Staff limited to locations do not ship new units from anywhere: exchanges are theirs not.
    if let Some(p) = &caller.principal {
        if p.role == Role::Staff && !p.locations.is_empty() {
            return Err(ServiceError::NotFound(format!("order {order_id}")));
        }
    }
    let currency = order.totals.total.currency;
    let sku = ordo_domain::Sku::parse(sku_in)
        .map_err(|e| ServiceError::field("for.sku", &e.code, e.message))?;
    let product = state
        .store
        .product(caller.tenant(), &sku)
        .await?
        .ok_or_else(|| {
            ServiceError::field(
                "for.sku",
                "unknown_sku",
                format!("no product has SKU {sku_in}"),
            )
        })?
        .product;
    if product.price.currency != currency {
        return Err(ServiceError::field(
            "for.sku",
            "currency_mismatch",
            format!(
                "{sku_in} is priced in {}, the order in {}",
                product.price.currency, currency
            ),
        ));
    }
    let req = ordo_store::ExchangeRequest {
        sku_out: sku_out.into(),
        quantity_out,
        reason: reason.into(),
        sku_in: sku_in.into(),
        quantity_in,
        unit_price_in: product.price.amount,
    };
    let quote = state
        .store
        .exchange_quote(caller.tenant(), &order, &req)
        .await?;
    // The difference is authorized before anything is written, on the order's first card.
    let mut charge = None;
    if quote.difference() > 0 {
        let first = order
            .payments
            .first()
            .ok_or_else(|| ServiceError::Internal("an order without tenders".into()))?;
        let token = state
            .store
            .payment_token(caller.tenant(), &first.token)
            .await?
            .ok_or_else(|| ServiceError::Internal("an order's token vanished".into()))?;
        let amount = ordo_domain::Money::new(quote.difference(), currency);
        let reference = format!("exchange:{}", uuid::Uuid::now_v7().simple());
        match state
            .gateway
            .authorize(&reference, &token, amount, super::year_month_now())
            .await
        {
            Ok(authorization_id) => {
                charge = Some(ordo_store::Charge {
                    token: token.token.clone(),
                    authorization_id,
                    amount: quote.difference(),
                    currency: currency.code().to_string(),
                })
            }
            Err(reason) => {
                return Err(ServiceError::PaymentDeclined {
                    detail: format!(
                        "the difference of {amount} could not be authorized: {}; nothing was exchanged",
                        reason.message()
                    ),
                    payment: serde_json::json!({"reason": reason, "amount": amount}),
                });
            }
        }
    }
    let window = state.config.return_window.as_millis() as i64;
    let body_of = move |view: &ordo_store::ExchangeView| {
        serde_json::to_string(&ExchangeBody {
            id: view.id.clone(),
            order_id: view.order_id.clone(),
            return_id: view.return_id.clone(),
            rma_number: view.rma_number.clone(),
            fulfillment_id: view.fulfillment_id.clone(),
            value_out: ordo_domain::Money::new(view.value_out, currency),
            value_in: ordo_domain::Money::new(view.value_in, currency),
            difference: ordo_domain::Money::new(view.value_in - view.value_out, currency),
            created_at: super::rfc3339(view.created_at_ms),
        })
        .unwrap_or_default()
    };
    let stored = body_of.clone();
    let render: Render<std::result::Result<ordo_store::ExchangeView, LifecycleError>> =
        Arc::new(move |r| match r {
            Ok(v) => (201, stored(v)),
            Err(e) => (409, e.to_string()),
        });
    let hash = key.as_ref().map(|k| k.request_hash.clone());
    let done = state
        .store
        .exchange(
            caller.tenant(),
            &order.id.to_string(),
            &req,
            quote,
            charge.clone(),
            window,
            &super::lifecycle::actor(caller),
            key.map(|k| (k, render)),
        )
        .await;
    let exchanged = matches!(done, Ok(Idempotent::Done(Ok(_))));
    if !exchanged {
        if let Some(c) = &charge {
            // Nothing was exchanged by this request: release the difference's authorization.
            state
                .gateway
                .void_authorization(&c.authorization_id, Some(&c.authorization_id))
                .await;
        }
    }
    match done? {
        Idempotent::Done(Ok(view)) => Ok(Answer {
            status: 201,
            body: body_of(&view),
            replayed: false,
        }),
        Idempotent::Done(Err(e)) => Err(refused_return(e)),
        Idempotent::Replay(rec) => idempotency::settle(&rec, hash.as_deref().unwrap_or("")),
    }
}
