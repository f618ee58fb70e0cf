//! Reconcile: ask the registries whether they hold what we believe, and
//! repair the drift (REGISTRY-API.md, "Look a record up").
//!
//! Looked up: every record whose last outcome is unknown (`retrying`), and
//! a sample of the `delivered` ones credited in the last days. Repairs:
//! - the registry lacks a record: requeued, sent again under its key;
//! - an unknown outcome it did credit: `delivered`, with its receipt;
//! - it credits other hours: a correction under a new revision.
//!
//! Each repair is applied only if the row is still as it was looked up, so
//! a reconcile racing dispatch or a scan changes nothing they changed. The
//! nightly job (`schedule.reconcile`) and `hoursync reconcile` share this.

use crate::clock::Clock;
use crate::domain::RegistryKind;
use crate::lookup::{LookupOf, lookups};
use crate::registries::{Registries, Registry};
use crate::registry::adapter::idempotency_key;
use crate::store::{Attempt, ReconcileItem, ReconcileQuery, Repair, State, Store, StoreError};
use std::collections::BTreeMap;
use tracing::{info, warn};

/// What a reconcile covers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReconcileOptions {
    pub registry: Option<RegistryKind>,
    /// Delivered records credited at or after this instant are sampled.
    pub since_ms: i64,
    /// Per cent of those looked up (100: all).
    pub sample_percent: f64,
}

/// One repair, as the report lists it (the national ID masked).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RepairLine {
    pub delivery_id: i64,
    pub registry: RegistryKind,
    pub completion_id: String,
    pub national_id: String,
    /// `requeued`, `found` or `corrected`.
    pub repair: &'static str,
    /// The hours we hold for the record.
    pub hours: Option<String>,
    /// The hours the registry credits (absent when it lacks the record).
    pub registry_hours: Option<String>,
}

/// One line of `hoursync reconcile`'s report.
impl std::fmt::Display for RepairLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "#{:<8} {:<9} {} {:<16} {:<10} ours {:<6} registry {}",
            self.delivery_id,
            self.registry,
            self.national_id,
            self.completion_id,
            self.repair,
            self.hours.as_deref().unwrap_or("-"),
            self.registry_hours.as_deref().unwrap_or("(none)")
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReconcileReport {
    /// Records looked up, by registry.
    pub checked: BTreeMap<String, usize>,
    pub repairs: Vec<RepairLine>,
    /// Lookups that got no usable answer; those records are looked up again
    /// next time.
    pub lookup_errors: usize,
    /// Records not looked up, by registry, because that registry's lookups
    /// kept failing (it is probably down); looked up next time.
    pub skipped: BTreeMap<String, usize>,
    /// Repairs not applied because the record changed meanwhile.
    pub superseded: usize,
    pub elapsed_ms: u128,
}

/// The lease that makes the nightly reconcile a singleton among daemons.
pub const RECONCILE_LEASE: &str = "reconcile";

/// Candidates looked up (and repairs applied) at a time, at least.
const PAGE: usize = 500;
/// Deliveries (candidates or not) read at a time while filling a page.
const SPAN: usize = 2_000;

