//! Calendar days as plain day numbers: `Day` can only hold a real proleptic-Gregorian date, parsed
//! from `YYYY-MM-DD`. Series arithmetic works on day numbers; this module is the only place that
//! knows about months and leap years.

use std::fmt;

/// A calendar day, counted from 1970-01-01 (day 0). Built only from a valid date.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Day(i32);

/// Why a text is not a `YYYY-MM-DD` date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a date like 2011-09-30")]
pub struct BadDate(pub String);

impl Day {
    /// Earliest and latest years accepted: anything outside is a typo, not sales history.
    pub const MIN_YEAR: i32 = 1900;
    pub const MAX_YEAR: i32 = 2200;

    /// Parses `YYYY-MM-DD` (a time part after a space or `T` is ignored, e.g. `2011-09-30 08:00`).
    pub fn parse(text: &str) -> Result<Day, BadDate> {
        let bad = || BadDate(text.to_string());
        let t = text.trim();
        let date = t.split([' ', 'T']).next().unwrap_or("");
        let mut parts = date.split('-');
        let (Some(y), Some(m), Some(d), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if y.len() != 4 || m.is_empty() || m.len() > 2 || d.is_empty() || d.len() > 2 {
            return Err(bad());
        }
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(y) || !all_digits(m) || !all_digits(d) {
            return Err(bad());
        }
        let (y, m, d): (i32, u32, u32) = (
            y.parse().map_err(|_| bad())?,
            m.parse().map_err(|_| bad())?,
            d.parse().map_err(|_| bad())?,
        );
        Day::from_ymd(y, m, d).ok_or_else(bad)
    }

    /// The day of a year, month (1-12) and day of month, or `None` if there is no such date.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Day> {
        if !(Self::MIN_YEAR..=Self::MAX_YEAR).contains(&year) || !(1..=12).contains(&month) {
            return None;
        }
        if day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Day(days_from_civil(year, month, day)))
    }

    /// Days since 1970-01-01.
    pub fn number(self) -> i32 {
        self.0
    }

    /// The day `n` days later (earlier when negative).
    pub fn plus(self, n: i32) -> Day {
        Day(self.0 + n)
    }

    /// Days from `earlier` to `self`.
    pub fn since(self, earlier: Day) -> i32 {
        self.0 - earlier.0
    }

    /// Monday = 0 … Sunday = 6.
    pub fn weekday(self) -> usize {
        // 1970-01-01 was a Thursday (3).
        (self.0 + 3).rem_euclid(7) as usize
    }

    /// (year, month, day of month).
    pub fn ymd(self) -> (i32, u32, u32) {
        civil_from_days(self.0)
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

// Howard Hinnant's civil-date algorithms (public-domain arithmetic).
fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i32;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i32) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_round_trip() {
        let d = Day::parse("2011-09-30").unwrap();
        assert_eq!(d.to_string(), "2011-09-30");
        assert_eq!(Day::parse("2011-09-30 08:26:00").unwrap(), d);
        assert_eq!(Day::parse("1970-01-01").unwrap().number(), 0);
        assert_eq!(
            Day::parse("2012-02-29").unwrap().plus(1).to_string(),
            "2012-03-01"
        );
    }

    #[test]
    fn weekdays_are_monday_based() {
        assert_eq!(Day::parse("2011-10-01").unwrap().weekday(), 5); // a Saturday
        assert_eq!(Day::parse("2011-09-26").unwrap().weekday(), 0); // a Monday
    }

    #[test]
    fn rejects_impossible_dates() {
        for bad in [
            "2011-02-29",
            "2011-13-01",
            "2011-00-10",
            "11-09-30",
            "2011/09/30",
            "",
            "yesterday",
            "2011-09-3x",
            "0001-01-01",
        ] {
            assert!(Day::parse(bad).is_err(), "{bad} parsed");
        }
    }

    proptest::proptest! {
        #[test]
        fn civil_round_trip(n in -25_000i32..80_000) {
            let (y, m, d) = civil_from_days(n);
            proptest::prop_assert_eq!(days_from_civil(y, m, d), n);
        }
    }
}
