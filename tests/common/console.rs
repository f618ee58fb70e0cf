//! What the support console's tests share: a daemon serving the console
//! with the fixture imported, signing in over HTTP and in the browser, and
//! reading cookies, forms and the audit trail.

use super::browser::Browser;
use super::fixture;
use super::*;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::Value;

pub const SUPPORT: &str = "support-token-0123456789";
pub const OPS: &str = "ops-token-0123456789abcdef";

pub fn tokens(env: &TestEnv) {
    let path = env.dir.path().join("admin.tokens");
    std::fs::write(&path, format!("alice support {SUPPORT}\nbob ops {OPS}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The sign-in tokens written, a simulator that rejects the fixture's `LL`
/// records (rejected records for retries and requeues to act on), and the
/// fixture imported.
pub async fn fixture_with_rejections(
    env: &TestEnv,
) -> (hoursync::simulator::Simulator, hoursync::store::SharedStore) {
    tokens(env);
    let sim = simulator(hoursync::simulator::Faults {
        reject_courses: vec!["LL".into()],
        ..Default::default()
    })
    .await;
    let store = env.store().await;
    import(&store, &[env.write("fixture.jsonl", &fixture::lines())]).await;
    (sim, store)
}

/// A daemon serving the console, with the fixture imported.
pub struct Console {
    pub env: TestEnv,
    pub sim: hoursync::simulator::Simulator,
    pub store: hoursync::store::SharedStore,
    pub base: String,
    pub state: hoursync::admin::SharedState,
    pub shutdown: tokio_util::sync::CancellationToken,
}

impl Console {
    pub async fn start(backend: Backend) -> Console {
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
pub trait FormPairs {
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

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `Set-Cookie` header setting `name`, whole.
pub fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

pub fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_string())
        .unwrap()
}

/// The value of the hidden `csrf` field of a page's (first) form.
pub fn csrf_field(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..].split('"').next().unwrap().to_string()
}

pub fn assert_security_headers(headers: &HeaderMap) {
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
pub async fn sign_in(http: &reqwest::Client, base: &str, token: &str) -> (String, String) {
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

/// Signs in through the sign-in page.
pub async fn browser_sign_in(b: &mut Browser, base: &str, token: &str) {
    b.goto(&format!("{base}/ui/login")).await;
    b.type_into("#token", token).await;
    b.click("main button[type=submit]").await;
    assert_eq!(b.current_url().await, format!("{base}/ui/"), "signed in");
}

/// Looks a learner up on `/ui/people`; each row of `#records` as
/// (registry, state, reason).
pub async fn browser_look_up(
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
pub async fn assert_id_never_visible(b: &Browser, national_id: &str) {
    for url in &b.visited {
        assert!(
            !url.to_ascii_uppercase().contains(national_id),
            "the ID in a visited URL: {url}"
        );
    }
    assert!(!b.title().await.contains(national_id));
}

/// Audit entries, newest first, as ops read them.
pub async fn audit(base: &str) -> Vec<Value> {
    api_get(base, "/api/v1/audit").await
}

/// `GET {base}{path}` of the JSON API with the ops token, decoded.
pub async fn api_get<T: serde::de::DeserializeOwned>(base: &str, path: &str) -> T {
    reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(OPS)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
