//! The support console's resync page, as ops use it: a preview, then a
//! confirm, then the run followed to its end; and a form with a mistake
//! shown again with the error. In headless Chromium and over plain HTTP,
//! against a daemon process.

#[macro_use]
mod common;

use common::browser::Browser;
use common::console::{SUPPORT, assert_id_never_visible, browser_sign_in};
use common::ops::{Ops, Session};
use common::*;
use hoursync::store::State;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_previewed_then_confirmed_requeues_a_failed_record_and_the_page_shows_it_done() {
    let Some(mut b) = Browser::start().await else {
        return;
    };
    let ops = Ops::start().await;
    let base = &ops.base;
    browser_sign_in(&mut b, base, SUPPORT).await;
    b.goto(&format!("{base}/ui/resync")).await;
    b.type_into("#resync-national-id", &ops.learner).await;
    b.script(
        "document.querySelector('#resync-registry').value = 'lifelong'",
        json!([]),
    )
    .await;
    b.click("#resync button[type=submit]").await;
    let failed = b.text_of("#preview tr[data-state=failed]").await;
    assert!(
        failed.contains('1'),
        "one failed record to requeue: {failed}"
    );
    b.screenshot("console-resync-preview").await;
    assert_eq!(
        ops.state_of(ops.failed).await,
        State::Failed,
        "a preview changes nothing"
    );

    b.click("#confirm").await;
    let progress = b.current_url().await;
    assert!(
        progress.starts_with(&format!("{base}/ui/resync/")),
        "{progress}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        b.goto(&progress).await;
        let status = b
            .script(
                "return document.querySelector('#resync-progress').dataset.status",
                json!([]),
            )
            .await;
        if status == "done" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the resync is {status}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let requeued: u32 = b.text_of("#requeued").await.parse().unwrap();
    assert!(
        requeued >= 1,
        "the failed record (and any rejected one) requeued"
    );
    b.screenshot("console-resync-done").await;
    let entry = &ops.audit().await[0];
    assert_eq!(
        (entry["action"].as_str(), entry["actor"].as_str()),
        (Some("resync"), Some("web:alice"))
    );
    wait_for(
        Duration::from_secs(30),
        "the requeued record delivered",
        || async { ops.state_of(ops.failed).await == State::Delivered },
    )
    .await;
    assert_id_never_visible(&b, &ops.learner).await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_with_a_bad_id_a_bad_date_or_no_scope_shows_the_form_again_with_the_error() {
    let ops = Ops::start().await;
    let alice = Session::sign_in(&ops.base, SUPPORT).await;
    for (field, value) in [
        ("national_id", "A123456788"),
        ("completed_from", "20-11-2026"),
        ("registry", "nowhere"),
        ("course_code", ""),
    ] {
        let answer = alice
            .post("/ui/resync", &[("csrf", &alice.csrf), (field, value)])
            .await;
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{field}={value}");
        let html = answer.text().await.unwrap();
        assert!(html.contains("id=\"resync-error\""), "{html}");
        assert!(html.contains("id=\"resync\""), "the form again");
    }
    assert!(ops.audit().await.is_empty(), "nothing started");
}
