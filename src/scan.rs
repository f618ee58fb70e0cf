//! The scan: reads what changed since its cursor, judges every
//! (completion, registry) those changes touch, and writes one delivery row
//! per pair. Its cost follows what changed, not the size of the tables.
//!
//! What a decision does to a row is the state machine's
//! ([`crate::transition`], through [`plan_pair`]), a pure function, so the
//! transitions of DOMAIN.md are tested without a database.

mod plan;
pub mod stages;

pub use plan::{facts, plan_pair, plan_rows};
use stages::{Stage, lap};

use crate::clock::Clock;
use crate::store::{DeliveryWrite, Store, StoreError};
use std::time::Instant;
use tracing::{debug, info, warn};

/// Completions judged per write transaction: small enough that the lock is
/// held for milliseconds, large enough to amortise the round trips.
pub const CHUNK: usize = 1_000;

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScanReport {
    pub from_seq: i64,
    pub to_seq: i64,
    pub completions: usize,
    pub rows_written: usize,
    /// Due times computed with the Monday–Friday fallback because the office
    /// calendar of the date was not loaded.
    pub calendar_fallbacks: usize,
    pub elapsed_ms: u128,
}

/// After writing this many rows, a scan refreshes the planner's statistics.
pub const ANALYZE_AFTER_ROWS: usize = 50_000;

/// The lease that makes the scan a singleton among daemons on one database.
pub const SCAN_LEASE: &str = "scan";

/// One scan pass over everything that changed since the cursor.
pub async fn scan_once(store: &dyn Store, clock: &dyn Clock) -> Result<ScanReport, StoreError> {
    Ok(scan_with(store, clock, None)
        .await?
        .expect("without a lease a scan is never interrupted"))
}

/// One scan pass, on the daemon holding the scan lease: `None` when another
/// daemon holds it, or when the lease was lost mid-scan (what was written
/// stays; the cursor does not move, so the next pass redoes the rest).
pub async fn scan_as_leader(
    store: &dyn Store,
    clock: &dyn Clock,
    owner: &str,
    ttl_ms: i64,
) -> Result<Option<ScanReport>, StoreError> {
    if !store
        .try_lease(SCAN_LEASE, owner, clock.now_ms(), ttl_ms)
        .await?
    {
        debug!(owner, "another daemon holds the scan lease");
        return Ok(None);
    }
    let report = scan_with(store, clock, Some((owner, ttl_ms))).await;
    // Free the lease for whichever daemon's trigger comes next.
    if let Err(e) = store.release_lease(SCAN_LEASE, owner).await {
        debug!(error = %e, "could not release the scan lease; it expires by itself");
    }
    report
}

/// The pass itself. With a lease `(owner, ttl)`, the lease is renewed
/// before each chunk and the pass stops if it was lost.
#[tracing::instrument(skip_all, name = "scan")]
async fn scan_with(
    store: &dyn Store,
    clock: &dyn Clock,
    lease: Option<(&str, i64)>,
) -> Result<Option<ScanReport>, StoreError> {
    let started = Instant::now();
    let mut t = started;
    let (from, to) = store.scan_window().await?;
    let mut report = ScanReport {
        from_seq: from,
        to_seq: to,
        ..Default::default()
    };
    // Rows whose outcome was unknown when their facts changed come back
    // here once it is known, whether or not anything changed since.
    let rescan = store.rescan_completions().await?;
    if to > from || !rescan.is_empty() {
        let mut ids = if to > from {
            store.changed_completions(from, to).await?
        } else {
            Vec::new()
        };
        ids.extend(rescan);
        ids.sort_unstable();
        ids.dedup();
        report.completions = ids.len();
        t = lap(Stage::Find, t);
        let calendar = crate::calendar::load(store).await?;
        lap(Stage::Calendar, t);
        for chunk in ids.chunks(CHUNK) {
            if let Some((owner, ttl_ms)) = lease
                && !store
                    .try_lease(SCAN_LEASE, owner, clock.now_ms(), ttl_ms)
                    .await?
            {
                warn!(
                    scan.to_seq = to,
                    "scan lease lost mid-scan; the next pass resumes from the same cursor"
                );
                return Ok(None);
            }
            let now = clock.now_ms();
            let fallbacks = &mut report.calendar_fallbacks;
            report.rows_written += store
                .scan_chunk(chunk, now, &mut |rows| {
                    let t = Instant::now();
                    let mut writes = plan_rows(&rows, now);
                    *fallbacks += set_due_times(&mut writes, &calendar);
                    lap(Stage::Plan, t);
                    writes
                })
                .await?;
        }
        t = Instant::now();
    }
    store.finish_scan(to, clock.now_ms()).await?;
    if report.rows_written >= ANALYZE_AFTER_ROWS {
        store.analyze().await?;
    }
    lap(Stage::Finish, t);
    if report.calendar_fallbacks > 0 {
        warn!(
            scan.calendar_fallbacks = report.calendar_fallbacks,
            "due times counted Monday to Friday: the office calendar of those dates is not loaded (hoursync calendar import)"
        );
    }
    report.elapsed_ms = started.elapsed().as_millis();
    crate::metrics::scan_finished(
        report.completions as u64,
        started.elapsed().as_secs_f64(),
        clock.now_ms() as f64 / 1000.0,
    );
    for _ in 0..report.calendar_fallbacks {
        crate::metrics::calendar_fallback();
    }
    if report.completions > 0 {
        info!(
            scan.from_seq = from,
            scan.to_seq = to,
            scan.completions = report.completions,
            scan.rows_written = report.rows_written,
            scan.elapsed_ms = report.elapsed_ms as u64,
            "scan finished"
        );
    }
    Ok(Some(report))
}

/// Sets each write's due time from its `eligible_since` (DOMAIN.md: the end
/// of the third working day after that date, in Asia/Taipei). Returns how
/// many used the Monday–Friday fallback.
pub fn set_due_times(
    writes: &mut [DeliveryWrite],
    calendar: &crate::calendar::OfficeCalendar,
) -> usize {
    let mut fallbacks = 0;
    for w in writes {
        w.due_at = w.eligible_since.map(|since| {
            let due = crate::sla::due_at(calendar, crate::clock::from_ms(since));
            fallbacks += usize::from(due.fallback_used);
            due.at.timestamp_millis()
        });
    }
    fallbacks
}
