//! `/ui/resync`: resync a learner, a course or a date range, for one or
//! every registry. The first POST is a dry run (what would be queued, by
//! state); its page carries a confirm button that starts the real run the
//! way `POST /api/v1/resyncs` does ([`crate::admin::api::begin_resync`]),
//! audited as `web:NAME`; `/ui/resync/{id}` then shows the run's audit
//! entry until it is done. The national ID travels in POST bodies only.

use super::i18n::Lang;
use super::{UiSession, layout};
use crate::admin::{AuditView, ResyncRequest, SharedState};
use crate::domain::RegistryKind;
use crate::resync::ResyncSummary;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

/// The form as sent: every field a string, parsed here.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ResyncForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    national_id: String,
    #[serde(default)]
    course_code: String,
    #[serde(default)]
    completed_from: String,
    #[serde(default)]
    completed_to: String,
    #[serde(default)]
    registry: String,
    #[serde(default)]
    verify: Option<String>,
    /// `confirm` starts the real run; anything else previews.
    #[serde(default)]
    step: String,
}

impl ResyncForm {
    /// The API's request for this form, or what is wrong with a field.
    fn request(&self, lang: Lang) -> Result<ResyncRequest, String> {
        let o = lang.o();
        let text = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let date = |s: &str| match text(s) {
            None => Ok(None),
            Some(d) => chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                .map(Some)
                .map_err(|_| format!("{} ({d})", o.bad_date)),
        };
        let registry = match text(&self.registry) {
            None => None,
            Some(r) => Some(
                r.parse::<RegistryKind>()
                    .map_err(|_| o.bad_registry.to_string())?,
            ),
        };
        let national_id = text(&self.national_id);
        if let Some(id) = &national_id
            && crate::domain::NationalId::parse(id).is_err()
        {
            return Err(lang.t().bad_id.to_string());
        }
        Ok(ResyncRequest {
            national_id,
            course_code: text(&self.course_code),
            registry,
            completed_from: date(&self.completed_from)?,
            completed_to: date(&self.completed_to)?,
            dry_run: self.step != "confirm",
            verify: self.verify.is_some(),
        })
    }
}

pub async fn form(session: UiSession) -> Markup {
    let o = session.lang.o();
    let body = html! {
        p class="hint" { (o.resync_intro) }
        (resync_form(&session, &ResyncForm::default()))
    };
    layout::page(&session.ctx(), o.resync_title, body)
}

fn resync_form(session: &UiSession, f: &ResyncForm) -> Markup {
    let lang = session.lang;
    let t = lang.t();
    let o = lang.o();
    html! {
        form method="post" action="/ui/resync" id="resync" class="card" {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="step" value="preview";
            label for="resync-national-id" { (t.id_label) }
            input type="text" id="resync-national-id" name="national_id" value=(f.national_id)
                autocomplete="off" autocapitalize="characters" spellcheck="false" maxlength="32";
            label for="resync-course" { (o.course_code) }
            input type="text" id="resync-course" name="course_code" value=(f.course_code)
                autocomplete="off" maxlength="64";
            label for="resync-from" { (o.completed_from) }
            input type="date" id="resync-from" name="completed_from" value=(f.completed_from);
            label for="resync-to" { (o.completed_to) }
            input type="date" id="resync-to" name="completed_to" value=(f.completed_to);
            label for="resync-registry" { (t.col_registry) }
            select id="resync-registry" name="registry" {
                option value="" selected[f.registry.is_empty()] { (o.all_registries) }
                @for r in RegistryKind::ALL {
                    option value=(r.as_str()) selected[f.registry == r.as_str()] { (lang.registry(r)) }
                }
            }
            div class="check" {
                input type="checkbox" id="resync-verify" name="verify" value="on" checked[f.verify.is_some()];
                label for="resync-verify" { (o.verify_label) }
            }
            p class="hint" { (o.verify_hint) }
            button type="submit" { (o.preview_button) }
        }
    }
}

pub async fn submit(
    State(state): State<SharedState>,
    session: UiSession,
    form: Result<Form<ResyncForm>, FormRejection>,
) -> Response {
    let lang = session.lang;
    let o = lang.o();
    let f = form.map(|Form(f)| f).unwrap_or_default();
    if let Some(refused) = session.csrf_refusal(&f.csrf) {
        return refused;
    }
    let invalid = |msg: String| {
        let body = html! {
            p role="alert" class="error" id="resync-error" { "⚠ " (msg) }
            (resync_form(&session, &f))
        };
        (
            StatusCode::BAD_REQUEST,
            layout::page(&session.ctx(), o.resync_title, body),
        )
            .into_response()
    };
    let req = match f.request(lang) {
        Ok(r) => r,
        Err(msg) => return invalid(msg),
    };
    let scope = match req.scope() {
        Ok(s) => s,
        Err(e) => return invalid(crate::domain::mask_ids_in_text(&e.1).into_owned()),
    };
    // The API's own dry run, for the preview and before a real run alike.
    let summary = match crate::resync::dry_run(state.store.as_ref(), &scope).await {
        Ok(s) => s,
        Err(crate::resync::ResyncError::EmptyScope) => return invalid(o.empty_scope.into()),
        Err(crate::resync::ResyncError::Store(e)) => return store_error(&session, e),
    };
    if req.dry_run {
        let body = html! {
            (resync_form(&session, &f))
            h2 { (o.preview_title) }
            (preview(lang, &summary))
            form method="post" action="/ui/resync" id="resync-confirm" class="card" {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="step" value="confirm";
                input type="hidden" name="national_id" value=(f.national_id);
                input type="hidden" name="course_code" value=(f.course_code);
                input type="hidden" name="completed_from" value=(f.completed_from);
                input type="hidden" name="completed_to" value=(f.completed_to);
                input type="hidden" name="registry" value=(f.registry);
                @if req.verify { input type="hidden" name="verify" value="on"; }
                button type="submit" id="confirm" { (o.confirm_button) }
            }
        };
        return layout::page(&session.ctx(), o.resync_title, body).into_response();
    }
    let actor = format!("web:{}", session.caller.name);
    match crate::admin::api::begin_resync(&state, &actor, scope, req.verify).await {
        Ok(id) => Redirect::to(&format!("/ui/resync/{id}")).into_response(),
        Err(e) => store_error(&session, e),
    }
}

