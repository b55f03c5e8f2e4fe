//! The fulfilment network's nodes: create or replace one (admins; audited), read them with the
//! packages routed to each since its own local midnight.

use super::error::{Result, ServiceError};
use crate::AppState;
use crate::auth::Caller;
use ordo_domain::{Location, LocationId};
use serde::Serialize;

/// A location as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LocationView {
    #[serde(flatten)]
    pub location: Location,
    /// Packages routed to the node since local midnight (its `timezone`, UTC when absent).
    pub load_today: i64,
}

/// Whether `timezone` is an IANA time zone name Ordo knows.
pub fn known_timezone(timezone: &str) -> bool {
    timezone.parse::<chrono_tz::Tz>().is_ok()
}

async fn views(
    state: &AppState,
    caller: &Caller,
    locations: Vec<Location>,
) -> Result<Vec<LocationView>> {
    let now = ordo_store::now_ms();
    let days: Vec<String> = locations
        .iter()
        .map(|l| ordo_domain::routing::local_clock(l.timezone.as_deref(), now).day)
        .collect();
    let Some(first) = days.iter().min() else {
        return Ok(Vec::new());
    };
    // The same counts placement checks `daily_capacity` against, each node on its own local day.
    let loads = state.store.location_loads(caller.tenant(), first).await?;
    Ok(locations
        .into_iter()
        .zip(days)
        .map(|(location, day)| {
            let load_today = loads
                .get(&(location.id.to_string(), day))
                .copied()
                .unwrap_or(0);
            LocationView {
                location,
                load_today,
            }
        })
        .collect())
}

pub async fn list(state: &AppState, caller: &Caller) -> Result<Vec<LocationView>> {
    let all = state.store.locations(caller.tenant()).await?;
    views(state, caller, all).await
}

pub async fn get(state: &AppState, caller: &Caller, id: &LocationId) -> Result<LocationView> {
    let location = state
        .store
        .location(caller.tenant(), id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("location {id}")))?;
    Ok(views(state, caller, vec![location]).await?.remove(0))
}

/// Creates or replaces the location; whether it was created, and how it reads now.
pub async fn put(
    state: &AppState,
    caller: &Caller,
    location: Location,
) -> Result<(bool, LocationView)> {
    let created = state
        .store
        .upsert_location_audited(caller.tenant(), &location, caller.audit_entry())
        .await?;
    Ok((created, get(state, caller, &location.id).await?))
}
