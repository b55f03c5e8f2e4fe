//! Forecasting through storage and HTTP on both backends: `ordo forecast run`'s service stores
//! forecasts naming the model version, the registry's rollback decides which version forecasts
//! next, and `GET /v1/forecasts/{sku}` answers history, forecast and intervals.

use crate::helpers::*;
use ordo_intel::Method;
use ordo_intel::registry::ModelStatus;
use ordo_server::services::forecasts::{DEMAND_MODEL, RunOptions, run_forecast};
use reqwest::StatusCode;
use serde_json::Value;

/// 12 SKUs × 140 days from 2011-01-03 with a weekly pattern (Saturdays closed).
fn history() -> Vec<(String, String, f64)> {
    history_days(0..140)
}

/// Days `days` (counted from 2011-01-03, a Monday) of the same 12 SKUs.
fn history_days(days: std::ops::Range<usize>) -> Vec<(String, String, f64)> {
    let start = ordo_intel::Day::parse("2011-01-03").unwrap();
    let profile = [5.0, 7.0, 6.0, 6.0, 9.0, 0.0, 3.0];
    let mut rows = Vec::new();
    for d in days {
        for k in 0..12 {
            let units = profile[d % 7] * (k + 1) as f64 + ((d * 7 + k * 3) % 4) as f64;
            if units > 0.0 && d % 7 != 5 {
                rows.push((format!("SKU-{k}"), start.plus(d as i32).to_string(), units));
            }
        }
    }
    rows
}

fn options(method: Method, retrain: bool, activate: bool) -> RunOptions {
    RunOptions {
        retrain,
        activate,
        method,
        horizon: 14,
    }
}

#[tokio::test]
async fn a_rolled_back_model_is_the_one_used_next() {
    let app = TestApp::spawn().await;
    let t = app.tenant.clone();
    assert_eq!(
        app.store
            .import_sales_history(&t, "test", history())
            .await
            .unwrap(),
        12 * 120
    );

    // No active model yet: the first run trains version 1 and makes it active.
    let first = run_forecast(
        &app.store,
        &t,
        options(Method::WeekdayMedian, false, false),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!((first.trained_version, first.used_version), (Some(1), 1));
    assert_eq!(
        (first.skus, first.days, first.rows_stored),
        (12, 14, 12 * 14)
    );

    // A retrained, activated version 2 forecasts next.
    let second = run_forecast(&app.store, &t, options(Method::Gbdt, true, true), |_| {})
        .await
        .unwrap();
    assert_eq!((second.trained_version, second.used_version), (Some(2), 2));
    let body: Value = app.get("/v1/forecasts/SKU-3").await.json().await.unwrap();
    assert_eq!(body["model_version"], 2);

    // Roll back: version 1 is active again, and it is the one the next run uses.
    app.store.rollback_model(&t, DEMAND_MODEL).await.unwrap();
    let third = run_forecast(&app.store, &t, options(Method::Gbdt, false, false), |_| {})
        .await
        .unwrap();
    assert_eq!((third.trained_version, third.used_version), (None, 1));
    let models = app.store.models(&t, Some(DEMAND_MODEL)).await.unwrap();
    let status: Vec<(i64, ModelStatus)> = models.iter().map(|m| (m.version, m.status)).collect();
    assert_eq!(
        status,
        vec![(2, ModelStatus::Retired), (1, ModelStatus::Active)]
    );
    assert_eq!(models[1].method, "weekday-median");

    let res = app.get("/v1/forecasts/SKU-3").await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["model_version"], 1);
    assert_eq!(body["model_name"], DEMAND_MODEL);
    let forecast = body["forecast"].as_array().unwrap();
    assert_eq!(forecast.len(), 14);
    assert_eq!(forecast[0]["date"], "2011-05-23");
    for day in forecast {
        let v = |k: &str| day[k].as_f64().unwrap();
        assert!(
            0.0 <= v("lo95")
                && v("lo95") <= v("lo80")
                && v("lo80") <= v("p50")
                && v("p50") <= v("hi80")
                && v("hi80") <= v("hi95"),
            "{day}"
        );
    }
    assert_eq!(body["history"].as_array().unwrap().len(), 56);
    assert_eq!(body["history"][55]["date"], "2011-05-22");

    // Rolling back past the first version is refused and changes nothing.
    assert!(app.store.rollback_model(&t, DEMAND_MODEL).await.is_err());
    assert_eq!(
        app.store
            .active_model(&t, DEMAND_MODEL)
            .await
            .unwrap()
            .unwrap()
            .0
            .version,
        1
    );
}

