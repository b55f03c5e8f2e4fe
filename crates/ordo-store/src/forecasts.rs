//! Forecasting rows: the model registry (versions, status, artifacts), stored daily forecasts
//! that each name the model version that made them, and imported sales history. The registry's
//! rules come from `ordo_intel::registry` and are applied in one transaction; nothing here decides.

use crate::sql::{Row, Sql, Val};
use crate::{Result, Store, StoreError, corrupt, now_ms};
use ordo_intel::registry::{ModelStatus, RegistryError, StatusChange, VersionState};

/// A model version as stored (without its artifact, which can be large).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelRecord {
    pub name: String,
    pub version: i64,
    pub method: String,
    pub trained_at_ms: i64,
    pub window_start: String,
    pub window_end: String,
    /// JSON of the backtest or holdout metrics.
    pub metrics: serde_json::Value,
    pub status: ModelStatus,
    pub activated_at_ms: Option<i64>,
    /// The latest drift check's report when it found drift (JSON), else `None`.
    pub drift: Option<serde_json::Value>,
}

/// A model to register.
#[derive(Debug, Clone)]
pub struct NewModel {
    pub name: String,
    pub method: String,
    pub window_start: String,
    pub window_end: String,
    pub metrics: serde_json::Value,
    /// The serialized trained model (JSON).
    pub artifact: String,
    /// Make it the active version at once (retiring the current one).
    pub activate: bool,
}

/// One stored forecast day.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ForecastRow {
    pub sku: String,
    pub day: String,
    pub p50: f64,
    pub lo80: f64,
    pub hi80: f64,
    pub lo95: f64,
    pub hi95: f64,
    /// Expected demand and its standard deviation (what replenishment sums over a lead time).
    pub mean: f64,
    pub sd: f64,
    pub model_name: String,
    pub model_version: i64,
}

/// Why a registry change failed.
#[derive(Debug, thiserror::Error)]
pub enum ModelChangeError {
    #[error(transparent)]
    Refused(#[from] RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Rows per multi-row INSERT (13 parameters each stays far below both backends' limits).
const ROWS_PER_INSERT: usize = 500;

/// `($1, …, $k), ($k+1, …)` for `rows` rows of `width` parameters.
fn value_lists(rows: usize, width: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", crate::placeholders(r * width + 1, width)))
        .collect::<Vec<_>>()
        .join(", ")
}

const MODEL_COLUMNS: &str = "name, version, method, trained_at_ms, window_start, window_end, metrics, status, activated_at_ms, drift";

fn model_record(r: &[Val]) -> Result<ModelRecord> {
    let status = r[7].text()?;
    Ok(ModelRecord {
        name: r[0].text()?,
        version: r[1].int()?,
        method: r[2].text()?,
        trained_at_ms: r[3].int()?,
        window_start: r[4].text()?,
        window_end: r[5].text()?,
        metrics: serde_json::from_str(&r[6].text()?)
            .map_err(|e| corrupt(format!("model metrics: {e}")))?,
        status: ModelStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("model status {status}")))?,
        activated_at_ms: r[8].opt_int()?,
        drift: r[9]
            .opt_text()?
            .map(|t| serde_json::from_str(&t))
            .transpose()
            .map_err(|e| corrupt(format!("model drift: {e}")))?,
    })
}

async fn version_states(tx: &mut impl Sql, tenant: &str, name: &str) -> Result<Vec<VersionState>> {
    let rows = tx
        .rows("SELECT version, status, activated_at_ms FROM forecast_models WHERE tenant_id = $1 AND name = $2 ORDER BY version", vec![tenant.into(), name.into()])
        .await?;
    rows.iter()
        .map(|r| {
            let status = r[1].text()?;
            Ok(VersionState {
                version: r[0].int()?,
                status: ModelStatus::parse(&status)
                    .ok_or_else(|| corrupt(format!("model status {status}")))?,
                activated_at_ms: r[2].opt_int()?,
            })
        })
        .collect()
}

async fn apply_changes(
    tx: &mut impl Sql,
    tenant: &str,
    name: &str,
    changes: &[StatusChange],
) -> Result<()> {
    // Retire first, so the one-active index never sees two active versions.
    let mut ordered: Vec<&StatusChange> = changes.iter().collect();
    ordered.sort_by_key(|c| c.status == ModelStatus::Active);
    for c in ordered {
        tx.exec(
            "UPDATE forecast_models SET status = $1, activated_at_ms = $2 WHERE tenant_id = $3 AND name = $4 AND version = $5",
            vec![c.status.as_str().into(), c.activated_at_ms.into(), tenant.into(), name.into(), c.version.into()],
        )
        .await?;
    }
    Ok(())
}

