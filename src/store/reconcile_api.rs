//! What a reconcile reads, by primary key ranges: a plan that stays an
//! index range scan whatever the table's statistics say (PERFORMANCE.md:
//! statistics taken before the drain make a filtered `ORDER BY id LIMIT`
//! a scan of every delivered row, for every page).

use super::{ReconcileItem, ReconcileQuery, Result};
use async_trait::async_trait;

/// A reconcile's walk over the deliveries, a span of ids at a time.
#[async_trait]
pub trait ReconcileStore: Send + Sync {
    /// The candidates (as [`super::HistoryStore::reconcile_candidates`]
    /// selects them) among the next `span` deliveries after `after_id`, in
    /// id order, and the last id of that span: `None` when no delivery
    /// follows `after_id`.
    async fn reconcile_span(
        &self,
        query: &ReconcileQuery,
        after_id: i64,
        span: usize,
    ) -> Result<(Vec<ReconcileItem>, Option<i64>)>;
}
