//! `ordo forecast csv` and `ordo forecast evaluate`: demand forecasts from a sales-history CSV and
//! rolling-origin backtests of every method beside the baselines. Thin: parse flags, read the
//! file, call `ordo_intel`, write the answer; progress goes to stderr, results to files/stdout.

use clap::builder::TypedValueParser;
use clap::{Args, Subcommand};
use ordo_intel::backtest::{BacktestConfig, backtest};
use ordo_intel::gbdt::GbdtParams;
use ordo_intel::methods::global::GlobalConfig;
use ordo_intel::{Columns, ForecastConfig, Method, forecast_all, read_history};
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Subcommand)]
pub enum ForecastCommand {
    /// Forecast every SKU of a history CSV (date,sku,units; a missing day is zero).
    Csv(CsvArgs),
    /// Backtest the methods on a history CSV at rolling origins and print MASE, bias and coverage.
    Evaluate(EvaluateArgs),
    /// Forecast every SKU from the database's sales history and placed orders; store the result.
    Run(RunArgs),
    /// Replay the history after rolling origins: forecast-driven reorder points vs a fixed one.
    Simulate(SimulateArgs),
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    storage: super::StorageArgs,
    /// Tenant whose history is forecast.
    #[arg(long, env = "ORDO_TENANT", default_value = "default")]
    tenant: String,
    /// Train a new model version first (otherwise the active version forecasts; one is trained
    /// when none is active).
    #[arg(long)]
    retrain: bool,
    /// Make the newly trained version active (the first version always is).
    #[arg(long)]
    activate: bool,
    /// Method of a newly trained version (the backtest winner by default).
    #[arg(long, default_value = "gbdt")]
    method: Method,
    /// Days to forecast.
    #[arg(long, default_value_t = 28, value_parser = clap::value_parser!(u32).range(1..=366))]
    horizon: u32,
}

#[derive(Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// The forecasting method behind the forecast-driven policy.
    #[arg(long, default_value = "gbdt")]
    method: Method,
    /// Rolling origins (consecutive horizons are replayed).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=52))]
    origins: u32,
    /// SKUs simulated: the busiest before the first origin.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    top: u32,
    /// Days from order to receipt.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=28))]
    lead_time_days: u32,
    /// Days between reviews; an order covers the lead time plus this.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(0..=28))]
    review_days: u32,
    /// Target probability of no stock-out over the lead time.
    #[arg(long, default_value_t = 0.95)]
    service_level: f64,
}

#[derive(Args)]
pub struct InputArgs {
    /// The history CSV.
    #[arg(long)]
    input: PathBuf,
    /// Header names of the date, SKU and units columns, e.g. date,stock_code,units_sold.
    #[arg(long, default_value = "date,sku,units")]
    columns: String,
    /// Days to forecast after the input's last date.
    #[arg(long, default_value_t = 28, value_parser = clap::value_parser!(u32).range(1..=366))]
    horizon: u32,
}

/// Settings of the global gradient-boosted model (defaults: what the backtests chose).
#[derive(Args)]
pub struct ModelArgs {
    /// Boosting rounds.
    #[arg(long, default_value_t = GbdtParams::demand().trees, value_parser = clap::value_parser!(u32).range(1..=5000).map(|v| v as usize))]
    trees: usize,
    /// Depth of each tree.
    #[arg(long, default_value_t = GbdtParams::demand().max_depth, value_parser = clap::value_parser!(u32).range(1..=16).map(|v| v as usize))]
    depth: usize,
    /// Shrinkage per tree.
    #[arg(long, default_value_t = GbdtParams::demand().learning_rate)]
    learning_rate: f32,
    /// Fewest training rows in a leaf.
    #[arg(long, default_value_t = GbdtParams::demand().min_leaf, value_parser = clap::value_parser!(u32).range(1..=1_000_000).map(|v| v as usize))]
    min_leaf: usize,
    /// Most training rows (more are thinned at random, seeded).
    #[arg(long, default_value_t = GlobalConfig::demand(28).max_rows, value_parser = clap::value_parser!(u32).range(1000..=50_000_000).map(|v| v as usize))]
    max_rows: usize,
    /// Share of features each tree may split on.
    #[arg(long, default_value_t = GbdtParams::demand().colsample)]
    colsample: f64,
    /// Days between training origins (7 = only the forecast origin's weekday, 1 = every day).
    #[arg(long, default_value_t = GlobalConfig::demand(28).origin_stride, value_parser = clap::value_parser!(u32).range(1..=7).map(|v| v as usize))]
    origin_stride: usize,
    /// Models trained on different seeded samples and averaged.
    #[arg(long, default_value_t = GlobalConfig::demand(28).bags, value_parser = clap::value_parser!(u32).range(1..=10).map(|v| v as usize))]
    bags: usize,
}

