//! The scan: the change window, the facts of changed completions, and its
//! decisions written back.

use super::{Arg, Backend, Run, SqlStore};
use crate::domain::RegistryKind;
use crate::scan::stages::{Stage, lap};
use crate::store::dialect::{Dialect, Sql};
use crate::store::record_columns::{RECORD_COLUMNS, WRITE_COLUMNS, WriteRow};
use crate::store::rowmap::{ReadRow as _, existing_delivery, scan_row};
use crate::store::transitions::ROW_COLUMNS;
use crate::store::{DeliveryWrite, Result, ScanRow, ScanStore, StoreError};
use async_trait::async_trait;
use std::collections::HashMap;
use std::time::Instant;

static WINDOW: Sql = Sql::text(
    "SELECT COALESCE((SELECT seq FROM cursors WHERE name = 'scan'), 0),
            (SELECT value FROM change_seq WHERE id = 1)",
);

/// Every completion a change in `($1, $2]` can affect: its own row, its
/// account, the account a certificate is bound to, its person, the person's
/// service unit, its course.
static CHANGED_COMPLETIONS: Sql = Sql::text(
    "WITH changed_persons AS (
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
    ORDER BY 1",
);

/// Completions whose deliveries wait to be judged again.
static RESCAN_COMPLETIONS: Sql = Sql::text(
    "SELECT DISTINCT c.id FROM deliveries d JOIN completions c ON c.completion_id = d.completion_id
     WHERE d.rescan = 1 ORDER BY 1",
);

static SCAN_FACTS: Sql = Sql::built(|d: Dialect| {
    format!(
        "SELECT c.completion_id, c.account_id, c.course_code, c.completed_at, c.completed_on, c.status,
                a.account_id, a.national_id, a.kind, a.identity, a.bound_to,
                b.account_id, b.national_id, b.kind, b.identity,
                p.national_id, p.personnel_category, p.enved_account, p.service_unit_code,
                CAST(CASE WHEN u.code IS NULL THEN 0 ELSE 1 END AS BIGINT),
                k.course_code, k.name, k.learning_mode, k.category_code, k.digital_tenths, k.classroom_tenths,
                CAST((SELECT {} FROM course_hours h WHERE h.course_code = k.course_code) AS TEXT),
                {greatest}(c.changed_at, a.changed_at, COALESCE(b.changed_at, 0), p.changed_at,
                           COALESCE(u.changed_at, 0), k.changed_at)
         FROM completions c
         JOIN accounts a ON a.account_id = c.account_id
         LEFT JOIN accounts b ON a.kind = 'certificate' AND b.account_id = a.bound_to
         JOIN persons p ON p.national_id = COALESCE(b.national_id, a.national_id)
         JOIN courses k ON k.course_code = c.course_code
         LEFT JOIN units u ON u.code = p.service_unit_code
         WHERE {}",
        d.json_object_agg("h.registry", "h.tenths"),
        d.in_list("c.id", "$1"),
        greatest = d.greatest(),
    )
});

/// The chunk's delivery rows, locked: dispatch can not finish one of them
/// between the scan's read and its write. Looked up by the unique index's
/// leading column, whatever the table's statistics say.
static SCAN_DELIVERIES: Sql = Sql::built(|d: Dialect| {
    format!(
        "SELECT completion_id, {ROW_COLUMNS}, {RECORD_COLUMNS}
         FROM deliveries
         WHERE {}
         ORDER BY id {}",
        d.in_list("completion_id", "$1"),
        d.for_update()
    )
});

static FINISH_SCAN: Sql = Sql::built(|d: Dialect| {
    format!(
        "INSERT INTO cursors (name, seq, last_run_at) VALUES ('scan', $1, $2)
         ON CONFLICT (name) DO UPDATE
            SET seq = {}(cursors.seq, excluded.seq), last_run_at = excluded.last_run_at",
        d.greatest()
    )
});

/// How a chunk's decisions are written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Write {
    /// Rows the chunk found (and locked): replaced.
    Upsert,
    /// Pairs the chunk did not find: inserted plainly, which spares
    /// PostgreSQL the speculative insertion of `ON CONFLICT` (about a third
    /// of an increment's write time).
    Insert,
}

/// Inserts (or, with [`Write::Upsert`], replaces) `rows` of the scan's
/// decisions: the time, then each value bound typed (no JSON built or
/// parsed per row). `attempts` 0 starts the attempt count and last error over
/// (a new or changed record), -1 keeps them.
fn write_statement(d: Dialect, how: Write, rows: usize) -> String {
    let names: Vec<&str> = WRITE_COLUMNS.iter().map(|(n, _)| *n).collect();
    let insert = format!(
        "INSERT INTO deliveries ({}, updated_at) {}",
        names.join(", "),
        d.write_rows(&WRITE_COLUMNS, rows)
    );
    if how == Write::Insert {
        return d.placeholders(&insert);
    }
    d.placeholders(&format!(
        "{insert}
         ON CONFLICT (completion_id, registry) DO UPDATE SET
            national_id = excluded.national_id, course_code = excluded.course_code, state = excluded.state,
            reason = excluded.reason, hours_tenths = excluded.hours_tenths, revision = excluded.revision,
            idempotency_key = excluded.idempotency_key,
            eligible_since = excluded.eligible_since, due_at = excluded.due_at,
            next_attempt_at = excluded.next_attempt_at,
            attempts = CASE WHEN excluded.attempts < 0 THEN deliveries.attempts ELSE 0 END,
            last_error = CASE WHEN excluded.attempts < 0 THEN deliveries.last_error ELSE NULL END,
            updated_at = excluded.updated_at, rescan = excluded.rescan,
            format = excluded.format, course_name = excluded.course_name,
            completed_on = excluded.completed_on, learning_mode = excluded.learning_mode,
            digital_tenths = excluded.digital_tenths, classroom_tenths = excluded.classroom_tenths,
            category_code = excluded.category_code, enved_account = excluded.enved_account,
            service_unit_code = excluded.service_unit_code"
    ))
}