impl Store {
    /// Registers a trained model as the next version of its name; returns the version.
    pub async fn register_model(&self, tenant: &str, m: NewModel) -> Result<i64> {
        let tenant = tenant.to_string();
        let (version, _) = self
            .unit(&tenant.clone(), move |tx| {
                let (tenant, m) = (tenant.clone(), m.clone());
                Box::pin(async move {
                    let rows = tx
                        .rows("SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) FROM forecast_models WHERE tenant_id = $1 AND name = $2", vec![tenant.as_str().into(), m.name.as_str().into()])
                        .await?;
                    let version = rows.first().map(|r| r[0].int()).transpose()?.unwrap_or(0) + 1;
                    let metrics = serde_json::to_string(&m.metrics).map_err(|e| corrupt(e.to_string()))?;
                    tx.exec(
                        "INSERT INTO forecast_models (tenant_id, name, version, method, trained_at_ms, window_start, window_end, metrics, artifact, status, activated_at_ms) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'candidate', NULL)",
                        vec![
                            tenant.as_str().into(),
                            m.name.as_str().into(),
                            version.into(),
                            m.method.as_str().into(),
                            now_ms().into(),
                            m.window_start.as_str().into(),
                            m.window_end.as_str().into(),
                            metrics.into(),
                            m.artifact.as_str().into(),
                        ],
                    )
                    .await?;
                    if m.activate {
                        let states = version_states(tx, &tenant, &m.name).await?;
                        let changes = ordo_intel::registry::activate(&m.name, &states, version, now_ms()).map_err(|e| corrupt(e.to_string()))?;
                        apply_changes(tx, &tenant, &m.name, &changes).await?;
                    }
                    Ok((version, true))
                })
            })
            .await?;
        Ok(version)
    }

    /// Every version of every model (or of one name), newest first.
    pub async fn models(&self, tenant: &str, name: Option<&str>) -> Result<Vec<ModelRecord>> {
        let rows = match name {
            Some(n) => {
                self.read_rows(tenant,
                    &format!("SELECT {MODEL_COLUMNS} FROM forecast_models WHERE tenant_id = $1 AND name = $2 ORDER BY name, version DESC"),
                    vec![tenant.into(), n.into()],
                )
                .await?
            }
            None => self.read_rows(tenant, &format!("SELECT {MODEL_COLUMNS} FROM forecast_models WHERE tenant_id = $1 ORDER BY name, version DESC"), vec![tenant.into()]).await?,
        };
        rows.iter().map(|r| model_record(r)).collect()
    }

