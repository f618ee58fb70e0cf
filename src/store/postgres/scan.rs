//! The scan: the change window, the facts of changed completions, and its decisions written back, on PostgreSQL.

use super::*;
use crate::scan::stages::{Stage, lap};
use crate::store::record_columns::WriteRow;
use std::time::Instant;

/// Writes a chunk's decisions. Rows the chunk found (and locked) are
/// upserted; the pairs it did not find are inserted plainly, which spares
/// PostgreSQL the speculative insertion of `ON CONFLICT` (about a third of
/// an increment's write time). Only a scan outside the lease (`hoursync
/// scan` beside a daemon's) can insert one of those pairs meanwhile: then
/// the insert fails on the unique key, is rolled back to its savepoint, and
/// the same rows go through the upsert, as every row did before.
async fn write_deliveries(
    tx: &mut sqlx::PgConnection,
    new: &[&DeliveryWrite],
    found: &[&DeliveryWrite],
    now_ms: i64,
) -> Result<()> {
    if !found.is_empty() {
        bind_columns(UPSERT_DELIVERIES, found, now_ms)
            .execute(&mut *tx)
            .await?;
    }
    if new.is_empty() {
        return Ok(());
    }
    sqlx::query("SAVEPOINT scan_new_rows")
        .execute(&mut *tx)
        .await?;
    let inserted = bind_columns(insert_new(), new, now_ms)
        .execute(&mut *tx)
        .await;
    match inserted {
        Ok(_) => {}
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            sqlx::query("ROLLBACK TO SAVEPOINT scan_new_rows")
                .execute(&mut *tx)
                .await?;
            bind_columns(UPSERT_DELIVERIES, new, now_ms)
                .execute(&mut *tx)
                .await?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// [`UPSERT_DELIVERIES`] without its `ON CONFLICT` clause.
fn insert_new() -> &'static str {
    UPSERT_DELIVERIES
        .split("ON CONFLICT")
        .next()
        .expect("split yields the text before the clause")
}

/// `sql` with the writes bound, one array per column, then the time.
fn bind_columns<'q>(
    sql: &'static str,
    writes: &[&DeliveryWrite],
    now_ms: i64,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let n = writes.len();
    macro_rules! columns {
        ($($c:ident),*) => {{
            $(let mut $c = Vec::with_capacity(n);)*
            for w in writes {
                let r = WriteRow::of(w);
                $($c.push(r.$c);)*
            }
            sqlx::query(sql)
                $(.bind($c))*
                .bind(now_ms)
        }};
    }
    columns!(
        completion_id,
        registry,
        national_id,
        course_code,
        state,
        reason,
        hours_tenths,
        revision,
        idempotency_key,
        eligible_since,
        due_at,
        next_attempt_at,
        attempts,
        rescan,
        format,
        course_name,
        completed_on,
        learning_mode,
        digital_tenths,
        classroom_tenths,
        category_code,
        enved_account,
        service_unit_code
    )
}

#[async_trait]
impl ScanStore for PostgresStore {
    async fn scan_window(&self) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT COALESCE((SELECT seq FROM cursors WHERE name = 'scan'), 0), (SELECT value FROM change_seq WHERE id = 1)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.get(0), row.get(1)))
    }

    async fn changed_completions(&self, from: i64, to: i64) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(CHANGED_COMPLETIONS)
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn rescan_completions(&self) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(RESCAN_COMPLETIONS)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn scan_chunk(
        &self,
        ids: &[i64],
        now_ms: i64,
        plan: &mut (dyn FnMut(Vec<ScanRow>) -> Vec<DeliveryWrite> + Send),
    ) -> Result<usize> {
        let t = Instant::now();
        let mut tx = self.pool.begin().await?;
        let mut rows = Vec::with_capacity(ids.len());
        let mut index = std::collections::HashMap::with_capacity(ids.len());
        for r in sqlx::query(SCAN_FACTS)
            .bind(ids)
            .fetch_all(&mut *tx)
            .await?
        {
            let row = scan_row(&r)?;
            index.insert(row.completion.completion_id.clone(), rows.len());
            rows.push(row);
        }
        let t = lap(Stage::Facts, t);
        // Row locks: dispatch can not finish one of these rows between our
        // read and our write. Looked up by the unique index's leading
        // column, whatever the table's statistics say.
        // Which registries' rows each completion has, by its index.
        let mut found = vec![0u8; rows.len()];
        let completion_ids: Vec<&str> = rows
            .iter()
            .map(|r| r.completion.completion_id.as_str())
            .collect();
        let existing = sqlx::query(SCAN_DELIVERIES)
            .bind(&completion_ids)
            .fetch_all(&mut *tx)
            .await?;
        for r in existing {
            let (completion_id, delivery) = existing_delivery(&r)?;
            if let Some(&i) = index.get(&completion_id) {
                found[i] |= registry_bit(delivery.registry);
                rows[i].deliveries.push(delivery);
            }
        }
        lap(Stage::Existing, t);
        let writes = plan(rows);
        let t = Instant::now();
        let (found, new): (Vec<&DeliveryWrite>, Vec<&DeliveryWrite>) =
            writes.iter().partition(|w| {
                index
                    .get(&w.completion_id)
                    .is_some_and(|&i| found[i] & registry_bit(w.registry) != 0)
            });
        write_deliveries(&mut tx, &new, &found, now_ms).await?;
        let n = writes.len();
        let t = lap(Stage::Write, t);
        tx.commit().await?;
        lap(Stage::Commit, t);
        Ok(n)
    }

    async fn finish_scan(&self, to: i64, now_ms: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO cursors (name, seq, last_run_at) VALUES ('scan', $1, $2)
             ON CONFLICT (name) DO UPDATE SET seq = GREATEST(cursors.seq, excluded.seq), last_run_at = excluded.last_run_at",
        )
        .bind(to)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// A registry's bit in a mask of the registries a completion has rows for.
