//! Demand forecasting use cases: build daily series from imported history and placed orders,
//! forecast them with the registry's active model (training and registering one when asked or
//! when none exists), store every forecast day naming the model version, and read them back.

use super::ServiceError;
use ordo_intel::drift::{
    DriftReport, DriftThresholds, input_profile, judge, population_stability_index,
};
use ordo_intel::forecast::series_scale;
use ordo_intel::series::PanelBuilder;
use ordo_intel::{Day, ForecastConfig, Forecaster, Method, Panel};
use ordo_store::{ForecastRow, ModelChangeError, ModelRecord, NewModel, Store};

/// The registry name of the demand model.
pub const DEMAND_MODEL: &str = "demand";

/// How `run_forecast` behaves.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Train a new version before forecasting (otherwise only when no version is active).
    pub retrain: bool,
    /// Make a newly trained version active (the first version always is).
    pub activate: bool,
    pub method: Method,
    pub horizon: usize,
}

/// What a run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunReport {
    pub skus: usize,
    pub days: usize,
    pub history_from: String,
    pub history_to: String,
    pub trained_version: Option<i64>,
    pub used_version: i64,
    pub rows_stored: usize,
    /// The drift check of the model used (only when it was not trained in this run).
    pub drift: Option<DriftReport>,
}

impl From<ModelChangeError> for ServiceError {
    fn from(e: ModelChangeError) -> Self {
        match e {
            ModelChangeError::Refused(why) => {
                ServiceError::field("version", "registry_refused", why.to_string())
            }
            ModelChangeError::Store(s) => s.into(),
        }
    }
}

/// Daily units per SKU for the tenant: imported history plus placed orders (by UTC day).
pub async fn demand_panel(store: &Store, tenant: &str) -> Result<Option<Panel>, ServiceError> {
    let (imported, placed) = store.demand_history(tenant).await?;
    let mut builder = PanelBuilder::new();
    for (sku, day, units) in imported {
        let day = Day::parse(&day)
            .map_err(|e| ServiceError::Internal(format!("stored sales day: {e}")))?;
        builder.add(&sku, day, units.max(0.0));
    }
    for (sku, at_ms, units) in placed {
        let day = Day::parse("1970-01-01")
            .map_err(|e| ServiceError::Internal(e.to_string()))?
            .plus(at_ms.div_euclid(86_400_000) as i32);
        builder.add(&sku, day, units.max(0.0));
    }
    if builder.span().is_none() {
        return Ok(None);
    }
    builder
        .build(None)
        .map(Some)
        .map_err(|e| ServiceError::Internal(e.to_string()))
}

/// Forecasts every SKU with the active model (training one first when asked or when none is
/// active) and stores the result; each stored day names the model version used.
pub async fn run_forecast(
    store: &Store,
    tenant: &str,
    options: RunOptions,
    progress: impl Fn(&str) + Send + Sync + 'static,
) -> Result<RunReport, ServiceError> {
    let Some(panel) = demand_panel(store, tenant).await? else {
        return Err(ServiceError::NotFound(
            "sales history (import some with `ordo import uci` or place orders)".into(),
        ));
    };
    let progress = std::sync::Arc::new(progress);
    let active = store.active_model(tenant, DEMAND_MODEL).await?;
    let mut trained_version = None;
    let panel = std::sync::Arc::new(panel);
    let (record, forecaster) = match active {
        Some((record, artifact)) if !options.retrain => {
            let f: Forecaster = serde_json::from_str(&artifact).map_err(|e| {
                ServiceError::Internal(format!("model {} v{}: {e}", record.name, record.version))
            })?;
            (record, f)
        }
        active => {
            let config = ForecastConfig::new(options.method, options.horizon);
            let (p, pr) = (panel.clone(), progress.clone());
            let forecaster = tokio::task::spawn_blocking(move || {
                let all: Vec<usize> = (0..p.series().len()).collect();
                ordo_intel::train_forecaster(&p, &config, &all, &|m| pr(m))
            })
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
            let artifact = serde_json::to_string(&forecaster)
                .map_err(|e| ServiceError::Internal(e.to_string()))?;
            let metrics = serde_json::json!({
                "holdout_mase": forecaster.calibration.holdout_mase,
                "holdout_days": forecaster.calibration.days,
                "rows_trained": forecaster.global.as_ref().map_or(0, |g| g.rows_trained),
            });
            let version = store
                .register_model(
                    tenant,
                    NewModel {
                        name: DEMAND_MODEL.into(),
                        method: forecaster.method.name().into(),
                        window_start: forecaster.trained_from.to_string(),
                        window_end: forecaster.trained_through.to_string(),
                        metrics,
                        artifact,
                        activate: options.activate || active.is_none(),
                    },
                )
                .await?;
            trained_version = Some(version);
            let (record, artifact) = store
                .active_model(tenant, DEMAND_MODEL)
                .await?
                .ok_or_else(|| ServiceError::Internal("no active demand model".into()))?;
            let f: Forecaster = serde_json::from_str(&artifact)
                .map_err(|e| ServiceError::Internal(e.to_string()))?;
            (record, f)
        }
    };
    let drift = if trained_version.is_none() {
        Some(check_drift(store, tenant, &panel, &record, &forecaster).await?)
    } else {
        None
    };
    let (p, pr) = (panel.clone(), progress.clone());
    let forecasts = tokio::task::spawn_blocking(move || {
        let all: Vec<usize> = (0..p.series().len()).collect();
        forecaster.forecast(&p, &all, &|m| pr(m))
    })
    .await
    .map_err(|e| ServiceError::Internal(e.to_string()))?;
    let rows: Vec<ForecastRow> = forecasts
        .iter()
        .flat_map(|f| {
            let record = &record;
            (0..f.p50.len()).map(move |d| ForecastRow {
                sku: f.sku.clone(),
                day: f.first_day.plus(d as i32).to_string(),
                p50: f.p50[d],
                lo80: f.lo80[d],
                hi80: f.hi80[d],
                lo95: f.lo95[d],
                hi95: f.hi95[d],
                mean: f.mean[d],
                sd: f.sd[d],
                model_name: record.name.clone(),
                model_version: record.version,
            })
        })
        .collect();
    let days = forecasts.first().map_or(0, |f| f.p50.len());
    let rows_stored = store.store_forecasts(tenant, rows).await?;
    Ok(RunReport {
        skus: forecasts.len(),
        days,
        history_from: panel.start().to_string(),
        history_to: panel.end().to_string(),
        trained_version,
        used_version: record.version,
        rows_stored,
        drift,
    })
}

