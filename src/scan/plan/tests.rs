//! The transitions of a delivery row, one decision at a time.

use super::*;
use crate::domain::{CompletionStatus, Identity};
use crate::registry::adapter::idempotency_key;
use crate::store::State;
use crate::transition::fixture::{NOW, h, scan_row as row};

const L: RegistryKind = RegistryKind::Lifelong;

/// The row as stored after `w` was written, tried once and, for a
/// credited state, credited with `credited` tenths.
fn stored(w: &DeliveryWrite, state: State, credited: Option<u32>) -> DeliveryRow {
    DeliveryRow {
        id: 7,
        registry: w.registry,
        state,
        reason: w.reason.clone(),
        revision: w.revision,
        hours_tenths: w.hours_tenths,
        credited_tenths: credited,
        receipt_id: credited.map(|_| "R-1".into()),
        delivered_at: credited.map(|_| NOW - 5_000),
        attempts: 1,
        next_attempt_at: w.next_attempt_at,
        last_error: Some("an earlier answer".into()),
        lease_owner: None,
        lease_until: None,
        idempotency_key: w.idempotency_key.clone(),
        record: w.record.clone().into(),
        eligible_since: w.eligible_since,
        rescan: w.rescan,
    }
}

/// `e` taken by a dispatcher that has recorded no answer (in flight, or
/// its sender died and the lease expired).
fn sent_unanswered(e: DeliveryRow) -> DeliveryRow {
    DeliveryRow {
        lease_owner: Some("daemon-1".into()),
        lease_until: Some(NOW - 1_000),
        ..e
    }
}

fn eligible(r: &ScanRow) -> Decision {
    evaluate(&facts(r, L), L)
}

fn plan(r: &ScanRow, e: Option<&DeliveryRow>) -> Option<DeliveryWrite> {
    plan_pair(r, L, eligible(r), e, NOW)
}

/// A delivered row of `r` at revision 1.
fn delivered(r: &ScanRow) -> DeliveryRow {
    let w = plan(r, None).unwrap();
    let t = w.hours_tenths;
    stored(&w, State::Delivered, t)
}

#[test]
fn a_delivered_record_is_left_alone_while_its_hours_stand() {
    let r = row(20, 20);
    assert_eq!(plan(&r, Some(&delivered(&r))), None);
}

#[test]
fn new_hours_make_a_correction_under_the_next_revision_with_the_clock_unchanged() {
    let before = row(20, 20);
    let e = delivered(&before);
    let w = plan(&row(35, 35), Some(&e)).unwrap();
    assert_eq!(w.state, State::Correcting);
    assert_eq!(w.revision, 2);
    assert_eq!(w.hours_tenths, Some(35));
    assert_eq!(
        w.idempotency_key.as_deref(),
        Some(idempotency_key("c1", L, 2).as_str())
    );
    assert_eq!(w.record.as_ref().map(|r| r.hours), Some(h(35)));
    assert_eq!(
        w.eligible_since, e.eligible_since,
        "the promise was kept at the first credit"
    );
    assert!(w.reset_attempts);
}

#[test]
fn a_changed_lifelong_split_with_the_same_total_is_a_correction_too() {
    let e = delivered(&row(30, 10));
    let w = plan(&row(30, 20), Some(&e)).unwrap();
    assert_eq!((w.state, w.revision), (State::Correcting, 2));
}

#[test]
fn a_correction_changed_again_before_it_landed_gets_one_more_revision() {
    let e = delivered(&row(20, 20));
    let first = plan(&row(35, 35), Some(&e)).unwrap();
    let correcting = stored(&first, State::Correcting, Some(20));
    assert_eq!(plan(&row(35, 35), Some(&correcting)), None, "nothing new");
    let second = plan(&row(40, 40), Some(&correcting)).unwrap();
    assert_eq!((second.state, second.revision), (State::Correcting, 3));
    let back = plan(&row(20, 20), Some(&correcting)).unwrap();
    assert_eq!(
        (back.state, back.revision, back.hours_tenths),
        (State::Correcting, 3, Some(20)),
        "back to the credited figure: the PUT that may have landed is undone"
    );
}

