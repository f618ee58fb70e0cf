//! The support console (`/ui/`) as support staff and ops use it: signing
//! in and out, its security headers and CSRF tokens over plain HTTP, and
//! the pages driven in headless Chromium (see `common::browser`). Each
//! browser test saves a screenshot under `target/screenshots/`.

#[macro_use]
mod common;

use common::browser::Browser;
use common::fixture;
use common::*;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

const SUPPORT: &str = "support-token-0123456789";
const OPS: &str = "ops-token-0123456789abcdef";

fn tokens(env: &TestEnv) {
    let path = env.dir.path().join("admin.tokens");
    std::fs::write(&path, format!("alice support {SUPPORT}\nbob ops {OPS}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A daemon serving the console, with the fixture imported.
#[allow(dead_code)]
struct Console {
    env: TestEnv,
    sim: hoursync::simulator::Simulator,
    store: hoursync::store::SharedStore,
    base: String,
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
