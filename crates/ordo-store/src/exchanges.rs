//! Exchanges: one operation that asks units of an order back (a return) and ships other units
//! (another variant) in their place, with the price difference settled. The new units are priced
//! at the catalog price of the moment; the units given back are worth what a return of them would
//! refund. When the new units cost more, the difference is authorized on the order's card before
//! the commit (outside any transaction) as a tender of its own, and captured when they ship; when
//! they cost less, the receipt of the returned units refunds the difference (the rest of their
//! value pays for the new units).

use crate::idempotency::{IdempotencyKey, Idempotent, Render};
use crate::lifecycle::{
    self as lc, Actor, LifecycleError, PaymentOp, lines_in, lock_order, record, route_units,
    tenders_in,
};
use crate::returns::{ReturnView, request_in};
use crate::sql::{Sql, Tx};
use crate::{Result, Store, corrupt, now_ms};
use ordo_domain::lifecycle;

type Outcome<T> = std::result::Result<T, LifecycleError>;

/// What an exchange asks.
#[derive(Debug, Clone, PartialEq)]
pub struct ExchangeRequest {
    pub sku_out: String,
    pub quantity_out: i64,
    pub reason: String,
    pub sku_in: String,
    pub quantity_in: i64,
    /// The new SKU's catalog price now (minor units of the order's currency).
    pub unit_price_in: i64,
}

/// An exchange's money, quoted before anything is authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExchangeQuote {
    /// What the units given back are worth (what a return of them would refund).
    pub value_out: i64,
    /// What the new units cost.
    pub value_in: i64,
}

impl ExchangeQuote {
    /// Positive: the shopper pays it; negative: the shopper gets it back.
    pub fn difference(&self) -> i64 {
        self.value_in - self.value_out
    }
}

/// An exchange as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ExchangeView {
    pub id: String,
    pub order_id: String,
    pub return_id: String,
    pub rma_number: String,
    pub fulfillment_id: String,
    pub sku_in: String,
    pub quantity_in: i64,
    pub value_out: i64,
    pub value_in: i64,
    /// The tender that pays the difference (when the new units cost more).
    pub tender_no: Option<i64>,
    pub created_at_ms: i64,
}

/// The difference's authorization, made before the commit.
#[derive(Debug, Clone, PartialEq)]
pub struct Charge {
    pub token: String,
    pub authorization_id: String,
    pub amount: i64,
    pub currency: String,
}

/// The value of `n` units of `sku` given back now (as a receipt of them would refund).
fn value_back(
    order: &ordo_domain::Order,
    lines: &[(i64, String, i64, i64, i64, i64)],
    sku: &str,
    n: i64,
) -> i64 {
    let shares = lc::shares(order);
    let (share, q) = shares.get(sku).copied().unwrap_or((0, 0));
    let returned = lines.iter().find(|l| l.1 == sku).map_or(0, |l| l.5);
    lifecycle::chunk_value(share, q, returned, n)
}

impl Store {
    /// What an exchange would cost or give back now (read only; the commit checks it again).
    pub async fn exchange_quote(
        &self,
        tenant: &str,
        order: &ordo_domain::Order,
        req: &ExchangeRequest,
    ) -> Result<ExchangeQuote> {
        let mut conn = self.conn(tenant).await?;
        let lines = lines_in(&mut *conn, tenant, &order.id.to_string()).await?;
        Ok(ExchangeQuote {
            value_out: value_back(order, &lines, &req.sku_out, req.quantity_out),
            value_in: req.unit_price_in * req.quantity_in,
        })
    }

    /// Records an exchange (idempotently under `key`): the return of the old units, the new units
    /// routed and reserved on a fulfilment of their own, and (when they cost more) the
    /// difference's tender. Refused as a return would be, when the quote moved (`Repriced`), or
    /// when no node can ship the new units; a refusal stores no answer.
    #[allow(clippy::too_many_arguments)]
    pub async fn exchange(
        &self,
        tenant: &str,
        order_id: &str,
        req: &ExchangeRequest,
        quote: ExchangeQuote,
        charge: Option<Charge>,
        window_ms: i64,
        actor: &Actor,
        key: Option<(IdempotencyKey, Render<Outcome<ExchangeView>>)>,
    ) -> Result<Idempotent<Outcome<ExchangeView>>> {
        let (t, id, req, actor) = (
            tenant.to_string(),
            order_id.to_string(),
            req.clone(),
            actor.clone(),
        );
        self.idempotent(tenant, key, move |tx| {
            let (t, id, req, charge, actor) = (
                t.clone(),
                id.clone(),
                req.clone(),
                charge.clone(),
                actor.clone(),
            );
            Box::pin(async move {
                let out = exchange_in(tx, &t, &id, &req, quote, charge, window_ms, &actor).await?;
                let keep = out.is_ok();
                Ok((out, keep))
            })
        })
        .await
    }
}

