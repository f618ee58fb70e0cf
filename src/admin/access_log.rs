//! The access log: one line per request, `access`, at INFO on target
//! `hoursync::access` (`RUST_LOG=info,hoursync::access=off` silences it), with the method, the matched route's *template*
//! (`/api/v1/people/{national_id}/records`), the status, the latency and
//! the caller's name once a token named one. Never the path itself nor the
//! query: either may hold a national ID. Our own middleware rather than
//! tower-http's `TraceLayer`: it is these few fields, and the caller's name
//! is only known inside the handler (see [`CallerSlot`]).

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Where the [`Authed`](super::Authed) extractor leaves the name of the
/// caller it authenticated, for the request's access line.
#[derive(Clone, Default)]
pub(super) struct CallerSlot(Arc<Mutex<Option<String>>>);

impl CallerSlot {
    pub(super) fn set(&self, name: &str) {
        *self.0.lock().expect("caller slot") = Some(name.to_string());
    }

    fn get(&self) -> Option<String> {
        self.0.lock().expect("caller slot").clone()
    }
}

/// Logs the request once its answer is ready (its headers; a streamed body
/// may still be on its way).
pub(super) async fn access_log(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    // No template: no route matched (the 404 fallback); its path is the
    // caller's text, so it is not logged either.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(no route)".to_string(), |p| p.as_str().to_string());
    let caller = CallerSlot::default();
    req.extensions_mut().insert(caller.clone());
    let response = next.run(req).await;
    tracing::info!(
        target: "hoursync::access",
        method = %method,
        route,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_micros() as f64 / 1000.0,
        caller = caller.get().as_deref().unwrap_or("-"),
        "access"
    );
    response
}
