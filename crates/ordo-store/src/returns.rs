//! Returns: requested (units shipped and not yet returned or asked back, within the window),
//! received at a node (the refund of the received units' value is booked on the tenders in the
//! same commit and sent to the gateway after it), and dispositioned (restocked units come back on
//! hand at the receiving node). Each step locks the order's row first, like every lifecycle
//! transition, and writes its timeline entry and outbox event in the same commit.

use crate::idempotency::{IdempotencyKey, Idempotent, Render};
use crate::lifecycle::{
    self as lc, Actor, LifecycleError, PaymentOp, lines_in, lock_order, record, settle_status,
    tenders_in,
};
use crate::sql::{Sql, Tx};
use crate::{Result, Store, corrupt, now_ms};
use ordo_domain::lifecycle::{self, TenderMoney};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

type Outcome<T> = std::result::Result<T, LifecycleError>;

/// One line of a return and what became of its units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnLine {
    pub sku: String,
    /// Units asked back.
    pub quantity: i64,
    /// `too_small`, `too_large`, `damaged`, `not_as_described`, `changed_mind` or `other`.
    pub reason: String,
    #[serde(default)]
    pub received: i64,
    /// The condition of the received units (the last receipt's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(default)]
    pub restocked: i64,
    #[serde(default)]
    pub refurbished: i64,
    #[serde(default)]
    pub written_off: i64,
}

impl ReturnLine {
    fn dispositioned(&self) -> i64 {
        self.restocked + self.refurbished + self.written_off
    }
}

/// A return as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnView {
    pub id: String,
    pub order_id: String,
    pub rma_number: String,
    /// `requested`, `partially_received`, `received` or `closed` (every received unit
    /// dispositioned and every unit received).
    pub status: String,
    pub lines: Vec<ReturnLine>,
    pub location_id: Option<String>,
    /// Money refunded for this return so far (minor units of the order's currency).
    pub refunded: i64,
    pub created_at_ms: i64,
}

/// A receipt's refund, to send to the gateway after the commit.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub ret: ReturnView,
    pub refunds: Vec<PaymentOp>,
}

/// A disposition of received units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Restock,
    Refurbish,
    WriteOff,
}

impl Disposition {
    pub fn parse(s: &str) -> Option<Disposition> {
        match s {
            "restock" => Some(Disposition::Restock),
            "refurbish" => Some(Disposition::Refurbish),
            "write_off" => Some(Disposition::WriteOff),
            _ => None,
        }
    }
}

fn rma_number() -> String {
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
    let n = uuid::Uuid::new_v4().as_u128();
    let code: String = (0..8)
        .map(|i| ALPHABET[((n >> (i * 5)) % ALPHABET.len() as u128) as usize] as char)
        .collect();
    format!("RMA-{}-{}", &code[..4], &code[4..])
}

const RETURN_COLUMNS: &str =
    "id, order_id, rma_number, status, lines, location_id, refunded, created_at_ms";

fn return_from(r: &[crate::sql::Val]) -> Result<ReturnView> {
    Ok(ReturnView {
        id: r[0].text()?,
        order_id: r[1].text()?,
        rma_number: r[2].text()?,
        status: r[3].text()?,
        lines: serde_json::from_str(&r[4].text()?).map_err(corrupt)?,
        location_id: r[5].opt_text()?,
        refunded: r[6].int()?,
        created_at_ms: r[7].int()?,
    })
}

async fn returns_of(tx: &mut Tx<'_>, tenant: &str, order_id: &str) -> Result<Vec<ReturnView>> {
    tx.rows(
        &format!("SELECT {RETURN_COLUMNS} FROM returns WHERE tenant_id = $1 AND order_id = $2 ORDER BY id"),
        vec![tenant.into(), order_id.into()],
    )
    .await?
    .iter()
    .map(|r| return_from(r))
    .collect()
}

