//! The 3-working-day promise with a controlled clock: due times written by
//! the scan around midnight, holidays and long weekends, and SLA states
//! moving as time passes and records are delivered.

#[macro_use]
mod common;

use common::fixture::{self, id};
use common::*;
use hoursync::clock::{Clock, ManualClock};
use hoursync::domain::{NationalId, RegistryKind};
use hoursync::store::{Outcome, SlaFilter};

fn at(rfc3339: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .to_utc()
}

/// Learner 1 completing course `ALL` at each instant, as completions t0, t1, ….
fn completions(instants: &[&str]) -> Vec<String> {
    let mut lines = fixture::lines();
    for (i, when) in instants.iter().enumerate() {
        let course = format!("SLA{i}");
        lines.push(serde_json::json!({"type": "course", "course_code": course, "name": "n", "learning_mode": 1,
            "category_code": "A1", "digital_hours": "1.0", "classroom_hours": "0.0",
            "certified": {"lifelong": "1.0"}}).to_string());
        lines.push(fixture::completion(
            &format!("t{i}"),
            "a1",
            &course,
            when,
            "completed",
        ));
    }
    lines
}

async fn due_times_follow_the_office_calendar_around_midnight_holidays_and_long_weekends(
    backend: Backend,
) {
    let env = TestEnv::new(backend).await;
    let store = env.store().await;
    let cases = [
        // (completed at, due)
        ("2026-09-24T10:00:00+08:00", "2026-10-01T23:59:59+08:00"), // DOMAIN.md: Fri 25 and Mon 28 are holidays
        ("2026-11-23T23:59:59+08:00", "2026-11-26T23:59:59+08:00"), // just before midnight: Monday counts as day 0
        ("2026-11-24T00:00:00+08:00", "2026-11-27T23:59:59+08:00"), // just after: Tuesday is day 0
        ("2026-11-23T16:30:00Z", "2026-11-27T23:59:59+08:00"),      // 00:30 on the 24th in Taipei
        ("2026-02-17T09:00:00+08:00", "2026-02-25T23:59:59+08:00"), // in the Lunar New Year holidays
        ("2026-04-02T15:00:00+08:00", "2026-04-09T23:59:59+08:00"), // the day before a long weekend (Apr 3-6)
    ];
    let instants: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let clock = ManualClock::new(at("2026-11-24T12:00:00+08:00"));
    let file = env.write("d.jsonl", &completions(&instants));
    hoursync::intake::import_files(store.as_ref(), clock.as_ref(), &[file], Default::default())
        .await
        .unwrap();
    let report = hoursync::scan::scan_once(store.as_ref(), clock.as_ref())
        .await
        .unwrap();
    assert_eq!(report.calendar_fallbacks, 0);
    let nid = NationalId::parse(&id(1)).unwrap();
    let status = hoursync::status::person_status(
        store.as_ref(),
        &nid,
        clock.now_ms(),
        chrono::Duration::hours(24),
    )
    .await
    .unwrap();
    for (i, (completed, due)) in cases.iter().enumerate() {
        let line = status
            .iter()
            .find(|l| l.completion_id == format!("t{i}") && l.registry == RegistryKind::Lifelong)
            .unwrap();
        assert_eq!(line.due_at.as_deref(), Some(*due), "completed {completed}");
    }
}

async fn sla_states_move_from_pending_to_at_risk_to_breached_and_delivery_settles_them(
    backend: Backend,
) {
    let env = TestEnv::new(backend).await;
    let store = env.store().await;
    // Eligible Monday 2026-11-23 10:00: due at the end of Thursday the 26th.
    let clock = ManualClock::new(at("2026-11-23T10:00:00+08:00"));
    let file = env.write(
        "d.jsonl",
        &completions(&["2026-11-23T10:00:00+08:00", "2026-11-23T11:00:00+08:00"]),
    );
    hoursync::intake::import_files(store.as_ref(), clock.as_ref(), &[file], Default::default())
        .await
        .unwrap();
    hoursync::scan::scan_once(store.as_ref(), clock.as_ref())
        .await
        .unwrap();
    let lifelong = SlaFilter {
        registry: Some(RegistryKind::Lifelong),
        since_ms: Some(at("2026-11-23T00:00:00+08:00").timestamp_millis()),
    };
    let day = 24 * 3_600_000;
    let states = async |now: &str| {
        let counts = store
            .sla_counts(at(now).timestamp_millis(), day, lifelong)
            .await
            .unwrap();
        let get = |s: &str| {
            counts
                .iter()
                .filter(|c| c.sla == s)
                .map(|c| c.count)
                .sum::<i64>()
        };
        (
            get("pending"),
            get("at_risk"),
            get("breached"),
            get("on_time"),
            get("late"),
        )
    };
    assert_eq!(states("2026-11-24T12:00:00+08:00").await, (2, 0, 0, 0, 0));
    assert_eq!(
        states("2026-11-26T00:00:00+08:00").await,
        (0, 2, 0, 0, 0),
        "within 24 h of the due time"
    );
    assert_eq!(
        states("2026-11-26T23:59:59+08:00").await,
        (0, 2, 0, 0, 0),
        "the due second itself is still on time"
    );
    assert_eq!(states("2026-11-27T00:00:00+08:00").await, (0, 0, 2, 0, 0));
    let breached = store
        .breached(
            at("2026-11-27T00:00:00+08:00").timestamp_millis(),
            lifelong,
            10,
        )
        .await
        .unwrap();
    assert_eq!(
        breached
            .iter()
            .map(|b| b.completion_id.as_str())
            .collect::<Vec<_>>(),
        vec!["t0", "t1"]
    );

    // One is delivered on the due day, the other the next morning.
    for (when, course) in [
        ("2026-11-26T18:00:00+08:00", "SLA0"),
        ("2026-11-27T09:00:00+08:00", "SLA1"),
    ] {
        clock.set(at(when));
        let rows = store
            .claim(
                RegistryKind::Lifelong,
                "d",
                clock.now_ms(),
                clock.now_ms() + 1_000,
                100,
            )
            .await
            .unwrap();
        let mut outcomes = Vec::new();
        for c in rows {
            outcomes.push(
                if c.record.as_ref().is_some_and(|r| r.course_code == course) {
                    Outcome::Delivered {
                        id: c.id,
                        revision: 1,
                        receipt_id: format!("L-{}", c.id),
                        credited_tenths: 10,
                    }
                } else {
                    Outcome::Released {
                        id: c.id,
                        next_attempt_at: clock.now_ms(),
                        error: None,
                    }
                },
            );
        }
        store
            .record_outcomes("d", &outcomes, &[], clock.now_ms())
            .await
            .unwrap();
    }
    assert_eq!(states("2026-11-30T00:00:00+08:00").await, (0, 0, 0, 1, 1));
    assert!(
        store
            .breached(
                at("2026-11-30T00:00:00+08:00").timestamp_millis(),
                lifelong,
                10
            )
            .await
            .unwrap()
            .is_empty()
    );
}

backend_tests!(
    due_times_follow_the_office_calendar_around_midnight_holidays_and_long_weekends,
    sla_states_move_from_pending_to_at_risk_to_breached_and_delivery_settles_them,
);
