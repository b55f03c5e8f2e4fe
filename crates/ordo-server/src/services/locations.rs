//! The fulfilment network's nodes: create or replace one (admins; audited), read them with the
//! packages routed to each since its own local midnight.

use super::error::{Result, ServiceError};
use crate::AppState;
use crate::auth::Caller;
use chrono::{TimeZone, Utc};
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

/// UTC milliseconds of the last local midnight in `timezone` (UTC when `None` or unknown).
pub fn local_midnight_ms(timezone: Option<&str>, now_ms: i64) -> i64 {
    let tz: chrono_tz::Tz = timezone.and_then(|t| t.parse().ok()).unwrap_or(chrono_tz::UTC);
    let Some(now) = Utc.timestamp_millis_opt(now_ms).single() else { return now_ms };
    let local_day = now.with_timezone(&tz).date_naive();
    let midnight = local_day.and_hms_opt(0, 0, 0).and_then(|m| tz.from_local_datetime(&m).earliest());
    midnight.map(|m| m.timestamp_millis()).unwrap_or(now_ms - now_ms.rem_euclid(86_400_000))
}

/// Whether `timezone` is an IANA time zone name Ordo knows.
pub fn known_timezone(timezone: &str) -> bool {
    timezone.parse::<chrono_tz::Tz>().is_ok()
}

async fn views(state: &AppState, caller: &Caller, locations: Vec<Location>) -> Result<Vec<LocationView>> {
    let now = ordo_store::now_ms();
    // One count per distinct midnight (nodes usually share a handful of time zones).
    let mut by_midnight: std::collections::HashMap<i64, std::collections::HashMap<String, i64>> = Default::default();
    let mut out = Vec::with_capacity(locations.len());
    for location in locations {
        let since = local_midnight_ms(location.timezone.as_deref(), now);
        if !by_midnight.contains_key(&since) {
            by_midnight.insert(since, state.store.packages_since(caller.tenant(), since).await?);
        }
        let load_today = by_midnight[&since].get(location.id.as_str()).copied().unwrap_or(0);
        out.push(LocationView { location, load_today });
    }
    Ok(out)
}

pub async fn list(state: &AppState, caller: &Caller) -> Result<Vec<LocationView>> {
    let all = state.store.locations(caller.tenant()).await?;
    views(state, caller, all).await
}

pub async fn get(state: &AppState, caller: &Caller, id: &LocationId) -> Result<LocationView> {
    let location = state.store.location(caller.tenant(), id).await?.ok_or_else(|| ServiceError::NotFound(format!("location {id}")))?;
    Ok(views(state, caller, vec![location]).await?.remove(0))
}

/// Creates or replaces the location; whether it was created, and how it reads now.
pub async fn put(state: &AppState, caller: &Caller, location: Location) -> Result<(bool, LocationView)> {
    let created = state.store.upsert_location_audited(caller.tenant(), &location, caller.audit_entry()).await?;
    Ok((created, get(state, caller, &location.id).await?))
}
