//! The core pipeline end to end, as a user runs it: data imported, the
//! daemon running against the registry simulator over real HTTP, and the
//! support view read through the `hoursync status` command.

#[macro_use]
mod common;

use common::fixture::{self, id};
use common::*;
use hoursync::dataset::{DatasetSpec, Profile};
use hoursync::simulator::Faults;
use hoursync::store::State;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

const DRAIN: Duration = Duration::from_secs(120);

async fn every_eligible_hour_reaches_its_registry_once_through_faults_and_every_other_pair_says_why(
    backend: Backend,
) {
    let env = TestEnv::new(backend).await;
    let faults = Faults {
        error_rate: 0.2,
        drop_rate: 0.15,
        latency_ms: 0,
        reject_courses: vec![],
        ..Faults::default()
    };
    let sim = simulator_with(hoursync::simulator::SimConfig {
        token: TOKEN.into(),
        faults,
        rate_per_second: 20,
        burst: 5,
        ..Default::default()
    })
    .await;
    let fixture_file = env.write("fixture.jsonl", &fixture::lines());
    let generated = env.path("generated.jsonl");
    let spec = DatasetSpec {
        persons: 150,
        completions_per_person: 3,
        courses: 30,
        seed: 11,
        profile: Profile::Realistic,
        offset: 0,
    };
    hoursync::dataset::write(spec, &generated).unwrap();
    let store = env.store().await;
    let report = import(&store, &[fixture_file, generated]).await;
    assert_eq!(report.rejected, 0, "{:?}", report.errors);

    let mut config = env.config(&sim);
    for r in config.registries.values_mut() {
        r.max_batch = 3; // many small batches: ~100 requests, so each fault happens (no drop at all: ~1e-7)
    }
    let daemon = InProcessDaemon::start(config);
    wait_drained(&store, DRAIN).await;
    daemon.stop().await;

    // The faults really happened.
    let stats = sim.stats();
    let total = |f: fn(&hoursync::simulator::RegistryStats) -> u64| {
        stats.registries.values().map(f).sum::<u64>()
    };
    assert!(
        total(|s| s.server_errors) > 0,
        "no 5xx was answered: {stats:?}"
    );
    assert!(
        total(|s| s.drops) > 0,
        "no connection was dropped: {stats:?}"
    );
    assert!(
        total(|s| s.rate_limited) > 0,
        "no 429 was answered: {stats:?}"
    );

    // Nothing was refused or given up, and what we call delivered is
    // exactly what each registry holds, each record once.
    let refused: Vec<_> = store
        .delivery_counts()
        .await
        .unwrap()
        .into_iter()
        .filter(|c| matches!(c.state, State::Rejected | State::Failed))
        .collect();
    assert!(refused.is_empty(), "{refused:?}");
    let counts = store.delivery_counts().await.unwrap();
    for registry in ["lifelong", "teacher", "enved"] {
        let delivered: i64 = counts
            .iter()
            .filter(|c| c.registry.as_str() == registry && c.state == State::Delivered)
            .map(|c| c.count)
            .sum();
        let credited = sim.credited(registry);
        assert_eq!(
            credited.len() as i64,
            delivered,
            "{registry}: credited vs delivered"
        );
        let mut seen = HashSet::new();
        for c in &credited {
            let r = &c.record;
            let key = (
                r["national_id"].as_str().unwrap().to_string(),
                r["course_code"].as_str().unwrap().to_string(),
                r["completed_on"].as_str().unwrap().to_string(),
            );
            assert!(seen.insert(key), "{registry}: a completion credited twice");
        }
    }

    // The hand-written cases: the right records with the right fields.
    type Key = (String, String, String);
    let by_person_course = |registry: &str| -> HashMap<Key, Vec<Value>> {
        let mut m: HashMap<Key, Vec<Value>> = HashMap::new();
        for c in sim.credited(registry) {
            let s = |f: &str| c.record[f].as_str().unwrap().to_string();
            m.entry((s("national_id"), s("course_code"), s("completed_on")))
                .or_default()
                .push(c.record);
        }
        m
    };
    let key =
        |person: u32, course: &str, date: &str| (id(person), course.to_string(), date.to_string());
    let credited: BTreeMap<&str, _> = ["lifelong", "teacher", "enved"]
        .into_iter()
        .map(|r| (r, by_person_course(r)))
        .collect();
    for (cmp, registry, want) in fixture::expected() {
        let (course, date) = fixture::course_and_date(cmp);
        let records = credited[registry]
            .get(&key(fixture::person_of(cmp), course, date))
            .cloned()
            .unwrap_or_default();
        match want {
            Ok(hours) => {
                assert!(
                    records.iter().any(|r| r["hours"] == hours),
                    "{cmp}/{registry}: not credited with {hours}: {records:?}"
                )
            }
            Err(reason) => assert!(
                records.is_empty(),
                "{cmp}/{registry} should be {reason}, yet it was credited"
            ),
        }
    }
    let ll = &credited["lifelong"][&key(1, "LL", "2026-11-20")][0];
    assert_eq!(
        (
            ll["learning_mode"].as_i64(),
            ll["digital_hours"].as_str(),
            ll["classroom_hours"].as_str(),
            ll["category_code"].as_str()
        ),
        (Some(3), Some("1.0"), Some("1.5"), Some("B2"))
    );
    // c2 was completed at 23:30 in Taipei, c4 at 17:30 UTC: the 20th and the 21st.
    assert!(
        credited["lifelong"].contains_key(&key(2, "ALL", "2026-11-21")),
        "17:30Z is the 21st in Taipei"
    );
    let t = &credited["teacher"][&key(1, "ALL", "2026-11-20")][0];
    assert_eq!(t["personnel_category"], "10");
    let e = &credited["enved"][&key(1, "ALL", "2026-11-20")][0];
    assert_eq!(
        (e["enved_account"].as_str(), e["service_unit_code"].as_str()),
        (Some("EE-1"), Some(fixture::UNIT))
    );

    // The support view gives every pair its state and, when not sent, why.
    let mut status: HashMap<(String, String), Value> = HashMap::new();
    for person in 1..=8 {
        for row in status_json(&env, &sim, &id(person)).await {
            let keys: Vec<&str> = row
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(keys.len(), 14, "{keys:?}");
            for k in [
                "delivery_id",
                "attempts",
                "completion_id",
                "course_code",
                "course_title",
                "completed_on",
                "registry",
                "state",
                "reason",
                "hours",
                "eligible_since",
                "receipt_id",
                "due_at",
                "sla",
            ] {
                assert!(keys.contains(&k), "missing {k}");
            }
            status.insert(
                (
                    row["completion_id"].as_str().unwrap().into(),
                    row["registry"].as_str().unwrap().into(),
                ),
                row,
            );
        }
    }
    for (cmp, registry, want) in fixture::expected() {
        let row = &status[&(cmp.to_string(), registry.to_string())];
        match want {
            Ok(hours) => {
                assert_eq!(
                    (
                        row["state"].as_str(),
                        row["hours"].as_str(),
                        row["reason"].is_null()
                    ),
                    (Some("delivered"), Some(hours), true),
                    "{cmp}/{registry}"
                );
                assert!(
                    row["receipt_id"].is_string() && row["eligible_since"].is_string(),
                    "{row}"
                );
                // Completed Friday 2026-11-20 (c4 on Saturday the 21st): the three
                // working days are Mon 23 to Wed 25 either way; delivered long after.
                let due = "2026-11-25T23:59:59+08:00";
                assert_eq!(
                    (row["due_at"].as_str(), row["sla"].as_str()),
                    (Some(due), Some("late")),
                    "{cmp}/{registry}"
                );
            }
            Err(reason) => {
                assert_eq!(
                    (row["state"].as_str(), row["reason"].as_str()),
                    (Some("ineligible"), Some(reason)),
                    "{cmp}/{registry}"
                );
                assert!(
                    row["due_at"].is_null() && row["sla"].is_null(),
                    "no promise for what is not sent: {row}"
                );
            }
        }
    }
}

