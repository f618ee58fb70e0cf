//! What a decision does to an existing delivery row: the transitions of
//! DOMAIN.md and issue 5 as pure functions, tested without a database.
//!
//! A row the registry credits (`delivered`, `correcting`, `withdrawing`)
//! is never resent: a change of hours makes a new revision sent as a `PUT`
//! correction, and a revocation or lost certification a `DELETE`. Every
//! revision has its own idempotency key, so whatever is resent after an
//! unknown outcome is credited (or corrected) once.

use crate::domain::{Hours, RegistryKind};
use crate::eligibility::{AccountFacts, Decision, Facts, Reason, evaluate};
use crate::registry::adapter::{build_record, idempotency_key};
use crate::store::{DeliveryWrite, ExistingDelivery, ScanRow, State};

/// The writes for a chunk of completions, every registry each.
pub fn plan_rows(rows: &[ScanRow], now_ms: i64) -> Vec<DeliveryWrite> {
    let mut writes = Vec::new();
    for row in rows {
        for registry in RegistryKind::ALL {
            let existing = row.deliveries.iter().find(|d| d.registry == registry);
            let decision = evaluate(&facts(row, registry), registry);
            if let Some(w) = plan_pair(row, registry, decision, existing, now_ms) {
                writes.push(w);
            }
        }
    }
    writes
}

/// What eligibility looks at, out of a scan row.
pub fn facts(row: &ScanRow, registry: RegistryKind) -> Facts {
    let account = |a: &crate::domain::Account| AccountFacts {
        kind: a.kind,
        identity: a.identity,
    };
    Facts {
        status: row.completion.status,
        certified: row.course.certified(registry),
        account: account(&row.account),
        bound: row.bound.as_ref().map(account),
        personnel_category: row.person.personnel_category.clone(),
        has_enved_account: row
            .person
            .enved_account
            .as_deref()
            .is_some_and(|s| !s.trim().is_empty()),
        service_unit_valid: row.unit_known,
    }
}

/// Whether an ineligibility takes back hours a registry already credited:
/// the completion was revoked, or the course lost its certification for the
/// registry. The other reasons (a category, an account or a unit changing
/// later) do not undo hours earned while they were eligible.
pub fn withdraws(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::CourseNotCompleted | Reason::CourseNotCertified
    )
}

/// The write a decision calls for, or `None` when the row already says it.
///
/// Not yet credited:
/// - New pair: `pending` (eligible since its completion) or `ineligible`.
/// - `ineligible` → eligible: `pending`, eligible since the newest change
///   the decision rests on (the conversion, the fixed unit, …): backfill.
/// - Record changed (data fixed): the new record replaces the old under the
///   same key and starts its attempts over; `rejected`/`failed` go back to
///   `pending`. But while the registry may hold the record already (its
///   last outcome unknown, `retrying`, or a request in flight, leased), the
///   bytes sent under the key stay as they are: resent, they are credited
///   once with the hours they carry, and the registry's `duplicate` answer
///   then speaks for them. The row is flagged instead, and judged again
///   once its outcome is known: a correction if it was credited, a
///   refreshed upload if it was not.
/// - Now ineligible: `ineligible`, except when the registry may already hold
///   it (an unknown outcome, or in flight) and the reason withdraws: then
///   `withdrawing`, which looks the key up before deleting.
///
/// Credited: see [`plan_credited`].
pub fn plan_pair(
    row: &ScanRow,
    registry: RegistryKind,
    decision: Decision,
    existing: Option<&ExistingDelivery>,
    now_ms: i64,
) -> Option<DeliveryWrite> {
    let write = decide(row, registry, decision, existing, now_ms);
    match (write, existing) {
        // Judged again with nothing to change: only the flag goes.
        (None, Some(e)) if e.rescan && !outcome_unknown(e, now_ms) => {
            let draft = Draft {
                row,
                registry,
                now_ms,
            };
            Some(kept(&draft, e, false))
        }
        (write, _) => write,
    }
}

