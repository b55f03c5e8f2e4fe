//! The HTTP edge: request ids in and out, a panicking handler answered as a 500 problem while
//! the server lives on, and a request past its deadline answered 503 with Retry-After.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

fn request_id(r: &reqwest::Response) -> String {
    r.headers()
        .get("x-request-id")
        .expect("x-request-id on every response")
        .to_str()
        .unwrap()
        .to_string()
}

async fn problem(r: reqwest::Response, status: StatusCode) -> (String, Value) {
    assert_eq!(r.status(), status);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let id = request_id(&r);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], status.as_u16(), "{v}");
    (id, v)
}

#[tokio::test]
async fn a_panicking_handler_is_a_problem_and_the_server_lives_on() {
    let app = TestApp::spawn_with(|c| c.test_routes = true).await;
    let (id, v) = problem(
        app.get("/v1/_test/panic").await,
        StatusCode::INTERNAL_SERVER_ERROR,
    )
    .await;
    assert_eq!(v["type"], "https://ordo.dev/problems/internal");
    assert_eq!(v["request_id"], id.as_str());
    assert!(
        !v.to_string().contains("deliberate"),
        "the panic message is logged, never sent: {v}"
    );
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    // Without the flag the route does not exist.
    let plain = TestApp::spawn().await;
    problem(plain.get("/v1/_test/panic").await, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "req-1234_abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(request_id(&r), "req-1234_abc");
    // Generated when missing, and replaced when unsafe to log.
    let generated = request_id(&app.get("/healthz").await);
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "two words\"")
        .send()
        .await
        .unwrap();
    assert!(uuid::Uuid::parse_str(&request_id(&r)).is_ok());
    // Problems carry it in the body too: an unknown route, a validation error.
    let (id, v) = problem(app.get("/v1/nothing-here").await, StatusCode::NOT_FOUND).await;
    assert!(uuid::Uuid::parse_str(&id).is_ok());
    assert_eq!(v["request_id"], id.as_str());
    let r = app
        .client
        .post(app.url("/v1/carts"))
        .header("x-request-id", "client-7")
        .json(&serde_json::json!({"lines": 1}))
        .send()
        .await
        .unwrap();
    let (id, v) = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        (id.as_str(), v["request_id"].as_str()),
        ("client-7", Some("client-7"))
    );
}

#[tokio::test]
async fn a_request_past_its_deadline_is_a_503_problem_with_retry_after() {
    let app = TestApp::spawn_with(|c| {
        c.test_routes = true;
        c.request_timeout = Duration::from_millis(200);
    })
    .await;
    let r = app.get("/v1/_test/sleep/5000").await;
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let (id, v) = problem(r, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(v["type"], "https://ordo.dev/problems/request-timeout");
    assert_eq!(v["request_id"], id.as_str());
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().is_ok()));
    assert_eq!(
        app.get("/v1/_test/sleep/1").await.status(),
        StatusCode::NO_CONTENT
    );
}

#[test]
fn the_cli_documents_the_timeout_and_hides_the_test_routes() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ordo"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("--request-timeout") && help.contains("ORDO_REQUEST_TIMEOUT"),
        "{help}"
    );
    assert!(
        !help.contains("test-routes") && !help.contains("ORDO_TEST_ROUTES"),
        "{help}"
    );
}

#[test]
fn the_binary_mounts_test_routes_only_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = ordo_store::StorageConfig::Sqlite {
        data_dir: tmp.path().to_path_buf(),
    };
    let (_proc, base) = spawn_ordo_with(
        &storage,
        false,
        &["--test-routes", "--request-timeout", "5s"],
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = client();
        let r = c
            .get(format!("{base}/v1/_test/panic"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            c.get(format!("{base}/healthz"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
    });
}

/// `/docs` is a browsable reference of `/openapi.json` served from the binary: every file it
/// loads comes from this server (no CDN), and it reads this server's document.
#[tokio::test]
async fn the_api_reference_is_served_offline_from_the_binary() {
    let app = TestApp::spawn().await;
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = plain.get(app.url("/docs")).send().await.unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    assert_eq!(r.headers()["location"], "/docs/");
    let page = plain.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing is loaded from elsewhere: {html}"
    );
    let mut assets = 0;
    for src in html
        .split(['"', '\''])
        .filter(|s| s.ends_with(".js") || s.ends_with(".css"))
    {
        let r = plain
            .get(app.url(&format!("/docs/{}", src.trim_start_matches("./"))))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{src}");
        assert!(r.bytes().await.unwrap().len() > 100, "{src} has content");
        assets += 1;
    }
    assert!(
        assets >= 3,
        "the page loads its scripts and styles ({assets})"
    );
    let init = plain
        .get(app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("\"/openapi.json\""), "{init}");
    assert_eq!(
        plain
            .get(app.url("/docs/nothing-here.js"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
}
