//! The audit trail of long actions (a resync, a reconcile): opened as
//! `running` when they start, closed as `done` with what they covered, or
//! `failed` with the error, so a crash leaves a `running` entry behind.

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