#[test]
fn revoked_or_decertified_credited_records_are_withdrawn_other_reasons_leave_them() {
    let r = row(20, 20);
    let e = delivered(&r);
    let mut revoked = r.clone();
    revoked.completion.status = CompletionStatus::Revoked;
    let w = plan(&revoked, Some(&e)).unwrap();
    assert_eq!(w.state, State::Withdrawing);
    assert_eq!(w.reason.as_deref(), Some("course_not_completed"));
    assert_eq!(
        (w.record.as_ref(), w.eligible_since, w.due_at),
        (None, None, None)
    );
    assert_eq!(w.next_attempt_at, Some(NOW));

    let mut decertified = r.clone();
    decertified.course.certified.remove(&RegistryKind::Lifelong);
    assert_eq!(
        plan(&decertified, Some(&e)).unwrap().state,
        State::Withdrawing
    );

    let mut converted_back = r.clone();
    converted_back.account.identity = Some(Identity::NaturalPerson);
    assert_eq!(
        plan(&converted_back, Some(&e)),
        None,
        "hours earned while eligible stay"
    );
}

#[test]
fn a_reinstated_withdrawal_is_sent_again_as_a_new_revision() {
    let r = row(20, 20);
    let mut revoked = r.clone();
    revoked.completion.status = CompletionStatus::Revoked;
    let withdrawing = plan(&revoked, Some(&delivered(&r))).unwrap();
    let withdrawn = stored(&withdrawing, State::Withdrawn, None);
    assert_eq!(plan(&revoked, Some(&withdrawn)), None);
    let w = plan(&r, Some(&withdrawn)).unwrap();
    assert_eq!((w.state, w.revision), (State::Pending, 2));
    assert_eq!(
        w.eligible_since,
        Some(r.latest_change_ms),
        "eligible again since the change"
    );

    // Reinstated before the DELETE landed: withdraw, then upload revision 2.
    let pending_delete = stored(&withdrawing, State::Withdrawing, Some(20));
    let w = plan(&r, Some(&pending_delete)).unwrap();
    assert_eq!((w.state, w.revision), (State::Withdrawing, 2));
    assert!(w.record.is_some());
    let replace = stored(&w, State::Withdrawing, Some(20));
    assert_eq!(plan(&r, Some(&replace)), None);
    let again = plan(&revoked, Some(&replace)).unwrap();
    assert_eq!((again.state, again.record), (State::Withdrawing, None));
}

#[test]
fn an_unknown_outcome_revoked_is_withdrawn_after_a_lookup_and_reinstated_resumes_its_key() {
    let r = row(20, 20);
    let first = plan(&r, None).unwrap();
    let retrying = stored(&first, State::Retrying, None);
    let mut revoked = r.clone();
    revoked.completion.status = CompletionStatus::Revoked;
    let w = plan(&revoked, Some(&retrying)).unwrap();
    assert_eq!((w.state, w.revision), (State::Withdrawing, 1));
    assert_eq!(
        w.idempotency_key, first.idempotency_key,
        "the key that may have landed"
    );
    let back = plan(&r, Some(&stored(&w, State::Withdrawing, None))).unwrap();
    assert_eq!((back.state, back.revision), (State::Retrying, 1));
    assert_eq!(back.record, first.record);

    let pending = stored(&first, State::Pending, None);
    assert_eq!(
        plan(&revoked, Some(&pending)).unwrap().state,
        State::Ineligible,
        "never sent"
    );
    let pending = sent_unanswered(pending);
    assert_eq!(
        plan(&revoked, Some(&pending)).unwrap().state,
        State::Withdrawing,
        "sent by a dispatcher that recorded no answer: it may have landed"
    );
}

