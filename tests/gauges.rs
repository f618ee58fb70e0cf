//! The gauges ops watch move as deliveries move through their states, with
//! a controlled clock. One test in its own binary: the metrics recorder is
//! global to the process.

mod common;

use common::fixture;
use common::*;
use hoursync::clock::{ManualClock, SharedClock};
use hoursync::domain::RegistryKind;
use hoursync::store::Outcome;

/// The value of one series in the rendered metrics.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .unwrap_or_else(|| panic!("no series {series}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn backlog_sla_and_age_gauges_follow_the_deliveries() {
    let handle = hoursync::metrics::install().unwrap();
    let env = TestEnv::new(Backend::Sqlite).await;
    let store = env.store().await;
    // Completed Friday 2026-11-20 10:15 (fixture): due at the end of Wednesday the 25th.
    let manual = ManualClock::new(
        chrono::DateTime::parse_from_rfc3339("2026-11-20T12:00:00+08:00")
            .unwrap()
            .to_utc(),
    );
    let clock: SharedClock = manual.clone();
    let file = env.write("fixture.jsonl", &fixture::lines());
    hoursync::intake::import_files(store.as_ref(), clock.as_ref(), &[file], Default::default())
        .await
        .unwrap();
    hoursync::scan::scan_once(store.as_ref(), clock.as_ref())
        .await
        .unwrap();
    let day = 24 * 3_600_000;

    hoursync::monitor::sweep(&store, &clock, day).await.unwrap();
    let m = handle.render();
    assert_eq!(
        value(
            &m,
            r#"hoursync_backlog{registry="lifelong",state="pending"}"#
        ),
        4.0
    );
    assert_eq!(
        value(
            &m,
            r#"hoursync_sla_records{registry="lifelong",state="at_risk"}"#
        ),
        0.0
    );
    assert_eq!(
        value(
            &m,
            r#"hoursync_oldest_undelivered_age_seconds{registry="lifelong"}"#
        ),
        6300.0,
        "since 10:15"
    );
    assert_eq!(
        value(
            &m,
            r#"hoursync_ineligible_records{registry="enved",reason="social_login"}"#
        ),
        2.0
    );

    // Wednesday afternoon: within 24 h of the due time.
    manual.set(
        chrono::DateTime::parse_from_rfc3339("2026-11-25T12:00:00+08:00")
            .unwrap()
            .to_utc(),
    );
    hoursync::monitor::sweep(&store, &clock, day).await.unwrap();
    assert_eq!(
        value(
            &handle.render(),
            r#"hoursync_sla_records{registry="lifelong",state="at_risk"}"#
        ),
        4.0
    );

    // Two are delivered, one fails for good; Thursday the rest is breached.
    let now = clock.now_ms();
    let rows = store
        .claim(RegistryKind::Lifelong, "t", now, now + 1_000, 3)
        .await
        .unwrap();
    let outcomes = vec![
        Outcome::Delivered {
            id: rows[0].id,
            revision: 1,
            receipt_id: "L-1".into(),
            credited_tenths: 20,
        },
        Outcome::Delivered {
            id: rows[1].id,
            revision: 1,
            receipt_id: "L-2".into(),
            credited_tenths: 25,
        },
        Outcome::Failed {
            id: rows[2].id,
            revision: 1,
            next_attempt_at: now,
            error: "HTTP 503".into(),
            give_up: true,
        },
    ];
    store
        .record_outcomes("t", &outcomes, &[], now)
        .await
        .unwrap();
    manual.set(
        chrono::DateTime::parse_from_rfc3339("2026-11-26T00:00:01+08:00")
            .unwrap()
            .to_utc(),
    );
    hoursync::monitor::sweep(&store, &clock, day).await.unwrap();
    let m = handle.render();
    assert_eq!(
        value(
            &m,
            r#"hoursync_backlog{registry="lifelong",state="pending"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            r#"hoursync_backlog{registry="lifelong",state="failed"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            r#"hoursync_sla_records{registry="lifelong",state="breached"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &m,
            r#"hoursync_sla_records{registry="lifelong",state="at_risk"}"#
        ),
        0.0
    );
    assert!(
        value(&m, "hoursync_calendar_covered_until_timestamp_seconds") > 1.79e9,
        "2026-12-31 is loaded"
    );
}