fn decide(
    row: &ScanRow,
    registry: RegistryKind,
    decision: Decision,
    existing: Option<&ExistingDelivery>,
    now_ms: i64,
) -> Option<DeliveryWrite> {
    let draft = Draft {
        row,
        registry,
        now_ms,
    };
    let completed_ms = row.completion.completed_at.timestamp_millis();
    match (existing, decision) {
        (Some(e), decision) if e.state.is_credited() || e.state == State::Withdrawn => {
            plan_credited(&draft, e, decision)
        }
        (None, Decision::Ineligible(reason)) => Some(DeliveryWrite {
            // Never sent: no key to remember.
            idempotency_key: None,
            ..draft.ineligible(State::Ineligible, 1, reason)
        }),
        (Some(e), Decision::Ineligible(reason)) => {
            let maybe_credited = e.state == State::Retrying || leased(e, now_ms);
            let state = if maybe_credited && withdraws(reason) {
                State::Withdrawing
            } else {
                State::Ineligible
            };
            if e.state == state && e.reason.as_deref() == Some(reason.as_str()) {
                return None;
            }
            Some(draft.ineligible(state, e.revision, reason))
        }
        (None, Decision::Eligible(hours)) => {
            Some(draft.eligible(State::Pending, 1, hours, completed_ms))
        }
        (Some(e), Decision::Eligible(hours)) if e.state == State::Ineligible => {
            let since = row.latest_change_ms.max(completed_ms);
            Some(draft.eligible(State::Pending, e.revision, hours, since))
        }
        (Some(e), Decision::Eligible(hours)) => {
            // Not yet credited, already eligible: only a changed record matters.
            let same = draft.eligible(e.state, e.revision, hours, 0);
            if e.payload.as_deref() == same.payload.as_deref() {
                return None;
            }
            if outcome_unknown(e, now_ms) {
                // What may have landed under the key stays what was sent.
                return (!e.rescan).then(|| kept(&draft, e, true));
            }
            let w = draft.eligible(State::Pending, e.revision, hours, 0);
            Some(refreshed(w, e, now_ms))
        }
    }
}

/// Transitions of a row the registry credits, or credited once:
/// - `delivered` and the hours (or the lifelong split) changed:
///   `correcting`, a new revision (a `PUT` under its key; the contract's
///   `PUT` carries the total only, see README). `correcting` and the target changed again: one
///   more revision, so the last figure is the one that lands.
/// - `delivered`/`correcting` and revoked or decertified: `withdrawing`.
///   Other reasons leave a credited record alone (hours earned while
///   eligible stay earned).
/// - `withdrawing` and eligible again: still `withdrawing`, now carrying
///   the new revision, which goes out as a new record once the withdrawal
///   landed. Not yet known to be credited (no receipt): back to `retrying`
///   under the key that may have landed.
/// - `withdrawn` and eligible again: `pending`, a new revision, eligible
///   since the reinstatement.
fn plan_credited(d: &Draft, e: &ExistingDelivery, decision: Decision) -> Option<DeliveryWrite> {
    let completed_ms = d.row.completion.completed_at.timestamp_millis();
    let since_change = d.row.latest_change_ms.max(completed_ms);
    let has_receipt = e.credited_tenths.is_some();
    match (e.state, decision) {
        (State::Delivered | State::Correcting, Decision::Eligible(hours)) => {
            // What the registry credits (delivered) or is being told (correcting).
            let target = if e.state == State::Delivered {
                e.credited_tenths
            } else {
                e.hours_tenths
            };
            // Built only when due: most credited rows a change touches stand.
            let changed = target != Some(hours.tenths()) || split_changed(d, e);
            let since = e.eligible_since.unwrap_or(since_change);
            changed.then(|| d.eligible(State::Correcting, e.revision + 1, hours, since))
        }
        (State::Delivered | State::Correcting, Decision::Ineligible(reason)) => {
            withdraws(reason).then(|| d.ineligible(State::Withdrawing, e.revision, reason))
        }
        (State::Withdrawing, Decision::Eligible(hours)) if !has_receipt => {
            let w = d.eligible(State::Retrying, e.revision, hours, since_change);
            Some(DeliveryWrite {
                next_attempt_at: Some(d.now_ms),
                reset_attempts: false,
                ..w
            })
        }
        (State::Withdrawing, Decision::Eligible(hours)) => {
            // The revision after the credited one, made once.
            let revision = if e.payload.is_some() {
                e.revision
            } else {
                e.revision + 1
            };
            let w = d.eligible(State::Withdrawing, revision, hours, since_change);
            if e.payload.as_deref() == w.payload.as_deref() {
                return None;
            }
            Some(DeliveryWrite {
                next_attempt_at: e.next_attempt_at.or(Some(d.now_ms)),
                reset_attempts: false,
                ..w
            })
        }
        (State::Withdrawing | State::Withdrawn, Decision::Ineligible(reason)) => {
            if e.payload.is_none() && e.reason.as_deref() == Some(reason.as_str()) {
                return None;
            }
            let w = d.ineligible(e.state, e.revision, reason);
            Some(DeliveryWrite {
                next_attempt_at: e.next_attempt_at,
                reset_attempts: false,
                ..w
            })
        }
        (State::Withdrawn, Decision::Eligible(hours)) => {
            Some(d.eligible(State::Pending, e.revision + 1, hours, since_change))
        }
        (_, _) => None,
    }
}