fn registry_bit(registry: RegistryKind) -> u8 {
    let position = RegistryKind::ALL
        .iter()
        .position(|r| *r == registry)
        .expect("every registry is in ALL");
    1 << position
}

/// See the SQLite twin for what each branch catches.
const CHANGED_COMPLETIONS: &str = "
WITH changed_persons AS (
    SELECT national_id FROM persons WHERE seq > $1 AND seq <= $2
    UNION
    SELECT p.national_id FROM units u JOIN persons p ON p.service_unit_code = u.code
    WHERE u.seq > $1 AND u.seq <= $2
), changed_accounts AS (
    SELECT account_id FROM accounts WHERE seq > $1 AND seq <= $2
    UNION
    SELECT a.account_id FROM changed_persons cp JOIN accounts a ON a.national_id = cp.national_id
), affected_accounts AS (
    SELECT account_id FROM changed_accounts
    UNION
    SELECT a.account_id FROM changed_accounts ca JOIN accounts a ON a.bound_to = ca.account_id
)
SELECT id FROM completions WHERE seq > $1 AND seq <= $2
UNION
SELECT c.id FROM affected_accounts aa JOIN completions c ON c.account_id = aa.account_id
UNION
SELECT c.id FROM courses k JOIN completions c ON c.course_code = k.course_code
WHERE k.seq > $1 AND k.seq <= $2
ORDER BY 1";

/// Completions whose deliveries wait to be judged again.
const RESCAN_COMPLETIONS: &str = "
SELECT DISTINCT c.id FROM deliveries d JOIN completions c ON c.completion_id = d.completion_id
WHERE d.rescan = 1 ORDER BY 1";

const SCAN_FACTS: &str = "
SELECT c.completion_id, c.account_id, c.course_code, c.completed_at, c.completed_on, c.status,
       a.account_id, a.national_id, a.kind, a.identity, a.bound_to,
       b.account_id, b.national_id, b.kind, b.identity,
       p.national_id, p.personnel_category, p.enved_account, p.service_unit_code,
       (CASE WHEN u.code IS NULL THEN 0 ELSE 1 END)::bigint,
       k.course_code, k.name, k.learning_mode, k.category_code, k.digital_tenths, k.classroom_tenths,
       COALESCE((SELECT jsonb_object_agg(h.registry, h.tenths) FROM course_hours h
                 WHERE h.course_code = k.course_code), '{}'::jsonb)::text,
       GREATEST(c.changed_at, a.changed_at, COALESCE(b.changed_at, 0), p.changed_at,
                COALESCE(u.changed_at, 0), k.changed_at)
FROM completions c
JOIN accounts a ON a.account_id = c.account_id
LEFT JOIN accounts b ON a.kind = 'certificate' AND b.account_id = a.bound_to
JOIN persons p ON p.national_id = COALESCE(b.national_id, a.national_id)
JOIN courses k ON k.course_code = c.course_code
LEFT JOIN units u ON u.code = p.service_unit_code
WHERE c.id = ANY($1)";

const SCAN_DELIVERIES: &str = "
SELECT d.completion_id, d.registry, d.state, d.reason, d.revision, d.eligible_since, d.next_attempt_at,
       d.hours_tenths, d.credited_tenths, d.lease_until, d.idempotency_key, d.rescan,
       d.national_id, d.course_code, d.format, d.course_name, d.completed_on, d.learning_mode,
       d.digital_tenths, d.classroom_tenths, d.category_code, d.enved_account, d.service_unit_code
FROM deliveries d
WHERE d.completion_id = ANY($1)
ORDER BY d.id
FOR UPDATE";

/// Inserts or replaces the scan's decisions, bound as one array per column
/// (in `write_deliveries`' order, then the time). `attempts` 0 starts the
/// attempt count and last error over (a new or changed record), -1 keeps them.
const UPSERT_DELIVERIES: &str = "
INSERT INTO deliveries (completion_id, registry, national_id, course_code, state, reason, hours_tenths,
                        revision, idempotency_key, eligible_since, due_at, next_attempt_at, attempts, rescan,
                        format, course_name, completed_on, learning_mode, digital_tenths, classroom_tenths,
                        category_code, enved_account, service_unit_code, updated_at)
SELECT r.*, $24
FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[],
            $8::bigint[], $9::text[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[],
            $14::bigint[], $15::bigint[], $16::text[], $17::text[], $18::bigint[], $19::bigint[],
            $20::bigint[], $21::text[], $22::text[], $23::text[]) AS r
ON CONFLICT (completion_id, registry) DO UPDATE SET
    national_id = excluded.national_id, course_code = excluded.course_code, state = excluded.state,
    reason = excluded.reason, hours_tenths = excluded.hours_tenths, revision = excluded.revision,
    idempotency_key = excluded.idempotency_key,
    eligible_since = excluded.eligible_since, due_at = excluded.due_at, next_attempt_at = excluded.next_attempt_at,
    attempts = CASE WHEN excluded.attempts < 0 THEN deliveries.attempts ELSE 0 END,
    last_error = CASE WHEN excluded.attempts < 0 THEN deliveries.last_error ELSE NULL END,
    updated_at = excluded.updated_at, rescan = excluded.rescan,
    format = excluded.format, course_name = excluded.course_name, completed_on = excluded.completed_on,
    learning_mode = excluded.learning_mode, digital_tenths = excluded.digital_tenths,
    classroom_tenths = excluded.classroom_tenths, category_code = excluded.category_code,
    enved_account = excluded.enved_account, service_unit_code = excluded.service_unit_code";
