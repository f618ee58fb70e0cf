//! A record is resent with the bytes that may have landed: after a lost
//! answer (the registry committed, the connection dropped), after the
//! daemon was killed with SIGKILL while it held leases, and after those
//! leases expired and another daemon process took the rows, every resend
//! carries the record first credited under its key, even though the
//! course was renamed meanwhile. The simulator counts any `duplicate`
//! whose record differs from the one it credited under that key.
//!
//! A daemon that dies after the registry credited its batch leaves rows
//! that look unsent but may have landed: a change of hours or a
//! revocation judged then must become a correction or a withdrawal.

mod common;

use common::fixture::learners;
use common::*;
use hoursync::domain::RegistryKind;
use hoursync::registry::RegistryClient;
use hoursync::registry::adapter::{batch_body, wire_record};
use hoursync::scan::scan_once;
use hoursync::simulator::{Faults, Simulator};
use hoursync::store::{SharedStore, State};
use serde_json::json;
use std::time::Duration;

const LEARNERS: u32 = 20;
const LIMIT: Duration = Duration::from_secs(120);
const REGISTRIES: [&str; 3] = ["lifelong", "teacher", "enved"];

fn course(name: &str) -> String {
    course_with_hours(name, "2.0")
}

fn course_with_hours(name: &str, hours: &str) -> String {
    json!({"type": "course", "course_code": "K1", "name": name, "learning_mode": 1,
           "category_code": "A1", "digital_hours": hours, "classroom_hours": "0.0",
           "certified": {"lifelong": hours, "teacher": hours, "enved": hours}})
    .to_string()
}

async fn a_record_resent_after_a_lost_answer_a_crash_and_an_expired_lease_carries_the_same_bytes(
    backend: Backend,
) {
    let env = TestEnv::new(backend).await;
    // Every request commits, then its answer is lost.
    let sim = simulator(Faults {
        drop_rate: 1.0,
        ..Faults::default()
    })
    .await;
    let store = env.store().await;
    let lines = learners(LEARNERS, course("環境教育導論"));
    let report = import(&store, &[env.write("base.jsonl", &lines)]).await;
    assert_eq!(report.rejected, 0, "{:?}", report.errors);

    let mut daemon = env.spawn_daemon(&sim, 5, None);
    let all = 3 * LEARNERS as usize;
    wait_for(LIMIT, "every record credited, each answer lost", || async {
        let held: usize = REGISTRIES.iter().map(|r| sim.credited(r).len()).sum();
        held == all
    })
    .await;
    // Resent at least once more under its key before the crash.
    wait_for(LIMIT, "resends answered duplicate", || async {
        REGISTRIES
            .iter()
            .map(|r| sim.stats().registry(r).duplicates)
            .sum::<u64>()
            >= all as u64
    })
    .await;
    daemon.start_kill().unwrap(); // SIGKILL, leases held
    daemon.wait().await.unwrap();
    let unknown_at_crash = count_where(&store, |s| s == State::Retrying).await
        + count_where(&store, |s| s == State::Pending).await;
    assert!(unknown_at_crash > 0, "nothing was left to resend");

    // The course is renamed while every outcome is unknown.
    let report = import(
        &store,
        &[env.write("rename.jsonl", &[course("環境教育概論")])],
    )
    .await;
    assert_eq!(report.rejected, 0, "{:?}", report.errors);
    sim.set_faults(Faults::default());
    let mut daemon = env.spawn_daemon(&sim, 5, None);
    wait_drained(&store, LIMIT).await;
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();

    for registry in REGISTRIES {
        let stats = sim.stats().registry(registry);
        assert_eq!(
            stats.resent_other_record,
            0,
            "{registry}: a resend carried another record under its key\n{}",
            env.daemon_logs()
        );
        assert_eq!(stats.records_accepted, u64::from(LEARNERS), "{registry}");
        let held = sim.credited(registry);
        assert_eq!(held.len(), LEARNERS as usize, "{registry}: one record each");
        assert!(
            held.iter()
                .all(|c| c.record["course_name"] == "環境教育導論"),
            "{registry}: the registry holds the first bytes"
        );
    }
    assert_eq!(
        count_where(&store, |s| s == State::Delivered).await,
        i64::from(3 * LEARNERS)
    );
}

