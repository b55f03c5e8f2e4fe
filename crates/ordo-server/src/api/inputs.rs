//! Request bodies as clients send them, and their parsing into domain values. Every field is
//! checked and every failure is reported at once with its path; nothing past this module
//! re-validates. Every input struct denies unknown fields: a typo (`promo_code`) is a 422 naming
//! it, never a silently dropped discount.

use crate::services::checkout::{CheckoutRequest, CheckoutSource};
use ordo_domain::contact::{AddressInput, parse_guest};
use ordo_domain::pricing::{LineRequest, ShipmentRequest};
use ordo_domain::{Address, CartDoc, Currency, CustomerRef, FieldErrors, Money, Quantity, Sku};
use serde::{Deserialize, Serialize};

pub const MAX_LINES: usize = 100;
pub const MAX_SHIPMENTS: usize = 10;
pub const MAX_PROMO_CODES: usize = 5;
pub const MAX_TENDERS: usize = 5;

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoneyInput {
    /// Integer minor units (1900 is 19.00 USD).
    #[schema(minimum = 0)]
    pub amount: i64,
    /// ISO 4217 code.
    #[schema(pattern = "^[A-Za-z]{3}$")]
    pub currency: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineInput {
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub sku: String,
    #[schema(minimum = 1, maximum = 10000)]
    pub quantity: i64,
    /// The unit price the app showed for this line (optional); a different current price comes
    /// back as a `price_changed` difference instead of a silent change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<MoneyInput>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressBody {
    pub name: Option<String>,
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
    /// E.164.
    pub phone: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipmentInput {
    pub address: AddressBody,
    /// The lines (and quantities) going to this address; may be omitted with a single shipment.
    #[serde(default)]
    pub lines: Vec<LineInput>,
}

/// A guest (`email`, `phone`, `name`) or a member (`customer_id`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerInput {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub name: Option<String>,
    pub customer_id: Option<String>,
}

/// The app's whole local cart.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CartInput {
    #[serde(default)]
    pub lines: Vec<LineInput>,
    #[serde(default)]
    pub promo_codes: Vec<String>,
    pub customer: Option<CustomerInput>,
    #[serde(default)]
    pub shipments: Vec<ShipmentInput>,
    /// `standard` (default), `express` or `same_day`: see `GET /v1/carts/{id}/shipping-options`.
    #[schema(pattern = "^(standard|express|same_day)$")]
    pub shipping_option: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenderInput {
    pub token: String,
    pub amount: MoneyInput,
}

/// Place an order from a synced cart (`cart_id`) or from inline `lines`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderInput {
    pub cart_id: Option<String>,
    pub lines: Option<Vec<LineInput>>,
    pub promo_codes: Option<Vec<String>>,
    pub customer: Option<CustomerInput>,
    pub shipments: Option<Vec<ShipmentInput>>,
    #[serde(default)]
    pub payments: Vec<TenderInput>,
    /// The total the shopper saw; a different total is a 409, never a silent change.
    pub expected_total: Option<MoneyInput>,
}

pub fn parse_money(m: &MoneyInput, path: &str, errs: &mut FieldErrors) -> Option<Money> {
    errs.take(path, Money::parse_non_negative(m.amount, &m.currency))
}

pub fn parse_lines(
    lines: &[LineInput],
    path: &str,
    errs: &mut FieldErrors,
    quoted: &mut Vec<(Sku, Money)>,
) -> Vec<LineRequest> {
    if lines.len() > MAX_LINES {
        errs.add(path, "too_many", format!("at most {MAX_LINES} lines"));
        return vec![];
    }
    let mut out: Vec<LineRequest> = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let sku = errs.take(&format!("{p}.sku"), Sku::parse(&l.sku));
        let qty = errs.take(&format!("{p}.quantity"), Quantity::parse(l.quantity));
        let price = l
            .unit_price
            .as_ref()
            .and_then(|m| parse_money(m, &format!("{p}.unit_price"), errs));
        if let (Some(sku), Some(q)) = (sku, qty) {
            if let Some(price) = price {
                quoted.push((sku.clone(), price));
            }
            out.push(LineRequest {
                sku,
                quantity: q.get(),
            });
        }
    }
    for merged in ordo_domain::pricing::merge_lines(&out) {
        if merged.quantity > Quantity::MAX {
            errs.add(
                path,
                "too_large",
                format!(
                    "{} appears with {} units in all; at most {} per SKU",
                    merged.sku,
                    merged.quantity,
                    Quantity::MAX
                ),
            );
        }
    }
    out
}

