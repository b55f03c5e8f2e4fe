//! `/v1/locations`: the fulfilment network's nodes (admins write, staff and admins read).

use super::inputs::MoneyInput;
use super::json::{ApiJson, PathParam};
use super::problem::{ApiError, Problem};
use crate::AppState;
use crate::auth::Caller;
use crate::services::locations::{self, LocationView};
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use ordo_domain::contact::has_control_chars;
use ordo_domain::{
    Capability, CountryCode, Cutoff, FieldErrors, Location, LocationId, LocationKind, Money,
};
use serde::{Deserialize, Serialize};

/// The most packages a day a node can be given.
const MAX_CAPACITY: i64 = 10_000_000;

/// A whole location (PUT replaces every field; absent optional fields take their defaults).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationInput {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// warehouse, store, 3pl or supplier.
    #[schema(pattern = "^(warehouse|store|3pl|supplier)$")]
    pub kind: String,
    #[schema(minimum = -90, maximum = 90)]
    pub lat: f64,
    #[schema(minimum = -180, maximum = 180)]
    pub lon: f64,
    /// ISO 3166-1 alpha-2.
    #[schema(pattern = "^[A-Za-z]{2}$")]
    pub country: Option<String>,
    /// Countries it ships to; empty or absent: everywhere.
    pub ships_to: Option<Vec<String>>,
    /// hazmat, cold_chain, oversize.
    pub capabilities: Option<Vec<String>>,
    /// Packages a day; absent: unlimited.
    #[schema(minimum = 0, maximum = 10000000)]
    pub daily_capacity: Option<i64>,
    /// `HH:MM` (24-hour) in `timezone`.
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub cutoff: Option<String>,
    /// IANA time zone, e.g. America/Chicago; absent: UTC.
    pub timezone: Option<String>,
    pub handling_cost: Option<MoneyInput>,
    pub cost_per_100km: Option<MoneyInput>,
    /// Default true.
    pub active: Option<bool>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LocationList {
    pub items: Vec<LocationView>,
}

/// The input as a domain location, every problem reported at once with its path.
pub fn parse_location(id: &LocationId, input: &LocationInput) -> Result<Location, ApiError> {
    let mut errs = FieldErrors::default();
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        errs.add(
            "name",
            "invalid_length",
            "a location name has 1 to 200 characters",
        );
    } else if has_control_chars(name) {
        errs.add(
            "name",
            "invalid_characters",
            "control characters are not allowed",
        );
    }
    let kind = errs.take("kind", LocationKind::parse(&input.kind));
    if !(input.lat.is_finite() && (-90.0..=90.0).contains(&input.lat)) {
        errs.add("lat", "out_of_range", "latitude is -90 to 90 degrees");
    }
    if !(input.lon.is_finite() && (-180.0..=180.0).contains(&input.lon)) {
        errs.add("lon", "out_of_range", "longitude is -180 to 180 degrees");
    }
    let country = input
        .country
        .as_deref()
        .and_then(|c| errs.take("country", CountryCode::parse(c)));
    let mut ships_to = Vec::new();
    for (i, c) in input.ships_to.iter().flatten().enumerate() {
        if let Some(c) = errs.take(&format!("ships_to[{i}]"), CountryCode::parse(c)) {
            if !ships_to.contains(&c) {
                ships_to.push(c);
            }
        }
    }
    let mut capabilities = Vec::new();
    for (i, c) in input.capabilities.iter().flatten().enumerate() {
        if let Some(c) = errs.take(&format!("capabilities[{i}]"), Capability::parse(c)) {
            if !capabilities.contains(&c) {
                capabilities.push(c);
            }
        }
    }
    capabilities.sort();
    let daily_capacity = match input.daily_capacity {
        Some(n) if !(0..=MAX_CAPACITY).contains(&n) => {
            errs.add(
                "daily_capacity",
                "out_of_range",
                format!("daily_capacity is 0 to {MAX_CAPACITY} packages"),
            );
            None
        }
        n => n.map(|n| n as u32),
    };
    let cutoff = input
        .cutoff
        .as_deref()
        .and_then(|c| errs.take("cutoff", Cutoff::parse(c)));
    if let Some(tz) = &input.timezone {
        if !locations::known_timezone(tz) {
            errs.add(
                "timezone",
                "unknown_timezone",
                format!("'{tz}' is not an IANA time zone (e.g. America/Chicago)"),
            );
        }
    }
    let money = |m: &Option<MoneyInput>, path: &str, errs: &mut FieldErrors| -> Option<Money> {
        match m {
            None => Some(Money::new(
                0,
                ordo_domain::Currency::parse("USD").expect("USD"),
            )),
            Some(m) => errs.take(path, Money::parse_non_negative(m.amount, &m.currency)),
        }
    };
    let handling_cost = money(&input.handling_cost, "handling_cost", &mut errs);
    let cost_per_100km = money(&input.cost_per_100km, "cost_per_100km", &mut errs);
    if let (Some(a), Some(b), Some(_), Some(_)) = (
        handling_cost,
        cost_per_100km,
        &input.handling_cost,
        &input.cost_per_100km,
    ) {
        if a.currency != b.currency {
            errs.add(
                "cost_per_100km.currency",
                "currency_mismatch",
                format!("a location's costs are in one currency ({})", a.currency),
            );
        }
    }
    errs.into_result()?;
    let (Some(kind), Some(handling_cost), Some(cost_per_100km)) =
        (kind, handling_cost, cost_per_100km)
    else {
        return Err(ApiError::field("", "invalid", "invalid location"));
    };
    // A lone cost given sets the currency of both.
    let currency = if input.handling_cost.is_some() {
        handling_cost.currency
    } else {
        cost_per_100km.currency
    };
    Ok(Location {
        id: id.clone(),
        name: name.to_string(),
        kind,
        lat: input.lat,
        lon: input.lon,
        country,
        ships_to,
        capabilities,
        daily_capacity,
        cutoff,
        timezone: input.timezone.clone(),
        handling_cost: Money::new(handling_cost.amount, currency),
        cost_per_100km: Money::new(cost_per_100km.amount, currency),
        active: input.active.unwrap_or(true),
    })
}

