-- Forecasting: the model registry, stored forecasts (each naming its model version) and imported
-- sales history (e.g. the public UCI data) that demand series are built from beside placed orders.
CREATE TABLE forecast_models (
  tenant_id TEXT NOT NULL, name TEXT NOT NULL, version BIGINT NOT NULL, method TEXT NOT NULL,
  trained_at_ms BIGINT NOT NULL, window_start TEXT NOT NULL, window_end TEXT NOT NULL,
  metrics TEXT NOT NULL, artifact TEXT NOT NULL, status TEXT NOT NULL, activated_at_ms BIGINT, drift TEXT,
  PRIMARY KEY (tenant_id, name, version),
  CHECK (status IN ('candidate', 'active', 'retired')));
CREATE UNIQUE INDEX forecast_models_one_active ON forecast_models (tenant_id, name) WHERE status = 'active';

CREATE TABLE demand_forecasts (
  tenant_id TEXT NOT NULL, sku TEXT NOT NULL, day TEXT NOT NULL,
  p50 REAL NOT NULL, lo80 REAL NOT NULL, hi80 REAL NOT NULL, lo95 REAL NOT NULL, hi95 REAL NOT NULL,
  mean REAL NOT NULL, sd REAL NOT NULL,
  model_name TEXT NOT NULL, model_version BIGINT NOT NULL, created_at_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, sku, day));

CREATE TABLE sales_history (
  tenant_id TEXT NOT NULL, sku TEXT NOT NULL, day TEXT NOT NULL, units REAL NOT NULL, source TEXT NOT NULL,
  PRIMARY KEY (tenant_id, source, sku, day),
  CHECK (units >= 0));
