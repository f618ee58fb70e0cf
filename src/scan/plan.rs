//! The scan's writes: each (completion, registry) judged by the state
//! machine ([`crate::transition`], [`Event::Judged`]) and what it decides
//! made into the row the store writes. The transitions themselves, and why,
//! are in `transition/judged.rs`; the tests below table them as the scan
//! sees them, from facts to the written row.

use crate::domain::RegistryKind;
use crate::eligibility::{AccountFacts, Decision, Facts, evaluate};
use crate::store::{DeliveryRow, DeliveryWrite, Record, ScanRow};
use crate::transition::{Event, transition};

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

/// The write `decision` calls for, or `None` when the row already says it.
pub fn plan_pair(
    row: &ScanRow,
    registry: RegistryKind,
    decision: Decision,
    existing: Option<&DeliveryRow>,
    now_ms: i64,
) -> Option<DeliveryWrite> {
    let event = Event::Judged {
        facts: row,
        registry,
        decision,
    };
    transition(existing, event, now_ms).map(|next| write_of(row, next))
}

/// The scan's write of a judged row: its facts, state and schedule (a
/// judgement leaves the lease, receipt and credit alone, and the write
/// does not carry them). The learner and course are the record's own when
/// it has one. Attempts only ever start over or stay: `reset_attempts`
/// says which.
fn write_of(row: &ScanRow, next: DeliveryRow) -> DeliveryWrite {
    debug_assert!(
        next.record != Record::Unread,
        "a judged row's facts are read"
    );
    let record = next.record.into_facts();
    let (national_id, course_code) = match &record {
        Some(r) => (r.national_id.clone(), r.course_code.clone()),
        None => (
            row.person.national_id.clone(),
            row.course.course_code.clone(),
        ),
    };
    DeliveryWrite {
        completion_id: row.completion.completion_id.clone(),
        registry: next.registry,
        national_id,
        course_code,
        state: next.state,
        reason: next.reason,
        hours_tenths: next.hours_tenths,
        revision: next.revision,
        idempotency_key: next.idempotency_key,
        record,
        eligible_since: next.eligible_since,
        due_at: None,
        next_attempt_at: next.next_attempt_at,
        reset_attempts: next.attempts == 0 && next.last_error.is_none(),
        rescan: next.rescan,
    }
}

#[cfg(test)]
mod tests;
