//! A registry peer speaking REGISTRY-API.md, for tests and demos
//! (`hoursync simulate`).
//!
//! One server answers for all three registries, each under its own base path
//! (`/lifelong`, `/teacher`, `/enved`), with its own credits, token bucket and
//! counters. It is strict on purpose: it is the peer our end-to-end tests
//! trust, so everything the contract states is enforced (bearer token,
//! `X-Request-Id`, batch limit, record shape, check digits, idempotency) and
//! where the contract is silent it does what a careful registry would; see
//! `routes.rs` for those choices.
//!
//! Faults ([`Faults`]) make the unhappy paths reproducible: whole-batch 503s,
//! connections dropped after a batch, correction or withdrawal was committed
//! (the "unknown outcome" the contract warns about), latency, courses the
//! registry refuses (with a message quoting the national ID, on request),
//! batches answered 400 with a body quoting it, batches answered 429 at
//! random (`throttle_rate`), and batch answers that break the contract
//! after the batch was applied (empty receipts, results under keys not
//! sent, oversized answers).
//! Every registry counts the requests that arrive inside a `Retry-After` it
//! announced (`early_requests`), so a test can assert that all our daemons
//! honour each other's 429s.
//!
//! The server runs its own hyper accept loop rather than `axum::serve`,
//! because dropping a connection without any response is not something an
//! axum handler can express: the handler marks its response, and the
//! connection's service turns the mark into an error, on which hyper closes
//! the connection without writing a byte.
//!
//! Control endpoints under `/_sim/` (no auth) expose the same operations as
//! the [`Simulator`] handle, for demos run from the CLI.

mod ratelimit;
mod routes;
mod state;
mod validate;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use state::{RegistryKind, SimState};

/// How long shutdown waits for in-flight requests before cutting them off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How the simulator behaves. Every field has the contract's default.
#[derive(Clone)]
pub struct SimConfig {
    /// The bearer token all three registries accept.
    pub token: String,
    /// The largest batch accepted; a larger one answers 413.
    pub max_batch: usize,
    /// Requests per second per registry; 0 means unlimited.
    pub rate_per_second: u32,
    /// The token bucket's capacity: how many requests may arrive at once.
    pub burst: u32,
    pub faults: Faults,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            token: "sim-token".to_owned(),
            max_batch: 500,
            rate_per_second: 20,
            burst: 40,
            faults: Faults::default(),
        }
    }
}

/// The token is a secret even here: it never reaches a log line.
impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("token", &"<redacted>")
            .field("max_batch", &self.max_batch)
            .field("rate_per_second", &self.rate_per_second)
            .field("burst", &self.burst)
            .field("faults", &self.faults)
            .finish()
    }
}

/// Faults to inject, changeable while the simulator runs. Missing fields
/// deserialize to "no fault", so `{"error_rate": 0.5}` is a complete body.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Probability that a batch POST (or a PUT or DELETE) answers 503
    /// without committing anything: a maintenance window.
    pub error_rate: f64,
    /// Probability that a batch POST, a PUT or a DELETE commits (whatever
    /// it answers: accepted, rejected, corrected, 404...), then drops the
    /// connection without any response: the unknown outcome, which the
    /// client must resolve by resending (or looking up).
    pub drop_rate: f64,
    /// Delay added to every registry request, before it is answered.
    pub latency_ms: u64,
    /// Course codes answered `rejected` with code `unknown_course`.
    pub reject_courses: Vec<String>,
    /// Whether those rejections quote the record's whole national ID in
    /// their message, as a careless registry's do: what we store and show
    /// of a registry's text must be masked by us.
    pub reject_quoting_id: bool,
    /// Course codes that make a whole batch answer 400, its body quoting
    /// the offending record's whole national ID (a registry echoing input
    /// it can not read). Nothing of the batch is committed.
    pub bad_request_courses: Vec<String>,
    /// Probability that a batch POST answers 429 without committing
    /// anything, whatever the token bucket says: a registry that sheds load.
    pub throttle_rate: f64,
    /// The `Retry-After` of those 429s, in whole seconds (0 reads as 1).
    pub throttle_retry_after_s: u64,
    /// Probability that an `accepted` or `duplicate` result of a batch is
    /// answered with `"receipt_id": ""`, the record being credited all the
    /// same: a registry that breaks the contract.
    pub empty_receipt_rate: f64,
    /// Probability that a result of a batch is answered under a key that
    /// was not sent (the record's key with `-x` appended), the record being
    /// applied all the same.
    pub wrong_key_rate: f64,
    /// Bytes of padding (a `"padding"` field of that many `x`) added to
    /// every batch answer, after the batch is applied: an answer far larger
    /// than any batch needs.
    pub answer_padding_bytes: u64,
}

