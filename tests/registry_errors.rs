//! Whole-batch answers of REGISTRY-API.md that stop or reshape sending:
//! 413 splits the batch; 401/403 stops that registry until its token file
//! holds a token the registry accepts.

#[macro_use]
mod common;

use common::fixture;
use common::*;
use hoursync::simulator::SimConfig;
use hoursync::store::State;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

async fn a_batch_too_large_for_the_registry_is_split_and_everything_arrives(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let sim = simulator_with(SimConfig {
        token: TOKEN.into(),
        max_batch: 3,
        rate_per_second: 0,
        ..Default::default()
    })
    .await;
    let store = env.store().await;
    let generated = env.path("g.jsonl");
    let spec = hoursync::dataset::DatasetSpec {
        persons: 20,
        completions_per_person: 2,
        courses: 10,
        seed: 3,
        profile: hoursync::dataset::Profile::AllEligible,
        offset: 0,
    };
    hoursync::dataset::write(spec, &generated).unwrap();
    import(&store, &[generated]).await;
    let daemon = InProcessDaemon::start(env.config(&sim));
    wait_drained(&store, LIMIT).await;
    daemon.stop().await;
    assert_eq!(count_where(&store, |s| s == State::Delivered).await, 120);
    assert_eq!(sim.credited("teacher").len(), 40);
}

async fn a_refused_token_stops_sending_until_the_token_file_is_replaced(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let sim = simulator(Default::default()).await;
    std::fs::write(&env.token_file, "expired-token").unwrap();
    let store = env.store().await;
    import(&store, &[env.write("fixture.jsonl", &fixture::lines())]).await;
    let mut config = env.config(&sim);
    config.dispatch.auth_recheck_ms = 300;
    let daemon = InProcessDaemon::start(config);

    wait_for(LIMIT, "the registries to refuse the token", || async {
        sim.stats()
            .registries
            .values()
            .filter(|s| s.requests > 0)
            .count()
            == 3
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let refused_requests: u64 = sim.stats().registries.values().map(|s| s.requests).sum();
    assert!(
        refused_requests <= 3 * 4,
        "a refused token must not be retried in a tight loop: {refused_requests}"
    );
    assert_eq!(count_where(&store, |s| s == State::Delivered).await, 0);
    assert_eq!(
        count_where(&store, |s| s == State::Failed).await,
        0,
        "a token problem is not the records' fault"
    );

    std::fs::write(&env.token_file, TOKEN).unwrap();
    wait_drained(&store, LIMIT).await;
    daemon.stop().await;
    assert_eq!(sim.credited("lifelong").len(), 4);
}

backend_tests!(
    a_batch_too_large_for_the_registry_is_split_and_everything_arrives,
    a_refused_token_stops_sending_until_the_token_file_is_replaced,
);
