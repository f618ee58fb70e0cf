//! The support console's overview and ops-only pages (queue, SLA, audit), as ops and support staff use them: in headless Chromium
//! (see `common::browser`; each browser test saves a screenshot under
//! `target/screenshots/`) and, where cheaper, over plain HTTP. Each test
//! runs its own daemon process, so its metrics and the registry states it
//! saw are its own.

#[macro_use]
mod common;

use common::browser::Browser;
use common::console::{OPS, SUPPORT, api_get, browser_sign_in};
use common::ops::{Ops, Session};
use common::*;
use hoursync::domain::RegistryKind;
use hoursync::store::State;
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};
use std::time::Duration;

/// The value of one series in the rendered metrics.
fn series(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// The overview's figures: (registry, figure) → the cell's value.
async fn overview_figures(b: &Browser) -> Vec<(String, String, String)> {
    let v = b
        .script(
            "return Array.from(document.querySelectorAll('#overview td[data-figure]')).map(td => \
             [td.closest('tr').dataset.registry, td.dataset.figure, \
              td.hasAttribute('data-value') ? td.dataset.value : td.textContent.trim()])",
            json!([]),
        )
        .await;
    serde_json::from_value(v).unwrap()
}

fn figure<'a>(figures: &'a [(String, String, String)], registry: &str, name: &str) -> &'a str {
    figures
        .iter()
        .find(|(r, f, _)| r == registry && f == name)
        .map(|(_, _, v)| v.as_str())
        .unwrap_or_else(|| panic!("no figure {name} for {registry}"))
}

