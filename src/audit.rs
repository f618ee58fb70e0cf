//! The audit trail of long actions (a resync, a reconcile): opened as
//! `running` when they start, closed as `done` with what they covered, or
//! `failed` with the error, so a crash leaves a `running` entry behind.
//! Lookups of a learner are recorded too (who looked up whom, masked, and
//! when): national IDs are personal data, and an organisation must be able
//! to answer who looked at a person's record.

use crate::clock::Clock;
use crate::store::{AuditEntry, Store, StoreError};

/// Writes the entry of an action starting now and returns its id.
pub async fn open(
    store: &dyn Store,
    clock: &dyn Clock,
    actor: &str,
    action: &str,
    scope: String,
) -> Result<i64, StoreError> {
    store
        .add_audit(&AuditEntry::running(clock.now_ms(), actor, action, scope))
        .await
}

/// Writes the entry of an action done at once (a lookup of a learner):
/// `done`, with the records it covered, started and finished now.
pub async fn record(
    store: &dyn Store,
    clock: &dyn Clock,
    actor: &str,
    action: &str,
    scope: String,
    records: i64,
) -> Result<i64, StoreError> {
    let now = clock.now_ms();
    let mut entry = AuditEntry::running(now, actor, action, scope);
    entry.status = "done".into();
    entry.records = records;
    entry.finished_at = Some(now);
    store.add_audit(&entry).await
}

/// Closes entry `id` with the action's result: `done` with the records it
/// covered and its summary (`done` gives both), or `failed` with the error.
pub async fn close<T, E: std::fmt::Display>(
    store: &dyn Store,
    clock: &dyn Clock,
    id: i64,
    result: &Result<T, E>,
    done: impl FnOnce(&T) -> (i64, String),
) -> Result<(), StoreError> {
    let (status, records, text) = match result {
        Ok(value) => {
            let (records, summary) = done(value);
            ("done", records, summary)
        }
        Err(e) => (
            "failed",
            0,
            serde_json::json!({ "error": e.to_string() }).to_string(),
        ),
    };
    store
        .update_audit(id, records, status, Some(&text), Some(clock.now_ms()))
        .await
}
