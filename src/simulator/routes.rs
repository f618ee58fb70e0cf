//! The HTTP surface: the contract's endpoints under each registry's base
//! path, and the control endpoints under `/_sim/`.
//!
//! Where REGISTRY-API.md is silent, the simulator chooses as a careful
//! registry would, and as strictly as it can, so that a client bug shows up
//! in our tests:
//!
//! - A missing (or non-Bearer) `Authorization` answers 401 with
//!   `WWW-Authenticate: Bearer`; a wrong token answers 403.
//! - A missing `X-Request-Id`, or one that is not a UUID, answers 400. The
//!   id is echoed on the response.
//! - Bodies must be sent as `application/json`; anything else answers 400.
//! - Checks run in this order: registry path, auth, request id, rate limit
//!   (the token bucket, then the `throttle_rate` fault on batches), injected
//!   503, then the body. So a maintenance window answers 503 to any batch,
//!   and a 429 or 503 commits nothing.
//! - A request is counted as `early_requests` when it arrives, before its
//!   checks, inside a `Retry-After` the registry announced; the window opens
//!   when the 429 is decided (see `ratelimit::RetryAfterWatch`).
//! - A batch body with fields other than `records` answers 400; a record
//!   with fields its registry does not list is `rejected` `invalid_field`.
//! - A key credited earlier answers `duplicate` before the record is
//!   validated again: the key, not the content, identifies a credited record.
//! - `PUT` with a key the receipt already knows changes nothing and answers
//!   `corrected` (a resent or stale correction is harmless); a key that
//!   belongs to another receipt answers 409; bad hours answer 400 with
//!   `"code": "invalid_hours"`.
//! - `DELETE` forgets the credit and all its keys; the slot (person, course,
//!   date) is free again; a second `DELETE` answers 404.
//! - The faults that break the contract (`empty_receipt_rate`,
//!   `wrong_key_rate`, `answer_padding_bytes`) change only the answer: the
//!   batch is applied as usual, so a client that resends finds `duplicate`.
//! - The `drop_rate` fault hits a batch, a `PUT` or a `DELETE` after it is
//!   applied, whatever its answer; a lookup, which commits nothing, is
//!   never dropped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use super::state::{CorrectError, Outcome, RegistryKind};
use super::validate;
use super::{Faults, Shared};

/// Marks a response the connection must drop instead of sending (see the
/// module doc of `simulator`).
#[derive(Clone, Copy, Debug)]
pub struct DropConnection;

const REQUEST_ID: &str = "x-request-id";

/// Far above any batch of 500 records, so that only `max_batch` decides 413.
const BODY_LIMIT: usize = 64 * 1024 * 1024;

type AppState = Arc<Shared>;

pub fn router(shared: AppState) -> Router {
    Router::new()
        .route("/{registry}/v1/records:batch", post(batch))
        .route(
            "/{registry}/v1/records/{id}",
            get(lookup).put(correct).delete(withdraw),
        )
        .route("/_sim/faults", put(set_faults).get(get_faults))
        .route("/_sim/stats", get(stats))
        .route("/_sim/{registry}/records", get(records))
        .route("/_sim/{registry}/forget/{key}", post(forget))
        .route("/_sim/{registry}/set-hours/{key}", post(set_hours))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(echo_request_id))
        .with_state(shared)
}