impl ModelArgs {
    fn global(&self, horizon: usize) -> Result<GlobalConfig, String> {
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return Err(format!(
                "--learning-rate must be in (0, 1], got {}",
                self.learning_rate
            ));
        }
        let mut g = GlobalConfig::demand(horizon);
        g.gbdt.trees = self.trees;
        g.gbdt.max_depth = self.depth;
        g.gbdt.learning_rate = self.learning_rate;
        g.gbdt.min_leaf = self.min_leaf;
        if !(self.colsample > 0.0 && self.colsample <= 1.0) {
            return Err(format!(
                "--colsample must be in (0, 1], got {}",
                self.colsample
            ));
        }
        g.gbdt.colsample = self.colsample;
        g.max_rows = self.max_rows;
        g.origin_stride = self.origin_stride;
        g.bags = self.bags;
        Ok(g)
    }
}

#[derive(Args)]
pub struct CsvArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// Where to write sku,date,p50,lo80,hi80,lo95,hi95.
    #[arg(long)]
    output: PathBuf,
    /// The method (the backtest winner by default; see EVALUATION.md).
    #[arg(long, default_value = "gbdt")]
    method: Method,
}

#[derive(Args)]
pub struct EvaluateArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// Rolling origins; the last is one horizon before the input's end.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=52))]
    origins: u32,
    /// Days between origins.
    #[arg(long, default_value_t = 28, value_parser = clap::value_parser!(u32).range(1..=365))]
    step: u32,
    /// Series scored per origin: the busiest by units sold up to the origin.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    top: u32,
    /// Methods to compare, comma-separated (the two baselines are always included).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "weekly-naive,weekday-median,ets,mstl,gbdt,ensemble"
    )]
    methods: Vec<Method>,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub async fn run(command: ForecastCommand) -> Result<(), String> {
    match command {
        ForecastCommand::Csv(args) => tokio::task::spawn_blocking(move || forecast_csv(args))
            .await
            .map_err(|e| e.to_string())?,
        ForecastCommand::Evaluate(args) => tokio::task::spawn_blocking(move || evaluate(args))
            .await
            .map_err(|e| e.to_string())?,
        ForecastCommand::Simulate(args) => tokio::task::spawn_blocking(move || simulate(args))
            .await
            .map_err(|e| e.to_string())?,
        ForecastCommand::Run(args) => run_in_database(args).await,
    }
}

async fn run_in_database(args: RunArgs) -> Result<(), String> {
    use ordo_server::services::forecasts::{RunOptions, run_forecast};
    if args.tenant.trim().is_empty() {
        return Err("--tenant must not be empty".into());
    }
    let started = Instant::now();
    let store = ordo_store::Store::open(&args.storage.config()?)
        .await
        .map_err(|e| e.to_string())?;
    let options = RunOptions {
        retrain: args.retrain,
        activate: args.activate,
        method: args.method,
        horizon: args.horizon as usize,
    };
    let report = run_forecast(&store, &args.tenant, options, progress_to_stderr(started))
        .await
        .map_err(|e| e.to_string())?;
    store.close().await;
    println!(
        "forecast {} SKUs × {} days from history {}..{} with model version {}{}; {} rows stored",
        report.skus,
        report.days,
        report.history_from,
        report.history_to,
        report.used_version,
        report
            .trained_version
            .map_or(String::new(), |v| format!(" (trained version {v})")),
        report.rows_stored
    );
    if let Some(drift) = &report.drift {
        if drift.drifted {
            println!("model drift detected: {}", drift.reasons.join("; "));
        }
    }
    Ok(())
}

fn simulate(args: SimulateArgs) -> Result<(), String> {
    use ordo_intel::replenishment::ServiceLevel;
    use ordo_intel::simulation::{SimulationTerms, simulate};
    let started = Instant::now();
    let progress = progress_to_stderr(started);
    let panel = load(&args.input, &progress)?;
    let service = ServiceLevel::new(args.service_level).map_err(|e| e.to_string())?;
    let backtest = BacktestConfig {
        methods: vec![args.method],
        global: args.model.global(args.input.horizon as usize)?,
        origins: args.origins as usize,
        step: args.input.horizon as usize,
        top: args.top as usize,
    };
    let terms = SimulationTerms {
        lead_time_days: args.lead_time_days as usize,
        review_days: args.review_days as usize,
        service,
    };
    let r =
        simulate(&panel, &backtest, args.method, terms, &progress).map_err(|e| e.to_string())?;
    println!(
        "Replenishment simulation: {} SKUs, {} days, lead time {} days, review every {} days, target service {:.0}%.\n",
        r.skus,
        r.days,
        terms.lead_time_days,
        terms.review_days,
        100.0 * service.value()
    );
    println!("| policy | fill rate | stock-out SKU-days | mean units on hand per SKU | orders |");
    println!("|---|---|---|---|---|");
    for (name, o) in [
        (
            format!("forecast-driven ({})", args.method),
            r.forecast_policy,
        ),
        ("fixed reorder point".to_string(), r.fixed_policy),
    ] {
        println!(
            "| {name} | {:.1}% | {} | {:.1} | {} |",
            100.0 * o.fill_rate,
            o.stockout_days,
            o.mean_on_hand,
            o.orders
        );
    }
    Ok(())
}

