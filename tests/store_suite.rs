//! The store contract, one suite for every backend: leases, the lease
//! owner's exclusive right to finish a row, the retry schedule, and the
//! incremental scan. Time is a `ManualClock`, never the wall clock.

#[macro_use]
mod common;

use common::fixture;
use common::*;
use hoursync::clock::{Clock, ManualClock};
use hoursync::domain::RegistryKind;
use hoursync::scan::scan_once;
use hoursync::store::{Action, Attempt, DeliveryWrite, Outcome, Repair, SharedStore, State};
use std::time::Duration;

/// A store with the fixture imported and scanned at a fixed instant.
async fn scanned_store(env: &TestEnv) -> (SharedStore, std::sync::Arc<ManualClock>) {
    let clock = ManualClock::new(
        chrono::DateTime::parse_from_rfc3339("2026-11-25T09:00:00+08:00")
            .unwrap()
            .to_utc(),
    );
    let store = env.store().await;
    let file = env.write("fixture.jsonl", &fixture::lines());
    hoursync::intake::import_files(store.as_ref(), clock.as_ref(), &[file], Default::default())
        .await
        .unwrap();
    scan_once(store.as_ref(), clock.as_ref()).await.unwrap();
    (store, clock)
}

const L: RegistryKind = RegistryKind::Lifelong;

async fn a_claimed_row_is_not_claimed_again_until_its_lease_expires(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let (store, clock) = scanned_store(&env).await;
    let now = clock.now_ms();
    let a = store.claim(L, "a", now, now + 1_000, 100).await.unwrap();
    assert_eq!(a.len(), 4, "c1, c2, c4, c10 are due for lifelong");
    assert!(
        store
            .claim(L, "b", now + 500, now + 1_500, 100)
            .await
            .unwrap()
            .is_empty()
    );
    let b = store
        .claim(L, "b", now + 1_001, now + 2_000, 100)
        .await
        .unwrap();
    assert_eq!(
        b.iter().map(|c| c.id).collect::<Vec<_>>(),
        a.iter().map(|c| c.id).collect::<Vec<_>>()
    );
    assert_eq!(
        b[0].idempotency_key, a[0].idempotency_key,
        "a resend carries the same key"
    );
    let wire = |c: &hoursync::store::Claimed| {
        hoursync::registry::adapter::wire_record(c.record.as_ref().unwrap(), &c.idempotency_key)
    };
    assert_eq!(wire(&b[0]), wire(&a[0]), "and the same bytes");
}

/// A dispatcher that finds a row whose lease ended without an answer learns
/// so from its claim, and records it: the row is `retrying` (what the
/// earlier holder sent may have landed), the lost attempt counted. A row
/// whose holder answered is no takeover the next time it is claimed.
async fn a_row_taken_over_from_an_expired_lease_is_retrying_with_the_lost_attempt_counted(
    backend: Backend,
) {
    let env = TestEnv::new(backend).await;
    let (store, clock) = scanned_store(&env).await;
    let now = clock.now_ms();
    let a = store.claim(L, "a", now, now + 1_000, 100).await.unwrap();
    assert!(a.iter().all(|c| !c.taken_over), "nobody held them before");
    let b = store
        .claim(L, "b", now + 1_001, now + 2_000, 100)
        .await
        .unwrap();
    assert_eq!(b.len(), a.len());
    assert!(
        b.iter().all(|c| c.taken_over),
        "a's leases ended unanswered"
    );
    let ids: Vec<i64> = b.iter().map(|c| c.id).collect();
    assert_eq!(
        store.take_over("a", &ids, now + 1_002).await.unwrap(),
        vec![],
        "only the new holder records it"
    );
    let counted = store.take_over("b", &ids, now + 1_002).await.unwrap();
    assert_eq!(
        counted,
        ids.iter().map(|&id| (id, 1)).collect::<Vec<_>>(),
        "each row taken over, its lost attempt counted"
    );
    let row = store.delivery(ids[0]).await.unwrap().unwrap();
    assert_eq!((row.state, row.attempts), (State::Retrying, 1));
    assert_eq!(
        row.last_error.as_deref(),
        Some(hoursync::transition::LEASE_EXPIRED)
    );

    let released: Vec<Outcome> = ids
        .iter()
        .map(|&id| Outcome::Released {
            id,
            next_attempt_at: now + 1_003,
            error: None,
        })
        .collect();
    store
        .record_outcomes("b", &released, &[], now + 1_003)
        .await
        .unwrap();
    let c = store
        .claim(L, "c", now + 1_004, now + 3_000, 100)
        .await
        .unwrap();
    assert_eq!(c.len(), ids.len());
    assert!(c.iter().all(|c| !c.taken_over), "b answered for them");
}

