//! The support console: server-rendered pages under `/ui/` on the admin
//! server, for support staff ("where are my hours?") and ops.
//!
//! Built with maud: HTML is a typed builder checked at compile time that
//! escapes every value by default, with no template files and no engine
//! at run time. Pages call the same functions as the JSON API. Sessions
//! are server-side ([`session`]); every POST carries the session's CSRF
//! token; every answer carries a strict Content-Security-Policy (no
//! inline script or style), so the small enhancing script and the style
//! sheet are static files embedded in the binary.
//!
//! A page is a handler taking [`UiSession`] (or [`OpsOnly`] for ops pages)
//! that returns `layout::page(&session.ctx(), title, body)`; its strings go
//! in both languages of [`i18n::Text`]; a form carries
//! `input type="hidden" name="csrf" value=(session.csrf)` and its handler
//! answers `session.csrf_refusal(&form.csrf)` when that is `Some`; state
//! changes are audited as `web:NAME`. Add the route in [`routes`].

mod audit;
pub mod explain;
mod history;
pub mod i18n;
pub mod layout;
mod login;
mod overview;
mod people;
mod queue;
mod resync;
pub mod session;
mod sla;

use super::SharedState;
use super::auth::{Caller, Role};
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use i18n::Lang;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// What the console keeps between requests.
pub struct UiState {
    pub sessions: session::Sessions,
    pub throttle: session::Throttle,
}

impl UiState {
    pub fn new(session_idle: std::time::Duration) -> Self {
        Self {
            sessions: session::Sessions::new(session_idle),
            throttle: session::Throttle::default(),
        }
    }
}

/// The headers every console answer carries: no script or style but our
/// own files, no framing, no referrer, no MIME sniffing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The language cookie's name.
const LANG_COOKIE: &str = "lang";

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(overview::page))
        .route("/ui/login", get(login::form).post(login::submit))
        .route("/ui/logout", axum::routing::post(login::logout))
        .route("/ui/people", get(people::form).post(people::look_up))
        .route("/ui/deliveries/{id}", get(history::page))
        .route("/ui/resync", get(resync::form).post(resync::submit))
        .route("/ui/resync/{id}", get(resync::progress))
        .route("/ui/queue", get(queue::page))
        .route("/ui/queue/{id}/retry", axum::routing::post(queue::retry))
        .route("/ui/sla", get(sla::page))
        .route("/ui/audit", get(audit::page))
        .route("/ui/static/app.css", get(css))
        .route("/ui/static/app.js", get(js))
        .route("/ui/{*rest}", axum::routing::any(not_found))
        .layer(axum::middleware::from_fn(ui_headers))
}

/// Adds the security headers to every console answer, and remembers a
/// language chosen with `?lang=` in a cookie.
async fn ui_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let chosen = query_lang(req.uri().query());
    let mut answer = next.run(req).await;
    let h = answer.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        // Pages show personal data: never kept by the browser or a proxy.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Some(lang) = chosen {
        let cookie = format!(
            "{LANG_COOKIE}={}; Path=/ui; Max-Age=31536000; SameSite=Strict",
            lang.code()
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            h.append(header::SET_COOKIE, v);
        }
    }
    answer
}

fn query_lang(query: Option<&str>) -> Option<Lang> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("lang="))
        .and_then(Lang::parse)
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Put in a request's extensions by a server that accepted the connection
/// over TLS, so that the console marks its cookies `Secure`.
#[derive(Debug, Clone, Copy)]
pub struct ServedOverTls;

