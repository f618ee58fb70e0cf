//! The support console (`/ui/`) driven in headless Chromium (see
//! `common::browser`) against a real daemon with the simulator, as support
//! staff use it. Each test saves a screenshot under `target/screenshots/`.
//! Sign-in, headers, CSRF and the lookup API over plain HTTP:
//! `tests/console_http.rs`.

#[macro_use]
mod common;

use common::browser::Browser;
use common::console::*;
use common::fixture::{self, id};
use common::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_signs_in_with_a_good_token_and_is_refused_with_a_wrong_one() {
    let Some(mut b) = Browser::start().await else {
        return;
    };
    let console = Console::start(Backend::Sqlite).await;
    let base = &console.base;

    b.goto(&format!("{base}/ui/")).await;
    assert!(
        b.current_url().await.ends_with("/ui/login"),
        "sent to sign in"
    );
    b.type_into("#token", "a-wrong-token-1234").await;
    b.click("button[type=submit]").await;
    let error = b.text_of("#login-error").await;
    assert!(error.contains("無法登入"), "{error}");
    b.screenshot("console-sign-in-refused").await;

    b.type_into("#token", SUPPORT).await;
    b.click("main button[type=submit]").await;
    assert_eq!(b.current_url().await, format!("{base}/ui/"));
    let who = b.text_of(".who").await;
    assert!(who.contains("alice"), "{who}");
    b.screenshot("console-signed-in").await;

    // The language switch: English, remembered on the next page.
    b.click("a[hreflang=en]").await;
    assert!(b.text_of("main h1").await.contains("Overview"));
    b.goto(&format!("{base}/ui/")).await;
    assert!(b.text_of("main h1").await.contains("Overview"));

    b.click(".tools button[type=submit]").await;
    assert!(b.current_url().await.ends_with("/ui/login"), "signed out");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_waiting_on_a_conversion_is_explained_in_chinese_and_delivered_after_it() {
    let Some(mut b) = Browser::start().await else {
        return;
    };
    let console = Console::start(Backend::Sqlite).await;
    let base = console.base.clone();
    wait_drained(&console.store, Duration::from_secs(60)).await;
    // Learner 8 studied under a general-public My e-Gov account (through a
    // certificate bound to it): the environmental network took the hours,
    // the lifelong portal and the teacher network wait for a conversion.
    let learner = id(8);
    browser_sign_in(&mut b, &base, SUPPORT).await;
    let rows = browser_look_up(&mut b, &base, &learner).await;
    let row = |r: &str| {
        (
            r.to_string(),
            "ineligible".to_string(),
            "not_civil_servant".to_string(),
        )
    };
    assert!(rows.contains(&row("lifelong")), "{rows:?}");
    assert!(rows.contains(&row("teacher")), "{rows:?}");
    assert!(
        rows.iter()
            .any(|(r, s, _)| r == "enved" && s == "delivered"),
        "{rows:?}"
    );

    let lifelong = "#records tr[data-registry=lifelong]";
    let text = b.text_of(lifelong).await;
    assert!(text.contains("淨零生活"), "the course's title: {text}");
    for must in [
        "我的e政府",
        "自然人轉公務員",
        "再登入",
        "3個工作天",
        "not_civil_servant",
    ] {
        assert!(text.contains(must), "{must} missing: {text}");
    }
    assert!(
        text.contains("不符上傳條件"),
        "the state in words, not only colour: {text}"
    );
    assert!(!text.contains(&learner), "the row shows no whole ID");
    let heading = b.text_of("main h2").await;
    assert!(
        heading.contains("B10") && !heading.contains(&learner),
        "{heading}"
    );
    // The delivered record needs no explanation.
    let enved = b.text_of("#records tr[data-registry=enved]").await;
    assert!(!enved.contains("該怎麼做"), "{enved}");

    b.script("window.scrollTo(0, 0)", json!([])).await;
    b.screenshot("console-lookup").await;

    // "Copy reply" puts the reply to the learner on the clipboard.
    b.grant("clipboard-read").await;
    b.grant("clipboard-write").await;
    let copy = format!("{lifelong} button[data-copy-from]");
    b.press(&copy).await;
    let until = Instant::now() + Duration::from_secs(5);
    while b
        .attribute(&b.find(&copy).await, "data-state")
        .await
        .as_deref()
        != Some("copied")
    {
        assert!(Instant::now() < until, "the copy button never said copied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let copied = b
        .script_async(
            "const done = arguments[arguments.length - 1];
             navigator.clipboard.readText().then(done, e => done('error: ' + e));",
            json!([]),
        )
        .await;
    let copied = copied.as_str().unwrap_or_default().to_string();
    assert!(
        copied.starts_with("您好") && copied.contains("自然人轉公務員"),
        "{copied}"
    );
    assert!(
        copied.contains("終身學習入口網") && copied.contains("淨零生活"),
        "{copied}"
    );
    b.screenshot("console-lookup-waiting-on-conversion").await;

    // The account is converted (an import from the platform), support
    // asks for a resync, and the lookup page shows the hours delivered.
    let convert = console.env.write(
        "conversion.jsonl",
        &[fixture::account("a8", 8, "mygov", Some("civil_servant"))],
    );
    cli_ok(
        &console.env,
        &console.sim,
        &["import", convert.to_str().unwrap()],
    )
    .await;
    let resync = reqwest::Client::new()
        .post(format!("{base}/api/v1/resyncs"))
        .bearer_auth(SUPPORT)
        .json(&json!({ "national_id": learner }))
        .send()
        .await
        .unwrap();
    assert_eq!(resync.status(), 202);
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = browser_look_up(&mut b, &base, &learner).await;
        let delivered = |r: &str| rows.iter().any(|(g, s, _)| g == r && s == "delivered");
        if delivered("lifelong") && delivered("teacher") {
            break;
        }
        assert!(Instant::now() < until, "never delivered: {rows:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let text = b.text_of(lifelong).await;
    assert!(
        text.contains("已上傳") && !text.contains("該怎麼做"),
        "{text}"
    );
    b.screenshot("console-lookup-delivered").await;

    // The record's history: the upload that credited it, newest first.
    b.click(&format!("{lifelong} a[href^='/ui/deliveries/']"))
        .await;
    assert!(b.current_url().await.contains("/ui/deliveries/"));
    let actions = b.find_all("#attempts tbody tr").await;
    assert!(!actions.is_empty());
    let first = b.attribute(&actions[0], "data-result").await.unwrap();
    assert_eq!(first, "accepted", "newest first");
    let times = b
        .script(
            "return [...document.querySelectorAll('#attempts tbody tr td:first-child')].map(t => t.textContent)",
            json!([]),
        )
        .await;
    let times: Vec<String> = serde_json::from_value(times).unwrap();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    b.screenshot("console-history").await;

    assert_id_never_visible(&b, &learner).await;
    // Each lookup is in the audit trail: who, whom (masked), when.
    let entries = audit(&base).await;
    let lookups: Vec<&Value> = entries.iter().filter(|e| e["action"] == "lookup").collect();
    assert!(lookups.len() >= 2, "{entries:?}");
    for e in &lookups {
        assert_eq!(e["actor"], "web:alice");
        assert_eq!(
            e["scope"]["scope"]["national_id"],
            hoursync::domain::mask(&learner)
        );
        assert!(e["at"].is_string());
    }
    assert!(!serde_json::to_string(&entries).unwrap().contains(&learner));
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_course_title_holding_a_script_is_shown_as_text() {
    let Some(mut b) = Browser::start().await else {
        return;
    };
    let console = Console::start(Backend::Sqlite).await;
    let base = console.base.clone();
    let xss = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    let data = console.env.write(
        "xss.jsonl",
        &[
            json!({"type": "course", "course_code": "XSS", "name": xss, "learning_mode": 1,
                   "category_code": "A1", "digital_hours": "1.0", "classroom_hours": "0.0",
                   "certified": {"lifelong": "1.0"}})
            .to_string(),
            fixture::completion("cx", "a1", "XSS", fixture::AT, "completed"),
        ],
    );
    import(&console.store, &[data]).await;
    wait_drained(&console.store, Duration::from_secs(60)).await;
    browser_sign_in(&mut b, &base, SUPPORT).await;
    browser_look_up(&mut b, &base, &id(1)).await;
    let cell = b.text_of("#records tr[data-registry=teacher] td").await;
    let rows = b.find_all("#records tbody tr").await;
    assert!(rows.len() >= 3, "the learner's rows");
    let page = b.text_of("#records").await;
    assert!(
        page.contains(xss),
        "the title shown as text: {cell} / {page}"
    );
    let injected = b
        .script(
            "return document.querySelectorAll('#records script, #records img').length",
            json!([]),
        )
        .await;
    assert_eq!(injected, 0, "no element made of the title");
    assert!(!b.alert_open().await, "no injected script ran");
    b.screenshot("console-xss-as-text").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_without_the_sessions_csrf_token_is_refused_and_not_audited() {
    let Some(mut b) = Browser::start().await else {
        return;
    };
    let console = Console::start(Backend::Sqlite).await;
    let base = console.base.clone();
    browser_sign_in(&mut b, &base, SUPPORT).await;
    b.goto(&format!("{base}/ui/people")).await;
    b.type_into("#national-id", &id(1)).await;
    b.script(
        "document.querySelector('main input[name=csrf]').remove()",
        json!([]),
    )
    .await;
    b.click("main form button[type=submit]").await;
    let heading = b.text_of("main h1").await;
    assert!(heading.contains("表單已失效"), "{heading}");
    assert!(b.find_all("#records").await.is_empty(), "no records shown");
    b.screenshot("console-csrf-refused").await;
    assert!(audit(&base).await.iter().all(|e| e["action"] != "lookup"));
    assert_id_never_visible(&b, &id(1)).await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_phone_the_lookup_works_from_the_keyboard_and_fits_the_screen() {
    let Some(mut b) = Browser::start().await else {
        return;
    };
    let console = Console::start(Backend::Sqlite).await;
    let base = console.base.clone();
    wait_drained(&console.store, Duration::from_secs(60)).await;
    b.window_size(390, 844).await;
    b.goto(&format!("{base}/ui/login?lang=en")).await;
    b.submit_with_enter("#token", SUPPORT).await;
    assert_eq!(b.current_url().await, format!("{base}/ui/"));
    // The overview's table becomes one card per registry, not a table to
    // scroll sideways.
    let overview_fits = b
        .script(
            "const t = document.getElementById('overview');
             return t.scrollWidth <= t.parentElement.clientWidth
                 && document.documentElement.scrollWidth <= window.innerWidth",
            json!([]),
        )
        .await;
    assert_eq!(overview_fits, true, "the overview fits a phone's width");
    b.screenshot("console-phone-overview").await;
    b.goto(&format!("{base}/ui/people")).await;
    // The label names the field, for screen readers and for a tap.
    let label = b.text_of("label[for=national-id]").await;
    assert_eq!(label, "National ID");
    b.submit_with_enter("#national-id", &id(3)).await;
    let rows = b.find_all("#records tr[data-registry]").await;
    assert_eq!(rows.len(), 3, "one row per registry");
    let text = b.text_of("#records tr[data-registry=enved]").await;
    assert!(text.contains("service unit"), "English on request: {text}");
    assert!(text.contains("service_unit_invalid"), "{text}");
    let fits = b
        .script(
            "return document.documentElement.scrollWidth <= window.innerWidth",
            json!([]),
        )
        .await;
    assert_eq!(fits, true, "no sideways scrolling on a phone");
    b.screenshot("console-phone").await;
    assert_id_never_visible(&b, &id(3)).await;
    // An unknown console path: a page with the same headers, not JSON.
    b.goto(&format!("{base}/ui/nothing-here")).await;
    assert!(b.text_of("main h1").await.contains("Not found"));
    b.close().await;
}
