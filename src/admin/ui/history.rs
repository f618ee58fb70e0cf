//! `/ui/deliveries/{delivery_id}`: one record's history, every request
//! made for it, newest first; the same data as `hoursync history` and the
//! API's attempts ([`crate::status::history`]).

use super::explain::explain;
use super::people::short_time;
use super::{UiSession, layout};
use crate::admin::SharedState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;

pub async fn page(
    State(state): State<SharedState>,
    session: UiSession,
    Path(raw): Path<String>,
) -> Response {
    let lang = session.lang;
    let t = lang.t();
    let Ok(id) = raw.parse::<i64>() else {
        return session.error_page(StatusCode::NOT_FOUND, t.not_found_title, t.no_delivery);
    };
    let (d, mut attempts) = match crate::status::history(state.store.as_ref(), id).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            return session.error_page(StatusCode::NOT_FOUND, t.not_found_title, t.no_delivery);
        }
        Err(e) => {
            tracing::error!(error = %e, "console: a history failed on the database");
            let status = if e.is_retryable() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            return session.error_page(status, t.history_title, t.store_error);
        }
    };
    attempts.reverse();
    let state_name = d.state.as_str();
    let (icon, words) = lang.state(state_name);
    let explained = explain(lang, d.registry, state_name, d.reason.as_deref());
    let dash = "-";
    let body = html! {
        dl class="facts" {
            dt { "#" } dd class="mono" { (d.id) }
            dt { (t.id_label) } dd class="mono" { (d.national_id) }
            dt { (t.col_course) } dd class="mono" { (d.course_code) }
            dt { (t.col_registry) } dd { (lang.registry(d.registry)) }
            dt { (t.col_state) } dd {
                span class={ "state state-" (state_name) } {
                    span aria-hidden="true" { (icon) } " " (words)
                }
                " " code class="reason" { (state_name) }
                @if let Some(r) = &d.reason { " · " (t.reason_code) ": " code { (r) } }
            }
            dt { (t.col_receipt) } dd class="mono" { (d.receipt_id.as_deref().unwrap_or(dash)) }
        }
        @if let Some(e) = explained {
            p { (e.meaning) }
            p { strong { (t.what_to_do) } " " (e.action) }
        }
        @if attempts.is_empty() {
            p { (t.no_attempts) }
        } @else {
            table id="attempts" class="cards" {
                thead {
                    tr {
                        th scope="col" { (t.col_at) }
                        th scope="col" { (t.col_action) }
                        th scope="col" { (t.col_revision) }
                        th scope="col" { (t.col_http) }
                        th scope="col" { (t.col_result) }
                        th scope="col" { (t.col_request_id) }
                        th scope="col" { (t.col_error) }
                    }
                }
                tbody {
                    @for a in &attempts {
                        tr data-action=(a.action) data-result=(a.result) {
                            td data-label=(t.col_at) { (short_time(&a.at)) }
                            td data-label=(t.col_action) { (a.action) }
                            td data-label=(t.col_revision) class="num" { (a.revision) }
                            td data-label=(t.col_http) class="num" {
                                (a.http_status.map_or_else(|| dash.to_string(), |s| s.to_string()))
                            }
                            td data-label=(t.col_result) { (a.result) }
                            td data-label=(t.col_request_id) class="mono" { (a.request_id) }
                            td data-label=(t.col_error) { (a.error.as_deref().unwrap_or(dash)) }
                        }
                    }
                }
            }
        }
    };
    layout::page(&session.ctx(), t.history_title, body).into_response()
}