/// Looks every candidate up and applies the repairs.
pub async fn run(
    store: &dyn Store,
    clock: &dyn Clock,
    registries: &Registries,
    opts: ReconcileOptions,
) -> Result<ReconcileReport, StoreError> {
    let started = std::time::Instant::now();
    let query = ReconcileQuery {
        registry: opts.registry,
        delivered_since_ms: opts.since_ms,
        sample_per_mille: (opts.sample_percent * 10.0).round().clamp(0.0, 1000.0) as u32,
        // A new sample every day.
        salt: clock.now_ms() / 86_400_000,
    };
    let mut lanes: Vec<Lane> = registries
        .iter()
        .map(|r| Lane {
            registry: r.clone(),
            checked: 0,
            errors: 0,
            skipped: 0,
            errors_in_a_row: 0,
            window: 1,
            attempts: Vec::new(),
        })
        .collect();
    let mut report = ReconcileReport::default();
    let mut after = 0;
    // A page at a time: memory stays flat whatever the window holds, and
    // each page's repairs are applied while they are fresh. Within a page
    // the registries are looked up side by side, each at its own rate.
    let mut more = true;
    while more {
        // Spans of ids until a page is full: each span is read by the
        // primary key, however few of its rows are candidates.
        let mut items = Vec::new();
        while more && items.len() < PAGE {
            let (found, end) = store.reconcile_span(&query, after, SPAN).await?;
            items.extend(found);
            match end {
                Some(end) => after = end,
                None => more = false,
            }
        }
        if items.is_empty() {
            continue;
        }
        let mut planned: Vec<(Repair, RepairLine)> = Vec::new();
        // At most three lanes, one per registry.
        let mut runs = lanes
            .iter_mut()
            .map(|lane| lane.check(store, clock, &items));
        let (a, b, c) = (runs.next(), runs.next(), runs.next());
        let (a, b, c) = tokio::join!(maybe(a), maybe(b), maybe(c));
        for page in [a?, b?, c?] {
            planned.extend(page);
        }
        // One write for the page's history, not one per lookup.
        let attempts: Vec<Attempt> = lanes
            .iter_mut()
            .flat_map(|l| l.attempts.drain(..))
            .collect();
        store.add_attempts(&attempts).await?;
        let repairs: Vec<Repair> = planned.iter().map(|(r, _)| r.clone()).collect();
        let applied = store.apply_repairs(&repairs, clock.now_ms()).await?;
        for (repair, line) in planned {
            if applied.contains(&repair) {
                crate::metrics::reconcile_repair(line.registry.as_str(), line.repair, 1);
                report.repairs.push(line);
            } else {
                report.superseded += 1;
            }
        }
    }
    for lane in &lanes {
        let r = lane.registry.kind.as_str();
        crate::metrics::reconcile_checked(r, lane.checked as u64, lane.errors as u64);
        if lane.checked > 0 {
            report.checked.insert(r.to_string(), lane.checked);
        }
        report.lookup_errors += lane.errors;
        if lane.skipped > 0 {
            report.skipped.insert(r.to_string(), lane.skipped);
        }
    }
    crate::metrics::reconcile_finished(clock.now_ms() as f64 / 1000.0);
    report.elapsed_ms = started.elapsed().as_millis();
    info!(
        checked = report.checked.values().sum::<usize>(),
        repairs = report.repairs.len(),
        lookup_errors = report.lookup_errors,
        skipped = report.skipped.values().sum::<usize>(),
        superseded = report.superseded,
        "reconcile finished"
    );
    Ok(report)
}

/// After this many lookups of one registry failed in a row, the rest of
/// that registry's records are skipped this run (a registry that is down
/// would otherwise cost a timeout per record); the next run tries again.
const GIVE_UP_AFTER_ERRORS: u32 = 5;

/// The most lookups of one registry in flight at once. Only a registry
/// with no pace of its own gets more than one (see [`lookups`]); with one,
/// the pace is the bound.
const MAX_IN_FLIGHT: usize = 64;

/// One registry's share of a reconcile.
struct Lane {
    registry: Registry,
    checked: usize,
    errors: usize,
    skipped: usize,
    errors_in_a_row: u32,
    /// Lookups to make at once next.
    window: usize,
    /// This page's lookups, written with the page's repairs.
    attempts: Vec<Attempt>,
}