/// The records in scope by state, and which of them a run requeues.
fn preview(lang: Lang, s: &ResyncSummary) -> Markup {
    let o = lang.o();
    let t = lang.t();
    html! {
        p id="preview-totals" { (o.completions) ": " strong { (s.completions) } " · " (o.records) ": " strong { (s.records) } }
        @if s.before.is_empty() {
            p { (o.nothing_in_scope) }
        } @else {
            table id="preview" {
                thead { tr { th scope="col" { (t.col_state) } th scope="col" class="num" { (o.records) } th scope="col" { (o.what_happens) } } }
                tbody {
                    @for (state, n) in &s.before {
                        tr data-state=(state) {
                            td { (lang.state(state).1) " " code { (state) } }
                            td class="num" { (n) }
                            td {
                                @if matches!(state.as_str(), "failed" | "rejected" | "retrying") {
                                    (o.will_requeue)
                                } @else {
                                    (o.will_rejudge)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A run's progress: its audit entry, refreshed until done.
pub async fn progress(
    State(state): State<SharedState>,
    session: UiSession,
    Path(raw): Path<String>,
) -> Response {
    let lang = session.lang;
    let t = lang.t();
    let o = lang.o();
    let Ok(id) = raw.parse::<i64>() else {
        return session.error_page(StatusCode::NOT_FOUND, t.not_found_title, o.no_resync);
    };
    let entry = match state.store.audit_entry(id).await {
        Ok(Some(e)) if e.action == "resync" => AuditView::from(e),
        Ok(_) => return session.error_page(StatusCode::NOT_FOUND, t.not_found_title, o.no_resync),
        Err(e) => return store_error(&session, e),
    };
    let running = entry.status == "running";
    let summary: Option<ResyncSummary> = entry
        .result
        .clone()
        .and_then(|r| serde_json::from_value(r).ok());
    let body = html! {
        div id="resync-progress" data-status=(entry.status)
            data-refresh=[running.then_some("2")] aria-live="polite" {
            dl class="facts" {
                dt { "#" } dd class="mono" { (entry.id) }
                dt { (o.status) } dd id="resync-status" { (status_words(lang, &entry.status)) " " code { (entry.status) } }
                dt { (o.actor) } dd class="mono" { (entry.actor) }
                dt { (o.started) } dd { (super::people::short_time(&entry.at)) }
                @if let Some(f) = &entry.finished_at { dt { (o.finished) } dd { (super::people::short_time(f)) } }
                dt { (o.scope) } dd class="mono" { (crate::domain::mask_ids_in_text(&entry.scope.to_string())) }
            }
            @if let Some(s) = &summary {
                p { (o.requeued) ": " strong id="requeued" { (s.requeued) } " · " (o.records) ": " (s.records)
                    @if s.missing_at_registry > 0 { " · " (o.missing_at_registry) ": " (s.missing_at_registry) }
                    @if s.lookup_errors > 0 { " · " (o.lookup_errors) ": " (s.lookup_errors) } }
                @if let Some(after) = &s.after {
                    table id="resync-after" {
                        thead { tr { th scope="col" { (t.col_state) } th scope="col" class="num" { (o.before) } th scope="col" class="num" { (o.after) } } }
                        tbody {
                            @for st in s.before.keys().chain(after.keys().filter(|k| !s.before.contains_key(*k))) {
                                tr data-state=(st) {
                                    td { (lang.state(st).1) " " code { (st) } }
                                    td class="num" { (s.before.get(st).copied().unwrap_or(0)) }
                                    td class="num" { (after.get(st).copied().unwrap_or(0)) }
                                }
                            }
                        }
                    }
                }
            } @else if let Some(r) = &entry.result {
                p class="error" role="alert" { (crate::domain::mask_ids_in_text(&r.to_string())) }
            }
            @if running {
                p { a href={ "/ui/resync/" (entry.id) } id="refresh" { (o.refresh) } }
            }
        }
    };
    layout::page(&session.ctx(), o.progress_title, body).into_response()
}

fn status_words(lang: Lang, status: &str) -> &'static str {
    let o = lang.o();
    match status {
        "running" => o.running,
        "done" => o.done,
        _ => o.failed_run,
    }
}

fn store_error(session: &UiSession, e: crate::store::StoreError) -> Response {
    super::overview::store_error(session, session.lang.o().resync_title, e)
}