/// Whether the lifelong split (`digital_hours`, `classroom_hours`) of the
/// record last sent differs from the course's now: a correction too, even
/// with the same total. The other registries' records carry no split.
fn split_changed(d: &Draft, e: &ExistingDelivery) -> bool {
    let Some(sent) = e
        .payload
        .as_deref()
        .filter(|_| d.registry == RegistryKind::Lifelong)
    else {
        return false;
    };
    let sent: serde_json::Value = serde_json::from_str(sent).unwrap_or_default();
    let course = &d.row.course;
    sent["digital_hours"].as_str() != Some(course.digital_hours.to_string().as_str())
        || sent["classroom_hours"].as_str() != Some(course.classroom_hours.to_string().as_str())
}

/// Whether a dispatcher holds the row now: a request for it may be in
/// flight, and its answer will be recorded against the revision it sent.
fn leased(e: &ExistingDelivery, now_ms: i64) -> bool {
    e.lease_until.is_some_and(|until| until > now_ms)
}

/// Whether the registry may hold the row's current revision without our
/// knowing: its last answer was lost (`retrying`), or a request is in
/// flight.
fn outcome_unknown(e: &ExistingDelivery, now_ms: i64) -> bool {
    e.state == State::Retrying || leased(e, now_ms)
}

/// The row as it stands, flagged (or no longer flagged) to be judged again.
fn kept(d: &Draft, e: &ExistingDelivery, rescan: bool) -> DeliveryWrite {
    DeliveryWrite {
        reason: e.reason.clone(),
        hours_tenths: e.hours_tenths,
        idempotency_key: e.idempotency_key.clone(),
        payload: e.payload.clone(),
        eligible_since: e.eligible_since,
        next_attempt_at: e.next_attempt_at,
        reset_attempts: false,
        rescan,
        ..d.base(e.state, e.revision)
    }
}

/// The parts of a write every transition shares.
struct Draft<'a> {
    row: &'a ScanRow,
    registry: RegistryKind,
    now_ms: i64,
}

impl Draft<'_> {
    fn base(&self, state: State, revision: i64) -> DeliveryWrite {
        DeliveryWrite {
            completion_id: self.row.completion.completion_id.clone(),
            registry: self.registry,
            national_id: self.row.person.national_id.clone(),
            course_code: self.row.course.course_code.clone(),
            state,
            reason: None,
            hours_tenths: None,
            revision,
            idempotency_key: Some(self.key(revision)),
            payload: None,
            eligible_since: None,
            due_at: None,
            next_attempt_at: None,
            reset_attempts: true,
            rescan: false,
        }
    }

    fn key(&self, revision: i64) -> String {
        idempotency_key(&self.row.completion.completion_id, self.registry, revision)
    }

    /// Not owed to the registry (nothing to send, out of the promise); a
    /// `withdrawing` row is due now.
    fn ineligible(&self, state: State, revision: i64, reason: Reason) -> DeliveryWrite {
        DeliveryWrite {
            reason: Some(reason.as_str().into()),
            next_attempt_at: (state == State::Withdrawing).then_some(self.now_ms),
            ..self.base(state, revision)
        }
    }

    /// Owed to the registry as `revision`, due now.
    fn eligible(
        &self,
        state: State,
        revision: i64,
        hours: Hours,
        eligible_since: i64,
    ) -> DeliveryWrite {
        let key = self.key(revision);
        let payload = build_record(self.registry, self.row, hours, &key);
        DeliveryWrite {
            hours_tenths: Some(hours.tenths()),
            payload: Some(payload),
            eligible_since: Some(eligible_since),
            next_attempt_at: Some(self.now_ms),
            ..self.base(state, revision)
        }
    }
}

/// A not-yet-credited record whose content changed, and which the registry
/// does not hold: `pending`, due now, attempts started over. The clock of
/// the promise keeps running.
fn refreshed(w: DeliveryWrite, e: &ExistingDelivery, now_ms: i64) -> DeliveryWrite {
    DeliveryWrite {
        state: State::Pending,
        eligible_since: e.eligible_since,
        next_attempt_at: Some(now_ms),
        ..w
    }
}

#[cfg(test)]
mod tests {
    //! The transitions of a delivery row, one decision at a time.

    use super::*;
    use crate::domain::{
        Account, AccountKind, Completion, CompletionStatus, Course, Identity, LearningMode,
        NationalId, Person,
    };

    const NOW: i64 = 1_796_000_000_000; // 2026-11-30, after the completion
    const L: RegistryKind = RegistryKind::Lifelong;

