//! Every Prometheus metric hoursync exports, in one place.
//!
//! The rest of the crate records through the small typed functions below
//! ([`delivery`], [`backlog`], [`request`], …) and never spells a metric
//! name. [`install`] puts the Prometheus recorder in place once and returns
//! the [`PrometheusHandle`] whose `render()` is served at `/metrics`; until
//! it is called every recording function is a no-op (the `metrics` crate
//! drops what no recorder takes), so unit tests need not install anything.
//!
//! Labels carry only fixed vocabularies: `registry` (lifelong, teacher,
//! enved), `outcome`, `state`, `status`, `reason` (the eligibility reason
//! codes) and `version`. Never a national ID, an account, a course code or
//! anything else per learner: a label value outside its vocabulary is
//! recorded as `other`, so a wrong argument can neither leak personal data
//! into the time-series database nor create unbounded series.
//!
//! `config/monitoring/README.md` lists the metrics with the alerts and the
//! dashboard built on them; `tests/monitoring.rs` checks that those only use
//! names from [`METRICS`].

use crate::domain::RegistryKind;
use crate::eligibility::Reason;
use anyhow::Context as _;
use metrics::{KeyName, SharedString, Unit, counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

pub const DELIVERIES_TOTAL: &str = "hoursync_deliveries_total";
pub const BACKLOG: &str = "hoursync_backlog";
pub const INELIGIBLE_RECORDS: &str = "hoursync_ineligible_records";
pub const SLA_RECORDS: &str = "hoursync_sla_records";
pub const OLDEST_UNDELIVERED_AGE_SECONDS: &str = "hoursync_oldest_undelivered_age_seconds";
pub const REGISTRY_REQUEST_DURATION_SECONDS: &str = "hoursync_registry_request_duration_seconds";
pub const REGISTRY_UP: &str = "hoursync_registry_up";
pub const REGISTRY_AUTH_FAILED: &str = "hoursync_registry_auth_failed";
pub const RETRIES_TOTAL: &str = "hoursync_retries_total";
pub const LEASES_EXPIRED_TOTAL: &str = "hoursync_leases_expired_total";
pub const LAST_SUCCESSFUL_SCAN_TIMESTAMP_SECONDS: &str =
    "hoursync_last_successful_scan_timestamp_seconds";
pub const SCAN_DURATION_SECONDS: &str = "hoursync_scan_duration_seconds";
pub const SCAN_COMPLETIONS_TOTAL: &str = "hoursync_scan_completions_total";
pub const CALENDAR_COVERED_UNTIL_TIMESTAMP_SECONDS: &str =
    "hoursync_calendar_covered_until_timestamp_seconds";
pub const CALENDAR_FALLBACK_TOTAL: &str = "hoursync_calendar_fallback_total";
pub const BUILD_INFO: &str = "hoursync_build_info";
pub const RECONCILE_CHECKED_TOTAL: &str = "hoursync_reconcile_checked_total";
pub const RECONCILE_REPAIRS_TOTAL: &str = "hoursync_reconcile_repairs_total";
pub const RECONCILE_LOOKUP_ERRORS_TOTAL: &str = "hoursync_reconcile_lookup_errors_total";
pub const LAST_SUCCESSFUL_RECONCILE_TIMESTAMP_SECONDS: &str =
    "hoursync_last_successful_reconcile_timestamp_seconds";
pub const LOG_LINES_DROPPED_TOTAL: &str = "hoursync_log_lines_dropped_total";
pub const REGISTRY_CONTRACT_VIOLATIONS_TOTAL: &str = "hoursync_registry_contract_violations_total";
pub const DATABASE_ERRORS_TOTAL: &str = "hoursync_database_errors_total";

/// The Prometheus type of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// One exported metric: what `describe()` registers and what the
/// monitoring tests check the rules and the dashboard against.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub unit: Option<Unit>,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

/// Every metric hoursync exports. `up` comes from Prometheus itself.
pub const METRICS: &[Metric] = &[
    Metric {
        name: DELIVERIES_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &["registry", "outcome"],
        help: "Records whose delivery attempt ended, by registry and outcome \
               (delivered, rejected, retrying, failed, released, corrected, withdrawn, lost).",
    },
    Metric {
        name: BACKLOG,
        kind: Kind::Gauge,
        unit: Some(Unit::Count),
        labels: &["registry", "state"],
        help: "Records not delivered, by registry and state (pending, retrying, failed, rejected), \
               and credited records whose correction or withdrawal is due (correcting, withdrawing).",
    },
    Metric {
        name: INELIGIBLE_RECORDS,
        kind: Kind::Gauge,
        unit: Some(Unit::Count),
        labels: &["registry", "reason"],
        help: "Completion x registry pairs not sent because of an eligibility rule, by reason code.",
    },
    Metric {
        name: SLA_RECORDS,
        kind: Kind::Gauge,
        unit: Some(Unit::Count),
        labels: &["registry", "state"],
        help: "Undelivered records close to (at_risk) or past (breached) the 3-working-day promise.",
    },
    Metric {
        name: OLDEST_UNDELIVERED_AGE_SECONDS,
        kind: Kind::Gauge,
        unit: Some(Unit::Seconds),
        labels: &["registry"],
        help: "Age of the oldest eligible, undelivered record (since it became eligible); 0 when none.",
    },
    Metric {
        name: REGISTRY_REQUEST_DURATION_SECONDS,
        kind: Kind::Histogram,
        unit: Some(Unit::Seconds),
        labels: &["registry", "status"],
        help: "Duration of requests to a registry, by HTTP status code or timeout/connect/error.",
    },
    Metric {
        name: REGISTRY_UP,
        kind: Kind::Gauge,
        unit: None,
        labels: &["registry"],
        help: "1 if the last request to the registry got an HTTP answer that was not 5xx, else 0.",
    },
    Metric {
        name: REGISTRY_AUTH_FAILED,
        kind: Kind::Gauge,
        unit: None,
        labels: &["registry"],
        help: "1 while the registry refuses our token (401/403) and its dispatch is stopped, else 0.",
    },
    Metric {
        name: RETRIES_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &["registry"],
        help: "Records scheduled for another attempt after a retryable failure.",
    },
    Metric {
        name: LEASES_EXPIRED_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &["registry"],
        help: "Records claimed after another dispatcher's lease ended without an answer (a daemon stopped or stalled mid-request); resent under the same keys.",
    },
    Metric {
        name: LAST_SUCCESSFUL_SCAN_TIMESTAMP_SECONDS,
        kind: Kind::Gauge,
        unit: Some(Unit::Seconds),
        labels: &[],
        help: "Unix time at which the last scan finished successfully.",
    },
    Metric {
        name: SCAN_DURATION_SECONDS,
        kind: Kind::Histogram,
        unit: Some(Unit::Seconds),
        labels: &[],
        help: "Duration of successful scans.",
    },
    Metric {
        name: SCAN_COMPLETIONS_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &[],
        help: "Course completions judged by successful scans.",
    },
    Metric {
        name: CALENDAR_COVERED_UNTIL_TIMESTAMP_SECONDS,
        kind: Kind::Gauge,
        unit: Some(Unit::Seconds),
        labels: &[],
        help: "Unix time of the end of the last day the loaded office calendar covers.",
    },
    Metric {
        name: CALENDAR_FALLBACK_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &[],
        help: "Working-day answers that used the Monday-Friday fallback (no office calendar loaded for the date).",
    },
    Metric {
        name: RECONCILE_CHECKED_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &["registry"],
        help: "Records a reconcile looked up at the registry.",
    },
    Metric {
        name: RECONCILE_REPAIRS_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &["registry", "repair"],
        help: "Drift a reconcile repaired, by kind: requeued (the registry lacked the record), \
               found (an unknown outcome the registry had credited), corrected (other hours).",
    },
    Metric {
        name: RECONCILE_LOOKUP_ERRORS_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &["registry"],
        help: "Reconcile lookups that got no usable answer (5xx, timeout, 429, refused token).",
    },
    Metric {
        name: LAST_SUCCESSFUL_RECONCILE_TIMESTAMP_SECONDS,
        kind: Kind::Gauge,
        unit: Some(Unit::Seconds),
        labels: &[],
        help: "Unix time at which the last reconcile finished.",
    },
    Metric {
        name: LOG_LINES_DROPPED_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &["reason"],
        help: "Log lines not written, by reason: write_failed (the log stream refused them, \
               e.g. its reader is gone) or queue_full (the stream is not taking lines as fast as \
               they come). Work goes on without them.",
    },
    Metric {
        name: REGISTRY_CONTRACT_VIOLATIONS_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &["registry", "violation"],
        help: "Answers (or records of a batch answer) that broke REGISTRY-API.md and were taken as an \
               unknown outcome, by kind: oversized, unreadable, missing_receipt, missing_result, \
               repeated_result, unexpected_key, out_of_order.",
    },
    Metric {
        name: DATABASE_ERRORS_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &["task"],
        help: "Units of work (a dispatch batch, a scan) that failed on a database error, by task \
               (dispatch, scan); /readyz answers 503 while a task's last unit of work failed.",
    },
    Metric {
        name: BUILD_INFO,
        kind: Kind::Gauge,
        unit: None,
        labels: &["version"],
        help: "Always 1; the version label is the running hoursync version.",
    },
];

/// Why a log line was dropped ([`log_line_dropped`]).
pub const LOG_DROP_REASONS: [&str; 2] = ["write_failed", "queue_full"];

/// Outcomes of one record's delivery attempt ([`delivery`]).
pub const OUTCOMES: [&str; 8] = [
    "delivered",
    "rejected",
    "retrying",
    "failed",
    "released",
    "corrected",
    "withdrawn",
    "lost",
];
/// States counted by [`backlog`].
pub const BACKLOG_STATES: [&str; 6] = [
    "pending",
    "retrying",
    "failed",
    "rejected",
    "correcting",
    "withdrawing",
];
/// Kinds of registry answer that break the contract ([`contract_violation`]).
pub const VIOLATIONS: [&str; 7] = [
    "oversized",
    "unreadable",
    "missing_receipt",
    "missing_result",
    "repeated_result",
    "unexpected_key",
    "out_of_order",
];
/// Tasks that report database errors ([`database_error`]).
pub const DATABASE_TASKS: [&str; 2] = ["dispatch", "scan"];
/// Kinds of reconcile repair ([`reconcile_repair`]).
pub const REPAIRS: [&str; 3] = ["requeued", "found", "corrected"];
/// Non-HTTP request results of [`request`]; HTTP answers use the status code.
pub const TRANSPORT_STATUSES: [&str; 3] = ["timeout", "connect", "error"];
/// What a label value outside its vocabulary is recorded as.
pub const OTHER: &str = "other";

/// Registry request buckets: a healthy answer takes milliseconds, the
/// default timeout is 10 s; 30 s covers any configured timeout.
pub const REQUEST_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0,
];
/// Scan buckets: an incremental scan takes well under a second; a full
/// rescan of a large database minutes.
pub const SCAN_BUCKETS: [f64; 14] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// How often histogram samples are folded in when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The standard Prometheus process metrics (RSS, CPU, open files, threads),
/// read from /proc at each scrape by the `metrics-process` crate, so that
/// a leak or a file-descriptor exhaustion shows per daemon.
pub const PROCESS_METRICS: [&str; 8] = [
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_max_fds",
    "process_virtual_memory_bytes",
    "process_virtual_memory_max_bytes",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_threads",
];

fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

/// What `/metrics` serves: the process metrics read now, then everything
/// the recorder holds.
pub fn render(handle: &PrometheusHandle) -> String {
    process_collector().collect();
    handle.render()
}

/// The builder [`install`] uses: histogram buckets per metric.
pub fn builder() -> anyhow::Result<PrometheusBuilder> {
    Ok(PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(REGISTRY_REQUEST_DURATION_SECONDS.to_owned()),
            &REQUEST_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(SCAN_DURATION_SECONDS.to_owned()),
            &SCAN_BUCKETS,
        )?)
}

/// Installs the global Prometheus recorder, describes every metric, starts
/// every counter at 0 (so `rate()`/`increase()` see the first event), sets
/// [`auth_failed`] to false for every registry and sets [`build_info`].
/// Idempotent: a second call returns the same handle. A background thread
/// runs the recorder's upkeep every few seconds, so nothing else needs to.
/// Fails only if another global metrics recorder is already set.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    static INSTALLING: Mutex<()> = Mutex::new(());
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let _guard = INSTALLING.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = builder()?
        .install_recorder()
        .context("installing the Prometheus metrics recorder (is another recorder installed?)")?;
    describe();
    process_collector().describe();
    initial_values();
    build_info();
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            }
        })
        .context("starting the metrics upkeep thread")?;
    let _ = HANDLE.set(handle.clone());
    Ok(handle)
}