impl<B: Backend> SqlStore<B> {
    /// Writes `writes` in as few statements as the dialect allows.
    async fn write_rows(
        tx: &mut B::Tx,
        how: Write,
        writes: &[&DeliveryWrite],
        now_ms: i64,
    ) -> Result<()> {
        let d = B::DIALECT;
        for batch in writes.chunks(d.rows_per_write()) {
            let rows: Vec<WriteRow> = batch.iter().map(|w| WriteRow::of(w)).collect();
            let sql = write_statement(d, how, rows.len());
            tx.execute(sql, &[Arg::Int(now_ms), Arg::WriteRows(&rows)])
                .await?;
        }
        Ok(())
    }

    /// Writes a chunk's decisions: rows it `found` are replaced, `new`
    /// pairs inserted. Only a scan outside the lease (`hoursync scan`
    /// beside a daemon's) can insert one of the new pairs meanwhile: then
    /// the insert fails on the unique key, is rolled back (to its savepoint,
    /// where a failure ends the transaction), and the same rows are upserted
    /// instead.
    async fn write_deliveries(
        tx: &mut B::Tx,
        new: &[&DeliveryWrite],
        found: &[&DeliveryWrite],
        now_ms: i64,
    ) -> Result<()> {
        Self::write_rows(tx, Write::Upsert, found, now_ms).await?;
        if new.is_empty() {
            return Ok(());
        }
        let guard = B::DIALECT.failure_aborts_transaction();
        if guard {
            tx.execute("SAVEPOINT scan_new_rows", &[]).await?;
        }
        match Self::write_rows(tx, Write::Insert, new, now_ms).await {
            Err(StoreError::Duplicate(_)) => {
                if guard {
                    tx.execute("ROLLBACK TO SAVEPOINT scan_new_rows", &[])
                        .await?;
                }
                // Rows an earlier statement inserted are replaced by themselves.
                Self::write_rows(tx, Write::Upsert, new, now_ms).await
            }
            written => written,
        }
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

#[async_trait]
impl<B: Backend> ScanStore for SqlStore<B> {
    async fn scan_window(&self) -> Result<(i64, i64)> {
        let row = self.db.pool().fetch_one(Self::sql(&WINDOW), &[]).await?;
        Ok((row.int(0)?, row.int(1)?))
    }

    async fn changed_completions(&self, from: i64, to: i64) -> Result<Vec<i64>> {
        self.read(&CHANGED_COMPLETIONS, args![from, to], |r| r.int(0))
            .await
    }

    async fn rescan_completions(&self) -> Result<Vec<i64>> {
        self.read(&RESCAN_COMPLETIONS, &[], |r| r.int(0)).await
    }

    async fn scan_chunk(
        &self,
        ids: &[i64],
        now_ms: i64,
        plan: &mut (dyn FnMut(Vec<ScanRow>) -> Vec<DeliveryWrite> + Send),
    ) -> Result<usize> {
        let t = Instant::now();
        let mut tx = self.db.begin().await?;
        let mut rows = Vec::with_capacity(ids.len());
        let mut index = HashMap::with_capacity(ids.len());
        for r in tx.fetch_all(Self::sql(&SCAN_FACTS), args![ids]).await? {
            let row = scan_row(&r)?;
            index.insert(row.completion.completion_id.clone(), rows.len());
            rows.push(row);
        }
        let t = lap(Stage::Facts, t);
        let completion_ids: Vec<&str> = rows
            .iter()
            .map(|r: &ScanRow| r.completion.completion_id.as_str())
            .collect();
        let existing = tx
            .fetch_all(
                Self::sql(&SCAN_DELIVERIES),
                args![completion_ids.as_slice()],
            )
            .await?;
        // Which registries' rows each completion has, by its index.
        let mut found = vec![0u8; rows.len()];
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
        Self::write_deliveries(&mut tx, &new, &found, now_ms).await?;
        let t = lap(Stage::Write, t);
        tx.finish().await?;
        lap(Stage::Commit, t);
        Ok(writes.len())
    }

    async fn finish_scan(&self, to: i64, now_ms: i64) -> Result<()> {
        self.write(&FINISH_SCAN, args![to, now_ms]).await?;
        Ok(())
    }
}