async fn write_return(tx: &mut Tx<'_>, tenant: &str, r: &ReturnView) -> Result<()> {
    tx.exec(
        "UPDATE returns SET status = $3, lines = $4, location_id = $5, refunded = $6, updated_at_ms = $7 WHERE tenant_id = $1 AND id = $2",
        vec![
            tenant.into(),
            r.id.as_str().into(),
            r.status.as_str().into(),
            serde_json::to_string(&r.lines).map_err(corrupt)?.into(),
            r.location_id.as_deref().into(),
            r.refunded.into(),
            now_ms().into(),
        ],
    )
    .await?;
    Ok(())
}

fn status_of(r: &ReturnView) -> &'static str {
    let received: i64 = r.lines.iter().map(|l| l.received).sum();
    let asked: i64 = r.lines.iter().map(|l| l.quantity).sum();
    let disposed: i64 = r.lines.iter().map(ReturnLine::dispositioned).sum();
    if received == 0 {
        "requested"
    } else if received < asked {
        "partially_received"
    } else if disposed < received {
        "received"
    } else {
        "closed"
    }
}

/// The order of a return, and the return, found under the order's lock.
async fn locked_return(
    tx: &mut Tx<'_>,
    tenant: &str,
    return_id: &str,
) -> Result<Option<(ordo_domain::OrderStatus, ordo_domain::Order, ReturnView)>> {
    let found = tx
        .rows(
            "SELECT order_id FROM returns WHERE tenant_id = $1 AND id = $2",
            vec![tenant.into(), return_id.into()],
        )
        .await?;
    let Some(order_id) = found.first().map(|r| r[0].text()).transpose()? else {
        return Ok(None);
    };
    let (status, order) = lock_order(tx, tenant, &order_id)
        .await?
        .ok_or_else(|| corrupt("a return without its order"))?;
    let ret = returns_of(tx, tenant, &order_id)
        .await?
        .into_iter()
        .find(|r| r.id == return_id)
        .ok_or_else(|| corrupt("a return vanished under its order's lock"))?;
    Ok(Some((status, order, ret)))
}

impl Store {
    /// A return by id.
    pub async fn return_by_id(&self, tenant: &str, id: &str) -> Result<Option<ReturnView>> {
        let rows = self
            .read_rows(
                tenant,
                &format!("SELECT {RETURN_COLUMNS} FROM returns WHERE tenant_id = $1 AND id = $2"),
                vec![tenant.into(), id.into()],
            )
            .await?;
        rows.first().map(|r| return_from(r)).transpose()
    }

    /// Requests a return of shipped units (idempotently under `key`). Refused: units not shipped
    /// or already asked back (`TooMany`), past the window (`Expired`).
    pub async fn request_return(
        &self,
        tenant: &str,
        order_id: &str,
        lines: &[(String, i64, String)],
        window_ms: i64,
        actor: &Actor,
        key: Option<(IdempotencyKey, Render<Outcome<ReturnView>>)>,
    ) -> Result<Idempotent<Outcome<ReturnView>>> {
        let (t, id, lines, actor) = (
            tenant.to_string(),
            order_id.to_string(),
            lines.to_vec(),
            actor.clone(),
        );
        self.idempotent(tenant, key, move |tx| {
            let (t, id, lines, actor) = (t.clone(), id.clone(), lines.clone(), actor.clone());
            Box::pin(async move {
                let out = request_in(tx, &t, &id, &lines, window_ms, &actor).await?;
                let keep = out.is_ok();
                Ok((out, keep))
            })
        })
        .await
    }

    /// Receives units of a return at a node: refunds their value (booked now, sent after).
    pub async fn receive_return(
        &self,
        tenant: &str,
        return_id: &str,
        location: &str,
        lines: &[(String, i64, String)],
        actor: &Actor,
    ) -> Result<Outcome<Receipt>> {
        let (t, id, location, lines, actor) = (
            tenant.to_string(),
            return_id.to_string(),
            location.to_string(),
            lines.to_vec(),
            actor.clone(),
        );
        lc::transition(self, tenant, move |tx| {
            let (t, id, location, lines, actor) = (
                t.clone(),
                id.clone(),
                location.clone(),
                lines.clone(),
                actor.clone(),
            );
            Box::pin(async move { receive_in(tx, &t, &id, &location, &lines, &actor).await })
        })
        .await
    }