#[allow(clippy::too_many_arguments)]
async fn exchange_in(
    tx: &mut Tx<'_>,
    t: &str,
    id: &str,
    req: &ExchangeRequest,
    quote: ExchangeQuote,
    charge: Option<Charge>,
    window_ms: i64,
    actor: &Actor,
) -> Result<Outcome<ExchangeView>> {
    // The return first (it locks the order and checks the units and the window).
    let lines = vec![(req.sku_out.clone(), req.quantity_out, req.reason.clone())];
    let ret: ReturnView = match request_in(tx, t, id, &lines, window_ms, actor).await? {
        Ok(r) => r,
        Err(e) => return Ok(Err(e)),
    };
    let (status, order) = lock_order(tx, t, id)
        .await?
        .ok_or_else(|| corrupt("an exchange's order vanished"))?;
    let counts = lines_in(tx, t, id).await?;
    let now_quote = ExchangeQuote {
        value_out: value_back(&order, &counts, &req.sku_out, req.quantity_out),
        value_in: req.unit_price_in * req.quantity_in,
    };
    if now_quote != quote {
        return Ok(Err(LifecycleError::Repriced));
    }
    // The new units go where the old ones went: the address of a fulfilment that shipped them.
    let address_index = crate::lifecycle::fulfillments_in(tx, t, id)
        .await?
        .into_iter()
        .find(|(f, _)| {
            f.status.is_shipped() && f.lines.iter().any(|l| l.sku.as_str() == req.sku_out)
        })
        .map_or(0, |(f, _)| f.address_index);
    let address = order
        .shipments
        .get(address_index)
        .map(|s| s.address.clone())
        .ok_or_else(|| corrupt("an exchange to an address the order does not have"))?;
    crate::holds::lock_stock(tx, t, std::slice::from_ref(&req.sku_in)).await?;
    let mut changed = Vec::new();
    let routed = route_units(
        tx,
        t,
        &order,
        address_index,
        &address,
        &req.sku_in,
        req.quantity_in,
        None,
        None,
        now_ms(),
        &mut changed,
    )
    .await?;
    let (location, fulfillment_id, decision_id) = match routed {
        Ok(r) => r,
        Err(codes) => {
            return Ok(Err(LifecycleError::NoNode {
                sku: req.sku_in.clone(),
                reason_codes: codes,
            }));
        }
    };
    let mut tender_no = None;
    if let Some(c) = &charge {
        let next = tenders_in(tx, t, id)
            .await?
            .iter()
            .map(|x| x.tender_no)
            .max()
            .map_or(0, |n| n + 1);
        tx.exec(
            "INSERT INTO order_payments (tenant_id, order_id, tender_no, token, amount, currency, authorization_id, status) VALUES ($1, $2, $3, $4, $5, $6, $7, 'authorized')",
            vec![t.into(), id.into(), next.into(), c.token.as_str().into(), c.amount.into(), c.currency.as_str().into(), c.authorization_id.as_str().into()],
        )
        .await?;
        tender_no = Some(next);
    }
    let now = now_ms();
    let view = ExchangeView {
        id: format!("exc_{}", uuid::Uuid::now_v7().simple()),
        order_id: id.into(),
        return_id: ret.id.clone(),
        rma_number: ret.rma_number.clone(),
        fulfillment_id,
        sku_in: req.sku_in.clone(),
        quantity_in: req.quantity_in,
        value_out: quote.value_out,
        value_in: quote.value_in,
        tender_no,
        created_at_ms: now,
    };
    tx.exec(
        "INSERT INTO exchanges (tenant_id, id, order_id, return_id, fulfillment_id, sku_in, quantity_in, value_out, value_in, credit_used, tender_no, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $11)",
        vec![
            t.into(), view.id.as_str().into(), id.into(), view.return_id.as_str().into(), view.fulfillment_id.as_str().into(),
            view.sku_in.as_str().into(), view.quantity_in.into(), view.value_out.into(), view.value_in.into(), tender_no.into(), now.into(),
        ],
    )
    .await?;
    let detail = serde_json::json!({
        "exchange_id": view.id, "return_id": view.return_id, "out": {"sku": req.sku_out, "quantity": req.quantity_out},
        "in": {"sku": req.sku_in, "quantity": req.quantity_in, "location_id": location, "fulfillment_id": view.fulfillment_id, "decision_id": decision_id},
        "value_out": view.value_out, "value_in": view.value_in, "difference": quote.difference(),
    });
    let to = lc::settle_status(tx, t, id).await?;
    record(
        tx,
        t,
        id,
        actor,
        "exchange.requested",
        status,
        to,
        Some(&req.reason),
        detail,
    )
    .await?;
    lc::append_changed(tx, t, changed, "exchange").await?;
    Ok(Ok(view))
}

