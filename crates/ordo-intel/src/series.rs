//! Daily demand series: a `Panel` holds one series per SKU over one shared, gap-free run of days
//! (a day without sales is a zero). Built once from rows; afterwards every method indexes days by
//! position and never re-checks dates.

use crate::calendar::Day;
use std::collections::HashMap;

/// One SKU's daily units, aligned with its panel's days.
#[derive(Debug, Clone, PartialEq)]
pub struct DemandSeries {
    pub sku: String,
    pub units: Vec<f64>,
}

/// Series sharing the days `start ..= start + len - 1`.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    start: Day,
    len: usize,
    series: Vec<DemandSeries>,
}

/// Why rows cannot make a panel.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PanelError {
    #[error("no rows: the history is empty")]
    Empty,
    #[error("the history spans {days} days ({first} to {last}); at most {max} days are accepted")]
    SpanTooLong {
        days: i64,
        first: Day,
        last: Day,
        max: i64,
    },
    #[error("{series} series × {days} days is too large ({cells} cells, at most {max})")]
    TooLarge {
        series: usize,
        days: usize,
        cells: usize,
        max: usize,
    },
    #[error("a series has {got} days, the panel has {expected}")]
    Misaligned { got: usize, expected: usize },
}

/// Longest history accepted (20 years of days).
pub const MAX_SPAN_DAYS: i64 = 20 * 366;
/// Most series × days cells held in memory at once.
pub const MAX_CELLS: usize = 250_000_000;

/// Collects `(sku, day, units)` rows; repeated SKU-days are summed.
#[derive(Debug, Default)]
pub struct PanelBuilder {
    index: HashMap<String, u32>,
    skus: Vec<String>,
    rows: Vec<(u32, i32, f64)>,
    first: Option<Day>,
    last: Option<Day>,
}

impl PanelBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one row. Units are already known to be finite and non-negative.
    pub fn add(&mut self, sku: &str, day: Day, units: f64) {
        let id = match self.index.get(sku) {
            Some(&id) => id,
            None => {
                let id = self.skus.len() as u32;
                self.index.insert(sku.to_string(), id);
                self.skus.push(sku.to_string());
                id
            }
        };
        self.rows.push((id, day.number(), units));
        self.first = Some(self.first.map_or(day, |f| f.min(day)));
        self.last = Some(self.last.map_or(day, |l| l.max(day)));
    }

    /// The first and last day seen so far.
    pub fn span(&self) -> Option<(Day, Day)> {
        Some((self.first?, self.last?))
    }

    /// Builds the panel over first ..= last day seen (or ..= `until` when later); SKUs sorted.
    pub fn build(self, until: Option<Day>) -> Result<Panel, PanelError> {
        let (Some(first), Some(last)) = (self.first, self.last) else {
            return Err(PanelError::Empty);
        };
        let last = until.map_or(last, |u| u.max(last));
        let days = i64::from(last.since(first)) + 1;
        if days > MAX_SPAN_DAYS {
            return Err(PanelError::SpanTooLong {
                days,
                first,
                last,
                max: MAX_SPAN_DAYS,
            });
        }
        let len = days as usize;
        let cells = len.saturating_mul(self.skus.len());
        if cells > MAX_CELLS {
            return Err(PanelError::TooLarge {
                series: self.skus.len(),
                days: len,
                cells,
                max: MAX_CELLS,
            });
        }
        let mut units = vec![vec![0.0; len]; self.skus.len()];
        for (id, day, u) in self.rows {
            units[id as usize][(day - first.number()) as usize] += u;
        }
        let mut series: Vec<DemandSeries> = self
            .skus
            .into_iter()
            .zip(units)
            .map(|(sku, units)| DemandSeries { sku, units })
            .collect();
        series.sort_by(|a, b| a.sku.cmp(&b.sku));
        Ok(Panel {
            start: first,
            len,
            series,
        })
    }
}