/// The handle [`install`] returned, if it has run (for the `/metrics` route).
pub fn handle() -> Option<PrometheusHandle> {
    HANDLE.get().cloned()
}

/// Registers help text and unit of every metric with the current recorder.
/// Called by [`install`]; harmless to call again.
pub fn describe() {
    metrics::with_recorder(|r| {
        for m in METRICS {
            let key = KeyName::from_const_str(m.name);
            let help = SharedString::const_str(m.help);
            match m.kind {
                Kind::Counter => r.describe_counter(key, m.unit, help),
                Kind::Gauge => r.describe_gauge(key, m.unit, help),
                Kind::Histogram => r.describe_histogram(key, m.unit, help),
            }
        }
    });
}

/// Every counter series with a fixed label set starts at 0, so that the first
/// delivery or fallback is an increase Prometheus can see; no registry is
/// refusing our token until one says so.
fn initial_values() {
    for r in RegistryKind::ALL {
        for outcome in OUTCOMES {
            delivery(r.as_str(), outcome, 0);
        }
        retries(r.as_str(), 0);
        leases_expired(r.as_str(), 0);
        auth_failed(r.as_str(), false);
        for repair in REPAIRS {
            reconcile_repair(r.as_str(), repair, 0);
        }
        reconcile_checked(r.as_str(), 0, 0);
        for violation in VIOLATIONS {
            contract_violation(r.as_str(), violation, 0);
        }
    }
    for task in DATABASE_TASKS {
        counter!(DATABASE_ERRORS_TOTAL, "task" => task).increment(0);
    }
    counter!(SCAN_COMPLETIONS_TOTAL).increment(0);
    counter!(CALENDAR_FALLBACK_TOTAL).increment(0);
    for reason in LOG_DROP_REASONS {
        counter!(LOG_LINES_DROPPED_TOTAL, "reason" => reason).increment(0);
    }
}