async fn a_conversion_imported_later_sends_the_earlier_hours_and_nothing_else_again(
    backend: Backend,
) {
    let env = TestEnv::new(backend).await;
    let sim = simulator(Faults::default()).await;
    let store = env.store().await;
    import(&store, &[env.write("fixture.jsonl", &fixture::lines())]).await;
    let daemon = InProcessDaemon::start(env.config(&sim));
    wait_drained(&store, DRAIN).await;
    let before = status_json(&env, &sim, &id(3)).await;
    assert!(
        before.iter().all(|r| r["state"] == "ineligible"),
        "{before:?}"
    );
    let accepted_before: u64 = sim
        .stats()
        .registries
        .values()
        .map(|s| s.records_accepted)
        .sum();

    // Days later the conversion is approved, and the unit directory fixed.
    let converted_at = chrono::Utc::now();
    let later = env.write(
        "later.jsonl",
        &[
            fixture::account("a3", 3, "mygov", Some("civil_servant")),
            serde_json::json!({"type": "unit", "code": "999999999X", "name": "新設機關"})
                .to_string(),
        ],
    );
    import(&store, &[later]).await;
    wait_for(DRAIN, "the backfilled records", || async {
        sim.credited("lifelong")
            .iter()
            .any(|c| c.record["national_id"] == id(3).as_str())
            && sim
                .credited("enved")
                .iter()
                .any(|c| c.record["national_id"] == id(3).as_str())
    })
    .await;
    wait_drained(&store, DRAIN).await;
    daemon.stop().await;

    let after = status_json(&env, &sim, &id(3)).await;
    for row in &after {
        assert_eq!(row["state"], "delivered", "{row}");
        let since =
            chrono::DateTime::parse_from_rfc3339(row["eligible_since"].as_str().unwrap()).unwrap();
        assert!(
            since.timestamp() >= converted_at.timestamp() - 1,
            "eligible since the change, not the completion: {row}"
        );
        assert!(row["eligible_since"].as_str().unwrap().ends_with("+08:00"));
    }
    // Exactly the three new records went out; nothing delivered was resent.
    let stats = sim.stats();
    let accepted_after: u64 = stats.registries.values().map(|s| s.records_accepted).sum();
    assert_eq!(accepted_after - accepted_before, 3);
    assert_eq!(
        stats.registries.values().map(|s| s.duplicates).sum::<u64>(),
        0
    );
}

async fn a_registry_rejection_is_kept_with_its_code_and_not_retried(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let faults = Faults {
        reject_courses: vec!["LL".into()],
        ..Faults::default()
    };
    let sim = simulator(faults).await;
    let store = env.store().await;
    import(&store, &[env.write("fixture.jsonl", &fixture::lines())]).await;
    let daemon = InProcessDaemon::start(env.config(&sim));
    wait_drained(&store, DRAIN).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    daemon.stop().await;
    let rows = status_json(&env, &sim, &id(1)).await;
    let c2 = rows
        .iter()
        .find(|r| r["completion_id"] == "c2" && r["registry"] == "lifelong")
        .unwrap();
    assert_eq!(
        (c2["state"].as_str(), c2["reason"].as_str()),
        (Some("rejected"), Some("unknown_course"))
    );
    assert_eq!(
        sim.stats().registry("lifelong").rejected,
        1,
        "a rejected record is not sent again"
    );
}

backend_tests!(
    every_eligible_hour_reaches_its_registry_once_through_faults_and_every_other_pair_says_why,
    a_conversion_imported_later_sends_the_earlier_hours_and_nothing_else_again,
    a_registry_rejection_is_kept_with_its_code_and_not_retried,
);