    /// The active version of a model and its artifact.
    pub async fn active_model(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Option<(ModelRecord, String)>> {
        let rows = self
            .read_rows(tenant,
                &format!("SELECT {MODEL_COLUMNS}, artifact FROM forecast_models WHERE tenant_id = $1 AND name = $2 AND status = 'active'"),
                vec![tenant.into(), name.into()],
            )
            .await?;
        rows.first()
            .map(|r| Ok((model_record(r)?, r[10].text()?)))
            .transpose()
    }

    /// One version of a model (without its artifact).
    pub async fn model_version(
        &self,
        tenant: &str,
        name: &str,
        version: i64,
    ) -> Result<Option<ModelRecord>> {
        let rows = self
            .read_rows(tenant,
                &format!("SELECT {MODEL_COLUMNS} FROM forecast_models WHERE tenant_id = $1 AND name = $2 AND version = $3"),
                vec![tenant.into(), name.into(), version.into()],
            )
            .await?;
        rows.first().map(|r| model_record(r)).transpose()
    }

    /// Records a drift check on a model version: the report when drifted (with a
    /// `ordo.model.drift_detected` outbox event in the same transaction), or clears the flag.
    pub async fn record_model_drift(
        &self,
        tenant: &str,
        name: &str,
        version: i64,
        drifted: Option<serde_json::Value>,
    ) -> Result<()> {
        let (tenant, name) = (tenant.to_string(), name.to_string());
        self.unit(&tenant.clone(), move |tx| {
            let (tenant, name, drifted) = (tenant.clone(), name.clone(), drifted.clone());
            Box::pin(async move {
                let text = drifted.as_ref().map(|d| d.to_string());
                tx.exec(
                    "UPDATE forecast_models SET drift = $1 WHERE tenant_id = $2 AND name = $3 AND version = $4",
                    vec![text.as_deref().into(), tenant.as_str().into(), name.as_str().into(), version.into()],
                )
                .await?;
                if let Some(report) = drifted {
                    let payload = serde_json::json!({ "model": name, "version": version, "report": report });
                    let subject = format!("{name}:{version}");
                    crate::events::append(tx, &tenant, ordo_domain::events::EventType::MODEL_DRIFT_DETECTED, &subject, &payload).await?;
                }
                Ok(((), true))
            })
        })
        .await?;
        Ok(())
    }

    /// Makes `version` the active one (the active one is retired).
    pub async fn activate_model(
        &self,
        tenant: &str,
        name: &str,
        version: i64,
    ) -> Result<(), ModelChangeError> {
        self.change_models(tenant, name, move |name, states| {
            ordo_intel::registry::activate(name, states, version, now_ms())
        })
        .await
    }

    /// Retires the active version and re-activates the one active before it.
    pub async fn rollback_model(&self, tenant: &str, name: &str) -> Result<(), ModelChangeError> {
        self.change_models(tenant, name, |name, states| {
            ordo_intel::registry::rollback(name, states, now_ms())
        })
        .await
    }

    async fn change_models<F>(
        &self,
        tenant: &str,
        name: &str,
        decide: F,
    ) -> Result<(), ModelChangeError>
    where
        F: Fn(&str, &[VersionState]) -> std::result::Result<Vec<StatusChange>, RegistryError>
            + Send
            + Sync
            + 'static,
    {
        let (tenant, name) = (tenant.to_string(), name.to_string());
        let decide = std::sync::Arc::new(decide);
        let (outcome, _) = self
            .unit(&tenant.clone(), move |tx| {
                let (tenant, name, decide) = (tenant.clone(), name.clone(), decide.clone());
                Box::pin(async move {
                    let states = version_states(tx, &tenant, &name).await?;
                    match decide.as_ref()(&name, &states) {
                        Ok(changes) => {
                            apply_changes(tx, &tenant, &name, &changes).await?;
                            Ok((Ok(()), true))
                        }
                        Err(refused) => Ok((Err(refused), false)),
                    }
                })
            })
            .await?;
        outcome.map_err(ModelChangeError::Refused)
    }

    /// Replaces the stored forecasts of these SKUs with `rows` (one transaction).
    pub async fn store_forecasts(&self, tenant: &str, rows: Vec<ForecastRow>) -> Result<usize> {
        let tenant = tenant.to_string();
        let rows = std::sync::Arc::new(rows);
        let (n, _) = self
            .unit(&tenant.clone(), move |tx| {
                let (tenant, rows) = (tenant.clone(), rows.clone());
                Box::pin(async move {
                    let mut skus: Vec<&str> = rows.iter().map(|r| r.sku.as_str()).collect();
                    skus.dedup();
                    for sku in skus {
                        tx.exec("DELETE FROM demand_forecasts WHERE tenant_id = $1 AND sku = $2", vec![tenant.as_str().into(), sku.into()]).await?;
                    }
                    let now = now_ms();
                    for chunk in rows.chunks(ROWS_PER_INSERT) {
                        let mut args: Vec<Val> = Vec::with_capacity(chunk.len() * 13);
                        for r in chunk {
                            args.extend([
                                tenant.as_str().into(),
                                r.sku.as_str().into(),
                                r.day.as_str().into(),
                                r.p50.into(),
                                r.lo80.into(),
                                r.hi80.into(),
                                r.lo95.into(),
                                r.hi95.into(),
                                r.mean.into(),
                                r.sd.into(),
                                r.model_name.as_str().into(),
                                r.model_version.into(),
                                now.into(),
                            ]);
                        }
                        let sql = format!(
                            "INSERT INTO demand_forecasts (tenant_id, sku, day, p50, lo80, hi80, lo95, hi95, mean, sd, model_name, model_version, created_at_ms) VALUES {}",
                            value_lists(chunk.len(), 13)
                        );
                        tx.exec(&sql, args).await?;
                    }
                    Ok((rows.len(), true))
                })
            })
            .await?;
        Ok(n)
    }

    /// The stored forecast of one SKU, by day.
    pub async fn forecast_of(&self, tenant: &str, sku: &str) -> Result<Vec<ForecastRow>> {
        let rows = self
            .read_rows(tenant,
                &format!("SELECT {FORECAST_COLUMNS} FROM demand_forecasts WHERE tenant_id = $1 AND sku = $2 ORDER BY day"),
                vec![tenant.into(), sku.into()],
            )
            .await?;
        rows.iter().map(forecast_row).collect()
    }

    /// Adds imported daily sales (sku, `YYYY-MM-DD`, units) under a source name; a repeated
    /// import of the same source replaces its days. Returns the rows written.
    pub async fn import_sales_history(
        &self,
        tenant: &str,
        source: &str,
        rows: Vec<(String, String, f64)>,
    ) -> Result<usize> {
        // One row per SKU-day (a multi-row upsert must not touch a row twice).
        let mut merged: std::collections::BTreeMap<(String, String), f64> =
            std::collections::BTreeMap::new();
        for (sku, day, units) in rows {
            *merged.entry((sku, day)).or_default() += units;
        }
        let rows: Vec<(String, String, f64)> =
            merged.into_iter().map(|((s, d), u)| (s, d, u)).collect();
        let (tenant, source) = (tenant.to_string(), source.to_string());
        let rows = std::sync::Arc::new(rows);
        let (n, _) = self
            .unit(&tenant.clone(), move |tx| {
                let (tenant, source, rows) = (tenant.clone(), source.clone(), rows.clone());
                Box::pin(async move {
                    for chunk in rows.chunks(ROWS_PER_INSERT) {
                        let mut args: Vec<Val> = Vec::with_capacity(chunk.len() * 5);
                        for (sku, day, units) in chunk {
                            args.extend([tenant.as_str().into(), sku.as_str().into(), day.as_str().into(), (*units).into(), source.as_str().into()]);
                        }
                        let sql = format!(
                            "INSERT INTO sales_history (tenant_id, sku, day, units, source) VALUES {} \
                             ON CONFLICT (tenant_id, source, sku, day) DO UPDATE SET units = excluded.units",
                            value_lists(chunk.len(), 5)
                        );
                        tx.exec(&sql, args).await?;
                    }
                    Ok((rows.len(), true))
                })
            })
            .await?;
        Ok(n)
    }

    /// Daily units per SKU: imported history plus lines of orders placed (not cancelled), by the
    /// UTC day the order was placed. Rows (sku, unix-ms day start or `YYYY-MM-DD`, units).
    pub async fn demand_history(
        &self,
        tenant: &str,
    ) -> Result<(Vec<(String, String, f64)>, Vec<(String, i64, f64)>)> {
        let imported = self
            .read_rows(tenant, "SELECT sku, day, CAST(SUM(units) AS DOUBLE PRECISION) FROM sales_history WHERE tenant_id = $1 GROUP BY sku, day", vec![tenant.into()])
            .await?
            .iter()
            .map(|r| Ok((r[0].text()?, r[1].text()?, r[2].real()?)))
            .collect::<Result<Vec<_>>>()?;
        let placed = self
            .read_rows(tenant,
                "SELECT l.sku, o.created_at_ms, l.quantity FROM order_lines l JOIN orders o ON o.tenant_id = l.tenant_id AND o.id = l.order_id \
                 WHERE l.tenant_id = $1 AND o.status <> 'cancelled'",
                vec![tenant.into()],
            )
            .await?
            .iter()
            .map(|r| Ok((r[0].text()?, r[1].int()?, r[2].int()? as f64)))
            .collect::<Result<Vec<_>>>()?;
        Ok((imported, placed))
    }
}

impl Store {
    /// Every stored forecast day of the tenant, by SKU then day.
    pub async fn all_forecasts(&self, tenant: &str) -> Result<Vec<ForecastRow>> {
        let rows = self
            .read_rows(tenant,
                &format!("SELECT {FORECAST_COLUMNS} FROM demand_forecasts WHERE tenant_id = $1 ORDER BY sku, day"),
                vec![tenant.into()],
            )
            .await?;
        rows.iter().map(forecast_row).collect()
    }

    /// Every stock row of the tenant: (sku, location, on hand, reserved).
    pub async fn stock_positions(&self, tenant: &str) -> Result<Vec<(String, String, i64, i64)>> {
        let rows = self.read_rows(tenant, "SELECT sku, location_id, on_hand, reserved FROM stock WHERE tenant_id = $1 ORDER BY sku, location_id", vec![tenant.into()]).await?;
        rows.iter()
            .map(|r| Ok((r[0].text()?, r[1].text()?, r[2].int()?, r[3].int()?)))
            .collect()
    }
}

const FORECAST_COLUMNS: &str =
    "sku, day, p50, lo80, hi80, lo95, hi95, mean, sd, model_name, model_version";

/// Decodes a row of `FORECAST_COLUMNS`.
fn forecast_row(r: &Row) -> Result<ForecastRow> {
    Ok(ForecastRow {
        sku: r[0].text()?,
        day: r[1].text()?,
        p50: r[2].real()?,
        lo80: r[3].real()?,
        hi80: r[4].real()?,
        lo95: r[5].real()?,
        hi95: r[6].real()?,
        mean: r[7].real()?,
        sd: r[8].real()?,
        model_name: r[9].text()?,
        model_version: r[10].int()?,
    })
}
