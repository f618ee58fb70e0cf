//! `hoursync sla report`: how each registry stands against the promise of
//! 3 working days, and the records that broke it, for ops and support.

use crate::clock::taipei_rfc3339;
use crate::domain::RegistryKind;
use crate::store::{SlaFilter, Store, StoreError};
use serde::Serialize;

/// Breached records listed at most, unless asked otherwise.
pub const DEFAULT_LIMIT: usize = 100;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RegistrySla {
    pub registry: String,
    pub on_time: i64,
    pub late: i64,
    pub pending: i64,
    pub at_risk: i64,
    pub breached: i64,
}

/// A breached record as shown: the national ID masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreachedLine {
    pub delivery_id: i64,
    pub registry: RegistryKind,
    pub completion_id: String,
    pub course_code: String,
    pub national_id: String,
    pub state: String,
    pub reason: Option<String>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub eligible_since: String,
    pub due_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlaReport {
    pub generated_at: String,
    pub registries: Vec<RegistrySla>,
    pub breached: Vec<BreachedLine>,
}

pub async fn build(
    store: &dyn Store,
    now_ms: i64,
    at_risk_ms: i64,
    filter: SlaFilter,
    limit: usize,
) -> Result<SlaReport, StoreError> {
    let counts = store.sla_counts(now_ms, at_risk_ms, filter).await?;
    let registries = RegistryKind::ALL
        .into_iter()
        .filter(|r| filter.registry.is_none_or(|f| f == *r))
        .map(|registry| {
            let mut line = RegistrySla {
                registry: registry.to_string(),
                ..Default::default()
            };
            for c in counts.iter().filter(|c| c.registry == registry) {
                match c.sla.as_str() {
                    "on_time" => line.on_time += c.count,
                    "late" => line.late += c.count,
                    "breached" => line.breached += c.count,
                    "at_risk" => line.at_risk += c.count,
                    _ => line.pending += c.count,
                }
            }
            line
        })
        .collect();
    let breached = store
        .breached(now_ms, filter, limit)
        .await?
        .into_iter()
        .map(|b| BreachedLine {
            delivery_id: b.id,
            registry: b.registry,
            completion_id: b.completion_id,
            course_code: b.course_code,
            national_id: b.national_id.to_string(),
            state: b.state.as_str().to_string(),
            reason: b.reason,
            attempts: b.attempts,
            last_error: b.last_error,
            eligible_since: taipei_rfc3339(b.eligible_since),
            due_at: taipei_rfc3339(b.due_at),
        })
        .collect();
    Ok(SlaReport {
        generated_at: taipei_rfc3339(now_ms),
        registries,
        breached,
    })
}

pub fn render_text(r: &SlaReport) -> String {
    let mut out = format!(
        "SLA at {} (due: end of the 3rd working day after eligibility)\n",
        r.generated_at
    );
    out.push_str(&format!(
        "{:<9} {:>9} {:>7} {:>9} {:>8} {:>9}\n",
        "REGISTRY", "ON_TIME", "LATE", "PENDING", "AT_RISK", "BREACHED"
    ));
    for l in &r.registries {
        out.push_str(&format!(
            "{:<9} {:>9} {:>7} {:>9} {:>8} {:>9}\n",
            l.registry, l.on_time, l.late, l.pending, l.at_risk, l.breached
        ));
    }
    if r.breached.is_empty() {
        out.push_str("\nno undelivered record is past its due time\n");
        return out;
    }
    out.push_str(&format!(
        "\nbreached ({} shown, oldest due first):\n",
        r.breached.len()
    ));
    for b in &r.breached {
        out.push_str(&format!(
            "  #{} {} {} {} {} due {} state {} reason {} attempts {} last error {}\n",
            b.delivery_id,
            b.registry,
            b.national_id,
            b.course_code,
            b.completion_id,
            b.due_at,
            b.state,
            b.reason.as_deref().unwrap_or("-"),
            b.attempts,
            b.last_error.as_deref().unwrap_or("-"),
        ));
    }
    out
}
