//! The support console (`/ui/`) as support staff and ops use it: signing
//! in and out, its security headers and CSRF tokens over plain HTTP, and
//! the pages driven in headless Chromium (see `common::browser`). Each
//! browser test saves a screenshot under `target/screenshots/`.

#[macro_use]
mod common;

use common::browser::Browser;
use common::fixture::{self, id};
use common::*;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const SUPPORT: &str = "support-token-0123456789";
const OPS: &str = "ops-token-0123456789abcdef";

fn tokens(env: &TestEnv) {
    let path = env.dir.path().join("admin.tokens");
    std::fs::write(&path, format!("alice support {SUPPORT}\nbob ops {OPS}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A daemon serving the console, with the fixture imported.
struct Console {
    env: TestEnv,
    sim: hoursync::simulator::Simulator,
    store: hoursync::store::SharedStore,
    base: String,
    state: hoursync::admin::SharedState,
    shutdown: tokio_util::sync::CancellationToken,
}

impl Console {
    async fn start(backend: Backend) -> Console {
        let env = TestEnv::new(backend).await;
        tokens(&env);
        let sim = simulator(Default::default()).await;
        let store = env.store().await;
        import(&store, &[env.write("fixture.jsonl", &fixture::lines())]).await;
        let shutdown = tokio_util::sync::CancellationToken::new();
        let running = hoursync::daemon::start(env.config(&sim), clock(), shutdown.clone())
            .await
            .unwrap();
        let base = format!("http://{}", running.admin_addr);
        Console {
            env,
            sim,
            store,
            base,
            state: running.state.clone(),
            shutdown,
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A form body as a browser sends it (reqwest's `form` needs a feature
/// the project does not build).
trait FormPairs {
    fn form_pairs(self, pairs: &[(&str, &str)]) -> Self;
}

impl FormPairs for reqwest::RequestBuilder {
    fn form_pairs(self, pairs: &[(&str, &str)]) -> Self {
        let encode = |s: &str| -> String {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect()
        };
        let body: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(body.join("&"))
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `Set-Cookie` header setting `name`, whole.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_string())
        .unwrap()
}

/// The value of the hidden `csrf` field of a page's (first) form.
fn csrf_field(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..].split('"').next().unwrap().to_string()
}

fn assert_security_headers(headers: &HeaderMap) {
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
}

/// Signs in over plain HTTP; the session cookie (`name=value`) and the
/// session's CSRF token.
async fn sign_in(http: &reqwest::Client, base: &str, token: &str) -> (String, String) {
    let page = http.get(format!("{base}/ui/login")).send().await.unwrap();
    let login = cookie_value(&set_cookie(page.headers(), "hoursync_login").unwrap());
    let form_csrf = csrf_field(&page.text().await.unwrap());
    let answer = http
        .post(format!("{base}/ui/login"))
        .header("cookie", format!("hoursync_login={login}"))
        .form_pairs(&[("csrf", form_csrf.as_str()), ("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let session = format!(
        "hoursync_session={}",
        cookie_value(&set_cookie(answer.headers(), "hoursync_session").unwrap())
    );
    let home = http
        .get(format!("{base}/ui/"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(home.status(), StatusCode::OK);
    let csrf = csrf_field(&home.text().await.unwrap());
    (session, csrf)
}

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

/// Signs in through the sign-in page.
async fn browser_sign_in(b: &mut Browser, base: &str, token: &str) {
    b.goto(&format!("{base}/ui/login")).await;
    b.type_into("#token", token).await;
    b.click("main button[type=submit]").await;
    assert_eq!(b.current_url().await, format!("{base}/ui/"), "signed in");
}

/// Looks a learner up on `/ui/people`; each row of `#records` as
/// (registry, state, reason).
async fn browser_look_up(
    b: &mut Browser,
    base: &str,
    national_id: &str,
) -> Vec<(String, String, String)> {
    b.goto(&format!("{base}/ui/people")).await;
    b.type_into("#national-id", national_id).await;
    b.click("main form button[type=submit]").await;
    let mut rows = Vec::new();
    for tr in b.find_all("#records tbody tr").await {
        let attr = |name: &'static str| {
            let tr = tr.clone();
            let b = &*b;
            async move { b.attribute(&tr, name).await.unwrap_or_default() }
        };
        rows.push((
            attr("data-registry").await,
            attr("data-state").await,
            attr("data-reason").await,
        ));
    }
    rows
}

/// No URL the browser was on, and no page title, holds the ID.
async fn assert_id_never_visible(b: &Browser, national_id: &str) {
    for url in &b.visited {
        assert!(
            !url.to_ascii_uppercase().contains(national_id),
            "the ID in a visited URL: {url}"
        );
    }
    assert!(!b.title().await.contains(national_id));
}

/// Audit entries, newest first, as ops read them.
async fn audit(base: &str) -> Vec<Value> {
    reqwest::Client::new()
        .get(format!("{base}/api/v1/audit"))
        .bearer_auth(OPS)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
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
    b.click(&format!("{lifelong} button[data-copy-from]")).await;
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

/// A benchmark figure, not a timed test (`cargo test --test console --
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
