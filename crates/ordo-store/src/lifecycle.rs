//! An order after its placement, as the store keeps it: fulfilments, the units of each line
//! shipped and cancelled, each tender's money, the payment operations Ordo asked of the gateway,
//! and the timeline. Every transition is one write unit: it locks the order's row first (so the
//! transitions of one order run one at a time, on any number of processes), checks the move
//! against `ordo_domain::lifecycle`, and writes the new state with its timeline entry and outbox
//! event in the same commit. Stock rows are changed in (SKU, location) order; the change feed's
//! clock is the last lock.
//!
//! Money never moves inside a transaction: a ship first *claims* its fulfilment with pending
//! capture operations (a cancel or another payment operation on the order is then refused), the
//! service captures outside any transaction, and a second unit commits the shipment with what was
//! captured (or releases the claim). Voids of cancelled units are recorded with the cancellation
//! and sent to the gateway after its commit.

use crate::audit::AuditEntry;
use crate::feed::StockChangeRow;
use crate::sql::{Sql, Tx, Val};
use crate::{Result, Store, corrupt, now_ms};
use ordo_domain::events::EventType;
use ordo_domain::lifecycle::{
    self, CancelRefusal, Canceller, FulfillmentCommand, FulfillmentStatus, TenderMoney,
};
use ordo_domain::{Fulfillment, FulfillmentLine, LocationId, Order, OrderStatus, Sku};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Who acts: the timeline's actor (`staff:<id>`, `shopper:<id>`, `guest`, `channel:<id>`,
/// `system`) and, for staff and admins, the audit entry written with the change.
#[derive(Debug, Clone)]
pub struct Actor {
    pub label: String,
    pub audit: Option<AuditEntry>,
}

impl Actor {
    pub fn system() -> Actor {
        Actor {
            label: "system".into(),
            audit: None,
        }
    }
}

/// A fulfilment with the order it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct FulfillmentView {
    pub order_id: String,
    pub fulfillment: Fulfillment,
}

/// Why a transition was refused (nothing was written).
#[derive(Debug, Clone, thiserror::Error)]
pub enum LifecycleError {
    #[error("no fulfilment has id {0}")]
    UnknownFulfillment(String),
    #[error("no order has id {0}")]
    UnknownOrder(String),
    #[error("{0}")]
    Illegal(lifecycle::IllegalMove),
    #[error("{refusal}")]
    Cancel {
        current: OrderStatus,
        refusal: CancelRefusal,
    },
    #[error("a payment operation of this order is in progress; retry shortly")]
    PaymentInProgress,
    /// A quantity above what is left (`path` names the request field).
    #[error("{path}: {asked} units of {sku} asked, {left} left")]
    TooMany {
        path: String,
        sku: String,
        asked: i64,
        left: i64,
    },
    #[error("{path}: the order has no line with SKU {sku}")]
    NotInOrder { path: String, sku: String },
    #[error("the fulfilment is {}: it has not shipped", current.as_str())]
    NotShipped { current: FulfillmentStatus },
    /// More units than a return step has left (`what` says which).
    #[error("{path}: {asked} of {sku} asked, {left} {what}")]
    ReturnUnits {
        path: String,
        sku: String,
        asked: i64,
        left: i64,
        what: &'static str,
    },
    /// A return's units are dispositioned only once received.
    #[error("the return is {current}: receive its units first")]
    NotReceived { current: String },
    #[error("an exchange's units are picked in full; cancel the exchange's fulfilment instead")]
    ExchangeUnits,
    #[error("the exchange's price moved while it was being made; retry")]
    Repriced,
    #[error("no node can ship {sku}")]
    NoNode {
        sku: String,
        reason_codes: Vec<String>,
    },
    #[error("no return has id {0}")]
    UnknownReturn(String),
    #[error("no location has id {0}")]
    UnknownLocation(String),
    #[error("this return is being received at {expected}")]
    OtherNode { expected: String },
    #[error("nothing of this order has shipped yet")]
    NothingShipped { current: OrderStatus },
    #[error("the return window of {days} days has closed")]
    WindowClosed { days: i64 },
    /// The tenders cannot cover a capture (the authorizations ran out).
    #[error("the tenders hold {open} open, {needed} are needed")]
    Uncovered { needed: i64, open: i64 },
}

/// One tender's row.
#[derive(Debug, Clone, PartialEq)]
pub struct TenderRow {
    pub tender_no: i64,
    pub authorization_id: String,
    pub currency: String,
    pub money: TenderMoney,
}

/// A gateway call Ordo owes: its id is the gateway's idempotency key.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentOp {
    pub id: String,
    pub order_id: String,
    pub tender_no: i64,
    pub authorization_id: String,
    /// `capture`, `void` or `refund`.
    pub kind: String,
    pub amount: i64,
    pub currency: String,
    /// The fulfilment, cancellation or return it is for.
    pub subject: String,
}

/// What a ship's claim asks the gateway to capture.
#[derive(Debug, Clone, PartialEq)]
pub struct ShipClaim {
    pub order_id: String,
    pub value: i64,
    pub captures: Vec<PaymentOp>,
}

/// How the gateway answered one operation.
#[derive(Debug, Clone, PartialEq)]
pub enum OpOutcome {
    Succeeded { gateway_ref: String },
    Failed { reason: String },
}

/// What a cancellation did.
#[derive(Debug, Clone, PartialEq)]
pub struct Cancellation {
    pub order_id: String,
    pub status: OrderStatus,
    /// Units cancelled per SKU.
    pub units: Vec<(String, i64)>,
    /// The voids to send to the gateway now (recorded `pending`).
    pub voids: Vec<PaymentOp>,
}

/// One timeline entry.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TimelineEntry {
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub reason: Option<String>,
    pub detail: Option<serde_json::Value>,
}

/// What a transition unit reports back: its value, or the refusal.
type Outcome<T> = std::result::Result<T, LifecycleError>;

/// Runs `f` as a unit whose refusals (`Err(LifecycleError)`) roll back and travel beside it.
pub(crate) async fn transition<T, F>(store: &Store, tenant: &str, f: F) -> Result<Outcome<T>>
where
    T: Send + Clone + 'static,
    F: for<'a, 'c> Fn(&'a mut Tx<'c>) -> crate::unit::BoxFuture<'a, Result<Outcome<T>>>
        + Send
        + Sync
        + 'static,
{
    let slot: Arc<Mutex<Option<Outcome<T>>>> = Arc::new(Mutex::new(None));
    let seen = slot.clone();
    let f = Arc::new(f);
    store
        .unit(tenant, move |tx| {
            let (f, seen) = (f.clone(), seen.clone());
            Box::pin(async move {
                let out = f(tx).await?;
                let keep = out.is_ok();
                if let Ok(mut s) = seen.lock() {
                    *s = Some(out);
                }
                Ok(((), keep))
            })
        })
        .await?;
    let out = slot
        .lock()
        .ok()
        .and_then(|mut s| s.take())
        .ok_or_else(|| corrupt("a lifecycle unit gave no outcome"))?;
    Ok(out)
}

/// The order's row, locked (PostgreSQL) for the rest of the transaction: status and body.
pub(crate) async fn lock_order(
    tx: &mut Tx<'_>,
    tenant: &str,
    order_id: &str,
) -> Result<Option<(OrderStatus, Order)>> {
    let lock = if tx.locks_rows() { " FOR UPDATE" } else { "" };
    let rows = tx
        .rows(
            &format!("SELECT status, body FROM orders WHERE tenant_id = $1 AND id = $2{lock}"),
            vec![tenant.into(), order_id.into()],
        )
        .await?;
    let Some(r) = rows.first() else {
        return Ok(None);
    };
    let status = OrderStatus::parse(&r[0].text()?).ok_or_else(|| corrupt("order status"))?;
    let order: Order = serde_json::from_str(&r[1].text()?).map_err(corrupt)?;
    Ok(Some((status, order)))
}

fn fulfillment_from(r: &[Val]) -> Result<(String, Fulfillment, Option<String>)> {
    // id, order_id, location_id, address_index, status, lines, carrier, tracking_number, claim
    let lines: Vec<FulfillmentLine> = serde_json::from_str(&r[5].text()?).map_err(corrupt)?;
    Ok((
        r[1].text()?,
        Fulfillment {
            id: r[0].text()?,
            location_id: LocationId::parse(&r[2].text()?).map_err(|_| corrupt("location id"))?,
            address_index: r[3].int()? as usize,
            status: FulfillmentStatus::parse(&r[4].text()?)
                .ok_or_else(|| corrupt("fulfilment status"))?,
            lines,
            carrier: r[6].opt_text()?,
            tracking_number: r[7].opt_text()?,
        },
        r[8].opt_text()?,
    ))
}

const FULFILLMENT_COLUMNS: &str =
    "id, order_id, location_id, address_index, status, lines, carrier, tracking_number, claim";

