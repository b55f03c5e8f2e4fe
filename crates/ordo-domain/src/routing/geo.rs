//! Where things are: validated coordinates, great-circle distance in whole metres, ship-to
//! destinations resolved from coordinates or a documented centroid table, and node cut-offs.
//! Everything here is approximate geography on purpose; it must never guess a country.

use crate::contact::{Address, CountryCode};
use crate::error::{FieldError, invalid};
use serde::{Deserialize, Serialize};

/// A WGS84 point in degrees; latitude within ±90, longitude within ±180 (finite).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "RawPoint")]
pub struct GeoPoint {
    lat: f64,
    lon: f64,
}

#[derive(Deserialize)]
struct RawPoint {
    lat: f64,
    lon: f64,
}

impl TryFrom<RawPoint> for GeoPoint {
    type Error = String;
    fn try_from(p: RawPoint) -> Result<Self, String> {
        GeoPoint::parse(p.lat, p.lon).map_err(|e| format!("{}: {}", e.path, e.message))
    }
}

impl GeoPoint {
    /// Errors carry the field (`lat` or `lon`) as their path.
    pub fn parse(lat: f64, lon: f64) -> Result<Self, FieldError> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(FieldError::new(
                "lat",
                "out_of_range",
                "latitude must be between -90 and 90",
            ));
        }
        if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
            return Err(FieldError::new(
                "lon",
                "out_of_range",
                "longitude must be between -180 and 180",
            ));
        }
        Ok(Self { lat, lon })
    }
    pub fn lat(&self) -> f64 {
        self.lat
    }
    pub fn lon(&self) -> f64 {
        self.lon
    }
    /// Great-circle (haversine) distance on a sphere of the Earth's mean radius, 6 371.0088 km,
    /// rounded to whole metres so every cost computed from it is integer arithmetic.
    pub fn distance_m(&self, other: &GeoPoint) -> i64 {
        const R_M: f64 = 6_371_008.8;
        let (p1, p2) = (self.lat.to_radians(), other.lat.to_radians());
        let dp = p2 - p1;
        let dl = (other.lon - self.lon).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        let c = 2.0 * a.sqrt().min(1.0).asin();
        (R_M * c).round() as i64
    }
}

/// How a destination's point was found, so a decision log can say how precise its distances are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PointSource {
    /// The address carried coordinates.
    Coordinates,
    /// A US ZIP code's first three digits, mapped to the centre of its state (±300 km).
    PostalPrefix,
    /// The country's representative point from `COUNTRY_CENTROIDS` (±500 km or worse).
    CountryCentroid,
}

/// One ship-to address as the engine sees it: its country (for `ships_to` and tenant rules)
/// and a point (for distance).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Destination {
    #[schema(value_type = String, example = "US")]
    pub country: CountryCode,
    pub point: GeoPoint,
    pub point_source: PointSource,
}

impl Destination {
    /// Uses `point` when given; else, for the US, the state of the ZIP's 3-digit prefix; else the
    /// country's centroid. A country without a centroid (and no coordinates) is an error with
    /// path `country` and code `unknown_country`: the engine cannot place it on the map.
    pub fn resolve(
        country: &CountryCode,
        postal_code: Option<&str>,
        point: Option<GeoPoint>,
    ) -> Result<Self, FieldError> {
        let country = country.clone();
        if let Some(point) = point {
            return Ok(Self {
                country,
                point,
                point_source: PointSource::Coordinates,
            });
        }
        if country.as_str() == "US"
            && let Some((lat, lon)) = postal_code.and_then(us_zip_centroid)
        {
            let point = GeoPoint { lat, lon };
            return Ok(Self {
                country,
                point,
                point_source: PointSource::PostalPrefix,
            });
        }
        match COUNTRY_CENTROIDS
            .iter()
            .find(|(c, _, _)| *c == country.as_str())
        {
            Some((_, lat, lon)) => Ok(Self {
                country,
                point: GeoPoint {
                    lat: *lat,
                    lon: *lon,
                },
                point_source: PointSource::CountryCentroid,
            }),
            None => Err(FieldError::new(
                "country",
                "unknown_country",
                format!(
                    "routing has no location for country '{}'; send lat and lon with the address",
                    country.as_str()
                ),
            )),
        }
    }

    /// Resolves a parsed address; errors carry paths relative to the address (`country`, `lat`).
    pub fn from_address(a: &Address) -> Result<Self, FieldError> {
        let point = match (a.lat, a.lon) {
            (Some(lat), Some(lon)) => Some(GeoPoint::parse(lat, lon)?),
            _ => None,
        };
        Self::resolve(&a.country, Some(&a.postal_code), point)
    }
}

