//! `/api/v1`: what support staff and ops do over HTTP.

use super::{ApiError, Authed, SharedState};
use crate::admin::auth::Role;
use crate::domain::NationalId;
use crate::status::StatusLine;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};

pub fn routes() -> Router<SharedState> {
    Router::new().route("/api/v1/people/{national_id}/records", get(person_records))
}

/// The same view as `hoursync status --json`; the ID masked in the answer.
async fn person_records(
    State(state): State<SharedState>,
    auth: Authed,
    Path(national_id): Path<String>,
) -> Result<Json<Vec<StatusLine>>, ApiError> {
    auth.require(Role::Support)?;
    let id = NationalId::parse(&national_id).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let lines = crate::status::person_status(state.store.as_ref(), &id, state.clock.now_ms(), state.at_risk).await?;
    Ok(Json(lines))
}
