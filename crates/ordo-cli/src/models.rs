//! `ordo models list | activate | rollback` and `ordo import uci`: the model registry and the
//! public sales history, from the command line against the same storage `ordo serve` uses.
//! Thin: parse flags, open the store, call one store or service function, print the answer.

use super::StorageArgs;
use clap::{Args, Subcommand};
use ordo_intel::{Columns, read_history};
use ordo_server::services::forecasts::DEMAND_MODEL;
use ordo_store::Store;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Every version of every model: status, training window, metrics.
    List(TenantArgs),
    /// Make a version active (the active one is retired).
    Activate(ActivateArgs),
    /// Retire the active version and re-activate the one active before it.
    Rollback(NameArgs),
}

#[derive(Args)]
pub struct TenantArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// Tenant whose models these are.
    #[arg(long, env = "ORDO_TENANT", default_value = "default")]
    tenant: String,
}

#[derive(Args)]
pub struct NameArgs {
    #[command(flatten)]
    tenant: TenantArgs,
    /// Model name.
    #[arg(long, default_value = DEMAND_MODEL)]
    name: String,
}

#[derive(Args)]
pub struct ActivateArgs {
    #[command(flatten)]
    model: NameArgs,
    /// The version to make active.
    #[arg(long)]
    version: i64,
}

#[derive(Subcommand)]
pub enum ImportCommand {
    /// Load the UCI Online Retail daily demand file (date,stock_code,units_sold) as sales history.
    Uci(UciArgs),
}

#[derive(Args)]
pub struct UciArgs {
    /// daily_sku_demand_top1000_to_2011-09-30.csv (or any CSV with those columns).
    file: PathBuf,
    #[command(flatten)]
    tenant: TenantArgs,
    /// Header names of the date, SKU and units columns.
    #[arg(long, default_value = "date,stock_code,units_sold")]
    columns: String,
}

async fn open(t: &TenantArgs) -> Result<Store, String> {
    if t.tenant.trim().is_empty() {
        return Err("--tenant must not be empty".into());
    }
    Store::open(&t.storage.config()?)
        .await
        .map_err(|e| e.to_string())
}

pub async fn run_models(command: ModelsCommand) -> Result<(), String> {
    match command {
        ModelsCommand::List(t) => {
            let store = open(&t).await?;
            let models = store
                .models(&t.tenant, None)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "{:<10} {:>7} {:<10} {:<15} {:<23} {:<24} metrics",
                "name", "version", "status", "method", "window", "trained_at"
            );
            for m in models {
                println!(
                    "{:<10} {:>7} {:<10} {:<15} {:<23} {:<24} {}",
                    m.name,
                    m.version,
                    m.status,
                    m.method,
                    format!("{}..{}", m.window_start, m.window_end),
                    ordo_server::services::rfc3339(m.trained_at_ms),
                    m.metrics
                );
            }
            store.close().await;
            Ok(())
        }
        ModelsCommand::Activate(a) => {
            let store = open(&a.model.tenant).await?;
            store
                .activate_model(&a.model.tenant.tenant, &a.model.name, a.version)
                .await
                .map_err(|e| e.to_string())?;
            println!("{} version {} is active", a.model.name, a.version);
            store.close().await;
            Ok(())
        }
        ModelsCommand::Rollback(n) => {
            let store = open(&n.tenant).await?;
            store
                .rollback_model(&n.tenant.tenant, &n.name)
                .await
                .map_err(|e| e.to_string())?;
            let active = store
                .active_model(&n.tenant.tenant, &n.name)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "{} rolled back; active version: {}",
                n.name,
                active.map_or("none".to_string(), |(m, _)| m.version.to_string())
            );
            store.close().await;
            Ok(())
        }
    }
}

pub async fn run_import(command: ImportCommand) -> Result<(), String> {
    match command {
        ImportCommand::Uci(args) => {
            let columns = Columns::parse(&args.columns).map_err(|e| e.to_string())?;
            let file = std::fs::File::open(&args.file)
                .map_err(|e| format!("{}: {e}", args.file.display()))?;
            let (panel, summary) = read_history(std::io::BufReader::new(file), &columns)
                .map_err(|e| format!("{}: {e}", args.file.display()))?;
            let mut rows = Vec::new();
            for s in panel.series() {
                for (i, u) in s.units.iter().enumerate() {
                    if *u > 0.0 {
                        rows.push((s.sku.clone(), panel.day(i).to_string(), *u));
                    }
                }
            }
            let store = open(&args.tenant).await?;
            let n = store
                .import_sales_history(&args.tenant.tenant, "uci", rows)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "imported {n} SKU-days ({} rows read, {} SKUs, {} to {}) as sales history of tenant {}",
                summary.rows,
                panel.series().len(),
                panel.start(),
                panel.end(),
                args.tenant.tenant
            );
            store.close().await;
            Ok(())
        }
    }
}
