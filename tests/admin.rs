//! The admin HTTP server as ops and support use it: health and readiness,
//! the metrics Prometheus scrapes (checked by promtool), and the API's
//! tokens and roles.

#[macro_use]
mod common;

use common::console::{OPS, SUPPORT, fixture_with_rejections, tokens};
use common::fixture::{self, id};
use common::*;
use std::time::Duration;

async fn health_readiness_metrics_and_roles_over_real_http(backend: Backend) {
    let env = TestEnv::new(backend).await;
    tokens(&env);
    let sim = simulator(Default::default()).await;
    let store = env.store().await;
    import(&store, &[env.write("fixture.jsonl", &fixture::lines())]).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = hoursync::daemon::start(env.config(&sim), clock(), shutdown.clone())
        .await
        .unwrap();
    let base = format!("http://{}", running.admin_addr);
    let http = reqwest::Client::new();
    wait_drained(&store, Duration::from_secs(60)).await;

    assert_eq!(
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(ready["database"], "ok");
    assert_eq!(ready["work"], "ok");

    // A work loop that ended while the daemon runs (its task returned or
    // panicked) makes the daemon not ready, and /readyz names it.
    drop(running.state.progress.register("dispatch test", None));
    let stalled = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(stalled.status(), 503);
    let stalled: serde_json::Value = stalled.json().await.unwrap();
    assert_eq!(stalled["work"], "dispatch test: stopped", "{stalled}");
    assert_eq!(stalled["database"], "ok");

    // The gauges are refreshed at start and then periodically.
    hoursync::monitor::sweep(&store, &clock(), 24 * 3_600_000)
        .await
        .unwrap();
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("hoursync_deliveries_total{registry=\"lifelong\",outcome=\"delivered\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hoursync_backlog{registry=\"enved\",state=\"pending\"} 0"),
        "{metrics}"
    );
    assert!(metrics.contains("hoursync_ineligible_records{registry=\"teacher\",reason=\"personnel_category_not_10\"} 1"), "{metrics}");
    assert!(!metrics.contains(&id(1)), "a national ID in the metrics");
    promtool_check_metrics(&metrics);

    // The API: no token, an unknown token, then support.
    let records = format!("{base}/api/v1/people/{}/records", id(1));
    let refused = http.get(&records).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(
        refused.headers()["www-authenticate"],
        "Bearer realm=\"hoursync\"",
        "a 401 names the scheme to use (RFC 6750)"
    );
    // Problem details (RFC 9457), with the `error` clients already read.
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    let problem: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(
        problem,
        serde_json::json!({
            "type": "about:blank",
            "title": "Unauthorized",
            "status": 401,
            "detail": "a bearer token is required",
            "error": "a bearer token is required",
        })
    );
    assert_eq!(
        http.get(&records)
            .bearer_auth("nope-nope-nope-nope")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // The scheme's name is case-insensitive (RFC 7235).
    for scheme in ["bearer", "BEARER"] {
        let answer = http
            .get(&records)
            .header("authorization", format!("{scheme} {SUPPORT}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "scheme {scheme}");
    }
    let answer = http
        .get(&records)
        .bearer_auth(SUPPORT)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let body = answer.text().await.unwrap();
    assert!(!body.contains(&id(1)), "the answer must mask the ID");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(rows.len(), 12, "four completions × three registries");
    let bad = http
        .get(format!("{base}/api/v1/people/B123456788/records"))
        .bearer_auth(SUPPORT)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let msg = bad.text().await.unwrap();
    assert!(
        msg.contains("check digit") && !msg.contains("B123456788"),
        "{msg}"
    );

    shutdown.cancel();
    running.wait().await.unwrap();
}

/// A daemon whose scan runs only at start: later changes wait for a resync.
async fn start_without_scans(
    env: &TestEnv,
    sim: &hoursync::simulator::Simulator,
) -> (
    hoursync::daemon::Running,
    tokio_util::sync::CancellationToken,
    String,
) {
    let mut config = env.config(sim);
    config.schedule.scan = "0 0 0 1 1 *".into();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = hoursync::daemon::start(config, clock(), shutdown.clone())
        .await
        .unwrap();
    let base = format!("http://{}", running.admin_addr);
    (running, shutdown, base)
}

async fn wait_resync_done(http: &reqwest::Client, base: &str, id: i64) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    for _ in 0..300 {
        last = http
            .get(format!("{base}/api/v1/resyncs/{id}"))
            .bearer_auth(SUPPORT)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if last["status"] != "running" {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("resync {id} still running: {last}");
}

async fn a_resync_sends_a_converted_learners_hours_and_verify_resends_exactly_what_a_registry_lost(
    backend: Backend,
) {
    let env = TestEnv::new(backend).await;
    tokens(&env);
    let sim = simulator(Default::default()).await;
    let store = env.store().await;
    import(&store, &[env.write("fixture.jsonl", &fixture::lines())]).await;
    let (running, shutdown, base) = start_without_scans(&env, &sim).await;
    let http = reqwest::Client::new();
    wait_drained(&store, Duration::from_secs(60)).await;

    // Support fixed learner 3's account; no scan is due, a resync sends it now.
    import(
        &store,
        &[env.write(
            "conv.jsonl",
            &[fixture::account("a3", 3, "mygov", Some("civil_servant"))],
        )],
    )
    .await;
    let dry = http
        .post(format!("{base}/api/v1/resyncs"))
        .bearer_auth(SUPPORT)
        .json(&serde_json::json!({"national_id": id(3), "dry_run": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(dry.status(), 200);
    let dry: serde_json::Value = dry.json().await.unwrap();
    assert_eq!(
        (
            dry["id"].is_null(),
            dry["records"].as_i64(),
            dry["before"]["ineligible"].as_i64()
        ),
        (true, Some(3), Some(3)),
        "{dry}"
    );
    let answer = http
        .post(format!("{base}/api/v1/resyncs"))
        .bearer_auth(SUPPORT)
        .json(&serde_json::json!({"national_id": id(3)}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    let rid = answer.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    let done = wait_resync_done(&http, &base, rid).await;
    assert_eq!(done["status"], "done", "{done}");
    assert!(
        !done.to_string().contains(&id(3)),
        "the audit answer masks the ID: {done}"
    );
    wait_for(Duration::from_secs(60), "learner 3's hours", || async {
        sim.credited("lifelong")
            .iter()
            .any(|c| c.record["national_id"] == id(3).as_str())
            && sim
                .credited("teacher")
                .iter()
                .any(|c| c.record["national_id"] == id(3).as_str())
    })
    .await;

    // The lifelong registry loses learner 1's record of course ALL.
    wait_nothing_left_to_send(&store, Duration::from_secs(60)).await;
    let lost = sim
        .credited("lifelong")
        .into_iter()
        .find(|c| c.record["national_id"] == id(1).as_str() && c.record["course_code"] == "ALL")
        .unwrap();
    assert!(sim.forget("lifelong", &lost.idempotency_key));
    let accepted = |sim: &hoursync::simulator::Simulator| {
        sim.stats()
            .registries
            .values()
            .map(|s| s.records_accepted)
            .sum::<u64>()
    };
    let before = accepted(&sim);
    let answer = http
        .post(format!("{base}/api/v1/resyncs"))
        .bearer_auth(SUPPORT)
        .json(&serde_json::json!({"national_id": id(1), "verify": true}))
        .send()
        .await
        .unwrap();
    let rid = answer.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    let done = wait_resync_done(&http, &base, rid).await;
    assert_eq!(done["result"]["missing_at_registry"], 1, "{done}");
    wait_for(
        Duration::from_secs(60),
        "the lost record to be credited again",
        || async {
            sim.credited("lifelong")
                .iter()
                .any(|c| c.idempotency_key == lost.idempotency_key)
        },
    )
    .await;
    wait_nothing_left_to_send(&store, Duration::from_secs(60)).await;
    assert_eq!(
        accepted(&sim) - before,
        1,
        "exactly the lost record was sent again"
    );
    assert_eq!(
        sim.stats()
            .registries
            .values()
            .map(|s| s.duplicates)
            .sum::<u64>(),
        0
    );

    // Both resyncs are in the audit trail, readable by ops only.
    assert_eq!(
        http.get(format!("{base}/api/v1/audit"))
            .bearer_auth(SUPPORT)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let audit: Vec<serde_json::Value> = http
        .get(format!("{base}/api/v1/audit"))
        .bearer_auth(OPS)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|a| a["action"] == "resync" && a["actor"] == "api:alice")
            .count(),
        2,
        "{audit:?}"
    );
    shutdown.cancel();
    running.wait().await.unwrap();
}

async fn retry_pagination_and_malformed_requests(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let (sim, store) = fixture_with_rejections(&env).await;
    let (running, shutdown, base) = start_without_scans(&env, &sim).await;
    let http = reqwest::Client::new();
    wait_drained(&store, Duration::from_secs(60)).await;

    // Pagination walks every row exactly once.
    let (mut cursor, mut seen) = (None::<i64>, Vec::new());
    loop {
        let mut url = format!("{base}/api/v1/deliveries?limit=7");
        if let Some(c) = cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: serde_json::Value = http
            .get(&url)
            .bearer_auth(SUPPORT)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_i64().unwrap()),
        );
        match page["next_cursor"].as_i64() {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(
        seen.len() as i64,
        store.table_counts().await.unwrap().deliveries
    );
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    let rejected: serde_json::Value = http
        .get(format!(
            "{base}/api/v1/deliveries?state=rejected&registry=lifelong"
        ))
        .bearer_auth(SUPPORT)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = rejected["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["reason"], "unknown_course");
    assert!(!rejected.to_string().contains(&id(1)));
    let rid = items[0]["id"].as_i64().unwrap();

    // The registry learns the course; ops requeue the record.
    sim.set_faults(Default::default());
    let retry = |token: &'static str, id: i64| {
        http.post(format!("{base}/api/v1/deliveries/{id}/retry"))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(retry(SUPPORT, rid).await.unwrap().status(), 403);
    assert_eq!(retry(OPS, 999_999).await.unwrap().status(), 404);
    assert_eq!(retry(OPS, rid).await.unwrap().status(), 200);
    wait_for(Duration::from_secs(60), "the retried record", || async {
        sim.credited("lifelong")
            .iter()
            .any(|c| c.record["course_code"] == "LL")
    })
    .await;
    wait_drained(&store, Duration::from_secs(60)).await;
    assert_eq!(
        retry(OPS, rid).await.unwrap().status(),
        409,
        "a delivered record is not retried"
    );

    // Malformed requests: a clear 4xx, never a 5xx, nothing changed.
    let before = store.table_counts().await.unwrap();
    let post = |body: String| {
        http.post(format!("{base}/api/v1/resyncs"))
            .bearer_auth(SUPPORT)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (body, want) in [
        ("{not json".to_string(), 400),
        ("{}".to_string(), 400),
        (r#"{"national_id": "B123456788"}"#.to_string(), 400),
        (r#"{"registry": "pension"}"#.to_string(), 422),
        (r#"{"national_id": 12}"#.to_string(), 422),
        (
            r#"{"course_code": "ALL", "colour": "red"}"#.to_string(),
            422,
        ),
        (r#"{"completed_from": "2026-13-01"}"#.to_string(), 422),
        (
            r#"{"completed_from": "2026-11-30", "completed_to": "2026-11-01"}"#.to_string(),
            400,
        ),
        (
            format!(r#"{{"course_code": "{}"}}"#, "x".repeat(100_000)),
            413,
        ),
    ] {
        let answer = post(body.clone()).await.unwrap();
        assert_eq!(
            answer.status().as_u16(),
            want,
            "{}",
            &body[..body.len().min(80)]
        );
        let text = answer.text().await.unwrap();
        assert!(!text.contains("B123456788"), "{text}");
    }
    for url in [
        "deliveries?state=bogus",
        "deliveries?cursor=abc",
        "deliveries?registry=pension",
        "deliveries?colour=red",
    ] {
        assert_eq!(
            http.get(format!("{base}/api/v1/{url}"))
                .bearer_auth(SUPPORT)
                .send()
                .await
                .unwrap()
                .status(),
            400,
            "{url}"
        );
    }
    // An ID glued to a letter or digit is echoed masked all the same.
    let whole = id(1);
    let echoes = [
        http.get(format!("{base}/api/v1/deliveries?state={whole}1")),
        http.get(format!("{base}/api/v1/deliveries?registry={whole}x")),
        http.get(format!("{base}/api/v1/deliveries?{whole}x=1")),
        http.get(format!("{base}/nope/{whole}x")),
        http.post(format!("{base}/api/v1/resyncs"))
            .header("content-type", "application/json")
            .body(format!(r#"{{"{whole}x": 1}}"#)),
    ];
    for request in echoes {
        let answer = request.bearer_auth(SUPPORT).send().await.unwrap();
        assert!(answer.status().is_client_error());
        let text = answer.text().await.unwrap();
        assert!(
            !text.contains(&whole) && text.contains("*****"),
            "an ID echoed whole: {text}"
        );
    }
    assert_eq!(store.table_counts().await.unwrap(), before);
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
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "promtool is required under CI (apt-get install prometheus)"
        );
        eprintln!("SKIPPED: promtool not installed");
        return;
    };
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {said}"
    );
}

/// Ops read who asked for what in the journal; a national ID in a path
/// must not reach it, so the line names the route, not the path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_leaves_an_access_line_with_the_route_template_and_no_national_id() {
    let env = TestEnv::new(Backend::Sqlite).await;
    tokens(&env);
    let sim = simulator(Default::default()).await;
    let (mut daemon, base) =
        env.spawn_serving_daemon(&sim, &[("HOURSYNC_LOG__LEVEL", "info".to_string())]);
    let http = reqwest::Client::new();
    wait_for(Duration::from_secs(30), "the admin server", || {
        let answer = http.get(format!("{base}/healthz")).send();
        async move { answer.await.is_ok() }
    })
    .await;

    let records = http
        .get(format!("{base}/api/v1/people/{}/records", id(1)))
        .bearer_auth(SUPPORT)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    let unknown = http
        .get(format!("{base}/no/such/{}?q={}", id(2), id(3)))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let access = |logs: &str, needle: &str| {
        logs.lines()
            .find(|l| l.contains(" access ") && l.contains(needle))
            .map(str::to_string)
    };
    wait_for(Duration::from_secs(10), "the access lines", || {
        let logs = env.daemon_logs();
        async move { access(&logs, "(no route)").is_some() }
    })
    .await;
    daemon.kill().await.ok();

    let logs = env.daemon_logs();
    let line = access(&logs, "/api/v1/people/{national_id}/records")
        .unwrap_or_else(|| panic!("no access line of the records route: {logs}"));
    for part in [
        "method=GET",
        &format!("status={records}"),
        "alice",
        "latency_ms=",
    ] {
        assert!(line.contains(part), "{part:?} missing: {line}");
    }
    let line = access(&logs, "(no route)").unwrap();
    assert!(line.contains("status=404"), "{line}");
    for n in 1..=3 {
        assert!(!logs.contains(&id(n)), "national ID {n} in the log: {logs}");
    }
}

backend_tests!(
    health_readiness_metrics_and_roles_over_real_http,
    a_resync_sends_a_converted_learners_hours_and_verify_resends_exactly_what_a_registry_lost,
    retry_pagination_and_malformed_requests,
);
