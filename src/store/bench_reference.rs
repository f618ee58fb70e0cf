//! The bench's reference line: the least a drain can do (claim a batch with
//! one `UPDATE … RETURNING`, mark it delivered with one `UPDATE`), on a copy
//! of `deliveries` with the same columns and indexes, so the daemon's drain
//! can be compared with it in the same run. Not used by the daemon: no
//! lease table, no transition function, no history.

pub use super::sql::Reference;
use super::{PostgresStore, Result, SqliteStore};
use std::sync::Arc;

pub(super) const TABLE: &str = "bench_reference";

/// Columns a claim returns: what [`super::rowmap::claimed`] reads.
pub(super) const CLAIMED: &str = "id, registry, idempotency_key, attempts, state, revision, \
    receipt_id, national_id, course_code, hours_tenths, format, course_name, completed_on, \
    learning_mode, digital_tenths, classroom_tenths, category_code, enved_account, service_unit_code, \
    lease_taken_from";

/// Columns of the copy set back to a never-sent record; the rest are copied.
const RESET: [(&str, &str); 9] = [
    ("state", "'pending'"),
    ("next_attempt_at", "COALESCE(eligible_since, 0)"),
    ("attempts", "0"),
    ("last_error", "NULL"),
    ("receipt_id", "NULL"),
    ("delivered_at", "NULL"),
    ("credited_tenths", "NULL"),
    ("lease_owner", "NULL"),
    ("lease_until", "NULL"),
];

/// The copy's SELECT list: `RESET`'s values under their names, the other
/// columns as they are.
pub(super) fn select_list(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| {
            RESET
                .iter()
                .find(|(name, _)| name == c)
                .map_or_else(|| c.clone(), |(_, v)| format!("{v} AS {c}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The copy, on either backend; dropped by [`Reference::drop_table`].
pub type ReferenceTable = Arc<dyn Reference>;

/// Copies the `delivered` rows of `deliveries` (what the daemon just
/// drained) into a new table as never sent, with `deliveries`' indexes;
/// `connections`: one per lane. Not timed by the bench.
pub async fn prepare(url: &str, connections: u32) -> Result<ReferenceTable> {
    let table: ReferenceTable = if url.starts_with("postgres") {
        Arc::new(PostgresStore::open(url, None, connections, 30_000).await?)
    } else {
        Arc::new(SqliteStore::open(url, connections, 30_000).await?)
    };
    table.copy_delivered().await?;
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_resets_what_a_delivery_changed_and_keeps_the_rest() {
        let cols: Vec<String> = ["id", "state", "receipt_id", "hours_tenths"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(
            select_list(&cols),
            "id, 'pending' AS state, NULL AS receipt_id, hours_tenths"
        );
    }
}