    /// Decides what becomes of received units; restocked ones come back on hand at the node.
    pub async fn disposition_return(
        &self,
        tenant: &str,
        return_id: &str,
        lines: &[(String, i64, Disposition)],
        actor: &Actor,
    ) -> Result<Outcome<ReturnView>> {
        let (t, id, lines, actor) = (
            tenant.to_string(),
            return_id.to_string(),
            lines.to_vec(),
            actor.clone(),
        );
        lc::transition(self, tenant, move |tx| {
            let (t, id, lines, actor) = (t.clone(), id.clone(), lines.clone(), actor.clone());
            Box::pin(async move { disposition_in(tx, &t, &id, &lines, &actor).await })
        })
        .await
    }
}

pub(crate) async fn request_in(
    tx: &mut Tx<'_>,
    t: &str,
    id: &str,
    lines: &[(String, i64, String)],
    window_ms: i64,
    actor: &Actor,
) -> Result<Outcome<ReturnView>> {
    let Some((from, order)) = lock_order(tx, t, id).await? else {
        return Ok(Err(LifecycleError::UnknownOrder(id.into())));
    };
    // The window runs from the last delivery (or shipment, when nothing was delivered yet).
    let last = tx
        .rows(
            "SELECT MAX(at_ms) FROM order_timeline WHERE tenant_id = $1 AND order_id = $2 AND action IN ('fulfillment.delivered', 'fulfillment.shipped')",
            vec![t.into(), id.into()],
        )
        .await?
        .first()
        .map(|r| r[0].opt_int())
        .transpose()?
        .flatten();
    let Some(since) = last else {
        return Ok(Err(LifecycleError::NothingShipped { current: from }));
    };
    if now_ms() > since + window_ms {
        return Ok(Err(LifecycleError::WindowClosed {
            days: window_ms / 86_400_000,
        }));
    }
    let counts = lines_in(tx, t, id).await?;
    let open = returns_of(tx, t, id).await?;
    for (i, (sku, q, _)) in lines.iter().enumerate() {
        if !order.lines.iter().any(|l| l.sku.as_str() == sku) {
            return Ok(Err(LifecycleError::NotInOrder {
                path: format!("lines[{i}].sku"),
                sku: sku.clone(),
            }));
        }
        let shipped: i64 = counts.iter().filter(|l| &l.1 == sku).map(|l| l.3).sum();
        // Units already asked back (received or not) count against what shipped.
        let asked: i64 = open
            .iter()
            .flat_map(|r| &r.lines)
            .filter(|l| &l.sku == sku)
            .map(|l| l.quantity)
            .sum();
        let left = shipped - asked;
        if *q > left {
            return Ok(Err(LifecycleError::TooMany {
                path: format!("lines[{i}].quantity"),
                sku: sku.clone(),
                asked: *q,
                left: left.max(0),
            }));
        }
    }
    let now = now_ms();
    let ret = ReturnView {
        id: format!("ret_{}", uuid::Uuid::now_v7().simple()),
        order_id: id.into(),
        rma_number: rma_number(),
        status: "requested".into(),
        lines: lines
            .iter()
            .map(|(sku, q, reason)| ReturnLine {
                sku: sku.clone(),
                quantity: *q,
                reason: reason.clone(),
                received: 0,
                condition: None,
                restocked: 0,
                refurbished: 0,
                written_off: 0,
            })
            .collect(),
        location_id: None,
        refunded: 0,
        created_at_ms: now,
    };
    tx.exec(
        "INSERT INTO returns (tenant_id, id, order_id, rma_number, status, lines, location_id, refunded, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, NULL, 0, $7, $7)",
        vec![
            t.into(),
            ret.id.as_str().into(),
            id.into(),
            ret.rma_number.as_str().into(),
            ret.status.as_str().into(),
            serde_json::to_string(&ret.lines).map_err(corrupt)?.into(),
            now.into(),
        ],
    )
    .await?;
    let detail =
        serde_json::json!({"return_id": ret.id, "rma_number": ret.rma_number, "lines": ret.lines});
    record(
        tx,
        t,
        id,
        actor,
        "return.requested",
        from,
        from,
        None,
        detail,
    )
    .await?;
    Ok(Ok(ret))
}

