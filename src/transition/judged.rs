//! What a scan's judgement does to a delivery row: the transitions of
//! DOMAIN.md when a completion's facts (or eligibility) change.
//!
//! A row the registry credits (`delivered`, `correcting`, `withdrawing`)
//! is never resent: a change of hours makes a new revision sent as a `PUT`
//! correction, and a revocation or lost certification a `DELETE`. Every
//! revision has its own idempotency key, so whatever is resent after an
//! unknown outcome is credited (or corrected) once.
//!
//! A judgement changes the facts, the state and the schedule of a row; it
//! leaves the lease, the receipt and the credited hours as they are (the
//! scan's write does not touch them; a property test holds it to that).

use crate::domain::{Hours, RecordDetail, RegistryKind};
use crate::eligibility::{Decision, Reason};
use crate::registry::adapter::{idempotency_key, record_facts};
use crate::store::{DeliveryRow, Record, ScanRow, State, UNSTORED};

/// Whether an ineligibility takes back hours a registry already credited:
/// the completion was revoked, or the course lost its certification for the
/// registry. The other reasons (a category, an account or a unit changing
/// later) do not undo hours earned while they were eligible.
fn withdraws(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::CourseNotCompleted | Reason::CourseNotCertified
    )
}

/// The row after the scan judged `facts` for `registry` (`row` is `None`
/// for a pair never judged), or `None` when the row already says it.
///
/// Not yet credited:
/// - New pair: `pending` (eligible since its completion) or `ineligible`.
/// - `ineligible` → eligible: `pending`, eligible since the newest change
///   the decision rests on (the conversion, the fixed unit, …): backfill.
/// - Record changed (data fixed): the new record replaces the old under the
///   same key and starts its attempts over; `rejected` goes back to
///   `pending`. But while the registry may hold the record already (its
///   last outcome unknown: `retrying`, given up on (`failed`), or taken by
///   a dispatcher that recorded no answer, in flight or dead), the facts
///   sent under the key stay as they are: resent, they are credited once
///   with the hours they carry, and the registry's `duplicate` answer then
///   speaks for them. The row is flagged instead (a `failed` one also goes
///   back to `retrying`, or nothing would resend it), and judged again once
///   its outcome is known: a correction if it was credited, a refreshed
///   upload if not.
/// - Now ineligible: `ineligible`, except when the registry may already hold
///   it (an unknown outcome) and the reason withdraws: then
///   `withdrawing`, which looks the key up before deleting.
///
/// Credited: see [`credited`].
pub(super) fn judged(
    row: Option<&DeliveryRow>,
    facts: &ScanRow,
    registry: RegistryKind,
    decision: Decision,
    now_ms: i64,
) -> Option<DeliveryRow> {
    debug_assert!(
        row.is_none_or(|r| r.record != Record::Unread),
        "the scan reads the facts of the rows it judges"
    );
    let draft = Draft {
        facts,
        registry,
        prior: row,
        now_ms,
    };
    match (decide(&draft, decision, row), row) {
        // Judged again with nothing to change: only the flag goes.
        (None, Some(e)) if e.rescan && !outcome_unknown(e) => Some(flagged(e, false)),
        (next, _) => next,
    }
}

fn decide(d: &Draft, decision: Decision, existing: Option<&DeliveryRow>) -> Option<DeliveryRow> {
    let completed_ms = d.facts.completion.completed_at.timestamp_millis();
    match (existing, decision) {
        (Some(e), decision) if e.state.is_credited() || e.state == State::Withdrawn => {
            credited(d, e, decision)
        }
        (None, Decision::Ineligible(reason)) => Some(DeliveryRow {
            // Never sent: no key to remember.
            idempotency_key: None,
            ..d.ineligible(State::Ineligible, 1, reason)
        }),
        (Some(e), Decision::Ineligible(reason)) => {
            let state = if outcome_unknown(e) && withdraws(reason) {
                State::Withdrawing
            } else {
                State::Ineligible
            };
            if e.state == state && e.reason.as_deref() == Some(reason.as_str()) {
                return None;
            }
            Some(d.ineligible(state, e.revision, reason))
        }
        (None, Decision::Eligible(hours)) => {
            Some(d.eligible(State::Pending, 1, hours, completed_ms))
        }
        (Some(e), Decision::Eligible(hours)) if e.state == State::Ineligible => {
            let since = d.facts.latest_change_ms.max(completed_ms);
            Some(d.eligible(State::Pending, e.revision, hours, since))
        }
        (Some(e), Decision::Eligible(hours)) => {
            // Not yet credited, already eligible: only a changed record matters.
            let next = d.eligible(State::Pending, e.revision, hours, 0);
            if e.record == next.record {
                return None;
            }
            if outcome_unknown(e) {
                // What may have landed under the key stays what was sent.
                if e.state == State::Failed {
                    return Some(DeliveryRow {
                        state: State::Retrying,
                        attempts: 0,
                        last_error: None,
                        next_attempt_at: Some(d.now_ms),
                        ..flagged(e, true)
                    });
                }
                return (!e.rescan).then(|| flagged(e, true));
            }
            // The registry does not hold it: due now, attempts started
            // over; the clock of the promise keeps running.
            Some(DeliveryRow {
                eligible_since: e.eligible_since,
                ..next
            })
        }
    }
}