fn one_of(value: &str, allowed: &[&'static str]) -> &'static str {
    allowed
        .iter()
        .copied()
        .find(|a| *a == value)
        .unwrap_or(OTHER)
}

fn registry_label(registry: &str) -> &'static str {
    RegistryKind::ALL
        .into_iter()
        .map(RegistryKind::as_str)
        .find(|r| *r == registry)
        .unwrap_or(OTHER)
}

fn reason_label(reason: &str) -> &'static str {
    Reason::parse(reason).map_or(OTHER, Reason::as_str)
}

/// A three-digit HTTP status code (100–599) as given, a transport failure
/// (`timeout`, `connect`, `error`) as given, anything else `error`.
fn status_label(status: &str) -> SharedString {
    let http = status.len() == 3
        && status
            .parse::<u16>()
            .is_ok_and(|code| (100..=599).contains(&code));
    if http {
        SharedString::from(status.to_owned())
    } else {
        let s = one_of(status, &TRANSPORT_STATUSES);
        SharedString::const_str(if s == OTHER { "error" } else { s })
    }
}

fn count(n: u64) -> f64 {
    n as f64
}

/// `n` records of `registry` ended an attempt with `outcome` (delivered,
/// rejected, retrying, failed, released). On-call reads delivered/s as
/// throughput, and rejected/failed rates as "records that need a person".
pub fn delivery(registry: &str, outcome: &str, n: u64) {
    counter!(DELIVERIES_TOTAL, "registry" => registry_label(registry), "outcome" => one_of(outcome, &OUTCOMES))
        .increment(n);
}