#[test]
fn a_record_changed_while_sent_and_unanswered_keeps_the_bytes_sent_under_its_key_and_is_flagged() {
    let first = plan(&row(20, 20), None).unwrap();
    let sent = stored(&first, State::Pending, None);
    let changed = row(30, 30);
    let w = plan(&changed, Some(&sent)).unwrap();
    assert_eq!(
        (w.state, w.revision, w.hours_tenths, w.rescan),
        (State::Pending, 1, Some(30), false),
        "never sent: refreshed under the same key"
    );
    // In flight, or its sender died before the answer (the lease expired).
    let sent = sent_unanswered(sent);
    let w = plan(&changed, Some(&sent)).unwrap();
    assert_eq!((w.state, w.revision), (State::Pending, 1));
    assert_eq!(
        (&w.record, w.hours_tenths),
        (&first.record, Some(20)),
        "sent, unanswered: the sent bytes stay"
    );
    assert!(w.rescan, "judged again once the answer is known");
    let flagged = sent_unanswered(stored(&w, State::Pending, None));
    assert_eq!(plan(&changed, Some(&flagged)), None, "flagged once");
}

#[test]
fn new_hours_while_an_outcome_is_unknown_wait_for_it_then_become_a_correction() {
    let first = plan(&row(20, 20), None).unwrap();
    let retrying = stored(&first, State::Retrying, None);
    let changed = row(30, 30);
    let w = plan(&changed, Some(&retrying)).unwrap();
    assert_eq!(
        (
            w.state,
            w.revision,
            &w.record,
            &w.idempotency_key,
            w.hours_tenths
        ),
        (
            State::Retrying,
            1,
            &first.record,
            &first.idempotency_key,
            Some(20)
        ),
        "the resend carries the bytes that may have landed"
    );
    assert_eq!(
        (w.next_attempt_at, w.reset_attempts, w.rescan),
        (first.next_attempt_at, false, true),
        "its retry schedule stands"
    );

    // The resend is answered `duplicate`: credited with the first hours.
    let credited = stored(&w, State::Delivered, Some(20));
    let correction = plan(&changed, Some(&credited)).unwrap();
    assert_eq!(
        (
            correction.state,
            correction.revision,
            correction.hours_tenths,
            correction.rescan
        ),
        (State::Correcting, 2, Some(30), false)
    );

    // The registry refused it: a fresh upload of the new facts.
    let refused = stored(&w, State::Rejected, None);
    let upload = plan(&changed, Some(&refused)).unwrap();
    assert_eq!(
        (
            upload.state,
            upload.revision,
            upload.hours_tenths,
            upload.rescan
        ),
        (State::Pending, 1, Some(30), false)
    );

    // Changed back before the answer: nothing to do but drop the flag.
    let back = plan(&row(20, 20), Some(&credited)).unwrap();
    assert_eq!(
        (back.state, back.revision, back.record, back.rescan),
        (State::Delivered, 1, first.record, false)
    );
}

#[test]
fn a_record_given_up_on_then_changed_is_resent_as_sent_and_the_change_follows_its_answer() {
    let first = plan(&row(20, 20), None).unwrap();
    let failed = stored(&first, State::Failed, None);
    let changed = row(30, 30);
    let w = plan(&changed, Some(&failed)).unwrap();
    assert_eq!(
        (w.state, w.revision, &w.record, w.hours_tenths, w.rescan),
        (State::Retrying, 1, &first.record, Some(20), true),
        "its lost answers may have been credits: the bytes sent go out again"
    );
    assert_eq!((w.next_attempt_at, w.reset_attempts), (Some(NOW), true));

    // Answered `duplicate`: the registry held it, and the change is a correction.
    let credited = stored(&w, State::Delivered, Some(20));
    let correction = plan(&changed, Some(&credited)).unwrap();
    assert_eq!(
        (
            correction.state,
            correction.revision,
            correction.hours_tenths
        ),
        (State::Correcting, 2, Some(30))
    );

    // Given up on again: the new facts go out rather than wait for a person.
    let again = stored(&w, State::Failed, None);
    let upload = plan(&changed, Some(&again)).unwrap();
    assert_eq!(
        (
            upload.state,
            upload.revision,
            upload.hours_tenths,
            upload.rescan
        ),
        (State::Pending, 1, Some(30), false)
    );
}