/// The fulfilment `id` with its order, the order's row locked first (every transition of a
/// fulfilment starts here): (order id, order status, order, fulfilment, its claim).
async fn locked_fulfillment(
    tx: &mut Tx<'_>,
    tenant: &str,
    id: &str,
) -> Result<Outcome<(String, OrderStatus, Order, Fulfillment, Option<String>)>> {
    let Some(order_id) = order_of_fulfillment(tx, tenant, id).await? else {
        return Ok(Err(LifecycleError::UnknownFulfillment(id.into())));
    };
    let (status, order) = lock_order(tx, tenant, &order_id)
        .await?
        .ok_or_else(|| corrupt("a fulfilment without its order"))?;
    let (f, claim) = fulfillments_in(tx, tenant, &order_id)
        .await?
        .into_iter()
        .find(|(f, _)| f.id == id)
        .ok_or_else(|| corrupt("a fulfilment vanished under its order's lock"))?;
    Ok(Ok((order_id, status, order, f, claim)))
}

/// Adds `n` units to one of an order line's counters (`shipped`, `cancelled`, `returned`) — the
/// first line of that SKU.
pub(crate) async fn add_to_line(
    tx: &mut Tx<'_>,
    tenant: &str,
    order_id: &str,
    sku: &str,
    counter: &str,
    n: i64,
) -> Result<()> {
    if !matches!(counter, "shipped" | "cancelled" | "returned") {
        return Err(corrupt(format!("no line counter {counter}")));
    }
    tx.exec(
        &format!(
            "UPDATE order_lines SET {counter} = {counter} + $4 WHERE tenant_id = $1 AND order_id = $2 \
             AND line_no = (SELECT MIN(line_no) FROM order_lines WHERE tenant_id = $1 AND order_id = $2 AND sku = $3)"
        ),
        vec![tenant.into(), order_id.into(), sku.into(), n.into()],
    )
    .await?;
    Ok(())
}

/// Appends the changed stock rows to the feed, each row once as it stands last, in (SKU,
/// location) order: the feed's clock, the last lock of the transaction.
pub(crate) async fn append_changed(
    tx: &mut Tx<'_>,
    tenant: &str,
    changed: Vec<StockChangeRow>,
    reason: &str,
) -> Result<()> {
    let mut last: BTreeMap<(String, String), StockChangeRow> = BTreeMap::new();
    for r in changed {
        last.insert((r.sku.clone(), r.location_id.clone()), r);
    }
    let rows: Vec<StockChangeRow> = last.into_values().collect();
    crate::events::inventory_updated(tx, tenant, &rows, reason).await?;
    let postgres = tx.locks_rows();
    crate::feed::append(tx, tenant, now_ms(), &rows, postgres).await
}

async fn order_of_fulfillment(
    tx: &mut Tx<'_>,
    tenant: &str,
    ful_id: &str,
) -> Result<Option<String>> {
    let rows = tx
        .rows(
            "SELECT order_id FROM fulfillments WHERE tenant_id = $1 AND id = $2",
            vec![tenant.into(), ful_id.into()],
        )
        .await?;
    rows.first().map(|r| r[0].text()).transpose()
}

/// The order's fulfilments (id order: creation order) with their claims.
pub(crate) async fn fulfillments_in<S: Sql>(
    tx: &mut S,
    tenant: &str,
    order_id: &str,
) -> Result<Vec<(Fulfillment, Option<String>)>> {
    tx.rows(
        &format!(
            "SELECT {FULFILLMENT_COLUMNS} FROM fulfillments WHERE tenant_id = $1 AND order_id = $2 ORDER BY id"
        ),
        vec![tenant.into(), order_id.into()],
    )
    .await?
    .iter()
    .map(|r| fulfillment_from(r).map(|(_, f, c)| (f, c)))
    .collect()
}

/// Each line's (line_no, sku, quantity, shipped, cancelled, returned).
pub(crate) async fn lines_in<S: Sql>(
    tx: &mut S,
    tenant: &str,
    order_id: &str,
) -> Result<Vec<(i64, String, i64, i64, i64, i64)>> {
    tx.rows(
        "SELECT line_no, sku, quantity, shipped, cancelled, returned FROM order_lines WHERE tenant_id = $1 AND order_id = $2 ORDER BY line_no",
        vec![tenant.into(), order_id.into()],
    )
    .await?
    .iter()
    .map(|r| Ok((r[0].int()?, r[1].text()?, r[2].int()?, r[3].int()?, r[4].int()?, r[5].int()?)))
    .collect()
}

pub(crate) async fn tenders_in<S: Sql>(
    tx: &mut S,
    tenant: &str,
    order_id: &str,
) -> Result<Vec<TenderRow>> {
    tx.rows(
        "SELECT tender_no, authorization_id, currency, amount, captured, refunded, voided FROM order_payments WHERE tenant_id = $1 AND order_id = $2 ORDER BY tender_no",
        vec![tenant.into(), order_id.into()],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(TenderRow {
            tender_no: r[0].int()?,
            authorization_id: r[1].text()?,
            currency: r[2].text()?,
            money: TenderMoney {
                authorized: r[3].int()?,
                captured: r[4].int()?,
                refunded: r[5].int()?,
                voided: r[6].int()?,
            },
        })
    })
    .collect()
}

async fn payment_in_progress(tx: &mut Tx<'_>, tenant: &str, order_id: &str) -> Result<bool> {
    Ok(!tx
        .rows(
            "SELECT 1 FROM payment_operations WHERE tenant_id = $1 AND order_id = $2 AND kind = 'capture' AND status IN ('pending', 'unknown')",
            vec![tenant.into(), order_id.into()],
        )
        .await?
        .is_empty())
}

/// Recomputes the order's status from its fulfilments and lines, stores it, returns it.
pub(crate) async fn settle_status(
    tx: &mut Tx<'_>,
    tenant: &str,
    order_id: &str,
) -> Result<OrderStatus> {
    let fuls = fulfillments_in(tx, tenant, order_id).await?;
    let lines = lines_in(tx, tenant, order_id).await?;
    let statuses: Vec<FulfillmentStatus> = fuls.iter().map(|(f, _)| f.status).collect();
    let shipped: i64 = lines.iter().map(|l| l.3).sum();
    let returned: i64 = lines.iter().map(|l| l.5).sum();
    let status = lifecycle::order_status(&statuses, shipped, returned);
    tx.exec(
        "UPDATE orders SET status = $3 WHERE tenant_id = $1 AND id = $2",
        vec![tenant.into(), order_id.into(), status.as_str().into()],
    )
    .await?;
    Ok(status)
}

/// Appends a timeline entry, an outbox event and (staff, admins) an audit entry.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn record(
    tx: &mut Tx<'_>,
    tenant: &str,
    order_id: &str,
    actor: &Actor,
    action: &str,
    from: OrderStatus,
    to: OrderStatus,
    reason: Option<&str>,
    detail: serde_json::Value,
) -> Result<()> {
    let now = now_ms();
    tx.exec(
        "INSERT INTO order_timeline (tenant_id, order_id, seq, at_ms, actor, action, from_status, to_status, reason, detail) \
         SELECT $1, $2, COALESCE(MAX(seq), 0) + 1, $3, $4, $5, $6, $7, $8, $9 FROM order_timeline WHERE tenant_id = $1 AND order_id = $2",
        vec![
            tenant.into(),
            order_id.into(),
            now.into(),
            actor.label.as_str().into(),
            action.into(),
            from.as_str().into(),
            to.as_str().into(),
            reason.into(),
            detail.to_string().into(),
        ],
    )
    .await?;
    let payload = serde_json::json!({
        "order_id": order_id, "action": action, "from": from.as_str(), "to": to.as_str(),
        "actor": actor.label, "reason": reason, "detail": detail,
    });
    let kind = EventType::of_action(action)
        .ok_or_else(|| corrupt(format!("no event type for the action {action}")))?;
    crate::events::append_for_order(tx, tenant, order_id, kind, &payload).await?;
    if let Some(who) = &actor.audit {
        crate::audit::append(
            tx,
            tenant,
            who,
            action,
            &format!("order:{order_id}"),
            Some(serde_json::json!({"status": from.as_str()}).to_string()),
            Some(
                serde_json::json!({"status": to.as_str(), "reason": reason, "detail": detail})
                    .to_string(),
            ),
        )
        .await?;
    }
    Ok(())
}

/// Appends an outbox event of the order (no timeline entry): e.g. `refund.issued`.
pub(crate) async fn event(
    tx: &mut Tx<'_>,
    tenant: &str,
    order_id: &str,
    kind: EventType,
    data: serde_json::Value,
) -> Result<()> {
    crate::events::append_for_order(tx, tenant, order_id, kind, &data).await
}

/// Changes one stock row by (on-hand, reserved) deltas, keeping its invariants; the row after.
pub(crate) async fn move_stock(
    tx: &mut Tx<'_>,
    tenant: &str,
    sku: &str,
    location: &str,
    on_hand: i64,
    reserved: i64,
) -> Result<StockChangeRow> {
    let rows = tx
        .rows(
            "UPDATE stock SET on_hand = on_hand + $4, reserved = reserved + $5, updated_at_ms = $6 \
             WHERE tenant_id = $1 AND sku = $2 AND location_id = $3 AND reserved + $5 >= 0 AND on_hand + $4 >= reserved + $5 + held \
             RETURNING on_hand, reserved, held, safety_stock",
            vec![
                tenant.into(),
                sku.into(),
                location.into(),
                on_hand.into(),
                reserved.into(),
                now_ms().into(),
            ],
        )
        .await?;
    let r = rows.first().ok_or_else(|| {
        corrupt(format!(
            "stock of {sku} at {location} cannot move by on-hand {on_hand}, reserved {reserved}"
        ))
    })?;
    Ok(StockChangeRow {
        sku: sku.into(),
        location_id: location.into(),
        on_hand: r[0].int()?,
        reserved: r[1].int()?,
        held: r[2].int()?,
        safety_stock: r[3].int()?,
    })
}