/// Representative points (degrees) per country: roughly the centre of population, not the
/// geographic centre, because that is where parcels go (Canada's is near the southern border,
/// Australia's on the east coast). Approximate to a few hundred kilometres; good enough to rank
/// nodes on different continents or far sides of a country, not neighbouring ones. Addresses that
/// need better carry coordinates.
pub const COUNTRY_CENTROIDS: &[(&str, f64, f64)] = &[
    ("US", 37.4, -92.2),  // US mean centre of population (Missouri)
    ("CA", 46.0, -79.5),  // Ontario/Quebec corridor
    ("MX", 20.6, -100.0), // central highlands
    ("GB", 52.6, -1.5),
    ("IE", 53.2, -7.4),
    ("FR", 46.8, 2.4),
    ("DE", 50.9, 9.9),
    ("ES", 40.2, -3.7),
    ("IT", 42.6, 12.6),
    ("NL", 52.2, 5.3),
    ("BE", 50.7, 4.5),
    ("LU", 49.7, 6.1),
    ("PT", 39.7, -8.4),
    ("AT", 47.7, 14.6),
    ("CH", 46.9, 8.2),
    ("SE", 59.3, 16.0),
    ("NO", 60.3, 10.0),
    ("DK", 55.8, 10.5),
    ("FI", 61.6, 25.0),
    ("PL", 52.0, 19.4),
    ("CZ", 49.8, 15.5),
    ("GR", 38.5, 23.0),
    ("AU", -32.0, 147.0), // south-east coast
    ("NZ", -38.5, 175.5), // North Island
    ("JP", 35.6, 137.0),
    ("KR", 36.8, 127.5),
    ("SG", 1.35, 103.8),
    ("BR", -19.5, -46.0), // south-east
];

/// US states' rough centres (degrees), keyed by USPS state code.
const US_STATES: &[(&str, f64, f64)] = &[
    ("AK", 61.4, -150.0),
    ("AL", 32.8, -86.8),
    ("AR", 34.9, -92.4),
    ("AZ", 33.7, -111.9),
    ("CA", 36.0, -119.5),
    ("CO", 39.3, -105.3),
    ("CT", 41.6, -72.7),
    ("DC", 38.9, -77.0),
    ("DE", 39.2, -75.5),
    ("FL", 28.1, -81.6),
    ("GA", 33.0, -83.6),
    ("HI", 21.3, -157.8),
    ("IA", 42.0, -93.2),
    ("ID", 44.2, -115.6),
    ("IL", 41.0, -88.6),
    ("IN", 39.9, -86.3),
    ("KS", 38.5, -97.4),
    ("KY", 37.8, -85.3),
    ("LA", 30.9, -91.8),
    ("MA", 42.3, -71.5),
    ("MD", 39.1, -76.8),
    ("ME", 44.6, -69.4),
    ("MI", 43.3, -84.5),
    ("MN", 45.4, -93.9),
    ("MO", 38.5, -92.3),
    ("MS", 32.7, -89.7),
    ("MT", 46.9, -110.5),
    ("NC", 35.6, -79.4),
    ("ND", 47.5, -99.8),
    ("NE", 41.1, -97.6),
    ("NH", 43.4, -71.6),
    ("NJ", 40.3, -74.5),
    ("NM", 34.8, -106.2),
    ("NV", 37.0, -116.5),
    ("NY", 41.8, -74.9),
    ("OH", 40.4, -82.8),
    ("OK", 35.6, -97.0),
    ("OR", 44.6, -122.1),
    ("PA", 40.6, -77.2),
    ("PR", 18.2, -66.4),
    ("RI", 41.7, -71.5),
    ("SC", 33.9, -80.9),
    ("SD", 44.3, -99.4),
    ("TN", 35.8, -86.7),
    ("TX", 31.1, -97.6),
    ("UT", 40.2, -111.9),
    ("VA", 37.8, -78.2),
    ("VT", 44.0, -72.7),
    ("WA", 47.4, -121.5),
    ("WI", 44.3, -89.6),
    ("WV", 38.5, -80.9),
    ("WY", 42.8, -107.3),
];

