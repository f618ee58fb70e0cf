//! Moving from the embedded SQLite to PostgreSQL with `hoursync
//! migrate-data`: everything is copied, counts are verified, and a daemon on
//! the copy carries on where the old one stopped, sending nothing again.

mod common;

use common::fixture::{self, id};
use common::*;
use hoursync::simulator::Faults;
use hoursync::store::{CopyTable, PageKey};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_database_moved_to_postgres_carries_on_without_sending_anything_twice() {
    if !Backend::postgres_ready().await {
        return;
    }
    let old = TestEnv::new(Backend::Sqlite).await;
    let new = TestEnv::new(Backend::Postgres).await;
    let sim = simulator(Faults::default()).await;
    let store = old.store().await;
    import(&store, &[old.write("fixture.jsonl", &fixture::lines())]).await;
    let daemon = InProcessDaemon::start(old.config(&sim));
    wait_drained(&store, Duration::from_secs(60)).await;
    daemon.stop().await;
    let sent_before: u64 = sim
        .stats()
        .registries
        .values()
        .map(|s| s.batch_requests)
        .sum();

    let out = cli_ok(
        &new,
        &sim,
        &["migrate-data", "--from", &old.db_url, "--to", &new.db_url],
    )
    .await;
    assert!(out.contains("verified"), "{out}");
    let copy = new.store().await;
    assert_eq!(
        copy.table_counts().await.unwrap(),
        store.table_counts().await.unwrap()
    );
    // Every course's certified hours, row for row.
    let hours = |s: hoursync::store::SharedStore| async move {
        s.export_page(CopyTable::CourseHours, &PageKey::Start, 10_000)
            .await
            .unwrap()
    };
    let copied = hours(copy.clone()).await;
    assert!(!copied.is_empty());
    assert_eq!(copied, hours(store.clone()).await);
    for person in 1..=8 {
        let nid = hoursync::domain::NationalId::parse(&id(person)).unwrap();
        assert_eq!(
            hoursync::status::person_status(copy.as_ref(), &nid, 0, chrono::Duration::hours(24))
                .await
                .unwrap(),
            hoursync::status::person_status(store.as_ref(), &nid, 0, chrono::Duration::hours(24))
                .await
                .unwrap(),
            "person {person}"
        );
    }

    // A second copy into the same database is refused, not merged.
    let again = new
        .command(
            &sim,
            &["migrate-data", "--from", &old.db_url, "--to", &new.db_url],
        )
        .output()
        .await
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds data"));

    // The daemon on PostgreSQL sends nothing again, and new data flows.
    let daemon = InProcessDaemon::start(new.config(&sim));
    let later = [
        fixture::account("a3", 3, "mygov", Some("civil_servant")),
        // A new completion: new rows need ids after the copied ones.
        fixture::completion(
            "c-new",
            "a1",
            "LL",
            "2026-11-25T10:00:00+08:00",
            "completed",
        ),
    ];
    import(&copy, &[new.write("later.jsonl", &later)]).await;
    wait_for(
        Duration::from_secs(60),
        "the converted account's hours and the new completion",
        || async {
            let l = sim.credited("lifelong");
            l.iter().any(|c| c.record["national_id"] == id(3).as_str())
                && l.iter().any(|c| c.record["completed_on"] == "2026-11-25")
        },
    )
    .await;
    wait_drained(&copy, Duration::from_secs(60)).await;
    daemon.stop().await;
    let stats = sim.stats();
    assert_eq!(
        stats.registries.values().map(|s| s.duplicates).sum::<u64>(),
        0,
        "nothing already credited was resent"
    );
    assert!(
        stats
            .registries
            .values()
            .map(|s| s.batch_requests)
            .sum::<u64>()
            > sent_before
    );
}