#[tokio::test]
async fn a_sku_without_a_forecast_is_a_404_problem() {
    let app = TestApp::spawn().await;
    let res = app.get("/v1/forecasts/NOPE-1").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn replenishment_lists_the_riskiest_sku_location_first() {
    let app = TestApp::spawn().await;
    let t = app.tenant.clone();
    app.store
        .import_sales_history(&t, "test", history())
        .await
        .unwrap();
    run_forecast(
        &app.store,
        &t,
        options(Method::WeekdayMedian, false, false),
        |_| {},
    )
    .await
    .unwrap();
    // SKU-11 sells ~80 a day and has 5 units; SKU-0 sells ~7 a day and has 10,000.
    app.product("SKU-11", 1000, 5).await;
    app.product("SKU-0", 1000, 10_000).await;

    let res = app
        .get("/v1/replenishment?lead_time_days=7&service_level=0.95")
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let lines: Vec<Value> = res.json().await.unwrap();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["sku"], "SKU-11");
    assert!(lines[0]["stockout_risk"].as_f64().unwrap() > 0.99);
    assert!(lines[0]["suggested_order_qty"].as_u64().unwrap() > 300);
    assert!(
        lines[0]["reorder_point"].as_f64().unwrap()
            > lines[0]["lead_time_demand"].as_f64().unwrap()
    );
    assert_eq!(lines[0]["days_of_cover"], 0);
    assert_eq!(lines[1]["sku"], "SKU-0");
    assert_eq!(lines[1]["suggested_order_qty"], 0);
    assert!(lines[1]["stockout_risk"].as_f64().unwrap() < 0.01);
    assert_eq!(lines[1]["model_version"], 1);

    let res = app
        .get("/v1/replenishment?lead_time_days=0&service_level=2")
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let paths = problem_paths(&res.json().await.unwrap());
    assert!(
        paths.contains(&"lead_time_days".to_string())
            && paths.contains(&"service_level".to_string()),
        "{paths:?}"
    );
}

#[tokio::test]
async fn a_demand_shift_flags_drift_and_emits_an_event() {
    let app = TestApp::spawn().await;
    let t = app.tenant.clone();
    app.store
        .import_sales_history(&t, "test", history())
        .await
        .unwrap();
    let first = run_forecast(
        &app.store,
        &t,
        options(Method::WeekdayMedian, false, false),
        |_| {},
    )
    .await
    .unwrap();
    assert!(
        first.drift.is_none(),
        "a freshly trained model is not checked"
    );

    // The same demand continues: no drift.
    app.store
        .import_sales_history(&t, "test", history_days(140..154))
        .await
        .unwrap();
    let calm = run_forecast(
        &app.store,
        &t,
        options(Method::WeekdayMedian, false, false),
        |_| {},
    )
    .await
    .unwrap();
    assert!(!calm.drift.as_ref().unwrap().drifted, "{:?}", calm.drift);
    assert_eq!(
        app.store
            .outbox_count(&t, "ordo.model.drift_detected")
            .await
            .unwrap(),
        0
    );

    // Demand jumps tenfold for the next four weeks: error and inputs both move.
    let later = ordo_intel::Day::parse("2011-06-06").unwrap();
    let jump: Vec<(String, String, f64)> = (0..28)
        .flat_map(|d| {
            (0..12).map(move |k| {
                (
                    format!("SKU-{k}"),
                    later.plus(d).to_string(),
                    80.0 * (k + 1) as f64,
                )
            })
        })
        .collect();
    app.store
        .import_sales_history(&t, "test", jump)
        .await
        .unwrap();
    let shifted = run_forecast(
        &app.store,
        &t,
        options(Method::WeekdayMedian, false, false),
        |_| {},
    )
    .await
    .unwrap();
    let report = shifted.drift.unwrap();
    assert!(
        report.drifted && report.psi > 0.25 && report.error_ratio > 1.5,
        "{report:?}"
    );
    assert_eq!(
        app.store
            .outbox_count(&t, "ordo.model.drift_detected")
            .await
            .unwrap(),
        1
    );
    let body: Value = app.get("/v1/forecasts/SKU-1").await.json().await.unwrap();
    assert_eq!(body["drift"]["drifted"], true, "{body}");
}