/// One credit as the registry holds it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CreditedRecord {
    pub receipt_id: String,
    /// The latest revision's key (the original key until a correction).
    pub idempotency_key: String,
    /// The record as received; a correction updates its `hours` and
    /// `idempotency_key` to the latest revision's.
    pub record: serde_json::Value,
    /// The credited hours, one decimal place.
    pub hours: String,
}

/// One registry's counters since the simulator started. Counters missing from
/// a serialized form (an older simulator's) read as zero.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegistryStats {
    /// Every request received under this registry's base path.
    pub requests: u64,
    /// The batch POSTs among them.
    pub batch_requests: u64,
    /// Records answered `accepted`.
    pub records_accepted: u64,
    /// Records answered `duplicate`.
    pub duplicates: u64,
    /// `duplicate` answers to a resend that carried another record than
    /// the one first credited under its key: a client that breaks the
    /// contract (a resend must carry the same record under the same key).
    pub resent_other_record: u64,
    /// Records answered `rejected`.
    pub rejected: u64,
    /// Requests answered 429.
    pub rate_limited: u64,
    /// Requests answered 5xx (injected faults).
    pub server_errors: u64,
    /// Requests (batches, PUTs, DELETEs) committed and then dropped without
    /// a response.
    pub drops: u64,
    /// PUTs that changed a credit; a replayed correction (a key the receipt
    /// already knows) changes nothing and is not counted.
    pub corrections: u64,
    /// DELETEs that removed a credit.
    pub withdrawals: u64,
    /// The most requests received within any one-second window (sliding).
    pub max_requests_in_one_second: u64,
    /// Requests that arrived while a `Retry-After` this registry announced
    /// (token bucket or `throttle_rate`) was still running: a client that
    /// honours `Retry-After` across all its processes sends none, except a
    /// request already on its way when the 429 was answered.
    pub early_requests: u64,
}

/// Counters for every registry, keyed by registry name (`lifelong`,
/// `teacher`, `enved`); serialized as `{"lifelong": {...}, ...}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SimStats {
    #[serde(flatten)]
    pub registries: BTreeMap<String, RegistryStats>,
}

impl SimStats {
    /// One registry's counters; all zero for a name the simulator lacks.
    pub fn registry(&self, registry: &str) -> RegistryStats {
        self.registries.get(registry).cloned().unwrap_or_default()
    }
}

/// What the request handlers share.
struct Shared {
    token: String,
    max_batch: usize,
    state: Mutex<SimState>,
}

impl Shared {
    /// A panic in one handler must not take the simulator down with it, so
    /// a poisoned lock is used as is: every mutation leaves the state whole.
    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running simulator. Dropping it stops the server; [`Simulator::shutdown`]
/// also waits for it.
pub struct Simulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    cancel: CancellationToken,
    server: Option<JoinHandle<()>>,
}

