//! The wire client. Each failure is classified where the call is made, so
//! dispatch decides by type, not by string: `Transient` (outcome unknown,
//! resend with the same keys), `RateLimited`, `Unauthorized`, `TooLarge`,
//! `BadRequest`. The four calls (batch, lookup, correct, withdraw) share that
//! classification: only the answers a call names as its own (a 404 to a
//! lookup, a 409 to a correction) are read by the call itself.

use crate::domain::{Hours, RegistryKind};
use serde::Deserialize;
use std::sync::RwLock;
use std::time::Duration;

/// The most bytes read of one answer. A batch of 500 records is answered
/// in about 75 KB; an answer past this bound is not read further (it would
/// otherwise be held in memory whole, however large) and its outcome is
/// unknown, as if the connection had been cut.
pub const ANSWER_LIMIT: usize = 4 * 1024 * 1024;

/// The most bytes read of an error answer, which is only logged.
const ERROR_ANSWER_LIMIT: usize = 64 * 1024;

/// A registry refused or failed the whole request (a batch, or a lookup,
/// correction or withdrawal).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    /// 5xx, timeout, reset: the registry may or may not have credited the
    /// records; resending with the same keys is safe.
    #[error("transient failure, outcome unknown: {message}")]
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    /// 429: wait at least `retry_after` before the next request.
    #[error("rate limited by the registry for {retry_after:?}")]
    RateLimited { retry_after: Duration },
    /// 401/403: our token is missing, wrong or expired.
    #[error("the registry refused our token (HTTP {status})")]
    Unauthorized { status: u16 },
    /// 413: the batch must be split.
    #[error("batch too large for the registry (HTTP 413)")]
    TooLarge,
    /// 400 or another status the contract does not name for the call: a bug
    /// on one side; resending the same thing will not help.
    #[error("the registry answered {status}: {message}")]
    BadRequest { status: u16, message: String },
}

impl SendError {
    /// The `status` label of the request-duration metric: the HTTP status,
    /// or `timeout`, `connect`, `error` when no status came back.
    pub fn metric_status(&self) -> String {
        match self {
            Self::Transient { message, .. } => match message.strip_prefix("HTTP ") {
                Some(code) => code.to_string(),
                None if message.starts_with("timeout") => "timeout".into(),
                None if message.starts_with("connection refused") => "connect".into(),
                None => "error".into(),
            },
            Self::RateLimited { .. } => "429".into(),
            Self::Unauthorized { status } | Self::BadRequest { status, .. } => status.to_string(),
            Self::TooLarge => "413".into(),
        }
    }

    /// The HTTP status of the failed request, when one came back.
    pub fn http_status(&self) -> Option<u16> {
        self.metric_status().parse().ok()
    }

    /// The attempt history's word for the failure (`unknown` when the
    /// registry may or may not have acted).
    pub fn history_result(&self) -> &'static str {
        match self {
            Self::Transient { .. } => "unknown",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unauthorized { .. } => "unauthorized",
            Self::TooLarge => "too_large",
            Self::BadRequest { .. } => "bad_request",
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient { .. } | Self::RateLimited { .. })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordStatus {
    Accepted,
    Duplicate,
    Rejected,
}

/// The registry's answer for one record.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RecordResult {
    pub idempotency_key: String,
    pub status: RecordStatus,
    #[serde(default)]
    pub receipt_id: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Deserialize)]
struct BatchAnswer {
    results: Vec<RecordResult>,
}

/// What a registry holds under an idempotency key (the lookup's answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credited {
    pub receipt_id: String,
    /// The credited hours in tenths (`"2.5"` is 25), as [`Hours`] keeps them.
    pub hours_tenths: u32,
}

/// The registry's answer to a correction (`PUT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorrectAnswer {
    /// 200: the credit now has the new hours and knows the new key (also the
    /// answer to a resent correction, which changes nothing).
    Corrected,
    /// 404: the registry has no credit with this receipt (withdrawn, or lost).
    UnknownReceipt,
    /// 409: the new key already belongs to another receipt; the registry's
    /// message names it.
    KeyTaken(String),
}

/// The registry's answer to a withdrawal (`DELETE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithdrawAnswer {
    /// 200: the credit is gone.
    Withdrawn,
    /// 404: the registry has no credit with this receipt.
    UnknownReceipt,
}