pub fn parse_address(a: &AddressBody, path: &str, errs: &mut FieldErrors) -> Option<Address> {
    let input = AddressInput {
        name: a.name.as_deref(),
        line1: a.line1.as_deref(),
        line2: a.line2.as_deref(),
        city: a.city.as_deref(),
        region: a.region.as_deref(),
        postal_code: a.postal_code.as_deref(),
        country: a.country.as_deref(),
        phone: a.phone.as_deref(),
        lat: a.lat,
        lon: a.lon,
    };
    Address::parse(&input, path, errs)
}

pub fn parse_shipments(
    shipments: &[ShipmentInput],
    path: &str,
    errs: &mut FieldErrors,
) -> Vec<ShipmentRequest> {
    if shipments.len() > MAX_SHIPMENTS {
        errs.add(
            path,
            "too_many",
            format!("at most {MAX_SHIPMENTS} shipments"),
        );
        return vec![];
    }
    let mut ignored = Vec::new();
    shipments
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let p = format!("{path}[{i}]");
            let address = parse_address(&s.address, &format!("{p}.address"), errs);
            let lines = parse_lines(&s.lines, &format!("{p}.lines"), errs, &mut ignored);
            address.map(|address| ShipmentRequest { address, lines })
        })
        .collect()
}

pub fn parse_customer(
    c: &CustomerInput,
    path: &str,
    errs: &mut FieldErrors,
) -> Option<CustomerRef> {
    if let Some(id) = c.customer_id.as_deref() {
        let id = id.trim();
        if id.is_empty() || id.len() > 64 || ordo_domain::contact::has_control_chars(id) {
            errs.add(
                format!("{path}.customer_id"),
                "invalid_id",
                "a customer id has 1 to 64 characters",
            );
            return None;
        }
        return Some(CustomerRef::Member {
            customer_id: id.to_string(),
        });
    }
    parse_guest(
        c.email.as_deref(),
        c.phone.as_deref(),
        c.name.as_deref(),
        path,
        errs,
    )
    .map(CustomerRef::Guest)
}

pub fn parse_promo_codes(codes: &[String], path: &str, errs: &mut FieldErrors) -> Vec<String> {
    if codes.len() > MAX_PROMO_CODES {
        errs.add(
            path,
            "too_many",
            format!("at most {MAX_PROMO_CODES} promotion codes"),
        );
        return vec![];
    }
    let mut out = Vec::new();
    for (i, c) in codes.iter().enumerate() {
        let code = ordo_domain::promotion::normalize_code(c);
        if code.is_empty()
            || code.len() > 64
            || !code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            errs.add(
                format!("{path}[{i}]"),
                "invalid_format",
                "a promotion code has 1 to 64 letters, digits, '-' or '_'",
            );
        } else {
            out.push(code);
        }
    }
    out
}

/// Parses a cart body; also returns the unit prices the app says it displayed.
pub fn parse_cart(input: &CartInput) -> Result<(CartDoc, Vec<(Sku, Money)>), FieldErrors> {
    let mut errs = FieldErrors::default();
    let mut quoted = Vec::new();
    let lines = parse_lines(&input.lines, "lines", &mut errs, &mut quoted);
    let promo_codes = parse_promo_codes(&input.promo_codes, "promo_codes", &mut errs);
    let customer = input
        .customer
        .as_ref()
        .and_then(|c| parse_customer(c, "customer", &mut errs));
    let shipments = parse_shipments(&input.shipments, "shipments", &mut errs);
    let shipping_option = match input.shipping_option.as_deref() {
        None => None,
        Some(s) => match ordo_domain::routing::ShippingSpeed::parse(s) {
            Some(ordo_domain::routing::ShippingSpeed::Standard) => None,
            Some(speed) => Some(speed),
            None => {
                errs.add(
                    "shipping_option",
                    "unknown_option",
                    "a shipping option is standard, express or same_day",
                );
                None
            }
        },
    };
    errs.into_result()?;
    Ok((
        CartDoc {
            lines,
            promo_codes,
            customer,
            shipments,
            shipping_option,
        },
        quoted,
    ))
}