/// Whether the browser reached us over HTTPS (a TLS connection of ours, or
/// a proxy that says so with `X-Forwarded-Proto`): then cookies are marked
/// `Secure`.
pub fn over_https(parts: &Parts) -> bool {
    parts.extensions.get::<ServedOverTls>().is_some()
        || parts.uri.scheme_str() == Some("https")
        || parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value for a console cookie (HttpOnly, SameSite=Strict,
/// `Secure` over HTTPS); `max_age` 0 deletes it.
pub fn set_cookie(
    name: &str,
    value: &str,
    path: &str,
    secure: bool,
    max_age: Option<u64>,
) -> String {
    let mut c = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// The client's address (the proxy's, behind one), for the sign-in throttle.
pub fn client_ip(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// The page's language: `?lang=`, else the `lang` cookie, else the
/// browser's `Accept-Language`, else Chinese.
pub struct UiLang(pub Lang);

impl<S: Send + Sync> FromRequestParts<S> for UiLang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(UiLang(lang_of(parts)))
    }
}

fn lang_of(parts: &Parts) -> Lang {
    query_lang(parts.uri.query())
        .or_else(|| cookie(&parts.headers, LANG_COOKIE).and_then(Lang::parse))
        .unwrap_or_else(|| {
            parts
                .headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .map_or(Lang::ZhTw, Lang::from_accept_language)
        })
}

/// A signed-in person's request: who, in which language, and the CSRF
/// token its forms carry. Without a live session: 303 to `/ui/login`.
pub struct UiSession {
    pub caller: Caller,
    pub lang: Lang,
    pub csrf: String,
    /// The session id, to sign out.
    pub id: String,
    /// The request's path, for the language switch.
    pub path: String,
}

impl FromRequestParts<SharedState> for UiSession {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let to_login = || Redirect::to("/ui/login").into_response();
        let id = cookie(&parts.headers, session::COOKIE).ok_or_else(to_login)?;
        let now = state.clock.now_ms();
        let found = state.ui.sessions.touch(id, now).ok_or_else(to_login)?;
        Ok(UiSession {
            caller: found.caller,
            lang: lang_of(parts),
            csrf: found.csrf,
            id: id.to_string(),
            path: parts.uri.path().to_string(),
        })
    }
}

impl UiSession {
    /// The page shell's view of this session.
    pub fn ctx(&self) -> layout::Ctx<'_> {
        layout::Ctx {
            caller: Some(&self.caller),
            lang: self.lang,
            csrf: &self.csrf,
            path: &self.path,
        }
    }

    /// `None` when a form's CSRF token is this session's; the 403 page to
    /// answer otherwise.
    pub fn csrf_refusal(&self, sent: &str) -> Option<Response> {
        if session::same_secret(sent, &self.csrf) {
            None
        } else {
            tracing::warn!(user = %self.caller.name, path = %self.path, "console: a POST without this session's CSRF token was refused");
            let t = self.lang.t();
            Some(self.error_page(StatusCode::FORBIDDEN, t.csrf_title, t.csrf_body))
        }
    }

    /// A page with a status and one message.
    pub fn error_page(&self, status: StatusCode, title: &str, message: &str) -> Response {
        let body = maud::html! { p role="alert" class="error" { (message) } };
        (status, layout::page(&self.ctx(), title, body)).into_response()
    }
}

/// A session with the ops role; a support session gets a 403 page (and
/// never sees links to these pages).
pub struct OpsOnly(pub UiSession);

impl FromRequestParts<SharedState> for OpsOnly {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let session = UiSession::from_request_parts(parts, state).await?;
        match ops_refusal(&session) {
            Some(refused) => Err(refused),
            None => Ok(OpsOnly(session)),
        }
    }
}

/// The 403 page a session below the ops role gets on an ops page.
fn ops_refusal(session: &UiSession) -> Option<Response> {
    if session.caller.role >= Role::Ops {
        return None;
    }
    let t = session.lang.t();
    Some(session.error_page(StatusCode::FORBIDDEN, t.forbidden_title, t.forbidden_body))
}

/// Any other path under `/ui/`: a page, not the API's JSON 404, with the
/// same headers as every console answer.
async fn not_found(UiLang(lang): UiLang) -> Response {
    let t = lang.t();
    let ctx = layout::Ctx {
        caller: None,
        lang,
        csrf: "",
        path: "/ui/",
    };
    let body = maud::html! { p { a href="/ui/" { (t.nav_overview) } } };
    (
        StatusCode::NOT_FOUND,
        layout::page(&ctx, t.not_found_title, body),
    )
        .into_response()
}

/// The console's style sheet and script, embedded in the binary.
const APP_CSS: &str = include_str!("static/app.css");
const APP_JS: &str = include_str!("static/app.js");

/// A short digest of both static files: their URLs carry it, so they can
/// be cached for a year and a new build is still fetched at once.
pub fn asset_version() -> &'static str {
    static V: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        use sha2::Digest;
        let d = sha2::Sha256::digest(format!("{APP_CSS}{APP_JS}").as_bytes());
        d.iter().take(6).map(|b| format!("{b:02x}")).collect()
    });
    &V
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        body,
    )
        .into_response()
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(role: Role, lang: Lang) -> UiSession {
        UiSession {
            caller: Caller {
                name: "carol".into(),
                role,
            },
            lang,
            csrf: "c".repeat(64),
            id: "s".repeat(64),
            path: "/ui/queue".into(),
        }
    }

    async fn body(r: Response) -> String {
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_support_session_gets_a_403_page_on_ops_pages_and_ops_passes() {
        assert!(ops_refusal(&session(Role::Ops, Lang::ZhTw)).is_none());
        let refused = ops_refusal(&session(Role::Support, Lang::ZhTw)).unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        let page = body(refused).await;
        assert!(page.contains(i18n::ZH_TW.forbidden_body), "{page}");
        assert!(
            !page.contains("/ui/queue\""),
            "no link to ops pages: {page}"
        );
        let english = ops_refusal(&session(Role::Support, Lang::En)).unwrap();
        assert!(body(english).await.contains(i18n::EN.forbidden_body));
    }

    #[tokio::test]
    async fn a_form_with_another_csrf_token_gets_a_403_page() {
        let s = session(Role::Support, Lang::En);
        assert!(s.csrf_refusal(&s.csrf.clone()).is_none());
        for forged in ["", "c", &"d".repeat(64), &"c".repeat(65)] {
            let refused = s.csrf_refusal(forged).unwrap();
            assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{forged:?}");
        }
    }
}
