//! Rolling-origin backtests: cut the history at several origins, forecast the following horizon
//! for the busiest series with each method (intervals included), and score MASE, bias and
//! coverage against what happened. A method never sees a day after its origin.

use crate::calendar::Day;
use crate::forecast::{ForecastConfig, ForecastError, forecast_series};
use crate::methods::Method;
use crate::methods::global::GlobalConfig;
use crate::metrics::{Judged, Score, Scorecard, weekly_naive_scale};
use crate::series::Panel;
use serde::{Deserialize, Serialize};

/// How a backtest runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestConfig {
    pub methods: Vec<Method>,
    pub global: GlobalConfig,
    /// Number of origins; the last one is one horizon before the end.
    pub origins: usize,
    /// Days between origins.
    pub step: usize,
    /// Series scored at each origin: the busiest by units sold up to the origin.
    pub top: usize,
}

/// Why a backtest cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BacktestError {
    #[error(
        "the history has {days} days; {origins} origins {step} days apart with a {horizon}-day horizon need at least {needed}"
    )]
    TooShort {
        days: usize,
        origins: usize,
        step: usize,
        horizon: usize,
        needed: usize,
    },
    #[error("no methods to compare")]
    NoMethods,
    #[error(transparent)]
    Forecast(#[from] ForecastError),
}

/// One method's scores: per origin and pooled over all origins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodResult {
    pub method: Method,
    pub per_origin: Vec<(Day, Score)>,
    pub overall: Score,
}

/// The origins (last day seen) a backtest of `panel` uses.
pub fn origins(panel: &Panel, config: &BacktestConfig) -> Result<Vec<usize>, BacktestError> {
    let h = config.global.horizon;
    let needed = crate::methods::global::MIN_HISTORY
        + 2 * h
        + config.step * config.origins.saturating_sub(1);
    if config.origins == 0 || panel.len() < needed {
        return Err(BacktestError::TooShort {
            days: panel.len(),
            origins: config.origins,
            step: config.step,
            horizon: h,
            needed,
        });
    }
    Ok((0..config.origins)
        .rev()
        .map(|k| panel.len() - h - k * config.step)
        .collect())
}

/// Runs every method at every origin.
pub fn backtest(
    panel: &Panel,
    config: &BacktestConfig,
    progress: &dyn Fn(&str),
) -> Result<Vec<MethodResult>, BacktestError> {
    if config.methods.is_empty() {
        return Err(BacktestError::NoMethods);
    }
    let h = config.global.horizon;
    let cuts = origins(panel, config)?;
    let closed = panel.closed_weekdays();
    let mut results: Vec<MethodResult> = config
        .methods
        .iter()
        .map(|&m| MethodResult {
            method: m,
            per_origin: Vec::new(),
            overall: Scorecard::default().score(),
        })
        .collect();
    let mut pooled: Vec<Scorecard> = vec![Scorecard::default(); config.methods.len()];
    for &cut in &cuts {
        let train = panel.truncated(cut);
        let subset: Vec<usize> = train
            .busiest(config.top, train.len())
            .into_iter()
            .filter(|&i| weekly_naive_scale(&train.series()[i].units).is_some())
            .collect();
        let open: Vec<bool> = (0..h)
            .map(|d| !closed[panel.day(cut + d).weekday()])
            .collect();
        for (m, &method) in config.methods.iter().enumerate() {
            progress(&format!(
                "origin {}: {method} on {} series",
                train.end(),
                subset.len()
            ));
            let fc = ForecastConfig {
                method,
                global: config.global.clone(),
            };
            let (forecasts, _) = forecast_series(&train, &fc, &subset, progress)?;
            let mut card = Scorecard::default();
            for (f, &i) in forecasts.iter().zip(&subset) {
                let actual = &panel.series()[i].units[cut..cut + h];
                let scale = weekly_naive_scale(&train.series()[i].units).unwrap_or(1.0);
                let j = Judged {
                    actual,
                    p50: &f.p50,
                    lo80: &f.lo80,
                    hi80: &f.hi80,
                    lo95: &f.lo95,
                    hi95: &f.hi95,
                    open: &open,
                };
                card.add(&j, scale);
                pooled[m].add(&j, scale);
            }
            results[m].per_origin.push((train.end(), card.score()));
        }
    }
    for (r, card) in results.iter_mut().zip(&pooled) {
        r.overall = card.score();
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gbdt::SplitMix;
    use crate::series::DemandSeries;

    /// Series with a strong weekly pattern, a level per series, and noise.
    fn seasonal_panel(series: usize, days: usize, seed: u64) -> Panel {
        let mut rng = SplitMix(seed);
        let start = Day::parse("2010-01-04").unwrap(); // a Monday
        let profile = [1.0, 1.3, 1.2, 1.1, 1.6, 0.0, 0.5];
        let all = (0..series)
            .map(|s| {
                let level = 2.0 + (s % 7) as f64 * 3.0;
                let units = (0..days)
                    .map(|d| {
                        let mean = level * profile[d % 7] * (1.0 + 0.3 * ((d as f64) / 60.0).sin());
                        // A Poisson-like draw by summing Bernoulli trials.
                        (0..(mean * 4.0) as usize)
                            .filter(|_| rng.unit() < 0.25)
                            .count() as f64
                    })
                    .collect();
                DemandSeries {
                    sku: format!("S{s:03}"),
                    units,
                }
            })
            .collect();
        Panel::new(start, all).unwrap()
    }

    fn quick(methods: Vec<Method>) -> BacktestConfig {
        let mut global = GlobalConfig::demand(28);
        global.gbdt.trees = 80;
        global.gbdt.min_leaf = 40;
        BacktestConfig {
            methods,
            global,
            origins: 2,
            step: 28,
            top: 30,
        }
    }

    #[test]
    fn global_model_beats_weekly_naive_on_known_seasonality() {
        let panel = seasonal_panel(30, 300, 11);
        let cfg = quick(vec![
            Method::WeeklyNaive,
            Method::WeekdayMedian,
            Method::Gbdt,
        ]);
        let r = backtest(&panel, &cfg, &|_| {}).unwrap();
        let (naive, median, gbdt) = (r[0].overall, r[1].overall, r[2].overall);
        assert!(
            gbdt.mase < 0.85 * naive.mase,
            "gbdt {gbdt:?} vs naive {naive:?}"
        );
        assert!(
            gbdt.mase < median.mase * 1.02,
            "gbdt {gbdt:?} vs median {median:?}"
        );
        assert!(
            (0.65..=0.95).contains(&gbdt.coverage80),
            "coverage {gbdt:?}"
        );
        assert_eq!(r[0].per_origin.len(), 2);
    }

    #[test]
    fn too_short_histories_are_an_error() {
        let panel = seasonal_panel(2, 80, 1);
        assert!(matches!(
            backtest(&panel, &quick(vec![Method::WeeklyNaive]), &|_| {}),
            Err(BacktestError::TooShort { .. })
        ));
    }
}
