//! What a decision does to an existing delivery row: the transitions of
//! DOMAIN.md and issue 5 as pure functions, tested without a database.
//!
//! A row the registry credits (`delivered`, `correcting`, `withdrawing`)
//! is never resent: a change of hours makes a new revision sent as a `PUT`
//! correction, and a revocation or lost certification a `DELETE`. Every
//! revision has its own idempotency key, so whatever is resent after an
//! unknown outcome is credited (or corrected) once.

use crate::domain::{Hours, RecordDetail, RegistryKind};
use crate::eligibility::{AccountFacts, Decision, Facts, Reason, evaluate};
use crate::registry::adapter::{idempotency_key, record_facts};
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
///   last outcome unknown, `retrying`, or taken by a dispatcher that
///   recorded no answer, in flight or dead), the bytes sent under the key
///   stay as they are: resent, they are credited
///   once with the hours they carry, and the registry's `duplicate` answer
///   then speaks for them. The row is flagged instead, and judged again
///   once its outcome is known: a correction if it was credited, a
///   refreshed upload if it was not.
/// - Now ineligible: `ineligible`, except when the registry may already hold
///   it (an unknown outcome) and the reason withdraws: then
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
    let draft = Draft {
        row,
        registry,
        now_ms,
    };
    match (decide(&draft, decision, existing), existing) {
        // Judged again with nothing to change: only the flag goes.
        (None, Some(e)) if e.rescan && !outcome_unknown(e) => Some(kept(&draft, e, false)),
        (write, _) => write,
    }
}

fn decide(
    draft: &Draft,
    decision: Decision,
    existing: Option<&ExistingDelivery>,
) -> Option<DeliveryWrite> {
    let (row, now_ms) = (draft.row, draft.now_ms);
    let completed_ms = row.completion.completed_at.timestamp_millis();
    match (existing, decision) {
        (Some(e), decision) if e.state.is_credited() || e.state == State::Withdrawn => {
            plan_credited(draft, e, decision)
        }
        (None, Decision::Ineligible(reason)) => Some(DeliveryWrite {
            // Never sent: no key to remember.
            idempotency_key: None,
            ..draft.ineligible(State::Ineligible, 1, reason)
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
            if e.record == same.record {
                return None;
            }
            if outcome_unknown(e) {
                // What may have landed under the key stays what was sent.
                return (!e.rescan).then(|| kept(draft, e, true));
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
            let revision = if e.record.is_some() {
                e.revision
            } else {
                e.revision + 1
            };
            let w = d.eligible(State::Withdrawing, revision, hours, since_change);
            if e.record == w.record {
                return None;
            }
            Some(DeliveryWrite {
                next_attempt_at: e.next_attempt_at.or(Some(d.now_ms)),
                reset_attempts: false,
                ..w
            })
        }
        (State::Withdrawing | State::Withdrawn, Decision::Ineligible(reason)) => {
            if e.record.is_none() && e.reason.as_deref() == Some(reason.as_str()) {
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
    match e.record.as_ref().map(|r| &r.detail) {
        Some(RecordDetail::Lifelong {
            digital, classroom, ..
        }) => *digital != d.row.course.digital_hours || *classroom != d.row.course.classroom_hours,
        _ => false,
    }
}

/// Whether the registry may hold the row's current revision without our
/// knowing: its last answer was lost (`retrying`), or a dispatcher took the
/// row and no answer is recorded. The lease's end does not settle it: a
/// daemon killed after the registry credited its batch leaves the row
/// `pending` under an expired lease, and what it sent may have landed.
fn outcome_unknown(e: &ExistingDelivery) -> bool {
    e.state == State::Retrying || e.awaiting_answer
}

/// The row as it stands, flagged (or no longer flagged) to be judged again.
fn kept(d: &Draft, e: &ExistingDelivery, rescan: bool) -> DeliveryWrite {
    let base = d.base(e.state, e.revision);
    DeliveryWrite {
        // The learner and course the kept record names.
        national_id: e
            .record
            .as_ref()
            .map_or(base.national_id.clone(), |r| r.national_id.clone()),
        course_code: e
            .record
            .as_ref()
            .map_or(base.course_code.clone(), |r| r.course_code.clone()),
        reason: e.reason.clone(),
        hours_tenths: e.hours_tenths,
        idempotency_key: e.idempotency_key.clone(),
        record: e.record.clone(),
        eligible_since: e.eligible_since,
        next_attempt_at: e.next_attempt_at,
        reset_attempts: false,
        rescan,
        ..base
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
            record: None,
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
        DeliveryWrite {
            hours_tenths: Some(hours.tenths()),
            record: Some(record_facts(self.registry, self.row, hours)),
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
mod tests;
