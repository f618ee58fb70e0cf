//! The admin HTTP server as ops and support use it: health and readiness,
//! the metrics Prometheus scrapes (checked by promtool), and the API's
//! tokens and roles.

#[macro_use]
mod common;

use common::fixture::{self, id};
use common::*;
use std::time::Duration;

const SUPPORT: &str = "support-token-0123456789";
const OPS: &str = "ops-token-0123456789abcdef";

fn tokens(env: &TestEnv) {
    let path = env.dir.path().join("admin.tokens");
    std::fs::write(&path, format!("alice support {SUPPORT}\nbob ops {OPS}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

async fn health_readiness_metrics_and_roles_over_real_http(backend: Backend) {
    let env = TestEnv::new(backend).await;
    tokens(&env);
    let sim = simulator(Default::default()).await;
    let store = env.store().await;
    import(&store, &[env.write("fixture.jsonl", &fixture::lines())]).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = hoursync::daemon::start(env.config(&sim), clock(), shutdown.clone()).await.unwrap();
    let base = format!("http://{}", running.admin_addr);
    let http = reqwest::Client::new();
    wait_drained(&store, Duration::from_secs(60)).await;

    assert_eq!(http.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<serde_json::Value>().await.unwrap()["database"], "ok");

    // The gauges are refreshed at start and then periodically.
    hoursync::monitor::sweep(&store, &clock(), 24 * 3_600_000).await.unwrap();
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("hoursync_deliveries_total{registry=\"lifelong\",outcome=\"delivered\"}"), "{metrics}");
    assert!(metrics.contains("hoursync_backlog{registry=\"enved\",state=\"pending\"} 0"), "{metrics}");
    assert!(metrics.contains("hoursync_ineligible_records{registry=\"teacher\",reason=\"personnel_category_not_10\"} 1"), "{metrics}");
    assert!(!metrics.contains(&id(1)), "a national ID in the metrics");
    promtool_check_metrics(&metrics);

    // The API: no token, an unknown token, then support.
    let records = format!("{base}/api/v1/people/{}/records", id(1));
    assert_eq!(http.get(&records).send().await.unwrap().status(), 401);
    assert_eq!(http.get(&records).bearer_auth("nope-nope-nope-nope").send().await.unwrap().status(), 401);
    let answer = http.get(&records).bearer_auth(SUPPORT).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let body = answer.text().await.unwrap();
    assert!(!body.contains(&id(1)), "the answer must mask the ID");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(rows.len(), 12, "four completions × three registries");
    let bad = http.get(format!("{base}/api/v1/people/B123456788/records")).bearer_auth(SUPPORT).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let msg = bad.text().await.unwrap();
    assert!(msg.contains("check digit") && !msg.contains("B123456788"), "{msg}");

    shutdown.cancel();
    running.wait().await.unwrap();
}

fn promtool_check_metrics(text: &str) {
    let Ok(mut child) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "promtool is required under CI (apt-get install prometheus)");
        eprintln!("SKIPPED: promtool not installed");
        return;
    };
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics: {said}");
}

backend_tests!(health_readiness_metrics_and_roles_over_real_http);
