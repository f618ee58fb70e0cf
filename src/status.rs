//! The support view of one learner: every completion × registry, its state
//! and why. Shown by `hoursync status`; the national ID is masked.

use crate::clock::taipei_rfc3339;
use crate::domain::{Hours, NationalId, RegistryKind};
use crate::store::{Store, StoreError};
use serde::Serialize;

/// State shown for a completion the scan has not judged yet.
pub const AWAITING_SCAN: &str = "awaiting_scan";

/// One line of a learner's status; `--json` prints exactly these keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusLine {
    pub completion_id: String,
    pub course_code: String,
    pub registry: RegistryKind,
    pub state: String,
    /// Null unless ineligible or rejected.
    pub reason: Option<String>,
    pub hours: Option<String>,
    pub eligible_since: Option<String>,
    pub receipt_id: Option<String>,
}

pub async fn person_status(
    store: &dyn Store,
    id: &NationalId,
) -> Result<Vec<StatusLine>, StoreError> {
    let records = store.person_records(id.expose()).await?;
    let mut lines = Vec::with_capacity(records.len());
    for r in records {
        match r.delivery {
            Some(d) => lines.push(StatusLine {
                completion_id: r.completion_id,
                course_code: r.course_code,
                registry: d.registry,
                state: d.state.as_str().to_string(),
                reason: d.reason.filter(|_| {
                    matches!(
                        d.state,
                        crate::store::State::Ineligible | crate::store::State::Rejected
                    )
                }),
                hours: d
                    .hours_tenths
                    .and_then(Hours::from_tenths)
                    .map(|h| h.to_string()),
                eligible_since: d.eligible_since.map(taipei_rfc3339),
                receipt_id: d.receipt_id,
            }),
            None => lines.extend(RegistryKind::ALL.into_iter().map(|registry| StatusLine {
                completion_id: r.completion_id.clone(),
                course_code: r.course_code.clone(),
                registry,
                state: AWAITING_SCAN.into(),
                reason: None,
                hours: None,
                eligible_since: None,
                receipt_id: None,
            })),
        }
    }
    Ok(lines)
}

/// A plain table for a terminal.
pub fn render_text(id: &NationalId, lines: &[StatusLine]) -> String {
    let mut out = format!("learner {id}: {} record(s)\n", lines.len());
    out.push_str(&format!(
        "{:<16} {:<14} {:<9} {:<13} {:<26} {:>6} {:<25} {}\n",
        "COMPLETION", "COURSE", "REGISTRY", "STATE", "REASON", "HOURS", "ELIGIBLE SINCE", "RECEIPT"
    ));
    for l in lines {
        out.push_str(&format!(
            "{:<16} {:<14} {:<9} {:<13} {:<26} {:>6} {:<25} {}\n",
            l.completion_id,
            l.course_code,
            l.registry.as_str(),
            l.state,
            l.reason.as_deref().unwrap_or("-"),
            l.hours.as_deref().unwrap_or("-"),
            l.eligible_since.as_deref().unwrap_or("-"),
            l.receipt_id.as_deref().unwrap_or("-"),
        ));
    }
    out
}