/// `n` answers (or records of a batch answer) from `registry` broke the
/// contract as `violation` and were taken as unknown outcomes: a registry
/// bug (or a proxy in the way) that on-call reports to its operator.
pub fn contract_violation(registry: &str, violation: &str, n: u64) {
    counter!(REGISTRY_CONTRACT_VIOLATIONS_TOTAL, "registry" => registry_label(registry), "violation" => one_of(violation, &VIOLATIONS))
        .increment(n);
}

/// A unit of work of `task` (dispatch, scan) failed on a database error.
pub fn database_error(task: &str) {
    counter!(DATABASE_ERRORS_TOTAL, "task" => one_of(task, &DATABASE_TASKS)).increment(1);
}

/// How many records of `registry` are in `state` (pending, retrying, failed,
/// rejected) now. Set every state of every registry each time (0 included):
/// the backlog is the first thing on-call looks at, and a stale value lies.
pub fn backlog(registry: &str, state: &str, value: u64) {
    gauge!(BACKLOG, "registry" => registry_label(registry), "state" => one_of(state, &BACKLOG_STATES))
        .set(count(value));
}

/// How many (completion, registry) pairs are ineligible for `reason` (a
/// DOMAIN.md reason code). A jump in one reason points at bad upstream data
/// (e.g. service units) rather than at hoursync.
pub fn ineligible(registry: &str, reason: &str, value: u64) {
    gauge!(INELIGIBLE_RECORDS, "registry" => registry_label(registry), "reason" => reason_label(reason))
        .set(count(value));
}

/// One request to `registry` took `seconds` and ended with `status`: the HTTP
/// status code (`"200"`, `"503"`) or `timeout`, `connect`, `error`. Shows
/// whether a slow drain is the registry's latency or its errors.
pub fn request(registry: &str, status: &str, seconds: f64) {
    histogram!(REGISTRY_REQUEST_DURATION_SECONDS, "registry" => registry_label(registry), "status" => status_label(status))
        .record(seconds);
}

/// Whether the last request to `registry` got an HTTP answer that was not
/// 5xx (false on 5xx, timeout, connection failure). "The registry is down",
/// as opposed to "hoursync is stuck".
pub fn registry_up(registry: &str, up: bool) {
    crate::live::set_up(registry, up);
    gauge!(REGISTRY_UP, "registry" => registry_label(registry)).set(if up { 1.0 } else { 0.0 });
}

/// Set true when `registry` answers 401/403 (its dispatch stops until a new
/// token is in place), false when a request is authorised again. Nothing is
/// delivered to that registry meanwhile: someone must replace the token.
pub fn auth_failed(registry: &str, failed: bool) {
    crate::live::set_token_refused(registry, failed);
    gauge!(REGISTRY_AUTH_FAILED, "registry" => registry_label(registry)).set(if failed {
        1.0
    } else {
        0.0
    });
}