pub struct RegistryClient {
    kind: RegistryKind,
    base_url: String,
    token: RwLock<String>,
    http: reqwest::Client,
}

impl RegistryClient {
    pub fn new(
        kind: RegistryKind,
        base_url: &str,
        token: String,
        timeout: Duration,
    ) -> reqwest::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("hoursync/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            kind,
            base_url: base_url.trim_end_matches('/').to_string(),
            token: RwLock::new(token),
            http,
        })
    }

    pub fn kind(&self) -> RegistryKind {
        self.kind
    }

    /// Replaces the bearer token (after the token file changed).
    pub fn set_token(&self, token: String) {
        *self.token.write().expect("token lock") = token;
    }

    pub fn token_matches(&self, token: &str) -> bool {
        *self.token.read().expect("token lock") == token
    }

    /// `POST {base}/v1/records:batch` with a body built by
    /// [`batch_body`](super::adapter::batch_body). On success, one result per
    /// record, in order.
    pub async fn post_batch(
        &self,
        body: String,
        request_id: &str,
    ) -> Result<Vec<RecordResult>, SendError> {
        let request = self
            .http
            .post(format!("{}/v1/records:batch", self.base_url))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let (_, text) = self.exchange(request, request_id, &[200]).await?;
        // A 200 we can not read may still have credited the records: the
        // outcome is unknown, so resend under the same keys (the registry
        // answers duplicate for what it took); never give up on them.
        let mut results = serde_json::from_str::<BatchAnswer>(&text)
            .map(|a| a.results)
            .map_err(|e| self.unreadable_200(e))?;
        for r in &mut results {
            r.code = r.code.as_deref().map(outside_text);
            r.message = r.message.as_deref().map(outside_text);
        }
        Ok(results)
    }

    /// `GET {base}/v1/records/{idempotency_key}`: the receipt and credited
    /// hours when the registry has the record, `None` on 404.
    ///
    /// A 200 we can not read (including hours that are not a one-decimal
    /// figure) is `Transient`, not `BadRequest`: callers reconcile with this
    /// answer, and "we could not tell" must never be mistaken for a verdict.
    pub async fn lookup(
        &self,
        idempotency_key: &str,
        request_id: &str,
    ) -> Result<Option<Credited>, SendError> {
        #[derive(Deserialize)]
        struct Found {
            idempotency_key: String,
            status: String,
            receipt_id: String,
            hours: String,
        }
        let request = self
            .http
            .get(format!("{}/v1/records/{idempotency_key}", self.base_url));
        match self.exchange(request, request_id, &[200, 404]).await? {
            (404, _) => Ok(None),
            (_, text) => {
                let found: Found =
                    serde_json::from_str(&text).map_err(|e| self.unreadable_200(e))?;
                if found.idempotency_key != idempotency_key
                    || found.status != "credited"
                    || found.receipt_id.trim().is_empty()
                {
                    return Err(self.unreadable_200(format_args!(
                        "not the credit of the key asked for (status {:?}, receipt {:?})",
                        found.status, found.receipt_id
                    )));
                }
                let hours = Hours::parse(&found.hours).map_err(|e| self.unreadable_200(e))?;
                Ok(Some(Credited {
                    receipt_id: found.receipt_id,
                    hours_tenths: hours.tenths(),
                }))
            }
        }
    }

    /// `PUT {base}/v1/records/{receipt_id}`: sets the credited hours under
    /// the new revision's key `new_key`.
    ///
    /// Resending the same correction (same receipt, same key) is safe: the
    /// registry answers `corrected` again and changes nothing, so an unknown
    /// outcome (`Transient`) is resolved by resending it unchanged. The hours
    /// are sent as given; a figure the registry refuses (0, over 999.9)
    /// answers 400, i.e. `BadRequest`. A 200 whose body is not
    /// `{"status": "corrected"}` for this receipt is an unknown outcome
    /// (`Transient`), resolved by resending.
    pub async fn correct(
        &self,
        receipt_id: &str,
        hours_tenths: u32,
        new_key: &str,
        request_id: &str,
    ) -> Result<CorrectAnswer, SendError> {
        let body = serde_json::json!({
            "hours": format!("{}.{}", hours_tenths / 10, hours_tenths % 10),
            "idempotency_key": new_key,
        });
        let request = self
            .http
            .put(format!("{}/v1/records/{receipt_id}", self.base_url))
            .json(&body);
        Ok(
            match self.exchange(request, request_id, &[200, 404, 409]).await? {
                (404, _) => CorrectAnswer::UnknownReceipt,
                (409, text) => CorrectAnswer::KeyTaken(answer_message(&text)),
                (_, text) => {
                    self.expect_status(&text, "corrected", Some(receipt_id))?;
                    CorrectAnswer::Corrected
                }
            },
        )
    }

    /// `DELETE {base}/v1/records/{receipt_id}`: removes the credit.
    ///
    /// The registry forgets the receipt once it is withdrawn, so a resend
    /// after an unknown outcome (`Transient`) that answers `UnknownReceipt`
    /// most likely means the first attempt went through. A 200 whose body is
    /// not `{"status": "withdrawn"}` is an unknown outcome (`Transient`).
    pub async fn withdraw(
        &self,
        receipt_id: &str,
        request_id: &str,
    ) -> Result<WithdrawAnswer, SendError> {
        let request = self
            .http
            .delete(format!("{}/v1/records/{receipt_id}", self.base_url));
        Ok(
            match self.exchange(request, request_id, &[200, 404]).await? {
                (404, _) => WithdrawAnswer::UnknownReceipt,
                (_, text) => {
                    self.expect_status(&text, "withdrawn", None)?;
                    WithdrawAnswer::Withdrawn
                }
            },
        )
    }

    /// Checks that a 200 to a `PUT` or `DELETE` says `status` (and, when it
    /// names one, `receipt_id`): anything else is an unknown outcome.
    fn expect_status(
        &self,
        text: &str,
        status: &str,
        receipt_id: Option<&str>,
    ) -> Result<(), SendError> {
        #[derive(Deserialize)]
        struct Answer {
            status: String,
            #[serde(default)]
            receipt_id: Option<String>,
        }
        let answer: Answer = serde_json::from_str(text).map_err(|e| self.unreadable_200(e))?;
        let same_receipt = match (receipt_id, answer.receipt_id.as_deref()) {
            (Some(sent), Some(answered)) => sent == answered,
            _ => true,
        };
        if answer.status != status || !same_receipt {
            return Err(self.unreadable_200(format_args!(
                "status {:?} (receipt {:?}) where {status:?} was due",
                answer.status, answer.receipt_id
            )));
        }
        Ok(())
    }

    /// A 200 whose body is not the answer the contract names: the registry
    /// may have acted, so the outcome is unknown. Counted and logged here,
    /// where the registry is known.
    fn unreadable_200(&self, e: impl std::fmt::Display) -> SendError {
        self.violation("unreadable", &e)
    }

    /// An answer that breaks the contract: counted by `violation`, logged,
    /// and an unknown outcome for the caller.
    fn violation(&self, violation: &'static str, e: &dyn std::fmt::Display) -> SendError {
        let message = format!("{violation} answer: {}", outside_text(&e.to_string()));
        crate::metrics::contract_violation(self.kind.as_str(), violation, 1);
        tracing::warn!(registry = %self.kind, violation, error = %crate::domain::mask_ids_in(&message), "the registry's answer broke the contract; outcome unknown");
        SendError::Transient {
            message,
            retry_after: None,
        }
    }

    /// Sends `request` with our token and `request_id`. The statuses in
    /// `answers` are the call's own answers and come back with their body;
    /// every other status is classified here, by the contract's table of
    /// whole-request errors, so that no call can classify them differently.
    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
        request_id: &str,
        answers: &[u16],
    ) -> Result<(u16, String), SendError> {
        let token = self.token.read().expect("token lock").clone();
        let response = request
            .bearer_auth(token)
            .header("X-Request-Id", request_id)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status().as_u16();
        if answers.contains(&status) {
            // A body cut off after the status came is as unknown an outcome
            // as a reset: the registry may have acted. So is one too large
            // to read.
            let text = match read_bounded(response, ANSWER_LIMIT).await {
                Ok(text) => text,
                Err(Unread::Transport(e)) => return Err(transport_error(e)),
                Err(Unread::TooLarge) => {
                    return Err(self
                        .violation("oversized", &format_args!("more than {ANSWER_LIMIT} bytes")));
                }
            };
            return Ok((status, text));
        }
        let retry_after = retry_after(response.headers());
        Err(match status {
            401 | 403 => SendError::Unauthorized { status },
            413 => SendError::TooLarge,
            429 => SendError::RateLimited {
                retry_after: retry_after.unwrap_or(Duration::from_secs(1)),
            },
            500..=599 => SendError::Transient {
                message: format!("HTTP {status}"),
                retry_after,
            },
            _ => SendError::BadRequest {
                status,
                message: outside_text(
                    &read_bounded(response, ERROR_ANSWER_LIMIT)
                        .await
                        .unwrap_or_default(),
                ),
            },
        })
    }
}

