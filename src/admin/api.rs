//! `/api/v1`: what support staff and ops do over HTTP. `support` reads and
//! resyncs; `ops` also retries single records and reads the audit trail.
//! National IDs are masked in every answer.

use super::{ApiError, Authed, SharedState};
use crate::admin::auth::Role;
use crate::clock::taipei_rfc3339;
use crate::domain::{Hours, NationalId, RegistryKind, mask};
use crate::resync::ResyncSummary;
use crate::status::StatusLine;
use crate::store::{AuditEntry, DeliveryItem, ResyncScope, State};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/v1/people/{national_id}/records", get(person_records))
        .route("/api/v1/deliveries", get(list_deliveries))
        .route("/api/v1/deliveries/{id}/retry", post(retry))
        .route("/api/v1/resyncs", post(start_resync))
        .route("/api/v1/resyncs/{id}", get(resync_progress))
        .route("/api/v1/audit", get(audit))
}

fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(v)| v)
        .map_err(|r| ApiError(r.status(), crate::domain::mask_ids_in(&r.body_text())))
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(v)| v)
        .map_err(|r| ApiError(StatusCode::BAD_REQUEST, r.body_text()))
}

/// The same view as `hoursync status --json`; the ID masked in the answer.
async fn person_records(
    AxState(state): AxState<SharedState>,
    auth: Authed,
    Path(national_id): Path<String>,
) -> Result<Json<Vec<StatusLine>>, ApiError> {
    auth.require(Role::Support)?;
    let id = NationalId::parse(&national_id).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let lines = crate::status::person_status(
        state.store.as_ref(),
        &id,
        state.clock.now_ms(),
        state.at_risk,
    )
    .await?;
    Ok(Json(lines))
}

/// A delivery as the API shows it.
#[derive(Debug, Serialize)]
pub struct DeliveryView {
    pub id: i64,
    pub completion_id: String,
    pub registry: RegistryKind,
    pub national_id: String,
    pub course_code: String,
    pub state: State,
    pub reason: Option<String>,
    pub hours: Option<String>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub eligible_since: Option<String>,
    pub due_at: Option<String>,
    pub receipt_id: Option<String>,
}

impl From<DeliveryItem> for DeliveryView {
    fn from(d: DeliveryItem) -> Self {
        DeliveryView {
            id: d.id,
            completion_id: d.completion_id,
            registry: d.registry,
            national_id: mask(&d.national_id),
            course_code: d.course_code,
            state: d.state,
            reason: d.reason,
            hours: d
                .hours_tenths
                .and_then(Hours::from_tenths)
                .map(|h| h.to_string()),
            attempts: d.attempts,
            last_error: d.last_error,
            eligible_since: d.eligible_since.map(taipei_rfc3339),
            due_at: d.due_at.map(taipei_rfc3339),
            receipt_id: d.receipt_id,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveriesQuery {
    state: Option<String>,
    registry: Option<RegistryKind>,
    /// The `next_cursor` of the previous page.
    cursor: Option<i64>,
    limit: Option<usize>,
}

#[derive(Debug, Serialize)]
struct DeliveriesPage {
    items: Vec<DeliveryView>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<i64>,
}

async fn list_deliveries(
    AxState(state): AxState<SharedState>,
    auth: Authed,
    q: Result<Query<DeliveriesQuery>, QueryRejection>,
) -> Result<Json<DeliveriesPage>, ApiError> {
    auth.require(Role::Support)?;
    let q = query(q)?;
    let wanted = match q.state.as_deref() {
        None => None,
        Some(s) => Some(State::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown state {s:?} (ineligible, pending, retrying, delivered, rejected, failed)"
            ))
        })?),
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let items = state
        .store
        .list_deliveries(wanted, q.registry, q.cursor.unwrap_or(0), limit)
        .await?;
    let next_cursor = (items.len() == limit)
        .then(|| items.last().map(|d| d.id))
        .flatten();
    Ok(Json(DeliveriesPage {
        items: items.into_iter().map(DeliveryView::from).collect(),
        next_cursor,
    }))
}

#[derive(Debug, Serialize)]
struct Retried {
    id: i64,
    was: State,
    now: State,
}

/// Requeues one `failed` or `rejected` record after its data was fixed.
async fn retry(
    AxState(state): AxState<SharedState>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<Json<Retried>, ApiError> {
    let caller = auth.require(Role::Ops)?;
    match crate::resync::retry_one(
        state.store.as_ref(),
        state.clock.as_ref(),
        &format!("api:{}", caller.name),
        id,
    )
    .await?
    {
        None => Err(ApiError::not_found(format!("no delivery {id}"))),
        Some(Err(was)) => Err(ApiError(
            StatusCode::CONFLICT,
            format!(
                "delivery {id} is {}: only failed or rejected records are retried",
                was.as_str()
            ),
        )),
        Some(Ok(was)) => Ok(Json(Retried {
            id,
            was,
            now: State::Pending,
        })),
    }
}

/// A resync request: every given field narrows the scope.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResyncRequest {
    pub national_id: Option<String>,
    pub course_code: Option<String>,
    pub registry: Option<RegistryKind>,
    /// First completion date, `YYYY-MM-DD` (Asia/Taipei), inclusive.
    pub completed_from: Option<chrono::NaiveDate>,
    /// Last completion date, inclusive.
    pub completed_to: Option<chrono::NaiveDate>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub verify: bool,
}

