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
    let clocks: Vec<ordo_domain::routing::LocalClock> = locations
        .iter()
        .map(|l| ordo_domain::routing::local_clock(l.timezone.as_deref(), now))
        .collect();
    let Some(first) = clocks.iter().map(|c| c.day.clone()).min() else {
        return Ok(Vec::new());
    };
    // A node with a daily capacity: the count placement checks the capacity against. Others keep
    // no count: their packages since local midnight are counted from the orders' allocations.
    let loads = state.store.location_loads(caller.tenant(), &first).await?;
    let mut by_midnight: std::collections::HashMap<i64, std::collections::HashMap<String, i64>> =
        Default::default();
    let mut out = Vec::with_capacity(locations.len());
    for (location, clock) in locations.into_iter().zip(clocks) {
        let load_today = if location.daily_capacity.is_some() {
            loads
                .get(&(location.id.to_string(), clock.day))
                .copied()
                .unwrap_or(0)
        } else {
            if !by_midnight.contains_key(&clock.midnight_ms) {
                by_midnight.insert(
                    clock.midnight_ms,
                    state
                        .store
                        .packages_since(caller.tenant(), clock.midnight_ms)
                        .await?,
                );
            }
            by_midnight[&clock.midnight_ms]
                .get(location.id.as_str())
                .copied()
                .unwrap_or(0)
        };
        out.push(LocationView {
            location,
            load_today,
        });
    }
    Ok(out)
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
    // One currency for the whole network: the routing rules' if set, else the other nodes'.
    let currency = location.handling_cost.currency;
    let network = match state.store.routing_rules(caller.tenant()).await? {
        Some(rules) => Some(rules.cutoff_penalty.currency),
        None => state
            .store
            .locations(caller.tenant())
            .await?
            .into_iter()
            .find(|l| l.id != location.id)
            .map(|l| l.handling_cost.currency),
    };
    if let Some(expected) = network.filter(|c| *c != currency) {
        return Err(ServiceError::field(
            "handling_cost.currency",
            "currency_mismatch",
            format!(
                "the network's costs and routing rules are in {expected}: a location's costs must be too"
            ),
        ));
    }
    let created = state
        .store
        .upsert_location_audited(caller.tenant(), &location, caller.audit_entry())
        .await?;
    Ok((created, get(state, caller, &location.id).await?))
}