pub fn currency_or(c: &str) -> Option<Currency> {
    Currency::parse(c).ok()
}

/// Parses a `POST /v1/orders` body into the checkout's domain values; every invalid field is
/// reported at once with its path.
/// `customer_required`: false for a signed-in shopper, who buys as themselves.
pub fn parse_order(
    input: &OrderInput,
    customer_required: bool,
) -> Result<CheckoutRequest, FieldErrors> {
    let mut errs = FieldErrors::default();
    let source = match (&input.cart_id, &input.lines) {
        (Some(_), Some(_)) => {
            errs.add(
                "lines",
                "conflicting",
                "give either cart_id or lines, not both",
            );
            None
        }
        (Some(id), None) => Some(CheckoutSource::Cart(id.clone())),
        (None, Some(lines)) => {
            let mut quoted = Vec::new();
            let lines = parse_lines(lines, "lines", &mut errs, &mut quoted);
            Some(CheckoutSource::Lines { lines, quoted })
        }
        (None, None) => {
            errs.add("lines", "required", "give cart_id or lines");
            None
        }
    };
    let promo_codes = input
        .promo_codes
        .as_ref()
        .map(|c| parse_promo_codes(c, "promo_codes", &mut errs));
    let customer = input
        .customer
        .as_ref()
        .and_then(|c| parse_customer(c, "customer", &mut errs));
    let shipments = input
        .shipments
        .as_ref()
        .map(|s| parse_shipments(s, "shipments", &mut errs));
    if !matches!(source, Some(CheckoutSource::Cart(_))) {
        // Inline lines have no cart to take who buys and where it goes from.
        if input.customer.is_none() && customer_required {
            errs.add(
                "customer",
                "required",
                "a guest's email, phone and name, or a member's customer_id",
            );
        }
        if input.shipments.as_ref().is_none_or(|s| s.is_empty()) {
            errs.add(
                "shipments",
                "required",
                "an order needs at least one shipping address",
            );
        }
    }
    let tenders = parse_tenders(&input.payments, &mut errs);
    let expected_total = input
        .expected_total
        .as_ref()
        .and_then(|m| parse_money(m, "expected_total", &mut errs));
    errs.into_result()?;
    let source = source.ok_or_else(|| {
        FieldErrors(vec![ordo_domain::FieldError::new(
            "lines",
            "required",
            "give cart_id or lines",
        )])
    })?;
    Ok(CheckoutRequest {
        source,
        promo_codes,
        customer,
        shipments,
        tenders,
        expected_total,
        step_up: None,
    })
}

fn parse_tenders(payments: &[TenderInput], errs: &mut FieldErrors) -> Vec<(String, Money)> {
    if payments.len() > MAX_TENDERS {
        errs.add(
            "payments",
            "too_many",
            format!("at most {MAX_TENDERS} tenders"),
        );
        return vec![];
    }
    let mut out = Vec::new();
    for (i, t) in payments.iter().enumerate() {
        let p = format!("payments[{i}]");
        let token = t.token.trim();
        if token.is_empty() || token.len() > 64 {
            errs.add(
                format!("{p}.token"),
                "invalid_token",
                "a payment token from POST /v1/payment-tokens is required",
            );
        }
        if payments[..i].iter().any(|o| o.token.trim() == token) {
            errs.add(
                format!("{p}.token"),
                "duplicate_token",
                "each tender needs its own token",
            );
        }
        if let Some(m) = parse_money(&t.amount, &format!("{p}.amount"), errs) {
            if m.amount == 0 {
                errs.add(
                    format!("{p}.amount.amount"),
                    "not_positive",
                    "a tender amount must be positive",
                );
            }
            out.push((token.to_string(), m));
        }
    }
    out
}
