//! Forecast error measures: MASE scaled by the in-sample weekly-naive error, bias and interval
//! coverage. One definition each, shared by backtests, model selection and drift checks.

/// Season length of the weekly-naive scale.
pub const WEEK: usize = 7;

/// Mean absolute error of the weekly-naive forecast inside `history` (|y[t] - y[t-7]|), or `None`
/// when the history is shorter than two weeks or the error is zero.
pub fn weekly_naive_scale(history: &[f64]) -> Option<f64> {
    if history.len() <= WEEK {
        return None;
    }
    let n = history.len() - WEEK;
    let sum: f64 = (WEEK..history.len())
        .map(|t| (history[t] - history[t - WEEK]).abs())
        .sum();
    let scale = sum / n as f64;
    (scale > 0.0).then_some(scale)
}

/// Mean absolute error of `forecast` against `actual`, divided by `scale`.
pub fn mase(actual: &[f64], forecast: &[f64], scale: f64) -> f64 {
    mae(actual, forecast) / scale
}

pub fn mae(actual: &[f64], forecast: &[f64]) -> f64 {
    let n = actual.len().min(forecast.len()).max(1);
    actual
        .iter()
        .zip(forecast)
        .map(|(a, f)| (a - f).abs())
        .sum::<f64>()
        / n as f64
}

/// Share of days whose actual lies inside `[lo, hi]` (inclusive).
pub fn coverage(actual: &[f64], lo: &[f64], hi: &[f64]) -> f64 {
    let n = actual.len().max(1);
    actual
        .iter()
        .zip(lo)
        .zip(hi)
        .filter(|((a, l), h)| *l <= *a && *a <= *h)
        .count() as f64
        / n as f64
}

/// Accumulates error measures over many series and days.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scorecard {
    mase_sum: f64,
    series: usize,
    forecast_total: f64,
    actual_total: f64,
    covered80: usize,
    covered95: usize,
    days: usize,
}

/// A finished scorecard.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Score {
    /// Mean over series of each series' MASE.
    pub mase: f64,
    /// (sum of forecasts − sum of actuals) / sum of actuals.
    pub bias: f64,
    /// Share of open days inside the 80 % interval.
    pub coverage80: f64,
    /// Share of open days inside the 95 % interval.
    pub coverage95: f64,
    pub series: usize,
}

/// One series' forecast beside what happened.
pub struct Judged<'a> {
    pub actual: &'a [f64],
    pub p50: &'a [f64],
    pub lo80: &'a [f64],
    pub hi80: &'a [f64],
    pub lo95: &'a [f64],
    pub hi95: &'a [f64],
    /// Days that count for coverage (closed days are always covered and would flatter it).
    pub open: &'a [bool],
}

impl Scorecard {
    pub fn add(&mut self, j: &Judged<'_>, scale: f64) {
        self.mase_sum += mase(j.actual, j.p50, scale);
        self.series += 1;
        self.forecast_total += j.p50.iter().sum::<f64>();
        self.actual_total += j.actual.iter().sum::<f64>();
        for d in 0..j.actual.len() {
            if !j.open[d] {
                continue;
            }
            self.days += 1;
            let a = j.actual[d];
            self.covered80 += usize::from(j.lo80[d] <= a && a <= j.hi80[d]);
            self.covered95 += usize::from(j.lo95[d] <= a && a <= j.hi95[d]);
        }
    }

    pub fn score(&self) -> Score {
        let days = self.days.max(1) as f64;
        Score {
            mase: self.mase_sum / self.series.max(1) as f64,
            bias: if self.actual_total > 0.0 {
                (self.forecast_total - self.actual_total) / self.actual_total
            } else {
                0.0
            },
            coverage80: self.covered80 as f64 / days,
            coverage95: self.covered95 as f64 / days,
            series: self.series,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekly_naive_scale_is_the_in_sample_seasonal_error() {
        let y = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 3.0, 2.0];
        assert_eq!(weekly_naive_scale(&y), Some(1.0)); // |3-1| + |2-2| over 2
        assert_eq!(weekly_naive_scale(&[1.0; 20]), None);
        assert_eq!(weekly_naive_scale(&[1.0; 5]), None);
    }

    #[test]
    fn mase_and_coverage() {
        assert_eq!(mase(&[2.0, 4.0], &[3.0, 3.0], 2.0), 0.5);
        assert_eq!(coverage(&[1.0, 5.0], &[0.0, 0.0], &[2.0, 4.0]), 0.5);
    }
}