/// Copies the request's `X-Request-Id` onto the response, for tracing.
async fn echo_request_id(request: Request, next: Next) -> Response {
    let id = request.headers().get(REQUEST_ID).cloned();
    let mut response = next.run(request).await;
    if let Some(id) = id {
        response.headers_mut().insert(REQUEST_ID, id);
    }
    response
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// Draws whether an injected fault fires; out-of-range or NaN rates are
/// clamped rather than trusted.
fn fires(rate: f64) -> bool {
    let p = if rate.is_nan() {
        0.0
    } else {
        rate.clamp(0.0, 1.0)
    };
    p > 0.0 && rand::random_bool(p)
}

/// What every registry request goes through before its handler's work:
/// counting, latency, auth, request id and the rate limit.
async fn gate(
    shared: &Shared,
    registry: &str,
    headers: &HeaderMap,
    is_batch: bool,
) -> Result<RegistryKind, Response> {
    let Some(kind) = RegistryKind::parse(registry) else {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("no registry named {registry:?}"),
        ));
    };
    let latency_ms = {
        let mut state = shared.lock();
        let ledger = state.ledger_mut(kind);
        ledger.stats.requests += 1;
        if is_batch {
            ledger.stats.batch_requests += 1;
        }
        let now = Instant::now();
        ledger.window.record(now);
        if ledger.retry_after.is_early(now) {
            ledger.stats.early_requests += 1;
        }
        state.faults.latency_ms
    };
    if latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(latency_ms)).await;
    }

    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match bearer {
        None => {
            let mut response = error(
                StatusCode::UNAUTHORIZED,
                "Authorization: Bearer <token> is required",
            );
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return Err(response);
        }
        Some(token) if !same_token(token.trim(), &shared.token) => {
            return Err(error(
                StatusCode::FORBIDDEN,
                "the bearer token is not valid",
            ));
        }
        Some(_) => {}
    }

    let request_id = headers.get(REQUEST_ID).and_then(|v| v.to_str().ok());
    match request_id {
        None => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "every request must carry an X-Request-Id header (a fresh UUID)",
            ));
        }
        Some(id) if uuid::Uuid::parse_str(id).is_err() => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "X-Request-Id must be a UUID",
            ));
        }
        Some(_) => {}
    }

    let mut state = shared.lock();
    let throttled = is_batch && fires(state.faults.throttle_rate);
    let throttle_retry_after = state.faults.throttle_retry_after_s.max(1);
    let ledger = state.ledger_mut(kind);
    let now = Instant::now();
    let retry_after = match ledger.bucket.take(now) {
        Err(retry_after) => retry_after,
        Ok(()) if throttled => throttle_retry_after,
        Ok(()) => return Ok(kind),
    };
    ledger.stats.rate_limited += 1;
    ledger
        .retry_after
        .announce(now, Duration::from_secs(retry_after));
    let mut response = error(
        StatusCode::TOO_MANY_REQUESTS,
        format!("rate limit exceeded; retry after {retry_after} s"),
    );
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_after));
    Err(response)
}

/// Compares tokens without stopping at the first differing byte.
fn same_token(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Answers 503 (and counts it) when the `error_rate` fault fires.
fn injected_error(shared: &Shared, kind: RegistryKind) -> Option<Response> {
    let mut state = shared.lock();
    if !fires(state.faults.error_rate) {
        return None;
    }
    state.ledger_mut(kind).stats.server_errors += 1;
    Some(error(
        StatusCode::SERVICE_UNAVAILABLE,
        "registry unavailable (simulated maintenance)",
    ))
}

/// Draws the `drop_rate` fault for a request whose change is committed. When
/// it fires, the drop is counted and `response` is marked so that the
/// connection closes without sending it: the contract's unknown outcome.
fn answer_or_drop(shared: &Shared, kind: RegistryKind, mut response: Response) -> Response {
    let mut state = shared.lock();
    if fires(state.faults.drop_rate) {
        state.ledger_mut(kind).stats.drops += 1;
        response.extensions_mut().insert(DropConnection);
    }
    response
}

/// Parses a JSON object body sent as `application/json`, or says why not.
fn json_object(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<serde_json::Map<String, Value>, String> {
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err("the body must be sent with Content-Type: application/json".to_owned());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(_) => Err("the body must be a JSON object".to_owned()),
        Err(e) => Err(format!("the body is not valid JSON: {e}")),
    }
}

/// `POST {base}/v1/records:batch`.
async fn batch(
    State(shared): State<AppState>,
    Path(registry): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let kind = match gate(&shared, &registry, &headers, true).await {
        Ok(kind) => kind,
        Err(response) => return response,
    };
    if let Some(response) = injected_error(&shared, kind) {
        return response;
    }
    let mut obj = match json_object(&headers, &body) {
        Ok(obj) => obj,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    if let Some(extra) = obj.keys().find(|k| *k != "records") {
        return error(
            StatusCode::BAD_REQUEST,
            format!("unexpected field {extra:?} in the batch body"),
        );
    }
    let records = match obj.remove("records") {
        Some(Value::Array(records)) => records,
        Some(_) => return error(StatusCode::BAD_REQUEST, "\"records\" must be an array"),
        None => return error(StatusCode::BAD_REQUEST, "the body has no \"records\" array"),
    };
    if records.is_empty() {
        return error(StatusCode::BAD_REQUEST, "a batch needs at least one record");
    }
    if records.len() > shared.max_batch {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "a batch holds at most {} records, got {}",
                shared.max_batch,
                records.len()
            ),
        );
    }

    if let Some(message) = bad_request_fault(&shared, &records) {
        return error(StatusCode::BAD_REQUEST, message);
    }

    let results: Vec<Value> = {
        let mut state = shared.lock();
        let faults: Faults = state.faults.clone();
        let ledger = state.ledger_mut(kind);
        records
            .iter()
            .map(|record| {
                let mut key = record.get("idempotency_key").cloned().unwrap_or(Value::Null);
                if let Value::String(k) = &mut key
                    && fires(faults.wrong_key_rate)
                {
                    k.push_str("-x");
                }
                let receipt = |r: String| {
                    if fires(faults.empty_receipt_rate) {
                        String::new()
                    } else {
                        r
                    }
                };
                match ledger.submit(record, &faults) {
                    Outcome::Accepted(r) => {
                        json!({"idempotency_key": key, "status": "accepted", "receipt_id": receipt(r)})
                    }
                    Outcome::Duplicate(r) => {
                        json!({"idempotency_key": key, "status": "duplicate", "receipt_id": receipt(r)})
                    }
                    Outcome::Rejected(r) => json!({
                        "idempotency_key": key,
                        "status": "rejected",
                        "code": r.code,
                        "message": r.message,
                    }),
                }
            })
            .collect()
    };
    let records = results.len();
    let padding = shared.lock().faults.answer_padding_bytes;
    let answer = if padding > 0 {
        padded(&results, padding as usize)
    } else {
        Json(json!({ "results": results })).into_response()
    };
    let response = answer_or_drop(&shared, kind, answer);
    tracing::debug!(
        registry = kind.name(),
        records,
        dropped = response.extensions().get::<DropConnection>().is_some(),
        "registry simulator answered a batch"
    );
    response
}