impl Lane {
    /// Looks this registry's items of a page up, a window at a time (see
    /// [`lookups`]): the window starts at one lookup, doubles while they
    /// succeed up to [`MAX_IN_FLIGHT`], and falls back to one after a
    /// failure, so a registry that is down costs the same few failed
    /// lookups as one at a time.
    async fn check(
        &mut self,
        store: &dyn Store,
        clock: &dyn Clock,
        items: &[ReconcileItem],
    ) -> Result<Vec<(Repair, RepairLine)>, StoreError> {
        let mut planned = Vec::new();
        let mine: Vec<&ReconcileItem> = items
            .iter()
            .filter(|i| i.registry == self.registry.kind)
            .collect();
        let mut rest = mine.as_slice();
        while !rest.is_empty() {
            if self.errors_in_a_row >= GIVE_UP_AFTER_ERRORS {
                self.skipped += rest.len();
                break;
            }
            let (window, after) = rest.split_at(self.window.min(rest.len()));
            rest = after;
            let ofs: Vec<LookupOf> = window
                .iter()
                .map(|item| LookupOf {
                    delivery_id: item.id,
                    revision: item.revision,
                    idempotency_key: &item.idempotency_key,
                })
                .collect();
            let answers = lookups(store, clock, &self.registry, &ofs, &mut self.attempts).await?;
            self.checked += window.len();
            let mut failed = false;
            for (item, answer) in window.iter().zip(answers) {
                match answer {
                    Ok(found) => {
                        self.errors_in_a_row = 0;
                        planned.extend(repairs_for(item, found));
                    }
                    Err(e) => {
                        warn!(registry = %item.registry, delivery_id = item.id, error = %e, "reconcile lookup failed");
                        failed = true;
                        self.errors += 1;
                        self.errors_in_a_row += 1;
                        if self.errors_in_a_row == GIVE_UP_AFTER_ERRORS {
                            warn!(registry = %self.registry.kind, "reconcile: {GIVE_UP_AFTER_ERRORS} lookups in a row failed; this registry's other records wait for the next run");
                        }
                    }
                }
            }
            self.window = if failed {
                1
            } else {
                (self.window * 2).min(MAX_IN_FLIGHT)
            };
        }
        Ok(planned)
    }
}

/// A lane's run, or nothing for a registry without a lane.
async fn maybe<F>(run: Option<F>) -> Result<Vec<(Repair, RepairLine)>, StoreError>
where
    F: std::future::Future<Output = Result<Vec<(Repair, RepairLine)>, StoreError>>,
{
    match run {
        Some(f) => f.await,
        None => Ok(Vec::new()),
    }
}

/// The options of the nightly job: the configured window and sample.
pub fn nightly_options(config: &crate::config::ReconcileConfig, now_ms: i64) -> ReconcileOptions {
    ReconcileOptions {
        registry: None,
        since_ms: now_ms - config.window().num_milliseconds(),
        sample_percent: config.sample_percent,
    }
}

/// Runs a reconcile recorded in the audit table under `actor`, after
/// purging the attempt history older than `retention`.
pub async fn run_audited(
    store: &dyn Store,
    clock: &dyn Clock,
    registries: &Registries,
    opts: ReconcileOptions,
    retention: chrono::Duration,
    actor: &str,
) -> Result<ReconcileReport, StoreError> {
    let now = clock.now_ms();
    let purged = store
        .purge_attempts(now - retention.num_milliseconds())
        .await?;
    if purged > 0 {
        info!(
            purged,
            retention_days = retention.num_days(),
            "attempt history purged"
        );
    }
    let scope = serde_json::json!({
        "registry": opts.registry,
        "since": crate::clock::taipei_rfc3339(opts.since_ms),
        "sample_percent": opts.sample_percent,
    });
    let audit_id = crate::audit::open(store, clock, actor, "reconcile", scope.to_string()).await?;
    let result = run(store, clock, registries, opts).await;
    crate::audit::close(store, clock, audit_id, &result, |r| {
        let summary = serde_json::json!({
            "checked": r.checked,
            "repairs": r.repairs.len(),
            "lookup_errors": r.lookup_errors,
            "superseded": r.superseded,
        });
        (
            r.checked.values().sum::<usize>() as i64,
            summary.to_string(),
        )
    })
    .await?;
    result
}

