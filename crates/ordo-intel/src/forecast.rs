//! Forecasts with intervals: a method's p50 plus 80 % and 95 % intervals calibrated on the
//! method's own errors over the last horizon before the end (a holdout it did not see), in units
//! of each series' weekly-naive error and grouped by forecast level. Intervals never go below 0.

use crate::calendar::Day;
use crate::gbdt::GbdtError;
use crate::methods::global::{GlobalConfig, GlobalModel, MIN_HISTORY, train as train_global};
use crate::methods::{Method, needs_global, point_forecasts, point_forecasts_with};
use crate::metrics::weekly_naive_scale;
use crate::series::Panel;
use serde::{Deserialize, Serialize};

/// What to forecast and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastConfig {
    pub method: Method,
    pub global: GlobalConfig,
}

impl ForecastConfig {
    pub fn new(method: Method, horizon: usize) -> ForecastConfig {
        ForecastConfig {
            method,
            global: GlobalConfig::demand(horizon),
        }
    }

    pub fn horizon(&self) -> usize {
        self.global.horizon
    }
}

/// Why a forecast cannot be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ForecastError {
    #[error("the horizon must be 1 to 366 days (got {0})")]
    BadHorizon(usize),
    #[error("training the global model: {0}")]
    Training(#[from] GbdtError),
}

/// One series' forecast: day by day, p50 and two intervals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesForecast {
    pub sku: String,
    pub first_day: Day,
    pub p50: Vec<f64>,
    pub lo80: Vec<f64>,
    pub hi80: Vec<f64>,
    pub lo95: Vec<f64>,
    pub hi95: Vec<f64>,
    /// Expected demand and its standard deviation per day (for sums over a lead time).
    pub mean: Vec<f64>,
    pub sd: Vec<f64>,
}

/// Residual quantiles (in series-scale units) per forecast-level bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Upper edges of p50/scale for all buckets but the last.
    pub level_edges: Vec<f64>,
    /// Per bucket: quantiles 2.5 %, 10 %, 90 %, 97.5 % of (actual − p50) / scale.
    pub quantiles: Vec<[f64; 4]>,
    /// Holdout days the quantiles came from.
    pub days: usize,
    /// Mean MASE of the holdout forecasts (what drift checks compare recent error with).
    #[serde(default)]
    pub holdout_mase: f64,
    /// Per bucket: mean and standard deviation of (actual − p50) / scale, so a day's expected
    /// demand and spread follow from its p50 (sums over a lead time need the mean, not the p50).
    #[serde(default)]
    pub mean_residual: Vec<f64>,
    #[serde(default)]
    pub sd_residual: Vec<f64>,
}

const BUCKETS: usize = 5;
const MIN_BUCKET: usize = 200;

impl Calibration {
    /// Used when the history is too short for a holdout: wide normal-like bands.
    pub fn fallback() -> Calibration {
        Calibration {
            level_edges: Vec::new(),
            quantiles: vec![[-2.5, -1.6, 1.6, 2.5]],
            days: 0,
            holdout_mase: 0.0,
            mean_residual: vec![0.0],
            sd_residual: vec![1.25],
        }
    }

