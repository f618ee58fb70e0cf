//! A registry that breaks REGISTRY-API.md: answers `accepted` with an empty
//! receipt, answers far larger than any batch needs. The daemon runs as a
//! real process against the simulator with the fault; nothing may be
//! marked delivered on such an answer, and once the registry behaves again
//! every record is delivered once, under the registry's real receipt, so
//! that corrections and withdrawals reach it.

#[macro_use]
mod common;

use common::fixture::{account, completion, id};
use common::*;
use hoursync::simulator::{Faults, Simulator};
use hoursync::store::State;
use serde_json::json;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(90);

fn course(code: &str, lifelong: &str, teacher: Option<&str>) -> String {
    json!({"type": "course", "course_code": code, "name": format!("課程 {code}"), "learning_mode": 1,
           "category_code": "A1", "digital_hours": lifelong, "classroom_hours": "0.0",
           "certified": {"lifelong": lifelong, "teacher": teacher, "enved": "2.0"}})
    .to_string()
}

/// One civil servant with three completions: c1 and c3 of K1 (certified
/// everywhere), c2 of K2 (lifelong and env-ed): eight records.
fn base() -> Vec<String> {
    vec![
        json!({"type": "unit", "code": "U1", "name": "單位"}).to_string(),
        json!({"type": "person", "national_id": id(1), "personnel_category": "10",
               "enved_account": "EE-1", "service_unit_code": "U1"})
        .to_string(),
        account("a1", 1, "ecpa", Some("civil_servant")),
        course("K1", "2.0", Some("2.0")),
        course("K2", "3.0", None),
        completion("c1", "a1", "K1", "2026-11-20T10:00:00+08:00", "completed"),
        completion("c2", "a1", "K2", "2026-11-20T11:00:00+08:00", "completed"),
        completion("c3", "a1", "K1", "2026-11-21T10:00:00+08:00", "completed"),
    ]
}
const RECORDS: u64 = 8;

async fn import_lines(env: &TestEnv, store: &hoursync::store::SharedStore, lines: &[String]) {
    let name = format!("{}.jsonl", uuid::Uuid::new_v4().simple());
    let report = import(store, &[env.write(&name, lines)]).await;
    assert_eq!(report.rejected, 0, "{:?}", report.errors);
}