/// Takes `units` (sku, location, quantity) out of the order's allocations and the stock rows'
/// reserved (and, when `leave`, out of on-hand: the units left the building), in (SKU, location)
/// order; returns the rows as they now stand, for the change feed.
async fn take_units(
    tx: &mut Tx<'_>,
    tenant: &str,
    order_id: &str,
    units: &[(String, String, i64)],
    leave: bool,
) -> Result<Vec<StockChangeRow>> {
    let mut per: BTreeMap<(String, String), i64> = BTreeMap::new();
    for (sku, loc, q) in units {
        *per.entry((sku.clone(), loc.clone())).or_default() += q;
    }
    let mut changed = Vec::new();
    for ((sku, loc), q) in per.into_iter().filter(|(_, q)| *q > 0) {
        let n = tx
            .exec(
                "UPDATE order_allocations SET quantity = quantity - $5 WHERE tenant_id = $1 AND order_id = $2 AND sku = $3 AND location_id = $4 AND quantity >= $5",
                vec![tenant.into(), order_id.into(), sku.as_str().into(), loc.as_str().into(), q.into()],
            )
            .await?;
        if n != 1 {
            return Err(corrupt(format!(
                "order {order_id} has fewer than {q} units of {sku} allocated at {loc}"
            )));
        }
        changed.push(move_stock(tx, tenant, &sku, &loc, if leave { -q } else { 0 }, -q).await?);
    }
    Ok(changed)
}

/// `take_units`, then the rows to the change feed (the last lock of the transaction).
async fn release_units(
    tx: &mut Tx<'_>,
    tenant: &str,
    order_id: &str,
    units: &[(String, String, i64)],
    leave: bool,
) -> Result<()> {
    let changed = take_units(tx, tenant, order_id, units, leave).await?;
    let reason = if leave { "shipped" } else { "released" };
    crate::events::inventory_updated(tx, tenant, &changed, reason).await?;
    let postgres = tx.locks_rows();
    crate::feed::append(tx, tenant, now_ms(), &changed, postgres).await
}

/// Sets a fulfilment's status, lines and claim.
pub(crate) async fn write_fulfillment(
    tx: &mut Tx<'_>,
    tenant: &str,
    f: &Fulfillment,
    claim: Option<&str>,
) -> Result<()> {
    tx.exec(
        "UPDATE fulfillments SET status = $3, lines = $4, carrier = $5, tracking_number = $6, claim = $7, updated_at_ms = $8 WHERE tenant_id = $1 AND id = $2",
        vec![
            tenant.into(),
            f.id.as_str().into(),
            f.status.as_str().into(),
            serde_json::to_string(&f.lines).map_err(corrupt)?.into(),
            f.carrier.as_deref().into(),
            f.tracking_number.as_deref().into(),
            claim.into(),
            now_ms().into(),
        ],
    )
    .await?;
    Ok(())
}

/// The share of the order total each line carries (`lifecycle::line_shares`), by SKU.
pub(crate) fn shares(order: &Order) -> BTreeMap<String, (i64, i64)> {
    let weights: Vec<i64> = order.lines.iter().map(|l| l.line_total.amount).collect();
    let qty: Vec<i64> = order.lines.iter().map(|l| l.quantity).collect();
    let s = lifecycle::line_shares(&weights, &qty, order.totals.total.amount);
    order
        .lines
        .iter()
        .zip(s)
        .map(|(l, s)| (l.sku.to_string(), (s, l.quantity)))
        .collect()
}

/// The value of deciding `units` (sku → quantity) now, given each line's decided units.
pub(crate) fn value_of(
    order: &Order,
    lines: &[(i64, String, i64, i64, i64, i64)],
    units: &BTreeMap<String, i64>,
) -> i64 {
    let shares = shares(order);
    units
        .iter()
        .map(|(sku, n)| {
            let (share, q) = shares.get(sku).copied().unwrap_or((0, 0));
            let decided = lines.iter().find(|l| &l.1 == sku).map_or(0, |l| l.3 + l.4);
            lifecycle::chunk_value(share, q, decided, *n)
        })
        .sum()
}

pub(crate) fn new_op_id() -> String {
    format!("pop_{}", uuid::Uuid::now_v7().simple())
}

pub(crate) async fn insert_op(tx: &mut Tx<'_>, tenant: &str, op: &PaymentOp) -> Result<()> {
    let now = now_ms();
    tx.exec(
        "INSERT INTO payment_operations (tenant_id, id, order_id, tender_no, kind, amount, currency, status, subject, created_at_ms, updated_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $9)",
        vec![
            tenant.into(),
            op.id.as_str().into(),
            op.order_id.as_str().into(),
            op.tender_no.into(),
            op.kind.as_str().into(),
            op.amount.into(),
            op.currency.as_str().into(),
            op.subject.as_str().into(),
            now.into(),
        ],
    )
    .await?;
    Ok(())
}

/// Adds to one tender's money column and re-derives its status.
pub(crate) async fn add_money(
    tx: &mut Tx<'_>,
    tenant: &str,
    order_id: &str,
    tender: &TenderRow,
    column: &str,
    amount: i64,
) -> Result<()> {
    let mut m = tender.money;
    match column {
        "captured" => m.captured += amount,
        "refunded" => m.refunded += amount,
        "voided" => m.voided += amount,
        _ => return Err(corrupt(format!("no money column {column}"))),
    }
    if m.captured + m.voided > m.authorized || m.refunded > m.captured {
        return Err(corrupt(format!(
            "tender {} of {order_id} would break its money rules",
            tender.tender_no
        )));
    }
    tx.exec(
        "UPDATE order_payments SET captured = $4, refunded = $5, voided = $6, status = $7 WHERE tenant_id = $1 AND order_id = $2 AND tender_no = $3",
        vec![
            tenant.into(),
            order_id.into(),
            tender.tender_no.into(),
            m.captured.into(),
            m.refunded.into(),
            m.voided.into(),
            m.status().as_str().into(),
        ],
    )
    .await?;
    Ok(())
}

/// The voids owed when `value` of the order's open authorizations will never be captured:
/// recorded on the tenders now, sent to the gateway after the commit.
async fn void_value(
    tx: &mut Tx<'_>,
    tenant: &str,
    order_id: &str,
    subject: &str,
    value: i64,
) -> Result<Vec<PaymentOp>> {
    if value <= 0 {
        return Ok(vec![]);
    }
    let tenders = tenders_in(tx, tenant, order_id).await?;
    let money: Vec<TenderMoney> = tenders.iter().map(|t| t.money).collect();
    let split = lifecycle::split_capture(&money, value)
        .ok_or_else(|| corrupt(format!("order {order_id} cannot void {value}")))?;
    let mut ops = Vec::new();
    for (t, amount) in tenders.iter().zip(split).filter(|(_, a)| *a > 0) {
        add_money(tx, tenant, order_id, t, "voided", amount).await?;
        let op = PaymentOp {
            id: new_op_id(),
            order_id: order_id.into(),
            tender_no: t.tender_no,
            authorization_id: t.authorization_id.clone(),
            kind: "void".into(),
            amount,
            currency: t.currency.clone(),
            subject: subject.into(),
        };
        insert_op(tx, tenant, &op).await?;
        ops.push(op);
    }
    Ok(ops)
}

impl Store {
    /// A fulfilment by id.
    pub async fn fulfillment(&self, tenant: &str, id: &str) -> Result<Option<FulfillmentView>> {
        let rows = self
            .read_rows(
                tenant,
                &format!(
                    "SELECT {FULFILLMENT_COLUMNS} FROM fulfillments WHERE tenant_id = $1 AND id = $2"
                ),
                vec![tenant.into(), id.into()],
            )
            .await?;
        rows.first()
            .map(|r| {
                fulfillment_from(r).map(|(order_id, fulfillment, _)| FulfillmentView {
                    order_id,
                    fulfillment,
                })
            })
            .transpose()
    }

