//! Per-series statistical models from the augurs crate: AutoETS (non-seasonal search) and MSTL
//! (weekly season, AutoETS trend). A series a model cannot fit falls back to the weekday median,
//! and the fallback is counted, never hidden.

use super::baseline::weekday_median;
use augurs::ets::AutoETS;
use augurs::mstl::MSTLModel;
use augurs::prelude::*;

/// Forecast of one series and whether the model itself produced it.
pub struct Fitted {
    pub point: Vec<f64>,
    pub fell_back: bool,
}

fn fallback(history: &[f64], horizon: usize) -> Fitted {
    Fitted {
        point: weekday_median(history, horizon, 8),
        fell_back: true,
    }
}

fn finite(point: Vec<f64>, history: &[f64], horizon: usize) -> Fitted {
    if point.len() == horizon && point.iter().all(|v| v.is_finite()) {
        Fitted {
            point: point.into_iter().map(|v| v.max(0.0)).collect(),
            fell_back: false,
        }
    } else {
        fallback(history, horizon)
    }
}

/// AutoETS over the model family "ZZN" (any error and trend, no season).
pub fn auto_ets(history: &[f64], horizon: usize) -> Fitted {
    if history.len() < 14 || history.iter().all(|v| *v == history[0]) {
        return fallback(history, horizon);
    }
    let Ok(search) = AutoETS::new(1, "ZZN") else {
        return fallback(history, horizon);
    };
    match search.fit(history) {
        Ok(model) => match model.predict(horizon, None) {
            Ok(f) => finite(f.point, history, horizon),
            Err(_) => fallback(history, horizon),
        },
        Err(_) => fallback(history, horizon),
    }
}

/// MSTL with a weekly season and an AutoETS trend.
pub fn mstl(history: &[f64], horizon: usize) -> Fitted {
    if history.len() < 28 || history.iter().all(|v| *v == history[0]) {
        return fallback(history, horizon);
    }
    let Ok(trend) = AutoETS::new(1, "ZZN") else {
        return fallback(history, horizon);
    };
    let model = MSTLModel::new(vec![7], trend.into_trend_model());
    match model.fit(history) {
        Ok(fitted) => match fitted.predict(horizon, None) {
            Ok(f) => finite(f.point, history, horizon),
            Err(_) => fallback(history, horizon),
        },
        Err(_) => fallback(history, horizon),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mstl_follows_a_weekly_pattern() {
        let week = [10.0, 12.0, 14.0, 16.0, 18.0, 0.0, 8.0];
        let y: Vec<f64> = (0..140)
            .map(|i| week[i % 7] + (i % 3) as f64 * 0.1)
            .collect();
        let f = mstl(&y, 7);
        assert!(!f.fell_back);
        for (p, w) in f.point.iter().zip(week) {
            assert!((p - w).abs() < 2.0, "{p} vs {w}");
        }
    }

    #[test]
    fn ets_forecasts_a_level() {
        let y: Vec<f64> = (0..60)
            .map(|i| 5.0 + if i % 2 == 0 { 0.5 } else { -0.5 })
            .collect();
        let f = auto_ets(&y, 5);
        assert!(!f.fell_back);
        assert!(
            f.point.iter().all(|p| (p - 5.0).abs() < 1.0),
            "{:?}",
            f.point
        );
    }

    #[test]
    fn short_or_flat_series_fall_back() {
        assert!(auto_ets(&[1.0; 5], 3).fell_back);
        assert!(mstl(&[0.0; 100], 3).fell_back);
    }
}