/// A daemon sends every record, the registry credits them, and the daemon
/// dies before it records the answers: the rows stay `pending` under leases
/// that then expire. Nothing runs until the caller's change is imported.
async fn credited_by_a_daemon_that_died(env: &TestEnv, sim: &Simulator) -> SharedStore {
    let store = env.store().await;
    let clock = clock();
    let report = import(
        &store,
        &[env.write(
            "base.jsonl",
            &learners(LEARNERS, course_with_hours("K", "5.2")),
        )],
    )
    .await;
    assert_eq!(report.rejected, 0, "{:?}", report.errors);
    scan_once(store.as_ref(), clock.as_ref()).await.unwrap();
    let now = clock.now_ms();
    for registry in RegistryKind::ALL {
        let claimed = store
            .claim(registry, "dead-daemon", now, now + 200, 1000)
            .await
            .unwrap();
        assert_eq!(claimed.len(), LEARNERS as usize, "{registry:?}");
        let records: Vec<String> = claimed
            .iter()
            .map(|c| wire_record(c.record.as_ref().unwrap(), &c.idempotency_key))
            .collect();
        let client = RegistryClient::new(
            registry,
            &sim.base_url(registry.as_str()),
            TOKEN.into(),
            Duration::from_secs(5),
        )
        .unwrap();
        let body = batch_body(records.iter().map(String::as_str));
        let results = client
            .post_batch(body, &uuid::Uuid::new_v4().to_string())
            .await
            .unwrap();
        assert_eq!(results.len(), LEARNERS as usize);
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // the leases expire
    store
}

/// Imports `lines` and judges them before any daemon runs (so that no
/// resend of what may have landed comes first), then drains with a daemon.
async fn judge_then_drain(
    env: &TestEnv,
    sim: &Simulator,
    store: &SharedStore,
    name: &str,
    lines: &[String],
) {
    let report = import(store, &[env.write(name, lines)]).await;
    assert_eq!(report.rejected, 0, "{:?}", report.errors);
    scan_once(store.as_ref(), clock().as_ref()).await.unwrap();
    let daemon = InProcessDaemon::start(env.config(sim));
    wait_drained(store, LIMIT).await;
    daemon.stop().await;
}

/// The course's hours change after the daemon died: what was sent under
/// each key must stay what the registry holds, and the change must go out
/// as a correction; never as the new hours resent under the old key, which
/// the registry answers `duplicate` while it keeps the old hours.
async fn hours_changed_after_a_daemon_died_awaiting_an_answer_go_out_as_corrections(
    backend: Backend,
) {
    let env = TestEnv::new(backend).await;
    let sim = simulator(Faults::default()).await;
    let store = credited_by_a_daemon_that_died(&env, &sim).await;
    let fix = [course_with_hours("K", "6.2")];
    judge_then_drain(&env, &sim, &store, "fix.jsonl", &fix).await;

    for registry in REGISTRIES {
        assert_holds_our_hours(&sim, registry, LEARNERS as usize, "6.2");
        let stats = sim.stats().registry(registry);
        assert_eq!(stats.corrections, u64::from(LEARNERS), "{registry}");
        assert_eq!(stats.records_accepted, u64::from(LEARNERS), "{registry}");
    }
}

/// Completions revoked after the daemon died: the registry may hold them,
/// so they are looked up and withdrawn, not merely marked ineligible here
/// while the registry keeps counting the hours.
async fn completions_revoked_after_a_daemon_died_awaiting_an_answer_are_withdrawn(
    backend: Backend,
) {
    const REVOKED: u32 = 5;
    let env = TestEnv::new(backend).await;
    let sim = simulator(Faults::default()).await;
    let store = credited_by_a_daemon_that_died(&env, &sim).await;
    let revoked: Vec<String> = (1..=REVOKED)
        .map(|n| {
            json!({"type": "completion", "completion_id": format!("c{n}"), "account_id": format!("a{n}"),
                   "course_code": "K1", "completed_at": "2026-11-20T10:00:00+08:00", "status": "revoked"})
            .to_string()
        })
        .collect();
    judge_then_drain(&env, &sim, &store, "revoke.jsonl", &revoked).await;

    for registry in REGISTRIES {
        assert_eq!(
            sim.credited(registry).len(),
            (LEARNERS - REVOKED) as usize,
            "{registry}: the revoked records are gone"
        );
        assert_eq!(
            sim.stats().registry(registry).withdrawals,
            u64::from(REVOKED),
            "{registry}"
        );
    }
    assert_eq!(
        count_where(&store, |s| s == State::Withdrawn).await,
        i64::from(3 * REVOKED)
    );
}

backend_tests!(
    a_record_resent_after_a_lost_answer_a_crash_and_an_expired_lease_carries_the_same_bytes,
    hours_changed_after_a_daemon_died_awaiting_an_answer_go_out_as_corrections,
    completions_revoked_after_a_daemon_died_awaiting_an_answer_are_withdrawn,
);