/// The `bad_request_courses` fault: the message of a 400 for the first
/// record of such a course, quoting its national ID whole.
fn bad_request_fault(shared: &Shared, records: &[Value]) -> Option<String> {
    let faults = shared.lock().faults.bad_request_courses.clone();
    if faults.is_empty() {
        return None;
    }
    records.iter().enumerate().find_map(|(i, r)| {
        let course = r.get("course_code")?.as_str()?;
        faults.iter().any(|c| c == course).then(|| {
            let nid = r.get("national_id").and_then(Value::as_str).unwrap_or("?");
            format!("record {i}: cannot read the record of national_id={nid} (course {course:?})")
        })
    })
}

/// A batch answer with a `"padding"` field of `bytes` bytes, written as
/// bytes rather than through a JSON value, so that a large one is cheap.
fn padded(results: &[Value], bytes: usize) -> Response {
    let head = format!(
        r#"{{"results":{},"padding":""#,
        Value::from(results.to_vec())
    );
    // `vec!` of one byte is a memset, fast even in a debug build.
    let padding = vec![b'x'; bytes];
    let mut body = Vec::with_capacity(head.len() + bytes + 2);
    body.extend_from_slice(head.as_bytes());
    body.extend_from_slice(&padding);
    body.extend_from_slice(b"\"}");
    ([(CONTENT_TYPE, "application/json")], body).into_response()
}