    /// Fulfilments at a location in one of `statuses`, oldest first, after the cursor (an id).
    pub async fn fulfillments_at(
        &self,
        tenant: &str,
        location: &str,
        statuses: &[FulfillmentStatus],
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<FulfillmentView>> {
        let list: Vec<String> = statuses
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        let rows = self
            .read_rows(
                tenant,
                &format!(
                    "SELECT {FULFILLMENT_COLUMNS} FROM fulfillments WHERE tenant_id = $1 AND location_id = $2 AND status IN ({}) AND id > $3 ORDER BY id LIMIT $4",
                    list.join(", ")
                ),
                vec![tenant.into(), location.into(), after.unwrap_or("").into(), limit.into()],
            )
            .await?;
        rows.iter()
            .map(|r| {
                fulfillment_from(r).map(|(order_id, fulfillment, _)| FulfillmentView {
                    order_id,
                    fulfillment,
                })
            })
            .collect()
    }

    /// The order's live state laid over its placement body: status, fulfilments, each line's
    /// shipped, cancelled and returned units, each tender's money.
    pub(crate) async fn overlay(
        &self,
        tenant: &str,
        order: &mut Order,
        status: &str,
    ) -> Result<()> {
        order.status = OrderStatus::parse(status).ok_or_else(|| corrupt("order status"))?;
        let id = order.id.to_string();
        let mut conn = self.conn(tenant).await?;
        let fuls = fulfillments_in(&mut *conn, tenant, &id).await?;
        if !fuls.is_empty() {
            order.fulfillments = fuls.into_iter().map(|(f, _)| f).collect();
        }
        for (line_no, _, _, shipped, cancelled, returned) in
            lines_in(&mut *conn, tenant, &id).await?
        {
            if let Some(l) = order.lines.iter_mut().find(|l| l.line_no == line_no) {
                (l.shipped, l.cancelled, l.returned) = (shipped, cancelled, returned);
            }
        }
        for t in tenders_in(&mut *conn, tenant, &id).await? {
            // A tender added after placement (an exchange's difference): same card as the first.
            if order.payments.len() == t.tender_no as usize {
                if let Some(first) = order.payments.first().cloned() {
                    let currency = first.amount.currency;
                    order.payments.push(ordo_domain::payment::Tender {
                        amount: ordo_domain::Money::new(t.money.authorized, currency),
                        authorization_id: t.authorization_id.clone(),
                        ..first
                    });
                }
            }
            if let Some(p) = order.payments.get_mut(t.tender_no as usize) {
                let c = p.amount.currency;
                p.status = t.money.status();
                p.authorized = Some(ordo_domain::Money::new(t.money.authorized, c));
                p.captured = Some(ordo_domain::Money::new(t.money.captured, c));
                p.refunded = Some(ordo_domain::Money::new(t.money.refunded, c));
                p.voided = Some(ordo_domain::Money::new(t.money.voided, c));
            }
        }
        Ok(())
    }

    /// Picks, packs or delivers a fulfilment (shipping takes money: `claim_ship`).
    pub async fn step_fulfillment(
        &self,
        tenant: &str,
        ful_id: &str,
        command: FulfillmentCommand,
        actor: &Actor,
    ) -> Result<Outcome<FulfillmentView>> {
        if matches!(
            command,
            FulfillmentCommand::Ship | FulfillmentCommand::Cancel
        ) {
            return Err(corrupt("ship and cancel move money: use their own paths"));
        }
        let (t, id, actor) = (tenant.to_string(), ful_id.to_string(), actor.clone());
        transition(self, tenant, move |tx| {
            let (t, id, actor) = (t.clone(), id.clone(), actor.clone());
            Box::pin(async move {
                let (order_id, from, _, mut f, claim) =
                    match locked_fulfillment(tx, &t, &id).await? {
                        Ok(x) => x,
                        Err(e) => return Ok(Err(e)),
                    };
                f.status = match lifecycle::step(f.status, command) {
                    Ok(s) => s,
                    Err(e) => return Ok(Err(LifecycleError::Illegal(e))),
                };
                write_fulfillment(tx, &t, &f, claim.as_deref()).await?;
                let to = settle_status(tx, &t, &order_id).await?;
                let action = format!("fulfillment.{}", f.status.as_str());
                let detail = serde_json::json!({"fulfillment_id": f.id, "location_id": f.location_id.as_str()});
                record(tx, &t, &order_id, &actor, &action, from, to, None, detail).await?;
                Ok(Ok(FulfillmentView { order_id, fulfillment: f }))
            })
        })
        .await
    }

    /// Claims a packed fulfilment for shipping: records its carrier and tracking number and the
    /// captures its value needs (pending). While the claim stands, no other payment operation or
    /// cancellation of the order runs.
    pub async fn claim_ship(
        &self,
        tenant: &str,
        ful_id: &str,
        carrier: &str,
        tracking_number: &str,
    ) -> Result<Outcome<ShipClaim>> {
        let (t, id) = (tenant.to_string(), ful_id.to_string());
        let (carrier, tracking) = (carrier.to_string(), tracking_number.to_string());
        transition(self, tenant, move |tx| {
            let (t, id, carrier, tracking) =
                (t.clone(), id.clone(), carrier.clone(), tracking.clone());
            Box::pin(async move {
                let (order_id, _, order, mut f, claim) =
                    match locked_fulfillment(tx, &t, &id).await? {
                        Ok(x) => x,
                        Err(e) => return Ok(Err(e)),
                    };
                if let Err(e) = lifecycle::step(f.status, FulfillmentCommand::Ship) {
                    return Ok(Err(LifecycleError::Illegal(e)));
                }
                if claim.is_some() || payment_in_progress(tx, &t, &order_id).await? {
                    return Ok(Err(LifecycleError::PaymentInProgress));
                }
                let lines = lines_in(tx, &t, &order_id).await?;
                let units: BTreeMap<String, i64> = f
                    .lines
                    .iter()
                    .map(|l| (l.sku.to_string(), l.quantity))
                    .collect();
                let mut value = value_of(&order, &lines, &units);
                let tenders = tenders_in(tx, &t, &order_id).await?;
                let mut money: Vec<TenderMoney> = tenders.iter().map(|t| t.money).collect();
                // An exchange's new units: they capture the difference, on its own tender only.
                if let Some((difference, tender)) =
                    crate::exchanges::exchange_of_fulfillment(tx, &t, &id).await?
                {
                    value = difference.max(0);
                    for (m, tr) in money.iter_mut().zip(&tenders) {
                        if Some(tr.tender_no) != tender {
                            m.authorized = m.captured + m.voided;
                        }
                    }
                }
                let Some(split) = lifecycle::split_capture(&money, value) else {
                    let open = money.iter().map(TenderMoney::open).sum();
                    return Ok(Err(LifecycleError::Uncovered {
                        needed: value,
                        open,
                    }));
                };
                let mut captures = Vec::new();
                for (tr, amount) in tenders.iter().zip(split).filter(|(_, a)| *a > 0) {
                    let op = PaymentOp {
                        id: new_op_id(),
                        order_id: order_id.clone(),
                        tender_no: tr.tender_no,
                        authorization_id: tr.authorization_id.clone(),
                        kind: "capture".into(),
                        amount,
                        currency: tr.currency.clone(),
                        subject: f.id.clone(),
                    };
                    insert_op(tx, &t, &op).await?;
                    captures.push(op);
                }
                f.carrier = Some(carrier);
                f.tracking_number = Some(tracking);
                let claim_id = format!(
                    "ship:{}",
                    captures.first().map_or("free", |c| c.id.as_str())
                );
                write_fulfillment(tx, &t, &f, Some(&claim_id)).await?;
                Ok(Ok(ShipClaim {
                    order_id,
                    value,
                    captures,
                }))
            })
        })
        .await
    }

    /// Finishes a ship claim with the gateway's answers (one for every capture of the claim,
    /// else nothing changes: `PaymentInProgress`). All captured: the fulfilment ships (its units
    /// leave on-hand and reserved at its node, the tenders show the capture). Any failed: the
    /// claim is released and the fulfilment stays packed; what other tenders captured is booked
    /// and given back by refunds recorded here (pending), which the caller sends.
    pub async fn finish_ship(
        &self,
        tenant: &str,
        ful_id: &str,
        outcomes: &[(String, OpOutcome)],
        actor: &Actor,
    ) -> Result<Outcome<(FulfillmentView, Vec<PaymentOp>)>> {
        let (t, id, outcomes, actor) = (
            tenant.to_string(),
            ful_id.to_string(),
            outcomes.to_vec(),
            actor.clone(),
        );
        transition(self, tenant, move |tx| {
            let (t, id, outcomes, actor) = (t.clone(), id.clone(), outcomes.clone(), actor.clone());
            Box::pin(async move {
                let (order_id, from, _, mut f, claim) =
                    match locked_fulfillment(tx, &t, &id).await? {
                        Ok(x) => x,
                        Err(e) => return Ok(Err(e)),
                    };
                if claim.is_none() || f.status != FulfillmentStatus::Packed {
                    // Finished already (by a retry or recovery).
                    return Ok(Ok((FulfillmentView { order_id, fulfillment: f }, vec![])));
                }
                let ops = tx
                    .rows(
                        "SELECT id, tender_no, amount, currency FROM payment_operations WHERE tenant_id = $1 AND order_id = $2 AND subject = $3 AND kind = 'capture' AND status IN ('pending', 'unknown') ORDER BY id",
                        vec![t.as_str().into(), order_id.as_str().into(), id.as_str().into()],
                    )
                    .await?;
                let answer = |op: &str| outcomes.iter().find(|(o, _)| o == op).map(|(_, a)| a.clone());
                let mut answers = Vec::with_capacity(ops.len());
                for r in &ops {
                    match answer(&r[0].text()?) {
                        Some(a) => answers.push(a),
                        // An operation without its answer: settled later, never guessed.
                        None => return Ok(Err(LifecycleError::PaymentInProgress)),
                    }
                }
                let all_ok = answers.iter().all(|a| matches!(a, OpOutcome::Succeeded { .. }));
                let now = now_ms();
                let mut refunds = Vec::new();
                for (r, a) in ops.iter().zip(&answers) {
                    let op = r[0].text()?;
                    let (status, gref, reason) = match a {
                        OpOutcome::Succeeded { gateway_ref } => ("succeeded", Some(gateway_ref.clone()), None),
                        OpOutcome::Failed { reason } => ("failed", None, Some(reason.clone())),
                    };
                    tx.exec(
                        "UPDATE payment_operations SET status = $3, gateway_ref = $4, reason = $5, updated_at_ms = $6 WHERE tenant_id = $1 AND id = $2",
                        vec![t.as_str().into(), op.as_str().into(), status.into(), gref.clone().into(), reason.into(), now.into()],
                    )
                    .await?;
                    if status != "succeeded" {
                        continue;
                    }
                    let (tender_no, amount) = (r[1].int()?, r[2].int()?);
                    let tender = tenders_in(tx, &t, &order_id)
                        .await?
                        .into_iter()
                        .find(|x| x.tender_no == tender_no)
                        .ok_or_else(|| corrupt("a capture of an unknown tender"))?;
                    // The money moved: on the books either way.
                    add_money(tx, &t, &order_id, &tender, "captured", amount).await?;
                    if !all_ok {
                        // The shipment does not go: what this tender captured goes back.
                        let tender = tenders_in(tx, &t, &order_id)
                            .await?
                            .into_iter()
                            .find(|x| x.tender_no == tender_no)
                            .ok_or_else(|| corrupt("a capture of an unknown tender"))?;
                        add_money(tx, &t, &order_id, &tender, "refunded", amount).await?;
                        let refund = PaymentOp {
                            id: new_op_id(),
                            order_id: order_id.clone(),
                            tender_no,
                            authorization_id: tender.authorization_id.clone(),
                            kind: "refund".into(),
                            amount,
                            currency: r[3].text()?,
                            subject: format!("failed_ship:{id}"),
                        };
                        insert_op(tx, &t, &refund).await?;
                        refunds.push(refund);
                    }
                }
                if !all_ok {
                    write_fulfillment(tx, &t, &f, None).await?;
                    return Ok(Ok((FulfillmentView { order_id, fulfillment: f }, refunds)));
                }
                f.status = FulfillmentStatus::Shipped;
                write_fulfillment(tx, &t, &f, None).await?;
                // An exchange's new units are not the order's lines.
                if crate::exchanges::exchange_of_fulfillment(tx, &t, &id).await?.is_none() {
                    for l in &f.lines {
                        add_to_line(tx, t.as_str(), order_id.as_str(), l.sku.as_str(), "shipped", l.quantity).await?;
                    }
                }
                let to = settle_status(tx, &t, &order_id).await?;
                let detail = serde_json::json!({
                    "fulfillment_id": f.id, "location_id": f.location_id.as_str(),
                    "carrier": f.carrier, "tracking_number": f.tracking_number,
                });
                record(tx, &t, &order_id, &actor, "fulfillment.shipped", from, to, None, detail).await?;
                let units: Vec<(String, String, i64)> = f
                    .lines
                    .iter()
                    .map(|l| (l.sku.to_string(), f.location_id.to_string(), l.quantity))
                    .collect();
                release_units(tx, &t, &order_id, &units, true).await?;
                Ok(Ok((FulfillmentView { order_id, fulfillment: f }, vec![])))
            })
        })
        .await
    }

    /// Cancels the order's units not yet shipped: all of them (`lines` empty) or the given
    /// quantities, taken from its unshipped fulfilments in creation order. The stock is released,
    /// the cancelled units' value is voided on the tenders (the voids come back to be sent).
    pub async fn cancel_units(
        &self,
        tenant: &str,
        order_id: &str,
        who: Canceller,
        lines: &[(Sku, i64)],
        reason: &str,
        actor: &Actor,
    ) -> Result<Outcome<Cancellation>> {
        let (t, id, lines, reason, actor) = (
            tenant.to_string(),
            order_id.to_string(),
            lines.to_vec(),
            reason.to_string(),
            actor.clone(),
        );
        transition(self, tenant, move |tx| {
            let (t, id, lines, reason, actor) = (t.clone(), id.clone(), lines.clone(), reason.clone(), actor.clone());
            Box::pin(async move {
                let Some((from, order)) = lock_order(tx, &t, &id).await? else {
                    return Ok(Err(LifecycleError::UnknownOrder(id)));
                };
                if let Err(refusal) = lifecycle::may_cancel(from, who, !lines.is_empty()) {
                    return Ok(Err(LifecycleError::Cancel { current: from, refusal }));
                }
                let all = fulfillments_in(tx, &t, &id).await?;
                if all.iter().any(|(_, c)| c.is_some()) || payment_in_progress(tx, &t, &id).await? {
                    return Ok(Err(LifecycleError::PaymentInProgress));
                }
                let open: Vec<Fulfillment> = all
                    .into_iter()
                    .filter(|(f, _)| lifecycle::step(f.status, FulfillmentCommand::Cancel).is_ok())
                    .map(|(f, _)| f)
                    .collect();
                // An exchange's fulfilments are not the order's lines: cancelled whole (with the
                // whole order), their difference voided; never valued as order lines.
                let (mut fuls, mut exch) = (Vec::new(), Vec::new());
                for f in open {
                    if crate::exchanges::exchange_of_fulfillment(tx, &t, &f.id).await?.is_some() {
                        exch.push(f);
                    } else {
                        fuls.push(f);
                    }
                }
                if !lines.is_empty() {
                    exch.clear();
                }
                // What to cancel, per SKU.
                let mut want: BTreeMap<String, i64> = BTreeMap::new();
                if lines.is_empty() {
                    for f in &fuls {
                        for l in &f.lines {
                            *want.entry(l.sku.to_string()).or_default() += l.quantity;
                        }
                    }
                } else {
                    for (i, (sku, q)) in lines.iter().enumerate() {
                        if !order.lines.iter().any(|l| &l.sku == sku) {
                            return Ok(Err(LifecycleError::NotInOrder { path: format!("lines[{i}].sku"), sku: sku.to_string() }));
                        }
                        *want.entry(sku.to_string()).or_default() += q;
                    }
                    for (i, (sku, _)) in lines.iter().enumerate() {
                        let left: i64 = fuls.iter().flat_map(|f| &f.lines).filter(|l| &l.sku == sku).map(|l| l.quantity).sum();
                        let asked = want[sku.as_str()];
                        if asked > left {
                            return Ok(Err(LifecycleError::TooMany { path: format!("lines[{i}].quantity"), sku: sku.to_string(), asked, left }));
                        }
                    }
                }
                let lines_now = lines_in(tx, &t, &id).await?;
                let value = value_of(&order, &lines_now, &want);
                // Take the units out of the fulfilments, first made first.
                let mut released: Vec<(String, String, i64)> = Vec::new();
                let mut left = want.clone();
                for f in fuls.iter_mut() {
                    for l in f.lines.iter_mut() {
                        let w = left.get_mut(l.sku.as_str()).map_or(0, |w| {
                            let take = (*w).min(l.quantity);
                            *w -= take;
                            take
                        });
                        if w > 0 {
                            l.quantity -= w;
                            released.push((l.sku.to_string(), f.location_id.to_string(), w));
                        }
                    }
                    let touched = released.iter().any(|(_, loc, _)| *loc == f.location_id.as_str());
                    f.lines.retain(|l| l.quantity > 0);
                    if f.lines.is_empty() {
                        f.status = FulfillmentStatus::Cancelled;
                    }
                    if touched || f.status == FulfillmentStatus::Cancelled {
                        write_fulfillment(tx, &t, f, None).await?;
                    }
                }
                for (sku, q) in want.iter().filter(|(_, q)| **q > 0) {
                    add_to_line(tx, t.as_str(), id.as_str(), sku.as_str(), "cancelled", *q).await?;
                }
                let subject = format!("cancel:{}", new_op_id());
                let mut voids = void_value(tx, &t, &id, &subject, value).await?;
                // An exchange's fulfilment cancelled: its units released, its difference voided.
                for f in exch.iter_mut() {
                    for l in &f.lines {
                        released.push((l.sku.to_string(), f.location_id.to_string(), l.quantity));
                    }
                    f.lines.clear();
                    f.status = FulfillmentStatus::Cancelled;
                    write_fulfillment(tx, &t, f, None).await?;
                    voids.extend(crate::exchanges::void_exchange_tender(tx, &t, &id, &f.id).await?);
                }
                let to = settle_status(tx, &t, &id).await?;
                let units: Vec<(String, i64)> = want.into_iter().filter(|(_, q)| *q > 0).collect();
                let detail = serde_json::json!({
                    "lines": units.iter().map(|(s, q)| serde_json::json!({"sku": s, "quantity": q})).collect::<Vec<_>>(),
                    "voided": value,
                });
                let action = if to == OrderStatus::Cancelled { "order.cancelled" } else { "order.lines_cancelled" };
                record(tx, &t, &id, &actor, action, from, to, Some(&reason), detail).await?;
                release_units(tx, &t, &id, &released, false).await?;
                Ok(Ok(Cancellation { order_id: id, status: to, units, voids }))
            })
        })
        .await
    }

    /// Records the gateway's answer to an operation sent after its commit (a void or a refund).
    /// A refund the gateway refused did not give the money back: it comes off the tender's and
    /// the return's books again, and the timeline says so (`refund.failed`), for staff to settle.
    pub async fn finish_payment_op(
        &self,
        tenant: &str,
        op_id: &str,
        outcome: &OpOutcome,
    ) -> Result<()> {
        let (status, gref, reason) = match outcome {
            OpOutcome::Succeeded { gateway_ref } => ("succeeded", Some(gateway_ref.clone()), None),
            OpOutcome::Failed { reason } => ("failed", None, Some(reason.clone())),
        };
        let (t, id) = (tenant.to_string(), op_id.to_string());
        self.unit_admitted(
            tenant,
            move |tx| {
                let (t, id, gref, reason) = (t.clone(), id.clone(), gref.clone(), reason.clone());
                Box::pin(async move {
                    let found = tx
                        .rows(
                            "SELECT order_id, kind, tender_no, amount, subject FROM payment_operations WHERE tenant_id = $1 AND id = $2 AND status IN ('pending', 'unknown')",
                            vec![t.as_str().into(), id.as_str().into()],
                        )
                        .await?;
                    let Some(r) = found.first() else {
                        return Ok(((), false));
                    };
                    let (order_id, kind, tender_no, amount, subject) =
                        (r[0].text()?, r[1].text()?, r[2].int()?, r[3].int()?, r[4].text()?);
                    let refused_refund = status == "failed" && kind == "refund";
                    let locked = if refused_refund {
                        lock_order(tx, &t, &order_id).await?
                    } else {
                        None
                    };
                    // Only an open operation is answered (another finisher may have been first:
                    // under the order's lock for a refund, so its books are reversed once).
                    let answered = tx.exec(
                        "UPDATE payment_operations SET status = $3, gateway_ref = $4, reason = $5, updated_at_ms = $6 WHERE tenant_id = $1 AND id = $2 AND status IN ('pending', 'unknown')",
                        vec![t.as_str().into(), id.as_str().into(), status.into(), gref.into(), reason.clone().into(), now_ms().into()],
                    )
                    .await?;
                    if answered != 1 {
                        return Ok(((), false));
                    }
                    if let Some((order_status, _)) = locked {
                        let tenders = tenders_in(tx, &t, &order_id).await?;
                        let tender = tenders
                            .iter()
                            .find(|x| x.tender_no == tender_no)
                            .ok_or_else(|| corrupt("a refund of an unknown tender"))?;
                        add_money(tx, &t, &order_id, tender, "refunded", -amount).await?;
                        tx.exec(
                            "UPDATE returns SET refunded = refunded - $3 WHERE tenant_id = $1 AND id = $2",
                            vec![t.as_str().into(), subject.as_str().into(), amount.into()],
                        )
                        .await?;
                        let detail = serde_json::json!({"payment_operation": id, "tender": tender_no, "amount": amount, "return_id": subject});
                        record(tx, &t, &order_id, &Actor::system(), "refund.failed", order_status, order_status, reason.as_deref(), detail).await?;
                    }
                    Ok(((), true))
                })
            },
            crate::writer::Admission::FollowUp,
        )
        .await?;
        Ok(())
    }

    /// Payment operations of an order, oldest first: (id, kind, tender, amount, status, subject).
    pub async fn payment_operations(
        &self,
        tenant: &str,
        order_id: &str,
    ) -> Result<Vec<(String, String, i64, i64, String, String)>> {
        self.read_rows(
            tenant,
            "SELECT id, kind, tender_no, amount, status, subject FROM payment_operations WHERE tenant_id = $1 AND order_id = $2 ORDER BY id",
            vec![tenant.into(), order_id.into()],
        )
        .await?
        .iter()
        .map(|r| Ok((r[0].text()?, r[1].text()?, r[2].int()?, r[3].int()?, r[4].text()?, r[5].text()?)))
        .collect()
    }

    /// The order's timeline after placement, oldest first.
    pub async fn timeline(&self, tenant: &str, order_id: &str) -> Result<Vec<TimelineEntry>> {
        self.read_rows(
            tenant,
            "SELECT at_ms, actor, action, from_status, to_status, reason, detail FROM order_timeline WHERE tenant_id = $1 AND order_id = $2 ORDER BY seq",
            vec![tenant.into(), order_id.into()],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(TimelineEntry {
                at_ms: r[0].int()?,
                actor: r[1].text()?,
                action: r[2].text()?,
                from: r[3].opt_text()?,
                to: r[4].opt_text()?,
                reason: r[5].opt_text()?,
                detail: r[6].opt_text()?.and_then(|d| serde_json::from_str(&d).ok()),
            })
        })
        .collect()
    }
}