async fn only_the_holder_of_the_lease_finishes_a_row(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let (store, clock) = scanned_store(&env).await;
    let now = clock.now_ms();
    let stale = store.claim(L, "old", now, now + 1_000, 1).await.unwrap();
    // The lease expired: another owner claims the row (behind rows that
    // were due before it).
    let fresh = store
        .claim(L, "new", now + 2_000, now + 3_000, 100)
        .await
        .unwrap();
    let id = stale[0].id;
    assert!(
        fresh.iter().any(|c| c.id == id),
        "the expired row is claimed again"
    );
    let late = Outcome::Failed {
        id,
        revision: 1,
        next_attempt_at: now + 9_000,
        error: "late answer".into(),
        give_up: false,
    };
    assert_eq!(
        store
            .record_outcomes("old", &[late], &[], now + 2_100)
            .await
            .unwrap(),
        0,
        "the stale owner writes nothing"
    );
    let done = Outcome::Delivered {
        id,
        revision: 1,
        receipt_id: "L-1".into(),
        credited_tenths: 20,
    };
    assert_eq!(
        store
            .record_outcomes("new", &[done], &[], now + 2_200)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .record_outcomes(
                "new",
                &[Outcome::Released {
                    id,
                    next_attempt_at: now,
                    error: None
                }],
                &[],
                now + 2_300
            )
            .await
            .unwrap(),
        0,
        "a finished row has no lease left to use"
    );
    assert_eq!(count_where(&store, |s| s == State::Delivered).await, 1);
}

async fn a_failed_attempt_waits_for_its_time_and_giving_up_leaves_it_for_a_person(
    backend: Backend,
) {
    let env = TestEnv::new(backend).await;
    let (store, clock) = scanned_store(&env).await;
    let now = clock.now_ms();
    let rows = store.claim(L, "a", now, now + 1_000, 2).await.unwrap();
    let outcomes = [
        Outcome::Failed {
            id: rows[0].id,
            revision: 1,
            next_attempt_at: now + 60_000,
            error: "HTTP 503".into(),
            give_up: false,
        },
        Outcome::Failed {
            id: rows[1].id,
            revision: 1,
            next_attempt_at: now,
            error: "HTTP 503".into(),
            give_up: true,
        },
    ];
    store
        .record_outcomes("a", &outcomes, &[], now)
        .await
        .unwrap();
    let again = store
        .claim(L, "a", now + 59_000, now + 70_000, 10)
        .await
        .unwrap();
    assert!(
        again
            .iter()
            .all(|c| c.id != rows[0].id && c.id != rows[1].id),
        "not before its time, and never once failed"
    );
    let later = store
        .claim(L, "b", now + 60_000, now + 70_000, 10)
        .await
        .unwrap();
    let retried = later
        .iter()
        .find(|c| c.id == rows[0].id)
        .expect("due again at its time");
    assert_eq!(retried.attempts, 1);
    assert_eq!(count_where(&store, |s| s == State::Failed).await, 1);
}