    fn h(t: u32) -> Hours {
        Hours::from_tenths(t).unwrap()
    }

    fn row(lifelong: u32, digital: u32) -> ScanRow {
        let nid = NationalId::parse("A123456789").unwrap();
        ScanRow {
            completion: Completion {
                completion_id: "c1".into(),
                account_id: "a1".into(),
                course_code: "K1".into(),
                completed_at: chrono::DateTime::parse_from_rfc3339("2026-11-20T10:00:00+08:00")
                    .unwrap(),
                status: CompletionStatus::Completed,
            },
            completed_on: "2026-11-20".into(),
            account: Account {
                account_id: "a1".into(),
                national_id: nid.clone(),
                kind: AccountKind::Ecpa,
                identity: Some(Identity::CivilServant),
                bound_to: None,
            },
            bound: None,
            person: Person {
                national_id: nid,
                personnel_category: Some("10".into()),
                enved_account: None,
                service_unit_code: None,
            },
            unit_known: false,
            course: Course {
                course_code: "K1".into(),
                name: "K".into(),
                learning_mode: LearningMode::Blended,
                category_code: "A1".into(),
                digital_hours: h(digital),
                classroom_hours: h(lifelong - digital),
                certified: [(RegistryKind::Lifelong, h(lifelong))].into(),
            },
            latest_change_ms: NOW - 1_000,
            deliveries: vec![],
        }
    }

    /// The row as stored after `w` was written and, for a credited state,
    /// credited with `credited` tenths.
    fn stored(w: &DeliveryWrite, state: State, credited: Option<u32>) -> ExistingDelivery {
        ExistingDelivery {
            registry: w.registry,
            state,
            reason: w.reason.clone(),
            payload: w.payload.clone(),
            revision: w.revision,
            eligible_since: w.eligible_since,
            next_attempt_at: w.next_attempt_at,
            hours_tenths: w.hours_tenths,
            credited_tenths: credited,
            lease_until: None,
            idempotency_key: w.idempotency_key.clone(),
            rescan: w.rescan,
        }
    }

    fn eligible(r: &ScanRow) -> Decision {
        evaluate(&facts(r, L), L)
    }

    fn plan(r: &ScanRow, e: Option<&ExistingDelivery>) -> Option<DeliveryWrite> {
        plan_pair(r, L, eligible(r), e, NOW)
    }

    /// A delivered row of `r` at revision 1.
    fn delivered(r: &ScanRow) -> ExistingDelivery {
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
        assert!(
            w.payload
                .as_deref()
                .unwrap()
                .contains(&idempotency_key("c1", L, 2))
        );
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
            (w.payload.as_ref(), w.eligible_since, w.due_at),
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
        assert!(w.payload.is_some());
        let replace = stored(&w, State::Withdrawing, Some(20));
        assert_eq!(plan(&r, Some(&replace)), None);
        let again = plan(&revoked, Some(&replace)).unwrap();
        assert_eq!((again.state, again.payload), (State::Withdrawing, None));
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
        assert_eq!(back.payload, first.payload);

        let pending = stored(&first, State::Pending, None);
        assert_eq!(
            plan(&revoked, Some(&pending)).unwrap().state,
            State::Ineligible,
            "never sent"
        );
    }

    #[test]
    fn a_record_changed_while_in_flight_keeps_the_bytes_sent_under_its_key_and_is_flagged() {
        let first = plan(&row(20, 20), None).unwrap();
        let mut leased = stored(&first, State::Pending, None);
        let changed = row(30, 30);
        let w = plan(&changed, Some(&leased)).unwrap();
        assert_eq!(
            (w.state, w.revision, w.hours_tenths, w.rescan),
            (State::Pending, 1, Some(30), false),
            "not in flight: refreshed under the same key"
        );
        leased.lease_until = Some(NOW + 5_000);
        let w = plan(&changed, Some(&leased)).unwrap();
        assert_eq!((w.state, w.revision), (State::Pending, 1));
        assert_eq!(
            (&w.payload, w.hours_tenths),
            (&first.payload, Some(20)),
            "in flight: the sent bytes stay"
        );
        assert!(w.rescan, "judged again once the answer is known");
        let flagged = ExistingDelivery {
            lease_until: Some(NOW + 5_000),
            ..stored(&w, State::Pending, None)
        };
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
                &w.payload,
                &w.idempotency_key,
                w.hours_tenths
            ),
            (
                State::Retrying,
                1,
                &first.payload,
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
            (back.state, back.revision, back.payload, back.rescan),
            (State::Delivered, 1, first.payload, false)
        );
    }
}
