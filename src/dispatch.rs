//! Dispatch: claims due deliveries of one registry under a lease, sends them
//! as one batch through the registry client, and records each record's
//! outcome (REGISTRY-API.md) — only while the lease is still ours.
//!
//! [`Dispatcher::dispatch_once`] is one unit of work; the loop around it in
//! the daemon only sleeps when it says there was nothing to do. Uploads go
//! out in batches; corrections and withdrawals of credited records, one
//! request each (`amend`). Every request is kept in the attempt history.

mod amend;

use crate::clock::SharedClock;
use crate::config::{RetryConfig, read_secret};
use crate::domain::RegistryKind;
use crate::registry::adapter::{batch_body, wire_record};
use crate::registry::answer::{Verdict, check_batch};
use crate::registry::retry::{give_up, next_delay};
use crate::registry::{RegistryClient, SendError};
use crate::store::{Action, Attempt, Claimed, Outcome, SharedStore, StoreError};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tracing::{error, info, warn};

/// What one call to [`Dispatcher::dispatch_once`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DispatchOutcome {
    /// Nothing was due.
    #[default]
    Idle,
    /// A batch went out; counts by result.
    Sent(Tally),
    /// The registry asked us to wait (429), or our token is refused: no
    /// request before this instant.
    Held { until_ms: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    pub delivered: usize,
    pub rejected: usize,
    pub retrying: usize,
    pub failed: usize,
    pub released: usize,
    pub corrected: usize,
    pub withdrawn: usize,
    /// Corrections whose receipt the registry did not know: uploaded anew.
    pub lost: usize,
}

/// The settings of a registry that SIGHUP may change while the daemon
/// runs: read by the dispatcher before every batch.
#[derive(Debug)]
pub struct Tuning {
    pub rate_per_second: std::sync::atomic::AtomicU32,
    pub max_batch: std::sync::atomic::AtomicUsize,
}

impl Tuning {
    pub fn new(rate_per_second: u32, max_batch: usize) -> Arc<Self> {
        Arc::new(Self {
            rate_per_second: rate_per_second.into(),
            max_batch: max_batch.into(),
        })
    }

    pub fn set(&self, rate_per_second: u32, max_batch: usize) {
        self.rate_per_second
            .store(rate_per_second, std::sync::atomic::Ordering::Relaxed);
        self.max_batch
            .store(max_batch, std::sync::atomic::Ordering::Relaxed);
    }