/// The repairs one lookup calls for (none when the registry agrees).
fn repairs_for(
    item: &ReconcileItem,
    found: Option<crate::registry::Credited>,
) -> Vec<(Repair, RepairLine)> {
    let line = |repair: &'static str, registry_hours: Option<u32>| RepairLine {
        delivery_id: item.id,
        registry: item.registry,
        completion_id: item.completion_id.clone(),
        national_id: item.national_id.to_string(),
        repair,
        hours: item.hours_tenths.map(tenths),
        registry_hours: registry_hours.map(tenths),
    };
    let Some(credited) = found else {
        let repair = Repair::Requeued {
            id: item.id,
            revision: item.revision,
        };
        return vec![(repair, line("requeued", None))];
    };
    let mut out = Vec::new();
    if item.state == State::Retrying {
        out.push((
            Repair::Found {
                id: item.id,
                revision: item.revision,
                receipt_id: credited.receipt_id.clone(),
                credited_tenths: credited.hours_tenths,
            },
            line("found", Some(credited.hours_tenths)),
        ));
    }
    let differs = item
        .hours_tenths
        .is_some_and(|ours| ours != credited.hours_tenths);
    if differs && item.has_record {
        let new_revision = item.revision + 1;
        let key = idempotency_key(&item.completion_id, item.registry, new_revision);
        out.push((
            Repair::Corrected {
                id: item.id,
                revision: item.revision,
                new_revision,
                // The same facts, a new revision under its own key.
                idempotency_key: key,
                credited_tenths: credited.hours_tenths,
            },
            line("corrected", Some(credited.hours_tenths)),
        ));
    }
    out
}

fn tenths(t: u32) -> String {
    format!("{}.{}", t / 10, t % 10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::NationalId;
    use crate::registry::Credited;

    fn item(state: State, hours: u32) -> ReconcileItem {
        ReconcileItem {
            id: 7,
            registry: RegistryKind::Lifelong,
            completion_id: "c-1".into(),
            national_id: NationalId::parse("A123456789").unwrap(),
            state,
            revision: 1,
            idempotency_key: "hs1-old".into(),
            has_record: true,
            hours_tenths: Some(hours),
            credited_tenths: Some(hours),
            receipt_id: Some("L-000001".into()),
        }
    }

    fn credited(hours_tenths: u32) -> Option<Credited> {
        Some(Credited {
            receipt_id: "L-000001".into(),
            hours_tenths,
        })
    }

    #[test]
    fn a_registry_that_agrees_needs_nothing() {
        assert!(repairs_for(&item(State::Delivered, 20), credited(20)).is_empty());
    }

    #[test]
    fn a_missing_record_is_requeued_and_the_report_masks_the_id() {
        let r = repairs_for(&item(State::Delivered, 20), None);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].0, Repair::Requeued { id: 7, revision: 1 });
        assert_eq!(r[0].1.repair, "requeued");
        assert!(
            !r[0].1.national_id.contains("123456789"),
            "{}",
            r[0].1.national_id
        );
    }

    #[test]
    fn other_hours_make_a_new_revision_carrying_its_own_key() {
        let r = repairs_for(&item(State::Delivered, 20), credited(35));
        let Repair::Corrected {
            new_revision,
            idempotency_key,
            credited_tenths,
            ..
        } = &r[0].0
        else {
            panic!("{r:?}")
        };
        assert_eq!(*new_revision, 2);
        assert_eq!(
            idempotency_key,
            &crate::registry::adapter::idempotency_key("c-1", RegistryKind::Lifelong, 2)
        );
        assert_ne!(idempotency_key, "hs1-old");
        assert_eq!(*credited_tenths, 35);
        assert_eq!(r[0].1.registry_hours.as_deref(), Some("3.5"));
    }

    #[test]
    fn an_unknown_outcome_found_credited_is_delivered_then_corrected_if_it_differs() {
        let same = repairs_for(&item(State::Retrying, 20), credited(20));
        assert_eq!(same.len(), 1);
        assert!(matches!(same[0].0, Repair::Found { .. }));
        let other = repairs_for(&item(State::Retrying, 20), credited(10));
        assert_eq!(
            other.iter().map(|(_, l)| l.repair).collect::<Vec<_>>(),
            ["found", "corrected"]
        );
    }
}