async fn a_scan_reads_only_what_changed_and_a_repeat_scan_writes_nothing(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let (store, clock) = scanned_store(&env).await;
    let again = scan_once(store.as_ref(), clock.as_ref()).await.unwrap();
    assert_eq!((again.completions, again.rows_written), (0, 0));
    clock.advance(Duration::from_secs(60));
    let change = env.write(
        "p.jsonl",
        &[fixture::account("a4", 4, "mygov", Some("civil_servant"))],
    );
    hoursync::intake::import_files(
        store.as_ref(),
        clock.as_ref(),
        &[change],
        Default::default(),
    )
    .await
    .unwrap();
    let report = scan_once(store.as_ref(), clock.as_ref()).await.unwrap();
    assert_eq!(
        report.completions, 1,
        "only c6, under the converted account"
    );
    assert_eq!(
        report.rows_written, 2,
        "lifelong and teacher become pending; enved was already"
    );
}

async fn a_changed_record_that_was_rejected_goes_back_to_pending_with_a_fresh_start(
    backend: Backend,
) {
    let env = TestEnv::new(backend).await;
    let (store, clock) = scanned_store(&env).await;
    let now = clock.now_ms();
    let rows = store
        .claim(RegistryKind::Enved, "a", now, now + 1_000, 100)
        .await
        .unwrap();
    let outcomes: Vec<_> = rows
        .iter()
        .map(|c| Outcome::Rejected {
            id: c.id,
            revision: 1,
            code: "unknown_unit".into(),
            message: "no such unit".into(),
        })
        .collect();
    store
        .record_outcomes("a", &outcomes, &[], now)
        .await
        .unwrap();
    assert_eq!(
        count_where(&store, |s| s == State::Rejected).await,
        rows.len() as i64
    );
    // Support fixes the unit name in the directory: no change to the records, nothing requeued.
    clock.advance(Duration::from_secs(60));
    let same = env.write(
        "u.jsonl",
        &[
            serde_json::json!({"type": "unit", "code": fixture::UNIT, "name": "新名稱"})
                .to_string(),
        ],
    );
    hoursync::intake::import_files(store.as_ref(), clock.as_ref(), &[same], Default::default())
        .await
        .unwrap();
    scan_once(store.as_ref(), clock.as_ref()).await.unwrap();
    assert_eq!(
        count_where(&store, |s| s == State::Rejected).await,
        rows.len() as i64
    );
    // The learner's env-ed account is corrected: that record is sent again.
    let fix = env.write("f.jsonl", &[serde_json::json!({"type": "person", "national_id": fixture::id(1), "personnel_category": "10",
        "enved_account": "EE-1-fixed", "service_unit_code": fixture::UNIT}).to_string()]);
    hoursync::intake::import_files(store.as_ref(), clock.as_ref(), &[fix], Default::default())
        .await
        .unwrap();
    scan_once(store.as_ref(), clock.as_ref()).await.unwrap();
    let again = store
        .claim(
            RegistryKind::Enved,
            "b",
            clock.now_ms(),
            clock.now_ms() + 1_000,
            100,
        )
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 0);
    assert!(matches!(
        &again[0].record.as_ref().unwrap().detail,
        hoursync::domain::RecordDetail::Enved { enved_account: Some(a), .. } if a == "EE-1-fixed"
    ));
}

async fn one_daemon_at_a_time_holds_a_lease_until_it_expires_or_is_released(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let store = env.store().await;
    let t = 1_000_000;
    assert!(store.try_lease("scan", "a", t, 1_000).await.unwrap());
    assert!(
        !store.try_lease("scan", "b", t + 500, 1_000).await.unwrap(),
        "held by a"
    );
    assert!(
        store.try_lease("scan", "a", t + 900, 1_000).await.unwrap(),
        "a renews"
    );
    assert!(
        !store
            .try_lease("scan", "b", t + 1_500, 1_000)
            .await
            .unwrap(),
        "the renewal counts"
    );
    assert!(
        store
            .try_lease("scan", "b", t + 2_000, 1_000)
            .await
            .unwrap(),
        "expired: b takes over"
    );
    store.release_lease("scan", "a").await.unwrap();
    assert!(
        !store
            .try_lease("scan", "a", t + 2_100, 1_000)
            .await
            .unwrap(),
        "a can not release b's lease"
    );
    store.release_lease("scan", "b").await.unwrap();
    assert!(
        store
            .try_lease("scan", "a", t + 2_200, 1_000)
            .await
            .unwrap()
    );
}

