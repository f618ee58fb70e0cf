//! The admin HTTP server on `admin.listen`: health, readiness and metrics
//! for ops and Prometheus, and the API support staff use. Tests start it on
//! port 0 with the whole daemon.

mod api;
pub mod auth;

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
    pub clients: crate::resync::Clients,
}

pub type SharedState = Arc<AdminState>;

impl AdminState {
    pub fn set_started(&self) {
        self.started.store(true, Ordering::SeqCst);
    }

    pub fn replace_tokens(&self, tokens: Tokens) {
        *self.tokens.write().expect("tokens lock") = Arc::new(tokens);
    }
}

/// An error answer: a status and a message that says what was wrong.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

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
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
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
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError(
                    StatusCode::UNAUTHORIZED,
                    "a bearer token is required".into(),
                )
            })?;
        let tokens = state.tokens.read().expect("tokens lock").clone();
        tokens
            .authenticate(token.trim())
            .map(Authed)
            .ok_or_else(|| ApiError(StatusCode::UNAUTHORIZED, "unknown token".into()))
    }
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
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Serves until `shutdown` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: SharedState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the database answers and the daemon finished starting
/// (migrations applied, scheduler running); 503 with the failing checks
/// otherwise, so a load balancer or systemd stops routing to it.
async fn readyz(State(state): State<SharedState>) -> Response {
    let database = state.store.ping().await.map_err(|e| e.to_string());
    let started = state.started.load(Ordering::SeqCst);
    let body = serde_json::json!({
        "database": database.as_ref().map_or_else(|e| e.as_str(), |_| "ok"),
        "started": started,
    });
    let status = if database.is_ok() && started {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics() -> Response {
    match crate::metrics::install() {
        Ok(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        Err(e) => ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("metrics unavailable: {e}"),
        )
        .into_response(),
    }
}
