//! Replenishment simulation on real history: replay the days after several origins, ordering by
//! the forecast-driven reorder point (`replenishment::replenish`) or by a fixed reorder point set
//! once from the history's mean and spread, and count what each policy served and held.
//! Both policies see the same demand, lead time and service target; neither sees the future.

use crate::backtest::{BacktestConfig, BacktestError, origins};
use crate::forecast::{ForecastConfig, train_forecaster};
use crate::replenishment::{ServiceLevel, StockPosition, normal_quantile, replenish};
use crate::series::Panel;
use serde::{Deserialize, Serialize};

/// The terms every simulated SKU is replenished under.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SimulationTerms {
    pub lead_time_days: usize,
    pub review_days: usize,
    pub service: ServiceLevel,
}

/// What one policy achieved over all SKUs and days.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicyOutcome {
    pub demanded: f64,
    pub served: f64,
    /// served / demanded.
    pub fill_rate: f64,
    /// SKU-days that ended with unmet demand.
    pub stockout_days: usize,
    /// Mean units on hand at the end of a day, per SKU.
    pub mean_on_hand: f64,
    pub orders: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulationResult {
    pub forecast_policy: PolicyOutcome,
    pub fixed_policy: PolicyOutcome,
    pub skus: usize,
    pub days: usize,
}

#[derive(Default)]
struct Sim {
    on_hand: f64,
    pipeline: Vec<(usize, f64)>,
    out: PolicyOutcome,
    held: f64,
    days: usize,
}

impl Sim {
    /// Receives arrivals, serves demand; returns the position (on hand + on order).
    fn serve(&mut self, day: usize, demand: f64) -> f64 {
        let arrived: f64 = self
            .pipeline
            .iter()
            .filter(|(d, _)| *d == day)
            .map(|(_, q)| q)
            .sum();
        self.pipeline.retain(|(d, _)| *d > day);
        self.on_hand += arrived;
        let served = demand.min(self.on_hand);
        self.on_hand -= served;
        self.out.demanded += demand;
        self.out.served += served;
        self.out.stockout_days += usize::from(served < demand);
        self.held += self.on_hand;
        self.days += 1;
        self.on_hand + self.pipeline.iter().map(|(_, q)| q).sum::<f64>()
    }

    fn order(&mut self, arrive: usize, qty: f64) {
        if qty > 0.0 {
            self.pipeline.push((arrive, qty));
            self.out.orders += 1;
        }
    }
}

