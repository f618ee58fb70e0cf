//! Nothing lost, nothing twice: the daemon killed with SIGKILL mid-drain
//! and restarted, an import running while it drains, and a clean stop on
//! SIGTERM. The daemon runs as a real process here.

#[macro_use]
mod common;

use common::*;
use hoursync::dataset::{DatasetSpec, Profile};
use hoursync::simulator::{Faults, Simulator};
use hoursync::store::State;
use std::time::{Duration, Instant};

/// Generous: the second data set redefines the courses' hours, so the
/// drain also sends a few thousand corrections, one request each (about
/// two minutes on PostgreSQL in a debug build, more on a busy machine).
const LIMIT: Duration = Duration::from_secs(300);

fn eligible_file(
    env: &TestEnv,
    name: &str,
    persons: usize,
    offset: usize,
    seed: u64,
) -> std::path::PathBuf {
    let path = env.path(name);
    let spec = DatasetSpec {
        persons,
        completions_per_person: 4,
        courses: 40,
        seed,
        profile: Profile::AllEligible,
        offset,
    };
    hoursync::dataset::write(spec, &path).unwrap();
    path
}

fn credited_total(sim: &Simulator) -> usize {
    ["lifelong", "teacher", "enved"]
        .iter()
        .map(|r| sim.credited(r).len())
        .sum()
}

/// Every record credited once: as many credits as delivered rows, nothing
/// refused (a second credit of a completion would be `already_credited`).
async fn assert_each_credited_once(env: &TestEnv, sim: &Simulator, expected: usize) {
    let store = env.store().await;
    let delivered = count_where(&store, |s| s == State::Delivered).await as usize;
    let stats = sim.stats();
    assert_eq!(
        stats.registries.values().map(|s| s.rejected).sum::<u64>(),
        0,
        "{stats:?}"
    );
    assert_eq!(delivered, expected, "delivered rows");
    assert_eq!(credited_total(sim), expected, "records the registries hold");
}

async fn a_daemon_killed_mid_drain_and_restarted_loses_nothing_and_sends_nothing_twice(
    backend: Backend,
) {
    let env = TestEnv::new(backend).await;
    let sim = simulator(Faults {
        latency_ms: 25,
        ..Faults::default()
    })
    .await;
    let store = env.store().await;
    let report = import(&store, &[eligible_file(&env, "d.jsonl", 1_500, 0, 5)]).await;
    assert_eq!(report.rejected, 0);
    let expected = 1_500 * 4 * 3;

    let mut daemon = env.spawn_daemon(&sim, 50, None);
    wait_for(LIMIT, "a part of the backlog to be credited", || async {
        credited_total(&sim) >= 3_000
    })
    .await;
    daemon.start_kill().unwrap(); // SIGKILL
    daemon.wait().await.unwrap();
    let left = open_deliveries(&store).await;
    assert!(
        left > 0,
        "the drain finished before the kill; the test proves nothing"
    );

    let mut daemon = env.spawn_daemon(&sim, 50, None);
    wait_drained(&store, LIMIT).await;
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();
    assert_each_credited_once(&env, &sim, expected).await;
}

async fn an_import_while_the_daemon_drains_a_backlog_finishes_without_lock_errors(
    backend: Backend,
) {
    let env = TestEnv::new(backend).await;
    let sim = simulator(Faults {
        latency_ms: 30,
        ..Faults::default()
    })
    .await;
    let store = env.store().await;
    import(&store, &[eligible_file(&env, "first.jsonl", 1_500, 0, 7)]).await;
    let second = eligible_file(&env, "second.jsonl", 1_500, 1_500, 8);

    let mut daemon = env.spawn_daemon(&sim, 100, None);
    wait_for(LIMIT, "the drain to start", || async {
        credited_total(&sim) > 0
    })
    .await;
    let out = env
        .command(&sim, &["import", second.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "import failed during the drain: {stderr}"
    );
    assert!(!stderr.contains("locked"), "{stderr}");
    assert!(
        credited_total(&sim) < 18_000,
        "the first backlog drained before the import ended: no overlap was tested"
    );

    wait_for(LIMIT, "both files to be delivered", || async {
        credited_total(&sim) == 36_000
    })
    .await;
    wait_drained(&store, LIMIT).await;
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();
    assert_each_credited_once(&env, &sim, 36_000).await;
}

async fn sigterm_stops_the_daemon_cleanly_within_ten_seconds_even_mid_batch(backend: Backend) {
    let env = TestEnv::new(backend).await;
    // Slow answers, so a batch is in flight when the signal comes.
    let sim = simulator(Faults {
        latency_ms: 1_500,
        ..Faults::default()
    })
    .await;
    let store = env.store().await;
    import(&store, &[eligible_file(&env, "d.jsonl", 200, 0, 9)]).await;
    let mut daemon = env.spawn_daemon(&sim, 20, None);
    wait_for(LIMIT, "a batch in flight", || async {
        sim.stats().registries.values().any(|s| s.requests > 0)
    })
    .await;

    let pid = daemon.id().unwrap().to_string();
    let signalled = Instant::now();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(10), daemon.wait())
        .await
        .expect("still running 10 s after SIGTERM")
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    assert!(signalled.elapsed() < Duration::from_secs(10));

    // Whatever was in flight is resent under the same keys after a restart.
    let mut daemon = env.spawn_daemon(&sim, 200, None);
    sim.set_faults(Faults::default());
    wait_drained(&store, LIMIT).await;
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();
    assert_each_credited_once(&env, &sim, 200 * 4 * 3).await;
}

backend_tests!(
    a_daemon_killed_mid_drain_and_restarted_loses_nothing_and_sends_nothing_twice,
    an_import_while_the_daemon_drains_a_backlog_finishes_without_lock_errors,
    sigterm_stops_the_daemon_cleanly_within_ten_seconds_even_mid_batch,
);
