//! The global demand model: one gradient-boosted quantile (p50) model trained across every SKU.
//! Each row is (series, origin, horizon); features read only days up to the origin and are scaled
//! by the series' weekly-naive error, so one model serves slow and fast sellers alike and its loss
//! is the backtest's MASE. It must never read a day after the origin.

use super::baseline::median;
use crate::gbdt::{Gbdt, GbdtError, GbdtParams, SplitMix};
use crate::series::Panel;
use serde::{Deserialize, Serialize};

/// Fewest days before an origin for a training row.
pub const MIN_HISTORY: usize = 56;
const SAME_WEEKDAYS: usize = 8;

/// How the global model is trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalConfig {
    pub gbdt: GbdtParams,
    /// Most rows trained on; more candidates are thinned at random (seeded).
    pub max_rows: usize,
    /// Training origins reach back at most this many weeks from the last day.
    pub max_origins: usize,
    /// Days between training origins (7: only the forecast origin's weekday).
    pub origin_stride: usize,
    /// Models trained on different seeded samples and averaged.
    pub bags: usize,
    pub horizon: usize,
}

impl GlobalConfig {
    pub fn demand(horizon: usize) -> GlobalConfig {
        GlobalConfig {
            gbdt: GbdtParams::demand(),
            max_rows: 400_000,
            max_origins: 40,
            origin_stride: 7,
            bags: 1,
            horizon,
        }
    }
}

/// A trained global model and the feature layout it expects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalModel {
    pub feature_names: Vec<String>,
    /// One or more bagged models; the prediction is their mean.
    pub models: Vec<Gbdt>,
    pub rows_trained: usize,
}

/// Cumulative sums of one series, so window means and the weekly-naive scale are O(1).
struct Prefix {
    sum: Vec<f64>,
    abs7: Vec<f64>,
    first_sale: Option<usize>,
}

impl Prefix {
    fn new(u: &[f64]) -> Prefix {
        let mut sum = vec![0.0; u.len() + 1];
        let mut abs7 = vec![0.0; u.len() + 1];
        for i in 0..u.len() {
            sum[i + 1] = sum[i] + u[i];
            abs7[i + 1] = abs7[i] + if i >= 7 { (u[i] - u[i - 7]).abs() } else { 0.0 };
        }
        Prefix {
            sum,
            abs7,
            first_sale: u.iter().position(|v| *v > 0.0),
        }
    }

    /// Mean of the `w` days ending at `o` (inclusive), over the days that exist.
    fn mean(&self, o: usize, w: usize) -> f64 {
        let from = (o + 1).saturating_sub(w);
        (self.sum[o + 1] - self.sum[from]) / (o + 1 - from) as f64
    }

    /// The weekly-naive MAE of days 0..=o, or a fallback when it is zero or undefined.
    fn scale(&self, o: usize) -> f64 {
        let n = o + 1;
        if n > 7 {
            let s = self.abs7[n] / (n - 7) as f64;
            if s > 0.0 {
                return s;
            }
        }
        let m = self.mean(o, n);
        if m > 0.0 { m } else { 1.0 }
    }
}

pub const FEATURES: [&str; 35] = [
    "horizon",
    "weekday",
    "day_of_month",
    "sw1",
    "sw2",
    "sw3",
    "sw4",
    "sw5",
    "sw6",
    "sw7",
    "sw8",
    "sw_median",
    "sw_mean",
    "mean7",
    "mean28",
    "mean91",
    "mean364",
    "trend28",
    "zero_share28",
    "max28",
    "log_scale",
    "log_mean28",
    "age",
    "days_since_sale",
    "weekday_share",
    "std28",
    "sw4_median",
    "sw_q25",
    "sw_q75",
    "sw_nonzero_share",
    "median28_open",
    "shop_trend7",
    "shop_trend28",
    "ewma_daily",
    "ewma_weekday",
];

