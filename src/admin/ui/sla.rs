//! `/ui/sla` (ops): how each registry stands against the promise of 3
//! working days ([`crate::sla_report::build`], as `hoursync sla report`),
//! then the breached and the at-risk records of each registry, the oldest
//! due first. National IDs masked.

use super::queue::state_label;
use super::{OpsOnly, layout};
use crate::admin::SharedState;
use crate::clock::taipei_rfc3339;
use crate::domain::RegistryKind;
use crate::store::{BreachedRecord, SlaFilter};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

/// Records listed per registry and kind at most.
const LIMIT: usize = 200;

pub async fn page(State(state): State<SharedState>, OpsOnly(session): OpsOnly) -> Response {
    let lang = session.lang;
    let t = lang.t();
    let o = lang.o();
    let now = state.clock.now_ms();
    let at_risk_ms = state.at_risk.num_milliseconds();
    let store = state.store.as_ref();
    let report =
        match crate::sla_report::build(store, now, at_risk_ms, SlaFilter::default(), 0).await {
            Ok(r) => r,
            Err(e) => return super::overview::store_error(&session, o.sla_title, e),
        };
    let mut sections = Vec::new();
    for registry in RegistryKind::ALL {
        let filter = SlaFilter {
            registry: Some(registry),
            since_ms: None,
        };
        let breached = match store.breached(now, filter, LIMIT).await {
            Ok(b) => b,
            Err(e) => return super::overview::store_error(&session, o.sla_title, e),
        };
        let at_risk = match store.at_risk(now, at_risk_ms, filter, LIMIT).await {
            Ok(b) => b,
            Err(e) => return super::overview::store_error(&session, o.sla_title, e),
        };
        sections.push((registry, breached, at_risk));
    }
    let body = html! {
        p class="hint" { (o.sla_intro) }
        table id="sla-summary" {
            thead {
                tr {
                    th scope="col" { (t.col_registry) }
                    @for s in ["on_time", "late", "pending", "at_risk", "breached"] {
                        th scope="col" class="num" { (lang.sla(s)) }
                    }
                }
            }
            tbody {
                @for (r, line) in RegistryKind::ALL.iter().zip(&report.registries) {
                    tr data-registry=(r.as_str()) {
                        th scope="row" { (lang.registry(*r)) }
                        td class="num" data-figure="on_time" { (line.on_time) }
                        td class="num" data-figure="late" { (line.late) }
                        td class="num" data-figure="pending" { (line.pending) }
                        td class="num" data-figure="at_risk" { (line.at_risk) }
                        td class="num" data-figure="breached" { (line.breached) }
                    }
                }
            }
        }
        @for (registry, breached, at_risk) in &sections {
            section data-registry=(registry.as_str()) {
                h2 { (lang.registry(*registry)) }
                h3 { (lang.sla("breached")) " (" (breached.len()) ")" }
                (records(&session.lang, "breached", *registry, breached))
                h3 { (lang.sla("at_risk")) " (" (at_risk.len()) ")" }
                (records(&session.lang, "at_risk", *registry, at_risk))
            }
        }
    };
    layout::page(&session.ctx(), o.sla_title, body).into_response()
}

fn records(
    lang: &super::i18n::Lang,
    kind: &str,
    registry: RegistryKind,
    rows: &[BreachedRecord],
) -> Markup {
    let lang = *lang;
    let t = lang.t();
    let o = lang.o();
    if rows.is_empty() {
        return html! { p class="hint" { (o.none) } };
    }
    html! {
        table class="cards sla-records" id={ "sla-" (kind) "-" (registry.as_str()) } {
            thead {
                tr {
                    th scope="col" { "#" }
                    th scope="col" { (t.col_due) }
                    th scope="col" { (t.col_eligible_since) }
                    th scope="col" { (t.id_label) }
                    th scope="col" { (t.col_course) }
                    th scope="col" { (t.col_state) }
                    th scope="col" class="num" { (t.col_attempts) }
                    th scope="col" { (t.col_error) }
                }
            }
            tbody {
                @for b in rows {
                    tr data-id=(b.id) data-sla=(kind) data-state=(b.state.as_str()) {
                        td data-label="#" { a href={ "/ui/deliveries/" (b.id) } { (b.id) } }
                        td data-label=(t.col_due) { (super::people::short_time(&taipei_rfc3339(b.due_at))) }
                        td data-label=(t.col_eligible_since) { (super::people::short_time(&taipei_rfc3339(b.eligible_since))) }
                        td data-label=(t.id_label) class="mono" { (b.national_id.masked()) }
                        td data-label=(t.col_course) class="mono" { (b.course_code) }
                        td data-label=(t.col_state) {
                            (state_label(lang, b.state.as_str()))
                            @if let Some(r) = &b.reason { span class="sub" { code { (r) } } }
                        }
                        td data-label=(t.col_attempts) class="num" { (b.attempts) }
                        td data-label=(t.col_error) { (b.last_error.as_deref().map(crate::domain::mask_ids_in_text).unwrap_or_default()) }
                    }
                }
            }
        }
    }
}
