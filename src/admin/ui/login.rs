//! Signing in with an admin token and out again. The token is sent once,
//! in a POST; after that the browser holds only a random session id.

use super::i18n::Lang;
use super::{UiLang, UiSession, client_ip, cookie, layout, over_https, session, set_cookie};
use crate::admin::SharedState;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use std::net::IpAddr;

/// The cookie that binds the sign-in form to the browser that loaded it
/// (the form's CSRF token before there is a session).
const LOGIN_COOKIE: &str = "hoursync_login";

/// What a request says about where it came from.
pub struct Origin {
    ip: IpAddr,
    https: bool,
    form_token: Option<String>,
    session: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Origin {
            ip: client_ip(parts),
            https: over_https(parts),
            form_token: cookie(&parts.headers, LOGIN_COOKIE).map(str::to_string),
            session: cookie(&parts.headers, session::COOKIE).map(str::to_string),
        })
    }
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
}

/// The sign-in page; a live session goes straight to the overview.
pub async fn form(
    State(state): State<SharedState>,
    UiLang(lang): UiLang,
    origin: Origin,
) -> Response {
    let now = state.clock.now_ms();
    if let Some(id) = &origin.session
        && state.ui.sessions.touch(id, now).is_some()
    {
        return Redirect::to("/ui/").into_response();
    }
    login_page(lang, &origin, StatusCode::OK, None)
}

/// The sign-in page with a fresh form token (kept when the browser already
/// has one), and an error if any.
fn login_page(lang: Lang, origin: &Origin, status: StatusCode, error: Option<&str>) -> Response {
    let t = lang.t();
    let csrf = origin
        .form_token
        .clone()
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(session::random_token);
    let ctx = layout::Ctx {
        caller: None,
        lang,
        csrf: "",
        path: "/ui/login",
    };
    let body = html! {
        @if let Some(e) = error {
            p role="alert" class="error" id="login-error" { "⚠ " (e) }
        }
        form method="post" action="/ui/login" class="card" {
            input type="hidden" name="csrf" value=(csrf);
            label for="token" { (t.token_label) }
            input type="password" id="token" name="token" required autocomplete="current-password"
                autofocus aria-describedby="token-hint";
            p class="hint" id="token-hint" { (t.token_hint) }
            button type="submit" { (t.login_button) }
        }
    };
    let mut answer = (status, layout::page(&ctx, t.login_title, body)).into_response();
    let c = set_cookie(LOGIN_COOKIE, &csrf, "/ui/login", origin.https, None);
    if let Ok(v) = HeaderValue::from_str(&c) {
        answer.headers_mut().append(header::SET_COOKIE, v);
    }
    answer
}

/// Checks the token: a session and the overview, or the sign-in page again
/// with an error that does not say what was wrong. Failures from one
/// address are slowed down ([`session::Throttle`]).
pub async fn submit(
    State(state): State<SharedState>,
    UiLang(lang): UiLang,
    origin: Origin,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let t = lang.t();
    let Ok(Form(form)) = form else {
        return login_page(lang, &origin, StatusCode::BAD_REQUEST, Some(t.login_failed));
    };
    let bound = origin
        .form_token
        .as_deref()
        .is_some_and(|c| session::same_secret(c, &form.csrf));
    if !bound {
        tracing::warn!(client = %origin.ip, "console: a sign-in without its form token was refused");
        return login_page(lang, &origin, StatusCode::FORBIDDEN, Some(t.csrf_body));
    }
    let now = state.clock.now_ms();
    let wait = state.ui.throttle.wait(origin.ip, now);
    if wait > 0 {
        let mut answer = login_page(
            lang,
            &origin,
            StatusCode::TOO_MANY_REQUESTS,
            Some(t.login_slowed),
        );
        let secs = (wait + 999) / 1000;
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            answer.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return answer;
    }
    let tokens = state.tokens.read().expect("tokens lock").clone();
    let Some(caller) = tokens.authenticate(form.token.trim()) else {
        state.ui.throttle.failed(origin.ip, now);
        tracing::warn!(client = %origin.ip, "console: sign-in with an unknown token");
        return login_page(
            lang,
            &origin,
            StatusCode::UNAUTHORIZED,
            Some(t.login_failed),
        );
    };
    state.ui.throttle.succeeded(origin.ip);
    tracing::info!(user = %caller.name, "console: signed in");
    let id = state.ui.sessions.create(caller, now);
    let mut answer = Redirect::to("/ui/").into_response();
    let h = answer.headers_mut();
    for c in [
        set_cookie(session::COOKIE, &id, "/ui", origin.https, None),
        set_cookie(LOGIN_COOKIE, "", "/ui/login", origin.https, Some(0)),
    ] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            h.append(header::SET_COOKIE, v);
        }
    }
    answer
}

#[derive(serde::Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Ends the session and deletes its cookie.
pub async fn logout(
    State(state): State<SharedState>,
    session: UiSession,
    origin: Origin,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let sent = form.map(|Form(f)| f.csrf).unwrap_or_default();
    if let Some(refused) = session.csrf_refusal(&sent) {
        return refused;
    }
    state.ui.sessions.remove(&session.id);
    tracing::info!(user = %session.caller.name, "console: signed out");
    let mut answer = Redirect::to("/ui/login").into_response();
    let c = set_cookie(session::COOKIE, "", "/ui", origin.https, Some(0));
    if let Ok(v) = HeaderValue::from_str(&c) {
        answer.headers_mut().append(header::SET_COOKIE, v);
    }
    answer
}
