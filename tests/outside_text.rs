//! Text written by a registry is outside text: a careless registry quotes
//! the national ID of the record it refuses, in a rejection's message or in
//! a 400 body. The daemon masks it where it enters, so the stored error,
//! the attempt history, the log and every answer built from them show the
//! masked ID and never the whole one.

#[macro_use]
mod common;

use common::fixture::{self, id};
use common::*;
use hoursync::simulator::Faults;
use std::time::Duration;

const SUPPORT: &str = "support-token-0123456789";

fn admin_tokens(env: &TestEnv) {
    let path = env.dir.path().join("admin.tokens");
    std::fs::write(&path, format!("alice support {SUPPORT}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The fixture's persons' whole IDs (and some that are not in it).
fn whole_ids() -> Vec<String> {
    (1..=40).map(id).collect()
}

#[track_caller]
fn assert_masked(what: &str, text: &str) {
    for whole in whole_ids() {
        assert!(
            !text.contains(&whole),
            "{what} holds a whole national ID:\n{text}"
        );
    }
}

async fn a_registry_message_quoting_a_national_id_is_masked_wherever_it_is_kept_or_shown(
    backend: Backend,
) {
    let env = TestEnv::new(backend).await;
    admin_tokens(&env);
    // `LL` records are rejected with a message quoting the ID; any batch
    // holding an `ALL` record is answered 400 with a body quoting it.
    let sim = simulator(Faults {
        reject_courses: vec!["LL".into()],
        reject_quoting_id: true,
        bad_request_courses: vec!["ALL".into()],
        ..Default::default()
    })
    .await;
    let store = env.store().await;
    import(&store, &[env.write("fixture.jsonl", &fixture::lines())]).await;
    let mut daemon = env.spawn_daemon(&sim, 500, None);
    wait_drained(&store, Duration::from_secs(90)).await;
    daemon.kill().await.unwrap();

    // Stored: deliveries.last_error.
    let rows = store.list_deliveries(None, None, 0, 500).await.unwrap();
    let errors: Vec<String> = rows.iter().filter_map(|d| d.last_error.clone()).collect();
    let joined = errors.join("\n");
    assert_masked("deliveries.last_error", &joined);
    let masked = hoursync::domain::mask(&id(1));
    let rejected = errors
        .iter()
        .find(|e| e.contains("not known to this registry"))
        .unwrap_or_else(|| panic!("no rejection stored: {joined}"));
    assert!(rejected.contains("*****"), "{rejected}");
    let refused = errors
        .iter()
        .find(|e| e.contains("answered 400"))
        .unwrap_or_else(|| panic!("no 400 stored: {joined}"));
    assert!(refused.contains("*****"), "{refused}");
    assert!(joined.contains(&masked), "{joined}");

    // Stored: the attempt history.
    for d in &rows {
        let attempts = store.attempts_of(d.id).await.unwrap();
        let text: Vec<String> = attempts.iter().filter_map(|a| a.error.clone()).collect();
        assert_masked("attempts.error", &text.join("\n"));
    }

    // Logged.
    let logs = env.daemon_logs();
    assert!(
        logs.contains("registry refused the batch") && logs.contains("*****"),
        "{logs}"
    );
    assert_masked("the daemon's log", &logs);

    // Printed.
    let deliveries = cli_ok(&env, &sim, &["deliveries", "--limit", "500"]).await;
    assert!(deliveries.contains(&masked), "{deliveries}");
    assert_masked("hoursync deliveries", &deliveries);
    let listed = cli_ok(&env, &sim, &["deliveries", "--limit", "500", "--json"]).await;
    let listed: Vec<serde_json::Value> = serde_json::from_str(&listed).expect("a JSON array");
    assert_eq!(listed.len(), rows.len().min(500), "one object per delivery");
    assert!(listed.iter().all(|d| {
        d["national_id"]
            .as_str()
            .is_some_and(|n| n.contains("*****"))
    }));
    assert_masked(
        "hoursync deliveries --json",
        &serde_json::to_string(&listed).unwrap(),
    );
    for args in [&["sla", "report"][..], &["sla", "report", "--json"][..]] {
        let out = cli_ok(&env, &sim, args).await;
        assert!(out.contains("*****"), "{args:?}: {out}");
        assert_masked("hoursync sla report", &out);
    }
    let with_error = rows.iter().find(|d| d.last_error.is_some()).unwrap();
    let history = cli_ok(&env, &sim, &["history", &with_error.id.to_string()]).await;
    assert_masked("hoursync history", &history);

    // Answered.
    let mut config = env.config(&sim);
    config.schedule.scan = "0 0 0 1 1 *".into();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = hoursync::daemon::start(config, clock(), shutdown.clone())
        .await
        .unwrap();
    let answer = reqwest::Client::new()
        .get(format!(
            "http://{}/api/v1/deliveries?limit=500",
            running.admin_addr
        ))
        .bearer_auth(SUPPORT)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    shutdown.cancel();
    running.wait().await.unwrap();
    assert!(answer.contains("*****"), "{answer}");
    assert_masked("GET /api/v1/deliveries", &answer);
}

backend_tests!(a_registry_message_quoting_a_national_id_is_masked_wherever_it_is_kept_or_shown,);