async fn receive_in(
    tx: &mut Tx<'_>,
    t: &str,
    id: &str,
    location: &str,
    lines: &[(String, i64, String)],
    actor: &Actor,
) -> Result<Outcome<Receipt>> {
    let Some((from, order, mut ret)) = locked_return(tx, t, id).await? else {
        return Ok(Err(LifecycleError::UnknownReturn(id.into())));
    };
    if ret.location_id.as_deref().is_some_and(|l| l != location) {
        return Ok(Err(LifecycleError::OtherNode {
            expected: ret.location_id.clone().unwrap_or_default(),
        }));
    }
    let known = tx
        .rows(
            "SELECT 1 FROM locations WHERE tenant_id = $1 AND id = $2",
            vec![t.into(), location.into()],
        )
        .await?;
    if known.is_empty() {
        return Ok(Err(LifecycleError::UnknownLocation(location.into())));
    }
    let mut units: BTreeMap<String, i64> = BTreeMap::new();
    for (i, (sku, q, condition)) in lines.iter().enumerate() {
        let Some(l) = ret.lines.iter_mut().find(|l| &l.sku == sku) else {
            return Ok(Err(LifecycleError::NotInOrder {
                path: format!("lines[{i}].sku"),
                sku: sku.clone(),
            }));
        };
        let left = l.quantity - l.received;
        if *q > left {
            return Ok(Err(LifecycleError::ReturnUnits {
                path: format!("lines[{i}].quantity"),
                sku: sku.clone(),
                asked: *q,
                left,
                what: "asked back on this return and not yet received",
            }));
        }
        l.received += q;
        l.condition = Some(condition.clone());
        *units.entry(sku.clone()).or_default() += q;
    }
    // The refund: the received units' value, counted from each line's first returned unit.
    let shares = lc::shares(&order);
    let counts = lines_in(tx, t, id).await?;
    let mut value = 0;
    for (sku, n) in &units {
        let (share, q) = shares.get(sku).copied().unwrap_or((0, 0));
        let returned = counts.iter().find(|l| &l.1 == sku).map_or(0, |l| l.5);
        value += lifecycle::chunk_value(share, q, returned, *n);
        lc::add_to_line(tx, t, ret.order_id.as_str(), sku.as_str(), "returned", *n).await?;
    }
    // Units given back in an exchange pay for the new ones first; only the rest is refunded.
    let value = crate::exchanges::absorb_refund(tx, t, &ret.id, value).await?;
    let tenders = tenders_in(tx, t, &ret.order_id).await?;
    let money: Vec<TenderMoney> = tenders.iter().map(|x| x.money).collect();
    let room: i64 = money.iter().map(|m| m.captured - m.refunded).sum();
    // Never more than was captured and not yet refunded (rounding can put a minor unit over).
    let value = value.min(room);
    let split = lifecycle::split_refund(&money, value)
        .ok_or_else(|| corrupt("a refund beyond what was captured"))?;
    let mut refunds = Vec::new();
    for (tender, amount) in tenders.iter().zip(split).filter(|(_, a)| *a > 0) {
        lc::add_money(tx, t, &ret.order_id, tender, "refunded", amount).await?;
        let op = PaymentOp {
            id: lc::new_op_id(),
            order_id: ret.order_id.clone(),
            tender_no: tender.tender_no,
            authorization_id: tender.authorization_id.clone(),
            kind: "refund".into(),
            amount,
            currency: tender.currency.clone(),
            subject: ret.id.clone(),
        };
        lc::insert_op(tx, t, &op).await?;
        refunds.push(op);
    }
    ret.refunded += value;
    ret.location_id = Some(location.into());
    ret.status = status_of(&ret).into();
    write_return(tx, t, &ret).await?;
    let to = settle_status(tx, t, &ret.order_id).await?;
    let detail = serde_json::json!({"return_id": ret.id, "location_id": location, "lines": lines.iter().map(|(s, q, c)| serde_json::json!({"sku": s, "quantity": q, "condition": c})).collect::<Vec<_>>(), "refunded": value});
    record(
        tx,
        t,
        &ret.order_id,
        actor,
        "return.received",
        from,
        to,
        None,
        detail.clone(),
    )
    .await?;
    if value > 0 {
        lc::event(tx, t, &ret.order_id, ordo_domain::events::EventType::REFUND_ISSUED, serde_json::json!({"return_id": ret.id, "amount": value, "currency": order.totals.total.currency.code()})).await?;
    }
    Ok(Ok(Receipt { ret, refunds }))
}