/// One carrier event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackingRow {
    pub seq: i64,
    pub status: lifecycle::TrackingStatus,
    pub at_ms: i64,
    pub point: Option<(f64, f64)>,
    pub description: Option<String>,
}

/// A fulfilment's tracking: the fulfilment, its events (oldest first by `at`), the node it ships
/// from (its point) and where it goes (the order's shipment address).
#[derive(Debug, Clone, PartialEq)]
pub struct Tracking {
    pub fulfillment: Fulfillment,
    pub events: Vec<TrackingRow>,
    pub origin: Option<(f64, f64)>,
    pub destination: Option<ordo_domain::Address>,
}

async fn tracking_rows<S: Sql>(tx: &mut S, tenant: &str, ful_id: &str) -> Result<Vec<TrackingRow>> {
    let rows = tx
        .rows(
            "SELECT seq, status, at_ms, lat, lon, description FROM tracking_events WHERE tenant_id = $1 AND fulfillment_id = $2 ORDER BY at_ms, seq",
            vec![tenant.into(), ful_id.into()],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let point = match (&r[3], &r[4]) {
                (Val::NullText | Val::NullInt, _) | (_, Val::NullText | Val::NullInt) => None,
                (lat, lon) => Some((lat.real()?, lon.real()?)),
            };
            Ok(TrackingRow {
                seq: r[0].int()?,
                status: lifecycle::TrackingStatus::parse(&r[1].text()?)
                    .ok_or_else(|| corrupt("tracking status"))?,
                at_ms: r[2].int()?,
                point,
                description: r[5].opt_text()?,
            })
        })
        .collect()
}