/// `n` records of `registry` were scheduled for another attempt. A steady
/// retry rate with few deliveries means a flaky registry.
/// Records a reconcile repaired, by kind.
pub fn reconcile_repair(registry: &str, repair: &str, n: u64) {
    counter!(RECONCILE_REPAIRS_TOTAL, "registry" => registry_label(registry), "repair" => one_of(repair, &REPAIRS))
        .increment(n);
}

/// Records a reconcile looked up, and lookups that failed.
pub fn reconcile_checked(registry: &str, checked: u64, errors: u64) {
    counter!(RECONCILE_CHECKED_TOTAL, "registry" => registry_label(registry)).increment(checked);
    counter!(RECONCILE_LOOKUP_ERRORS_TOTAL, "registry" => registry_label(registry))
        .increment(errors);
}

/// A reconcile finished.
pub fn reconcile_finished(at_unix_seconds: f64) {
    crate::live::set_last_reconcile(at_unix_seconds);
    gauge!(LAST_SUCCESSFUL_RECONCILE_TIMESTAMP_SECONDS).set(at_unix_seconds);
}

pub fn retries(registry: &str, n: u64) {
    counter!(RETRIES_TOTAL, "registry" => registry_label(registry)).increment(n);
}

/// `n` records of `registry` were taken over from expired leases.
pub fn leases_expired(registry: &str, n: u64) {
    counter!(LEASES_EXPIRED_TOTAL, "registry" => registry_label(registry)).increment(n);
}

/// A scan finished successfully: it judged `completions` completions in
/// `seconds`, at Unix time `at_unix_seconds`. The timestamp answers "are
/// scans still running?"; without scans nothing new is ever sent.
pub fn scan_finished(completions: u64, seconds: f64, at_unix_seconds: f64) {
    crate::live::set_last_scan(at_unix_seconds);
    counter!(SCAN_COMPLETIONS_TOTAL).increment(completions);
    histogram!(SCAN_DURATION_SECONDS).record(seconds);
    gauge!(LAST_SUCCESSFUL_SCAN_TIMESTAMP_SECONDS).set(at_unix_seconds);
}

/// How many undelivered records of `registry` are close to their due time
/// (`at_risk`) or past it (`breached`): the promise to learners of DOMAIN.md.
/// Set both each time, 0 included.
pub fn sla(registry: &str, at_risk: u64, breached: u64) {
    let r = registry_label(registry);
    gauge!(SLA_RECORDS, "registry" => r, "state" => "at_risk").set(count(at_risk));
    gauge!(SLA_RECORDS, "registry" => r, "state" => "breached").set(count(breached));
}

/// Age in seconds of the oldest eligible record of `registry` not yet
/// delivered, counted from when it became eligible; 0 when there is none.
/// Says how far behind we are in time, where the backlog says how much.
pub fn oldest_undelivered(registry: &str, age_seconds: f64) {
    gauge!(OLDEST_UNDELIVERED_AGE_SECONDS, "registry" => registry_label(registry)).set(age_seconds);
}

/// Unix time of the end of the last day the loaded office calendar covers.
/// Someone must load next year's calendar before it runs out.
pub fn calendar_covered_until(unix_seconds: f64) {
    gauge!(CALENDAR_COVERED_UNTIL_TIMESTAMP_SECONDS).set(unix_seconds);
}

/// One working-day answer used the Monday–Friday fallback: due times
/// computed from it may be wrong (holidays, make-up Saturdays).
pub fn calendar_fallback() {
    counter!(CALENDAR_FALLBACK_TOTAL).increment(1);
}

/// A log line was dropped for `reason` (write_failed, queue_full): the
/// log is losing lines, though the work goes on (see `telemetry::sink`).
pub fn log_line_dropped(reason: &str) {
    counter!(LOG_LINES_DROPPED_TOTAL, "reason" => one_of(reason, &LOG_DROP_REASONS)).increment(1);
}