/// `GET {base}/v1/records/{idempotency_key}`.
async fn lookup(
    State(shared): State<AppState>,
    Path((registry, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let kind = match gate(&shared, &registry, &headers, false).await {
        Ok(kind) => kind,
        Err(response) => return response,
    };
    match shared.lock().ledger(kind).lookup(&key) {
        Some((receipt_id, hours)) => Json(json!({
            "idempotency_key": key,
            "status": "credited",
            "receipt_id": receipt_id,
            "hours": hours,
        }))
        .into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "no credited record has this idempotency key",
        ),
    }
}

/// `PUT {base}/v1/records/{receipt_id}` with `{"hours", "idempotency_key"}`.
async fn correct(
    State(shared): State<AppState>,
    Path((registry, receipt_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let kind = match gate(&shared, &registry, &headers, false).await {
        Ok(kind) => kind,
        Err(response) => return response,
    };
    if let Some(response) = injected_error(&shared, kind) {
        return response;
    }
    let obj = match json_object(&headers, &body) {
        Ok(obj) => obj,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    if let Some(extra) = obj
        .keys()
        .find(|k| *k != "hours" && *k != "idempotency_key")
    {
        return field_error("invalid_field", format!("unexpected field {extra:?}"));
    }
    let hours = match obj.get("hours") {
        Some(Value::String(s)) => match validate::tenths(s) {
            Ok(0) => return field_error("invalid_hours", "hours must be greater than 0"),
            Ok(tenths) => tenths,
            Err(e) => return field_error("invalid_hours", format!("hours: {e}")),
        },
        _ => {
            return field_error(
                "invalid_hours",
                "hours must be a decimal string such as \"2.0\"",
            );
        }
    };
    let key = match obj.get("idempotency_key") {
        Some(Value::String(key)) => key,
        _ => return field_error("invalid_field", "idempotency_key must be a string"),
    };
    if let Err(e) = validate::valid_key(key) {
        return field_error("invalid_field", e);
    }
    let outcome = shared
        .lock()
        .ledger_mut(kind)
        .correct(&receipt_id, key, hours);
    let response = match outcome {
        Ok(()) => Json(json!({"status": "corrected", "receipt_id": receipt_id})).into_response(),
        Err(CorrectError::UnknownReceipt) => {
            error(StatusCode::NOT_FOUND, "no credited record has this receipt")
        }
        Err(CorrectError::KeyTaken(other)) => error(
            StatusCode::CONFLICT,
            format!("idempotency_key already belongs to receipt {other}"),
        ),
    };
    answer_or_drop(&shared, kind, response)
}

fn field_error(code: &str, message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": message.into(), "code": code })),
    )
        .into_response()
}

/// `DELETE {base}/v1/records/{receipt_id}`.
async fn withdraw(
    State(shared): State<AppState>,
    Path((registry, receipt_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let kind = match gate(&shared, &registry, &headers, false).await {
        Ok(kind) => kind,
        Err(response) => return response,
    };
    if let Some(response) = injected_error(&shared, kind) {
        return response;
    }
    let withdrawn = shared.lock().ledger_mut(kind).withdraw(&receipt_id);
    let response = if withdrawn {
        Json(json!({"status": "withdrawn"})).into_response()
    } else {
        error(StatusCode::NOT_FOUND, "no credited record has this receipt")
    };
    answer_or_drop(&shared, kind, response)
}

/// `GET /_sim/{registry}/records`.
async fn records(State(shared): State<AppState>, Path(registry): Path<String>) -> Response {
    match RegistryKind::parse(&registry) {
        Some(kind) => Json(shared.lock().ledger(kind).credited()).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!("no registry named {registry:?}"),
        ),
    }
}

/// `PUT /_sim/faults`.
async fn set_faults(State(shared): State<AppState>, Json(faults): Json<Faults>) -> Response {
    shared.lock().faults = faults.clone();
    Json(faults).into_response()
}

/// `GET /_sim/faults`.
async fn get_faults(State(shared): State<AppState>) -> Response {
    Json(shared.lock().faults.clone()).into_response()
}

/// `POST /_sim/{registry}/forget/{key}`.
async fn forget(
    State(shared): State<AppState>,
    Path((registry, key)): Path<(String, String)>,
) -> Response {
    let Some(kind) = RegistryKind::parse(&registry) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no registry named {registry:?}"),
        );
    };
    if shared.lock().ledger_mut(kind).forget(&key) {
        Json(json!({"forgotten": true})).into_response()
    } else {
        (StatusCode::NOT_FOUND, Json(json!({"forgotten": false}))).into_response()
    }
}

/// `POST /_sim/{registry}/set-hours/{key}` with `{"hours": "9.9"}`: the
/// credit the key leads to now holds these hours (see `Simulator::set_hours`).
/// The body need not be labelled JSON, so that a bare `curl -d` works.
async fn set_hours(
    State(shared): State<AppState>,
    Path((registry, key)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct SetHours {
        hours: String,
    }
    let Some(kind) = RegistryKind::parse(&registry) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no registry named {registry:?}"),
        );
    };
    let tenths = match serde_json::from_slice::<SetHours>(&body) {
        Ok(SetHours { hours }) => match validate::tenths(&hours) {
            Ok(tenths) => tenths,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("hours: {e}")),
        },
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body must be {{\"hours\": \"9.9\"}}: {e}"),
            );
        }
    };
    if shared.lock().ledger_mut(kind).set_hours(&key, tenths) {
        Json(json!({"hours": validate::format_tenths(tenths)})).into_response()
    } else {
        error(
            StatusCode::NOT_FOUND,
            "no credited record has this idempotency key",
        )
    }
}

/// `GET /_sim/stats`.
async fn stats(State(shared): State<AppState>) -> Response {
    Json(super::stats(&shared)).into_response()
}
