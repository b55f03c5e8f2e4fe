//! Use cases that compose domain rules with storage: pricing a cart against the live catalog,
//! syncing carts, tokenizing cards, placing orders, adjusting stock, upserting products. Each
//! function is one use case; handlers call exactly one. Services take parsed domain values and
//! return `ServiceError`; they know nothing of HTTP (the API layer maps both ways).

pub mod accounts;
pub mod carts;
pub mod catalog;
pub mod checkout;
pub mod error;
pub mod events;
pub mod forecasts;
pub mod holds;
pub mod idempotency;
pub mod inventory;
pub mod lifecycle;
pub mod locations;
pub mod me;
pub mod passkeys;
pub mod payments;
pub mod pricing;
pub mod recovery;
pub mod returns;
pub mod routing;
pub mod shipping;
pub mod webhooks;

pub use error::{ConflictReason, ServiceError};

/// RFC 3339 (UTC, always three fractional digits) for a unix-millisecond timestamp.
pub fn rfc3339(ms: i64) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_default()
}

/// (year, month) now, UTC: for card expiry checks.
pub fn year_month_now() -> (i64, i64) {
    let now = time::OffsetDateTime::now_utc();
    (now.year() as i64, now.month() as u8 as i64)
}
