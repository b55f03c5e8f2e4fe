//! A small histogram gradient-boosted tree learner with quantile (pinball) loss, written for the
//! global demand model: features are binned once (NaN = its own bin), trees grow depth-first with
//! the histogram-subtraction trick, and each leaf takes the alpha-quantile of its residuals.
//! Deterministic for a given seed; the fitted model is plain data (serde) for the registry.

use serde::{Deserialize, Serialize};

/// How a model is trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GbdtParams {
    pub trees: usize,
    pub learning_rate: f32,
    pub max_depth: usize,
    pub min_leaf: usize,
    /// Share of rows each tree sees.
    pub subsample: f64,
    /// Share of features each tree may split on (at least one).
    #[serde(default = "all_features")]
    pub colsample: f64,
    /// Bins per feature (at most 255; one more holds missing values).
    pub bins: usize,
    /// The quantile the model predicts (0.5 = the median, what MASE rewards).
    pub alpha: f32,
    pub seed: u64,
}

fn all_features() -> f64 {
    1.0
}

impl GbdtParams {
    /// The settings the demand backtests chose.
    pub fn demand() -> GbdtParams {
        GbdtParams {
            trees: 300,
            learning_rate: 0.08,
            max_depth: 6,
            min_leaf: 100,
            subsample: 0.5,
            colsample: 1.0,
            bins: 63,
            alpha: 0.5,
            seed: 7,
        }
    }
}

/// Why a model cannot be trained.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GbdtError {
    #[error("no training rows")]
    NoRows,
    #[error("row {row} has {got} features, expected {expected}")]
    Ragged {
        row: usize,
        got: usize,
        expected: usize,
    },
    #[error("target {row} is not a finite number")]
    BadTarget { row: usize },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Node {
    /// `u32::MAX` marks a leaf.
    feature: u32,
    /// Rows whose bin is `<= bin` go left.
    bin: u8,
    left: u32,
    right: u32,
    value: f32,
}

/// A fitted model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gbdt {
    features: usize,
    edges: Vec<Vec<f32>>,
    init: f32,
    trees: Vec<Vec<Node>>,
}

const MAX_BINS: usize = 256;

struct Hist {
    sum: Vec<f64>,
    cnt: Vec<u32>,
}

impl Hist {
    fn zeros(features: usize) -> Hist {
        Hist {
            sum: vec![0.0; features * MAX_BINS],
            cnt: vec![0; features * MAX_BINS],
        }
    }
}

struct Ctx<'a> {
    n: usize,
    features: usize,
    nbins: &'a [usize],
    binned: &'a [u8],
    target: &'a [f32],
    residual: &'a [f32],
    params: &'a GbdtParams,
    threads: usize,
    /// Features this tree may split on.
    usable: &'a [bool],
}