    /// Milliseconds between two requests; 0 when unlimited.
    fn interval_ms(&self) -> i64 {
        interval_ms(
            self.rate_per_second
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }
}

/// Milliseconds between two requests at `rate_per_second`; 0 when unlimited.
///
/// `rate_per_second` requests are spread over a second and
/// [`PACE_MARGIN_MS`] more, rounded up to whole milliseconds: requests
/// leave a little after their slot, by however long the process and the
/// network take, and without the margin a registry counting any sliding
/// second would see `rate + 1` or `rate + 2` of them. At the default 20/s
/// the margin costs 2% of throughput.
pub fn interval_ms(rate_per_second: u32) -> i64 {
    match rate_per_second {
        0 => 0,
        rate => (1000 + PACE_MARGIN_MS + i64::from(rate) - 1) / i64::from(rate),
    }
}

/// How late a request may leave after its slot without the registry seeing
/// more than `rate_per_second` in one second.
pub const PACE_MARGIN_MS: i64 = 10;

/// Waits for `registry`'s next request slot, shared by every daemon and by
/// every kind of request (uploads, corrections, withdrawals, lookups), so a
/// registry's rate limit is a total; and returns only when no hold (a
/// `Retry-After` any daemon was given, see [`hold_until`]) covers the moment
/// it returns, so the caller's request goes out at once.
///
/// A slot is reserved before the sleep until it, and another daemon may get
/// a 429 and write a hold meanwhile: so the hold is read again on waking,
/// and a slot it covers is given up for a new one after the hold (the
/// daemons that resume together are paced again by taking them). A slot due
/// at once needs no second read: taking it read the hold in the same
/// statement. Between that last read and the send there is only the return;
/// what no daemon can hold back is a request sent after the registry's 429
/// but before the daemon that got it has written the hold (README).
pub async fn wait_for_slot(
    store: &dyn crate::store::Store,
    clock: &dyn crate::clock::Clock,
    registry: RegistryKind,
    interval_ms: i64,
) -> Result<(), StoreError> {
    // The instant slept until, so that a clock which does not follow the
    // sleep (a test's, or a wall clock set back) can not make us wait for
    // the same instant again.
    let mut reached = i64::MIN;
    loop {
        let now = clock.now_ms().max(reached);
        let go_at = if interval_ms == 0 {
            store.registry_hold(registry).await?
        } else {
            store.take_slot(registry, now, interval_ms).await?
        };
        if go_at <= now {
            return Ok(());
        }
        sleep_ms(go_at - now).await;
        reached = go_at;
        let hold = store.registry_hold(registry).await?;
        let now = clock.now_ms().max(reached);
        if hold <= now {
            return Ok(());
        }
        sleep_ms(hold - now).await;
        reached = hold;
    }
}

/// Waits for `registry`'s next slot (shared by every daemon), then makes
/// one request with a fresh request id and observes it: the request id, the
/// instant of the answer, the answer. Every request to a registry goes
/// through here: batches, corrections, withdrawals and lookups.
pub async fn paced_request<T>(
    store: &dyn crate::store::Store,
    clock: &dyn crate::clock::Clock,
    registry: RegistryKind,
    interval_ms: i64,
    client: &RegistryClient,
    call: impl AsyncFnOnce(&RegistryClient, &str) -> Result<T, SendError>,
) -> Result<(String, i64, Result<T, SendError>), StoreError> {
    wait_for_slot(store, clock, registry, interval_ms).await?;
    let (request_id, result) = observed_request(registry, client, call).await;
    Ok((request_id, clock.now_ms(), result))
}

/// One request with a fresh request id, observed ([`observe`]), without
/// waiting for a slot: [`paced_request`], and a burst of lookups at a
/// registry with no pace of its own (after one read of the hold).
pub(crate) async fn observed_request<T>(
    registry: RegistryKind,
    client: &RegistryClient,
    call: impl AsyncFnOnce(&RegistryClient, &str) -> Result<T, SendError>,
) -> (String, Result<T, SendError>) {
    let request_id = uuid::Uuid::new_v4().to_string();
    let started = std::time::Instant::now();
    let result = call(client, &request_id).await;
    observe(registry, &result, started);
    (request_id, result)
}

/// Metrics of one request to `registry`, whatever it was (upload,
/// correction, withdrawal, lookup): its duration by status, whether the
/// registry answered, whether it refused our token.
fn observe<T>(registry: RegistryKind, result: &Result<T, SendError>, started: std::time::Instant) {
    let registry = registry.as_str();
    let status = result
        .as_ref()
        .map_or_else(SendError::metric_status, |_| "200".to_string());
    crate::metrics::request(registry, &status, started.elapsed().as_secs_f64());
    crate::metrics::registry_up(
        registry,
        !matches!(result, Err(SendError::Transient { .. })),
    );
    crate::metrics::auth_failed(
        registry,
        matches!(result, Err(SendError::Unauthorized { .. })),
    );
}

async fn sleep_ms(ms: i64) {
    tokio::time::sleep(Duration::from_millis(u64::try_from(ms).unwrap_or(0))).await;
}

/// The end of the hold a 429 with `retry_after` asks for, read on the clock
/// as `answered_ms` once the answer arrived. The clock reads whole
/// milliseconds rounded down, so when the answer was given and read within
/// one millisecond the reading is earlier than the answer; one millisecond
/// more makes the hold end after `retry_after` has passed since the answer.
pub fn hold_until(answered_ms: i64, retry_after: Duration) -> i64 {
    answered_ms + i64::try_from(retry_after.as_millis()).unwrap_or(i64::MAX / 2) + 1
}

/// Settings of one registry's dispatcher.
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    pub registry: RegistryKind,
    /// Rate and batch size, which SIGHUP may change.
    pub tuning: Arc<Tuning>,
    pub lease_ms: u64,
    pub auth_recheck_ms: u64,
    pub token_file: Option<PathBuf>,
    pub retry: RetryConfig,
}

pub struct Dispatcher {
    store: SharedStore,
    clock: SharedClock,
    client: Arc<RegistryClient>,
    settings: DispatchSettings,
    owner: String,
    /// Set after a 413 to the size that must not be exceeded again.
    too_large_limit: Option<usize>,
    /// Set after a 401/403: no request until then, unless the token changes.
    auth_blocked_until_ms: Option<i64>,
    /// What the registry answered but the database did not take: written
    /// before anything new is claimed, so that a database back within the
    /// lease finishes those rows as answered instead of resending them.
    unrecorded: Option<Log>,
}