fn progress_to_stderr(started: Instant) -> impl Fn(&str) {
    move |msg: &str| eprintln!("[{:>6.1}s] {msg}", started.elapsed().as_secs_f64())
}

fn load(input: &InputArgs, progress: &dyn Fn(&str)) -> Result<ordo_intel::Panel, String> {
    let columns = Columns::parse(&input.columns).map_err(|e| e.to_string())?;
    let file = File::open(&input.input).map_err(|e| format!("{}: {e}", input.input.display()))?;
    let (panel, summary) = read_history(BufReader::with_capacity(1 << 20, file), &columns)
        .map_err(|e| format!("{}: {e}", input.input.display()))?;
    progress(&format!(
        "read {} rows: {} SKUs, {} to {} ({} days)",
        summary.rows,
        panel.series().len(),
        panel.start(),
        panel.end(),
        panel.len()
    ));
    Ok(panel)
}

fn forecast_csv(args: CsvArgs) -> Result<(), String> {
    let started = Instant::now();
    let progress = progress_to_stderr(started);
    let panel = load(&args.input, &progress)?;
    let config = ForecastConfig {
        method: args.method,
        global: args.model.global(args.input.horizon as usize)?,
    };
    let (forecasts, calibration) =
        forecast_all(&panel, &config, &progress).map_err(|e| e.to_string())?;
    progress(&format!(
        "intervals calibrated on {} holdout days",
        calibration.days
    ));
    write_atomically(&args.output, |w| {
        writeln!(w, "sku,date,p50,lo80,hi80,lo95,hi95")?;
        for f in &forecasts {
            let sku = csv_field(&f.sku);
            for d in 0..f.p50.len() {
                writeln!(
                    w,
                    "{sku},{},{:.3},{:.3},{:.3},{:.3},{:.3}",
                    f.first_day.plus(d as i32),
                    f.p50[d],
                    f.lo80[d],
                    f.hi80[d],
                    f.lo95[d],
                    f.hi95[d]
                )?;
            }
        }
        Ok(())
    })?;
    progress(&format!(
        "wrote {} series × {} days to {}",
        forecasts.len(),
        config.horizon(),
        args.output.display()
    ));
    Ok(())
}

/// Quotes a field when it holds a comma, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes to a temporary file beside `path` and renames it, so a failure leaves no half file.
fn write_atomically(
    path: &Path,
    body: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), String> {
    let tmp = path.with_extension("partial");
    let result = (|| {
        let mut w = BufWriter::new(File::create(&tmp)?);
        body(&mut w)?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: {e}", path.display())
    })
}

fn evaluate(args: EvaluateArgs) -> Result<(), String> {
    let started = Instant::now();
    let progress = progress_to_stderr(started);
    let panel = load(&args.input, &progress)?;
    let mut methods = vec![Method::WeeklyNaive, Method::WeekdayMedian];
    for m in args.methods {
        if !methods.contains(&m) {
            methods.push(m);
        }
    }
    let config = BacktestConfig {
        methods,
        global: args.model.global(args.input.horizon as usize)?,
        origins: args.origins as usize,
        step: args.step as usize,
        top: args.top as usize,
    };
    let results = backtest(&panel, &config, &progress).map_err(|e| e.to_string())?;
    let naive = results[0].overall.mase;
    let median = results[1].overall.mase;
    let origins: Vec<String> = results[0]
        .per_origin
        .iter()
        .map(|(d, _)| d.to_string())
        .collect();
    println!(
        "Rolling-origin backtest: {} origins (last day seen: {}), horizon {} days, the {} busiest SKUs at each origin.",
        origins.len(),
        origins.join(", "),
        config.global.horizon,
        config.top
    );
    println!(
        "MASE is scaled by each SKU's in-sample weekly-naive error and averaged over SKUs and origins;"
    );
    println!(
        "bias = (Σ forecast − Σ actual) / Σ actual; coverage counts open days (closed weekdays excluded).\n"
    );
    println!(
        "| method | MASE | vs weekly naive | vs weekday median | bias | 80% coverage | 95% coverage | MASE per origin |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in &results {
        let o = r.overall;
        let per: Vec<String> = r
            .per_origin
            .iter()
            .map(|(_, s)| format!("{:.3}", s.mase))
            .collect();
        println!(
            "| {} | {:.3} | {:+.1}% | {:+.1}% | {:+.1}% | {:.1}% | {:.1}% | {} |",
            r.method,
            o.mase,
            100.0 * (o.mase / naive - 1.0),
            100.0 * (o.mase / median - 1.0),
            100.0 * o.bias,
            100.0 * o.coverage80,
            100.0 * o.coverage95,
            per.join(" / ")
        );
    }
    if let Some(path) = args.json {
        let text = serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?;
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    progress("done");
    Ok(())
}
