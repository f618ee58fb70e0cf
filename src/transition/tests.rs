//! Every state × event, then the promises of the machine over arbitrary
//! rows and events.

use super::*;
use crate::domain::{CompletionStatus, RecordFacts};
use crate::eligibility::evaluate;
use crate::registry::adapter::record_facts;
use crate::scan::facts;
use crate::store::Record;
use crate::transition::fixture::{NOW, h, scan_row};
use proptest::prelude::*;

const ME: &str = "me";
const L: RegistryKind = RegistryKind::Lifelong;

/// The key revision `revision` of the fixture's lifelong row is sent under.
fn key(revision: i64) -> String {
    crate::registry::adapter::idempotency_key("c1", L, revision)
}

/// The record of a lifelong row carrying `tenths` hours, all online.
fn record(tenths: u32) -> RecordFacts {
    record_facts(L, &scan_row(tenths, tenths), h(tenths))
}

/// Every state, in the order of the table's columns.
const STATES: [State; 9] = [
    State::Ineligible,
    State::Pending,
    State::Retrying,
    State::Delivered,
    State::Rejected,
    State::Failed,
    State::Correcting,
    State::Withdrawing,
    State::Withdrawn,
];

fn code(s: State) -> char {
    match s {
        State::Ineligible => 'I',
        State::Pending => 'P',
        State::Retrying => 'R',
        State::Delivered => 'D',
        State::Rejected => 'J',
        State::Failed => 'F',
        State::Correcting => 'C',
        State::Withdrawing => 'W',
        State::Withdrawn => 'N',
    }
}

/// A row at revision 2 carrying a record of 3.0 hours (the registry
/// credits 2.0 once it credits it), leased to [`ME`] or to no one.
fn row(state: State, leased: bool) -> DeliveryRow {
    DeliveryRow {
        id: 7,
        registry: L,
        state,
        reason: None,
        revision: 2,
        hours_tenths: Some(30),
        credited_tenths: Some(20),
        receipt_id: Some("R-1".into()),
        delivered_at: Some(NOW - 10_000),
        attempts: 3,
        next_attempt_at: Some(NOW + 60_000),
        last_error: Some("earlier".into()),
        lease_owner: leased.then(|| ME.to_string()),
        lease_until: leased.then_some(NOW + 60_000),
        idempotency_key: Some(key(2)),
        record: Record::Facts(record(30)),
        eligible_since: Some(NOW - 86_400_000),
        rescan: false,
    }
}

fn delivered(revision: i64) -> Outcome {
    Outcome::Delivered {
        id: 7,
        revision,
        receipt_id: "R-9".into(),
        credited_tenths: 30,
    }
}

fn failed(revision: i64, give_up: bool) -> Outcome {
    Outcome::Failed {
        id: 7,
        revision,
        next_attempt_at: NOW + 5_000,
        error: "503".into(),
        give_up,
    }
}

fn rejected(revision: i64) -> Outcome {
    Outcome::Rejected {
        id: 7,
        revision,
        code: "invalid_hours".into(),
        message: "no".into(),
    }
}

fn corrected(revision: i64) -> Outcome {
    Outcome::Corrected {
        id: 7,
        revision,
        credited_tenths: 30,
    }
}

/// The state each column's row is in after the event; `.`: nothing written.
fn after(event: Event, leased: bool, record: bool) -> String {
    STATES
        .iter()
        .map(|&s| {
            let mut r = row(s, leased);
            if !record {
                r.record = Record::None;
            }
            transition(Some(&r), event, NOW).map_or('.', |n| code(n.state))
        })
        .collect()
}

/// The scan's judgement of `facts` for the lifelong portal.
fn judged(facts: &ScanRow) -> Event<'_> {
    Event::Judged {
        facts,
        registry: L,
        decision: evaluate(&self::facts(facts, L), L),
    }
}

