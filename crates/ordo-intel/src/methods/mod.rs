//! The forecasting methods Ordo can choose between, behind one `Method` name: baselines,
//! per-series models (augurs) and the global gradient-boosted model, plus their ensemble.
//! `point_forecasts` gives p50 per day for chosen series; it reads nothing after the panel's end.

pub mod baseline;
pub mod global;
pub mod per_series;

use crate::gbdt::GbdtError;
use crate::series::Panel;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A forecasting method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Same weekday last week.
    WeeklyNaive,
    /// Median of the same weekday over the last 8 weeks.
    WeekdayMedian,
    /// augurs AutoETS (non-seasonal search), per series.
    Ets,
    /// augurs MSTL (weekly season, AutoETS trend), per series.
    Mstl,
    /// The global gradient-boosted p50 model across all series.
    Gbdt,
    /// Mean of the global model and the weekday median.
    Ensemble,
}

impl Method {
    pub const ALL: [Method; 6] = [
        Method::WeeklyNaive,
        Method::WeekdayMedian,
        Method::Ets,
        Method::Mstl,
        Method::Gbdt,
        Method::Ensemble,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::WeeklyNaive => "weekly-naive",
            Method::WeekdayMedian => "weekday-median",
            Method::Ets => "ets",
            Method::Mstl => "mstl",
            Method::Gbdt => "gbdt",
            Method::Ensemble => "ensemble",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown method name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown method '{0}' (one of: weekly-naive, weekday-median, ets, mstl, gbdt, ensemble)")]
pub struct UnknownMethod(pub String);

impl FromStr for Method {
    type Err = UnknownMethod;
    fn from_str(s: &str) -> Result<Method, UnknownMethod> {
        Method::ALL
            .into_iter()
            .find(|m| m.name() == s.trim())
            .ok_or_else(|| UnknownMethod(s.to_string()))
    }
}

/// Point forecasts (p50) of the series at `subset` for `horizon` days after the panel's end,
/// with closed weekdays forced to zero, and how many series a per-series model could not fit.
pub struct PointForecasts {
    pub p50: Vec<Vec<f64>>,
    pub fell_back: usize,
}

/// Whether `method` needs the global model trained first.
pub fn needs_global(method: Method) -> bool {
    matches!(method, Method::Gbdt | Method::Ensemble)
}

/// Trains what `method` needs (the global model, if any), then forecasts.
pub fn point_forecasts(
    panel: &Panel,
    method: Method,
    config: &global::GlobalConfig,
    subset: &[usize],
    progress: &dyn Fn(&str),
) -> Result<PointForecasts, GbdtError> {
    let model = if needs_global(method) {
        Some(global::train(panel, config, progress)?)
    } else {
        None
    };
    Ok(point_forecasts_with(
        panel,
        method,
        config.horizon,
        model.as_ref(),
        subset,
        progress,
    ))
}

/// Forecasts with an already trained global model (used by `Gbdt` and `Ensemble`; when it is
/// missing those fall back to the weekday median, counted in `fell_back`).
pub fn point_forecasts_with(
    panel: &Panel,
    method: Method,
    horizon: usize,
    model: Option<&global::GlobalModel>,
    subset: &[usize],
    progress: &dyn Fn(&str),
) -> PointForecasts {
    let history = |i: usize| panel.series()[i].units.as_slice();
    let closed = panel.closed_weekdays();
    let mut fell_back = 0;
    let mut p50: Vec<Vec<f64>> = match (method, model) {
        (Method::WeeklyNaive, _) => subset
            .iter()
            .map(|&i| baseline::weekly_naive(history(i), horizon))
            .collect(),
        (Method::WeekdayMedian, _) | (Method::Gbdt | Method::Ensemble, None) => {
            if needs_global(method) {
                fell_back = subset.len();
            }
            subset
                .iter()
                .map(|&i| baseline::weekday_median(history(i), horizon, 8))
                .collect()
        }
        (Method::Ets | Method::Mstl, _) => subset
            .iter()
            .enumerate()
            .map(|(n, &i)| {
                let f = if method == Method::Ets {
                    per_series::auto_ets(history(i), horizon)
                } else {
                    per_series::mstl(history(i), horizon)
                };
                fell_back += usize::from(f.fell_back);
                if (n + 1) % 200 == 0 {
                    progress(&format!("{method}: {} of {} series", n + 1, subset.len()));
                }
                f.point
            })
            .collect(),
        (Method::Gbdt | Method::Ensemble, Some(model)) => {
            let ctx = global::PanelContext::new(panel);
            subset
                .iter()
                .map(|&i| {
                    let g = model.forecast(panel, &ctx, i, horizon);
                    if method == Method::Gbdt {
                        g
                    } else {
                        let m = baseline::weekday_median(history(i), horizon, 8);
                        g.iter().zip(&m).map(|(a, b)| (a + b) / 2.0).collect()
                    }
                })
                .collect()
        }
    };
    for f in &mut p50 {
        for (h, v) in f.iter_mut().enumerate() {
            if closed[panel.end().plus(h as i32 + 1).weekday()] || !v.is_finite() {
                *v = 0.0;
            }
            *v = v.max(0.0);
        }
    }
    PointForecasts { p50, fell_back }
}