impl Gbdt {
    /// Trains on row-major `x` (`features` values per row) against `y`.
    pub fn fit(
        x: &[f32],
        features: usize,
        y: &[f32],
        params: &GbdtParams,
    ) -> Result<Gbdt, GbdtError> {
        let n = y.len();
        if n == 0 || features == 0 {
            return Err(GbdtError::NoRows);
        }
        if x.len() != n * features {
            return Err(GbdtError::Ragged {
                row: x.len() / features,
                got: x.len() % features,
                expected: features,
            });
        }
        if let Some(row) = y.iter().position(|v| !v.is_finite()) {
            return Err(GbdtError::BadTarget { row });
        }
        let bins = params.bins.clamp(2, MAX_BINS - 1);
        let edges: Vec<Vec<f32>> = (0..features)
            .map(|f| bin_edges((0..n).map(|i| x[i * features + f]), bins, params.seed))
            .collect();
        let nbins: Vec<usize> = edges.iter().map(|e| e.len() + 2).collect();
        let mut binned = vec![0u8; n * features];
        for f in 0..features {
            for i in 0..n {
                binned[f * n + i] = bin_of(&edges[f], x[i * features + f]);
            }
        }
        let init = quantile(&mut y.to_vec(), params.alpha);
        let mut pred = vec![init; n];
        let mut rng = SplitMix(params.seed);
        let threads = std::thread::available_parallelism()
            .map_or(1, |p| p.get())
            .min(4);
        let mut trees = Vec::with_capacity(params.trees);
        let mut target = vec![0f32; n];
        let mut residual = vec![0f32; n];
        for _ in 0..params.trees {
            for i in 0..n {
                let r = y[i] - pred[i];
                residual[i] = r;
                target[i] = if r > 0.0 {
                    params.alpha
                } else if r < 0.0 {
                    params.alpha - 1.0
                } else {
                    0.0
                };
            }
            let mut rows: Vec<u32> = (0..n as u32)
                .filter(|_| rng.unit() < params.subsample)
                .collect();
            if rows.len() < 2 * params.min_leaf.max(1) {
                rows = (0..n as u32).collect();
            }
            let mut usable: Vec<bool> = (0..features)
                .map(|_| rng.unit() < params.colsample)
                .collect();
            if !usable.iter().any(|u| *u) {
                usable[(rng.next() % features as u64) as usize] = true;
            }
            let ctx = Ctx {
                n,
                features,
                nbins: &nbins,
                binned: &binned,
                target: &target,
                residual: &residual,
                params,
                threads,
                usable: &usable,
            };
            let hist = ctx.histogram(&rows);
            let mut nodes = Vec::new();
            ctx.grow(&mut rows, hist, 0, &mut nodes);
            for (i, p) in pred.iter_mut().enumerate() {
                *p += leaf_value(&nodes, |f| binned[f * n + i]);
            }
            trees.push(nodes);
        }
        Ok(Gbdt {
            features,
            edges,
            init,
            trees,
        })
    }

    /// Number of features a row must have.
    pub fn features(&self) -> usize {
        self.features
    }

    /// The prediction for one row of raw features (NaN = missing).
    pub fn predict(&self, row: &[f32]) -> f32 {
        let bins: Vec<u8> = (0..self.features)
            .map(|f| bin_of(&self.edges[f], row.get(f).copied().unwrap_or(f32::NAN)))
            .collect();
        self.init
            + self
                .trees
                .iter()
                .map(|t| leaf_value(t, |f| bins[f]))
                .sum::<f32>()
    }
}

fn leaf_value(nodes: &[Node], bin: impl Fn(usize) -> u8) -> f32 {
    let mut i = 0usize;
    loop {
        let node = &nodes[i];
        if node.feature == u32::MAX {
            return node.value;
        }
        i = if bin(node.feature as usize) <= node.bin {
            node.left
        } else {
            node.right
        } as usize;
    }
}

