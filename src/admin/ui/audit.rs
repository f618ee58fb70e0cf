//! `/ui/audit` (ops): the audit trail, newest first, as `GET /api/v1/audit`
//! gives it: resyncs, retries, reconciles and every lookup of a learner
//! (who looked up whom, masked). National IDs masked.

use super::{OpsOnly, layout};
use crate::admin::{AuditView, SharedState};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;

const PAGE: usize = 100;

#[derive(Debug, Default, serde::Deserialize)]
pub struct AuditQuery {
    /// Entries older than this id (the next page).
    before: Option<i64>,
}

pub async fn page(
    State(state): State<SharedState>,
    OpsOnly(session): OpsOnly,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let before = q.ok().and_then(|Query(q)| q.before).unwrap_or(i64::MAX);
    let lang = session.lang;
    let t = lang.t();
    let o = lang.o();
    let entries: Vec<AuditView> = match state.store.list_audit(before, PAGE).await {
        Ok(e) => e.into_iter().map(AuditView::from).collect(),
        Err(e) => return super::overview::store_error(&session, o.audit_title, e),
    };
    let masked =
        |v: &serde_json::Value| crate::domain::mask_ids_in_text(&v.to_string()).into_owned();
    let body = html! {
        @if entries.is_empty() {
            p { (o.audit_empty) }
        } @else {
            table id="audit" class="cards" {
                thead {
                    tr {
                        th scope="col" { "#" }
                        th scope="col" { (t.col_at) }
                        th scope="col" { (o.actor) }
                        th scope="col" { (t.col_action) }
                        th scope="col" { (o.scope) }
                        th scope="col" class="num" { (o.records) }
                        th scope="col" { (o.status) }
                        th scope="col" { (t.col_result) }
                    }
                }
                tbody {
                    @for e in &entries {
                        tr data-id=(e.id) data-action=(e.action) data-actor=(e.actor) data-status=(e.status) {
                            td data-label="#" {
                                @if e.action == "resync" { a href={ "/ui/resync/" (e.id) } { (e.id) } } @else { (e.id) }
                            }
                            td data-label=(t.col_at) { (super::people::short_time(&e.at)) }
                            td data-label=(o.actor) class="mono" { (e.actor) }
                            td data-label=(t.col_action) { code { (e.action) } }
                            td data-label=(o.scope) class="mono small" { (masked(&e.scope)) }
                            td data-label=(o.records) class="num" { (e.records) }
                            td data-label=(o.status) { (e.status) }
                            td data-label=(t.col_result) class="mono small" {
                                @if let Some(r) = &e.result { (masked(r)) } @else { "-" }
                            }
                        }
                    }
                }
            }
            @if entries.len() == PAGE {
                @if let Some(last) = entries.last() {
                    p { a href={ "/ui/audit?before=" (last.id) } id="older" { (o.older) } }
                }
            }
        }
    };
    layout::page(&session.ctx(), o.audit_title, body).into_response()
}
