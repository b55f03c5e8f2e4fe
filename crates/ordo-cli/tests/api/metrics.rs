//! `GET /metrics`: Prometheus text with per-route request counts and latency histograms keyed by
//! route template, and the tenant's authorization counts.

use crate::helpers::*;
use reqwest::StatusCode;

/// The value of the sample of `name` whose labels include every `label="value"` pair given.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let rest = series.strip_prefix(name)?.strip_prefix('{')?;
        labels
            .iter()
            .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
            .then(|| value.parse().ok())
            .flatten()
    })
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let app = TestApp::spawn().await;
    app.product("TEE-1", 1500, 3).await;
    for _ in 0..3 {
        assert_eq!(app.get("/v1/products/TEE-1").await.status(), StatusCode::OK);
    }
    assert_eq!(
        app.get("/v1/products/NOPE").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/definitely/not/a/route").await.status(),
        StatusCode::NOT_FOUND
    );
    app.token("4242424242424242").await;

    let r = app.get("/metrics").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/plain; version=0.0.4");
    let text = r.text().await.unwrap();
    let ok = sample(
        &text,
        "ordo_http_requests_total",
        &[
            ("method", "GET"),
            ("route", "/v1/products/{sku}"),
            ("status", "200"),
        ],
    );
    assert!(ok.is_some_and(|n| n >= 3.0), "{text}");
    let missing = sample(
        &text,
        "ordo_http_requests_total",
        &[
            ("method", "GET"),
            ("route", "/v1/products/{sku}"),
            ("status", "404"),
        ],
    );
    assert!(missing.is_some_and(|n| n >= 1.0), "{text}");
    let unmatched = sample(
        &text,
        "ordo_http_requests_total",
        &[("route", "unmatched"), ("status", "404")],
    );
    assert!(unmatched.is_some_and(|n| n >= 1.0), "{text}");
    assert!(
        !text.contains("/definitely/not/a/route") && !text.contains("TEE-1"),
        "raw paths never become labels"
    );
    let buckets = sample(
        &text,
        "ordo_http_request_duration_seconds_bucket",
        &[("route", "/v1/products/{sku}"), ("le", "0.0005")],
    );
    assert!(
        buckets.is_some(),
        "latency is a histogram with API-sized buckets: {text}"
    );
    assert!(
        sample(
            &text,
            "ordo_http_request_duration_seconds_count",
            &[("method", "GET"), ("route", "/v1/products/{sku}")]
        )
        .is_some_and(|n| n >= 4.0)
    );
    assert!(
        text.contains("# TYPE ordo_http_request_duration_seconds histogram"),
        "{text}"
    );
    // Computed at scrape time from storage: no authorization yet, every status exported at 0.
    assert_eq!(
        sample(
            &text,
            "ordo_payment_authorizations",
            &[("status", "pending")]
        ),
        Some(0.0),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_show_the_write_path() {
    let app = TestApp::spawn().await;
    app.product("A", 1000, 5).await;
    let total = quote(&app, "A", 1).await;
    let token = app.token("4242424242424242").await;
    let (s, v) = app.place("m-1", &inline_order("A", 1, &token, total)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(
        sample(&text, "ordo_placements_total", &[("outcome", "placed")]).is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(text.contains("# TYPE ordo_batch_size histogram"), "{text}");
    assert!(
        text.contains("# TYPE ordo_commit_seconds histogram"),
        "{text}"
    );
    assert!(text.contains("ordo_write_queue_depth"), "{text}");
    assert!(
        sample(
            &text,
            "ordo_payment_authorizations",
            &[("status", "attached")]
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
}