impl Dispatcher {
    pub fn new(
        store: SharedStore,
        clock: SharedClock,
        client: Arc<RegistryClient>,
        settings: DispatchSettings,
        owner: String,
    ) -> Self {
        Self {
            store,
            clock,
            client,
            settings,
            owner,
            too_large_limit: None,
            auth_blocked_until_ms: None,
            unrecorded: None,
        }
    }

    /// Records per claim: the configured batch size, never above what a 413
    /// taught us the registry takes.
    fn batch_limit(&self) -> usize {
        let configured = self
            .settings
            .tuning
            .max_batch
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(1);
        self.too_large_limit
            .map_or(configured, |cap| configured.min(cap))
    }

    pub fn registry(&self) -> RegistryKind {
        self.settings.registry
    }

    /// Claims one batch, sends it, records what happened.
    #[tracing::instrument(skip_all, fields(registry = %self.settings.registry))]
    pub async fn dispatch_once(&mut self) -> Result<DispatchOutcome, StoreError> {
        if let Some(until) = self.auth_blocked_until_ms {
            // Re-read the token file every time: a new token ends the block at
            // once, and an unchanged one is tried again only after the pause.
            let replaced = self.token_replaced();
            if !replaced && self.clock.now_ms() < until {
                return Ok(DispatchOutcome::Held { until_ms: until });
            }
            self.auth_blocked_until_ms = None;
        }
        if let Some(log) = self.unrecorded.take() {
            if let Err(e) = self.record(&log.outcomes, &log.attempts).await {
                self.unrecorded = Some(log);
                return Err(e);
            }
            info!(registry = %self.settings.registry, records = log.outcomes.len(), "answers held while the database failed are recorded");
        }
        let hold = self.store.registry_hold(self.settings.registry).await?;
        if hold > self.clock.now_ms() {
            return Ok(DispatchOutcome::Held { until_ms: hold });
        }
        let now = self.clock.now_ms();
        let lease_until = now + self.settings.lease_ms as i64;
        let mut claimed = self
            .store
            .claim(
                self.settings.registry,
                &self.owner,
                now,
                lease_until,
                self.batch_limit(),
            )
            .await?;
        if claimed.is_empty() {
            return Ok(DispatchOutcome::Idle);
        }
        self.take_over(&mut claimed, now).await?;
        let claimed_count = claimed.len();
        let (uploads, amends): (Vec<Claimed>, Vec<Claimed>) = claimed
            .into_iter()
            .partition(|c| c.action == Action::Upload);
        let mut log = Log::default();
        let mut held = None;
        let mut sent = self.send(&uploads, &mut log, &mut held).await;
        if sent.is_ok() {
            let budget = self.amend_budget(!uploads.is_empty(), &log);
            sent = self.amend(&amends, budget, &mut log, &mut held).await;
        }
        // Record what is known even when pacing failed part-way; the rest
        // were not sent, and are released for the next claim.
        if let Err(e) = sent {
            warn!(registry = %self.settings.registry, error = %e, unsent = claimed_count - log.outcomes.len(), "could not pace requests through the database");
            let answered: std::collections::HashSet<i64> =
                log.outcomes.iter().map(Outcome::id).collect();
            let now = self.clock.now_ms();
            log.outcomes.extend(
                uploads
                    .iter()
                    .chain(&amends)
                    .filter(|c| !answered.contains(&c.id))
                    .map(|c| release(c, now, None)),
            );
        }
        let tally = tally(&log.outcomes);
        let registry = self.settings.registry.as_str();
        for (outcome, n) in [
            ("delivered", tally.delivered),
            ("rejected", tally.rejected),
            ("retrying", tally.retrying),
            ("failed", tally.failed),
            ("released", tally.released),
            ("corrected", tally.corrected),
            ("withdrawn", tally.withdrawn),
            ("lost", tally.lost),
        ] {
            if n > 0 {
                crate::metrics::delivery(registry, outcome, n as u64);
            }
        }
        crate::metrics::retries(registry, tally.retrying as u64);
        if let Err(e) = self.record(&log.outcomes, &log.attempts).await {
            warn!(registry = %self.settings.registry, error = %e, records = log.outcomes.len(), "the database did not take the registry's answers: holding them, to record first when it does");
            self.unrecorded = Some(log);
            return Err(e);
        }
        Ok(match held {
            Some(until_ms) if tally.released == claimed_count => DispatchOutcome::Held { until_ms },
            _ => DispatchOutcome::Sent(tally),
        })
    }