/// US ZIP 3-digit prefix ranges (inclusive) → state, after the USPS allocation. Gaps (military
/// 090–099, 340, 962–966, Guam 969 and unassigned prefixes) fall back to `US_ZIP_FIRST_DIGIT`.
const US_ZIP3: &[(u16, u16, &str)] = &[
    (5, 5, "NY"),
    (6, 9, "PR"),
    (10, 27, "MA"),
    (28, 29, "RI"),
    (30, 38, "NH"),
    (39, 49, "ME"),
    (50, 54, "VT"),
    (55, 55, "MA"),
    (56, 59, "VT"),
    (60, 69, "CT"),
    (70, 89, "NJ"),
    (100, 149, "NY"),
    (150, 196, "PA"),
    (197, 199, "DE"),
    (200, 205, "DC"),
    (206, 219, "MD"),
    (220, 246, "VA"),
    (247, 268, "WV"),
    (270, 289, "NC"),
    (290, 299, "SC"),
    (300, 319, "GA"),
    (320, 339, "FL"),
    (341, 349, "FL"),
    (350, 369, "AL"),
    (370, 385, "TN"),
    (386, 397, "MS"),
    (398, 399, "GA"),
    (400, 427, "KY"),
    (430, 459, "OH"),
    (460, 479, "IN"),
    (480, 499, "MI"),
    (500, 528, "IA"),
    (530, 549, "WI"),
    (550, 567, "MN"),
    (570, 577, "SD"),
    (580, 588, "ND"),
    (590, 599, "MT"),
    (600, 629, "IL"),
    (630, 658, "MO"),
    (660, 679, "KS"),
    (680, 693, "NE"),
    (700, 714, "LA"),
    (716, 729, "AR"),
    (730, 732, "OK"),
    (733, 733, "TX"),
    (734, 749, "OK"),
    (750, 799, "TX"),
    (800, 816, "CO"),
    (820, 831, "WY"),
    (832, 838, "ID"),
    (840, 847, "UT"),
    (850, 865, "AZ"),
    (870, 884, "NM"),
    (885, 885, "TX"),
    (889, 898, "NV"),
    (900, 961, "CA"),
    (967, 968, "HI"),
    (970, 979, "OR"),
    (980, 994, "WA"),
    (995, 999, "AK"),
];

/// The ten national ZIP areas (first digit) → a rough centre of the area's population.
const US_ZIP_FIRST_DIGIT: [(f64, f64); 10] = [
    (42.0, -72.0),  // 0: New England, NJ, PR
    (41.5, -76.0),  // 1: NY, PA, DE
    (37.5, -78.0),  // 2: DC, MD, VA, WV, NC, SC
    (31.5, -84.5),  // 3: GA, FL, AL, TN, MS
    (40.0, -84.5),  // 4: KY, OH, IN, MI
    (44.0, -93.0),  // 5: IA, WI, MN, SD, ND, MT
    (39.5, -91.0),  // 6: IL, MO, KS, NE
    (31.5, -95.5),  // 7: LA, AR, OK, TX
    (38.5, -108.0), // 8: CO, WY, ID, UT, AZ, NM, NV
    (37.0, -120.0), // 9: CA, HI, OR, WA, AK
];

/// The state centre for a US ZIP (5 digits, or ZIP+4), by its first three digits; the ZIP
/// area's centre when the prefix is not in the table. `None` when it is not a ZIP at all.
pub fn us_zip_centroid(zip: &str) -> Option<(f64, f64)> {
    let digits: Vec<u8> = zip.trim().bytes().take(5).collect();
    if digits.len() < 5 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let prefix = digits[..3]
        .iter()
        .fold(0u16, |n, d| n * 10 + (d - b'0') as u16);
    let state = US_ZIP3
        .iter()
        .find(|(lo, hi, _)| (*lo..=*hi).contains(&prefix))
        .map(|(_, _, s)| *s);
    match state.and_then(|s| US_STATES.iter().find(|(c, _, _)| *c == s)) {
        Some((_, lat, lon)) => Some((*lat, *lon)),
        None => Some(US_ZIP_FIRST_DIGIT[(digits[0] - b'0') as usize]),
    }
}

/// A node's daily cut-off time, local to the node: orders routed at or after it ship tomorrow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "17:00")]
pub struct Cutoff(u16);

impl Cutoff {
    /// `HH:MM`, 24-hour, 00:00 to 23:59.
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let bad = || {
            invalid(
                "invalid_cutoff",
                format!("'{s}' is not a time of day HH:MM between 00:00 and 23:59"),
            )
        };
        let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(bad());
        }
        let h: u16 = h.parse().map_err(|_| bad())?;
        let m: u16 = m.parse().map_err(|_| bad())?;
        if h > 23 || m > 59 {
            return Err(bad());
        }
        Ok(Self(h * 60 + m))
    }

    /// Whether the cut-off has passed at `now_unix_s` for a node whose local time is UTC plus
    /// `utc_offset_minutes` (e.g. -300 for America/Chicago in winter). Resolving a time-zone
    /// name to the offset in effect (daylight saving included) is the caller's job.
    pub fn has_passed(&self, now_unix_s: i64, utc_offset_minutes: i32) -> bool {
        let local_s = now_unix_s + utc_offset_minutes as i64 * 60;
        let minute = local_s.rem_euclid(86_400) / 60;
        minute >= self.0 as i64
    }
}

impl TryFrom<String> for Cutoff {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).map_err(|e| e.message)
    }
}
impl std::fmt::Display for Cutoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}
impl From<Cutoff> for String {
    fn from(c: Cutoff) -> String {
        c.to_string()
    }
}