/// How many answers of every registry the daemon counted as `violation`.
async fn violations(admin: &str, violation: &str) -> f64 {
    let Ok(answer) = reqwest::get(format!("{admin}/metrics")).await else {
        return 0.0;
    };
    let text = answer.text().await.unwrap_or_default();
    let suffix = format!(",violation=\"{violation}\"}}");
    text.lines()
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            (series.starts_with("hoursync_registry_contract_violations_total{")
                && series.ends_with(&suffix))
            .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

fn totals(sim: &Simulator) -> (u64, u64) {
    let stats = sim.stats();
    let sum = |f: fn(&hoursync::simulator::RegistryStats) -> u64| {
        stats.registries.values().map(f).sum::<u64>()
    };
    (sum(|s| s.records_accepted), sum(|s| s.duplicates))
}

/// The receipts the registries hold, and the ones our rows say they hold.
async fn receipts(env: &TestEnv, sim: &Simulator) -> (Vec<String>, Vec<String>) {
    let mut held: Vec<String> = ["lifelong", "teacher", "enved"]
        .iter()
        .flat_map(|r| sim.credited(r))
        .map(|c| c.receipt_id)
        .collect();
    let mut ours: Vec<String> = status_json(env, sim, &id(1))
        .await
        .iter()
        .filter(|l| l["state"] == "delivered")
        .map(|l| l["receipt_id"].as_str().unwrap_or_default().to_string())
        .collect();
    held.sort();
    ours.sort();
    (held, ours)
}

async fn an_empty_receipt_is_an_unknown_outcome_never_a_delivery(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let sim = simulator(Faults {
        empty_receipt_rate: 1.0,
        ..Faults::default()
    })
    .await;
    let store = env.store().await;
    import_lines(&env, &store, &base()).await;
    let (mut daemon, admin) = env.spawn_serving_daemon(&sim, &[]);

    // The registries credit every record but answer it with an empty
    // receipt; every record is resent (answered `duplicate`, still empty).
    wait_for(LIMIT, "every record credited and resent", || async {
        let (accepted, duplicates) = totals(&sim);
        accepted == RECORDS && duplicates >= 2 * RECORDS
    })
    .await;
    assert_eq!(
        count_where(&store, |s| s == State::Delivered).await,
        0,
        "a record was marked delivered on an empty receipt"
    );
    let counted = violations(&admin, "missing_receipt").await;
    assert!(counted >= RECORDS as f64, "violations counted: {counted}");
    let logs = env.daemon_logs();
    assert!(
        logs.contains("broke the contract") && logs.contains("missing_receipt"),
        "{logs}"
    );

    // The registry behaves again: each record is delivered once, under the
    // receipt the registry holds.
    sim.set_faults(Faults::default());
    wait_drained(&store, LIMIT).await;
    assert_eq!(
        count_where(&store, |s| s == State::Delivered).await,
        RECORDS as i64
    );
    let (held, ours) = receipts(&env, &sim).await;
    assert_eq!(held.len(), RECORDS as usize, "one credit per record");
    assert_eq!(ours, held, "our rows name the receipts the registries hold");

    // So a correction and a withdrawal reach the registry, by receipt.
    import_lines(&env, &store, &[course("K1", "3.5", Some("2.0"))]).await;
    wait_drained(&store, LIMIT).await;
    import_lines(
        &env,
        &store,
        &[completion(
            "c2",
            "a1",
            "K2",
            "2026-11-20T11:00:00+08:00",
            "revoked",
        )],
    )
    .await;
    wait_drained(&store, LIMIT).await;
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();
    let lifelong = sim.stats().registry("lifelong");
    assert_eq!(lifelong.corrections, 2, "{lifelong:?}");
    assert_eq!(lifelong.withdrawals, 1, "{lifelong:?}");
    assert_eq!(sim.stats().registry("enved").withdrawals, 1);
    let hours: Vec<String> = sim
        .credited("lifelong")
        .iter()
        .map(|c| c.hours.clone())
        .collect();
    assert_eq!(hours, ["3.5", "3.5"], "K1 corrected, K2 withdrawn");
    assert_eq!(
        sim.stats()
            .registries
            .values()
            .map(|s| s.rejected)
            .sum::<u64>(),
        0
    );
}

/// The daemon's peak resident memory, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

async fn an_answer_far_larger_than_a_batch_needs_is_read_no_further_and_resent(backend: Backend) {
    const PADDING: u64 = 128 * 1024 * 1024;
    let env = TestEnv::new(backend).await;
    let sim = simulator(Faults {
        answer_padding_bytes: PADDING,
        ..Faults::default()
    })
    .await;
    let store = env.store().await;
    import_lines(&env, &store, &base()).await;
    let (mut daemon, admin) = env.spawn_serving_daemon(&sim, &[]);

    wait_for(LIMIT, "every record credited and resent", || async {
        let (accepted, duplicates) = totals(&sim);
        accepted == RECORDS && duplicates >= RECORDS
    })
    .await;
    assert_eq!(count_where(&store, |s| s == State::Delivered).await, 0);
    let peak = peak_rss(daemon.id().unwrap());
    assert!(
        peak < PADDING / 2,
        "the daemon read an oversized answer: peak RSS {peak} bytes"
    );
    let counted = violations(&admin, "oversized").await;
    assert!(
        counted >= 1.0,
        "oversized answers counted: {counted}\n{}",
        env.daemon_logs()
    );
    assert!(env.daemon_logs().contains("oversized"));

    sim.set_faults(Faults::default());
    wait_drained(&store, LIMIT).await;
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();
    let (held, ours) = receipts(&env, &sim).await;
    assert_eq!(held.len(), RECORDS as usize, "one credit per record");
    assert_eq!(ours, held);
}

backend_tests!(
    an_empty_receipt_is_an_unknown_outcome_never_a_delivery,
    an_answer_far_larger_than_a_batch_needs_is_read_no_further_and_resent,
);
