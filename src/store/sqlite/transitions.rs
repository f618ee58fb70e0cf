//! The delivery state machine's reads and its one write (sqlite).

use super::*;
use crate::store::transitions::{Decided, ROW_COLUMNS, decide, delivery_row, ids_of, written};
use crate::transition::Event;

/// Writes decided rows, each only if it still has the revision and lease
/// owner it was read with.
const APPLY_ROWS: &str = "
UPDATE deliveries SET
    state = j.value->>'state', reason = j.value->>'reason', revision = j.value->>'revision',
    hours_tenths = j.value->>'hours_tenths', credited_tenths = j.value->>'credited_tenths',
    receipt_id = j.value->>'receipt_id', delivered_at = j.value->>'delivered_at',
    attempts = j.value->>'attempts', next_attempt_at = j.value->>'next_attempt_at',
    last_error = j.value->>'last_error', lease_owner = j.value->>'lease_owner',
    lease_until = j.value->>'lease_until',
    idempotency_key = COALESCE(j.value->>'new_key', deliveries.idempotency_key), updated_at = ?2
FROM jsonb_each(?1) AS j
WHERE deliveries.id = j.value->>'id' AND deliveries.revision = j.value->>'expected_revision'
  AND deliveries.lease_owner IS (j.value->>'expected_owner')";

impl SqliteStore {
    /// Reads the rows `events` name, lets the state machine decide, and
    /// writes the result, in `tx` (a write transaction: nothing changes the
    /// rows between the read and the write).
    pub(super) async fn transition_rows(
        tx: &mut Tx,
        events: &[(i64, Event<'_>)],
        now_ms: i64,
    ) -> Result<Decided> {
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM deliveries WHERE id IN (SELECT value FROM jsonb_each(?1))"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ids_json(&ids_of(events)))
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(delivery_row)
            .collect::<Result<Vec<_>>>()?;
        let decided = decide(rows, events, now_ms);
        if decided.rows == 0 {
            return Ok(decided);
        }
        let rows_affected = sqlx::query(APPLY_ROWS)
            .bind(&decided.json)
            .bind(now_ms)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        written(decided, rows_affected)
    }
}
