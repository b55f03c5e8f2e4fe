//! Reading the event log (`GET /v1/events`).

use super::ServiceError;
use super::error::Result;
use crate::AppState;
use crate::auth::Caller;
use ordo_domain::events::CloudEvent;

/// Where a read of the log starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum After {
    Start,
    Position(i64),
    /// After the event with this id (it must be in the tenant's log).
    Event(String),
}

/// The tenant's events after `after` (of `types`, all when empty), at most `limit`, and the
/// position to continue from.
pub async fn after(
    state: &AppState,
    caller: &Caller,
    after: After,
    types: &[String],
    limit: i64,
) -> Result<(Vec<CloudEvent>, i64)> {
    let tenant = caller.tenant();
    let from = match after {
        After::Start => 0,
        After::Position(p) => p,
        After::Event(id) => state
            .store
            .event_position(tenant, &id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("event {id}")))?,
    };
    let rows = state.store.events_after(tenant, from, types, limit).await?;
    let next = rows.last().and_then(|e| e.position).unwrap_or(from);
    let events = rows
        .iter()
        .map(|e| e.cloud_event())
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((events, next))
}