/// Where `ful` ships from: its node's point.
async fn node_point<S: Sql>(
    tx: &mut S,
    tenant: &str,
    location: &str,
) -> Result<Option<(f64, f64)>> {
    let rows = tx
        .rows(
            "SELECT lat, lon FROM locations WHERE tenant_id = $1 AND id = $2",
            vec![tenant.into(), location.into()],
        )
        .await?;
    rows.first()
        .map(|r| Ok((r[0].real()?, r[1].real()?)))
        .transpose()
}

impl Store {
    /// Records a carrier event on a shipped fulfilment; a `delivered` event delivers it.
    /// Events may arrive out of time order: all are kept, ordered by `at` when read.
    #[allow(clippy::too_many_arguments)]
    pub async fn track(
        &self,
        tenant: &str,
        ful_id: &str,
        status: lifecycle::TrackingStatus,
        at_ms: i64,
        point: Option<(f64, f64)>,
        description: Option<String>,
        eta: impl Fn(&Tracking) -> Option<i64> + Send + Sync + 'static,
        actor: &Actor,
    ) -> Result<Outcome<Tracking>> {
        let (t, id, actor) = (tenant.to_string(), ful_id.to_string(), actor.clone());
        let eta = Arc::new(eta);
        transition(self, tenant, move |tx| {
            let (t, id, actor, description, eta) =
                (t.clone(), id.clone(), actor.clone(), description.clone(), eta.clone());
            Box::pin(async move {
                let (order_id, from, order, mut f, claim) =
                    match locked_fulfillment(tx, &t, &id).await? {
                        Ok(x) => x,
                        Err(e) => return Ok(Err(e)),
                    };
                if !f.status.is_shipped() {
                    return Ok(Err(LifecycleError::NotShipped { current: f.status }));
                }
                let (lat, lon) = match point {
                    Some((a, o)) => (Val::F(a), Val::F(o)),
                    None => (Val::NullInt, Val::NullInt),
                };
                let now = now_ms();
                tx.exec(
                    "INSERT INTO tracking_events (tenant_id, fulfillment_id, seq, order_id, status, at_ms, lat, lon, description, received_at_ms) \
                     SELECT $1, $2, COALESCE(MAX(seq), 0) + 1, $3, $4, $5, $6, $7, $8, $9 FROM tracking_events WHERE tenant_id = $1 AND fulfillment_id = $2",
                    vec![t.as_str().into(), id.as_str().into(), order_id.as_str().into(), status.as_str().into(), at_ms.into(), lat, lon, description.clone().into(), now.into()],
                )
                .await?;
                let mut action = format!("tracking.{}", status.as_str());
                if status == lifecycle::TrackingStatus::Delivered && f.status == FulfillmentStatus::Shipped {
                    f.status = FulfillmentStatus::Delivered;
                    write_fulfillment(tx, &t, &f, claim.as_deref()).await?;
                    action = "fulfillment.delivered".into();
                }
                let to = settle_status(tx, &t, &order_id).await?;
                let tracking = Tracking {
                    events: tracking_rows(tx, &t, &id).await?,
                    origin: node_point(tx, &t, f.location_id.as_str()).await?,
                    destination: order.shipments.get(f.address_index).map(|s| s.address.clone()),
                    fulfillment: f,
                };
                let eta = eta(&tracking);
                let detail = serde_json::json!({
                    "fulfillment_id": tracking.fulfillment.id, "status": status.as_str(), "at_ms": at_ms,
                    "lat": point.map(|p| p.0), "lon": point.map(|p| p.1), "description": description, "eta_ms": eta,
                });
                record(tx, &t, &order_id, &actor, &action, from, to, None, detail).await?;
                Ok(Ok(tracking))
            })
        })
        .await
    }