impl Ctx<'_> {
    fn histogram(&self, rows: &[u32]) -> Hist {
        let mut h = Hist::zeros(self.features);
        let fill = |f0: usize, sums: &mut [f64], cnts: &mut [u32]| {
            for (k, (s, c)) in sums
                .chunks_mut(MAX_BINS)
                .zip(cnts.chunks_mut(MAX_BINS))
                .enumerate()
            {
                // Feature 0's histogram is always built: it gives the node's totals.
                if f0 + k > 0 && !self.usable[f0 + k] {
                    continue;
                }
                let col = &self.binned[(f0 + k) * self.n..(f0 + k + 1) * self.n];
                for &r in rows {
                    let b = col[r as usize] as usize;
                    s[b] += f64::from(self.target[r as usize]);
                    c[b] += 1;
                }
            }
        };
        if self.threads > 1 && rows.len() * self.features > 200_000 {
            let per = self.features.div_ceil(self.threads);
            std::thread::scope(|scope| {
                for (t, (s, c)) in h
                    .sum
                    .chunks_mut(per * MAX_BINS)
                    .zip(h.cnt.chunks_mut(per * MAX_BINS))
                    .enumerate()
                {
                    let fill = &fill;
                    scope.spawn(move || fill(t * per, s, c));
                }
            });
        } else {
            fill(0, &mut h.sum, &mut h.cnt);
        }
        h
    }

    fn grow(&self, rows: &mut [u32], hist: Hist, depth: usize, nodes: &mut Vec<Node>) -> u32 {
        let me = nodes.len() as u32;
        nodes.push(Node {
            feature: u32::MAX,
            bin: 0,
            left: 0,
            right: 0,
            value: 0.0,
        });
        let n = rows.len();
        let min_leaf = self.params.min_leaf.max(1);
        let split = if depth < self.params.max_depth && n >= 2 * min_leaf {
            self.best_split(&hist, n, min_leaf)
        } else {
            None
        };
        let Some((feature, bin)) = split else {
            let mut r: Vec<f32> = rows.iter().map(|&i| self.residual[i as usize]).collect();
            nodes[me as usize].value =
                self.params.learning_rate * quantile(&mut r, self.params.alpha);
            return me;
        };
        let col = &self.binned[feature * self.n..(feature + 1) * self.n];
        let mut left_len = 0;
        for i in 0..n {
            if col[rows[i] as usize] <= bin {
                rows.swap(i, left_len);
                left_len += 1;
            }
        }
        let (left, right) = rows.split_at_mut(left_len);
        let (small_is_left, small) = if left.len() <= right.len() {
            (true, &*left)
        } else {
            (false, &*right)
        };
        let small_hist = self.histogram(small);
        let mut big_hist = hist;
        for (b, s) in big_hist.sum.iter_mut().zip(&small_hist.sum) {
            *b -= s;
        }
        for (b, s) in big_hist.cnt.iter_mut().zip(&small_hist.cnt) {
            *b -= s;
        }
        let (lh, rh) = if small_is_left {
            (small_hist, big_hist)
        } else {
            (big_hist, small_hist)
        };
        let l = self.grow(left, lh, depth + 1, nodes);
        let r = self.grow(right, rh, depth + 1, nodes);
        nodes[me as usize] = Node {
            feature: feature as u32,
            bin,
            left: l,
            right: r,
            value: 0.0,
        };
        me
    }

    fn best_split(&self, h: &Hist, n: usize, min_leaf: usize) -> Option<(usize, u8)> {
        let total: f64 = h.sum[..MAX_BINS].iter().sum();
        let base = total * total / n as f64;
        let mut best: Option<(f64, usize, u8)> = None;
        for f in (0..self.features).filter(|&f| self.usable[f]) {
            let (s, c) = (&h.sum[f * MAX_BINS..], &h.cnt[f * MAX_BINS..]);
            let (mut sl, mut nl) = (0.0f64, 0usize);
            for b in 0..self.nbins[f].saturating_sub(1) {
                sl += s[b];
                nl += c[b] as usize;
                let nr = n - nl;
                if nl < min_leaf {
                    continue;
                }
                if nr < min_leaf {
                    break;
                }
                let sr = total - sl;
                let gain = sl * sl / nl as f64 + sr * sr / nr as f64 - base;
                if gain > 1e-9 && best.is_none_or(|(g, _, _)| gain > g) {
                    best = Some((gain, f, b as u8));
                }
            }
        }
        best.map(|(_, f, b)| (f, b))
    }
}

/// Up to `bins - 1` cut points at quantiles of the finite values (sampled when many).
fn bin_edges(values: impl Iterator<Item = f32>, bins: usize, seed: u64) -> Vec<f32> {
    let all: Vec<f32> = values.filter(|v| v.is_finite()).collect();
    let mut sample: Vec<f32> = if all.len() > 100_000 {
        let mut rng = SplitMix(seed ^ 0x9e37);
        (0..100_000)
            .map(|_| all[(rng.next() % all.len() as u64) as usize])
            .collect()
    } else {
        all
    };
    if sample.is_empty() {
        return Vec::new();
    }
    sample.sort_by(f32::total_cmp);
    let mut edges: Vec<f32> = (1..bins)
        .map(|k| sample[(k * (sample.len() - 1)) / bins])
        .collect();
    edges.dedup();
    // The largest value must fall in a bin of its own side: drop an edge equal to the maximum.
    if edges.last() == sample.last() {
        edges.pop();
    }
    edges
}