/// Compares the stored forecasts' error on the days since they were made with the model's
/// holdout error, and the input profile now with the one at training; flags the model version
/// (and emits `ordo.model.drift_detected`, the ModelDriftDetected event) past the thresholds, clears the flag otherwise.
async fn check_drift(
    store: &Store,
    tenant: &str,
    panel: &Panel,
    record: &ModelRecord,
    forecaster: &Forecaster,
) -> Result<DriftReport, ServiceError> {
    use std::collections::BTreeMap;
    let mut by_sku: BTreeMap<String, Vec<ForecastRow>> = BTreeMap::new();
    for row in store.all_forecasts(tenant).await? {
        by_sku.entry(row.sku.clone()).or_default().push(row);
    }
    let index: BTreeMap<&str, usize> = panel
        .series()
        .iter()
        .enumerate()
        .map(|(i, s)| (s.sku.as_str(), i))
        .collect();
    let (mut mase_sum, mut judged) = (0.0, 0usize);
    for (sku, rows) in &by_sku {
        let Some(&i) = index.get(sku.as_str()) else {
            continue;
        };
        let u = &panel.series()[i].units;
        let mut pairs = Vec::new();
        let mut first = None;
        for r in rows {
            let Ok(day) = Day::parse(&r.day) else {
                continue;
            };
            let d = day.since(panel.start());
            if d >= 0 && (d as usize) < panel.len() {
                first = Some(first.map_or(d as usize, |f: usize| f.min(d as usize)));
                pairs.push((u[d as usize], r.p50));
            }
        }
        let Some(first) = first else { continue };
        if pairs.len() >= 7 {
            let scale = series_scale(&u[..first]);
            mase_sum +=
                pairs.iter().map(|(a, f)| (a - f).abs()).sum::<f64>() / pairs.len() as f64 / scale;
            judged += 1;
        }
    }
    let holdout = forecaster.calibration.holdout_mase;
    let recent = if judged > 0 {
        mase_sum / judged as f64
    } else {
        holdout
    };
    let psi = population_stability_index(&forecaster.reference_inputs, &input_profile(panel));
    let report = judge(psi, recent, holdout, DriftThresholds::customary());
    let flag = report
        .drifted
        .then(|| serde_json::to_value(&report).unwrap_or_default());
    store
        .record_model_drift(tenant, &record.name, record.version, flag)
        .await?;
    Ok(report)
}