/// The exchange a fulfilment ships (if it is one): (difference to capture, its tender).
pub(crate) async fn exchange_of_fulfillment(
    tx: &mut Tx<'_>,
    t: &str,
    ful_id: &str,
) -> Result<Option<(i64, Option<i64>)>> {
    let rows = tx
        .rows(
            "SELECT value_in - value_out, tender_no FROM exchanges WHERE tenant_id = $1 AND fulfillment_id = $2",
            vec![t.into(), ful_id.into()],
        )
        .await?;
    rows.first()
        .map(|r| Ok((r[0].int()?, r[1].opt_int()?)))
        .transpose()
}

/// How much of a receipt's refund the exchange's new units absorb: takes it from the exchange's
/// credit (`value_in` not yet covered) and returns what is left to refund.
pub(crate) async fn absorb_refund(
    tx: &mut Tx<'_>,
    t: &str,
    return_id: &str,
    value: i64,
) -> Result<i64> {
    let rows = tx
        .rows(
            // The credit pays for new units only while they are not cancelled.
            "SELECT e.id, e.value_in, e.credit_used FROM exchanges e JOIN fulfillments f ON f.tenant_id = e.tenant_id AND f.id = e.fulfillment_id \
             WHERE e.tenant_id = $1 AND e.return_id = $2 AND f.status <> 'cancelled'",
            vec![t.into(), return_id.into()],
        )
        .await?;
    let Some(r) = rows.first() else {
        return Ok(value);
    };
    let (id, value_in, used) = (r[0].text()?, r[1].int()?, r[2].int()?);
    let take = value.min((value_in - used).max(0));
    tx.exec(
        "UPDATE exchanges SET credit_used = credit_used + $3 WHERE tenant_id = $1 AND id = $2",
        vec![t.into(), id.as_str().into(), take.into()],
    )
    .await?;
    Ok(value - take)
}

/// Voids what an exchange's tender has open once its fulfilment is cancelled (the new units
/// will never ship).
pub(crate) async fn void_exchange_tender(
    tx: &mut Tx<'_>,
    t: &str,
    order_id: &str,
    ful_id: &str,
) -> Result<Vec<PaymentOp>> {
    let Some((_, Some(tender_no))) = exchange_of_fulfillment(tx, t, ful_id).await? else {
        return Ok(vec![]);
    };
    let tenders = tenders_in(tx, t, order_id).await?;
    let Some(tender) = tenders.iter().find(|x| x.tender_no == tender_no) else {
        return Ok(vec![]);
    };
    let open = tender.money.open();
    if open == 0 {
        return Ok(vec![]);
    }
    lc::add_money(tx, t, order_id, tender, "voided", open).await?;
    let op = PaymentOp {
        id: lc::new_op_id(),
        order_id: order_id.into(),
        tender_no,
        authorization_id: tender.authorization_id.clone(),
        kind: "void".into(),
        amount: open,
        currency: tender.currency.clone(),
        subject: format!("exchange_cancelled:{ful_id}"),
    };
    lc::insert_op(tx, t, &op).await?;
    Ok(vec![op])
}
