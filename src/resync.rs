//! Resync: support staff fixed a learner's data (or a registry lost
//! records) and want it to reach the registries now. A resync judges every
//! completion of its scope again from current data, puts back in the queue
//! whatever is not delivered (`failed`, `rejected`, `retrying`), and with
//! `verify` also asks the registry about every record we believe
//! delivered, resending only those it does not have, under their own keys:
//! a registry never credits one twice. The same code serves the admin API
//! and `hoursync resync`.

use crate::clock::Clock;
use crate::lookup::{LookupOf, paced_lookup};
use crate::registries::Registries;
use crate::scan::{CHUNK, plan_rows, set_due_times};
use crate::store::{AuditEntry, DeliveryItem, ResyncScope, State, Store, StoreError};
use std::collections::BTreeMap;

/// Lookups of a verifying resync kept in memory before their history is
/// written.
const HISTORY_CHUNK: usize = 500;

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResyncSummary {
    pub completions: usize,
    pub records: usize,
    /// Records of the scope by state, before the resync (or, for a dry run, now).
    pub before: BTreeMap<String, i64>,
    /// By state once the resync has run (absent for a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<BTreeMap<String, i64>>,
    /// Records put back in the queue.
    pub requeued: u64,
    /// Delivered records the registry said it does not have (resent).
    pub missing_at_registry: usize,
    /// Delivered records that could not be looked up (registry errors).
    pub lookup_errors: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ResyncError {
    #[error(
        "a resync needs a scope: give at least one of national_id, course_code, registry, completed_from, completed_to"
    )]
    EmptyScope,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn by_state(items: &[DeliveryItem]) -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    for i in items {
        *m.entry(i.state.as_str().to_string()).or_default() += 1;
    }
    m
}

fn check(scope: &ResyncScope) -> Result<(), ResyncError> {
    let empty = scope.national_id.is_none()
        && scope.course_code.is_none()
        && scope.registry.is_none()
        && scope.completed_from_ms.is_none()
        && scope.completed_to_ms.is_none();
    if empty {
        Err(ResyncError::EmptyScope)
    } else {
        Ok(())
    }
}

/// What a resync of `scope` would cover, changing nothing.
pub async fn dry_run(store: &dyn Store, scope: &ResyncScope) -> Result<ResyncSummary, ResyncError> {
    check(scope)?;
    let ids = store.completions_in_scope(scope).await?;
    let items = store.deliveries_of(&ids, scope.registry).await?;
    Ok(ResyncSummary {
        completions: ids.len(),
        records: items.len(),
        before: by_state(&items),
        ..Default::default()
    })
}

/// Writes the audit entry of a resync about to run and returns its id.
pub async fn open_audit(
    store: &dyn Store,
    clock: &dyn Clock,
    actor: &str,
    scope: &ResyncScope,
    verify: bool,
) -> Result<i64, StoreError> {
    let scope_json = serde_json::json!({ "scope": scope, "verify": verify }).to_string();
    crate::audit::open(store, clock, actor, "resync", scope_json).await
}

/// Runs a resync and records its result in audit entry `audit_id`.
pub async fn run(
    store: &dyn Store,
    clock: &dyn Clock,
    registries: &Registries,
    scope: &ResyncScope,
    verify: bool,
    audit_id: i64,
) -> Result<ResyncSummary, ResyncError> {
    let result = execute(store, clock, registries, scope, verify).await;
    crate::audit::close(store, clock, audit_id, &result, |s| {
        let summary = serde_json::to_string(s).expect("a resync summary serializes");
        (s.records as i64, summary)
    })
    .await?;
    result
}

async fn execute(
    store: &dyn Store,
    clock: &dyn Clock,
    registries: &Registries,
    scope: &ResyncScope,
    verify: bool,
) -> Result<ResyncSummary, ResyncError> {
    check(scope)?;
    let ids = store.completions_in_scope(scope).await?;
    let before = by_state(&store.deliveries_of(&ids, scope.registry).await?);
    // Judge everything again from current data, as a scan would.
    let calendar = crate::calendar::load(store).await?;
    for chunk in ids.chunks(CHUNK) {
        let now = clock.now_ms();
        store
            .scan_chunk(chunk, now, &mut |rows| {
                let mut writes = plan_rows(&rows, now);
                set_due_times(&mut writes, &calendar);
                writes
            })
            .await?;
    }
    let items = store.deliveries_of(&ids, scope.registry).await?;
    let mut requeue: Vec<i64> = items
        .iter()
        .filter(|i| matches!(i.state, State::Failed | State::Rejected | State::Retrying))
        .map(|i| i.id)
        .collect();
    let (mut missing, mut lookup_errors) = (0, 0);
    if verify {
        // Paced like every request to the registry, a 429 waited out, and
        // each lookup kept in the record's history.
        let mut history = Vec::new();
        for item in items.iter().filter(|i| i.state == State::Delivered) {
            let (Some(registry), Some(key)) = (
                registries.get(item.registry),
                item.idempotency_key.as_deref(),
            ) else {
                lookup_errors += 1;
                continue;
            };
            let of = LookupOf {
                delivery_id: item.id,
                revision: item.revision,
                idempotency_key: key,
            };
            match paced_lookup(store, clock, registry, &of, &mut history).await? {
                Ok(Some(_)) => {}
                Ok(None) => {
                    missing += 1;
                    requeue.push(item.id);
                }
                Err(e) => {
                    tracing::warn!(registry = %item.registry, error = %e, "resync verify: lookup failed");
                    lookup_errors += 1;
                }
            }
            if history.len() >= HISTORY_CHUNK {
                store.add_attempts(&history).await?;
                history.clear();
            }
        }
        store.add_attempts(&history).await?;
    }
    let requeued = store.requeue(&requeue, clock.now_ms()).await?;
    let after = by_state(&store.deliveries_of(&ids, scope.registry).await?);
    Ok(ResyncSummary {
        completions: ids.len(),
        records: items.len(),
        before,
        after: Some(after),
        requeued,
        missing_at_registry: missing,
        lookup_errors,
    })
}

/// Puts one `failed` or `rejected` delivery back in the queue, audited.
/// Returns the state it had, or `None` when there is no such delivery.
pub async fn retry_one(
    store: &dyn Store,
    clock: &dyn Clock,
    actor: &str,
    id: i64,
) -> Result<Option<Result<State, State>>, StoreError> {
    let Some(item) = store.delivery(id).await? else {
        return Ok(None);
    };
    if !matches!(item.state, State::Failed | State::Rejected) {
        return Ok(Some(Err(item.state)));
    }
    let now = clock.now_ms();
    store.requeue(&[id], now).await?;
    let scope = serde_json::json!({ "delivery_id": id, "was": item.state.as_str() });
    // Done as soon as it is written.
    let entry = AuditEntry {
        records: 1,
        status: "done".into(),
        finished_at: Some(now),
        ..AuditEntry::running(now, actor, "retry", scope.to_string())
    };
    store.add_audit(&entry).await?;
    Ok(Some(Ok(item.state)))
}
