//! The admin HTTP server on `admin.listen`: health, readiness and metrics
//! for ops and Prometheus, the API support staff use, and the support
//! console's pages under `/ui/` (see [`ui`]). Tests start it on
//! port 0 with the whole daemon. Its OpenAPI document (see [`openapi`]) is
//! served, open, at `GET /api/v1/openapi.json`.

mod access_log;
pub(crate) mod api;
pub mod auth;
pub mod conn;
pub mod openapi;
pub mod ui;

pub use api::{AuditView, DeliveryView, ResyncRequest};

use crate::clock::SharedClock;
use crate::store::SharedStore;
use auth::{Caller, Role, Tokens};
use axum::extract::{FromRef, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use tokio_util::sync::CancellationToken;

/// Largest request body the API reads.
const BODY_LIMIT: usize = 64 * 1024;

/// What the handlers share.
pub struct AdminState {
    pub store: SharedStore,
    pub clock: SharedClock,
    /// Replaced on SIGHUP.
    pub tokens: RwLock<Arc<Tokens>>,
    /// Set once migrations ran and the scheduler started.
    pub started: AtomicBool,
    pub open_health: bool,
    pub at_risk: chrono::Duration,
    /// For resyncs that verify delivered records at the registry.
    pub registries: crate::registries::Registries,
    /// The daemon's work loops, for `/readyz`.
    pub progress: Arc<crate::progress::Progress>,
    /// Whether the daemon's writes get through, for `/readyz`.
    pub db_health: Arc<crate::db_health::DbHealth>,
    /// The support console's sessions and sign-in throttle.
    pub ui: ui::UiState,
}

pub type SharedState = Arc<AdminState>;

impl AdminState {
    pub fn set_started(&self) {
        self.started.store(true, Ordering::SeqCst);
    }

    /// Also signs out console sessions whose name and role the new file
    /// no longer has: removing a token from the file revokes its sessions.
    pub fn replace_tokens(&self, tokens: Tokens) {
        self.ui.sessions.retain(|c| tokens.has(c));
        *self.tokens.write().expect("tokens lock") = Arc::new(tokens);
    }
}

/// An error answer: a status and a message that says what was wrong.
/// Every error the server answers, 4xx or 5xx, is a [`Problem`].
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

/// The media type of every error answer (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The body of every error answer: RFC 9457 problem details, plus `error`,
/// the field clients read before there were problem details.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Always `about:blank`: the status says what kind of problem it is.
    #[serde(rename = "type")]
    pub kind: String,
    /// The status's reason phrase, e.g. `Not Found`.
    pub title: String,
    /// The HTTP status of the answer.
    pub status: u16,
    /// What was wrong; anything shaped like a national ID is masked.
    pub detail: String,
    /// The same text as `detail`, kept for the clients that read it.
    pub error: String,
}

/// The former name of [`Problem`], for code written before it.
pub type ErrorBody = Problem;

impl ApiError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, msg.into())
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        Self(StatusCode::NOT_FOUND, msg.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Messages may echo what the caller sent (a query value, a path
        // segment, a JSON key), perhaps glued to other characters: mask
        // anything shaped like a national ID, here, once for every answer.
        let detail = crate::domain::mask_ids_in_text(&self.1).into_owned();
        let problem = Problem {
            kind: "about:blank".into(),
            title: self.0.canonical_reason().unwrap_or("Error").into(),
            status: self.0.as_u16(),
            error: detail.clone(),
            detail,
        };
        let mut response = (self.0, Json(problem)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static(PROBLEM_JSON),
        );
        // RFC 6750: a 401 names the scheme the client must use.
        if self.0 == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"hoursync\""),
            );
        }
        response
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "admin API: database error");
        let status = if e.is_retryable() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        ApiError(status, "database error; see the daemon's log".into())
    }
}

/// An authenticated caller (401 without a valid bearer token).
pub struct Authed(pub Caller);

impl<S> FromRequestParts<S> for Authed
where
    SharedState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = SharedState::from_ref(state);
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token)
            .ok_or_else(|| {
                ApiError(
                    StatusCode::UNAUTHORIZED,
                    "a bearer token is required".into(),
                )
            })?;
        let tokens = state.tokens.read().expect("tokens lock").clone();
        let caller = tokens
            .authenticate(token.trim())
            .ok_or_else(|| ApiError(StatusCode::UNAUTHORIZED, "unknown token".into()))?;
        if let Some(slot) = parts.extensions.get::<access_log::CallerSlot>() {
            slot.set(&caller.name);
        }
        Ok(Authed(caller))
    }
}

/// The token of an `Authorization` value with the `Bearer` scheme, whose
/// name is case-insensitive (RFC 7235 §2.1): `bearer` and `BEARER` count.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}

impl Authed {
    /// 403 unless the caller has at least `role`.
    pub fn require(&self, role: Role) -> Result<&Caller, ApiError> {
        if self.0.role >= role {
            Ok(&self.0)
        } else {
            Err(ApiError(
                StatusCode::FORBIDDEN,
                format!("this needs the {role:?} role").to_lowercase(),
            ))
        }
    }
}

