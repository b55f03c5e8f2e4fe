//! Destination-based sales tax / VAT on exclusive prices. The rate table is a value in code
//! for now (a later issue moves it to per-tenant configuration); rounding uses `apply_basis_points`.

use crate::contact::Address;

/// Tax rate in basis points for goods shipped to `address`.
pub fn rate_bps(address: &Address) -> u32 {
    match address.country.as_str() {
        "US" => match address
            .region
            .as_deref()
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            Some("CA") => 725,
            Some("NY") => 400,
            Some("TX") => 625,
            Some("WA") => 650,
            Some("IL") => 625,
            Some("FL") => 600,
            _ => 0,
        },
        "CA" => 500,
        "GB" | "FR" | "AT" => 2000,
        "DE" => 1900,
        "NL" | "ES" | "BE" => 2100,
        "IT" => 2200,
        "IE" => 2300,
        "AU" => 1000,
        "NZ" => 1500,
        "JP" => 1000,
        _ => 0,
    }
}