    /// Every fulfilment of an order with its tracking.
    pub async fn tracking(&self, tenant: &str, order: &Order) -> Result<Vec<Tracking>> {
        let id = order.id.to_string();
        let mut conn = self.conn(tenant).await?;
        let mut out = Vec::new();
        for (f, _) in fulfillments_in(&mut *conn, tenant, &id).await? {
            out.push(Tracking {
                events: tracking_rows(&mut *conn, tenant, &f.id).await?,
                origin: node_point(&mut *conn, tenant, f.location_id.as_str()).await?,
                destination: order
                    .shipments
                    .get(f.address_index)
                    .map(|s| s.address.clone()),
                fulfillment: f,
            });
        }
        Ok(out)
    }

    /// The seq of the order's latest timeline entry (0: none after placement).
    pub async fn timeline_head(&self, tenant: &str, order_id: &str) -> Result<i64> {
        Ok(self
            .read_rows(
                tenant,
                "SELECT COALESCE(MAX(seq), 0) FROM order_timeline WHERE tenant_id = $1 AND order_id = $2",
                vec![tenant.into(), order_id.into()],
            )
            .await?
            .first()
            .map(|r| r[0].int())
            .transpose()?
            .unwrap_or(0))
    }

    /// Timeline entries of an order after `after_seq`, oldest first, with their seq (for live
    /// streams; another process's commits show up here too).
    pub async fn timeline_after(
        &self,
        tenant: &str,
        order_id: &str,
        after_seq: i64,
    ) -> Result<Vec<(i64, TimelineEntry)>> {
        self.read_rows(
            tenant,
            "SELECT seq, at_ms, actor, action, from_status, to_status, reason, detail FROM order_timeline WHERE tenant_id = $1 AND order_id = $2 AND seq > $3 ORDER BY seq LIMIT 200",
            vec![tenant.into(), order_id.into(), after_seq.into()],
        )
        .await?
        .iter()
        .map(|r| {
            Ok((
                r[0].int()?,
                TimelineEntry {
                    at_ms: r[1].int()?,
                    actor: r[2].text()?,
                    action: r[3].text()?,
                    from: r[4].opt_text()?,
                    to: r[5].opt_text()?,
                    reason: r[6].opt_text()?,
                    detail: r[7].opt_text()?.and_then(|d| serde_json::from_str(&d).ok()),
                },
            ))
        })
        .collect()
    }
}

impl Store {
    /// Payment operations still `pending` (or `unknown`) whose last change is older than
    /// `before_ms`, every tenant's: a crash or a lost answer left them. (tenant, operation).
    pub async fn stale_payment_ops(&self, before_ms: i64) -> Result<Vec<(String, PaymentOp)>> {
        let rows = self
            .read_rows(
                crate::ALL_TENANTS,
                "SELECT p.tenant_id, p.id, p.order_id, p.tender_no, o.authorization_id, p.kind, p.amount, p.currency, p.subject \
                 FROM payment_operations p JOIN order_payments o ON o.tenant_id = p.tenant_id AND o.order_id = p.order_id AND o.tender_no = p.tender_no \
                 WHERE p.status IN ('pending', 'unknown') AND p.updated_at_ms < $1 ORDER BY p.id LIMIT 500",
                vec![before_ms.into()],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r[0].text()?,
                    PaymentOp {
                        id: r[1].text()?,
                        order_id: r[2].text()?,
                        tender_no: r[3].int()?,
                        authorization_id: r[4].text()?,
                        kind: r[5].text()?,
                        amount: r[6].int()?,
                        currency: r[7].text()?,
                        subject: r[8].text()?,
                    },
                ))
            })
            .collect()
    }
}

/// What a short pick did with units its node did not have.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ShortPick {
    pub sku: String,
    /// Units the node was found not to have (taken off its on-hand: `short_pick`).
    pub missing: i64,
    /// The node the units were routed to instead, and the fulfilment carrying them there.
    pub rerouted_to: Option<(String, String)>,
    /// Units cancelled because no other node could ship them (their value voided).
    pub cancelled: i64,
    /// The routing decision of the re-route (in the decision log).
    pub decision_id: Option<String>,
    /// Why no node could take them, when none could.
    pub reason_codes: Vec<String>,
}

/// A pick's outcome: the fulfilment, what was short, and voids to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Picked {
    pub view: FulfillmentView,
    pub shorts: Vec<ShortPick>,
    pub voids: Vec<PaymentOp>,
}

impl Store {
    /// Picks a fulfilment: `picked` names SKUs found fewer than carried (a SKU not named was
    /// picked in full). The missing units come off the node's on-hand (`short_pick`) and are
    /// routed to another node with stock for the same address — a new routing decision — or,
    /// when none can ship them, cancelled with their value voided.
    pub async fn pick_fulfillment(
        &self,
        tenant: &str,
        ful_id: &str,
        picked: &[(Sku, i64)],
        actor: &Actor,
    ) -> Result<Outcome<Picked>> {
        let (t, id, picked, actor) = (
            tenant.to_string(),
            ful_id.to_string(),
            picked.to_vec(),
            actor.clone(),
        );
        transition(self, tenant, move |tx| {
            let (t, id, picked, actor) = (t.clone(), id.clone(), picked.clone(), actor.clone());
            Box::pin(async move { pick_in(tx, &t, &id, &picked, &actor).await })
        })
        .await
    }
}

async fn pick_in(
    tx: &mut Tx<'_>,
    t: &str,
    id: &str,
    picked: &[(Sku, i64)],
    actor: &Actor,
) -> Result<Outcome<Picked>> {
    let (order_id, from, order, mut f, claim) = match locked_fulfillment(tx, t, id).await? {
        Ok(x) => x,
        Err(e) => return Ok(Err(e)),
    };
    let to_status = match lifecycle::step(f.status, FulfillmentCommand::Pick) {
        Ok(s) => s,
        Err(e) => return Ok(Err(LifecycleError::Illegal(e))),
    };
    let mut missing: BTreeMap<String, i64> = BTreeMap::new();
    for (i, (sku, q)) in picked.iter().enumerate() {
        let Some(line) = f.lines.iter().find(|l| &l.sku == sku) else {
            return Ok(Err(LifecycleError::NotInOrder {
                path: format!("lines[{i}].sku"),
                sku: sku.to_string(),
            }));
        };
        if *q > line.quantity {
            return Ok(Err(LifecycleError::TooMany {
                path: format!("lines[{i}].quantity"),
                sku: sku.to_string(),
                asked: *q,
                left: line.quantity,
            }));
        }
        if *q < line.quantity {
            missing.insert(sku.to_string(), line.quantity - q);
        }
    }
    let mut changed: Vec<StockChangeRow> = Vec::new();
    let mut shorts = Vec::new();
    let mut voids = Vec::new();
    if !missing.is_empty() {
        // A short pick moves money (voids) and units: not while a ship of the order holds a
        // claim, and never on an exchange's own fulfilment (cancel that instead).
        let claimed = fulfillments_in(tx, t, &order_id)
            .await?
            .iter()
            .any(|(_, c)| c.is_some());
        if claimed || payment_in_progress(tx, t, &order_id).await? {
            return Ok(Err(LifecycleError::PaymentInProgress));
        }
        if crate::exchanges::exchange_of_fulfillment(tx, t, id)
            .await?
            .is_some()
        {
            return Ok(Err(LifecycleError::ExchangeUnits));
        }
        let skus: Vec<String> = missing.keys().cloned().collect();
        crate::holds::lock_stock(tx, t, &skus).await?;
        let node = f.location_id.to_string();
        let now = now_ms();
        let address = order
            .shipments
            .get(f.address_index)
            .map(|s| s.address.clone())
            .ok_or_else(|| corrupt("a fulfilment to an address the order does not have"))?;
        for (sku, m) in &missing {
            // The units are not there: off the node's on-hand and reserved, and the count logged.
            let rows =
                take_units(tx, t, &order_id, &[(sku.clone(), node.clone(), *m)], true).await?;
            let after = rows.last().map_or(0, |r| r.on_hand);
            changed.extend(rows);
            tx.exec(
                "INSERT INTO stock_adjustments (tenant_id, sku, location_id, delta, on_hand_after, reason, note, at_ms) VALUES ($1, $2, $3, $4, $5, 'short_pick', $6, $7)",
                vec![t.into(), sku.as_str().into(), node.as_str().into(), (-m).into(), after.into(), format!("fulfillment {id}").into(), now.into()],
            )
            .await?;
            if let Some(l) = f.lines.iter_mut().find(|l| l.sku.as_str() == sku) {
                l.quantity -= m;
            }
            shorts.push(
                reroute(
                    tx,
                    t,
                    &order,
                    &f,
                    &address,
                    sku,
                    *m,
                    now,
                    &mut changed,
                    &mut voids,
                )
                .await?,
            );
        }
        f.lines.retain(|l| l.quantity > 0);
    }
    f.status = if f.lines.is_empty() {
        FulfillmentStatus::Cancelled
    } else {
        to_status
    };
    write_fulfillment(tx, t, &f, claim.as_deref()).await?;
    let to = settle_status(tx, t, &order_id).await?;
    for s in &shorts {
        let detail = serde_json::json!({"fulfillment_id": f.id, "location_id": f.location_id.as_str(), "short": s});
        let reason = match &s.rerouted_to {
            Some((loc, _)) => format!(
                "{} of {} missing at {}: routed to {loc}",
                s.missing, s.sku, f.location_id
            ),
            None => format!(
                "{} of {} missing at {}: no other node can ship them, cancelled",
                s.missing, s.sku, f.location_id
            ),
        };
        record(
            tx,
            t,
            &order_id,
            actor,
            "fulfillment.short_picked",
            from,
            to,
            Some(&reason),
            detail,
        )
        .await?;
    }
    let detail = serde_json::json!({"fulfillment_id": f.id, "location_id": f.location_id.as_str(), "lines": f.lines});
    record(
        tx,
        t,
        &order_id,
        actor,
        &format!("fulfillment.{}", f.status.as_str()),
        from,
        to,
        None,
        detail,
    )
    .await?;
    append_changed(tx, t, changed, "short_pick").await?;
    Ok(Ok(Picked {
        view: FulfillmentView {
            order_id,
            fulfillment: f,
        },
        shorts,
        voids,
    }))
}

