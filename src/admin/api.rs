//! `/api/v1`: what support staff and ops do over HTTP. `support` reads and
//! resyncs; `ops` also retries single records and reads the audit trail.
//! National IDs are masked in every answer.

use super::openapi::{
    BAD_ID, FORBIDDEN_OPS, RegistryKindDoc, ResyncSummaryDoc, STORE_500, STORE_503, StateDoc,
    StatusLineDoc, UNAUTHORIZED,
};
use super::{ApiError, Authed, Problem, SharedState};
use crate::admin::auth::Role;
use crate::clock::{taipei_midnight_ms, taipei_rfc3339};
use crate::domain::{Hours, NationalId, RegistryKind, mask};
use crate::resync::ResyncSummary;
use crate::status::StatusLine;
use crate::store::{AuditEntry, DeliveryItem, ResyncScope, State};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

// The deprecated GET lookup stays served for compatibility.
#[allow(deprecated)]
pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/v1/people/{national_id}/records", get(person_records))
        .route("/api/v1/people:lookup", post(look_up_person))
        .route("/api/v1/deliveries", get(list_deliveries))
        .route("/api/v1/deliveries/{id}/retry", post(retry))
        .route("/api/v1/deliveries/{id}/attempts", get(attempts))
        .route("/api/v1/resyncs", post(start_resync))
        .route("/api/v1/resyncs/{id}", get(resync_progress))
        .route("/api/v1/audit", get(audit))
}

fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(v)| v)
        .map_err(|r| ApiError(r.status(), r.body_text()))
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(v)| v)
        .map_err(|r| ApiError(StatusCode::BAD_REQUEST, r.body_text()))
}

/// A path parameter, or a JSON 400 naming what was wrong (axum's own
/// rejection is plain text).
fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    p.map(|Path(v)| v)
        .map_err(|r| ApiError(r.status(), r.body_text()))
}

/// A learner's records: every completion × registry, the same view as
/// `hoursync status --json`, the ID masked.
///
/// Role: support. An unknown but valid ID answers an empty list. Audited
/// (who looked up whom, masked). Deprecated: the ID in the path ends up in
/// proxy and access logs and in browser history; use
/// `POST /api/v1/people:lookup`, which answers the same.
#[utoipa::path(
    get,
    path = "/api/v1/people/{national_id}/records",
    tag = "support",
    params(("national_id" = String, Path, description = "A national ID (e.g. `A123456789`)")),
    responses(
        (status = 200, description = "The learner's records; empty when none", body = Vec<StatusLineDoc>),
        (status = 400, description = BAD_ID, body = Problem),
        (status = 401, description = UNAUTHORIZED, body = Problem),
        (status = 500, description = STORE_500, body = Problem),
        (status = 503, description = STORE_503, body = Problem),
    ),
    security(("bearer" = [])),
)]
#[deprecated = "the national ID in the URL; use POST /api/v1/people:lookup"]
pub(super) async fn person_records(
    AxState(state): AxState<SharedState>,
    auth: Authed,
    national_id: Result<Path<String>, PathRejection>,
) -> Result<Json<Vec<StatusLine>>, ApiError> {
    let caller = auth.require(Role::Support)?;
    let national_id = path(national_id)?;
    look_up(&state, &format!("api:{}", caller.name), &national_id).await
}

/// The national ID to look up, in the body, so that it never appears in a
/// URL. Unknown fields are a 422.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupRequest {
    /// A national ID (e.g. `A123456789`).
    pub national_id: String,
}