async fn request_slots_are_spaced_across_daemons_and_a_retry_after_holds_them_all(
    backend: Backend,
) {
    let env = TestEnv::new(backend).await;
    let store = env.store().await;
    let t = 1_000_000;
    // Two daemons asking at the same instant get slots one interval apart.
    let a = store.take_slot(L, t, 50).await.unwrap();
    let b = store.take_slot(L, t, 50).await.unwrap();
    let c = store.take_slot(L, t + 10, 50).await.unwrap();
    assert_eq!((a, b, c), (t, t + 50, t + 100));
    // Another registry has its own pace.
    assert_eq!(
        store.take_slot(RegistryKind::Teacher, t, 50).await.unwrap(),
        t
    );
    // An idle registry does not bank slots for a burst later.
    assert_eq!(
        store.take_slot(L, t + 10_000, 50).await.unwrap(),
        t + 10_000
    );
    // A Retry-After seen by one daemon holds every daemon back.
    store.hold_registry(L, t + 20_000).await.unwrap();
    assert_eq!(store.registry_hold(L).await.unwrap(), t + 20_000);
    assert_eq!(
        store.take_slot(L, t + 10_100, 50).await.unwrap(),
        t + 20_000
    );
    store.hold_registry(L, t + 15_000).await.unwrap();
    assert_eq!(
        store.registry_hold(L).await.unwrap(),
        t + 20_000,
        "a shorter hold does not shorten a longer one"
    );
    assert_eq!(store.registry_hold(RegistryKind::Enved).await.unwrap(), 0);
}