/// Midnight of a date in Asia/Taipei, as milliseconds.
pub fn taipei_midnight_ms(d: chrono::NaiveDate) -> i64 {
    let midnight = d.and_hms_opt(0, 0, 0).expect("valid time");
    midnight
        .and_local_timezone(chrono_tz::Asia::Taipei)
        .earliest()
        .map_or(0, |t| t.timestamp_millis())
}

impl ResyncRequest {
    pub fn scope(&self) -> Result<ResyncScope, ApiError> {
        let national_id = match &self.national_id {
            Some(raw) => Some(
                NationalId::parse(raw)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?
                    .expose()
                    .to_string(),
            ),
            None => None,
        };
        if let (Some(from), Some(to)) = (self.completed_from, self.completed_to)
            && from > to
        {
            return Err(ApiError::bad_request(
                "completed_from is after completed_to",
            ));
        }
        Ok(ResyncScope {
            national_id,
            course_code: self.course_code.clone(),
            registry: self.registry,
            completed_from_ms: self.completed_from.map(taipei_midnight_ms),
            completed_to_ms: self
                .completed_to
                .and_then(|d| d.succ_opt())
                .map(taipei_midnight_ms),
        })
    }
}

#[derive(Debug, Serialize)]
struct ResyncAnswer {
    /// Null for a dry run.
    id: Option<i64>,
    dry_run: bool,
    verify: bool,
    #[serde(flatten)]
    summary: ResyncSummary,
}

async fn start_resync(
    AxState(state): AxState<SharedState>,
    auth: Authed,
    body: Result<Json<ResyncRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<ResyncAnswer>), ApiError> {
    let caller = auth.require(Role::Support)?.clone();
    let req = json_body(body)?;
    let scope = req.scope()?;
    let summary = crate::resync::dry_run(state.store.as_ref(), &scope)
        .await
        .map_err(resync_error)?;
    if req.dry_run {
        return Ok((
            StatusCode::OK,
            Json(ResyncAnswer {
                id: None,
                dry_run: true,
                verify: req.verify,
                summary,
            }),
        ));
    }
    let actor = format!("api:{}", caller.name);
    let id = crate::resync::open_audit(
        state.store.as_ref(),
        state.clock.as_ref(),
        &actor,
        &scope,
        req.verify,
    )
    .await?;
    let task_state = state.clone();
    let verify = req.verify;
    tokio::spawn(async move {
        let s = task_state;
        if let Err(e) = crate::resync::run(
            s.store.as_ref(),
            s.clock.as_ref(),
            &s.clients,
            &scope,
            verify,
            id,
        )
        .await
        {
            tracing::error!(resync = id, error = %e, "resync failed");
        }
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(ResyncAnswer {
            id: Some(id),
            dry_run: false,
            verify: req.verify,
            summary,
        }),
    ))
}

fn resync_error(e: crate::resync::ResyncError) -> ApiError {
    match e {
        crate::resync::ResyncError::EmptyScope => ApiError::bad_request(e.to_string()),
        crate::resync::ResyncError::Store(s) => s.into(),
    }
}

/// An audit entry as the API shows it.
#[derive(Debug, Serialize)]
pub struct AuditView {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub scope: serde_json::Value,
    pub records: i64,
    pub status: String,
    pub result: Option<serde_json::Value>,
    pub finished_at: Option<String>,
}

impl From<AuditEntry> for AuditView {
    fn from(e: AuditEntry) -> Self {
        let json =
            |s: &str| serde_json::from_str(s).unwrap_or(serde_json::Value::String(s.to_string()));
        let mut scope = json(&e.scope);
        if let Some(nid) = scope.pointer_mut("/scope/national_id")
            && let Some(s) = nid.as_str()
        {
            *nid = serde_json::Value::String(mask(s));
        }
        AuditView {
            id: e.id,
            at: taipei_rfc3339(e.at),
            actor: e.actor,
            action: e.action,
            scope,
            records: e.records,
            status: e.status,
            result: e.result.as_deref().map(json),
            finished_at: e.finished_at.map(taipei_rfc3339),
        }
    }
}

async fn resync_progress(
    AxState(state): AxState<SharedState>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<Json<AuditView>, ApiError> {
    auth.require(Role::Support)?;
    match state.store.audit_entry(id).await? {
        Some(e) if e.action == "resync" => Ok(Json(e.into())),
        _ => Err(ApiError::not_found(format!("no resync {id}"))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    /// Entries older than this id (the last id of the previous page).
    before: Option<i64>,
    limit: Option<usize>,
}

async fn audit(
    AxState(state): AxState<SharedState>,
    auth: Authed,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<Vec<AuditView>>, ApiError> {
    auth.require(Role::Ops)?;
    let q = query(q)?;
    let entries = state
        .store
        .list_audit(
            q.before.unwrap_or(i64::MAX),
            q.limit.unwrap_or(100).clamp(1, 1000),
        )
        .await?;
    Ok(Json(entries.into_iter().map(AuditView::from).collect()))
}
