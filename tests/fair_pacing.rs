//! Corrections go one request each, uploads up to a batch a request: when
//! both are due, they take turns at the registry's pace, so a wave of
//! corrections does not hold new uploads back for minutes (the probe saw
//! 950 corrections grow the upload backlog from 7,198 to 9,980).

#[macro_use]
mod common;

use common::fixture::{account, completion, id};
use common::*;
use hoursync::simulator::Faults;
use serde_json::json;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);
const PERSONS: u32 = 120;

fn course(code: &str, hours: &str) -> String {
    json!({"type": "course", "course_code": code, "name": format!("課程 {code}"), "learning_mode": 1,
           "category_code": "A1", "digital_hours": hours, "classroom_hours": "0.0",
           "certified": {"lifelong": hours, "teacher": null, "enved": null}})
    .to_string()
}

/// Every person completed K1 (lifelong only).
fn first() -> Vec<String> {
    let mut lines = vec![
        json!({"type": "unit", "code": "U1", "name": "單位"}).to_string(),
        course("K1", "2.0"),
        course("K2", "2.0"),
    ];
    for n in 1..=PERSONS {
        lines.push(
            json!({"type": "person", "national_id": id(n), "personnel_category": "10",
                   "enved_account": null, "service_unit_code": "U1"})
            .to_string(),
        );
        lines.push(account(&format!("a{n}"), n, "ecpa", Some("civil_servant")));
        lines.push(completion(
            &format!("k1-{n}"),
            &format!("a{n}"),
            "K1",
            "2026-11-20T10:00:00+08:00",
            "completed",
        ));
    }
    lines
}

/// K1's hours change (a correction per person) and every person completes
/// K2 (an upload per person), in one import.
fn second() -> Vec<String> {
    let mut lines = vec![course("K1", "3.0")];
    for n in 1..=PERSONS {
        lines.push(completion(
            &format!("k2-{n}"),
            &format!("a{n}"),
            "K2",
            "2026-11-21T10:00:00+08:00",
            "completed",
        ));
    }
    lines
}

async fn uploads_are_not_held_back_by_a_wave_of_corrections(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let sim = simulator(Faults::default()).await;
    let store = env.store().await;
    let report = import(&store, &[env.write("first.jsonl", &first())]).await;
    assert_eq!(report.rejected, 0, "{:?}", report.errors);
    let mut daemon = env.spawn_daemon(&sim, 100, None);
    wait_drained(&store, LIMIT).await;
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();
    let lifelong = || sim.stats().registry("lifelong");
    assert_eq!(lifelong().records_accepted, u64::from(PERSONS));

    // 120 corrections and 120 uploads due at once, at 10 requests a second:
    // the corrections alone take 12 s of the registry's pace.
    let report = import(&store, &[env.write("second.jsonl", &second())]).await;
    assert_eq!(report.rejected, 0, "{:?}", report.errors);
    let mut daemon = env.spawn_daemon(&sim, 100, Some(10));
    let mut corrections_when_uploaded = None;
    wait_for(LIMIT, "the new completions to be uploaded", || {
        let stats = lifelong();
        let uploaded = stats.records_accepted == 2 * u64::from(PERSONS);
        if uploaded {
            corrections_when_uploaded = Some(stats.corrections);
        }
        async move { uploaded }
    })
    .await;
    let corrections = corrections_when_uploaded.unwrap();
    assert!(
        corrections < u64::from(PERSONS) / 2,
        "{corrections} of {PERSONS} corrections went out before the uploads were done"
    );
    wait_drained(&store, LIMIT).await;
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();
    let stats = lifelong();
    assert_eq!(stats.corrections, u64::from(PERSONS), "{stats:?}");
    assert_eq!(stats.rejected, 0, "{stats:?}");
    assert!(
        sim.credited("lifelong").iter().all(|c| {
            let k1 = c.record["course_code"] == "K1";
            c.hours == if k1 { "3.0" } else { "2.0" }
        }),
        "every K1 record corrected, every K2 record credited"
    );
}

backend_tests!(uploads_are_not_held_back_by_a_wave_of_corrections);
