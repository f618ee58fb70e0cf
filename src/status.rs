//! The support view of one learner: every completion × registry, its state
//! and why. Shown by `hoursync status`; the national ID is masked.

use crate::clock::{from_ms, taipei_rfc3339};
use crate::domain::{Hours, NationalId, RegistryKind};
use crate::sla::{SlaState, sla_state};
use crate::store::{Store, StoreError};
use serde::Serialize;

/// State shown for a completion the scan has not judged yet.
pub const AWAITING_SCAN: &str = "awaiting_scan";

/// One line of a learner's status; `--json` prints exactly these keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusLine {
    /// The delivery's id, for `hoursync history` and `retry` (null before
    /// the scan judged the completion).
    pub delivery_id: Option<i64>,
    pub completion_id: String,
    pub course_code: String,
    /// The course's name; null when the course is not known.
    pub course_title: Option<String>,
    /// The completion date, `YYYY-MM-DD` in Asia/Taipei.
    pub completed_on: String,
    pub registry: RegistryKind,
    pub state: String,
    /// Null unless ineligible or rejected.
    pub reason: Option<String>,
    pub hours: Option<String>,
    pub eligible_since: Option<String>,
    pub receipt_id: Option<String>,
    /// The end of the third working day after `eligible_since`.
    pub due_at: Option<String>,
    /// Where the record stands against that promise; null when not eligible.
    pub sla: Option<SlaState>,
    /// Requests made for it that the history still keeps (`hoursync history`).
    pub attempts: i64,
}

/// One kept attempt, as `hoursync history` and the API show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AttemptLine {
    /// When the answer (or the failure) came, in Asia/Taipei.
    #[schema(format = DateTime)]
    pub at: String,
    pub revision: i64,
    /// `upload`, `correct`, `withdraw` or `lookup`.
    pub action: String,
    pub http_status: Option<u16>,
    pub result: String,
    /// The `X-Request-Id` sent, to find the request in the registry's logs.
    pub request_id: String,
    /// National IDs in it are masked.
    pub error: Option<String>,
}

impl From<&crate::store::Attempt> for AttemptLine {
    fn from(a: &crate::store::Attempt) -> Self {
        Self {
            at: taipei_rfc3339(a.at),
            revision: a.revision,
            action: a.action.clone(),
            http_status: a.http_status,
            result: a.result.clone(),
            request_id: a.request_id.clone(),
            error: a.error.as_deref().map(crate::domain::mask_ids_in),
        }
    }
}

/// Every completion × registry of one learner, judged against the promise
/// at `now_ms` (`at_risk`: how close to its due time a record is at risk).
pub async fn person_status(
    store: &dyn Store,
    id: &NationalId,
    now_ms: i64,
    at_risk: chrono::Duration,
) -> Result<Vec<StatusLine>, StoreError> {
    let records = store.person_records(id).await?;
    let mut lines = Vec::with_capacity(records.len());
    for r in records {
        match r.delivery {
            Some(d) => lines.push(StatusLine {
                delivery_id: Some(d.id),
                attempts: d.attempts,
                completion_id: r.completion_id,
                course_code: r.course_code,
                course_title: r.course_title,
                completed_on: r.completed_on,
                registry: d.registry,
                state: d.state.as_str().to_string(),
                reason: d.reason.filter(|_| {
                    matches!(
                        d.state,
                        crate::store::State::Ineligible
                            | crate::store::State::Rejected
                            | crate::store::State::Withdrawing
                            | crate::store::State::Withdrawn
                    )
                }),
                hours: d
                    .hours_tenths
                    .and_then(Hours::from_tenths)
                    .map(|h| h.to_string()),
                eligible_since: d.eligible_since.map(taipei_rfc3339),
                receipt_id: d.receipt_id,
                due_at: d.due_at.map(taipei_rfc3339),
                sla: d.due_at.map(|due| {
                    sla_state(
                        from_ms(due),
                        d.delivered_at.map(from_ms),
                        from_ms(now_ms),
                        at_risk,
                    )
                }),
            }),
            None => lines.extend(RegistryKind::ALL.into_iter().map(|registry| StatusLine {
                delivery_id: None,
                attempts: 0,
                completion_id: r.completion_id.clone(),
                course_code: r.course_code.clone(),
                course_title: r.course_title.clone(),
                completed_on: r.completed_on.clone(),
                registry,
                state: AWAITING_SCAN.into(),
                reason: None,
                hours: None,
                eligible_since: None,
                receipt_id: None,
                due_at: None,
                sla: None,
            })),
        }
    }
    Ok(lines)
}

/// A learner's records as support staff look them up over the API or the
/// console: [`person_status`], and an audit entry `lookup` saying who
/// (`actor`: `api:NAME`, `web:NAME`) looked up whom (the ID masked) and
/// when. A lookup whose audit entry can not be written fails: no record is
/// shown that the trail does not know of.
pub async fn look_up(
    store: &dyn Store,
    clock: &dyn crate::clock::Clock,
    actor: &str,
    id: &NationalId,
    at_risk: chrono::Duration,
) -> Result<Vec<StatusLine>, StoreError> {
    let lines = person_status(store, id, clock.now_ms(), at_risk).await?;
    let scope = serde_json::json!({ "scope": { "national_id": id.masked() } }).to_string();
    crate::audit::record(store, clock, actor, "lookup", scope, lines.len() as i64).await?;
    Ok(lines)
}

/// One delivery and every kept attempt made for it, oldest first: what the
/// API's attempts and the console's history page show. `None`: no such
/// delivery.
pub async fn history(
    store: &dyn Store,
    delivery_id: i64,
) -> Result<Option<(crate::store::DeliveryItem, Vec<AttemptLine>)>, StoreError> {
    let Some(d) = store.delivery(delivery_id).await? else {
        return Ok(None);
    };
    let attempts = store.attempts_of(delivery_id).await?;
    Ok(Some((d, attempts.iter().map(Into::into).collect())))
}

/// A plain table for a terminal.
pub fn render_text(id: &NationalId, lines: &[StatusLine]) -> String {
    let mut out = format!("learner {id}: {} record(s)\n", lines.len());
    out.push_str(&format!(
        "{:<16} {:<14} {:<9} {:<13} {:<26} {:>6} {:<25} {:<25} {:<9} {}\n",
        "COMPLETION",
        "COURSE",
        "REGISTRY",
        "STATE",
        "REASON",
        "HOURS",
        "ELIGIBLE SINCE",
        "DUE",
        "SLA",
        "RECEIPT"
    ));
    for l in lines {
        out.push_str(&format!(
            "{:<16} {:<14} {:<9} {:<13} {:<26} {:>6} {:<25} {:<25} {:<9} {}\n",
            l.completion_id,
            l.course_code,
            l.registry.as_str(),
            l.state,
            l.reason.as_deref().unwrap_or("-"),
            l.hours.as_deref().unwrap_or("-"),
            l.eligible_since.as_deref().unwrap_or("-"),
            l.due_at.as_deref().unwrap_or("-"),
            l.sla.map_or("-", |s| s.as_str()),
            l.receipt_id.as_deref().unwrap_or("-"),
        ));
    }
    out
}