    /// From (p50 / scale, (actual − p50) / scale) pairs.
    pub fn from_residuals(mut pairs: Vec<(f64, f64)>) -> Calibration {
        if pairs.len() < MIN_BUCKET {
            return Calibration::fallback();
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let buckets = (pairs.len() / MIN_BUCKET).clamp(1, BUCKETS);
        let per = pairs.len() / buckets;
        let mut level_edges = Vec::new();
        let mut quantiles = Vec::new();
        let (mut mean_residual, mut sd_residual) = (Vec::new(), Vec::new());
        for b in 0..buckets {
            let chunk = &pairs[b * per..if b + 1 == buckets {
                pairs.len()
            } else {
                (b + 1) * per
            }];
            if b + 1 < buckets {
                level_edges.push(chunk.last().map_or(0.0, |c| c.0));
            }
            let mut r: Vec<f64> = chunk.iter().map(|c| c.1).collect();
            let mean = r.iter().sum::<f64>() / r.len() as f64;
            mean_residual.push(mean);
            sd_residual
                .push((r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / r.len() as f64).sqrt());
            r.sort_by(f64::total_cmp);
            let q = |a: f64| r[((r.len() - 1) as f64 * a).round() as usize];
            quantiles.push([q(0.025), q(0.10), q(0.90), q(0.975)]);
        }
        Calibration {
            level_edges,
            quantiles,
            days: pairs.len(),
            holdout_mase: 0.0,
            mean_residual,
            sd_residual,
        }
    }

    fn bucket(&self, p50: f64, scale: f64) -> usize {
        let level = p50 / scale;
        self.level_edges
            .partition_point(|e| *e < level)
            .min(self.quantiles.len() - 1)
    }

    /// (expected demand, standard deviation) of a day whose p50 is `p50`.
    pub fn moments(&self, p50: f64, scale: f64) -> (f64, f64) {
        let b = self.bucket(p50, scale);
        match (self.mean_residual.get(b), self.sd_residual.get(b)) {
            (Some(m), Some(sd)) => ((p50 + m * scale).max(0.0), sd * scale),
            // An artifact calibrated before moments were kept: read them off the 80 % interval.
            _ => {
                let (lo, hi, _, _) = self.interval(p50, scale);
                (p50, (hi - lo) / 2.563)
            }
        }
    }

    /// (lo80, hi80, lo95, hi95) around `p50` for a series of weekly-naive error `scale`.
    pub fn interval(&self, p50: f64, scale: f64) -> (f64, f64, f64, f64) {
        let b = self.bucket(p50, scale);
        let [q025, q10, q90, q975] = self.quantiles[b];
        let at = |q: f64| (p50 + q * scale).max(0.0);
        let (lo80, hi80, lo95, hi95) = (at(q10), at(q90), at(q025), at(q975));
        (
            lo80.min(p50),
            hi80.max(p50),
            lo95.min(lo80).min(p50),
            hi95.max(hi80).max(p50),
        )
    }
}

/// The scale intervals are measured in: the weekly-naive error, else the mean, else 1.
pub fn series_scale(history: &[f64]) -> f64 {
    weekly_naive_scale(history).unwrap_or_else(|| {
        let m = history.iter().sum::<f64>() / history.len().max(1) as f64;
        if m > 0.0 { m } else { 1.0 }
    })
}

/// Calibrates `method` on the last horizon of `panel`: forecasts from the cut-off one horizon
/// before the end, compares with what happened on open days.
pub fn calibrate(
    panel: &Panel,
    config: &ForecastConfig,
    subset: &[usize],
    progress: &dyn Fn(&str),
) -> Result<Calibration, ForecastError> {
    let h = config.horizon();
    if panel.len() < h + MIN_HISTORY {
        return Ok(Calibration::fallback());
    }
    let cut = panel.truncated(panel.len() - h);
    let closed = panel.closed_weekdays();
    let pts = point_forecasts(&cut, config.method, &config.global, subset, progress)?;
    let mut pairs = Vec::with_capacity(subset.len() * h);
    let mut mase_sum = 0.0;
    for (f, &i) in pts.p50.iter().zip(subset) {
        let u = &panel.series()[i].units;
        let scale = series_scale(&cut.series()[i].units);
        mase_sum += crate::metrics::mase(&u[cut.len()..cut.len() + h], f, scale);
        for (d, p) in f.iter().enumerate() {
            let idx = cut.len() + d;
            if closed[panel.day(idx).weekday()] {
                continue;
            }
            pairs.push((p / scale, (u[idx] - p) / scale));
        }
    }
    let mut calibration = Calibration::from_residuals(pairs);
    calibration.holdout_mase = mase_sum / subset.len().max(1) as f64;
    Ok(calibration)
}

/// A trained forecaster: everything needed to forecast again later (the registry's artifact).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecaster {
    pub method: Method,
    pub horizon: usize,
    pub global: Option<GlobalModel>,
    pub calibration: Calibration,
    /// First and last day of the history it was trained on.
    pub trained_from: Day,
    pub trained_through: Day,
    /// The input profile at training (`drift::input_profile`), for population-stability checks.
    #[serde(default)]
    pub reference_inputs: Vec<f64>,
}