/// A record changed while its upload was in flight: the bytes in flight
/// stay the row's until the answer is known (the registry may hold them),
/// the answer is kept for what was sent (a receipt, the old hours), and the
/// next scan sends the change as a correction of that receipt. Attempts are
/// kept with the outcomes; a reconcile repair for a stale revision is
/// refused.
async fn an_answer_about_an_older_revision_is_recorded_as_such_and_the_new_one_corrects_it(
    backend: Backend,
) {
    let env = TestEnv::new(backend).await;
    let (store, clock) = scanned_store(&env).await;
    let now = clock.now_ms();
    let claimed = store.claim(L, "a", now, now + 60_000, 100).await.unwrap();
    assert!(
        claimed
            .iter()
            .all(|c| c.revision == 1 && c.action == Action::Upload)
    );
    // Course ALL's lifelong hours change while the batch is in flight.
    let fix = env.write(
        "fix.jsonl",
        &[serde_json::json!({"type": "course", "course_code": "ALL", "name": "淨零生活",
            "learning_mode": 1, "category_code": "A1", "digital_hours": "3.0", "classroom_hours": "0.0",
            "certified": {"lifelong": "3.0", "teacher": "2.0", "enved": "2.0"}})
        .to_string()],
    );
    clock.advance(Duration::from_secs(1));
    hoursync::intake::import_files(store.as_ref(), clock.as_ref(), &[fix], Default::default())
        .await
        .unwrap();
    scan_once(store.as_ref(), clock.as_ref()).await.unwrap();
    for c in &claimed {
        let d = store.delivery(c.id).await.unwrap().unwrap();
        assert_eq!(
            (d.state, d.hours_tenths),
            (State::Pending, Some(c.hours_tenths)),
            "in flight: what was sent stays until its answer is known"
        );
    }
    let now = clock.now_ms();
    let outcomes: Vec<Outcome> = claimed
        .iter()
        .map(|c| Outcome::Delivered {
            id: c.id,
            revision: c.revision,
            receipt_id: format!("L-{}", c.id),
            credited_tenths: c.hours_tenths,
        })
        .collect();
    let attempts: Vec<Attempt> = claimed
        .iter()
        .map(|c| Attempt {
            delivery_id: c.id,
            at: now,
            revision: c.revision,
            action: "upload".into(),
            request_id: "req-1".into(),
            http_status: Some(200),
            result: "accepted".into(),
            error: None,
        })
        .collect();
    store
        .record_outcomes("a", &outcomes, &attempts, now)
        .await
        .unwrap();
    assert!(
        store
            .list_deliveries(Some(State::Correcting), Some(L), 0, 100)
            .await
            .unwrap()
            .is_empty(),
        "credited as sent"
    );
    let rescanned = scan_once(store.as_ref(), clock.as_ref()).await.unwrap();
    assert!(
        rescanned.completions > 0,
        "the changed rows are judged again"
    );
    assert!(store.rescan_completions().await.unwrap().is_empty());
    let correcting = store
        .list_deliveries(Some(State::Correcting), Some(L), 0, 100)
        .await
        .unwrap();
    let delivered = store
        .list_deliveries(Some(State::Delivered), Some(L), 0, 100)
        .await
        .unwrap();
    assert!(!correcting.is_empty() && !delivered.is_empty());
    assert!(
        correcting.iter().all(|d| d.course_code == "ALL"),
        "{correcting:?}"
    );
    assert!(
        delivered.iter().all(|d| d.course_code != "ALL"),
        "{delivered:?}"
    );

    let again = store.claim(L, "b", now, now + 60_000, 100).await.unwrap();
    assert_eq!(again.len(), correcting.len());
    for c in &again {
        assert_eq!(
            (c.action, c.revision, c.hours_tenths),
            (Action::Correct, 2, 30)
        );
        assert_eq!(
            c.receipt_id,
            Some(format!("L-{}", c.id)),
            "the receipt just learnt"
        );
    }
    // A repair planned against revision 1 no longer applies.
    let stale = Repair::Requeued {
        id: again[0].id,
        revision: 1,
    };
    assert!(store.apply_repairs(&[stale], now).await.unwrap().is_empty());
    let done: Vec<Outcome> = again
        .iter()
        .map(|c| Outcome::Corrected {
            id: c.id,
            revision: 2,
            credited_tenths: 30,
        })
        .collect();
    store.record_outcomes("b", &done, &[], now).await.unwrap();
    let d = store.delivery(again[0].id).await.unwrap().unwrap();
    assert_eq!((d.state, d.hours_tenths), (State::Delivered, Some(30)));
    let history = store.attempts_of(again[0].id).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0].revision, history[0].result.as_str()),
        (1, "accepted")
    );
    assert_eq!(
        store.purge_attempts(now + 1).await.unwrap() as usize,
        claimed.len()
    );
    assert!(store.attempts_of(again[0].id).await.unwrap().is_empty());
}