/// Transitions of a row the registry credits, or credited once:
/// - `delivered` and the hours (or the lifelong split) changed:
///   `correcting`, a new revision (a `PUT` under its key; the contract's
///   `PUT` carries the total only, see README). `correcting` and the target
///   changed again: one more revision, so the last figure is the one that
///   lands.
/// - `delivered`/`correcting` and revoked or decertified: `withdrawing`.
///   Other reasons leave a credited record alone (hours earned while
///   eligible stay earned).
/// - `withdrawing` and eligible again: still `withdrawing`, now carrying
///   the new revision, which goes out as a new record once the withdrawal
///   landed. Not yet known to be credited (no receipt): back to `retrying`
///   under the key that may have landed.
/// - `withdrawn` and eligible again: `pending`, a new revision, eligible
///   since the reinstatement.
fn credited(d: &Draft, e: &DeliveryRow, decision: Decision) -> Option<DeliveryRow> {
    let completed_ms = d.facts.completion.completed_at.timestamp_millis();
    let since_change = d.facts.latest_change_ms.max(completed_ms);
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
        (State::Withdrawing, Decision::Eligible(hours)) if !has_receipt => Some(DeliveryRow {
            next_attempt_at: Some(d.now_ms),
            ..keeping_attempts(
                d.eligible(State::Retrying, e.revision, hours, since_change),
                e,
            )
        }),
        (State::Withdrawing, Decision::Eligible(hours)) => {
            // The revision after the credited one, made once.
            let revision = if e.record.is_held() {
                e.revision
            } else {
                e.revision + 1
            };
            let next = d.eligible(State::Withdrawing, revision, hours, since_change);
            if e.record == next.record {
                return None;
            }
            Some(DeliveryRow {
                next_attempt_at: e.next_attempt_at.or(Some(d.now_ms)),
                ..keeping_attempts(next, e)
            })
        }
        (State::Withdrawing | State::Withdrawn, Decision::Ineligible(reason)) => {
            if !e.record.is_held() && e.reason.as_deref() == Some(reason.as_str()) {
                return None;
            }
            Some(DeliveryRow {
                next_attempt_at: e.next_attempt_at,
                ..keeping_attempts(d.ineligible(e.state, e.revision, reason), e)
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
fn split_changed(d: &Draft, e: &DeliveryRow) -> bool {
    match e.record.facts().map(|r| &r.detail) {
        Some(RecordDetail::Lifelong {
            digital, classroom, ..
        }) => {
            *digital != d.facts.course.digital_hours || *classroom != d.facts.course.classroom_hours
        }
        _ => false,
    }
}

/// Whether the registry may hold the row's current revision without our
/// knowing: its last answer was lost (`retrying`), or a dispatcher took the
/// row and no answer is recorded. The lease's end does not settle it: a
/// daemon killed after the registry credited its batch leaves the row
/// `pending` under an expired lease, and what it sent may have landed.
/// Nor does giving up: a `failed` upload's lost answers may have been
/// credits. Only once it was resent after a change (and flagged) is its
/// end taken as known: refused or given up on again, the new facts go out
/// rather than wait for a person.
fn outcome_unknown(e: &DeliveryRow) -> bool {
    e.state == State::Retrying || (e.state == State::Failed && !e.rescan) || e.lease_owner.is_some()
}

/// The row as it stands, flagged (or no longer flagged) to be judged again.
fn flagged(e: &DeliveryRow, rescan: bool) -> DeliveryRow {
    DeliveryRow {
        rescan,
        ..e.clone()
    }
}

/// `next` with the attempt count and last error `e` has: the same work
/// goes on.
fn keeping_attempts(next: DeliveryRow, e: &DeliveryRow) -> DeliveryRow {
    DeliveryRow {
        attempts: e.attempts,
        last_error: e.last_error.clone(),
        ..next
    }
}

/// What every transition of a judgement shares.
struct Draft<'a> {
    facts: &'a ScanRow,
    registry: RegistryKind,
    prior: Option<&'a DeliveryRow>,
    now_ms: i64,
}

impl Draft<'_> {
    /// The row at `state` and `revision`, attempts started over, with what
    /// a judgement does not change (its id, lease, receipt, credit) kept.
    fn base(&self, state: State, revision: i64) -> DeliveryRow {
        // Only these are read from the prior row: cloning it whole would
        // copy its record's facts for every transition built.
        let p = self.prior;
        DeliveryRow {
            id: p.map_or(UNSTORED, |p| p.id),
            registry: self.registry,
            state,
            reason: None,
            revision,
            hours_tenths: None,
            credited_tenths: p.and_then(|p| p.credited_tenths),
            receipt_id: p.and_then(|p| p.receipt_id.clone()),
            delivered_at: p.and_then(|p| p.delivered_at),
            attempts: 0,
            next_attempt_at: None,
            last_error: None,
            lease_owner: p.and_then(|p| p.lease_owner.clone()),
            lease_until: p.and_then(|p| p.lease_until),
            idempotency_key: Some(idempotency_key(
                &self.facts.completion.completion_id,
                self.registry,
                revision,
            )),
            record: Record::None,
            eligible_since: None,
            rescan: false,
        }
    }

    /// Not owed to the registry (nothing to send, out of the promise); a
    /// `withdrawing` row is due now.
    fn ineligible(&self, state: State, revision: i64, reason: Reason) -> DeliveryRow {
        DeliveryRow {
            reason: Some(reason.as_str().into()),
            next_attempt_at: (state == State::Withdrawing).then_some(self.now_ms),
            ..self.base(state, revision)
        }
    }

    /// Owed to the registry as `revision`, due now.
    fn eligible(&self, state: State, revision: i64, hours: Hours, since: i64) -> DeliveryRow {
        DeliveryRow {
            hours_tenths: Some(hours.tenths()),
            record: Record::Facts(record_facts(self.registry, self.facts, hours)),
            eligible_since: Some(since),
            next_attempt_at: Some(self.now_ms),
            ..self.base(state, revision)
        }
    }
}
