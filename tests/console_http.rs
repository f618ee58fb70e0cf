//! The support console (`/ui/`) over plain HTTP: the session cookie, the
//! CSRF tokens, the security headers, the sign-in throttle, languages, and
//! the lookups of the API and the console with their audit entries (on
//! both backends). The pages in a browser: `tests/console.rs`.

#[macro_use]
mod common;

use common::console::*;
use common::fixture::{self, id};
use common::*;
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_sets_a_strict_session_cookie_and_every_post_needs_the_csrf_token() {
    let console = Console::start(Backend::Sqlite).await;
    let base = &console.base;
    let http = client();

    // Signed out, a page sends the browser to the sign-in page.
    let home = http.get(format!("{base}/ui/")).send().await.unwrap();
    assert_eq!(home.status(), StatusCode::SEE_OTHER);
    assert_eq!(home.headers()[LOCATION], "/ui/login");
    assert_security_headers(home.headers());

    let page = http.get(format!("{base}/ui/login")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_security_headers(page.headers());
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let login = cookie_value(&set_cookie(page.headers(), "hoursync_login").unwrap());
    let html = page.text().await.unwrap();
    assert!(html.contains("<label for=\"token\">"), "{html}");
    assert!(html.contains("id=\"token\""), "{html}");
    let form_csrf = csrf_field(&html);
    assert_eq!(form_csrf, login, "the form's token is the cookie's");

    // A sign-in without the form's token is refused, even with a good token.
    let forged = http
        .post(format!("{base}/ui/login"))
        .form_pairs(&[("token", SUPPORT)])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(forged.headers(), "hoursync_session").is_none());

    // A wrong token: the page again, an error, no session.
    let wrong = http
        .post(format!("{base}/ui/login"))
        .header("cookie", format!("hoursync_login={login}"))
        .form_pairs(&[
            ("csrf", form_csrf.as_str()),
            ("token", "not-a-token-at-all"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(wrong.headers(), "hoursync_session").is_none());
    assert!(wrong.text().await.unwrap().contains("id=\"login-error\""));

    // A good token: a session cookie only the server reads, never sent
    // cross-site; `Secure` when a proxy says the browser used HTTPS.
    let good = http
        .post(format!("{base}/ui/login"))
        .header("cookie", format!("hoursync_login={login}"))
        .header("x-forwarded-proto", "https")
        .form_pairs(&[("csrf", form_csrf.as_str()), ("token", SUPPORT)])
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), StatusCode::SEE_OTHER);
    assert_eq!(good.headers()[LOCATION], "/ui/");
    let cookie = set_cookie(good.headers(), "hoursync_session").unwrap();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Secure"] {
        assert!(cookie.contains(part), "{part} missing in {cookie}");
    }
    assert_eq!(cookie_value(&cookie).len(), 64, "256 random bits");
    let (session, csrf) = sign_in(&http, base, SUPPORT).await;
    assert_ne!(
        session,
        format!("hoursync_session={}", cookie_value(&cookie))
    );

    // The browser's language chooses the page's; `?lang=` switches it and
    // is remembered in a cookie.
    let english = http
        .get(format!("{base}/ui/login"))
        .header("accept-language", "en-US,en;q=0.9,zh-TW;q=0.5")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(english.contains("<html lang=\"en\">") && english.contains("Admin token"));
    let switched = http
        .get(format!("{base}/ui/login?lang=zh-TW"))
        .header("accept-language", "en-US")
        .send()
        .await
        .unwrap();
    let lang = set_cookie(switched.headers(), "lang").unwrap();
    assert!(lang.starts_with("lang=zh-TW;"), "{lang}");
    let chinese = switched.text().await.unwrap();
    assert!(chinese.contains("<html lang=\"zh-TW\">") && chinese.contains("管理權杖"));
    let remembered = http
        .get(format!("{base}/ui/login"))
        .header("accept-language", "en-US")
        .header("cookie", "lang=zh-TW")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(remembered.contains("管理權杖"));

    // Over plain HTTP, no `Secure` (the browser would drop the cookie).
    let page = http.get(format!("{base}/ui/login")).send().await.unwrap();
    let plain = set_cookie(page.headers(), "hoursync_login").unwrap();
    assert!(!plain.contains("Secure"), "{plain}");

    // A support session sees no links to the ops pages.
    let home = http
        .get(format!("{base}/ui/"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_security_headers(home.headers());
    let html = home.text().await.unwrap();
    assert!(html.contains("alice"), "{html}");
    assert!(
        !html.contains("/ui/queue") && !html.contains("/ui/audit"),
        "{html}"
    );
    let (ops_session, _) = sign_in(&http, base, OPS).await;
    let ops_home = http
        .get(format!("{base}/ui/"))
        .header("cookie", &ops_session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(ops_home.contains("/ui/queue") && ops_home.contains("/ui/audit"));

    // Signing out needs the session's CSRF token, not another's.
    for bad in ["", "0000", &"a".repeat(64)] {
        let refused = http
            .post(format!("{base}/ui/logout"))
            .header("cookie", &session)
            .form_pairs(&[("csrf", bad)])
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "csrf {bad:?}");
        assert_security_headers(refused.headers());
    }
    let out = http
        .post(format!("{base}/ui/logout"))
        .header("cookie", &session)
        .form_pairs(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(
        set_cookie(out.headers(), "hoursync_session")
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = http
        .get(format!("{base}/ui/"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::SEE_OTHER, "the session is gone");

    // The static files are cached for long; their URL changes with them.
    let css = http
        .get(format!("{base}/ui/static/app.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    assert!(
        css.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=31536000")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_token_from_the_file_signs_its_sessions_out() {
    let console = Console::start(Backend::Sqlite).await;
    let base = &console.base;
    let http = client();
    let (alice, _) = sign_in(&http, base, SUPPORT).await;
    let (bob, _) = sign_in(&http, base, OPS).await;
    // The file reloaded on SIGHUP without alice's line.
    let tokens = hoursync::admin::auth::Tokens::parse(&format!("bob ops {OPS}\n")).unwrap();
    console.state.replace_tokens(tokens);
    let status = |session: String| {
        let http = http.clone();
        async move {
            http.get(format!("{base}/ui/"))
                .header("cookie", session)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(status(alice).await, StatusCode::SEE_OTHER, "signed out");
    assert_eq!(status(bob).await, StatusCode::OK, "still signed in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_wrong_tokens_from_one_address_are_slowed_down() {
    let console = Console::start(Backend::Sqlite).await;
    let base = &console.base;
    let http = client();
    let page = http.get(format!("{base}/ui/login")).send().await.unwrap();
    let login = cookie_value(&set_cookie(page.headers(), "hoursync_login").unwrap());
    let try_token = |token: &'static str| {
        http.post(format!("{base}/ui/login"))
            .header("cookie", format!("hoursync_login={login}"))
            .form_pairs(&[("csrf", login.as_str()), ("token", token)])
            .send()
    };
    for _ in 0..3 {
        assert_eq!(
            try_token("wrong-token-wrong-token").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Now even the right token must wait: guessing is slow.
    let slowed = try_token(SUPPORT).await.unwrap();
    assert_eq!(slowed.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = slowed.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(set_cookie(slowed.headers(), "hoursync_session").is_none());
    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    assert_eq!(
        try_token(SUPPORT).await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
}

async fn lookups_by_api_and_console_answer_alike_and_are_audited(backend: Backend) {
    let console = Console::start(backend).await;
    let base = &console.base;
    wait_drained(&console.store, Duration::from_secs(60)).await;
    let api = reqwest::Client::new();
    let learner = id(1);
    let by_get = api
        .get(format!("{base}/api/v1/people/{learner}/records"))
        .bearer_auth(SUPPORT)
        .send()
        .await
        .unwrap();
    assert_eq!(by_get.status(), 200);
    let by_get: Value = by_get.json().await.unwrap();
    let by_post = api
        .post(format!("{base}/api/v1/people:lookup"))
        .bearer_auth(SUPPORT)
        .json(&json!({ "national_id": learner }))
        .send()
        .await
        .unwrap();
    assert_eq!(by_post.status(), 200);
    let by_post: Value = by_post.json().await.unwrap();
    assert_eq!(by_get, by_post, "the same answer");
    let rows = by_post.as_array().unwrap();
    assert_eq!(rows.len(), 12, "four completions × three registries");
    let c1 = rows
        .iter()
        .find(|r| r["completion_id"] == "c1" && r["registry"] == "lifelong")
        .unwrap();
    assert_eq!(c1["course_title"], "淨零生活");
    assert_eq!(c1["completed_on"], "2026-11-20");
    assert!(!by_post.to_string().contains(&learner), "masked");

    for (body, status) in [
        (json!({ "national_id": "A123456788" }), 400),
        (json!({ "national_id": learner, "extra": 1 }), 422),
        (json!({}), 422),
    ] {
        let answer = api
            .post(format!("{base}/api/v1/people:lookup"))
            .bearer_auth(SUPPORT)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), status, "{body}");
    }
    let unauthenticated = api
        .post(format!("{base}/api/v1/people:lookup"))
        .json(&json!({ "national_id": learner }))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);

    // The console: the same records, audited as web:NAME; no CSRF token,
    // no lookup.
    let http = client();
    let (session, csrf) = sign_in(&http, base, SUPPORT).await;
    let refused = http
        .post(format!("{base}/ui/people"))
        .header("cookie", &session)
        .form_pairs(&[("national_id", learner.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_security_headers(refused.headers());
    let page = http
        .post(format!("{base}/ui/people"))
        .header("cookie", &session)
        .form_pairs(&[("csrf", csrf.as_str()), ("national_id", learner.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_security_headers(page.headers());
    let html = page.text().await.unwrap();
    assert!(
        !html.contains(&learner),
        "the page shows the ID masked only"
    );
    assert_eq!(html.matches("<tr data-registry=").count(), 12, "{html}");
    let bad = http
        .post(format!("{base}/ui/people"))
        .header("cookie", &session)
        .form_pairs(&[("csrf", csrf.as_str()), ("national_id", "A123456788")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.text().await.unwrap().contains("id=\"lookup-error\""));

    let entries = audit(base).await;
    let lookups: Vec<(&str, &str)> = entries
        .iter()
        .filter(|e| e["action"] == "lookup")
        .map(|e| {
            (
                e["actor"].as_str().unwrap(),
                e["scope"]["scope"]["national_id"].as_str().unwrap(),
            )
        })
        .collect();
    let masked = hoursync::domain::mask(&learner);
    assert_eq!(
        lookups,
        vec![
            ("web:alice", masked.as_str()),
            ("api:alice", masked.as_str()),
            ("api:alice", masked.as_str()),
        ],
        "newest first; refused and invalid lookups are not audited"
    );
    let web = entries.iter().find(|e| e["actor"] == "web:alice").unwrap();
    assert_eq!(web["records"], 12);
    assert_eq!(web["status"], "done");
    assert!(!serde_json::to_string(&entries).unwrap().contains(&learner));
}

backend_tests!(lookups_by_api_and_console_answer_alike_and_are_audited);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_leaves_the_id_in_no_log_line_and_no_metric() {
    let env = TestEnv::new(Backend::Sqlite).await;
    tokens(&env);
    let sim = simulator(Default::default()).await;
    let store = env.store().await;
    import(&store, &[env.write("fixture.jsonl", &fixture::lines())]).await;
    let (mut daemon, base) =
        env.spawn_serving_daemon(&sim, &[("HOURSYNC_LOG__LEVEL", "info".into())]);
    let http = client();
    wait_for(Duration::from_secs(30), "the admin server", || async {
        http.get(format!("{base}/readyz")).send().await.is_ok()
    })
    .await;
    let learner = id(3);
    let (session, csrf) = sign_in(&http, &base, SUPPORT).await;
    for csrf in [csrf.as_str(), "forged"] {
        http.post(format!("{base}/ui/people"))
            .header("cookie", &session)
            .form_pairs(&[("csrf", csrf), ("national_id", learner.as_str())])
            .send()
            .await
            .unwrap();
    }
    let api = http
        .post(format!("{base}/api/v1/people:lookup"))
        .bearer_auth(SUPPORT)
        .json(&json!({ "national_id": learner }))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!metrics.contains(&learner), "the ID in a metric");
    daemon.kill().await.unwrap();
    let logs = env.daemon_logs();
    assert!(
        logs.contains("console: signed in"),
        "the log was read: {logs}"
    );
    assert!(
        logs.contains("CSRF"),
        "the refused lookup was logged: {logs}"
    );
    assert!(!logs.contains(&learner), "the ID in the log: {logs}");
}

/// A benchmark figure, not a timed test (`cargo test --test console_http --
/// --ignored`): the lookup page of a learner with 500 completions (1,500
/// records), each request's time over loopback, which bounds the server's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn lookup_page_of_a_learner_with_500_completions() {
    let console = Console::start(Backend::Sqlite).await;
    let base = &console.base;
    let lines: Vec<String> = (0..500)
        .map(|i| {
            let day = 1 + i % 28;
            fixture::completion(
                &format!("bulk{i}"),
                "a5",
                "ALL",
                &format!("2026-10-{day:02}T10:00:00+08:00"),
                "completed",
            )
        })
        .collect();
    import(&console.store, &[console.env.write("bulk.jsonl", &lines)]).await;
    wait_drained(&console.store, Duration::from_secs(120)).await;
    let http = client();
    let (session, csrf) = sign_in(&http, base, SUPPORT).await;
    let mut times = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let page = http
            .post(format!("{base}/ui/people"))
            .header("cookie", &session)
            .form_pairs(&[("csrf", csrf.as_str()), ("national_id", id(5).as_str())])
            .send()
            .await
            .unwrap();
        let html = page.text().await.unwrap();
        times.push(started.elapsed());
        assert_eq!(html.matches("<tr data-registry=").count(), 1_503);
    }
    // The same lookup as JSON: the query and the audit, without the page.
    let mut api_times = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let answer = http
            .post(format!("{base}/api/v1/people:lookup"))
            .bearer_auth(SUPPORT)
            .json(&json!({ "national_id": id(5) }))
            .send()
            .await
            .unwrap();
        let rows: Vec<Value> = answer.json().await.unwrap();
        api_times.push(started.elapsed());
        assert_eq!(rows.len(), 1_503);
    }
    times.sort();
    api_times.sort();
    eprintln!(
        "1,503 records: page median {:?} (max {:?}), JSON median {:?} (max {:?})",
        times[times.len() / 2],
        times[times.len() - 1],
        api_times[api_times.len() / 2],
        api_times[api_times.len() - 1],
    );
}