    /// Records the rows claimed from a lease that ended without an answer:
    /// their earlier holder stopped or stalled mid-request, so the outcome
    /// of what it sent is unknown (`retrying`, the attempt counted). They
    /// are resent under the same keys, and land once.
    async fn take_over(&self, claimed: &mut [Claimed], now: i64) -> Result<(), StoreError> {
        let ids: Vec<i64> = claimed
            .iter()
            .filter(|c| c.taken_over)
            .map(|c| c.id)
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        // The attempt the earlier holder made counts towards giving up.
        let counted: std::collections::HashMap<i64, i64> = self
            .store
            .take_over(&self.owner, &ids, now)
            .await?
            .into_iter()
            .collect();
        for c in claimed.iter_mut() {
            if let Some(&attempts) = counted.get(&c.id) {
                c.attempts = attempts;
            }
        }
        warn!(registry = %self.settings.registry, records = ids.len(), "took over records whose earlier lease ended without an answer (a daemon stopped or stalled mid-request); resending them under the same keys");
        crate::metrics::leases_expired(self.settings.registry.as_str(), ids.len() as u64);
        Ok(())
    }

    /// Writes outcomes, retrying a few times when the database is busy (a
    /// lock, a deadlock victim): the registry's answer is worth keeping. If
    /// it still fails, the caller holds the answers and writes them before
    /// its next claim; rows whose lease expires meanwhile are claimed again
    /// and resent under the same keys, which the registry answers as
    /// duplicates: nothing is lost or credited twice.
    async fn record(&self, outcomes: &[Outcome], attempts: &[Attempt]) -> Result<(), StoreError> {
        let mut tries = 0u32;
        loop {
            match self
                .store
                .record_outcomes(&self.owner, outcomes, attempts, self.clock.now_ms())
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if e.is_retryable() && tries < 5 => {
                    tries += 1;
                    warn!(registry = %self.settings.registry, error = %e, tries, "recording outcomes failed; retrying");
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(tries))).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends `records`, splitting on 413 (and on 400, to isolate the record
    /// the registry can not read), and logs one outcome per record.
    async fn send(
        &mut self,
        records: &[Claimed],
        log: &mut Log,
        held: &mut Option<i64>,
    ) -> Result<(), StoreError> {
        // Work list instead of recursion: halves of a split batch go back on it.
        let mut work: Vec<&[Claimed]> = if records.is_empty() {
            vec![]
        } else {
            vec![records]
        };
        while let Some(batch) = work.pop() {
            if let Some(until) = *held {
                log.outcomes
                    .extend(batch.iter().map(|c| release(c, until, None)));
                continue;
            }
            let records: Vec<String> = batch.iter().map(wire).collect();
            let body = batch_body(records.iter().map(String::as_str));
            let (request_id, now, result) = self
                .request(async |client, id| client.post_batch(body, id).await)
                .await?;
            tracing::debug!(request_id, records = batch.len(), "batch sent");
            let results = match result {
                Ok(results) => results,
                Err(e) => {
                    log.attempts(batch, now, &request_id, &e);
                    match e {
                        SendError::TooLarge if batch.len() > 1 => {
                            self.too_large_limit = Some((batch.len() / 2).max(1));
                            warn!(registry = %self.settings.registry, new_limit = self.batch_limit(), "registry answered 413: splitting batches");
                            let (a, b) = batch.split_at(batch.len() / 2);
                            work.push(b);
                            work.push(a);
                        }
                        SendError::BadRequest { status, message } if batch.len() > 1 => {
                            warn!(registry = %self.settings.registry, status, message, "registry refused the batch: splitting to find the record");
                            let (a, b) = batch.split_at(batch.len() / 2);
                            work.push(b);
                            work.push(a);
                        }
                        e @ (SendError::TooLarge | SendError::BadRequest { .. }) => {
                            error!(registry = %self.settings.registry, request_id, error = %e, "the registry can not take this record as sent; it waits for a person");
                            log.outcomes.extend(batch.iter().map(|c| Outcome::Failed {
                                id: c.id,
                                revision: c.revision,
                                next_attempt_at: now,
                                error: e.to_string(),
                                give_up: true,
                            }));
                        }
                        e => self.on_error(batch, e, now, &request_id, log, held).await?,
                    }
                    continue;
                }
            };
            self.apply_results(batch, results, now, &request_id, log);
        }
        Ok(())
    }

    /// The answers every kind of request shares: a rate limit holds every
    /// daemon back, a refused token stops this registry, and a transient
    /// failure (outcome unknown) is retried under the same key.
    async fn on_error(
        &mut self,
        batch: &[Claimed],
        e: SendError,
        now: i64,
        request_id: &str,
        log: &mut Log,
        held: &mut Option<i64>,
    ) -> Result<(), StoreError> {
        match e {
            SendError::RateLimited { retry_after } => {
                let until = hold_until(now, retry_after);
                self.store
                    .hold_registry(self.settings.registry, until)
                    .await?;
                warn!(registry = %self.settings.registry, retry_after_ms = retry_after.as_millis() as u64, "registry rate limit: holding back");
                *held = Some(until);
                log.outcomes
                    .extend(batch.iter().map(|c| release(c, until, None)));
            }
            e @ SendError::Unauthorized { .. } => {
                let until = now + self.settings.auth_recheck_ms as i64;
                error!(registry = %self.settings.registry, error = %e, "registry refused our token: sending to it stops until the token file is replaced");
                self.auth_blocked_until_ms = Some(until);
                *held = Some(until);
                log.outcomes
                    .extend(batch.iter().map(|c| release(c, until, Some(e.to_string()))));
            }
            SendError::Transient {
                message,
                retry_after,
            } => {
                warn!(registry = %self.settings.registry, request_id, error = %message, records = batch.len(), "outcome unknown: will resend with the same keys");
                for c in batch {
                    log.outcomes
                        .push(self.failed_attempt(c, &message, retry_after, now));
                }
            }
            // A correction or withdrawal the registry will not take as sent:
            // a bug on one side. It is never given up (the registry holds a
            // wrong figure meanwhile); it waits the longest delay and alerts.
            e @ (SendError::TooLarge | SendError::BadRequest { .. }) => {
                error!(registry = %self.settings.registry, request_id, error = %e, "the registry refused a correction or withdrawal; retrying at the longest delay");
                for c in batch {
                    log.outcomes.push(Outcome::Failed {
                        id: c.id,
                        revision: c.revision,
                        next_attempt_at: now + self.settings.retry.max_ms as i64,
                        error: e.to_string(),
                        give_up: false,
                    });
                }
            }
        }
        Ok(())
    }

    /// One request to this registry through [`paced_request`].
    async fn request<T>(
        &self,
        call: impl AsyncFnOnce(&RegistryClient, &str) -> Result<T, SendError>,
    ) -> Result<(String, i64, Result<T, SendError>), StoreError> {
        paced_request(
            self.store.as_ref(),
            self.clock.as_ref(),
            self.settings.registry,
            self.settings.tuning.interval_ms(),
            &self.client,
            call,
        )
        .await
    }

    /// Records each record's verdict on a checked answer. An answer that
    /// broke the contract is logged and counted once, and leaves the records
    /// it concerns with an unknown outcome (never delivered on it).
    fn apply_results(
        &self,
        batch: &[Claimed],
        results: Vec<crate::registry::RecordResult>,
        now: i64,
        request_id: &str,
        log: &mut Log,
    ) {
        let keys: Vec<&str> = batch.iter().map(|c| c.idempotency_key.as_str()).collect();
        let checked = check_batch(&keys, results);
        let registry = self.settings.registry.as_str();
        for (violation, n) in &checked.violations {
            crate::metrics::contract_violation(registry, violation.as_str(), *n as u64);
        }
        if !checked.violations.is_empty() {
            let found: Vec<String> = checked
                .violations
                .iter()
                .map(|(v, n)| format!("{}: {n}", v.as_str()))
                .collect();
            let unknown = checked
                .verdicts
                .iter()
                .filter(|v| matches!(v, Verdict::Unknown(_)))
                .count();
            warn!(registry, request_id, violations = %found.join(", "), records = batch.len(), unknown, "the registry's batch answer broke the contract: those records' outcome is unknown and they will be resent");
        }
        for (c, verdict) in batch.iter().zip(checked.verdicts) {
            match verdict {
                Verdict::Credited {
                    receipt_id,
                    duplicate,
                } => {
                    let word = if duplicate { "duplicate" } else { "accepted" };
                    log.attempt(c, now, request_id, Some(200), word, None);
                    log.outcomes.push(Outcome::Delivered {
                        id: c.id,
                        revision: c.revision,
                        receipt_id,
                        credited_tenths: c.hours_tenths,
                    });
                }
                Verdict::Rejected { code, message } => {
                    log.attempt(
                        c,
                        now,
                        request_id,
                        Some(200),
                        "rejected",
                        Some(format!("{code}: {message}")),
                    );
                    log.outcomes.push(Outcome::Rejected {
                        id: c.id,
                        revision: c.revision,
                        code,
                        message,
                    });
                }
                Verdict::Unknown(violation) => {
                    let e = violation.describe();
                    log.attempt(c, now, request_id, Some(200), "unknown", Some(e.into()));
                    log.outcomes.push(self.failed_attempt(c, e, None, now));
                }
            }
        }
    }

    fn failed_attempt(
        &self,
        c: &Claimed,
        error: &str,
        retry_after: Option<Duration>,
        now: i64,
    ) -> Outcome {
        let attempts = u32::try_from(c.attempts + 1).unwrap_or(u32::MAX);
        let delay = next_delay(
            &self.settings.retry,
            attempts,
            retry_after,
            rand::random::<f64>(),
        );
        Outcome::Failed {
            id: c.id,
            revision: c.revision,
            next_attempt_at: now + delay.as_millis() as i64,
            error: error.to_string(),
            // Only uploads give up: see `on_error`.
            give_up: c.action == Action::Upload && give_up(&self.settings.retry, attempts),
        }
    }

    /// Re-reads the token file; true (and the client updated) when it holds
    /// a new token.
    fn token_replaced(&self) -> bool {
        let Some(path) = &self.settings.token_file else {
            return false;
        };
        match read_secret(path) {
            Ok(token) if !self.client.token_matches(&token) => {
                info!(registry = %self.settings.registry, "token file changed: resuming");
                self.client.set_token(token);
                true
            }
            Ok(_) => false,
            Err(e) => {
                warn!(registry = %self.settings.registry, error = %e, "cannot re-read the token file");
                false
            }
        }
    }
}

/// The bytes of a claimed upload: rebuilt from the row's facts under its
/// key, the same every time the revision is sent.
fn wire(c: &Claimed) -> String {
    let record = c.record.as_ref();
    wire_record(
        record.expect("a claimed upload has its record (checked when read)"),
        &c.idempotency_key,
    )
}

fn release(c: &Claimed, until: i64, error: Option<String>) -> Outcome {
    Outcome::Released {
        id: c.id,
        next_attempt_at: until,
        error,
    }
}

fn tally(outcomes: &[Outcome]) -> Tally {
    let mut t = Tally::default();
    for o in outcomes {
        match o {
            Outcome::Delivered { .. } => t.delivered += 1,
            Outcome::Rejected { .. } => t.rejected += 1,
            Outcome::Failed { give_up: true, .. } => t.failed += 1,
            Outcome::Failed { .. } => t.retrying += 1,
            Outcome::Released { .. } => t.released += 1,
            Outcome::Corrected { .. } => t.corrected += 1,
            Outcome::Withdrawn { .. } => t.withdrawn += 1,
            Outcome::Lost { .. } => t.lost += 1,
        }
    }
    t
}

/// What one unit of work learnt: an outcome per claimed record, and an
/// attempt per request made for each.
#[derive(Default)]
struct Log {
    outcomes: Vec<Outcome>,
    attempts: Vec<Attempt>,
}

impl Log {
    fn attempt(
        &mut self,
        c: &Claimed,
        at: i64,
        request_id: &str,
        http_status: Option<u16>,
        result: &str,
        error: Option<String>,
    ) {
        self.attempts.push(Attempt {
            delivery_id: c.id,
            at,
            revision: c.revision,
            action: c.action.as_str().to_string(),
            request_id: request_id.to_string(),
            http_status,
            result: result.to_string(),
            error,
        });
    }

    /// One attempt per record of a request that failed as a whole.
    fn attempts(&mut self, batch: &[Claimed], at: i64, request_id: &str, e: &SendError) {
        for c in batch {
            self.attempt(
                c,
                at,
                request_id,
                e.http_status(),
                e.history_result(),
                Some(e.to_string()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seconds_worth_of_slots_spans_a_second_and_the_margin_at_every_rate() {
        assert_eq!(interval_ms(0), 0);
        assert_eq!(interval_ms(20), 51);
        for rate in 1..=1000 {
            let span = i64::from(rate) * interval_ms(rate);
            assert!(span >= 1000 + PACE_MARGIN_MS, "rate {rate}: {span} ms");
            // and never slower than needed by more than one millisecond a slot
            assert!(
                span - i64::from(rate) < 1000 + PACE_MARGIN_MS,
                "rate {rate}"
            );
        }
    }
}
