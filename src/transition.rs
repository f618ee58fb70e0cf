//! The delivery state machine: every change of a delivery row's state, as
//! one pure function over (row, event, now). A scan's judgement of changed
//! facts, a registry's answer, a lease that ended without one, a person's
//! requeue and a reconcile repair are its events. The store reads the rows,
//! asks [`transition`], and writes what it returns: the scan's judgements
//! with their facts, every other event with a compare-and-set on (id,
//! revision, lease owner); no SQL expression decides a state. The retry
//! schedule is [`crate::registry::retry`], whose result arrives here as
//! [`Outcome::Failed`].
//!
//! Three promises hold for every row and event (property-tested below):
//! - a `delivered` row is sent again only under a new revision, or when a
//!   lookup showed the registry lacks it (a requeue or `requeued` repair);
//! - an answer about an older revision never overwrites the newer one's
//!   record, key or outcome;
//! - a correction or a withdrawal is never given up.
//!
//! And while a row's outcome is unknown, the facts sent under its key stay
//! what they were: a change waits for the answer (see [`judged`]).

mod judged;

use crate::domain::RegistryKind;
use crate::eligibility::Decision;
use crate::store::{DeliveryRow, Outcome, Repair, ScanRow, State, lease_held};

/// What happened to a row.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// The scan judged the completion's facts for `registry` (`facts` as
    /// they are now; `decision` what eligibility made of them).
    Judged {
        facts: &'a ScanRow,
        registry: RegistryKind,
        decision: Decision,
    },
    /// A registry answered a request `owner` sent while holding the lease
    /// (or the request was not made: [`Outcome::Released`]).
    Answered {
        owner: &'a str,
        outcome: &'a Outcome,
    },
    /// A person (or a resync) asks for the record to be sent again.
    Requeue,
    /// A reconcile lookup learnt what the registry holds.
    Repaired(&'a Repair),
    /// `taken_by` claimed the row after another dispatcher's lease on it
    /// ended with no answer recorded: that dispatcher died or stalled after
    /// it may have sent the record.
    LeaseExpired { taken_by: &'a str },
}

/// Why a row taken over from an expired lease is `retrying`.
pub const LEASE_EXPIRED: &str = "no answer was recorded before the sending daemon's lease ended \
    (it stopped or stalled mid-request); the outcome is unknown, so the record is resent under \
    the same key";

/// The row after `event`, or `None` when the event does not apply to it
/// (nothing changed, the lease is someone else's, the row moved on since a
/// lookup, a state that can not be requeued): then nothing is written.
/// `row` is `None` for a pair the scan has never judged; only a judgement
/// makes it a row.
pub fn transition(row: Option<&DeliveryRow>, event: Event, now_ms: i64) -> Option<DeliveryRow> {
    match (event, row) {
        (
            Event::Judged {
                facts,
                registry,
                decision,
            },
            row,
        ) => judged::judged(row, facts, registry, decision, now_ms),
        // Nothing but a judgement happens to a pair without a row.
        (_, None) => None,
        (Event::Answered { owner, outcome }, Some(row)) => {
            (row.lease_owner.as_deref() == Some(owner)).then(|| answered(row, outcome, now_ms))?
        }
        (Event::Requeue, Some(row)) => {
            let requeueable = matches!(
                row.state,
                State::Pending
                    | State::Retrying
                    | State::Delivered
                    | State::Rejected
                    | State::Failed
            );
            (requeueable && !lease_held(row.lease_until, now_ms)).then(|| resend(row, now_ms))
        }
        (Event::Repaired(repair), Some(row)) => repaired(row, repair, now_ms),
        (Event::LeaseExpired { taken_by }, Some(row)) => {
            let claimable = matches!(
                row.state,
                State::Pending | State::Retrying | State::Correcting | State::Withdrawing
            );
            (claimable && row.lease_owner.as_deref() == Some(taken_by)).then(|| expired(row))
        }
    }
}

/// What an expired lease says about a row: a request may have reached the
/// registry and its answer is lost. An upload's outcome is unknown
/// (`retrying`, resent under its key, so it lands once); a correction or a
/// withdrawal stays what it is, as its requests are safe to repeat. The
/// attempt counts, so a record that keeps killing its sender is given up
/// on like any other. The new holder keeps its lease.
fn expired(row: &DeliveryRow) -> DeliveryRow {
    DeliveryRow {
        state: if row.state == State::Pending {
            State::Retrying
        } else {
            row.state
        },
        attempts: row.attempts + 1,
        last_error: Some(LEASE_EXPIRED.into()),
        ..row.clone()
    }
}

/// Not held by any dispatcher any more.
fn released(row: &DeliveryRow) -> DeliveryRow {
    DeliveryRow {
        lease_owner: None,
        lease_until: None,
        ..row.clone()
    }
}

/// Due now under its current key, as if never sent: the registry does not
/// hold it (or a person asks to try again from the start).
fn resend(row: &DeliveryRow, now_ms: i64) -> DeliveryRow {
    DeliveryRow {
        state: State::Pending,
        attempts: 0,
        next_attempt_at: Some(now_ms),
        last_error: None,
        receipt_id: None,
        credited_tenths: None,
        delivered_at: None,
        ..row.clone()
    }
}

fn answered(row: &DeliveryRow, outcome: &Outcome, now_ms: i64) -> Option<DeliveryRow> {
    let base = released(row);
    // Only an upload not yet given up can be refused or given up on.
    let uploading = matches!(row.state, State::Pending | State::Retrying);
    Some(match outcome {
        Outcome::Delivered {
            revision,
            receipt_id,
            credited_tenths,
            ..
        } => {
            let withdrawing = row.state == State::Withdrawing;
            // The scan moved on while the upload was in flight: the newer
            // revision now corrects the receipt just learnt (or, revoked,
            // withdraws it).
            let follow_up = withdrawing || *revision != row.revision;
            DeliveryRow {
                state: if withdrawing {
                    State::Withdrawing
                } else if follow_up {
                    State::Correcting
                } else {
                    State::Delivered
                },
                reason: if withdrawing {
                    row.reason.clone()
                } else {
                    None
                },
                receipt_id: Some(receipt_id.clone()),
                credited_tenths: Some(*credited_tenths),
                hours_tenths: row.hours_tenths.or(Some(*credited_tenths)),
                delivered_at: Some(now_ms),
                last_error: None,
                attempts: if follow_up { 0 } else { row.attempts + 1 },
                next_attempt_at: follow_up.then_some(now_ms),
                ..base
            }
        }
        Outcome::Rejected {
            revision,
            code,
            message,
            ..
        } => {
            let this = *revision == row.revision && uploading;
            DeliveryRow {
                state: if this { State::Rejected } else { row.state },
                reason: if this {
                    Some(code.clone())
                } else {
                    row.reason.clone()
                },
                next_attempt_at: if this { None } else { row.next_attempt_at },
                last_error: Some(message.clone()),
                attempts: row.attempts + 1,
                ..base
            }
        }
        Outcome::Failed {
            revision,
            next_attempt_at,
            error,
            give_up,
            ..
        } => {
            let this = *revision == row.revision;
            DeliveryRow {
                state: match (this && uploading, give_up) {
                    (true, true) => State::Failed,
                    (true, false) => State::Retrying,
                    (false, _) => row.state,
                },
                next_attempt_at: if this {
                    Some(*next_attempt_at)
                } else {
                    row.next_attempt_at
                },
                last_error: Some(error.clone()),
                attempts: row.attempts + 1,
                ..base
            }
        }
        Outcome::Released {
            next_attempt_at,
            error,
            ..
        } => DeliveryRow {
            next_attempt_at: Some(*next_attempt_at),
            last_error: error.clone().or_else(|| row.last_error.clone()),
            ..base
        },
        Outcome::Corrected {
            revision,
            credited_tenths,
            ..
        } => {
            let this = row.state == State::Correcting && *revision == row.revision;
            DeliveryRow {
                state: if this { State::Delivered } else { row.state },
                next_attempt_at: if this { None } else { row.next_attempt_at },
                credited_tenths: Some(*credited_tenths),
                last_error: None,
                attempts: row.attempts + 1,
                ..base
            }
        }
        Outcome::Withdrawn { .. } if row.state == State::Withdrawing => {
            // Reinstated meanwhile: the row carries the next revision's record.
            let reinstated = row.record.is_held();
            DeliveryRow {
                state: if reinstated {
                    State::Pending
                } else {
                    State::Withdrawn
                },
                next_attempt_at: reinstated.then_some(now_ms),
                receipt_id: None,
                credited_tenths: None,
                delivered_at: None,
                last_error: None,
                attempts: 0,
                ..base
            }
        }
        // A withdrawal answered for a row that is no longer withdrawing.
        Outcome::Withdrawn { .. } => base,
        // The registry lost the record the correction named: the new
        // revision goes out as a new record.
        Outcome::Lost { .. } if row.state == State::Correcting => resend(&base, now_ms),
        Outcome::Lost { .. } => return None,
    })
}

fn repaired(row: &DeliveryRow, repair: &Repair, now_ms: i64) -> Option<DeliveryRow> {
    let (revision, states): (i64, &[State]) = match repair {
        Repair::Requeued { revision, .. } => (*revision, &[State::Delivered, State::Retrying]),
        Repair::Found { revision, .. } => (*revision, &[State::Retrying]),
        Repair::Corrected { revision, .. } => (*revision, &[State::Delivered]),
    };
    // Applied only to the row as the lookup saw it.
    if row.revision != revision
        || !states.contains(&row.state)
        || lease_held(row.lease_until, now_ms)
    {
        return None;
    }
    Some(match repair {
        // The lookup settled what an expired lease left unknown: the next
        // claim is a fresh send, not a takeover.
        Repair::Requeued { .. } => resend(&released(row), now_ms),
        Repair::Found {
            receipt_id,
            credited_tenths,
            ..
        } => DeliveryRow {
            state: State::Delivered,
            next_attempt_at: None,
            last_error: None,
            receipt_id: Some(receipt_id.clone()),
            credited_tenths: Some(*credited_tenths),
            delivered_at: Some(now_ms),
            ..row.clone()
        },
        Repair::Corrected {
            new_revision,
            idempotency_key,
            credited_tenths,
            ..
        } => DeliveryRow {
            state: State::Correcting,
            next_attempt_at: Some(now_ms),
            attempts: 0,
            last_error: None,
            revision: *new_revision,
            idempotency_key: Some(idempotency_key.clone()),
            credited_tenths: Some(*credited_tenths),
            ..row.clone()
        },
    })
}

#[cfg(test)]
pub(crate) mod fixture;
#[cfg(test)]
mod tests;