/// One SKU's recent daily history (up to `history_days`) and its stored forecast.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SkuForecast {
    pub sku: String,
    pub model_name: String,
    pub model_version: i64,
    /// Set when the model version's latest drift check found drift: PSI, error ratio, reasons.
    pub drift: Option<serde_json::Value>,
    /// Daily units sold, oldest first.
    pub history: Vec<HistoryDay>,
    pub forecast: Vec<ForecastDay>,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct HistoryDay {
    pub date: String,
    pub units: f64,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ForecastDay {
    pub date: String,
    pub p50: f64,
    pub lo80: f64,
    pub hi80: f64,
    pub lo95: f64,
    pub hi95: f64,
}

/// The stored forecast of `sku` beside its last `history_days` days of demand.
pub async fn forecast_of(
    store: &Store,
    tenant: &str,
    sku: &str,
    history_days: usize,
) -> Result<SkuForecast, ServiceError> {
    let rows = store.forecast_of(tenant, sku).await?;
    let Some(first) = rows.first() else {
        return Err(ServiceError::NotFound(format!("a forecast for SKU {sku}")));
    };
    let (model_name, model_version) = (first.model_name.clone(), first.model_version);
    let mut history = Vec::new();
    if let Some(panel) = demand_panel(store, tenant).await? {
        if let Some(s) = panel.series().iter().find(|s| s.sku == sku) {
            let from = panel.len().saturating_sub(history_days);
            history = (from..panel.len())
                .map(|i| HistoryDay {
                    date: panel.day(i).to_string(),
                    units: s.units[i],
                })
                .collect();
        }
    }
    let drift = store
        .model_version(tenant, &model_name, model_version)
        .await?
        .and_then(|m| m.drift);
    let forecast = rows
        .into_iter()
        .map(|r| ForecastDay {
            date: r.day,
            p50: r.p50,
            lo80: r.lo80,
            hi80: r.hi80,
            lo95: r.lo95,
            hi95: r.hi95,
        })
        .collect();
    Ok(SkuForecast {
        sku: sku.to_string(),
        model_name,
        model_version,
        drift,
        history,
        forecast,
    })
}

/// Every model version, newest first.
pub async fn list_models(store: &Store, tenant: &str) -> Result<Vec<ModelRecord>, ServiceError> {
    Ok(store.models(tenant, None).await?)
}

/// Terms replenishment is computed under.
#[derive(Debug, Clone, Copy)]
pub struct ReplenishmentTerms {
    pub lead_time_days: usize,
    pub review_days: usize,
    pub service: ordo_intel::replenishment::ServiceLevel,
}

/// One SKU at one location: where it stands and what to order.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ReplenishmentLine {
    pub sku: String,
    pub location_id: String,
    pub available: i64,
    /// Expected demand at this location over the lead time (p50).
    pub lead_time_demand: f64,
    pub safety_stock: f64,
    pub reorder_point: f64,
    pub suggested_order_qty: u64,
    pub days_of_cover: usize,
    /// Probability that lead-time demand exceeds what is available.
    pub stockout_risk: f64,
    pub model_version: i64,
}

/// Reorder suggestions for every SKU × location with stock and a stored forecast, riskiest first.
/// A SKU's forecast is network demand; each location carrying it gets an equal share (Ordo has
/// no per-location demand history yet), its spread scaled the same way.
pub async fn replenishment(
    store: &Store,
    tenant: &str,
    terms: ReplenishmentTerms,
) -> Result<Vec<ReplenishmentLine>, ServiceError> {
    use std::collections::BTreeMap;
    let mut forecasts: BTreeMap<String, Vec<ForecastRow>> = BTreeMap::new();
    for row in store.all_forecasts(tenant).await? {
        forecasts.entry(row.sku.clone()).or_default().push(row);
    }
    let positions = store.stock_positions(tenant).await?;
    let mut carriers: BTreeMap<&str, usize> = BTreeMap::new();
    for (sku, ..) in &positions {
        *carriers.entry(sku.as_str()).or_default() += 1;
    }
    let mut lines = Vec::new();
    for (sku, location, on_hand, reserved) in &positions {
        let Some(days) = forecasts.get(sku) else {
            continue;
        };
        let share = 1.0 / carriers[sku.as_str()] as f64;
        let mean: Vec<f64> = days.iter().map(|d| d.mean * share).collect();
        let sd: Vec<f64> = days.iter().map(|d| d.sd * share).collect();
        let available = on_hand - reserved;
        let position = ordo_intel::replenishment::StockPosition {
            available: available as f64,
            on_order: 0.0,
            lead_time_days: terms.lead_time_days,
            review_days: terms.review_days,
        };
        let r = ordo_intel::replenishment::replenish(&mean, &sd, &position, terms.service)
            .map_err(|e| ServiceError::field("lead_time_days", "out_of_range", e.to_string()))?;
        lines.push(ReplenishmentLine {
            sku: sku.clone(),
            location_id: location.clone(),
            available,
            lead_time_demand: r.lead_time_demand,
            safety_stock: r.safety_stock,
            reorder_point: r.reorder_point,
            suggested_order_qty: r.suggested_order_qty,
            days_of_cover: r.days_of_cover,
            stockout_risk: r.stockout_risk,
            model_version: days[0].model_version,
        });
    }
    lines.sort_by(|a, b| {
        b.stockout_risk
            .total_cmp(&a.stockout_risk)
            .then(a.days_of_cover.cmp(&b.days_of_cover))
            .then(a.sku.cmp(&b.sku))
    });
    Ok(lines)
}
