//! Who buys and where it goes: email, E.164 phone, ISO 3166-1 country, postal address, customer.
//! Constructors reject malformed input, so a `GuestContact` or an `Address` is always usable.

use crate::error::{FieldError, FieldErrors, invalid};
use serde::{Deserialize, Serialize};

/// An email address with one `@`, a non-empty local part and a dotted domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let s = s.trim();
        let bad = || {
            invalid(
                "invalid_email",
                format!("'{s}' is not a valid email address"),
            )
        };
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = s.split_once('@').ok_or_else(bad)?;
        if local.is_empty() || local.len() > 64 || domain.contains('@') {
            return Err(bad());
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        };
        if labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err(bad());
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A phone number in E.164: `+`, a non-zero digit, then 7 to 14 more digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct PhoneE164(String);

impl PhoneE164 {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let s = s.trim();
        let digits = s.strip_prefix('+').unwrap_or("");
        let ok = digits.len() >= 8
            && digits.len() <= 15
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(invalid(
                "invalid_phone",
                format!("'{s}' is not an E.164 phone number (e.g. +14155550100)"),
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ \
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL \
GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR \
LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK \
PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR \
TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// An ISO 3166-1 alpha-2 country code that exists.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct CountryCode(String);

impl CountryCode {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let up = s.trim().to_ascii_uppercase();
        if up.len() == 2 && COUNTRIES.split(' ').any(|c| c == up) {
            Ok(Self(up))
        } else {
            Err(invalid(
                "unknown_country",
                format!("'{s}' is not an ISO 3166-1 alpha-2 country code"),
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A shipping address. Coordinates are optional (the routing engine uses them when present).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Address {
    pub name: String,
    pub line1: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    pub city: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub postal_code: String,
    #[schema(value_type = String, example = "US")]
    pub country: CountryCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<PhoneE164>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
}

/// The raw fields of an address as a client sends them; `parse` checks them all at once.
#[derive(Debug, Clone, Default)]
pub struct AddressInput<'a> {
    pub name: Option<&'a str>,
    pub line1: Option<&'a str>,
    pub line2: Option<&'a str>,
    pub city: Option<&'a str>,
    pub region: Option<&'a str>,
    pub postal_code: Option<&'a str>,
    pub country: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

/// Printable text only: control characters (NUL above all) are refused.
pub fn has_control_chars(s: &str) -> bool {
    s.chars().any(char::is_control)
}

fn required_text(
    errs: &mut FieldErrors,
    path: &str,
    v: Option<&str>,
    max: usize,
) -> Option<String> {
    match v.map(str::trim) {
        Some(s) if has_control_chars(s) => {
            errs.add(
                path,
                "invalid_characters",
                "control characters are not allowed",
            );
            None
        }
        None | Some("") => {
            errs.add(path, "required", "this field is required");
            None
        }
        Some(s) if s.chars().count() > max => {
            errs.add(path, "too_long", format!("at most {max} characters"));
            None
        }
        Some(s) => Some(s.to_string()),
    }
}

fn optional_text(
    errs: &mut FieldErrors,
    path: &str,
    v: Option<&str>,
    max: usize,
) -> Option<String> {
    match v.map(str::trim) {
        Some(s) if has_control_chars(s) => {
            errs.add(
                path,
                "invalid_characters",
                "control characters are not allowed",
            );
            None
        }
        None | Some("") => None,
        Some(s) if s.chars().count() > max => {
            errs.add(path, "too_long", format!("at most {max} characters"));
            None
        }
        Some(s) => Some(s.to_string()),
    }
}

impl Address {
    /// Parses every field; errors carry paths relative to `prefix` (e.g. `shipments[0].address`).
    pub fn parse(
        input: &AddressInput<'_>,
        prefix: &str,
        errs: &mut FieldErrors,
    ) -> Option<Address> {
        let p = |f: &str| format!("{prefix}.{f}");
        let before = errs.0.len();
        let name = required_text(errs, &p("name"), input.name, 200);
        let line1 = required_text(errs, &p("line1"), input.line1, 200);
        let line2 = optional_text(errs, &p("line2"), input.line2, 200);
        let city = required_text(errs, &p("city"), input.city, 100);
        let region = optional_text(errs, &p("region"), input.region, 100);
        let postal_code = required_text(errs, &p("postal_code"), input.postal_code, 20);
        let country = match input.country {
            None => {
                errs.add(p("country"), "required", "this field is required");
                None
            }
            Some(c) => errs.take(&p("country"), CountryCode::parse(c)),
        };
        let phone = input
            .phone
            .filter(|s| !s.trim().is_empty())
            .and_then(|s| errs.take(&p("phone"), PhoneE164::parse(s)));
        if let Some(lat) = input.lat {
            if !(-90.0..=90.0).contains(&lat) {
                errs.add(
                    p("lat"),
                    "out_of_range",
                    "latitude must be between -90 and 90",
                );
            }
        }
        if let Some(lon) = input.lon {
            if !(-180.0..=180.0).contains(&lon) {
                errs.add(
                    p("lon"),
                    "out_of_range",
                    "longitude must be between -180 and 180",
                );
            }
        }
        if input.lat.is_some() != input.lon.is_some() {
            errs.add(p("lat"), "incomplete", "give both lat and lon, or neither");
        }
        if errs.0.len() != before {
            return None;
        }
        Some(Address {
            name: name?,
            line1: line1?,
            line2,
            city: city?,
            region,
            postal_code: postal_code?,
            country: country?,
            phone,
            lat: input.lat,
            lon: input.lon,
        })
    }
}

/// A guest's contact data, all validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GuestContact {
    #[schema(value_type = String)]
    pub email: Email,
    #[schema(value_type = String)]
    pub phone: PhoneE164,
    pub name: String,
}

/// Who places the order: a guest with contact data, or a known member by id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Customer {
    Guest(GuestContact),
    Member {
        customer_id: String,
        email: String,
        name: String,
    },
}

impl Customer {
    pub fn email(&self) -> &str {
        match self {
            Customer::Guest(g) => g.email.as_str(),
            Customer::Member { email, .. } => email,
        }
    }

    /// The member's id; `None` for a guest.
    pub fn customer_id(&self) -> Option<&str> {
        match self {
            Customer::Guest(_) => None,
            Customer::Member { customer_id, .. } => Some(customer_id),
        }
    }
}

/// Parses a guest's contact fields, reporting each bad one under `prefix`.
pub fn parse_guest(
    email: Option<&str>,
    phone: Option<&str>,
    name: Option<&str>,
    prefix: &str,
    errs: &mut FieldErrors,
) -> Option<GuestContact> {
    let before = errs.0.len();
    let email = match email {
        None => {
            errs.add(
                format!("{prefix}.email"),
                "required",
                "a guest needs an email",
            );
            None
        }
        Some(e) => errs.take(&format!("{prefix}.email"), Email::parse(e)),
    };
    let phone = match phone {
        None => {
            errs.add(
                format!("{prefix}.phone"),
                "required",
                "a guest needs a phone number in E.164",
            );
            None
        }
        Some(p) => errs.take(&format!("{prefix}.phone"), PhoneE164::parse(p)),
    };
    let name = required_text(errs, &format!("{prefix}.name"), name, 200);
    if errs.0.len() != before {
        return None;
    }
    Some(GuestContact {
        email: email?,
        phone: phone?,
        name: name?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(Email::parse("ana@example.com").is_ok());
        assert_eq!(
            Email::parse("Ana@Example.COM").unwrap().as_str(),
            "Ana@example.com"
        );
        for bad in [
            "",
            "ana",
            "ana@",
            "@example.com",
            "ana@example",
            "a b@example.com",
            "ana@@example.com",
            "ana@-x.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn phones_are_e164() {
        assert!(PhoneE164::parse("+14155550100").is_ok());
        for bad in [
            "4155550100",
            "+0155550100",
            "+1 415 555 0100",
            "+1234567",
            "+1234567890123456",
        ] {
            assert!(PhoneE164::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn countries_exist() {
        assert_eq!(CountryCode::parse("de").unwrap().as_str(), "DE");
        assert!(CountryCode::parse("XX").is_err());
        assert!(CountryCode::parse("USA").is_err());
    }

    #[test]
    fn address_reports_every_bad_field_with_its_path() {
        let mut errs = FieldErrors::default();
        let input = AddressInput {
            name: Some("Ana"),
            country: Some("ZZ"),
            lat: Some(91.0),
            lon: Some(0.0),
            ..Default::default()
        };
        assert!(Address::parse(&input, "shipments[0].address", &mut errs).is_none());
        let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "shipments[0].address.line1",
                "shipments[0].address.city",
                "shipments[0].address.postal_code",
                "shipments[0].address.country",
                "shipments[0].address.lat"
            ]
        );
    }
}