pub fn router(state: SharedState) -> Router {
    let health = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics));
    let health = if state.open_health {
        health
    } else {
        health.route_layer(axum::middleware::from_extractor_with_state::<
            Authed,
            SharedState,
        >(state.clone()))
    };
    Router::new()
        .merge(health)
        .merge(api::routes())
        .merge(ui::routes())
        // Open whatever `open_health` says: it tells how to call the rest.
        .route(openapi::PATH, get(openapi::openapi_json))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(close_unless_body_read))
        .layer(axum::middleware::from_fn(access_log::access_log))
        .with_state(state)
}

/// An answer given before the request's body was read to its end (a 401,
/// 413 or 415 of a POST, a body no handler reads) closes the connection,
/// and says so: hyper closes such a connection anyway, and a client told
/// nothing would send its next request on it and lose it.
async fn close_unless_body_read(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use axum::body::{Body, HttpBody};
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    let read = Arc::new(AtomicBool::new(false));
    let req = req.map(|inner| {
        Body::new(ReadToEnd {
            inner,
            read: read.clone(),
        })
    });
    let mut answer = next.run(req).await;
    if !read.load(Ordering::SeqCst) {
        answer.headers_mut().insert(
            header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    answer
}

/// A request body that tells when it was read to its end.
struct ReadToEnd {
    inner: axum::body::Body,
    read: Arc<AtomicBool>,
}

impl axum::body::HttpBody for ReadToEnd {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, std::task::Poll::Ready(None)) || self.inner.is_end_stream() {
            self.read.store(true, Ordering::SeqCst);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Unknown paths get a JSON 404 like every other error.
async fn no_route(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route {}", uri.path()))
}

/// A known path with another method: a JSON 405 (axum adds `Allow`).
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// Serves until `shutdown` is cancelled, within `limits` (see [`conn`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: SharedState,
    limits: conn::Limits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    conn::serve(listener, router(state), limits, shutdown).await
}

/// The process is alive.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses(
        (status = 200, description = "Always `ok`", body = String, content_type = "text/plain"),
        (status = 401, description = openapi::HEALTH_UNAUTHORIZED, body = Problem),
    ),
    security((), ("bearer" = [])),
)]
async fn healthz() -> &'static str {
    "ok\n"
}

/// What `/readyz` checked.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ok`, or the database error (no answer, or a task's writes failing).
    pub database: String,
    /// Migrations applied and the scheduler running.
    pub started: bool,
    /// `ok`, or each work loop that stopped or whose turn is past its bound
    /// (e.g. `dispatch lifelong: stopped`).
    pub work: String,
    /// Log lines dropped since the start because the log stream failed or
    /// stopped taking them; informative, readiness does not depend on it.
    pub log_lines_dropped: u64,
}

/// Ready when the daemon can make progress: the database answers within
/// 2 s, the last unit of work of every task that writes (dispatch, scan)
/// got through to it, it finished starting (migrations applied, scheduler
/// running), and every work loop runs with no turn past its bound (a
/// dispatch turn: twice `dispatch.lease_ms`). 503 with the failing checks
/// otherwise, so a load balancer, systemd or on-call sees a daemon that
/// delivers nothing.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 401, description = openapi::HEALTH_UNAUTHORIZED, body = Problem),
        (status = 503, description = "Not ready: the failing check", body = Readiness),
    ),
    security((), ("bearer" = [])),
)]
async fn readyz(State(state): State<SharedState>) -> Response {
    let database = match state.db_health.failing() {
        Some(failing) => Err(failing),
        None => match tokio::time::timeout(READY_PING_TIMEOUT, state.store.ping()).await {
            Ok(answer) => answer.map_err(|e| e.to_string()),
            Err(_) => Err(format!(
                "the database did not answer within {} s",
                READY_PING_TIMEOUT.as_secs()
            )),
        },
    };
    log_readiness(&database);
    let started = state.started.load(Ordering::SeqCst);
    let stalled = state.progress.stalled();
    let body = Readiness {
        database: database
            .as_ref()
            .map_or_else(|e| e.clone(), |_| "ok".to_string()),
        started,
        work: if stalled.is_empty() {
            "ok".into()
        } else {
            stalled.join("; ")
        },
        log_lines_dropped: crate::telemetry::lines_dropped(),
    };
    let status = if database.is_ok() && started && stalled.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// How long `/readyz` waits for the database: a network partition that
/// holds packets (rather than refusing them) must make the daemon unready
/// within seconds, not after the pool's acquire timeout.
const READY_PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Logs the database check of `/readyz` when it changes, so the log says
/// when and why the daemon stopped (or went back to) being ready.
fn log_readiness(database: &Result<(), String>) {
    static FAILING: AtomicBool = AtomicBool::new(false);
    match database {
        Err(e) if !FAILING.swap(true, Ordering::SeqCst) => {
            tracing::error!(error = %e, "not ready: the database check failed")
        }
        Ok(()) if FAILING.swap(false, Ordering::SeqCst) => {
            tracing::info!("ready again: the database check passed")
        }
        _ => {}
    }
}

/// Prometheus metrics, in the text exposition format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses(
        (status = 200, description = "The metrics", body = String, content_type = "text/plain"),
        (status = 401, description = openapi::HEALTH_UNAUTHORIZED, body = Problem),
        (status = 500, description = "The metrics recorder could not be installed", body = Problem),
    ),
    security((), ("bearer" = [])),
)]
async fn metrics() -> Response {
    match crate::metrics::install() {
        Ok(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            crate::metrics::render(&handle),
        )
            .into_response(),
        Err(e) => ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("metrics unavailable: {e}"),
        )
        .into_response(),
    }
}
