//! Stock adjustments by staff (receipts, counts, damages, …), idempotent: the adjustment, its
//! log row, its outbox event and the stored answer commit together, so a retried receipt never
//! adds the stock twice — not even across a crash.

use super::error::{ConflictReason, Result, ServiceError};
use super::idempotency::{self, Answer};
use crate::AppState;
use ordo_domain::StockLevel;
use ordo_store::{AdjustError, Adjustment, IdempotencyKey, Idempotent, Render};
use serde::Serialize;
use std::sync::Arc;

/// The answer to an adjustment: the location's new level.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdjustmentBody {
    pub sku: String,
    pub location_id: String,
    pub on_hand: i64,
    pub reserved: i64,
    /// Units carts hold at checkout.
    pub held: i64,
    /// Units held back from online sale at this location.
    pub safety_stock: i64,
    pub available: i64,
    pub reason: String,
}

pub async fn adjust(
    state: &AppState,
    caller: &crate::auth::Caller,
    adjustment: Adjustment,
    key: IdempotencyKey,
) -> Result<Answer> {
    if let Some(answer) = idempotency::answered(state, caller, Some(&key)).await? {
        return Ok(answer);
    }
    let reason = adjustment.reason.clone();
    let render_body = move |l: &StockLevel| {
        let b = AdjustmentBody {
            sku: l.sku.to_string(),
            location_id: l.location_id.to_string(),
            on_hand: l.on_hand,
            reserved: l.reserved,
            held: l.held,
            safety_stock: l.safety_stock,
            available: l.available(),
            reason: reason.clone(),
        };
        serde_json::to_string(&b).unwrap_or_default()
    };
    let render_stored = render_body.clone();
    let render: Render<StockLevel> = Arc::new(move |l| (201, render_stored(l)));
    let hash = key.request_hash.clone();
    match state
        .store
        .adjust_stock_audited(
            caller.tenant(),
            &adjustment,
            Some((key, render)),
            caller.audit_entry(),
        )
        .await
    {
        Ok(Idempotent::Done(level)) => Ok(Answer {
            status: 201,
            body: render_body(&level),
            replayed: false,
        }),
        Ok(Idempotent::Replay(rec)) => idempotency::settle(&rec, &hash),
        Err(AdjustError::UnknownSku(s)) => Err(ServiceError::field(
            "sku",
            "unknown_sku",
            format!("no product has SKU {s}"),
        )),
        Err(AdjustError::UnknownLocation(l)) => Err(ServiceError::field(
            "location_id",
            "unknown_location",
            format!("no location has id {l}"),
        )),
        Err(AdjustError::BelowReserved { would_be, reserved }) => Err(ServiceError::conflict(
            ConflictReason::BelowReserved,
            format!(
                "on hand would become {would_be}, but {reserved} units are reserved for placed orders or held for carts at checkout"
            ),
            vec![
                serde_json::json!({"type": "below_reserved", "would_be": would_be, "reserved": reserved}),
            ],
        )),
        Err(AdjustError::Store(e)) => Err(e.into()),
    }
}

/// A page of the change feed after `since`, and the cursor to continue from (the last entry's
/// number, or `since` when there is nothing new). A cursor beyond the feed's head was never
/// given by this feed (another tenant's, or a database since replaced): refused.
pub async fn changes(
    state: &AppState,
    caller: &crate::auth::Caller,
    since: i64,
    limit: i64,
) -> Result<(Vec<ordo_store::FeedEntry>, i64)> {
    let items = state
        .store
        .inventory_changes(caller.tenant(), since, limit)
        .await?;
    if let Some(last) = items.last() {
        let next = last.seq;
        return Ok((items, next));
    }
    if since > state.store.inventory_feed_head(caller.tenant()).await? {
        return Err(ServiceError::field(
            "since",
            "cursor_ahead",
            "this cursor is ahead of the feed: start again without since",
        ));
    }
    Ok((items, since))
}
