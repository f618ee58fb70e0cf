//! The delivery state machine's reads and its one write (postgres).

use super::*;
use crate::store::transitions::{Decided, ROW_COLUMNS, decide, delivery_row, ids_of, written};
use crate::transition::Event;

/// Writes decided rows, each only if it still has the revision and lease
/// owner it was read with.
const APPLY_ROWS: &str = "
UPDATE deliveries d SET
    state = r.state, reason = r.reason, revision = r.revision,
    hours_tenths = r.hours_tenths, credited_tenths = r.credited_tenths,
    receipt_id = r.receipt_id, delivered_at = r.delivered_at,
    attempts = r.attempts, next_attempt_at = r.next_attempt_at,
    last_error = r.last_error, lease_owner = r.lease_owner, lease_until = r.lease_until,
    idempotency_key = COALESCE(r.new_key, d.idempotency_key), updated_at = $2
FROM jsonb_to_recordset($1::jsonb) AS r(
    id bigint, state text, reason text, revision bigint, hours_tenths bigint, credited_tenths bigint,
    receipt_id text, delivered_at bigint, attempts bigint, next_attempt_at bigint, last_error text,
    lease_owner text, lease_until bigint, new_key text,
    expected_revision bigint, expected_owner text)
WHERE d.id = r.id AND d.revision = r.expected_revision
  AND d.lease_owner IS NOT DISTINCT FROM r.expected_owner";

impl PostgresStore {
    /// Reads the rows `events` name with a row lock, lets the state machine
    /// decide, and writes the result, in `tx`.
    pub(super) async fn transition_rows(
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        events: &[(i64, Event<'_>)],
        now_ms: i64,
    ) -> Result<Decided> {
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM deliveries WHERE id = ANY($1) ORDER BY id FOR UPDATE"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ids_of(events))
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
