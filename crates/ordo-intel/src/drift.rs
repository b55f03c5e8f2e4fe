//! Drift checks for a deployed forecast model: the population-stability index (PSI) of an input
//! between training and now, and the ratio of recent forecast error to the backtest's. The
//! verdict is a value with its reasons, so it can be stored and shown, not just logged.

use serde::{Deserialize, Serialize};

/// Thresholds past which a model counts as drifted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DriftThresholds {
    /// PSI above this is a significant shift (0.25 is the customary "act" level).
    pub psi: f64,
    /// Recent MASE above this multiple of the backtest MASE.
    pub error_ratio: f64,
}

impl DriftThresholds {
    pub fn customary() -> DriftThresholds {
        DriftThresholds {
            psi: 0.25,
            error_ratio: 1.5,
        }
    }
}

/// The verdict and the numbers behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    pub psi: f64,
    pub error_ratio: f64,
    pub drifted: bool,
    pub reasons: Vec<String>,
}

/// The model-input profile PSI is computed over: each series' log(1 + mean daily units over
/// its last 28 days).
pub fn input_profile(panel: &crate::series::Panel) -> Vec<f64> {
    panel
        .series()
        .iter()
        .map(|s| {
            let w = &s.units[s.units.len().saturating_sub(28)..];
            (w.iter().sum::<f64>() / w.len().max(1) as f64).ln_1p()
        })
        .collect()
}

/// PSI of `current` against `reference`, over bins at the reference's quantiles.
pub fn population_stability_index(reference: &[f64], current: &[f64]) -> f64 {
    if reference.is_empty() || current.is_empty() {
        return 0.0;
    }
    let mut sorted: Vec<f64> = reference
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    if sorted.is_empty() {
        return 0.0;
    }
    sorted.sort_by(f64::total_cmp);
    // Ten bins at the deciles, fewer for small samples (at least five reference values a bin),
    // so a handful of series cannot swing the index by sitting on a bin edge.
    let bins = (sorted.len() / 5).clamp(2, 10);
    let mut edges: Vec<f64> = (1..bins)
        .map(|k| sorted[k * (sorted.len() - 1) / bins])
        .collect();
    edges.dedup();
    let share = |v: &[f64]| {
        let mut counts = vec![0usize; edges.len() + 1];
        for x in v.iter().filter(|x| x.is_finite()) {
            counts[edges.partition_point(|e| e < x)] += 1;
        }
        let n = counts.iter().sum::<usize>().max(1) as f64;
        counts
            .into_iter()
            .map(|c| (c as f64 / n).max(1e-4))
            .collect::<Vec<f64>>()
    };
    let (r, c) = (share(reference), share(current));
    r.iter().zip(&c).map(|(r, c)| (c - r) * (c / r).ln()).sum()
}

/// Judges drift from a PSI and the recent vs backtest error.
pub fn judge(psi: f64, recent_mase: f64, backtest_mase: f64, t: DriftThresholds) -> DriftReport {
    let error_ratio = if backtest_mase > 0.0 {
        recent_mase / backtest_mase
    } else {
        1.0
    };
    let mut reasons = Vec::new();
    if psi > t.psi {
        reasons.push(format!("input-shift: PSI {psi:.3} > {:.2}", t.psi));
    }
    if error_ratio > t.error_ratio {
        reasons.push(format!("error-rise: recent MASE {recent_mase:.3} is {error_ratio:.2}× the backtest's {backtest_mase:.3}"));
    }
    DriftReport {
        psi,
        error_ratio,
        drifted: !reasons.is_empty(),
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_is_small_for_the_same_distribution_and_large_for_a_shift() {
        let a: Vec<f64> = (0..1000).map(|i| (i % 100) as f64).collect();
        let b: Vec<f64> = (0..1000).map(|i| ((i * 7) % 100) as f64).collect();
        assert!(population_stability_index(&a, &b) < 0.05);
        let shifted: Vec<f64> = a.iter().map(|v| v + 60.0).collect();
        assert!(population_stability_index(&a, &shifted) > 1.0);
    }

    #[test]
    fn judge_names_its_reasons() {
        let ok = judge(0.05, 0.8, 0.75, DriftThresholds::customary());
        assert!(!ok.drifted);
        let bad = judge(0.4, 1.5, 0.75, DriftThresholds::customary());
        assert!(bad.drifted);
        assert_eq!(bad.reasons.len(), 2);
    }
}
