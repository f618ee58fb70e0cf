//! A record is resent with the bytes that may have landed: after a lost
//! answer (the registry committed, the connection dropped), after the
//! daemon was killed with SIGKILL while it held leases, and after those
//! leases expired and another daemon process took the rows, every resend
//! carries the record first credited under its key, even though the
//! course was renamed meanwhile. The simulator counts any `duplicate`
//! whose record differs from the one it credited under that key.

mod common;

use common::fixture::id;
use common::*;
use hoursync::simulator::Faults;
use hoursync::store::State;
use serde_json::json;
use std::time::Duration;

const LEARNERS: u32 = 20;
const LIMIT: Duration = Duration::from_secs(120);
const REGISTRIES: [&str; 3] = ["lifelong", "teacher", "enved"];

fn course(name: &str) -> String {
    json!({"type": "course", "course_code": "K1", "name": name, "learning_mode": 1,
           "category_code": "A1", "digital_hours": "2.0", "classroom_hours": "0.0",
           "certified": {"lifelong": "2.0", "teacher": "2.0", "enved": "2.0"}})
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
    let mut lines = vec![
        json!({"type": "unit", "code": "U1", "name": "單位"}).to_string(),
        course("環境教育導論"),
    ];
    for n in 1..=LEARNERS {
        lines.push(
            json!({"type": "person", "national_id": id(n), "personnel_category": "10",
                   "enved_account": format!("EE-{n}"), "service_unit_code": "U1"})
            .to_string(),
        );
        lines.push(
            json!({"type": "account", "account_id": format!("a{n}"), "national_id": id(n),
                   "kind": "ecpa", "identity": "civil_servant"})
            .to_string(),
        );
        lines.push(
            json!({"type": "completion", "completion_id": format!("c{n}"), "account_id": format!("a{n}"),
                   "course_code": "K1", "completed_at": "2026-11-20T10:00:00+08:00", "status": "completed"})
            .to_string(),
        );
    }
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

backend_tests!(
    a_record_resent_after_a_lost_answer_a_crash_and_an_expired_lease_carries_the_same_bytes,
);