/// The figures the overview and `/metrics` both show, as the overview has them.
fn mismatches(figures: &[(String, String, String)], metrics: &str) -> Vec<String> {
    let mut wrong = Vec::new();
    for r in RegistryKind::ALL.map(RegistryKind::as_str) {
        let mut compare = |figure_name: &str, metric: String| {
            // An empty cell: nothing known yet, and no series either.
            let page: Option<f64> = figure(figures, r, figure_name).parse().ok();
            if series(metrics, &metric) != page {
                wrong.push(format!(
                    "{metric}: page {page:?}, metrics {:?}",
                    series(metrics, &metric)
                ));
            }
        };
        for state in [
            "pending",
            "retrying",
            "failed",
            "rejected",
            "correcting",
            "withdrawing",
        ] {
            compare(
                state,
                format!(r#"hoursync_backlog{{registry="{r}",state="{state}"}}"#),
            );
        }
        for sla in ["at_risk", "breached"] {
            compare(
                sla,
                format!(r#"hoursync_sla_records{{registry="{r}",state="{sla}"}}"#),
            );
        }
        compare("up", format!(r#"hoursync_registry_up{{registry="{r}"}}"#));
        compare(
            "token_refused",
            format!(r#"hoursync_registry_auth_failed{{registry="{r}"}}"#),
        );
    }
    wrong
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ops_user_sees_on_the_overview_the_figures_the_metrics_and_the_api_give() {
    let Some(mut b) = Browser::start().await else {
        return;
    };
    let ops = Ops::start().await;
    let base = &ops.base;
    browser_sign_in(&mut b, base, OPS).await;
    // The gauges are swept every 15 s: wait for a sweep after the drain.
    let deadline = std::time::Instant::now() + Duration::from_secs(45);
    let figures = loop {
        b.goto(&format!("{base}/ui/")).await;
        let figures = overview_figures(&b).await;
        let metrics: String = reqwest::Client::new()
            .get(format!("{base}/metrics"))
            .bearer_auth(OPS)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let last = mismatches(&figures, &metrics);
        if last.is_empty() {
            break figures;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the overview and /metrics disagree: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    b.screenshot("console-overview").await;

    // The same figures as the API's lists.
    for (r, state) in [
        ("lifelong", "failed"),
        ("lifelong", "rejected"),
        ("lifelong", "delivered"),
    ] {
        let page: Value = api_get(
            base,
            &format!("/api/v1/deliveries?registry={r}&state={state}&limit=1000"),
        )
        .await;
        let listed = page["items"].as_array().unwrap().len().to_string();
        let shown = figure(
            &figures,
            r,
            if state == "delivered" {
                "delivered_today"
            } else {
                state
            },
        );
        assert_eq!(
            shown, listed,
            "{r} {state}: delivered today are all delivered records here"
        );
    }
    assert_eq!(figure(&figures, "lifelong", "failed"), "1");
    assert_ne!(
        figure(&figures, "lifelong", "rejected"),
        "0",
        "course LL is rejected"
    );
    assert_eq!(
        figure(&figures, "lifelong", "up"),
        "1",
        "the simulator answered"
    );
    assert_eq!(figure(&figures, "teacher", "token_refused"), "0");
    // The fixture's completions are days old: the failed record is past due.
    assert_ne!(figure(&figures, "lifelong", "breached"), "0");
    assert_ne!(
        figure(&figures, "lifelong", "oldest_undelivered_seconds"),
        "0"
    );
    let last_scan = b.text_of("[data-figure=last_scan]").await;
    assert!(last_scan.starts_with("20"), "a scan ran: {last_scan}");
    // Numbers come with words, not colour alone.
    let up = b
        .text_of("#overview tr[data-registry=lifelong] td[data-figure=up]")
        .await;
    assert!(up.contains("正常回應"), "{up}");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_support_session_gets_403_on_the_ops_pages_and_sees_no_links_to_them() {
    let Some(mut b) = Browser::start().await else {
        return;
    };
    let ops = Ops::start().await;
    let base = &ops.base;
    let pages = ["/ui/queue", "/ui/sla", "/ui/audit"];

    let support = Session::sign_in(base, SUPPORT).await;
    let (_, home) = support.get("/ui/").await;
    for page in pages {
        assert!(
            !home.contains(&format!("href=\"{page}")),
            "a link to {page}"
        );
        let (status, html) = support.get(page).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
        assert!(html.contains("沒有權限"), "{html}");
    }
    // Nor may it retry, even with its own CSRF token.
    let refused = support
        .post(
            &format!("/ui/queue/{}/retry", ops.failed),
            &[("csrf", &support.csrf)],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(ops.state_of(ops.failed).await, State::Failed);

    // Ops see all three, the IDs masked.
    let bob = Session::sign_in(base, OPS).await;
    let (_, home) = bob.get("/ui/").await;
    for page in pages {
        assert!(
            home.contains(&format!("href=\"{page}\"")),
            "no link to {page}"
        );
        let (status, html) = bob.get(page).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(!html.contains(&ops.learner), "{page} shows a whole ID");
    }
    // A support person's lookup shows on the audit page: who, whom (masked).
    let looked_up = support
        .post(
            "/ui/people",
            &[("csrf", &support.csrf), ("national_id", &ops.learner)],
        )
        .await;
    assert_eq!(looked_up.status(), StatusCode::OK);
    let (_, audit) = bob.get("/ui/audit").await;
    assert!(
        audit.contains("data-action=\"lookup\" data-actor=\"web:alice\""),
        "{audit}"
    );
    let masked = hoursync::domain::mask(&ops.learner);
    assert!(
        audit.contains(&masked) && !audit.contains(&ops.learner),
        "{audit}"
    );
    let (_, sla) = bob.get("/ui/sla").await;
    assert!(
        sla.contains(&format!("data-id=\"{}\" data-sla=\"breached\"", ops.failed)),
        "the failed record is past due: {sla}"
    );

    browser_sign_in(&mut b, base, SUPPORT).await;
    for page in pages {
        assert!(b.find_all(&format!("a[href='{page}']")).await.is_empty());
        b.goto(&format!("{base}{page}")).await;
        let heading = b.text_of("main h1").await;
        assert!(heading.contains("沒有權限"), "{page}: {heading}");
    }
    b.screenshot("console-ops-page-refused").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_button_on_the_queue_requeues_a_failed_delivery_and_the_audit_shows_who() {
    let Some(mut b) = Browser::start().await else {
        return;
    };
    let ops = Ops::start().await;
    let base = &ops.base;
    browser_sign_in(&mut b, base, OPS).await;

    // Filtered by reason: only the rejections of course LL.
    b.goto(&format!("{base}/ui/queue?reason=unknown_course"))
        .await;
    let rows = b.find_all("#queue tbody tr").await;
    assert!(!rows.is_empty());
    for tr in &rows {
        assert_eq!(
            b.attribute(tr, "data-reason").await.as_deref(),
            Some("unknown_course")
        );
    }

    b.goto(&format!("{base}/ui/queue?registry=lifelong")).await;
    let row = format!("#queue tr[data-id='{}']", ops.failed);
    assert_eq!(
        b.find_all(&row).await.len(),
        1,
        "the failed record is listed"
    );
    for tr in b.find_all("#queue tbody tr").await {
        assert_eq!(
            b.attribute(&tr, "data-registry").await.as_deref(),
            Some("lifelong")
        );
    }
    b.screenshot("console-queue").await;

    // The failed record is days past due: on the SLA page, masked.
    b.goto(&format!("{base}/ui/sla")).await;
    let breached = format!("#sla-breached-lifelong tr[data-id='{}']", ops.failed);
    assert_eq!(b.find_all(&breached).await.len(), 1);
    let shown = b.text_of(&breached).await;
    assert!(
        shown.contains(&hoursync::domain::mask(&ops.learner)),
        "{shown}"
    );
    b.screenshot("console-sla").await;

    b.goto(&format!("{base}/ui/queue?registry=lifelong")).await;
    b.click(&format!("button[data-retry='{}']", ops.failed))
        .await;
    assert!(
        b.current_url()
            .await
            .contains(&format!("retried={}", ops.failed))
    );
    assert!(
        b.text_of("#retried")
            .await
            .contains(&ops.failed.to_string())
    );
    assert!(
        b.current_url().await.contains("registry=lifelong"),
        "the filter is kept"
    );
    wait_for(
        Duration::from_secs(30),
        "the retried record delivered",
        || async { ops.state_of(ops.failed).await == State::Delivered },
    )
    .await;

    b.goto(&format!("{base}/ui/audit")).await;
    let first = b.find("#audit tbody tr").await;
    assert_eq!(
        b.attribute(&first, "data-action").await.as_deref(),
        Some("retry")
    );
    assert_eq!(
        b.attribute(&first, "data-actor").await.as_deref(),
        Some("web:bob")
    );
    b.screenshot("console-audit").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_without_the_sessions_csrf_token_changes_nothing() {
    let ops = Ops::start().await;
    let bob = Session::sign_in(&ops.base, OPS).await;
    let retry = format!("/ui/queue/{}/retry", ops.failed);
    for sent in [vec![], vec![("csrf", "0000")]] {
        let refused = bob.post(&retry, &sent).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    }
    let confirm = [("step", "confirm"), ("national_id", ops.learner.as_str())];
    assert_eq!(
        bob.post("/ui/resync", &confirm).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(ops.state_of(ops.failed).await, State::Failed);
    assert!(
        ops.audit()
            .await
            .iter()
            .all(|e| e["action"] != "retry" && e["action"] != "resync")
    );

    // With it, the same POSTs work: the retry, then (nothing left failed) a resync.
    let done = bob.post(&retry, &[("csrf", &bob.csrf)]).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        done.headers()[LOCATION],
        format!("/ui/queue?retried={}", ops.failed)
    );
    let started = bob
        .post(
            "/ui/resync",
            &[
                ("csrf", &bob.csrf),
                ("step", "confirm"),
                ("national_id", &ops.learner),
            ],
        )
        .await;
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    let actions: Vec<Value> = ops.audit().await;
    assert_eq!(actions[0]["actor"], "web:bob");
    assert_eq!(actions[0]["action"], "resync");
    assert_eq!(actions[1]["action"], "retry");
}
