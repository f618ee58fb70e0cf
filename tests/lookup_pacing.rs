//! Lookups obey the registry's pace. Two daemons run on one PostgreSQL
//! database while two support people run `hoursync resync --verify` on the
//! same registry at once: 2,000 lookups in all. The registry allows less
//! than we are configured for and answers the excess 429 with
//! `Retry-After`. Every lookup takes its slot from the pace the daemons
//! share, a 429 holds every process and is retried: the registry never sees
//! more than `rate_per_second` requests in any one second, and no lookup
//! ends as an error.

mod common;

use common::*;
use hoursync::dataset::{DatasetSpec, Profile};
use hoursync::simulator::{Faults, SimConfig};
use std::time::Duration;

/// Our configured pace.
const RATE: u32 = 100;
const PERSONS: usize = 1_000;

/// Several daemons on one database is the PostgreSQL setup, so this test
/// has no SQLite twin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_verifying_resyncs_beside_two_daemons_keep_to_the_registry_pace_and_retry_429s() {
    if !Backend::postgres_ready().await {
        return;
    }
    let env = TestEnv::new(Backend::Postgres).await;
    let sim = simulator_with(SimConfig {
        token: TOKEN.into(),
        faults: Faults::default(),
        // The registry allows a fifth less than we are configured for.
        rate_per_second: RATE * 4 / 5,
        burst: 20,
        ..Default::default()
    })
    .await;
    let mut daemons: Vec<_> = (0..2)
        .map(|_| env.spawn_daemon(&sim, 100, Some(RATE)))
        .collect();
    let store = env.store().await;
    let data = env.path("d.jsonl");
    let spec = DatasetSpec {
        persons: PERSONS,
        completions_per_person: 1,
        courses: 20,
        seed: 7,
        profile: Profile::AllEligible,
        offset: 0,
    };
    hoursync::dataset::write(spec, &data).unwrap();
    assert_eq!(import(&store, &[data]).await.rejected, 0);
    let t = std::time::Instant::now();
    wait_drained(&store, Duration::from_secs(120)).await;
    eprintln!("drained in {:?}", t.elapsed());
    let t = std::time::Instant::now();
    assert_eq!(sim.credited("lifelong").len(), PERSONS);

    let verify = || {
        let mut cmd = env.command(&sim, &["resync", "--verify", "--registry", "lifelong"]);
        cmd.env(
            "HOURSYNC_REGISTRIES__LIFELONG__RATE_PER_SECOND",
            RATE.to_string(),
        );
        cmd
    };
    let (mut first, mut second) = (verify(), verify());
    let (a, b) = tokio::join!(output_ok(&mut first), output_ok(&mut second));
    for (who, out) in [("first", a), ("second", b)] {
        let summary: serde_json::Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("{who} resync printed no summary ({e}):\n{out}"));
        assert_eq!(summary["records"], PERSONS, "{who}: {summary}");
        assert_eq!(summary["lookup_errors"], 0, "{who}: {summary}");
        assert_eq!(summary["missing_at_registry"], 0, "{who}: {summary}");
    }
    eprintln!("verified in {:?}", t.elapsed());
    let stats = sim.stats();
    let lifelong = stats.registry("lifelong");
    eprintln!("lookup pacing: {lifelong:?}");
    assert!(
        lifelong.rate_limited > 0,
        "the registry never answered 429, so nothing was tested: {lifelong:?}"
    );
    assert!(
        lifelong.max_requests_in_one_second <= u64::from(RATE),
        "the registry saw {} requests in one second (rate {RATE})",
        lifelong.max_requests_in_one_second
    );
    assert_eq!(
        lifelong.early_requests, 0,
        "requests arrived inside a Retry-After: {lifelong:?}"
    );
    // Each lookup, 429s included, is in the record's history.
    let lookups: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM request_records r JOIN requests q ON q.id = r.request
         WHERE q.action = 'lookup' AND r.result = 'found'",
    )
    .fetch_one(&sqlx::PgPool::connect(&env.db_url).await.unwrap())
    .await
    .unwrap();
    assert_eq!(lookups, 2 * PERSONS as i64);
    for mut d in daemons.drain(..) {
        d.start_kill().unwrap();
        d.wait().await.unwrap();
    }
}