/// A learner's records: every completion × registry, the same view as
/// `hoursync status --json`, the ID masked.
///
/// Role: support. An unknown but valid ID answers an empty list. Audited:
/// the audit trail says who looked up whom (masked) and when.
#[utoipa::path(
    post,
    path = "/api/v1/people:lookup",
    tag = "support",
    request_body(content = LookupRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The learner's records; empty when none", body = Vec<StatusLineDoc>),
        (status = 400, description = "Not JSON, or not a national ID: a letter, 1 or 2 (or a second letter), 8 digits, a valid check digit", body = Problem),
        (status = 401, description = UNAUTHORIZED, body = Problem),
        (status = 413, description = "A body over 64 KiB", body = Problem),
        (status = 415, description = "The body is not declared `application/json`", body = Problem),
        (status = 422, description = "JSON of the wrong shape: no `national_id`, a wrong type, an unknown field", body = Problem),
        (status = 500, description = STORE_500, body = Problem),
        (status = 503, description = STORE_503, body = Problem),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn look_up_person(
    AxState(state): AxState<SharedState>,
    auth: Authed,
    body: Result<Json<LookupRequest>, JsonRejection>,
) -> Result<Json<Vec<StatusLine>>, ApiError> {
    let caller = auth.require(Role::Support)?.clone();
    let req = json_body(body)?;
    look_up(&state, &format!("api:{}", caller.name), &req.national_id).await
}

/// Both lookups: parse the ID, then [`crate::status::look_up`] (audited).
async fn look_up(
    state: &SharedState,
    actor: &str,
    raw: &str,
) -> Result<Json<Vec<StatusLine>>, ApiError> {
    let id = NationalId::parse(raw).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let lines = crate::status::look_up(
        state.store.as_ref(),
        state.clock.as_ref(),
        actor,
        &id,
        state.at_risk,
    )
    .await?;
    Ok(Json(lines))
}

/// A delivery (one completion × registry) as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Delivery)]
pub struct DeliveryView {
    pub id: i64,
    pub completion_id: String,
    #[schema(value_type = RegistryKindDoc)]
    pub registry: RegistryKind,
    /// Masked (`A12*****89`).
    pub national_id: String,
    pub course_code: String,
    #[schema(value_type = StateDoc)]
    pub state: State,
    /// Why it is ineligible or was rejected.
    #[schema(required = true)]
    pub reason: Option<String>,
    /// Certified hours, e.g. `2.5`.
    #[schema(required = true)]
    pub hours: Option<String>,
    pub attempts: i64,
    #[schema(required = true)]
    pub last_error: Option<String>,
    /// RFC 3339, Asia/Taipei.
    #[schema(required = true, format = DateTime)]
    pub eligible_since: Option<String>,
    /// The end of the third working day after `eligible_since` (RFC 3339).
    #[schema(required = true, format = DateTime)]
    pub due_at: Option<String>,
    #[schema(required = true)]
    pub receipt_id: Option<String>,
}

impl From<DeliveryItem> for DeliveryView {
    fn from(d: DeliveryItem) -> Self {
        DeliveryView {
            id: d.id,
            completion_id: d.completion_id,
            registry: d.registry,
            national_id: d.national_id.to_string(),
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

/// Any other query key is a 400.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct DeliveriesQuery {
    /// Only deliveries in this state.
    #[param(value_type = Option<StateDoc>)]
    state: Option<String>,
    /// Only deliveries to this registry.
    #[param(value_type = Option<RegistryKindDoc>)]
    registry: Option<RegistryKind>,
    /// The `next_cursor` of the previous page (deliveries with a larger id).
    cursor: Option<i64>,
    /// Page size, default 100, clamped to 1..=1000.
    limit: Option<usize>,
}

/// A page of deliveries, in id order.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DeliveriesPage)]
pub(super) struct DeliveriesPage {
    items: Vec<DeliveryView>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    next_cursor: Option<i64>,
}

/// Deliveries in id order, a page at a time.
///
/// Role: support.
#[utoipa::path(
    get,
    path = "/api/v1/deliveries",
    tag = "support",
    params(DeliveriesQuery),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveriesPage),
        (status = 400, description = "A query value that does not parse (unknown state or registry, a non-number cursor or limit) or an unknown query key", body = Problem),
        (status = 401, description = UNAUTHORIZED, body = Problem),
        (status = 500, description = STORE_500, body = Problem),
        (status = 503, description = STORE_503, body = Problem),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn list_deliveries(
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
                "unknown state {s:?} (ineligible, pending, retrying, delivered, rejected, failed, correcting, withdrawing, withdrawn)"
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

/// A requeued delivery.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Retried)]
pub(super) struct Retried {
    id: i64,
    /// `failed` or `rejected`.
    #[schema(value_type = StateDoc)]
    was: State,
    /// Always `pending`.
    #[schema(value_type = StateDoc)]
    now: State,
}

/// Requeues one `failed` or `rejected` record after its data was fixed.
///
/// Role: ops. No body is read. Audited.
#[utoipa::path(
    post,
    path = "/api/v1/deliveries/{id}/retry",
    tag = "ops",
    params(("id" = i64, Path, description = "A delivery's `id`")),
    responses(
        (status = 200, description = "Requeued", body = Retried),
        (status = 400, description = "The id is not a 64-bit integer", body = Problem),
        (status = 401, description = UNAUTHORIZED, body = Problem),
        (status = 403, description = FORBIDDEN_OPS, body = Problem),
        (status = 404, description = "No such delivery", body = Problem),
        (status = 409, description = "The delivery is neither failed nor rejected", body = Problem),
        (status = 500, description = STORE_500, body = Problem),
        (status = 503, description = STORE_503, body = Problem),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn retry(
    AxState(state): AxState<SharedState>,
    auth: Authed,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<Retried>, ApiError> {
    let caller = auth.require(Role::Ops)?;
    let id = path(id)?;
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

/// A delivery's kept attempt history.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AttemptHistory)]
pub(super) struct AttemptHistory {
    delivery_id: i64,
    #[schema(value_type = StateDoc)]
    state: State,
    /// Oldest first; kept `history.retention_days`.
    attempts: Vec<crate::status::AttemptLine>,
}

/// Every request made for one delivery (uploads, corrections, withdrawals,
/// lookups), with its time, revision, HTTP status, result, request id and
/// error: "what happened to this record?" (`hoursync history ID`).
///
/// Role: support.
#[utoipa::path(
    get,
    path = "/api/v1/deliveries/{id}/attempts",
    tag = "support",
    params(("id" = i64, Path, description = "A delivery's `id` (`delivery_id` in a person's records)")),
    responses(
        (status = 200, description = "The kept attempts, oldest first", body = AttemptHistory),
        (status = 400, description = "The id is not a 64-bit integer", body = Problem),
        (status = 401, description = UNAUTHORIZED, body = Problem),
        (status = 404, description = "No such delivery", body = Problem),
        (status = 500, description = STORE_500, body = Problem),
        (status = 503, description = STORE_503, body = Problem),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn attempts(
    AxState(state): AxState<SharedState>,
    auth: Authed,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<AttemptHistory>, ApiError> {
    auth.require(Role::Support)?;
    let id = path(id)?;
    let Some((d, attempts)) = crate::status::history(state.store.as_ref(), id).await? else {
        return Err(ApiError::not_found(format!("no delivery {id}")));
    };
    Ok(Json(AttemptHistory {
        delivery_id: id,
        state: d.state,
        attempts,
    }))
}

/// A resync request: every given field narrows the scope; at least one of
/// `national_id`, `course_code`, `registry`, `completed_from`,
/// `completed_to` is needed. Unknown fields are a 422.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResyncRequest {
    /// A national ID (e.g. `A123456789`).
    pub national_id: Option<String>,
    pub course_code: Option<String>,
    #[schema(value_type = Option<RegistryKindDoc>)]
    pub registry: Option<RegistryKind>,
    /// First completion date, `YYYY-MM-DD` (Asia/Taipei), inclusive.
    pub completed_from: Option<chrono::NaiveDate>,
    /// Last completion date, inclusive.
    pub completed_to: Option<chrono::NaiveDate>,
    /// Only count the records in scope, change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Also look every record believed delivered up at its registry and
    /// resend what it lacks.
    #[serde(default)]
    pub verify: bool,
}

impl ResyncRequest {
    pub fn scope(&self) -> Result<ResyncScope, ApiError> {
        let national_id = match &self.national_id {
            Some(raw) => {
                Some(NationalId::parse(raw).map_err(|e| ApiError::bad_request(e.to_string()))?)
            }
            None => None,
        };
        if let Some(code) = &self.course_code {
            // The store reads an empty course code as "every course": a
            // scope of `""` would resync the whole database.
            if code.is_empty() {
                return Err(ApiError::bad_request("course_code is empty"));
            }
            // No course code has one, and PostgreSQL refuses a NUL in text.
            if code.chars().any(char::is_control) {
                return Err(ApiError::bad_request(
                    "course_code contains a control character",
                ));
            }
        }
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

/// What a resync covers; a real run's progress is at `/api/v1/resyncs/{id}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ResyncAnswer)]
pub(super) struct ResyncAnswer {
    /// The resync's id; null for a dry run.
    #[schema(required = true)]
    id: Option<i64>,
    dry_run: bool,
    verify: bool,
    #[serde(flatten)]
    #[schema(value_type = ResyncSummaryDoc)]
    summary: ResyncSummary,
}

/// Starts a resync of a scope, or with `dry_run` only counts it.
///
/// Role: support. A real run answers 202 at once and goes on in the
/// background; it is audited.
#[utoipa::path(
    post,
    path = "/api/v1/resyncs",
    tag = "support",
    request_body(content = ResyncRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "A dry run: the records in scope by state", body = ResyncAnswer),
        (status = 202, description = "Started: its id and the records in scope by state", body = ResyncAnswer),
        (status = 400, description = "Not JSON, an empty scope, an invalid national ID, an empty course_code or one with a control character, or completed_from after completed_to", body = Problem),
        (status = 401, description = UNAUTHORIZED, body = Problem),
        (status = 413, description = "A body over 64 KiB", body = Problem),
        (status = 415, description = "The body is not declared `application/json`", body = Problem),
        (status = 422, description = "JSON of the wrong shape: a wrong type, an unknown field, an unknown registry, a bad date", body = Problem),
        (status = 500, description = STORE_500, body = Problem),
        (status = 503, description = STORE_503, body = Problem),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn start_resync(
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
    let id = begin_resync(&state, &actor, scope, req.verify).await?;
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

/// Opens a real resync's audit entry as `actor` and runs it in the
/// background; its id, whose audit entry shows the progress. The API and
/// the console (`web:NAME`) both start resyncs here.
pub(crate) async fn begin_resync(
    state: &SharedState,
    actor: &str,
    scope: ResyncScope,
    verify: bool,
) -> Result<i64, crate::store::StoreError> {
    let id = crate::resync::open_audit(
        state.store.as_ref(),
        state.clock.as_ref(),
        actor,
        &scope,
        verify,
    )
    .await?;
    let s = state.clone();
    tokio::spawn(async move {
        if let Err(e) = crate::resync::run(
            s.store.as_ref(),
            s.clock.as_ref(),
            &s.registries,
            &scope,
            verify,
            id,
        )
        .await
        {
            tracing::error!(resync = id, error = %e, "resync failed");
        }
    });
    Ok(id)
}

fn resync_error(e: crate::resync::ResyncError) -> ApiError {
    match e {
        crate::resync::ResyncError::EmptyScope => ApiError::bad_request(e.to_string()),
        crate::resync::ResyncError::Store(s) => s.into(),
    }
}

/// An audit entry (a resync or a retry) as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AuditEntry)]
pub struct AuditView {
    pub id: i64,
    /// When it started (RFC 3339, Asia/Taipei).
    #[schema(format = DateTime)]
    pub at: String,
    /// `api:NAME`, `web:NAME` (the console) or `cli:USER`.
    pub actor: String,
    /// `resync`, `retry` or `lookup` (a learner's records were read).
    pub action: String,
    /// What it covered, national IDs masked.
    pub scope: serde_json::Value,
    /// How many records.
    pub records: i64,
    /// `running`, `done` or `failed`.
    pub status: String,
    /// A resync's summary once it ran, or `{"error": …}`.
    #[schema(required = true)]
    pub result: Option<serde_json::Value>,
    /// RFC 3339; null while running.
    #[schema(required = true, format = DateTime)]
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

/// A resync's progress (`running`, `done`, `failed`) and result.
///
/// Role: support.
#[utoipa::path(
    get,
    path = "/api/v1/resyncs/{id}",
    tag = "support",
    params(("id" = i64, Path, description = "The `id` a resync was answered")),
    responses(
        (status = 200, description = "Its audit entry", body = AuditView),
        (status = 400, description = "The id is not a 64-bit integer", body = Problem),
        (status = 401, description = UNAUTHORIZED, body = Problem),
        (status = 404, description = "No such resync", body = Problem),
        (status = 500, description = STORE_500, body = Problem),
        (status = 503, description = STORE_503, body = Problem),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn resync_progress(
    AxState(state): AxState<SharedState>,
    auth: Authed,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<AuditView>, ApiError> {
    auth.require(Role::Support)?;
    let id = path(id)?;
    match state.store.audit_entry(id).await? {
        Some(e) if e.action == "resync" => Ok(Json(e.into())),
        _ => Err(ApiError::not_found(format!("no resync {id}"))),
    }
}

/// Any other query key is a 400.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct AuditQuery {
    /// Entries older than this id (the last id of the previous page).
    before: Option<i64>,
    /// Page size, default 100, clamped to 1..=1000.
    limit: Option<usize>,
}

/// The audit trail, newest first.
///
/// Role: ops.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "ops",
    params(AuditQuery),
    responses(
        (status = 200, description = "Audit entries, newest first", body = Vec<AuditView>),
        (status = 400, description = "A non-number before or limit, or an unknown query key", body = Problem),
        (status = 401, description = UNAUTHORIZED, body = Problem),
        (status = 403, description = FORBIDDEN_OPS, body = Problem),
        (status = 500, description = STORE_500, body = Problem),
        (status = 503, description = STORE_503, body = Problem),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn audit(
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