#[test]
fn every_state_meets_every_event_as_the_table_says() {
    let released = Outcome::Released {
        id: 7,
        next_attempt_at: NOW + 1_000,
        error: None,
    };
    let found = Repair::Found {
        id: 7,
        revision: 2,
        receipt_id: "R-5".into(),
        credited_tenths: 30,
    };
    let fix = Repair::Corrected {
        id: 7,
        revision: 2,
        new_revision: 3,
        idempotency_key: "hs1-rev3".into(),
        credited_tenths: 10,
    };
    /// An event the table owns.
    enum Ev {
        Answer(&'static str, Outcome),
        Requeue,
        Repair(Repair),
        Expired(&'static str),
        Judge(Box<ScanRow>),
    }
    let mut revoked = scan_row(30, 30);
    revoked.completion.status = CompletionStatus::Revoked;
    let answer = |outcome| Ev::Answer(ME, outcome);
    let judge = |facts| Ev::Judge(Box::new(facts));
    #[rustfmt::skip]
    let table: Vec<(&str, Ev, bool, bool, &str)> = vec![
        // what happened                          event                                 leased record  IPRDJFCWN
        ("accepted, this revision",               answer(delivered(2)),                true,  true,  "DDDDDDDWD"),
        ("accepted, an older revision",           answer(delivered(1)),                true,  true,  "CCCCCCCWC"),
        ("refused, this revision",                answer(rejected(2)),                 true,  true,  "IJJDJFCWN"),
        ("refused, an older revision",            answer(rejected(1)),                 true,  true,  "IPRDJFCWN"),
        ("unknown outcome",                       answer(failed(2, false)),            true,  true,  "IRRDJFCWN"),
        ("unknown outcome, retries spent",        answer(failed(2, true)),             true,  true,  "IFFDJFCWN"),
        ("unknown outcome, an older revision",    answer(failed(1, true)),             true,  true,  "IPRDJFCWN"),
        ("not sent (429, auth, shutdown)",        answer(released),                    true,  true,  "IPRDJFCWN"),
        ("correction landed",                     answer(corrected(2)),                true,  true,  "IPRDJFDWN"),
        ("correction of an older revision",       answer(corrected(1)),                true,  true,  "IPRDJFCWN"),
        ("withdrawn, reinstated meanwhile",       answer(Outcome::Withdrawn { id: 7 }), true, true,  "IPRDJFCPN"),
        ("withdrawn",                             answer(Outcome::Withdrawn { id: 7 }), true, false, "IPRDJFCNN"),
        ("correction's receipt unknown",          answer(Outcome::Lost { id: 7 }),     true,  true,  "......P.."),
        ("answer after the lease was lost",       Ev::Answer("other", delivered(2)), true, true, "........."),
        ("requeued by a person",                  Ev::Requeue,                       false, true,  ".PPPPP..."),
        ("requeued while in flight",              Ev::Requeue,                       true,  true,  "........."),
        ("lookup: the registry lacks it",         Ev::Repair(Repair::Requeued { id: 7, revision: 2 }), false, true, "..PP....."),
        ("lookup: an unknown outcome landed",     Ev::Repair(found.clone()),              false, true,  "..D......"),
        ("lookup: other hours at the registry",   Ev::Repair(fix.clone()),                false, true,  "...C....."),
        ("lookup about an older revision",        Ev::Repair(Repair::Requeued { id: 7, revision: 1 }), false, true, "........."),
        ("lookup while in flight",                Ev::Repair(found.clone()),              true,  true,  "........."),
        ("taken over from an expired lease",      Ev::Expired(ME),                   true,  true,  ".RR...CW."),
        ("taken over, but by another since",      Ev::Expired("other"),              true,  true,  "........."),
        ("judged: its facts, 2.0 h credited",     judge(scan_row(30, 30)),           false, true,  "P..C....P"),
        ("judged: new hours",                     judge(scan_row(40, 40)),           false, true,  "PPRCPRCWP"),
        ("judged: new hours, sent, unanswered",   judge(scan_row(40, 40)),           true,  true,  "PPRCJRCWP"),
        ("judged: revoked",                       judge(revoked),                    false, true,  "IIWWIWWWN"),
    ];
    for (what, ev, leased, record, want) in &table {
        let event = match ev {
            Ev::Answer(owner, outcome) => Event::Answered { owner, outcome },
            Ev::Requeue => Event::Requeue,
            Ev::Repair(repair) => Event::Repaired(repair),
            Ev::Expired(taken_by) => Event::LeaseExpired { taken_by },
            Ev::Judge(facts) => judged(facts),
        };
        assert_eq!(after(event, *leased, *record), *want, "{what}");
    }
}

#[test]
fn an_upload_accepted_after_the_scan_moved_on_keeps_its_receipt_and_corrects_it_now() {
    let r = row(State::Pending, true);
    let outcome = delivered(1);
    let n = transition(
        Some(&r),
        Event::Answered {
            owner: ME,
            outcome: &outcome,
        },
        NOW,
    )
    .unwrap();
    assert_eq!((n.state, n.revision), (State::Correcting, 2));
    assert_eq!(n.receipt_id.as_deref(), Some("R-9"));
    assert_eq!((n.next_attempt_at, n.attempts), (Some(NOW), 0));
    assert_eq!((n.lease_owner, n.lease_until), (None, None));
    assert_eq!((n.record, n.idempotency_key), (r.record, r.idempotency_key));
}

#[test]
fn a_reconcile_correction_carries_the_new_revision_and_what_the_registry_holds() {
    let fix = Repair::Corrected {
        id: 7,
        revision: 2,
        new_revision: 3,
        idempotency_key: "hs1-rev3".into(),
        credited_tenths: 10,
    };
    let n = transition(
        Some(&row(State::Delivered, false)),
        Event::Repaired(&fix),
        NOW,
    )
    .unwrap();
    assert_eq!(
        (n.revision, n.idempotency_key.as_deref(), n.record.is_held()),
        (3, Some("hs1-rev3"), true)
    );
    assert_eq!(
        (n.credited_tenths, n.receipt_id.as_deref()),
        (Some(10), Some("R-1"))
    );
}

#[test]
fn a_row_taken_over_from_an_expired_lease_counts_the_lost_attempt_and_keeps_its_new_lease_and_key()
{
    let r = row(State::Pending, true);
    let n = transition(Some(&r), Event::LeaseExpired { taken_by: ME }, NOW).unwrap();
    assert_eq!(n.state, State::Retrying, "the outcome is unknown");
    assert_eq!(
        (n.attempts, n.last_error.as_deref()),
        (r.attempts + 1, Some(LEASE_EXPIRED))
    );
    assert_eq!(
        (
            &n.lease_owner,
            n.lease_until,
            n.revision,
            &n.idempotency_key
        ),
        (
            &r.lease_owner,
            r.lease_until,
            r.revision,
            &r.idempotency_key
        ),
        "resent now by its new holder, under the same key"
    );
}

#[test]
fn a_lookup_that_finds_the_record_missing_frees_an_expired_lease_so_the_resend_is_no_takeover() {
    let mut r = row(State::Retrying, true);
    r.lease_until = Some(NOW - 1);
    let lacks = Repair::Requeued { id: 7, revision: 2 };
    let n = transition(Some(&r), Event::Repaired(&lacks), NOW).unwrap();
    assert_eq!((n.state, n.attempts), (State::Pending, 0));
    assert_eq!((n.lease_owner, n.lease_until), (None, None));
}

#[test]
fn a_requeue_starts_the_record_over_under_its_key() {
    let n = transition(Some(&row(State::Failed, false)), Event::Requeue, NOW).unwrap();
    assert_eq!(
        (n.state, n.attempts, n.next_attempt_at),
        (State::Pending, 0, Some(NOW))
    );
    assert_eq!(
        (n.receipt_id, n.credited_tenths, n.last_error),
        (None, None, None)
    );
    assert_eq!(
        (n.revision, n.idempotency_key.as_deref()),
        (2, Some(key(2).as_str()))
    );
}

fn any_state() -> impl Strategy<Value = State> {
    proptest::sample::select(STATES.to_vec())
}

prop_compose! {
    fn any_row()(
        state in any_state(),
        revision in 1i64..4,
        owner in proptest::option::of(proptest::sample::select(vec![ME, "other"])),
        lease_in in -5_000i64..5_000,
        record in any::<bool>(),
        receipt in any::<bool>(),
    ) -> DeliveryRow {
        DeliveryRow {
            revision,
            lease_owner: owner.map(String::from),
            lease_until: owner.map(|_| NOW + lease_in),
            record: if record { Record::Facts(self::record(30)) } else { Record::None },
            idempotency_key: Some(key(revision)),
            receipt_id: receipt.then(|| "R-1".to_string()),
            ..row(state, false)
        }
    }
}

prop_compose! {
    /// A lifelong completion as a scan may find it: any hours and split,
    /// revoked, decertified or no longer a civil servant's, or not.
    fn any_facts()(
        tenths in 1u32..60,
        digital_percent in 0u32..=100,
        revoked in any::<bool>(),
        decertified in any::<bool>(),
        converted in any::<bool>(),
    ) -> ScanRow {
        let mut f = scan_row(tenths, tenths * digital_percent / 100);
        if revoked {
            f.completion.status = CompletionStatus::Revoked;
        }
        if decertified {
            f.course.certified.clear();
        }
        if converted {
            f.account.identity = Some(crate::domain::Identity::NaturalPerson);
        }
        f
    }
}

fn any_outcome() -> impl Strategy<Value = Outcome> {
    (0usize..7, 1i64..4, any::<bool>()).prop_map(|(kind, revision, flag)| match kind {
        0 => delivered(revision),
        1 => rejected(revision),
        2 => failed(revision, flag),
        3 => Outcome::Released {
            id: 7,
            next_attempt_at: NOW + 1_000,
            error: flag.then(|| "429".to_string()),
        },
        4 => corrected(revision),
        5 => Outcome::Withdrawn { id: 7 },
        _ => Outcome::Lost { id: 7 },
    })
}

fn any_repair() -> impl Strategy<Value = Repair> {
    (0usize..3, 1i64..4).prop_map(|(kind, revision)| match kind {
        0 => Repair::Requeued { id: 7, revision },
        1 => Repair::Found {
            id: 7,
            revision,
            receipt_id: "R-5".into(),
            credited_tenths: 30,
        },
        _ => Repair::Corrected {
            id: 7,
            revision,
            new_revision: revision + 1,
            idempotency_key: format!("hs1-rev{}", revision + 1),
            credited_tenths: 10,
        },
    })
}

/// The revision an answer was about.
fn answered_revision(o: &Outcome) -> Option<i64> {
    match o {
        Outcome::Delivered { revision, .. }
        | Outcome::Rejected { revision, .. }
        | Outcome::Failed { revision, .. }
        | Outcome::Corrected { revision, .. } => Some(*revision),
        _ => None,
    }
}

proptest! {
    #[test]
    fn a_delivered_record_is_sent_again_only_under_another_revision(
        mut r in any_row(), o in any_outcome(), owner in proptest::sample::select(vec![ME, "other"]),
        f in any_facts(),
    ) {
        r.state = State::Delivered;
        if let Some(n) = transition(Some(&r), Event::Answered { owner, outcome: &o }, NOW)
            && n.state.is_due_work()
        {
            prop_assert_eq!(n.state, State::Correcting);
            prop_assert_ne!(Some(n.revision), answered_revision(&o), "{:?}", o);
        }
        prop_assert_eq!(transition(Some(&r), Event::LeaseExpired { taken_by: owner }, NOW), None);
        if let Some(n) = transition(Some(&r), judged(&f), NOW)
            && matches!(n.state, State::Pending | State::Retrying | State::Correcting)
        {
            prop_assert!(n.revision > r.revision, "{:?} resent at {}", n.state, n.revision);
        }
    }

    #[test]
    fn an_answer_about_an_older_revision_never_overwrites_the_newer_one(
        r in any_row(), o in any_outcome(),
    ) {
        let Some(about) = answered_revision(&o) else { return Ok(()) };
        prop_assume!(about < r.revision);
        if let Some(n) = transition(Some(&r), Event::Answered { owner: ME, outcome: &o }, NOW) {
            prop_assert_eq!(n.revision, r.revision);
            prop_assert_eq!(&n.record, &r.record);
            prop_assert_eq!(&n.idempotency_key, &r.idempotency_key);
            prop_assert!(
                n.state == r.state || n.state == State::Correcting,
                "{:?} became {:?} on an old answer {:?}", r.state, n.state, o
            );
            if !matches!(o, Outcome::Delivered { .. }) {
                prop_assert_eq!(n.next_attempt_at, r.next_attempt_at, "the newer revision's schedule stands");
            }
        }
    }

    #[test]
    fn a_correction_or_withdrawal_is_never_given_up(
        mut r in any_row(), o in any_outcome(), repair in any_repair(), correcting in any::<bool>(),
        f in any_facts(),
    ) {
        r.state = if correcting { State::Correcting } else { State::Withdrawing };
        for event in [
            Event::Answered { owner: ME, outcome: &o },
            Event::Requeue,
            Event::Repaired(&repair),
            Event::LeaseExpired { taken_by: ME },
            judged(&f),
        ] {
            if let Some(n) = transition(Some(&r), event, NOW) {
                prop_assert!(
                    !matches!(n.state, State::Failed | State::Rejected | State::Ineligible),
                    "{:?} became {:?} on {:?}", r.state, n.state, event
                );
            }
        }
    }

    #[test]
    fn only_the_lease_holder_records_an_answer_and_recording_it_frees_the_row(
        r in any_row(), o in any_outcome(), owner in proptest::sample::select(vec![ME, "other"]),
    ) {
        match transition(Some(&r), Event::Answered { owner, outcome: &o }, NOW) {
            Some(n) => {
                prop_assert_eq!(r.lease_owner.as_deref(), Some(owner));
                prop_assert_eq!((n.lease_owner, n.lease_until), (None, None));
            }
            None => {
                let lost = matches!(o, Outcome::Lost { .. });
                prop_assert!(r.lease_owner.as_deref() != Some(owner) || lost);
            }
        }
    }

    #[test]
    fn no_requeue_repair_or_takeover_touches_a_row_in_flight(
        mut r in any_row(), repair in any_repair(),
    ) {
        r.lease_owner = Some("other".into());
        r.lease_until = Some(NOW + 1);
        prop_assert_eq!(transition(Some(&r), Event::Requeue, NOW), None);
        prop_assert_eq!(transition(Some(&r), Event::Repaired(&repair), NOW), None);
        prop_assert_eq!(transition(Some(&r), Event::LeaseExpired { taken_by: ME }, NOW), None);
    }

    #[test]
    fn a_judgement_leaves_the_lease_the_receipt_and_the_credit_alone(
        r in any_row(), f in any_facts(),
    ) {
        if let Some(n) = transition(Some(&r), judged(&f), NOW) {
            prop_assert_eq!((n.id, n.registry, &n.lease_owner, n.lease_until), (r.id, r.registry, &r.lease_owner, r.lease_until));
            prop_assert_eq!((&n.receipt_id, n.credited_tenths, n.delivered_at), (&r.receipt_id, r.credited_tenths, r.delivered_at));
        }
    }

    #[test]
    fn while_an_upload_s_outcome_is_unknown_the_facts_sent_under_its_key_stay(
        mut r in any_row(), f in any_facts(), retrying in any::<bool>(), given_up in any::<bool>(),
    ) {
        r.state = match (retrying, given_up) {
            (true, _) => State::Retrying,
            (false, true) => State::Failed,
            (false, false) => State::Pending,
        };
        prop_assume!(retrying || given_up || r.lease_owner.is_some());
        if let Some(n) = transition(Some(&r), judged(&f), NOW)
            && n.revision == r.revision
            && n.record.is_held()
        {
            prop_assert_eq!(&n.idempotency_key, &r.idempotency_key);
            prop_assert_eq!((&n.record, n.hours_tenths), (&r.record, r.hours_tenths));
        }
    }
}
