//! `/ui/queue` (ops): the `failed` and `rejected` deliveries, the ones a
//! person must look at, filtered by registry and reason, each with a retry
//! button. A retry is the API's ([`crate::resync::retry_one`]), audited as
//! `web:NAME`, and answers with a redirect back to the filtered list.

use super::i18n::Lang;
use super::{OpsOnly, UiSession, layout};
use crate::admin::SharedState;
use crate::domain::RegistryKind;
use crate::store::{DeliveryItem, State as DState};
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use std::collections::BTreeMap;

/// Rows listed per state at most; the counts above the table are whole.
const LIMIT: usize = 500;

#[derive(Debug, Default, serde::Deserialize)]
pub struct QueueQuery {
    #[serde(default)]
    registry: String,
    #[serde(default)]
    reason: String,
    /// A delivery just requeued, or one that was not in the queue any more.
    retried: Option<i64>,
    not_queued: Option<i64>,
}

impl QueueQuery {
    fn registry(&self) -> Option<RegistryKind> {
        self.registry.parse().ok()
    }

    /// The same filters, as a query string.
    fn filters(&self) -> String {
        let mut q = Vec::new();
        if let Some(r) = self.registry() {
            q.push(format!("registry={}", r.as_str()));
        }
        if !self.reason.is_empty() {
            q.push(format!("reason={}", encode(&self.reason)));
        }
        q.join("&")
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub async fn page(
    State(state): State<SharedState>,
    OpsOnly(session): OpsOnly,
    q: Result<Query<QueueQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let lang = session.lang;
    let o = lang.o();
    let registry = q.registry();
    let counts = match state.store.delivery_counts().await {
        Ok(c) => c,
        Err(e) => return super::overview::store_error(&session, o.queue_title, e),
    };
    // Reasons of the queue, with how many records each, for the filter.
    let mut reasons: BTreeMap<String, i64> = BTreeMap::new();
    for c in counts.iter().filter(|c| {
        matches!(c.state, DState::Failed | DState::Rejected)
            && registry.is_none_or(|r| r == c.registry)
    }) {
        *reasons
            .entry(c.reason.clone().unwrap_or_default())
            .or_default() += c.count;
    }
    let mut items: Vec<DeliveryItem> = Vec::new();
    let mut truncated = false;
    for s in [DState::Failed, DState::Rejected] {
        match state
            .store
            .list_deliveries(Some(s), registry, 0, LIMIT)
            .await
        {
            Ok(page) => {
                truncated |= page.len() == LIMIT;
                items.extend(page);
            }
            Err(e) => return super::overview::store_error(&session, o.queue_title, e),
        }
    }
    if !q.reason.is_empty() {
        items.retain(|i| i.reason.as_deref().unwrap_or("") == q.reason);
    }
    items.sort_by_key(|i| (i.eligible_since.unwrap_or(i64::MAX), i.id));
    let body = html! {
        @if let Some(id) = q.retried {
            p role="status" class="notice" id="retried" { "✔ #" (id) " " (o.retried) }
        }
        @if let Some(id) = q.not_queued {
            p role="alert" class="error" { "⚠ #" (id) " " (o.not_queued) }
        }
        (filters(&session, &q, &reasons))
        @if truncated { p class="hint" { (o.truncated) " " (LIMIT) } }
        @if items.is_empty() {
            p id="queue-empty" { (o.queue_empty) }
        } @else {
            (table(&session, &q, &items))
        }
    };
    layout::page(&session.ctx(), o.queue_title, body).into_response()
}

fn filters(session: &UiSession, q: &QueueQuery, reasons: &BTreeMap<String, i64>) -> Markup {
    let lang = session.lang;
    let t = lang.t();
    let o = lang.o();
    html! {
        form method="get" action="/ui/queue" class="card inline-fields" id="queue-filters" {
            label for="queue-registry" { (t.col_registry) }
            select id="queue-registry" name="registry" {
                option value="" selected[q.registry().is_none()] { (o.all_registries) }
                @for r in RegistryKind::ALL {
                    option value=(r.as_str()) selected[q.registry() == Some(r)] { (lang.registry(r)) }
                }
            }
            label for="queue-reason" { (t.reason_code) }
            select id="queue-reason" name="reason" {
                option value="" selected[q.reason.is_empty()] { (o.all_reasons) }
                @for (reason, n) in reasons {
                    @if !reason.is_empty() {
                        option value=(reason) selected[&q.reason == reason] { (reason) " (" (n) ")" }
                    }
                }
            }
            button type="submit" { (o.filter) }
        }
    }
}

fn table(session: &UiSession, q: &QueueQuery, items: &[DeliveryItem]) -> Markup {
    let lang = session.lang;
    let t = lang.t();
    let o = lang.o();
    html! {
        table id="queue" class="cards" {
            caption class="offscreen" { (o.queue_title) }
            thead {
                tr {
                    th scope="col" { "#" }
                    th scope="col" { (t.col_registry) }
                    th scope="col" { (t.id_label) }
                    th scope="col" { (t.col_course) }
                    th scope="col" { (t.col_state) " / " (t.reason_code) }
                    th scope="col" class="num" { (t.col_attempts) }
                    th scope="col" { (t.col_error) }
                    th scope="col" { (o.action) }
                }
            }
            tbody {
                @for i in items {
                    tr data-id=(i.id) data-registry=(i.registry.as_str()) data-state=(i.state.as_str())
                        data-reason=(i.reason.as_deref().unwrap_or("")) {
                        td data-label="#" { a href={ "/ui/deliveries/" (i.id) } { (i.id) } }
                        td data-label=(t.col_registry) { (lang.registry(i.registry)) }
                        // Display masks: `A12*****89`.
                        td data-label=(t.id_label) class="mono" { (i.national_id.masked()) }
                        td data-label=(t.col_course) class="mono" { (i.course_code) }
                        td data-label=(t.col_state) {
                            (state_label(lang, i.state.as_str()))
                            @if let Some(r) = &i.reason { span class="sub" { code { (r) } } }
                        }
                        td data-label=(t.col_attempts) class="num" { (i.attempts) }
                        td data-label=(t.col_error) { (i.last_error.as_deref().map(crate::domain::mask_ids_in_text).unwrap_or_default()) }
                        td data-label=(o.action) {
                            form method="post" action={ "/ui/queue/" (i.id) "/retry" } class="inline" {
                                input type="hidden" name="csrf" value=(session.csrf);
                                input type="hidden" name="registry" value=(q.registry);
                                input type="hidden" name="reason" value=(q.reason);
                                button type="submit" data-retry=(i.id) aria-label={ (o.retry) " #" (i.id) } { (o.retry) }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub fn state_label(lang: Lang, state: &str) -> Markup {
    let (icon, words) = lang.state(state);
    html! {
        span class={ "state state-" (state) } { span aria-hidden="true" { (icon) } " " (words) }
    }
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct RetryForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    registry: String,
    #[serde(default)]
    reason: String,
}

pub async fn retry(
    State(state): State<SharedState>,
    OpsOnly(session): OpsOnly,
    Path(raw): Path<String>,
    form: Result<Form<RetryForm>, FormRejection>,
) -> Response {
    let f = form.map(|Form(f)| f).unwrap_or_default();
    if let Some(refused) = session.csrf_refusal(&f.csrf) {
        return refused;
    }
    let o = session.lang.o();
    let t = session.lang.t();
    let Ok(id) = raw.parse::<i64>() else {
        return session.error_page(StatusCode::NOT_FOUND, t.not_found_title, t.no_delivery);
    };
    let actor = format!("web:{}", session.caller.name);
    let back = QueueQuery {
        registry: f.registry,
        reason: f.reason,
        ..Default::default()
    }
    .filters();
    let sep = if back.is_empty() { "" } else { "&" };
    match crate::resync::retry_one(state.store.as_ref(), state.clock.as_ref(), &actor, id).await {
        Ok(None) => session.error_page(StatusCode::NOT_FOUND, t.not_found_title, t.no_delivery),
        Ok(Some(Ok(_))) => {
            Redirect::to(&format!("/ui/queue?{back}{sep}retried={id}")).into_response()
        }
        Ok(Some(Err(_))) => {
            Redirect::to(&format!("/ui/queue?{back}{sep}not_queued={id}")).into_response()
        }
        Err(e) => super::overview::store_error(&session, o.queue_title, e),
    }
}