/// Routes `m` units of `sku` a node did not have to another node for the same address (a new
/// routing decision, the short node left out); when no node can, cancels them and voids their
/// value.
#[allow(clippy::too_many_arguments)]
async fn reroute(
    tx: &mut Tx<'_>,
    t: &str,
    order: &Order,
    short: &Fulfillment,
    address: &ordo_domain::Address,
    sku: &str,
    m: i64,
    now: i64,
    changed: &mut Vec<StockChangeRow>,
    voids: &mut Vec<PaymentOp>,
) -> Result<ShortPick> {
    let order_id = order.id.to_string();
    let routed = route_units(
        tx,
        t,
        order,
        short.address_index,
        address,
        sku,
        m,
        Some(&short.id),
        Some(&short.location_id),
        now,
        changed,
    )
    .await?;
    match routed {
        Ok((location, fulfillment, decision_id)) => Ok(ShortPick {
            sku: sku.into(),
            missing: m,
            rerouted_to: Some((location, fulfillment)),
            cancelled: 0,
            decision_id: Some(decision_id),
            reason_codes: vec![],
        }),
        Err(reason_codes) => {
            // Nobody can ship them: cancelled, their value voided.
            let lines_now = lines_in(tx, t, &order_id).await?;
            let value = value_of(order, &lines_now, &BTreeMap::from([(sku.to_string(), m)]));
            add_to_line(tx, t, order_id.as_str(), sku, "cancelled", m).await?;
            voids.extend(
                void_value(tx, t, &order_id, &format!("short_pick:{}", short.id), value).await?,
            );
            Ok(ShortPick {
                sku: sku.into(),
                missing: m,
                rerouted_to: None,
                cancelled: m,
                decision_id: None,
                reason_codes,
            })
        }
    }
}

/// Routes `m` units of `sku` of an order to its address `address_index` with the engine (a
/// routing decision of their own, in the log; `exclude` leaves a node out), reserves them and
/// puts them on a fulfilment: with `merge_away_from` (a re-route away from that fulfilment), the
/// order's open one at that node for that address if there is one; without it, a new one.
/// `Ok(Err(reason codes))` when no node can ship them. The stock rows of `sku` must be locked.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn route_units(
    tx: &mut Tx<'_>,
    t: &str,
    order: &Order,
    address_index: usize,
    address: &ordo_domain::Address,
    sku: &str,
    m: i64,
    merge_away_from: Option<&str>,
    exclude: Option<&LocationId>,
    now: i64,
    changed: &mut Vec<StockChangeRow>,
) -> Result<std::result::Result<(String, String, String), Vec<String>>> {
    use crate::routing::{Network, NetworkRows};
    let order_id = order.id.to_string();
    let skus = vec![sku.to_string()];
    let level_rows =
        crate::engine::rows_in(tx, crate::holds::LEVELS_SQL, "", vec![t.into()], &skus).await?;
    let mut levels: std::collections::HashMap<String, Vec<(LocationId, i64)>> = Default::default();
    for r in &level_rows {
        let loc = LocationId::parse(&r[1].text()?).map_err(|_| corrupt("location id"))?;
        if Some(&loc) != exclude {
            levels
                .entry(r[0].text()?)
                .or_default()
                .push((loc, r[2].int()?));
        }
    }
    let needs = crate::holds::needs_of(
        &crate::engine::rows_in(tx, crate::holds::NEEDS_SQL, "", vec![t.into()], &skus).await?,
    )?;
    let rows = NetworkRows::read(tx, t, now).await?;
    let mut network = Network::from_rows(rows, now, needs, order.totals.total.currency)?;
    let shipment = ordo_domain::ShipmentGroup {
        address: address.clone(),
        lines: vec![ordo_domain::pricing::LineRequest {
            sku: Sku::parse(sku).map_err(|_| corrupt("sku"))?,
            quantity: m,
        }],
    };
    let (decision, input) = match network.route(std::slice::from_ref(&shipment), &levels) {
        Ok(d) => d,
        Err(crate::PlaceError::NoRoute(codes)) => {
            return Ok(Err(codes.iter().map(|c| format!("{c:?}")).collect()));
        }
        Err(_) => return Ok(Err(vec!["insufficient_stock".into()])),
    };
    let mut target: Option<(String, String)> = None;
    for a in &decision.allocations() {
        let loc = a.location_id.to_string();
        changed.push(move_stock(tx, t, sku, &loc, 0, a.quantity).await?);
        tx.exec(
            "INSERT INTO order_allocations (tenant_id, order_id, sku, location_id, quantity) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id, order_id, sku, location_id) DO UPDATE SET quantity = order_allocations.quantity + excluded.quantity",
            vec![t.into(), order_id.as_str().into(), sku.into(), loc.as_str().into(), a.quantity.into()],
        )
        .await?;
        // Onto the order's open fulfilment at that node for the same address (a re-route), or a
        // new one (an exchange: its own fulfilment).
        let mut existing = None;
        if let Some(short) = merge_away_from {
            for (x, c) in fulfillments_in(tx, t, &order_id).await? {
                let open = x.location_id == a.location_id
                    && x.address_index == address_index
                    && x.status == FulfillmentStatus::Allocated
                    && c.is_none()
                    && x.id != short;
                // Never onto an exchange's fulfilment: it captures the exchange's difference.
                if open
                    && crate::exchanges::exchange_of_fulfillment(tx, t, &x.id)
                        .await?
                        .is_none()
                {
                    existing = Some((x, c));
                    break;
                }
            }
        }
        let ful = match existing {
            Some((mut x, _)) => {
                match x.lines.iter_mut().find(|l| l.sku.as_str() == sku) {
                    Some(l) => l.quantity += a.quantity,
                    None => x.lines.push(FulfillmentLine {
                        sku: a.sku.clone(),
                        quantity: a.quantity,
                    }),
                }
                write_fulfillment(tx, t, &x, None).await?;
                x.id
            }
            None => {
                let new_id = format!("ful_{}", uuid::Uuid::now_v7().simple());
                let lines = vec![FulfillmentLine {
                    sku: a.sku.clone(),
                    quantity: a.quantity,
                }];
                tx.exec(
                    "INSERT INTO fulfillments (tenant_id, id, order_id, location_id, address_index, status, lines, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, 'allocated', $6, $7, $7)",
                    vec![t.into(), new_id.as_str().into(), order_id.as_str().into(), loc.as_str().into(), (address_index as i64).into(), serde_json::to_string(&lines).map_err(corrupt)?.into(), now.into()],
                )
                .await?;
                new_id
            }
        };
        target.get_or_insert((loc, ful));
    }
    network.write_loads(tx, t).await?;
    let (decision_id, body) = crate::routing::record(&order_id, now, decision, input)?;
    tx.exec(
        "INSERT INTO routing_decisions (tenant_id, id, order_id, created_at_ms, body) VALUES ($1, $2, $3, $4, $5)",
        vec![t.into(), decision_id.as_str().into(), order_id.as_str().into(), now.into(), body.into()],
    )
    .await?;
    let (location, fulfillment) = target.ok_or_else(|| corrupt("a plan without packages"))?;
    Ok(Ok((location, fulfillment, decision_id)))
}

impl Store {
    /// Releases ship claims that needed no payment (nothing to capture) but were never finished
    /// (the process died between the two commits): packed fulfilments claimed before `before_ms`.
    pub async fn release_free_claims(&self, before_ms: i64) -> Result<u64> {
        let (n, _) = self
            .unit_admitted(
                crate::ALL_TENANTS,
                move |tx| {
                    Box::pin(async move {
                        let sql = if tx.locks_rows() {
                            "UPDATE fulfillments SET claim = NULL WHERE (tenant_id, id) IN \
                             (SELECT tenant_id, id FROM fulfillments WHERE claim = 'ship:free' AND status = 'packed' AND updated_at_ms < $1 FOR UPDATE SKIP LOCKED)"
                        } else {
                            "UPDATE fulfillments SET claim = NULL WHERE claim = 'ship:free' AND status = 'packed' AND updated_at_ms < $1"
                        };
                        Ok((tx.exec(sql, vec![before_ms.into()]).await?, true))
                    })
                },
                crate::writer::Admission::FollowUp,
            )
            .await?;
        Ok(n)
    }
}
