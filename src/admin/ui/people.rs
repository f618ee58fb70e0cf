//! `/ui/people`: look a learner up. The national ID goes in a POST body
//! and the answer is that POST's page, so the whole ID is never in a URL,
//! the browser's history, a page title, a log line or a metric. The lookup
//! is the API's own ([`crate::status::look_up`]), audited as `web:NAME`.

use super::explain::{explain, reply};
use super::i18n::{Lang, Text};
use super::{UiSession, layout};
use crate::admin::SharedState;
use crate::domain::NationalId;
use crate::status::StatusLine;
use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

#[derive(serde::Deserialize)]
pub struct LookupForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    national_id: String,
}

/// The lookup form alone.
pub async fn form(session: UiSession) -> Markup {
    let t = session.lang.t();
    layout::page(&session.ctx(), t.people_title, lookup_form(&session, None))
}

fn lookup_form(session: &UiSession, error: Option<&str>) -> Markup {
    let t = session.lang.t();
    html! {
        form method="post" action="/ui/people" class="card" {
            input type="hidden" name="csrf" value=(session.csrf);
            label for="national-id" { (t.id_label) }
            // No autocomplete: the browser must not keep IDs in its form history.
            input type="text" id="national-id" name="national_id" required
                autocomplete="off" autocapitalize="characters" spellcheck="false"
                maxlength="32" aria-describedby="national-id-hint"
                aria-invalid=[error.map(|_| "true")];
            p class="hint" id="national-id-hint" { (t.id_hint) }
            @if let Some(e) = error {
                p role="alert" class="error" id="lookup-error" { "⚠ " (e) }
            }
            button type="submit" { (t.look_up) }
        }
    }
}

/// Looks the learner up and shows every completion × registry.
pub async fn look_up(
    State(state): State<SharedState>,
    session: UiSession,
    form: Result<Form<LookupForm>, FormRejection>,
) -> Response {
    let t = session.lang.t();
    let form = form.map(|Form(f)| f).unwrap_or(LookupForm {
        csrf: String::new(),
        national_id: String::new(),
    });
    if let Some(refused) = session.csrf_refusal(&form.csrf) {
        return refused;
    }
    let Ok(id) = NationalId::parse(&form.national_id) else {
        let body = lookup_form(&session, Some(t.bad_id));
        return (
            StatusCode::BAD_REQUEST,
            layout::page(&session.ctx(), t.people_title, body),
        )
            .into_response();
    };
    let actor = format!("web:{}", session.caller.name);
    let lines = match crate::status::look_up(
        state.store.as_ref(),
        state.clock.as_ref(),
        &actor,
        &id,
        state.at_risk,
    )
    .await
    {
        Ok(lines) => lines,
        Err(e) => {
            tracing::error!(error = %e, "console: a lookup failed on the database");
            let status = if e.is_retryable() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            return session.error_page(status, t.people_title, t.store_error);
        }
    };
    let body = html! {
        (lookup_form(&session, None))
        h2 { (t.records_of) " " span class="mono" { (id.masked()) } }
        @if lines.is_empty() {
            p { (t.no_records) }
        } @else {
            (records_table(session.lang, &lines))
        }
    };
    layout::page(&session.ctx(), t.people_title, body).into_response()
}

/// An RFC 3339 instant as people read it: `2026-11-20 10:15` (Taipei).
pub fn short_time(rfc3339: &str) -> String {
    rfc3339.get(..16).unwrap_or(rfc3339).replace('T', " ")
}

/// The table `id="records"`: one row per completion × registry.
pub fn records_table(lang: Lang, lines: &[StatusLine]) -> Markup {
    let t = lang.t();
    html! {
        table id="records" class="cards" {
            caption class="offscreen" { (t.records_of) }
            thead {
                tr {
                    th scope="col" { (t.col_course) " / " (t.col_completed) }
                    th scope="col" { (t.col_registry) }
                    th scope="col" class="num" { (t.col_hours) }
                    th scope="col" { (t.col_state) " / " (t.col_receipt) }
                    th scope="col" { (t.col_sla) }
                    th scope="col" class="num" { (t.col_attempts) }
                    th scope="col" { (t.col_explanation) }
                }
            }
            tbody {
                @for (i, l) in lines.iter().enumerate() {
                    (record_row(lang, t, i, l))
                }
            }
        }
    }
}

fn record_row(lang: Lang, t: &Text, i: usize, l: &StatusLine) -> Markup {
    let (icon, state_words) = lang.state(&l.state);
    let course = match &l.course_title {
        Some(title) => format!("{} {title}", l.course_code),
        None => l.course_code.clone(),
    };
    let explained = explain(lang, l.registry, &l.state, l.reason.as_deref());
    html! {
        tr data-registry=(l.registry.as_str()) data-state=(l.state)
            data-reason=(l.reason.as_deref().unwrap_or("")) {
            td data-label=(t.col_course) {
                span class="mono" { (l.course_code) }
                @if let Some(title) = &l.course_title { " " (title) }
                span class="sub" { (t.col_completed) " " (l.completed_on) }
            }
            td data-label=(t.col_registry) { (lang.registry(l.registry)) }
            td data-label=(t.col_hours) class="num" { (l.hours.as_deref().unwrap_or("-")) }
            td data-label=(t.col_state) {
                span class={ "state state-" (l.state) } {
                    span aria-hidden="true" { (icon) } " " (state_words)
                }
                span class="sub" { code { (l.state) } }
                @if let Some(receipt) = &l.receipt_id {
                    span class="sub" { (t.col_receipt) " " span class="mono" { (receipt) } }
                }
            }
            td data-label=(t.col_sla) class="when" {
                @if let Some(s) = l.sla {
                    span class={ "sla-" (s.as_str()) } { (lang.sla(s.as_str())) }
                }
                @if let Some(since) = &l.eligible_since {
                    span class="sub" { (t.col_eligible_since) " " (short_time(since)) }
                }
                @if let Some(due) = &l.due_at {
                    span class="sub" { (t.col_due) " " (short_time(due)) }
                }
                @if l.sla.is_none() && l.due_at.is_none() { "-" }
            }
            td data-label=(t.col_attempts) class="num" {
                (l.attempts)
                @if let Some(id) = l.delivery_id {
                    span class="sub" { a href={ "/ui/deliveries/" (id) } { (t.history_link) } }
                }
            }
            td data-label=(t.col_explanation) class="explain" {
                @if let Some(e) = &explained {
                    p { (e.meaning) }
                    p { strong { (t.what_to_do) } " " (e.action) }
                }
                @if let Some(reason) = &l.reason {
                    p class="reason" { (t.reason_code) ": " code { (reason) } }
                }
                @if let Some(e) = &explained {
                    details {
                        summary { (t.reply_label) }
                        label for={ "reply-" (i) } class="offscreen" { (t.reply_label) }
                        textarea id={ "reply-" (i) } readonly rows="5" { (reply(lang, &course, l.registry, e)) }
                    }
                    button type="button" hidden data-copy-from={ "reply-" (i) } data-copied=(t.copied) {
                        (t.copy_reply)
                    }
                }
            }
        }
    }
}
