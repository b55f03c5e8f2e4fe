//! Ordo's intelligence layer: demand series, forecasting methods, backtests and intervals,
//! replenishment and drift math. Pure computation: no I/O beyond reading a CSV the caller opened,
//! no async, no SQL.

pub mod backtest;
pub mod calendar;
pub mod drift;
pub mod forecast;
pub mod gbdt;
pub mod history;
pub mod methods;
pub mod metrics;
pub mod registry;
pub mod replenishment;
pub mod series;
pub mod simulation;

pub use calendar::Day;
pub use forecast::{
    ForecastConfig, ForecastError, Forecaster, SeriesForecast, forecast_all, forecast_series,
    train_forecaster,
};
pub use history::{Columns, HistoryError, read_history};
pub use methods::Method;
pub use series::{DemandSeries, Panel};