/// Bin 0 holds missing values; bin k (1-based) holds values in (edges[k-2], edges[k-1]].
fn bin_of(edges: &[f32], v: f32) -> u8 {
    if v.is_nan() {
        0
    } else {
        (1 + edges.partition_point(|e| *e < v)) as u8
    }
}

/// The alpha-quantile (lower) of `v`; 0 when empty. Reorders `v`.
pub fn quantile(v: &mut [f32], alpha: f32) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let k = ((v.len() - 1) as f32 * alpha).round() as usize;
    let (_, x, _) = v.select_nth_unstable_by(k.min(v.len() - 1), f32::total_cmp);
    *x
}

/// A tiny deterministic generator (SplitMix64) for row sampling.
pub(crate) struct SplitMix(pub u64);

impl SplitMix {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_step_function_median() {
        // y = 10 when x > 0.5 else 2, with noise that is symmetric around the step.
        let mut rng = SplitMix(1);
        let n = 4000;
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let a = rng.unit() as f32;
            let noise = (rng.unit() as f32 - 0.5) * 2.0;
            x.extend([a, rng.unit() as f32]);
            y.push(if a > 0.5 { 10.0 } else { 2.0 } + noise);
        }
        let params = GbdtParams {
            trees: 60,
            learning_rate: 0.2,
            max_depth: 3,
            min_leaf: 20,
            subsample: 0.8,
            colsample: 1.0,
            bins: 32,
            alpha: 0.5,
            seed: 3,
        };
        let m = Gbdt::fit(&x, 2, &y, &params).unwrap();
        assert!(
            (m.predict(&[0.9, 0.1]) - 10.0).abs() < 0.5,
            "{}",
            m.predict(&[0.9, 0.1])
        );
        assert!(
            (m.predict(&[0.1, 0.9]) - 2.0).abs() < 0.5,
            "{}",
            m.predict(&[0.1, 0.9])
        );
        assert!(m.predict(&[f32::NAN, 0.5]).is_finite());
    }

    #[test]
    fn a_high_quantile_sits_above_the_median() {
        let mut rng = SplitMix(2);
        let x: Vec<f32> = (0..2000).map(|_| rng.unit() as f32).collect();
        let y: Vec<f32> = (0..2000).map(|_| (rng.unit() * 10.0) as f32).collect();
        let base = GbdtParams {
            trees: 40,
            learning_rate: 0.2,
            max_depth: 2,
            min_leaf: 50,
            subsample: 1.0,
            colsample: 1.0,
            bins: 16,
            alpha: 0.5,
            seed: 1,
        };
        let p50 = Gbdt::fit(&x, 1, &y, &base).unwrap().predict(&[0.5]);
        let p90 = Gbdt::fit(&x, 1, &y, &GbdtParams { alpha: 0.9, ..base })
            .unwrap()
            .predict(&[0.5]);
        assert!((p50 - 5.0).abs() < 1.0, "{p50}");
        assert!((p90 - 9.0).abs() < 1.0, "{p90}");
    }

    #[test]
    fn bad_training_input_is_an_error() {
        let p = GbdtParams::demand();
        assert_eq!(Gbdt::fit(&[], 1, &[], &p), Err(GbdtError::NoRows));
        assert!(matches!(
            Gbdt::fit(&[1.0, 2.0, 3.0], 2, &[1.0, 2.0], &p),
            Err(GbdtError::Ragged { .. })
        ));
        assert_eq!(
            Gbdt::fit(&[1.0], 1, &[f32::NAN], &p),
            Err(GbdtError::BadTarget { row: 0 })
        );
    }
}