/// The console lists what the gauges count: the at-risk list holds
/// exactly the records `sla_counts` calls at risk, apart from the breached
/// list, and "delivered today" counts deliveries from an instant on.
async fn the_at_risk_list_matches_the_sla_counts_and_deliveries_are_counted_from_an_instant(
    backend: Backend,
) {
    let env = TestEnv::new(backend).await;
    let (store, clock) = scanned_store(&env).await;
    let start = clock.now_ms();
    let all = hoursync::store::SlaFilter::default();
    let day = 86_400_000;
    let mut seen_at_risk = false;
    for later in [0, day, 2 * day, 3 * day, 5 * day, 10 * day] {
        let now = start + later;
        let counts = store.sla_counts(now, day, all).await.unwrap();
        let counted = |sla: &str| -> i64 {
            counts
                .iter()
                .filter(|c| c.sla == sla)
                .map(|c| c.count)
                .sum()
        };
        let at_risk = store.at_risk(now, day, all, 1000).await.unwrap();
        let breached = store.breached(now, all, 1000).await.unwrap();
        assert_eq!(at_risk.len() as i64, counted("at_risk"), "at +{later} ms");
        assert_eq!(breached.len() as i64, counted("breached"), "at +{later} ms");
        assert!(
            at_risk
                .iter()
                .all(|a| breached.iter().all(|b| b.id != a.id))
        );
        assert!(
            at_risk.windows(2).all(|w| w[0].due_at <= w[1].due_at),
            "oldest due first"
        );
        seen_at_risk |= !at_risk.is_empty();
    }
    assert!(
        seen_at_risk,
        "the fixture has records at risk at some instant"
    );

    assert!(store.delivered_since(start).await.unwrap().is_empty());
    let claimed = store
        .claim(L, "a", start, start + 1_000, 100)
        .await
        .unwrap();
    let outcomes: Vec<Outcome> = claimed
        .iter()
        .map(|c| Outcome::Delivered {
            id: c.id,
            revision: c.revision,
            receipt_id: format!("L-{}", c.id),
            credited_tenths: c.hours_tenths,
        })
        .collect();
    store
        .record_outcomes("a", &outcomes, &[], start + 10)
        .await
        .unwrap();
    assert_eq!(
        store.delivered_since(start).await.unwrap(),
        vec![(L, claimed.len() as i64)]
    );
    assert!(store.delivered_since(start + 11).await.unwrap().is_empty());
}

async fn a_decision_for_a_pair_written_outside_the_chunk_replaces_that_row(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let (store, clock) = scanned_store(&env).await;
    let row = store
        .list_deliveries(Some(State::Pending), Some(L), 0, 1)
        .await
        .unwrap()
        .remove(0);
    // A chunk that did not read the row (as when another scan wrote it
    // meanwhile) decides it: the write takes the row over, it is not refused.
    let write = DeliveryWrite {
        completion_id: row.completion_id.clone(),
        registry: L,
        national_id: row.national_id.clone(),
        course_code: row.course_code.clone(),
        state: State::Ineligible,
        reason: Some("category_not_covered".into()),
        hours_tenths: None,
        revision: 1,
        idempotency_key: None,
        record: None,
        eligible_since: None,
        due_at: None,
        next_attempt_at: None,
        reset_attempts: true,
        rescan: false,
    };
    let mut plan = |_rows| vec![write.clone()];
    let written = store
        .scan_chunk(&[], clock.now_ms(), &mut plan)
        .await
        .unwrap();
    assert_eq!(written, 1);
    let after = store
        .list_deliveries(Some(State::Ineligible), Some(L), 0, 100)
        .await
        .unwrap();
    let replaced = after
        .iter()
        .find(|d| d.completion_id == row.completion_id)
        .expect("the row took the decision");
    assert_eq!(replaced.id, row.id);
    assert_eq!(replaced.reason.as_deref(), Some("category_not_covered"));
}

backend_tests!(
    an_answer_about_an_older_revision_is_recorded_as_such_and_the_new_one_corrects_it,
    a_claimed_row_is_not_claimed_again_until_its_lease_expires,
    only_the_holder_of_the_lease_finishes_a_row,
    a_row_taken_over_from_an_expired_lease_is_retrying_with_the_lost_attempt_counted,
    a_failed_attempt_waits_for_its_time_and_giving_up_leaves_it_for_a_person,
    a_scan_reads_only_what_changed_and_a_repeat_scan_writes_nothing,
    a_changed_record_that_was_rejected_goes_back_to_pending_with_a_fresh_start,
    one_daemon_at_a_time_holds_a_lease_until_it_expires_or_is_released,
    request_slots_are_spaced_across_daemons_and_a_retry_after_holds_them_all,
    the_at_risk_list_matches_the_sla_counts_and_deliveries_are_counted_from_an_instant,
    a_decision_for_a_pair_written_outside_the_chunk_replaces_that_row,
);