/// Features of one origin that do not depend on the target day.
struct OriginFeatures {
    scale: f64,
    mean7: f64,
    mean28: f64,
    mean56: f64,
    mean91: f64,
    mean364: f64,
    prev28: f64,
    zero_share28: f64,
    max28: f64,
    std28: f64,
    age: f64,
    since_sale: f64,
    median28_open: f64,
    shop_trend7: f64,
    shop_trend28: f64,
    ewma: f64,
}

/// What every series of a panel shares: closed weekdays and the shop's daily totals.
pub struct PanelContext {
    closed: [bool; 7],
    shop: Prefix,
    day_total: Vec<f64>,
}

impl PanelContext {
    pub fn new(panel: &Panel) -> PanelContext {
        let mut day_total = vec![0.0f64; panel.len()];
        for s in panel.series() {
            for (t, v) in day_total.iter_mut().zip(&s.units) {
                *t += v;
            }
        }
        PanelContext {
            closed: panel.closed_weekdays(),
            shop: Prefix::new(&day_total),
            day_total,
        }
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::NAN }
}

fn origin_features(
    panel: &Panel,
    ctx: &PanelContext,
    u: &[f64],
    p: &Prefix,
    o: usize,
) -> OriginFeatures {
    let closed = &ctx.closed;
    let scale = p.scale(o);
    let from = (o + 1).saturating_sub(28);
    let window = &u[from..=o];
    let mean28 = p.mean(o, 28);
    let var = window
        .iter()
        .map(|v| (v - mean28) * (v - mean28))
        .sum::<f64>()
        / window.len() as f64;
    let last_sale = u[..=o].iter().rposition(|v| *v > 0.0);
    let mut open: Vec<f64> = (from..=o)
        .filter(|&i| !closed[panel.day(i).weekday()])
        .map(|i| u[i])
        .collect();
    OriginFeatures {
        scale,
        mean7: p.mean(o, 7),
        mean28,
        mean56: p.mean(o, 56),
        mean91: p.mean(o, 91),
        mean364: p.mean(o, 364),
        prev28: if o >= 28 { p.mean(o - 28, 28) } else { mean28 },
        zero_share28: window.iter().filter(|v| **v == 0.0).count() as f64 / window.len() as f64,
        max28: window.iter().copied().fold(0.0, f64::max),
        std28: var.sqrt(),
        age: p
            .first_sale
            .map_or(0.0, |f| (o.saturating_sub(f)) as f64)
            .min(400.0),
        since_sale: last_sale.map_or(400.0, |l| (o - l) as f64).min(400.0),
        median28_open: median(&mut open),
        shop_trend7: ratio(ctx.shop.mean(o, 7), ctx.shop.mean(o, 28)),
        shop_trend28: ratio(ctx.shop.mean(o, 28), ctx.shop.mean(o, 91)),
        ewma: u[..=o]
            .iter()
            .fold(None, |acc: Option<f64>, v| {
                Some(acc.map_or(*v, |a| 0.8 * a + 0.2 * v))
            })
            .unwrap_or(0.0),
    }
}

