//! The wire client. Each failure is classified where the call is made, so
//! dispatch decides by type, not by string: `Transient` (outcome unknown,
//! resend with the same keys), `RateLimited`, `Unauthorized`, `TooLarge`,
//! `BadRequest`.

use crate::domain::RegistryKind;
use serde::Deserialize;
use std::sync::RwLock;
use std::time::Duration;

/// A registry refused or failed the whole batch.
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
    /// 400 or an answer we can not read: a bug on one side; resending the
    /// same thing will not help.
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
        let token = self.token.read().expect("token lock").clone();
        let response = self
            .http
            .post(format!("{}/v1/records:batch", self.base_url))
            .bearer_auth(token)
            .header("X-Request-Id", request_id)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        match status {
            // A 200 we can not read may still have credited the records: the
            // outcome is unknown, so resend under the same keys (the registry
            // answers duplicate for what it took); never give up on them.
            200 => {
                let text = response.text().await.map_err(transport_error)?;
                serde_json::from_str::<BatchAnswer>(&text)
                    .map(|a| a.results)
                    .map_err(|e| SendError::Transient {
                        message: format!("unreadable 200 answer: {e}"),
                        retry_after: None,
                    })
            }
            401 | 403 => Err(SendError::Unauthorized { status }),
            413 => Err(SendError::TooLarge),
            429 => Err(SendError::RateLimited {
                retry_after: retry_after.unwrap_or(Duration::from_secs(1)),
            }),
            500..=599 => Err(SendError::Transient {
                message: format!("HTTP {status}"),
                retry_after,
            }),
            _ => {
                let text = response.text().await.unwrap_or_default();
                Err(SendError::BadRequest {
                    status,
                    message: text.chars().take(300).collect(),
                })
            }
        }
    }
}

impl RegistryClient {
    /// `GET {base}/v1/records/{key}`: the credited hours when the registry
    /// has the record, `None` on 404.
    pub async fn lookup(&self, idempotency_key: &str) -> Result<Option<String>, SendError> {
        #[derive(Deserialize)]
        struct Found {
            hours: String,
        }
        let token = self.token.read().expect("token lock").clone();
        let response = self
            .http
            .get(format!("{}/v1/records/{idempotency_key}", self.base_url))
            .bearer_auth(token)
            .header("X-Request-Id", uuid::Uuid::new_v4().to_string())
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status().as_u16();
        match status {
            200 => {
                let text = response.text().await.map_err(transport_error)?;
                let found: Found =
                    serde_json::from_str(&text).map_err(|e| SendError::BadRequest {
                        status,
                        message: format!("unreadable answer: {e}"),
                    })?;
                Ok(Some(found.hours))
            }
            404 => Ok(None),
            401 | 403 => Err(SendError::Unauthorized { status }),
            429 => Err(SendError::RateLimited {
                retry_after: retry_after(response.headers()).unwrap_or(Duration::from_secs(1)),
            }),
            500..=599 => Err(SendError::Transient {
                message: format!("HTTP {status}"),
                retry_after: None,
            }),
            _ => Err(SendError::BadRequest {
                status,
                message: response
                    .text()
                    .await
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect(),
            }),
        }
    }
}

fn transport_error(e: reqwest::Error) -> SendError {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection refused or unreachable"
    } else {
        "connection failed"
    };
    SendError::Transient {
        message: format!("{kind}: {}", error_chain(&e)),
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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = vec![0u8; 65536];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        format!("http://{addr}/lifelong")
    }

    #[tokio::test]
    async fn an_unreadable_200_is_an_unknown_outcome_to_resend_not_a_refusal() {
        // Well-formed HTTP, complete body, but not the answer the contract names.
        let base =
            peer("HTTP/1.1 200 OK\r\ncontent-length: 10\r\nconnection: close\r\n\r\n{\"oops\":1}")
                .await;
        let client = RegistryClient::new(
            RegistryKind::Lifelong,
            &base,
            "t".into(),
            Duration::from_secs(5),
        )
        .unwrap();
        let err = client
            .post_batch("{\"records\":[]}".into(), "id")
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err:?}");
        assert!(matches!(err, SendError::Transient { .. }));
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
}