impl Panel {
    /// A panel from whole series; every series must have `len` days.
    pub fn new(start: Day, series: Vec<DemandSeries>) -> Result<Panel, PanelError> {
        let Some(len) = series.first().map(|s| s.units.len()) else {
            return Err(PanelError::Empty);
        };
        if len == 0 {
            return Err(PanelError::Empty);
        }
        if let Some(bad) = series.iter().find(|s| s.units.len() != len) {
            return Err(PanelError::Misaligned {
                got: bad.units.len(),
                expected: len,
            });
        }
        Ok(Panel { start, len, series })
    }

    pub fn start(&self) -> Day {
        self.start
    }

    /// The last day with data.
    pub fn end(&self) -> Day {
        self.start.plus(self.len as i32 - 1)
    }

    /// Number of days.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn series(&self) -> &[DemandSeries] {
        &self.series
    }

    /// The day at position `i`.
    pub fn day(&self, i: usize) -> Day {
        self.start.plus(i as i32)
    }

    /// The same series cut to the first `days` days (the history as it was at that cut-off).
    pub fn truncated(&self, days: usize) -> Panel {
        let days = days.min(self.len).max(1);
        Panel {
            start: self.start,
            len: days,
            series: self
                .series
                .iter()
                .map(|s| DemandSeries {
                    sku: s.sku.clone(),
                    units: s.units[..days].to_vec(),
                })
                .collect(),
        }
    }

    /// Weekdays (Monday = 0) on which no series ever sold anything: the shop is closed then.
    pub fn closed_weekdays(&self) -> [bool; 7] {
        let mut sold = [0.0f64; 7];
        let mut seen = [0usize; 7];
        for i in 0..self.len {
            let w = self.day(i).weekday();
            seen[w] += 1;
            sold[w] += self.series.iter().map(|s| s.units[i]).sum::<f64>();
        }
        // A weekday is only "closed" when it occurred at least four times with no sale at all.
        std::array::from_fn(|w| seen[w] >= 4 && sold[w] == 0.0)
    }

    /// Indices of the `n` series with the most units in the last `window` days (ties by SKU).
    pub fn busiest(&self, n: usize, window: usize) -> Vec<usize> {
        let from = self.len.saturating_sub(window);
        let mut idx: Vec<usize> = (0..self.series.len()).collect();
        let total = |i: usize| self.series[i].units[from..].iter().sum::<f64>();
        idx.sort_by(|&a, &b| {
            total(b)
                .total_cmp(&total(a))
                .then(self.series[a].sku.cmp(&self.series[b].sku))
        });
        idx.truncate(n);
        idx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> Day {
        Day::parse(s).unwrap()
    }

    #[test]
    fn missing_days_are_zero_and_repeats_sum() {
        let mut b = PanelBuilder::new();
        b.add("B", day("2011-01-01"), 2.0);
        b.add("A", day("2011-01-03"), 1.0);
        b.add("A", day("2011-01-03"), 4.0);
        let p = b.build(None).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p.series()[0].sku, "A");
        assert_eq!(p.series()[0].units, vec![0.0, 0.0, 5.0]);
        assert_eq!(p.series()[1].units, vec![2.0, 0.0, 0.0]);
        assert_eq!(p.end(), day("2011-01-03"));
    }

    #[test]
    fn empty_and_absurd_spans_are_errors() {
        assert_eq!(PanelBuilder::new().build(None), Err(PanelError::Empty));
        let mut b = PanelBuilder::new();
        b.add("A", day("1901-01-01"), 1.0);
        b.add("A", day("2011-01-01"), 1.0);
        assert!(matches!(b.build(None), Err(PanelError::SpanTooLong { .. })));
    }

    #[test]
    fn closed_weekdays_are_found() {
        let start = day("2011-01-03"); // Monday
        let units: Vec<f64> = (0..70)
            .map(|i| if i % 7 == 5 { 0.0 } else { 3.0 })
            .collect();
        let p = Panel::new(
            start,
            vec![DemandSeries {
                sku: "A".into(),
                units,
            }],
        )
        .unwrap();
        let closed = p.closed_weekdays();
        assert_eq!(closed, [false, false, false, false, false, true, false]);
    }
}