/// Simulates both policies over the horizons after the backtest origins, for the busiest SKUs.
pub fn simulate(
    panel: &Panel,
    backtest: &BacktestConfig,
    method: crate::methods::Method,
    terms: SimulationTerms,
    progress: &dyn Fn(&str),
) -> Result<SimulationResult, BacktestError> {
    let h = backtest.global.horizon;
    let cuts = origins(panel, backtest)?;
    let first = cuts[0];
    let train = panel.truncated(first);
    let skus = train.busiest(backtest.top, train.len());
    let z = normal_quantile(terms.service.value());
    let (lt, rv) = (terms.lead_time_days, terms.review_days);
    let mut fc_sims: Vec<Sim> = skus.iter().map(|_| Sim::default()).collect();
    let mut fx_sims: Vec<Sim> = skus.iter().map(|_| Sim::default()).collect();
    // The fixed policy: mean and spread of daily demand over the history before the first origin.
    let fixed: Vec<(f64, f64)> = skus
        .iter()
        .map(|&i| {
            let u = &train.series()[i].units;
            let window = &u[u.len().saturating_sub(182)..];
            let mean = window.iter().sum::<f64>() / window.len() as f64;
            let sd = (window.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / window.len() as f64)
                .sqrt();
            let safety = z * sd * (lt as f64).sqrt();
            (mean * lt as f64 + safety, mean * (lt + rv) as f64 + safety)
        })
        .collect();
    for (k, &(_, up_to)) in fixed.iter().enumerate() {
        fx_sims[k].on_hand = up_to;
    }
    let mut started = false;
    let mut sim_days = 0;
    for &cut in &cuts {
        let seen = panel.truncated(cut);
        progress(&format!("simulation: forecasting from {}", seen.end()));
        let config = ForecastConfig {
            method,
            global: backtest.global.clone(),
        };
        let forecaster = train_forecaster(&seen, &config, &skus, progress)?;
        // Forecast twice the lead time ahead so every day's reorder point sees its lead time.
        let forecasts = forecaster.forecast(&seen, &skus, progress);
        for (k, f) in forecasts.iter().enumerate() {
            let u = &panel.series()[skus[k]].units;
            if !started {
                // Both policies start at their own order-up-to level.
                let empty = StockPosition {
                    available: 0.0,
                    on_order: 0.0,
                    lead_time_days: lt,
                    review_days: rv,
                };
                if let Ok(r) = replenish(&f.mean, &f.sd, &empty, terms.service) {
                    fc_sims[k].on_hand = r.suggested_order_qty as f64;
                }
            }
            for d in 0..h.min(panel.len() - cut) {
                let day = cut + d;
                // The forecast from this origin, rolled forward: days past its horizon repeat its last week.
                let ahead = |v: &Vec<f64>| -> Vec<f64> {
                    (d..d + lt + rv)
                        .map(|j| if j < h { v[j] } else { v[h - 7 + (j - h) % 7] })
                        .collect()
                };
                let position = fc_sims[k].serve(day, u[day]);
                let pos = StockPosition {
                    available: fc_sims[k].on_hand,
                    on_order: position - fc_sims[k].on_hand,
                    lead_time_days: lt,
                    review_days: rv,
                };
                if let Ok(r) = replenish(&ahead(&f.mean), &ahead(&f.sd), &pos, terms.service) {
                    fc_sims[k].order(day + lt, r.suggested_order_qty as f64);
                }
                let (rop, up_to) = fixed[k];
                let position = fx_sims[k].serve(day, u[day]);
                if position <= rop {
                    fx_sims[k].order(day + lt, (up_to - position).ceil());
                }
            }
        }
        started = true;
        sim_days += h.min(panel.len() - cut);
    }
    let total = |sims: &[Sim]| {
        let mut o = PolicyOutcome::default();
        for s in sims {
            o.demanded += s.out.demanded;
            o.served += s.out.served;
            o.stockout_days += s.out.stockout_days;
            o.orders += s.out.orders;
            o.mean_on_hand += s.held / s.days.max(1) as f64;
        }
        o.mean_on_hand /= sims.len().max(1) as f64;
        o.fill_rate = if o.demanded > 0.0 {
            o.served / o.demanded
        } else {
            1.0
        };
        o
    };
    Ok(SimulationResult {
        forecast_policy: total(&fc_sims),
        fixed_policy: total(&fx_sims),
        skus: skus.len(),
        days: sim_days,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::Day;
    use crate::gbdt::SplitMix;
    use crate::methods::Method;
    use crate::methods::global::GlobalConfig;
    use crate::series::DemandSeries;

    #[test]
    fn both_policies_serve_the_same_demand_and_the_forecast_one_holds_less_for_seasonal_demand() {
        let mut rng = SplitMix(5);
        let profile = [1.0, 1.4, 1.2, 1.0, 2.0, 0.0, 0.3];
        let series = (0..20)
            .map(|s| {
                let level = 3.0 + s as f64;
                // Demand triples from day 150: a fixed reorder point set from the past falls behind.
                let units = (0..280)
                    .map(|d| {
                        (level
                            * profile[d % 7]
                            * if d >= 150 { 3.0 } else { 1.0 }
                            * (0.7 + 0.6 * rng.unit()))
                        .round()
                    })
                    .collect();
                DemandSeries {
                    sku: format!("S{s}"),
                    units,
                }
            })
            .collect();
        let panel = Panel::new(Day::parse("2010-01-04").unwrap(), series).unwrap();
        let mut global = GlobalConfig::demand(28);
        global.gbdt.trees = 40;
        let backtest = BacktestConfig {
            methods: vec![Method::WeekdayMedian],
            global,
            origins: 2,
            step: 28,
            top: 20,
        };
        let terms = SimulationTerms {
            lead_time_days: 5,
            review_days: 7,
            service: ServiceLevel::new(0.95).unwrap(),
        };
        let r = simulate(&panel, &backtest, Method::WeekdayMedian, terms, &|_| {}).unwrap();
        assert_eq!((r.skus, r.days), (20, 56));
        assert_eq!(r.forecast_policy.demanded, r.fixed_policy.demanded);
        for o in [r.forecast_policy, r.fixed_policy] {
            assert!(
                (0.0..=1.0).contains(&o.fill_rate) && o.served <= o.demanded,
                "{o:?}"
            );
        }
        assert!(
            r.forecast_policy.fill_rate > r.fixed_policy.fill_rate,
            "{r:?}"
        );
    }
}