/// Sets `hoursync_build_info{version}` to 1: which version runs where.
pub fn build_info() {
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(f: impl FnOnce()) -> String {
        let recorder = builder().unwrap().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            describe();
            f();
        });
        handle.render()
    }

    #[test]
    fn names_follow_prometheus_conventions() {
        for m in METRICS {
            assert!(m.name.starts_with("hoursync_"), "{}", m.name);
            assert!(
                m.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                m.name
            );
            assert_eq!(
                m.kind == Kind::Counter,
                m.name.ends_with("_total"),
                "{}",
                m.name
            );
            if m.unit == Some(Unit::Seconds) {
                assert!(m.name.ends_with("_seconds"), "{}", m.name);
            }
            let allowed = [
                "registry",
                "outcome",
                "state",
                "status",
                "reason",
                "version",
                "repair",
                "violation",
                "task",
            ];
            assert!(m.labels.iter().all(|l| allowed.contains(l)), "{}", m.name);
        }
        let mut names: Vec<_> = METRICS.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METRICS.len());
    }

    #[test]
    fn label_values_outside_their_vocabulary_become_other() {
        let text = render(|| {
            delivery("A123456789", "delivered", 1);
            delivery("teacher", "F131104093", 2);
            backlog("enved", "ineligible", 3);
            ineligible("lifelong", "COURSE-42", 4);
            ineligible("lifelong", "social_login", 5);
            request("lifelong", "A123456789", 0.1);
            contract_violation("lifelong", "A123456789", 1);
            database_error("F131104093");
            request("lifelong", "1000", 0.1);
            request("teacher", "timeout", 0.2);
            request("teacher", "503", 0.3);
        });
        assert!(
            !text.contains("123456789") && !text.contains("131104093"),
            "{text}"
        );
        assert!(!text.contains("COURSE"), "{text}");
        assert!(
            text.contains(r#"hoursync_deliveries_total{registry="other",outcome="delivered"} 1"#)
        );
        assert!(
            text.contains(r#"hoursync_deliveries_total{registry="teacher",outcome="other"} 2"#)
        );
        assert!(text.contains(r#"hoursync_backlog{registry="enved",state="other"} 3"#));
        assert!(
            text.contains(r#"hoursync_ineligible_records{registry="lifelong",reason="other"} 4"#)
        );
        assert!(text.contains(
            r#"hoursync_ineligible_records{registry="lifelong",reason="social_login"} 5"#
        ));
        assert!(
            text.contains(r#"registry="lifelong",status="error""#),
            "{text}"
        );
        assert!(!text.contains(r#"status="1000""#), "{text}");
        assert!(text.contains(
            r#"hoursync_registry_contract_violations_total{registry="lifelong",violation="other"} 1"#
        ));
        assert!(text.contains(r#"hoursync_database_errors_total{task="other"} 1"#));
        assert!(
            text.contains(r#"registry="teacher",status="timeout""#),
            "{text}"
        );
        assert!(
            text.contains(r#"registry="teacher",status="503""#),
            "{text}"
        );
    }

    #[test]
    fn histograms_use_the_configured_buckets() {
        let text = render(|| {
            request("enved", "200", 0.004);
            scan_finished(10, 0.2, 1_790_000_000.0);
        });
        assert!(text.contains(
            r#"hoursync_registry_request_duration_seconds_bucket{registry="enved",status="200",le="0.005"} 1"#
        ), "{text}");
        assert!(text.contains(
            r#"hoursync_registry_request_duration_seconds_bucket{registry="enved",status="200",le="30"} 1"#
        ), "{text}");
        assert!(
            text.contains(r#"hoursync_scan_duration_seconds_bucket{le="600"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("hoursync_scan_completions_total 10"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE hoursync_scan_duration_seconds histogram"),
            "{text}"
        );
    }
}