fn location_id(id: &str) -> Result<LocationId, ApiError> {
    LocationId::parse(id).map_err(|e| ApiError::field("id", &e.code, e.message))
}

/// Create or replace a location (admins; audited).
#[utoipa::path(put, path = "/v1/locations/{id}", tag = "locations",
    request_body(content = LocationInput, example = json!({"name": "Reno DC", "kind": "warehouse", "lat": 39.5296, "lon": -119.8138, "country": "US",
        "ships_to": ["US", "CA"], "capabilities": ["hazmat"], "daily_capacity": 5000, "cutoff": "17:00", "timezone": "America/Los_Angeles",
        "handling_cost": {"amount": 350, "currency": "USD"}, "cost_per_100km": {"amount": 40, "currency": "USD"}, "active": true})),
    params(("id" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "the location's id, e.g. wh-west")),
    responses((status = 200, body = LocationView, description = "replaced"), (status = 201, body = LocationView, description = "created"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "invalid fields; see errors")))]
pub async fn put(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
    ApiJson(input): ApiJson<LocationInput>,
) -> Result<(StatusCode, Json<LocationView>), ApiError> {
    let location = parse_location(&location_id(&id)?, &input)?;
    let (created, view) = locations::put(&state, &caller, location).await?;
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(view),
    ))
}

/// One location with its load today.
#[utoipa::path(get, path = "/v1/locations/{id}", tag = "locations",
    params(("id" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "the location's id")),
    responses((status = 200, body = LocationView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
) -> Result<Json<LocationView>, ApiError> {
    let id = LocationId::parse(&id).map_err(|_| ApiError::NotFound(format!("location {id}")))?;
    Ok(Json(locations::get(&state, &caller, &id).await?))
}

/// Every location of the tenant, by id, with its load today.
#[utoipa::path(get, path = "/v1/locations", tag = "locations", responses((status = 200, body = LocationList)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<LocationList>, ApiError> {
    Ok(Json(LocationList {
        items: locations::list(&state, &caller).await?,
    }))
}
