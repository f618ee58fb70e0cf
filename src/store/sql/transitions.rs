//! The delivery state machine's reads and its one write.

use super::{Backend, Run, SqlStore};
use crate::store::Result;
use crate::store::dialect::{Dialect, Sql};
use crate::store::transitions::{Decided, ROW_COLUMNS, decide, delivery_row, ids_of, written};
use crate::transition::Event;

/// The columns of a [`RowWrite`](crate::store::transitions::RowWrite).
const WRITE_COLUMNS: [(&str, &str); 16] = [
    ("id", "bigint"),
    ("state", "text"),
    ("reason", "text"),
    ("revision", "bigint"),
    ("hours_tenths", "bigint"),
    ("credited_tenths", "bigint"),
    ("receipt_id", "text"),
    ("delivered_at", "bigint"),
    ("attempts", "bigint"),
    ("next_attempt_at", "bigint"),
    ("last_error", "text"),
    ("lease_owner", "text"),
    ("lease_until", "bigint"),
    ("new_key", "text"),
    ("expected_revision", "bigint"),
    ("expected_owner", "text"),
];

/// The rows events name, locked until the transaction ends.
static READ_ROWS: Sql = Sql::built(|d: Dialect| {
    format!(
        "SELECT {ROW_COLUMNS} FROM deliveries WHERE {} ORDER BY id {}",
        d.in_list("id", "$1"),
        d.for_update()
    )
});

/// Writes decided rows, each only if it still has the revision and lease
/// owner it was read with.
static APPLY_ROWS: Sql = Sql::built(|d: Dialect| {
    format!(
        "UPDATE deliveries AS d SET
            state = r.state, reason = r.reason, revision = r.revision,
            hours_tenths = r.hours_tenths, credited_tenths = r.credited_tenths,
            receipt_id = r.receipt_id, delivered_at = r.delivered_at,
            attempts = r.attempts, next_attempt_at = r.next_attempt_at,
            last_error = r.last_error, lease_owner = r.lease_owner, lease_until = r.lease_until,
            idempotency_key = COALESCE(r.new_key, d.idempotency_key), updated_at = $2
         FROM {}
         WHERE d.id = r.id AND d.revision = r.expected_revision
           AND d.lease_owner IS NOT DISTINCT FROM r.expected_owner",
        d.json_rows("$1", &WRITE_COLUMNS, "r")
    )
});

impl<B: Backend> SqlStore<B> {
    /// Reads the rows `events` name, lets the state machine decide, and
    /// writes the result, in `tx` (a write transaction: nothing changes the
    /// rows between the read and the write).
    pub(in crate::store) async fn transition_rows(
        tx: &mut B::Tx,
        events: &[(i64, Event<'_>)],
        now_ms: i64,
    ) -> Result<Decided> {
        let ids = ids_of(events);
        let rows = tx
            .fetch_all(Self::sql(&READ_ROWS), args![ids.as_slice()])
            .await?
            .iter()
            .map(delivery_row)
            .collect::<Result<Vec<_>>>()?;
        let decided = decide(rows, events, now_ms);
        if decided.rows == 0 {
            return Ok(decided);
        }
        let rows_affected = tx
            .execute(Self::sql(&APPLY_ROWS), args![&decided.json, now_ms])
            .await?;
        written(decided, rows_affected)
    }
}
