//! Replenishment math for one SKU at one location: lead-time demand from the forecast's expected
//! daily demand, safety stock from its daily spread at a target service level, reorder point,
//! suggested order quantity, days of cover and stock-out risk. Pure arithmetic on a forecast; no I/O.

use serde::{Deserialize, Serialize};

/// A target probability of not running out during the lead time, strictly between 0.5 and 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ServiceLevel(f64);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReplenishmentError {
    #[error("service level {0} must be between 0.5 and 0.9999")]
    BadServiceLevel(f64),
    #[error("lead time must be 1 to {max} days (the forecast's horizon); got {got}")]
    BadLeadTime { got: usize, max: usize },
}

impl ServiceLevel {
    pub fn new(p: f64) -> Result<ServiceLevel, ReplenishmentError> {
        if (0.5..=0.9999).contains(&p) {
            Ok(ServiceLevel(p))
        } else {
            Err(ReplenishmentError::BadServiceLevel(p))
        }
    }

    pub fn value(self) -> f64 {
        self.0
    }
}

/// The stock position and terms of one SKU at one location.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockPosition {
    pub available: f64,
    pub on_order: f64,
    pub lead_time_days: usize,
    /// Days between orders; the order covers the lead time plus this.
    pub review_days: usize,
}

/// The suggestion, with the inputs it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replenishment {
    pub lead_time_demand: f64,
    pub safety_stock: f64,
    pub reorder_point: f64,
    pub suggested_order_qty: u64,
    /// Days until expected demand uses up available stock (the horizon + 1 when it never does).
    pub days_of_cover: usize,
    /// Probability that lead-time demand exceeds available + on-order stock.
    pub stockout_risk: f64,
}

/// Computes the suggestion from each day's expected demand and its standard deviation
/// (`SeriesForecast::mean`/`sd`; days assumed independent). Sums over a lead time use the mean:
/// the sum of daily medians of lumpy demand is far below the median of the sum.
pub fn replenish(
    mean: &[f64],
    sd: &[f64],
    position: &StockPosition,
    service: ServiceLevel,
) -> Result<Replenishment, ReplenishmentError> {
    let lt = position.lead_time_days;
    if lt == 0 || lt > mean.len() || sd.len() < mean.len() {
        return Err(ReplenishmentError::BadLeadTime {
            got: lt,
            max: mean.len().min(sd.len()),
        });
    }
    let lead_time_demand: f64 = mean[..lt].iter().sum();
    let sigma = sd[..lt]
        .iter()
        .map(|s| s.max(0.0).powi(2))
        .sum::<f64>()
        .sqrt();
    let safety_stock = normal_quantile(service.value()) * sigma;
    let reorder_point = lead_time_demand + safety_stock;
    let cover_days = (lt + position.review_days).min(mean.len());
    let target = mean[..cover_days].iter().sum::<f64>() + safety_stock;
    let position_units = position.available + position.on_order;
    let suggested_order_qty = if position_units <= reorder_point {
        (target - position_units).max(0.0).ceil() as u64
    } else {
        0
    };
    let mut left = position.available;
    let mut days_of_cover = mean.len() + 1;
    for (d, p) in mean.iter().enumerate() {
        left -= p;
        if left < 0.0 {
            days_of_cover = d;
            break;
        }
    }
    let stockout_risk = if sigma > 0.0 {
        1.0 - normal_cdf((position_units - lead_time_demand) / sigma)
    } else if position_units < lead_time_demand {
        1.0
    } else {
        0.0
    };
    Ok(Replenishment {
        lead_time_demand,
        safety_stock,
        reorder_point,
        suggested_order_qty,
        days_of_cover,
        stockout_risk,
    })
}

/// Standard normal CDF (Abramowitz–Stegun 7.1.26 via erf; error < 1.5e-7).
pub fn normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-z * z).exp();
    if x >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

/// Standard normal quantile for p in (0, 1) (Acklam's rational approximation).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383577518672690e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    let low = 0.02425;
    if p < low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -normal_quantile(1.0 - p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_helpers_agree() {
        assert!((normal_quantile(0.95) - 1.644_853_6).abs() < 1e-6);
        assert!((normal_cdf(1.644_853_6) - 0.95).abs() < 1e-6);
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-9);
        assert!((normal_quantile(0.1) + 1.281_551_565).abs() < 1e-6);
    }

    #[test]
    fn reorder_point_is_lead_time_demand_plus_safety_stock() {
        let p50 = vec![10.0; 28];
        let sd = vec![2.0; 28];
        let pos = StockPosition {
            available: 30.0,
            on_order: 0.0,
            lead_time_days: 4,
            review_days: 7,
        };
        let r = replenish(&p50, &sd, &pos, ServiceLevel::new(0.95).unwrap()).unwrap();
        assert!((r.lead_time_demand - 40.0).abs() < 1e-9);
        assert!((r.safety_stock - 1.644_853_6 * 4.0).abs() < 1e-4); // sd over 4 days = 2 × √4
        assert!((r.reorder_point - 46.579).abs() < 1e-2);
        assert_eq!(
            r.suggested_order_qty,
            (110.0 + r.safety_stock - 30.0_f64).ceil() as u64
        );
        assert_eq!(r.days_of_cover, 3);
        assert!(r.stockout_risk > 0.99);
        let plenty = StockPosition {
            available: 500.0,
            ..pos
        };
        let r = replenish(&p50, &sd, &plenty, ServiceLevel::new(0.95).unwrap()).unwrap();
        assert_eq!(r.suggested_order_qty, 0);
        assert!(r.stockout_risk < 1e-6);
        assert_eq!(r.days_of_cover, 29);
    }

    #[test]
    fn bad_terms_are_errors() {
        assert!(ServiceLevel::new(1.0).is_err());
        let pos = StockPosition {
            available: 1.0,
            on_order: 0.0,
            lead_time_days: 40,
            review_days: 0,
        };
        assert!(
            replenish(
                &[1.0; 28],
                &[0.5; 28],
                &pos,
                ServiceLevel::new(0.9).unwrap()
            )
            .is_err()
        );
    }
}