impl Simulator {
    /// Binds `listen` (port 0 picks a free port) and serves in the background.
    pub async fn start(listen: SocketAddr, config: SimConfig) -> std::io::Result<Simulator> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            token: config.token,
            max_batch: config.max_batch,
            state: Mutex::new(SimState::new(
                config.rate_per_second,
                config.burst,
                config.faults,
            )),
        });
        let cancel = CancellationToken::new();
        let router = routes::router(Arc::clone(&shared));
        let server = tokio::spawn(serve(listener, router, cancel.clone()));
        Ok(Simulator {
            shared,
            addr,
            cancel,
            server: Some(server),
        })
    }

    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A registry's base URL, e.g. `http://127.0.0.1:8700/lifelong`. A
    /// wildcard listen address is replaced by loopback, which is reachable.
    pub fn base_url(&self, registry: &str) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!(
            "http://{}/{registry}",
            SocketAddr::new(ip, self.addr.port())
        )
    }

    /// The registry's current credits in credit order (empty for an unknown
    /// registry name).
    pub fn credited(&self, registry: &str) -> Vec<CreditedRecord> {
        RegistryKind::parse(registry)
            .map(|kind| self.shared.lock().ledger(kind).credited())
            .unwrap_or_default()
    }

    /// Replaces the injected faults; requests already past their checks are
    /// not affected.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.lock().faults = faults;
    }

    /// Makes the registry lose the credit `idempotency_key` leads to (with
    /// all its keys), as a registry restored from an old backup would.
    /// Answers whether there was such a credit.
    pub fn forget(&self, registry: &str, idempotency_key: &str) -> bool {
        RegistryKind::parse(registry)
            .is_some_and(|kind| self.shared.lock().ledger_mut(kind).forget(idempotency_key))
    }

    /// Makes the registry hold `hours_tenths` (25 is 2.5 hours) for the
    /// credit `idempotency_key` leads to, keys and receipt unchanged: a
    /// registry that holds wrong hours, for the checks that compare them.
    /// Answers whether there was such a credit.
    pub fn set_hours(&self, registry: &str, idempotency_key: &str, hours_tenths: u32) -> bool {
        RegistryKind::parse(registry).is_some_and(|kind| {
            self.shared
                .lock()
                .ledger_mut(kind)
                .set_hours(idempotency_key, hours_tenths)
        })
    }

    /// Counters for every registry.
    pub fn stats(&self) -> SimStats {
        stats(&self.shared)
    }

    /// Stops accepting connections, lets in-flight requests finish (up to a
    /// few seconds), and waits for the server task.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(server) = self.server.take()
            && let Err(e) = server.await
        {
            tracing::warn!(error = %e, "registry simulator task failed");
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn stats(shared: &Shared) -> SimStats {
    let state = shared.lock();
    SimStats {
        registries: RegistryKind::ALL
            .into_iter()
            .map(|kind| (kind.name().to_owned(), state.ledger(kind).stats()))
            .collect(),
    }
}

/// Runs the simulator for `hoursync simulate` until `shutdown` is cancelled.
pub async fn run(
    listen: SocketAddr,
    config: SimConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let sim = Simulator::start(listen, config)
        .await
        .with_context(|| format!("binding the registry simulator to {listen}"))?;
    tracing::info!(
        address = %sim.addr(),
        lifelong = %sim.base_url("lifelong"),
        teacher = %sim.base_url("teacher"),
        enved = %sim.base_url("enved"),
        "registry simulator listening"
    );
    shutdown.cancelled().await;
    tracing::info!("registry simulator stopping");
    sim.shutdown().await;
    Ok(())
}

/// The accept loop: one task per connection, drained on cancellation.
async fn serve(listener: TcpListener, router: axum::Router, cancel: CancellationToken) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    connections.spawn(serve_connection(stream, router.clone(), cancel.clone()));
                }
                Err(e) => {
                    // Usually running out of file descriptors; back off
                    // rather than spin.
                    tracing::warn!(error = %e, "registry simulator accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        connections.abort_all();
    }
}

/// The error a connection's service returns to make hyper close the
/// connection without a response.
#[derive(Debug)]
struct DroppedOnPurpose;

impl std::fmt::Display for DroppedOnPurpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose (drop_rate fault)")
    }
}

impl std::error::Error for DroppedOnPurpose {}

async fn serve_connection(stream: TcpStream, router: axum::Router, cancel: CancellationToken) {
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let router = router.clone();
        async move {
            let Ok(response) = router.oneshot(request).await;
            if response
                .extensions()
                .get::<routes::DropConnection>()
                .is_some()
            {
                return Err(DroppedOnPurpose);
            }
            Ok(response)
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new());
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    let mut draining = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "registry simulator connection ended");
                }
                break;
            }
            () = cancel.cancelled(), if !draining => {
                connection.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    }
}
