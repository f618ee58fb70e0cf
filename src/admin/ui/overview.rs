//! `/ui/`: the home page. Per registry: delivered today, the backlog by
//! state, the oldest undelivered record's age, at-risk and breached
//! counts, whether the registry answers and accepts our token; and when
//! the last scan and reconcile succeeded. The database figures come from
//! [`crate::monitor::figures`], the very queries the gauge sweep sets the
//! metrics from; the rest from [`crate::live`], which the functions that
//! set those gauges also write. Every figure is a number or a word in a
//! table cell, never a colour alone.

use super::i18n::Lang;
use super::{UiSession, layout};
use crate::admin::SharedState;
use crate::clock::{from_ms, taipei_midnight_ms, taipei_rfc3339};
use crate::domain::RegistryKind;
use crate::monitor::BACKLOG_STATES;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

pub async fn page(State(state): State<SharedState>, session: UiSession) -> Response {
    let lang = session.lang;
    let t = lang.t();
    let o = lang.o();
    let figures =
        match crate::monitor::figures(&state.store, &state.clock, state.at_risk.num_milliseconds())
            .await
        {
            Ok(f) => f,
            Err(e) => return store_error(&session, t.overview_title, e),
        };
    let today = from_ms(figures.now_ms)
        .with_timezone(&chrono_tz::Asia::Taipei)
        .date_naive();
    let delivered = match state.store.delivered_since(taipei_midnight_ms(today)).await {
        Ok(d) => d,
        Err(e) => return store_error(&session, t.overview_title, e),
    };
    let delivered_of = |r: RegistryKind| {
        delivered
            .iter()
            .find(|(reg, _)| *reg == r)
            .map_or(0, |(_, n)| *n)
    };
    let body = html! {
        p class="hint" { (o.overview_as_of) " " (short(taipei_rfc3339(figures.now_ms))) }
        div class="scroll" {
            table id="overview" class="cards" {
                caption class="offscreen" { (t.overview_title) }
                thead {
                    tr {
                        th scope="col" { (t.col_registry) }
                        th scope="col" class="num" { (o.delivered_today) }
                        @for s in BACKLOG_STATES {
                            th scope="col" class="num" { (lang.state(s.as_str()).1) }
                        }
                        th scope="col" class="num" { (o.oldest_undelivered) }
                        th scope="col" class="num" { (lang.sla("at_risk")) }
                        th scope="col" class="num" { (lang.sla("breached")) }
                        th scope="col" { (o.registry_answers) }
                        th scope="col" { (o.token) }
                    }
                }
                tbody {
                    @for g in &figures.registries {
                        @let live = crate::live::registry(g.registry);
                        tr data-registry=(g.registry.as_str()) {
                            th scope="row" { (lang.registry(g.registry)) span class="sub" { code { (g.registry.as_str()) } } }
                            td class="num" data-label=(o.delivered_today) data-figure="delivered_today" { (delivered_of(g.registry)) }
                            @for (s, n) in BACKLOG_STATES.iter().zip(g.backlog) {
                                td class="num" data-label=(lang.state(s.as_str()).1) data-figure=(s.as_str()) { (n) }
                            }
                            td class="num" data-label=(o.oldest_undelivered) data-figure="oldest_undelivered_seconds"
                                data-value=(g.oldest_undelivered_ms / 1000) { (age(lang, g.oldest_undelivered_ms)) }
                            td class="num" data-label=(lang.sla("at_risk")) data-figure="at_risk" { (g.at_risk) }
                            td class="num" data-label=(lang.sla("breached")) data-figure="breached" { (g.breached) }
                            td data-label=(o.registry_answers) data-figure="up" data-value=(live.up.map_or("", |u| if u { "1" } else { "0" })) {
                                @match live.up {
                                    Some(true) => span class="state state-delivered" { span aria-hidden="true" { "✔ " } (o.up) },
                                    Some(false) => span class="state state-failed" { span aria-hidden="true" { "⚠ " } (o.down) },
                                    None => span { (o.not_asked_yet) },
                                }
                            }
                            td data-label=(o.token) data-figure="token_refused" data-value=(u8::from(live.token_refused)) {
                                @if live.token_refused {
                                    span class="state state-failed" { span aria-hidden="true" { "⊘ " } (o.token_refused) }
                                } @else {
                                    (o.token_accepted)
                                }
                            }
                        }
                    }
                }
            }
        }
        dl class="facts" id="last-runs" {
            dt { (o.last_scan) }
            dd data-figure="last_scan" { (when(lang, crate::live::last_scan_ms())) }
            dt { (o.last_reconcile) }
            dd data-figure="last_reconcile" { (when(lang, crate::live::last_reconcile_ms())) }
        }
        p class="hint" { (o.overview_note) }
    };
    layout::page(&session.ctx(), t.overview_title, body).into_response()
}

/// The page for a database error: 503 when it may pass, 500 otherwise.
pub(super) fn store_error(
    session: &UiSession,
    title: &str,
    e: crate::store::StoreError,
) -> Response {
    tracing::error!(error = %e, path = %session.path, "console: a page failed on the database");
    let status = if e.is_retryable() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    session.error_page(status, title, session.lang.t().store_error)
}

/// `2026-11-20 10:15:03` from RFC 3339.
fn short(rfc3339: String) -> String {
    rfc3339.get(..19).unwrap_or(&rfc3339).replace('T', " ")
}

fn when(lang: Lang, ms: Option<i64>) -> Markup {
    match ms {
        Some(ms) => html! { time datetime=(taipei_rfc3339(ms)) { (short(taipei_rfc3339(ms))) } },
        None => html! { (lang.o().not_since_start) },
    }
}

/// An age as people read it: `3 d 4 h`, `2 h 5 min`, `40 s`; `-` for none.
pub fn age(lang: Lang, ms: i64) -> String {
    if ms <= 0 {
        return "-".into();
    }
    let s = ms / 1000;
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    let zh = lang == Lang::ZhTw;
    let unit = |en: &'static str, zh_unit: &'static str| if zh { zh_unit } else { en };
    if d > 0 {
        format!("{d} {} {h} {}", unit("d", "天"), unit("h", "小時"))
    } else if h > 0 {
        format!("{h} {} {m} {}", unit("h", "小時"), unit("min", "分"))
    } else if m > 0 {
        format!("{m} {}", unit("min", "分"))
    } else {
        format!("{s} {}", unit("s", "秒"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_in_the_largest_two_units() {
        assert_eq!(age(Lang::En, 0), "-");
        assert_eq!(age(Lang::En, 40_000), "40 s");
        assert_eq!(age(Lang::En, 7_500_000), "2 h 5 min");
        assert_eq!(
            age(Lang::ZhTw, (3 * 86_400 + 4 * 3600) * 1000),
            "3 天 4 小時"
        );
    }
}