/// Trains `config.method` on `panel` and calibrates its intervals on the series at `subset`.
pub fn train_forecaster(
    panel: &Panel,
    config: &ForecastConfig,
    subset: &[usize],
    progress: &dyn Fn(&str),
) -> Result<Forecaster, ForecastError> {
    let h = config.horizon();
    if h == 0 || h > 366 {
        return Err(ForecastError::BadHorizon(h));
    }
    progress(&format!(
        "{}: calibrating intervals on the last {h} days",
        config.method
    ));
    let calibration = calibrate(panel, config, subset, progress)?;
    let global = if needs_global(config.method) {
        progress(&format!("{}: training on the whole history", config.method));
        Some(train_global(panel, &config.global, progress)?)
    } else {
        None
    };
    Ok(Forecaster {
        method: config.method,
        horizon: h,
        global,
        calibration,
        trained_from: panel.start(),
        trained_through: panel.end(),
        reference_inputs: crate::drift::input_profile(panel),
    })
}

impl Forecaster {
    /// Forecasts the series at `subset` for the horizon after the end of `panel`.
    pub fn forecast(
        &self,
        panel: &Panel,
        subset: &[usize],
        progress: &dyn Fn(&str),
    ) -> Vec<SeriesForecast> {
        progress(&format!(
            "{}: forecasting {} series",
            self.method,
            subset.len()
        ));
        let pts = point_forecasts_with(
            panel,
            self.method,
            self.horizon,
            self.global.as_ref(),
            subset,
            progress,
        );
        let first_day = panel.end().plus(1);
        let closed = panel.closed_weekdays();
        pts.p50
            .into_iter()
            .zip(subset)
            .map(|(p50, &i)| {
                let scale = series_scale(&panel.series()[i].units);
                let mut f = SeriesForecast {
                    sku: panel.series()[i].sku.clone(),
                    first_day,
                    p50: Vec::new(),
                    lo80: Vec::new(),
                    hi80: Vec::new(),
                    lo95: Vec::new(),
                    hi95: Vec::new(),
                    mean: Vec::new(),
                    sd: Vec::new(),
                };
                for (d, p) in p50.into_iter().enumerate() {
                    let is_closed = closed[first_day.plus(d as i32).weekday()];
                    let (l8, h8, l9, h9) = if is_closed {
                        (0.0, 0.0, 0.0, 0.0)
                    } else {
                        self.calibration.interval(p, scale)
                    };
                    let (mean, sd) = if is_closed {
                        (0.0, 0.0)
                    } else {
                        self.calibration.moments(p, scale)
                    };
                    f.mean.push(mean);
                    f.sd.push(sd);
                    f.p50.push(p);
                    f.lo80.push(l8);
                    f.hi80.push(h8);
                    f.lo95.push(l9);
                    f.hi95.push(h9);
                }
                f
            })
            .collect()
    }
}

/// Trains and forecasts the series at `subset`.
pub fn forecast_series(
    panel: &Panel,
    config: &ForecastConfig,
    subset: &[usize],
    progress: &dyn Fn(&str),
) -> Result<(Vec<SeriesForecast>, Calibration), ForecastError> {
    let forecaster = train_forecaster(panel, config, subset, progress)?;
    Ok((
        forecaster.forecast(panel, subset, progress),
        forecaster.calibration,
    ))
}

/// Forecasts every series of the panel.
pub fn forecast_all(
    panel: &Panel,
    config: &ForecastConfig,
    progress: &dyn Fn(&str),
) -> Result<(Vec<SeriesForecast>, Calibration), ForecastError> {
    let all: Vec<usize> = (0..panel.series().len()).collect();
    forecast_series(panel, config, &all, progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibrated_intervals_nest_and_stay_non_negative() {
        let pairs: Vec<(f64, f64)> = (0..2000)
            .map(|i| ((i % 10) as f64, ((i * 7919) % 200) as f64 / 50.0 - 2.0))
            .collect();
        let c = Calibration::from_residuals(pairs);
        assert_eq!(c.quantiles.len(), 5);
        for p in [0.0, 0.5, 3.0, 20.0] {
            let (l8, h8, l9, h9) = c.interval(p, 2.0);
            assert!(
                0.0 <= l9 && l9 <= l8 && l8 <= p && p <= h8 && h8 <= h9,
                "{p}: {l9} {l8} {h8} {h9}"
            );
        }
    }

    #[test]
    fn few_residuals_give_the_wide_fallback() {
        assert_eq!(
            Calibration::from_residuals(vec![(1.0, 0.0); 10]),
            Calibration::fallback()
        );
    }
}