/// Writes the features of (series `u`, origin `o`, horizon `h`) into `out`.
fn row_features(
    panel: &Panel,
    ctx: &PanelContext,
    u: &[f64],
    of: &OriginFeatures,
    o: usize,
    h: usize,
    out: &mut Vec<f32>,
) {
    let s = of.scale;
    let day = panel.day(o + h);
    let target = o + h;
    let newest = target - h.div_ceil(7) * 7;
    let mut sw = [f64::NAN; SAME_WEEKDAYS];
    for (k, slot) in sw.iter_mut().enumerate() {
        // A day the whole shop sold nothing (a holiday closure) says nothing about demand.
        if let Some(i) = newest
            .checked_sub(7 * k)
            .filter(|&i| ctx.day_total.get(i).is_none_or(|t| *t > 0.0))
        {
            *slot = u[i];
        }
    }
    let mut seen: Vec<f64> = sw.iter().copied().filter(|v| !v.is_nan()).collect();
    let sw_mean = seen.iter().sum::<f64>() / seen.len().max(1) as f64;
    let sw_nonzero = seen.iter().filter(|v| **v > 0.0).count() as f64 / seen.len().max(1) as f64;
    let mut recent: Vec<f64> = seen.iter().take(4).copied().collect();
    let sw4_median = median(&mut recent);
    let sw_median = median(&mut seen); // sorts `seen`
    let quartile = |q: f64| {
        if seen.is_empty() {
            f64::NAN
        } else {
            seen[((seen.len() - 1) as f64 * q).round() as usize]
        }
    };
    let (sw_q25, sw_q75) = (quartile(0.25), quartile(0.75));
    let (_, _, dom) = day.ymd();
    out.push(h as f32);
    out.push(day.weekday() as f32);
    out.push(dom as f32);
    out.extend(sw.iter().map(|v| (v / s) as f32));
    out.push((sw_median / s) as f32);
    out.push((sw_mean / s) as f32);
    out.push((of.mean7 / s) as f32);
    out.push((of.mean28 / s) as f32);
    out.push((of.mean91 / s) as f32);
    out.push((of.mean364 / s) as f32);
    out.push(((of.mean28 - of.prev28) / s) as f32);
    out.push(of.zero_share28 as f32);
    out.push((of.max28 / s) as f32);
    out.push(s.ln_1p() as f32);
    out.push(of.mean28.ln_1p() as f32);
    out.push(of.age as f32);
    out.push(of.since_sale as f32);
    out.push(if of.mean56 > 0.0 {
        (sw_mean / of.mean56) as f32
    } else {
        f32::NAN
    });
    out.push((of.std28 / s) as f32);
    out.push((sw4_median / s) as f32);
    out.push((sw_q25 / s) as f32);
    out.push((sw_q75 / s) as f32);
    out.push(sw_nonzero as f32);
    out.push((of.median28_open / s) as f32);
    out.push(of.shop_trend7 as f32);
    out.push(of.shop_trend28 as f32);
    out.push((of.ewma / s) as f32);
    // Same weekday, newest weighted most (oldest first into the average).
    let ew = sw
        .iter()
        .rev()
        .filter(|v| !v.is_nan())
        .fold(None, |acc: Option<f64>, v| {
            Some(acc.map_or(*v, |a| 0.7 * a + 0.3 * v))
        });
    out.push(ew.map_or(f32::NAN, |e| (e / s) as f32));
}

/// Trains the global model on every series of `panel` (origins every week back from its end).
pub fn train(
    panel: &Panel,
    config: &GlobalConfig,
    progress: &dyn Fn(&str),
) -> Result<GlobalModel, GbdtError> {
    let ctx = PanelContext::new(panel);
    let (closed, day_total) = (ctx.closed, &ctx.day_total);
    let last = panel.len() - 1;
    // A day on which no series sold anything (a holiday closure) teaches nothing about demand.
    let stride = config.origin_stride.clamp(1, 7);
    let origins: Vec<usize> = (1..=config.max_origins * 7 / stride)
        .filter_map(|k| last.checked_sub(stride * k))
        .filter(|&o| o + 1 >= MIN_HISTORY)
        .collect();
    // Estimate the candidate rows to thin them evenly.
    let per_series: usize = origins.iter().map(|&o| config.horizon.min(last - o)).sum();
    let candidates = per_series * panel.series().len() * 6 / 7;
    let keep = if candidates > config.max_rows {
        config.max_rows as f64 / candidates as f64
    } else {
        1.0
    };
    let mut models = Vec::new();
    let mut rows_trained = 0;
    for bag in 0..config.bags.max(1) {
        let mut params = config.gbdt.clone();
        params.seed = config.gbdt.seed.wrapping_add(bag as u64 * 7919);
        let mut rng = SplitMix(params.seed ^ 0x51);
        let mut x: Vec<f32> = Vec::new();
        let mut y: Vec<f32> = Vec::new();
        for (n, series) in panel.series().iter().enumerate() {
            let u = &series.units;
            let p = Prefix::new(u);
            for &o in &origins {
                if p.first_sale.is_none_or(|f| f > o) {
                    continue;
                }
                let of = origin_features(panel, &ctx, u, &p, o);
                for h in 1..=config.horizon.min(last - o) {
                    if closed[panel.day(o + h).weekday()]
                        || day_total[o + h] == 0.0
                        || (keep < 1.0 && rng.unit() >= keep)
                    {
                        continue;
                    }
                    row_features(panel, &ctx, u, &of, o, h, &mut x);
                    y.push((u[o + h] / of.scale) as f32);
                }
            }
            if (n + 1) % 500 == 0 {
                progress(&format!(
                    "global model: features for {} of {} series",
                    n + 1,
                    panel.series().len()
                ));
            }
        }
        progress(&format!(
            "global model {}/{}: training on {} rows × {} features",
            bag + 1,
            config.bags.max(1),
            y.len(),
            FEATURES.len()
        ));
        models.push(Gbdt::fit(&x, FEATURES.len(), &y, &params)?);
        rows_trained = y.len();
    }
    Ok(GlobalModel {
        feature_names: FEATURES.iter().map(|s| s.to_string()).collect(),
        models,
        rows_trained,
    })
}