/// Why an answer's body was not read.
#[derive(Debug)]
enum Unread {
    Transport(reqwest::Error),
    TooLarge,
}

/// The body of `response`, read chunk by chunk and given up as soon as it
/// passes `limit` bytes (or announces more), so that an answer of any size
/// costs at most `limit` bytes of memory.
async fn read_bounded(mut response: reqwest::Response, limit: usize) -> Result<String, Unread> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(Unread::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Unread::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(Unread::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The human message of an error answer: its `error` (the simulator's) or
/// `message` field, else the body itself, cut to a length fit for a log line.
fn answer_message(body: &str) -> String {
    let field = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            ["error", "message"]
                .into_iter()
                .find_map(|name| v.get(name)?.as_str().map(str::to_owned))
        });
    outside_text(&field.unwrap_or_else(|| body.to_owned()))
}

/// Longest text kept from a registry's answer.
const OUTSIDE_TEXT_CHARS: usize = 300;

/// A text the registry wrote (an error body, a rejection's code or
/// message), made fit to store, log and show: national IDs masked, then cut
/// to [`OUTSIDE_TEXT_CHARS`]. Masking happens here, where the text enters,
/// so that `deliveries.last_error`, the attempt history and every log line
/// and answer built from them never hold a whole ID. The cut keeps an ID's
/// length of margin so that an ID straddling it is masked before it is cut.
fn outside_text(text: &str) -> String {
    let head: String = text.chars().take(OUTSIDE_TEXT_CHARS + 10).collect();
    crate::domain::mask_ids_in_text(&head)
        .chars()
        .take(OUTSIDE_TEXT_CHARS)
        .collect()
}

fn transport_error(e: reqwest::Error) -> SendError {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection refused or unreachable"
    } else {
        "connection failed"
    };
    // reqwest's message names the URL whole: a token in its query would
    // reach the log and the attempt history. Name it redacted instead.
    let url = e.url().map(|u| crate::redact::redact_url(u.as_str()));
    let e = e.without_url();
    let at = url.map(|u| format!(" ({u})")).unwrap_or_default();
    SendError::Transient {
        message: outside_text(&format!("{kind}: {}{at}", error_chain(&e))),
        retry_after: None,
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let ms = (at.timestamp_millis() - chrono::Utc::now().timestamp_millis()).max(0);
    Some(Duration::from_millis(ms as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    /// A one-shot HTTP peer answering every request with `answer`.
    async fn peer(answer: &'static str) -> String {
        recording_peer(answer).await.0
    }

    /// [`peer`], also handing over each request it received, as text.
    async fn recording_peer(
        answer: &'static str,
    ) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            while let Ok((mut socket, _)) = listener.accept().await {
                let request = read_request(&mut socket).await;
                let _ = tx.send(request);
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        (format!("http://{addr}/lifelong"), rx)
    }

    /// Reads one request: its head, then as many body bytes as its
    /// `content-length` says.
    async fn read_request(socket: &mut tokio::net::TcpStream) -> String {
        use tokio::io::AsyncReadExt;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let text = String::from_utf8_lossy(&buf).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + length {
                    return text;
                }
            }
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return String::from_utf8_lossy(&buf).into_owned(),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Checks a recorded request's line, token and request id.
    fn assert_sent(request: &str, method_and_path: &str, request_id: &str) {
        assert!(
            request.starts_with(&format!("{method_and_path} HTTP/1.1\r\n")),
            "{request}"
        );
        let head = request.to_ascii_lowercase();
        assert!(head.contains("authorization: bearer t\r\n"), "{request}");
        assert!(
            head.contains(&format!("x-request-id: {request_id}\r\n")),
            "{request}"
        );
    }

    fn client(base: &str) -> RegistryClient {
        RegistryClient::new(
            RegistryKind::Lifelong,
            base,
            "t".into(),
            Duration::from_secs(5),
        )
        .unwrap()
    }

    /// An HTTP answer with a JSON (or any) body and extra header lines.
    fn answer(status: &str, headers: &str, body: &str) -> &'static str {
        format!(
            "HTTP/1.1 {status}\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .leak()
    }

    #[tokio::test]
    async fn an_unreadable_200_is_an_unknown_outcome_to_resend_not_a_refusal() {
        // Well-formed HTTP, complete body, but not the answer the contract names.
        let base =
            peer("HTTP/1.1 200 OK\r\ncontent-length: 10\r\nconnection: close\r\n\r\n{\"oops\":1}")
                .await;
        let err = client(&base)
            .post_batch("{\"records\":[]}".into(), "id")
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err:?}");
        assert!(matches!(err, SendError::Transient { .. }));
    }

    /// What a registry writes may quote the record it refuses; the client
    /// masks it where it enters, before anything stores or logs it.
    #[tokio::test]
    async fn a_registry_text_quoting_a_national_id_comes_back_masked() {
        let rejected = r#"{"results":[{"idempotency_key":"k1","status":"rejected","code":"bad_idA123456789","message":"person=A123456789 unknown"}]}"#;
        let results = client(&peer(answer("200 OK", "", rejected)).await)
            .post_batch("{}".into(), "rid")
            .await
            .unwrap();
        assert_eq!(results[0].code.as_deref(), Some("bad_idA12*****89"));
        assert_eq!(
            results[0].message.as_deref(),
            Some("person=A12*****89 unknown")
        );

        // The ID straddles the 300-character cut: masked, then cut.
        let body = format!("{}A123456789 is invalid", "x".repeat(295));
        let c = client(&peer(answer("400 Bad Request", "", &body)).await);
        let Err(SendError::BadRequest { message, .. }) = c.post_batch("{}".into(), "rid").await
        else {
            panic!("a 400 is BadRequest")
        };
        assert_eq!(message, format!("{}A12**", "x".repeat(295)));

        let taken = r#"{"error":"key k2 belongs to receipt L-9 of F131104093"}"#;
        let c = client(&peer(answer("409 Conflict", "", taken)).await);
        assert_eq!(
            c.correct("L-1", 10, "k2", "rid").await,
            Ok(CorrectAnswer::KeyTaken(
                "key k2 belongs to receipt L-9 of F13*****93".into()
            ))
        );
    }

    #[tokio::test]
    async fn an_answer_past_the_bound_is_an_unknown_outcome_whether_announced_or_not() {
        let big = format!(
            r#"{{"results":[],"padding":"{}"}}"#,
            "x".repeat(ANSWER_LIMIT)
        );
        // Announced by its content-length, and sent until the connection
        // closes, with no length given.
        let announced = answer("200 OK", "", &big);
        let unannounced: &'static str =
            format!("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n{big}").leak();
        for raw in [announced, unannounced] {
            let err = client(&peer(raw).await)
                .post_batch("{}".into(), "rid")
                .await
                .unwrap_err();
            match err {
                SendError::Transient { message, .. } => {
                    assert!(message.starts_with("oversized answer"), "{message}")
                }
                e => panic!("{e:?}"),
            }
        }
        // Just under the bound is read.
        let fits = format!(
            r#"{{"results":[],"padding":"{}"}}"#,
            "x".repeat(ANSWER_LIMIT - 40)
        );
        let base = peer(answer("200 OK", "", &fits)).await;
        assert_eq!(
            client(&base).post_batch("{}".into(), "rid").await,
            Ok(vec![])
        );
    }

    #[tokio::test]
    async fn a_200_that_is_not_the_named_answer_to_a_put_delete_or_lookup_is_unknown() {
        let c = |body: &'static str| async move { client(&peer(answer("200 OK", "", body)).await) };
        for body in [
            r#"{"status":"withdrawn"}"#,
            r#"{"status":"corrected","receipt_id":"L-2"}"#,
            "{}",
        ] {
            let got = c(body).await.correct("L-1", 10, "k", "rid").await;
            assert!(
                matches!(got, Err(SendError::Transient { .. })),
                "{body}: {got:?}"
            );
        }
        for body in [r#"{"status":"corrected"}"#, r#"{"ok":true}"#] {
            let got = c(body).await.withdraw("L-1", "rid").await;
            assert!(
                matches!(got, Err(SendError::Transient { .. })),
                "{body}: {got:?}"
            );
        }
        for body in [
            r#"{"idempotency_key":"other","status":"credited","receipt_id":"L-1","hours":"2.0"}"#,
            r#"{"idempotency_key":"k","status":"credited","receipt_id":"","hours":"2.0"}"#,
            r#"{"idempotency_key":"k","status":"gone","receipt_id":"L-1","hours":"2.0"}"#,
        ] {
            let got = c(body).await.lookup("k", "rid").await;
            assert!(
                matches!(got, Err(SendError::Transient { .. })),
                "{body}: {got:?}"
            );
        }
        let got = c(r#"{"status":"corrected"}"#)
            .await
            .correct("L-1", 10, "k", "rid")
            .await;
        assert_eq!(got, Ok(CorrectAnswer::Corrected));
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[tokio::test]
    async fn a_lookup_reads_receipt_and_hours_in_tenths_and_404_is_none() {
        let body =
            r#"{"idempotency_key":"k","status":"credited","receipt_id":"L-000007","hours":"2.5"}"#;
        let (base, mut requests) = recording_peer(answer("200 OK", "", body)).await;
        let found = client(&base).lookup("k", "rid-1").await.unwrap();
        assert_eq!(
            found,
            Some(Credited {
                receipt_id: "L-000007".into(),
                hours_tenths: 25
            })
        );
        let request = requests.recv().await.unwrap();
        assert_sent(&request, "GET /lifelong/v1/records/k", "rid-1");

        let base = peer(answer("404 Not Found", "", r#"{"error":"no"}"#)).await;
        assert_eq!(client(&base).lookup("k", "rid").await, Ok(None));
    }

    #[tokio::test]
    async fn an_unreadable_lookup_answer_is_unknown_not_a_verdict() {
        for body in [
            r#"{"oops":1}"#,
            r#"{"receipt_id":"L-1","hours":"2"}"#,
            r#"{"receipt_id":"L-1","hours":2.5}"#,
        ] {
            let base = peer(answer("200 OK", "", body)).await;
            let err = client(&base).lookup("k", "rid").await.unwrap_err();
            assert!(
                matches!(err, SendError::Transient { .. }),
                "{body}: {err:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_correction_puts_hours_with_one_decimal_and_the_new_key() {
        let (base, mut requests) = recording_peer(answer(
            "200 OK",
            "",
            r#"{"status":"corrected","receipt_id":"L-000007"}"#,
        ))
        .await;
        let answer = client(&base)
            .correct("L-000007", 20, "rev-2", "rid-2")
            .await;
        assert_eq!(answer, Ok(CorrectAnswer::Corrected));
        let request = requests.recv().await.unwrap();
        assert_sent(&request, "PUT /lifelong/v1/records/L-000007", "rid-2");
        assert!(
            request
                .to_ascii_lowercase()
                .contains("content-type: application/json\r\n"),
            "{request}"
        );
        let body: serde_json::Value =
            serde_json::from_str(request.split_once("\r\n\r\n").unwrap().1).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"hours": "2.0", "idempotency_key": "rev-2"})
        );
    }

    #[tokio::test]
    async fn a_correction_reads_404_and_409_as_answers() {
        let base = peer(answer(
            "404 Not Found",
            "",
            r#"{"error":"no such receipt"}"#,
        ))
        .await;
        assert_eq!(
            client(&base).correct("L-9", 15, "k", "rid").await,
            Ok(CorrectAnswer::UnknownReceipt)
        );
        let base = peer(answer(
            "409 Conflict",
            "",
            r#"{"error":"idempotency_key already belongs to receipt L-000002"}"#,
        ))
        .await;
        assert_eq!(
            client(&base).correct("L-1", 15, "k", "rid").await,
            Ok(CorrectAnswer::KeyTaken(
                "idempotency_key already belongs to receipt L-000002".into()
            ))
        );
        let base = peer(answer("409 Conflict", "", "taken")).await;
        assert_eq!(
            client(&base).correct("L-1", 15, "k", "rid").await,
            Ok(CorrectAnswer::KeyTaken("taken".into()))
        );
    }

    #[tokio::test]
    async fn a_withdrawal_deletes_by_receipt_and_reads_404_as_unknown() {
        let (base, mut requests) =
            recording_peer(answer("200 OK", "", r#"{"status":"withdrawn"}"#)).await;
        assert_eq!(
            client(&base).withdraw("L-000007", "rid-3").await,
            Ok(WithdrawAnswer::Withdrawn)
        );
        let request = requests.recv().await.unwrap();
        assert_sent(&request, "DELETE /lifelong/v1/records/L-000007", "rid-3");

        let base = peer(answer("404 Not Found", "", "{}")).await;
        assert_eq!(
            client(&base).withdraw("L-1", "rid").await,
            Ok(WithdrawAnswer::UnknownReceipt)
        );
    }

    /// Every call classifies the whole-request errors the same way, because
    /// they all go through `exchange`.
    #[tokio::test]
    async fn all_four_calls_classify_whole_request_errors_alike() {
        let long = "x".repeat(400);
        let cases: Vec<(&'static str, SendError)> = vec![
            (
                answer("401 Unauthorized", "", "{}"),
                SendError::Unauthorized { status: 401 },
            ),
            (
                answer("403 Forbidden", "", "{}"),
                SendError::Unauthorized { status: 403 },
            ),
            (
                answer("413 Payload Too Large", "", "{}"),
                SendError::TooLarge,
            ),
            (
                answer("429 Too Many Requests", "retry-after: 3\r\n", "{}"),
                SendError::RateLimited {
                    retry_after: Duration::from_secs(3),
                },
            ),
            (
                answer("429 Too Many Requests", "", "{}"),
                SendError::RateLimited {
                    retry_after: Duration::from_secs(1),
                },
            ),
            (
                answer("503 Service Unavailable", "retry-after: 5\r\n", "{}"),
                SendError::Transient {
                    message: "HTTP 503".into(),
                    retry_after: Some(Duration::from_secs(5)),
                },
            ),
            (
                answer("500 Internal Server Error", "", ""),
                SendError::Transient {
                    message: "HTTP 500".into(),
                    retry_after: None,
                },
            ),
            (
                answer("400 Bad Request", "", &long),
                SendError::BadRequest {
                    status: 400,
                    message: "x".repeat(300),
                },
            ),
            (
                answer("422 Unprocessable Entity", "", "nope"),
                SendError::BadRequest {
                    status: 422,
                    message: "nope".into(),
                },
            ),
        ];
        for (raw, expected) in cases {
            let c = client(&peer(raw).await);
            let batch = c.post_batch("{}".into(), "rid").await.map(|_| ());
            let lookup = c.lookup("k", "rid").await.map(|_| ());
            let correct = c.correct("L-1", 10, "k", "rid").await.map(|_| ());
            let withdraw = c.withdraw("L-1", "rid").await.map(|_| ());
            for (call, got) in [
                ("post_batch", batch),
                ("lookup", lookup),
                ("correct", correct),
                ("withdraw", withdraw),
            ] {
                assert_eq!(got, Err(expected.clone()), "{call} on {raw}");
            }
        }
    }

    #[tokio::test]
    async fn a_connection_dropped_before_any_answer_is_transient_for_every_call() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                read_request(&mut socket).await;
                drop(socket);
            }
        });
        let c = client(&format!("http://{addr}/lifelong"));
        let errors = [
            c.post_batch("{}".into(), "rid").await.unwrap_err(),
            c.lookup("k", "rid").await.unwrap_err(),
            c.correct("L-1", 10, "k", "rid").await.unwrap_err(),
            c.withdraw("L-1", "rid").await.unwrap_err(),
        ];
        for err in errors {
            assert!(matches!(err, SendError::Transient { .. }), "{err:?}");
        }
    }
}
