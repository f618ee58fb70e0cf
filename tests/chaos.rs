//! Scale-out on PostgreSQL, as ops would run it: three daemons on one
//! database drain a backlog through 5xx, 429 and commit-then-drop faults
//! while one daemon after another is killed with SIGKILL and restarted, and
//! PostgreSQL itself is restarted once. In the end every eligible record is
//! credited exactly once, and no registry saw more requests per second than
//! its `rate_per_second` (allowing one second's burst).
//!
//! This file holds one test, so restarting PostgreSQL disturbs no other
//! test (cargo runs test binaries one after another).

mod common;

use common::*;
use hoursync::dataset::{DatasetSpec, Profile};
use hoursync::simulator::{Faults, SimConfig};
use hoursync::store::State;
use std::time::{Duration, Instant};

const RATE: u32 = 20;
const LIMIT: Duration = Duration::from_secs(240);

fn restart_postgres() -> bool {
    let cmd = std::env::var("HOURSYNC_TEST_PG_RESTART").unwrap_or_else(|_| {
        "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main restart".into()
    });
    let ok = std::process::Command::new("sh")
        .args(["-c", &cmd])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "could not restart PostgreSQL with: {cmd}"
        );
        eprintln!("NOTE: could not restart PostgreSQL ({cmd}); that part of the test did not run");
    }
    ok
}

/// Several daemons on one database is the PostgreSQL setup, so this test
/// has no SQLite twin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_daemons_survive_kills_and_a_database_restart_and_credit_everything_once() {
    if !Backend::postgres_ready().await {
        return;
    }
    let env = TestEnv::new(Backend::Postgres).await;
    let faults = Faults {
        error_rate: 0.1,
        drop_rate: 0.05,
        latency_ms: 10,
        reject_courses: vec![],
        ..Faults::default()
    };
    // The registry allows half what we are configured for, with little
    // burst, so it answers 429s and its Retry-After must hold all three
    // daemons back. (At three quarters with a burst of five, a busy machine
    // kept the daemons under it: 13–19 requests in their busiest second.)
    let sim = simulator_with(SimConfig {
        token: TOKEN.into(),
        faults,
        rate_per_second: RATE / 2,
        burst: 2,
        ..Default::default()
    })
    .await;

    // Three daemons start at once on an empty database: it is migrated once.
    let mut daemons: Vec<_> = (0..3)
        .map(|_| env.spawn_daemon(&sim, 20, Some(RATE)))
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    for d in daemons.iter_mut() {
        assert!(
            d.try_wait().unwrap().is_none(),
            "a daemon died while starting together with the others:\n{}",
            env.daemon_logs()
        );
    }
    let store = env.store().await;
    let data = env.path("d.jsonl");
    let spec = DatasetSpec {
        persons: 1_000,
        completions_per_person: 4,
        courses: 40,
        seed: 21,
        profile: Profile::AllEligible,
        offset: 0,
    };
    hoursync::dataset::write(spec, &data).unwrap();
    assert_eq!(import(&store, &[data]).await.rejected, 0);
    let expected = 1_000 * 4 * 3;

    let started = Instant::now();
    let mut kills = 0;
    let mut restarted_db = false;
    while ["lifelong", "teacher", "enved"]
        .iter()
        .map(|r| sim.credited(r).len())
        .sum::<usize>()
        < expected
    {
        assert!(
            started.elapsed() < LIMIT,
            "the backlog did not drain in {LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let i = kills % 3;
        daemons[i].start_kill().unwrap();
        daemons[i].wait().await.unwrap();
        daemons[i] = env.spawn_daemon(&sim, 20, Some(RATE));
        kills += 1;
        if kills == 3 && !restarted_db {
            restarted_db = restart_postgres();
        }
    }
    let store = env.store().await;
    wait_drained(&store, LIMIT).await;
    for mut d in daemons {
        d.start_kill().unwrap();
        d.wait().await.unwrap();
    }
    assert!(kills >= 3, "the drain was over before the chaos began");

    let stats = sim.stats();
    assert_eq!(
        stats.registries.values().map(|s| s.rejected).sum::<u64>(),
        0,
        "a record credited twice is refused: {stats:?}"
    );
    assert!(
        stats
            .registries
            .values()
            .map(|s| s.rate_limited)
            .sum::<u64>()
            > 0,
        "no 429 was answered: {stats:?}"
    );
    assert_eq!(
        count_where(&store, |s| s == State::Delivered).await,
        expected as i64
    );
    eprintln!(
        "chaos: {kills} kills, database restarted: {restarted_db}, drained in {:?}",
        started.elapsed()
    );
    for registry in ["lifelong", "teacher", "enved"] {
        eprintln!("chaos: {registry}: {:?}", stats.registry(registry));
        assert_eq!(sim.credited(registry).len(), expected / 3, "{registry}");
        let busiest = stats.registry(registry).max_requests_in_one_second;
        assert!(
            busiest <= u64::from(2 * RATE),
            "{registry} saw {busiest} requests in one second (rate {RATE})"
        );
    }
}
