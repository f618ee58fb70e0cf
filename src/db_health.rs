//! Whether the daemon's work gets through to the database.
//!
//! `/readyz` pings the database with `SELECT 1`, which a database that can
//! be read but not written (a full disk, a file made read-only or
//! immutable) answers as if all were well. So each task that writes (every
//! registry's dispatch loop, the scan) reports how its last unit of work
//! ended, and the daemon is not ready while the last one of any task failed
//! on a database error. A task that succeeds again clears its own failure
//! only: an idle loop whose empty claim wrote nothing does not hide the
//! failure of a busy one.

use crate::store::StoreError;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use tracing::{info, warn};

/// The tasks that report, for the metric's `task` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Task {
    Dispatch(crate::domain::RegistryKind),
    Scan,
}

impl Task {
    fn label(self) -> &'static str {
        match self {
            Self::Dispatch(_) => "dispatch",
            Self::Scan => "scan",
        }
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dispatch(registry) => write!(f, "dispatch to {registry}"),
            Self::Scan => f.write_str("scan"),
        }
    }
}

/// The tasks whose last unit of work failed on the database, with the error.
#[derive(Debug, Default)]
pub struct DbHealth {
    failing: Mutex<BTreeMap<Task, String>>,
}

impl DbHealth {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// `task`'s last unit of work ended with `result`. A failure is counted
    /// (`hoursync_database_errors_total`); the end of one is logged.
    pub fn report(&self, task: Task, result: Result<(), &StoreError>) {
        let mut failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        match result {
            Err(e) => {
                crate::metrics::database_error(task.label());
                if failing.insert(task, e.to_string()).is_none() {
                    warn!(%task, error = %e, "database errors: not ready until this task's work gets through again");
                }
            }
            Ok(()) => {
                if failing.remove(&task).is_some() {
                    info!(%task, "the database takes this task's work again");
                }
            }
        }
    }

    /// The first failing task and its error, for `/readyz`.
    pub fn failing(&self) -> Option<String> {
        let failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        failing
            .iter()
            .next()
            .map(|(task, e)| format!("{task} failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RegistryKind;

    #[test]
    fn a_task_clears_only_its_own_failure() {
        let health = DbHealth::new();
        let e = StoreError::Fatal("disk I/O error".into());
        health.report(Task::Dispatch(RegistryKind::Lifelong), Err(&e));
        health.report(Task::Dispatch(RegistryKind::Teacher), Ok(()));
        let failing = health.failing().unwrap();
        assert!(
            failing.contains("lifelong") && failing.contains("disk I/O error"),
            "{failing}"
        );
        health.report(Task::Dispatch(RegistryKind::Lifelong), Ok(()));
        assert_eq!(health.failing(), None);
    }
}