async fn disposition_in(
    tx: &mut Tx<'_>,
    t: &str,
    id: &str,
    lines: &[(String, i64, Disposition)],
    actor: &Actor,
) -> Result<Outcome<ReturnView>> {
    let Some((from, _, mut ret)) = locked_return(tx, t, id).await? else {
        return Ok(Err(LifecycleError::UnknownReturn(id.into())));
    };
    let mut restock: BTreeMap<String, i64> = BTreeMap::new();
    for (i, (sku, q, d)) in lines.iter().enumerate() {
        let Some(l) = ret.lines.iter_mut().find(|l| &l.sku == sku) else {
            return Ok(Err(LifecycleError::NotInOrder {
                path: format!("lines[{i}].sku"),
                sku: sku.clone(),
            }));
        };
        if l.received == 0 {
            return Ok(Err(LifecycleError::NotReceived {
                current: ret.status.clone(),
            }));
        }
        let left = l.received - l.dispositioned();
        if *q > left {
            return Ok(Err(LifecycleError::ReturnUnits {
                path: format!("lines[{i}].quantity"),
                sku: sku.clone(),
                asked: *q,
                left,
                what: "received on this return and not yet dispositioned",
            }));
        }
        match d {
            Disposition::Restock => {
                l.restocked += q;
                *restock.entry(sku.clone()).or_default() += q;
            }
            Disposition::Refurbish => l.refurbished += q,
            Disposition::WriteOff => l.written_off += q,
        }
    }
    ret.status = status_of(&ret).into();
    write_return(tx, t, &ret).await?;
    let location = ret
        .location_id
        .clone()
        .ok_or_else(|| corrupt("a dispositioned return without its node"))?;
    let mut changed = Vec::new();
    for (sku, q) in &restock {
        let now = now_ms();
        tx.exec(
            "INSERT INTO stock (tenant_id, sku, location_id, on_hand, reserved, updated_at_ms) VALUES ($1, $2, $3, 0, 0, $4) ON CONFLICT (tenant_id, sku, location_id) DO NOTHING",
            vec![t.into(), sku.as_str().into(), location.as_str().into(), now.into()],
        )
        .await?;
        changed.push(lc::move_stock(tx, t, sku, &location, *q, 0).await?);
        tx.exec(
            "INSERT INTO stock_adjustments (tenant_id, sku, location_id, delta, on_hand_after, reason, note, at_ms) VALUES ($1, $2, $3, $4, $5, 'return_restock', $6, $7)",
            vec![t.into(), sku.as_str().into(), location.as_str().into(), (*q).into(), changed.last().map_or(0, |c| c.on_hand).into(), ret.rma_number.as_str().into(), now.into()],
        )
        .await?;
    }
    let detail = serde_json::json!({"return_id": ret.id, "lines": lines.iter().map(|(s, q, d)| serde_json::json!({"sku": s, "quantity": q, "disposition": match d { Disposition::Restock => "restock", Disposition::Refurbish => "refurbish", Disposition::WriteOff => "write_off" }})).collect::<Vec<_>>()});
    record(
        tx,
        t,
        &ret.order_id,
        actor,
        "return.dispositioned",
        from,
        from,
        None,
        detail,
    )
    .await?;
    crate::events::inventory_updated(tx, t, &changed, "restocked").await?;
    let postgres = tx.locks_rows();
    crate::feed::append(tx, t, now_ms(), &changed, postgres).await?;
    Ok(Ok(ret))
}