impl GlobalModel {
    /// p50 for `horizon` days after the end of `panel` for the series at `index`.
    /// `ctx` is the panel's `PanelContext`, built once by the caller.
    pub fn forecast(
        &self,
        panel: &Panel,
        ctx: &PanelContext,
        index: usize,
        horizon: usize,
    ) -> Vec<f64> {
        let u = &panel.series()[index].units;
        let o = panel.len() - 1;
        // The features address days after the origin only by weekday; extend the panel virtually.
        let p = Prefix::new(u);
        let of = origin_features(panel, ctx, u, &p, o);
        let mut row = Vec::with_capacity(FEATURES.len());
        (1..=horizon)
            .map(|h| {
                row.clear();
                row_features(panel, ctx, u, &of, o, h, &mut row);
                let mean = self
                    .models
                    .iter()
                    .map(|m| f64::from(m.predict(&row)))
                    .sum::<f64>()
                    / self.models.len().max(1) as f64;
                (mean * of.scale).max(0.0)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::Day;
    use crate::series::DemandSeries;

    #[test]
    fn features_never_read_after_the_origin() {
        // Two panels equal up to day 99 and different after: features at origin 99 must match.
        let start = Day::parse("2011-01-03").unwrap();
        let a: Vec<f64> = (0..130).map(|i| (i % 7) as f64).collect();
        let mut b = a.clone();
        for v in &mut b[100..] {
            *v = 1000.0;
        }
        let pa = Panel::new(
            start,
            vec![DemandSeries {
                sku: "A".into(),
                units: a.clone(),
            }],
        )
        .unwrap();
        let pb = Panel::new(
            start,
            vec![DemandSeries {
                sku: "A".into(),
                units: b.clone(),
            }],
        )
        .unwrap();
        for h in 1..=28 {
            let (mut ra, mut rb) = (Vec::new(), Vec::new());
            // Contexts of the panels as they were at the origin: the shop's totals are inputs too.
            let (ca, cb) = (
                PanelContext::new(&pa.truncated(100)),
                PanelContext::new(&pb.truncated(100)),
            );
            row_features(
                &pa,
                &ca,
                &a,
                &origin_features(&pa, &ca, &a, &Prefix::new(&a), 99),
                99,
                h,
                &mut ra,
            );
            row_features(
                &pb,
                &cb,
                &b,
                &origin_features(&pb, &cb, &b, &Prefix::new(&b), 99),
                99,
                h,
                &mut rb,
            );
            assert_eq!(ra.len(), FEATURES.len());
            assert_eq!(format!("{ra:?}"), format!("{rb:?}"), "h={h}");
        }
    }
}
