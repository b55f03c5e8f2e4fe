//! Routing decision logs: the decision an order was placed with (staff read one; admins list
//! them). Decisions are written by placement, in the order's commit; nothing here writes.

use super::error::{Result, ServiceError};
use crate::AppState;
use crate::auth::Caller;
use ordo_domain::routing::DecisionRecord;

/// The decision behind an order (by id or number) the caller may see.
pub async fn for_order(state: &AppState, caller: &Caller, id: &str) -> Result<DecisionRecord> {
    let not_found = || ServiceError::NotFound(format!("order {id}"));
    let order = state
        .store
        .order(caller.tenant(), id)
        .await?
        .filter(|o| caller.may_see_order(&o.id.to_string(), o.customer.customer_id()))
        .ok_or_else(not_found)?;
    state
        .store
        .routing_decision(caller.tenant(), &order.id.to_string())
        .await?
        .ok_or_else(|| {
            ServiceError::NotFound(format!(
                "routing decision of order {id} (placed before decisions were recorded)"
            ))
        })
}

/// A page of decisions, newest first: those older than `before`, and the cursor of the next
/// page (`None` on the last).
pub async fn list(
    state: &AppState,
    caller: &Caller,
    before: Option<i64>,
    limit: i64,
) -> Result<(Vec<DecisionRecord>, Option<i64>)> {
    let mut rows = state
        .store
        .routing_decisions(caller.tenant(), before, limit + 1)
        .await?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|(seq, _)| *seq)
    } else {
        None
    };
    Ok((rows.into_iter().map(|(_, r)| r).collect(), next))
}
