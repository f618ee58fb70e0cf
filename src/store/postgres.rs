//! The PostgreSQL backend, for several daemons on one database. The same
//! contract as SQLite; the differences are PostgreSQL's own tools: claims
//! with `FOR UPDATE SKIP LOCKED`, bulk statements over `jsonb`, row locks on
//! the deliveries a scan chunk rewrites.

mod history;
mod transitions;

use super::rowmap::{
    IntakeRows, ReadRow, audit_entry, breached_record, claimed, delivery_item, existing_delivery,
    nid, parse_registry, person_record, scan_row, sla_count, state_count, table_counts,
};
use super::*;
use crate::transition::Event;
use history::INSERT_ATTEMPTS;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};
use std::str::FromStr;
use std::time::Duration;

pub struct PostgresStore {
    pool: PgPool,
}

/// The longest wait for a pooled connection. A server that holds packets
/// (a network partition) rather than refusing them leaves every ping of an
/// idle connection unanswered: the wait must end, with an error the daemon
/// logs, within seconds rather than after `busy_timeout_ms`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Server-side bounds, in milliseconds. A session idle inside a
/// transaction this long is ended, so that a daemon cut off mid-transaction
/// does not hold its row locks (and the other daemons' claims behind them)
/// for as long as TCP takes to notice (the daemon's transactions go from
/// one statement to the next in well under a second). A statement that runs this long
/// is cancelled: far above the daemon's own (its bulk work goes in chunks
/// of seconds), with room for a migration or `ANALYZE` of a large database.
const IDLE_IN_TRANSACTION_TIMEOUT_MS: u32 = 120_000;
const STATEMENT_TIMEOUT_MS: u32 = 300_000;

impl PostgresStore {
    pub async fn open(url: &str, max_connections: u32, acquire_timeout_ms: u64) -> Result<Self> {
        // JIT compiling costs more than these short statements ever run.
        let opts = PgConnectOptions::from_str(url)?
            .application_name("hoursync")
            .options([
                ("jit", "off".to_string()),
                ("statement_timeout", STATEMENT_TIMEOUT_MS.to_string()),
                (
                    "idle_in_transaction_session_timeout",
                    IDLE_IN_TRANSACTION_TIMEOUT_MS.to_string(),
                ),
            ]);
        let acquire_timeout = Duration::from_millis(acquire_timeout_ms)
            .clamp(Duration::from_secs(1), ACQUIRE_TIMEOUT);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(acquire_timeout)
            .connect_with(opts)
            .await?;
        Ok(Self { pool })
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn migrate(&self) -> Result<()> {
        // sqlx takes an advisory lock: daemons starting together migrate once.
        sqlx::migrate!("migrations/postgres")
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))
    }

    async fn known_keys(&self, wanted: &KeyQuery) -> Result<KnownKeys> {
        let mut known = KnownKeys::default();
        for chunk in wanted.persons.chunks(10_000) {
            let whole: Vec<&str> = chunk.iter().map(NationalId::expose).collect();
            let rows: Vec<String> =
                sqlx::query_scalar("SELECT national_id FROM persons WHERE national_id = ANY($1)")
                    .bind(whole)
                    .fetch_all(&self.pool)
                    .await?;
            for r in rows {
                known.persons.insert(nid(&r)?);
            }
        }
        for chunk in wanted.accounts.chunks(10_000) {
            let rows = sqlx::query(
                "SELECT account_id, kind, national_id FROM accounts WHERE account_id = ANY($1)",
            )
            .bind(chunk)
            .fetch_all(&self.pool)
            .await?;
            for r in rows {
                known.accounts.insert(
                    r.get(0),
                    KnownAccount {
                        kind: r.get(1),
                        national_id: nid(&r.text(2)?)?,
                    },
                );
            }
        }
        for chunk in wanted.courses.chunks(10_000) {
            let rows: Vec<String> =
                sqlx::query_scalar("SELECT course_code FROM courses WHERE course_code = ANY($1)")
                    .bind(chunk)
                    .fetch_all(&self.pool)
                    .await?;
            known.courses.extend(rows);
        }
        Ok(known)
    }

    async fn apply_intake(&self, chunk: &IntakeChunk, now_ms: i64) -> Result<u64> {
        if chunk.is_empty() {
            return Ok(0);
        }
        let mut tx = self.pool.begin().await?;
        // Locks the sequence row until commit (see the migration).
        let seq: i64 = sqlx::query_scalar(
            "UPDATE change_seq SET value = value + 1 WHERE id = 1 RETURNING value",
        )
        .fetch_one(&mut *tx)
        .await?;
        let mut changed = 0;
        let rows = super::rowmap::intake_rows(chunk);
        for (sql, of, params) in INTAKE {
            let json = rows[of as usize].as_str();
            if json == "[]" {
                continue;
            }
            let query = sqlx::query(sql).bind(json).bind(seq);
            let query = if params == Params::Stamp {
                query.bind(now_ms)
            } else {
                query
            };
            let touched = query.execute(&mut *tx).await?.rows_affected();
            if params == Params::Stamp {
                changed += touched;
            }
        }
        if changed == 0 {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(changed)
    }

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
        let mut tx = self.pool.begin().await?;
        let mut rows = Vec::new();
        let mut index = std::collections::HashMap::new();
        for r in sqlx::query(SCAN_FACTS)
            .bind(ids)
            .fetch_all(&mut *tx)
            .await?
        {
            let row = scan_row(&r)?;
            index.insert(row.completion.completion_id.clone(), rows.len());
            rows.push(row);
        }
        // Row locks: dispatch can not finish one of these rows between our
        // read and our write.
        for r in sqlx::query(SCAN_DELIVERIES)
            .bind(ids)
            .fetch_all(&mut *tx)
            .await?
        {
            let (completion_id, delivery) = existing_delivery(&r)?;
            if let Some(&i) = index.get(&completion_id) {
                rows[i].deliveries.push(delivery);
            }
        }
        let writes = plan(rows);
        let n = writes.len();
        if n > 0 {
            let json = serde_json::to_string(&writes).expect("writes serialize");
            sqlx::query(UPSERT_DELIVERIES)
                .bind(json)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
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

    async fn claim(
        &self,
        registry: RegistryKind,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Claimed>> {
        let rows = sqlx::query(
            "UPDATE deliveries SET lease_owner = $1, lease_until = $2, next_attempt_at = $2
             WHERE id IN (
                SELECT id FROM deliveries
                WHERE registry = $3 AND state IN ('pending', 'retrying', 'correcting', 'withdrawing')
                  AND next_attempt_at <= $4
                  AND (lease_until IS NULL OR lease_until < $4)
                ORDER BY next_attempt_at, id LIMIT $5
                FOR UPDATE SKIP LOCKED)
             RETURNING id, idempotency_key, payload, attempts, hours_tenths, state, revision, receipt_id",
        )
        .bind(owner)
        .bind(lease_until_ms)
        .bind(registry.as_str())
        .bind(now_ms)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = rows.iter().map(claimed).collect::<Result<Vec<Claimed>>>()?;
        claimed.sort_by_key(|c| c.id);
        Ok(claimed)
    }

    async fn record_outcomes(
        &self,
        owner: &str,
        outcomes: &[Outcome],
        attempts: &[Attempt],
        now_ms: i64,
    ) -> Result<u64> {
        let events: Vec<(i64, Event)> = outcomes
            .iter()
            .map(|o| (o.id(), Event::Answered { owner, outcome: o }))
            .collect();
        let mut tx = self.pool.begin().await?;
        let written = Self::transition_rows(&mut tx, &events, now_ms).await?.rows as u64;
        // What was asked and answered is history even when the lease was lost.
        if !attempts.is_empty() {
            sqlx::query(INSERT_ATTEMPTS)
                .bind(super::rowmap::attempt_rows(attempts))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(written)
    }

    async fn try_lease(&self, name: &str, owner: &str, now_ms: i64, ttl_ms: i64) -> Result<bool> {
        Ok(sqlx::query(
            "INSERT INTO leases (name, owner, until_ms) VALUES ($1, $2, $3 + $4)
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until_ms = excluded.until_ms
             WHERE leases.owner = excluded.owner OR leases.until_ms < $3
             RETURNING owner",
        )
        .bind(name)
        .bind(owner)
        .bind(now_ms)
        .bind(ttl_ms)
        .fetch_optional(&self.pool)
        .await?
        .is_some())
    }

    async fn release_lease(&self, name: &str, owner: &str) -> Result<()> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND owner = $2")
            .bind(name)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn take_slot(
        &self,
        registry: RegistryKind,
        now_ms: i64,
        interval_ms: i64,
    ) -> Result<i64> {
        // A gate row commits without waiting for the WAL flush: a
        // synchronous commit is seen by other sessions only after the flush
        // (milliseconds, tens on a busy disk), and this statement is the last
        // look at the hold before a request goes out, while it keeps the row
        // locked against the hold another daemon wants to write. Gates are
        // soft state: a crash of the database that loses one costs a burst
        // of one slot or a 429 answered again.
        Ok(sqlx::query_scalar(
            "WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true))
             INSERT INTO registry_gates (registry, next_at, hold_until)
             SELECT $1, $2 + $3, 0 FROM async_commit
             ON CONFLICT (registry) DO UPDATE
                SET next_at = GREATEST(registry_gates.next_at, $2, registry_gates.hold_until) + $3
             RETURNING next_at - $3",
        )
        .bind(registry.as_str())
        .bind(now_ms)
        .bind(interval_ms)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn hold_registry(&self, registry: RegistryKind, until_ms: i64) -> Result<()> {
        // Without waiting for the WAL flush, as in `take_slot`: every other
        // daemon must see the hold as soon as possible.
        sqlx::query(
            "WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true))
             INSERT INTO registry_gates (registry, next_at, hold_until)
             SELECT $1, $2, $2 FROM async_commit
             ON CONFLICT (registry) DO UPDATE SET hold_until = GREATEST(registry_gates.hold_until, $2)",
        )
        .bind(registry.as_str())
        .bind(until_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn registry_hold(&self, registry: RegistryKind) -> Result<i64> {
        let hold: Option<i64> =
            sqlx::query_scalar("SELECT hold_until FROM registry_gates WHERE registry = $1")
                .bind(registry.as_str())
                .fetch_optional(&self.pool)
                .await?;
        Ok(hold.unwrap_or(0))
    }

    async fn calendar_years(&self) -> Result<Vec<(i32, String)>> {
        let rows = sqlx::query("SELECT year, csv FROM calendar_years ORDER BY year")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<i32, _>(0)?, r.try_get(1)?)))
            .collect()
    }

    async fn put_calendar_year(&self, year: i32, csv: &str, now_ms: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO calendar_years (year, csv, loaded_at) VALUES ($1, $2, $3)
             ON CONFLICT (year) DO UPDATE SET csv = excluded.csv, loaded_at = excluded.loaded_at",
        )
        .bind(year)
        .bind(csv)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn sla_counts(
        &self,
        now_ms: i64,
        at_risk_ms: i64,
        filter: SlaFilter,
    ) -> Result<Vec<SlaCount>> {
        let rows = sqlx::query(
            "SELECT registry,
                    CASE WHEN state IN ('delivered', 'correcting') AND delivered_at < due_at + 1000 THEN 'on_time'
                         WHEN state IN ('delivered', 'correcting') THEN 'late'
                         WHEN $1 >= due_at + 1000 THEN 'breached'
                         WHEN due_at - $1 <= $2 THEN 'at_risk'
                         ELSE 'pending' END AS sla,
                    COUNT(*)
             FROM deliveries
             WHERE due_at IS NOT NULL AND eligible_since >= $3 AND ($4 = '' OR registry = $4)
             GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .bind(now_ms)
        .bind(at_risk_ms)
        .bind(filter.since_ms.unwrap_or(i64::MIN))
        .bind(filter.registry.map_or("", |r| r.as_str()))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(sla_count).collect()
    }

    async fn breached(
        &self,
        now_ms: i64,
        filter: SlaFilter,
        limit: usize,
    ) -> Result<Vec<BreachedRecord>> {
        let rows = sqlx::query(
            "SELECT id, registry, completion_id, course_code, national_id, state, reason, attempts, last_error,
                    eligible_since, due_at
             FROM deliveries
             WHERE due_at IS NOT NULL AND state NOT IN ('delivered', 'correcting') AND $1 >= due_at + 1000
               AND eligible_since >= $2 AND ($3 = '' OR registry = $3)
             ORDER BY due_at, id LIMIT $4",
        )
        .bind(now_ms)
        .bind(filter.since_ms.unwrap_or(i64::MIN))
        .bind(filter.registry.map_or("", |r| r.as_str()))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(breached_record).collect()
    }

    async fn oldest_undelivered(&self) -> Result<Vec<(RegistryKind, i64)>> {
        let rows = sqlx::query(
            "SELECT registry, MIN(eligible_since) FROM deliveries
             WHERE state IN ('pending', 'retrying', 'rejected', 'failed') AND eligible_since IS NOT NULL
             GROUP BY registry ORDER BY registry",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((parse_registry(&r.text(0)?)?, r.int(1)?)))
            .collect()
    }

    async fn completions_in_scope(&self, scope: &ResyncScope) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT c.id FROM completions c JOIN accounts a ON a.account_id = c.account_id
             WHERE ($1 = '' OR a.national_id = $1) AND ($2 = '' OR c.course_code = $2)
               AND c.completed_at >= $3 AND c.completed_at < $4
             ORDER BY c.id",
        )
        .bind(scope.national_id.as_ref().map_or("", NationalId::expose))
        .bind(scope.course_code.clone().unwrap_or_default())
        .bind(scope.completed_from_ms.unwrap_or(i64::MIN))
        .bind(scope.completed_to_ms.unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn deliveries_of(
        &self,
        completion_ids: &[i64],
        registry: Option<RegistryKind>,
    ) -> Result<Vec<DeliveryItem>> {
        let mut items = Vec::new();
        for chunk in completion_ids.chunks(10_000) {
            let rows = sqlx::query(
                "SELECT d.id, d.completion_id, d.registry, d.national_id, d.course_code, d.state, d.reason, d.hours_tenths, d.attempts, d.last_error, d.eligible_since, d.due_at, d.receipt_id, d.idempotency_key
                 FROM completions c JOIN deliveries d ON d.completion_id = c.completion_id
                 WHERE c.id = ANY($1) AND ($2 = '' OR d.registry = $2)
                 ORDER BY d.id",
            )
            .bind(chunk)
            .bind(registry.map_or("", |r| r.as_str()))
            .fetch_all(&self.pool)
            .await?;
            for r in &rows {
                items.push(delivery_item(r)?);
            }
        }
        Ok(items)
    }

    async fn requeue(&self, delivery_ids: &[i64], now_ms: i64) -> Result<u64> {
        let mut changed = 0;
        for chunk in delivery_ids.chunks(10_000) {
            let events: Vec<(i64, Event)> = chunk.iter().map(|&id| (id, Event::Requeue)).collect();
            let mut tx = self.pool.begin().await?;
            changed += Self::transition_rows(&mut tx, &events, now_ms).await?.rows as u64;
            tx.commit().await?;
        }
        Ok(changed)
    }

    async fn delivery(&self, id: i64) -> Result<Option<DeliveryItem>> {
        let row = sqlx::query("SELECT d.id, d.completion_id, d.registry, d.national_id, d.course_code, d.state, d.reason, d.hours_tenths, d.attempts, d.last_error, d.eligible_since, d.due_at, d.receipt_id, d.idempotency_key FROM deliveries d WHERE d.id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(delivery_item).transpose()
    }

    async fn list_deliveries(
        &self,
        state: Option<State>,
        registry: Option<RegistryKind>,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<DeliveryItem>> {
        let rows = sqlx::query(
            "SELECT d.id, d.completion_id, d.registry, d.national_id, d.course_code, d.state, d.reason, d.hours_tenths, d.attempts, d.last_error, d.eligible_since, d.due_at, d.receipt_id, d.idempotency_key FROM deliveries d
             WHERE d.id > $1 AND ($2 = '' OR d.state = $2) AND ($3 = '' OR d.registry = $3)
             ORDER BY d.id LIMIT $4",
        )
        .bind(after_id)
        .bind(state.map_or("", |s| s.as_str()))
        .bind(registry.map_or("", |r| r.as_str()))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_item).collect()
    }

    async fn add_audit(&self, e: &AuditEntry) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO audit (at, actor, action, scope, records, status, result, finished_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(e.at)
        .bind(&e.actor)
        .bind(&e.action)
        .bind(&e.scope)
        .bind(e.records)
        .bind(&e.status)
        .bind(&e.result)
        .bind(e.finished_at)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn update_audit(
        &self,
        id: i64,
        records: i64,
        status: &str,
        result: Option<&str>,
        finished_at: Option<i64>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE audit SET records = $2, status = $3, result = $4, finished_at = $5 WHERE id = $1")
            .bind(id)
            .bind(records)
            .bind(status)
            .bind(result)
            .bind(finished_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_entry(&self, id: i64) -> Result<Option<AuditEntry>> {
        let row = sqlx::query("SELECT id, at, actor, action, scope, records, status, result, finished_at FROM audit WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(audit_entry).transpose()
    }

    async fn list_audit(&self, before_id: i64, limit: usize) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, scope, records, status, result, finished_at FROM audit
             WHERE id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(before_id)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_entry).collect()
    }

    async fn person_records(&self, national_id: &NationalId) -> Result<Vec<PersonRecord>> {
        let rows = sqlx::query(
            "SELECT c.completion_id, c.course_code, d.id, d.registry, d.state, d.reason, d.hours_tenths,
                    d.eligible_since, d.receipt_id,
                    (SELECT COUNT(*) FROM attempts t WHERE t.delivery_id = d.id), d.last_error, d.due_at, d.delivered_at
             FROM completions c
             JOIN accounts a ON a.account_id = c.account_id
             LEFT JOIN deliveries d ON d.completion_id = c.completion_id
             WHERE a.national_id = $1
             ORDER BY c.completed_at, c.completion_id, d.registry",
        )
        .bind(national_id.expose())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(person_record).collect()
    }

    async fn delivery_counts(&self) -> Result<Vec<StateCount>> {
        let rows = sqlx::query(
            "SELECT registry, state, reason, COUNT(*) FROM deliveries GROUP BY registry, state, reason ORDER BY 1, 2, 3",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(state_count).collect()
    }

    async fn table_counts(&self) -> Result<TableCounts> {
        let r = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM units), (SELECT COUNT(*) FROM persons), (SELECT COUNT(*) FROM accounts),
                    (SELECT COUNT(*) FROM courses), (SELECT COUNT(*) FROM completions),
                    (SELECT COUNT(*) FROM deliveries), (SELECT value FROM change_seq WHERE id = 1),
                    (SELECT COUNT(*) FROM calendar_years), (SELECT COUNT(*) FROM course_hours)",
        )
        .fetch_one(&self.pool)
        .await?;
        table_counts(&r)
    }

    async fn export_page(
        &self,
        table: CopyTable,
        after: &PageKey,
        limit: usize,
    ) -> Result<Vec<serde_json::Value>> {
        let (after_key, order) = table.page_clauses(|i| format!("${i}"), 2);
        let sql = format!(
            "SELECT row_to_json(t)::text FROM {} AS t WHERE {after_key} ORDER BY {order} LIMIT $1",
            table.name(),
        );
        let query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql)).bind(limit as i64);
        let rows = super::copy::bind_page(query, table, after)
            .fetch_all(&self.pool)
            .await?;
        super::copy::parse_page(table, &rows)
    }

    async fn import_page(&self, table: CopyTable, rows: &[serde_json::Value]) -> Result<u64> {
        let cols = table.columns().join(", ");
        let sql = format!(
            "INSERT INTO {t} ({cols}) SELECT {cols} FROM jsonb_populate_recordset(NULL::{t}, $1::jsonb)",
            t = table.name()
        );
        let mut tx = self.pool.begin().await?;
        if table == CopyTable::ChangeSeq {
            sqlx::query("DELETE FROM change_seq")
                .execute(&mut *tx)
                .await?;
        }
        let json = serde_json::Value::Array(rows.to_vec()).to_string();
        let n = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(json)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    async fn finish_import(&self) -> Result<()> {
        for t in ["completions", "deliveries", "audit", "attempts"] {
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence('{t}', 'id'), GREATEST((SELECT MAX(id) FROM {t}), 1))"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    async fn analyze(&self) -> Result<()> {
        sqlx::query("ANALYZE units, persons, accounts, courses, completions, deliveries")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn add_attempts(&self, attempts: &[Attempt]) -> Result<()> {
        self.add_attempts_rows(attempts).await
    }

    async fn attempts_of(&self, delivery_id: i64) -> Result<Vec<Attempt>> {
        self.attempts_of_rows(delivery_id).await
    }

    async fn purge_attempts(&self, before_ms: i64) -> Result<u64> {
        self.purge_attempts_rows(before_ms).await
    }

    async fn reconcile_candidates(
        &self,
        query: &ReconcileQuery,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<ReconcileItem>> {
        self.reconcile_candidates_rows(query, after_id, limit).await
    }

    async fn apply_repairs(&self, repairs: &[Repair], now_ms: i64) -> Result<Vec<Repair>> {
        self.apply_repairs_rows(repairs, now_ms).await
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

const UPSERT_UNITS: &str = "
INSERT INTO units (code, name, seq, changed_at)
SELECT j->>0, j->>1, $2, $3 FROM jsonb_array_elements($1::jsonb) AS j
ON CONFLICT (code) DO UPDATE SET name = excluded.name, seq = excluded.seq, changed_at = excluded.changed_at
WHERE units.name IS DISTINCT FROM excluded.name";

const UPSERT_PERSONS: &str = "
INSERT INTO persons (national_id, personnel_category, enved_account, service_unit_code, seq, changed_at)
SELECT j->>0, j->>1, j->>2, j->>3, $2, $3 FROM jsonb_array_elements($1::jsonb) AS j
ON CONFLICT (national_id) DO UPDATE SET
    personnel_category = excluded.personnel_category, enved_account = excluded.enved_account,
    service_unit_code = excluded.service_unit_code, seq = excluded.seq, changed_at = excluded.changed_at
WHERE (persons.personnel_category, persons.enved_account, persons.service_unit_code)
      IS DISTINCT FROM (excluded.personnel_category, excluded.enved_account, excluded.service_unit_code)";

const UPSERT_ACCOUNTS: &str = "
INSERT INTO accounts (account_id, national_id, kind, identity, bound_to, seq, changed_at)
SELECT j->>0, j->>1, j->>2, j->>3, j->>4, $2, $3 FROM jsonb_array_elements($1::jsonb) AS j
ON CONFLICT (account_id) DO UPDATE SET
    national_id = excluded.national_id, kind = excluded.kind, identity = excluded.identity,
    bound_to = excluded.bound_to, seq = excluded.seq, changed_at = excluded.changed_at
WHERE (accounts.national_id, accounts.kind, accounts.identity, accounts.bound_to)
      IS DISTINCT FROM (excluded.national_id, excluded.kind, excluded.identity, excluded.bound_to)";

/// The statements of an intake chunk, in order, with the array of
/// `intake_rows` each reads (see the SQLite twin for the course hours).
const INTAKE: [(&str, IntakeRows, Params); 8] = [
    (UPSERT_UNITS, IntakeRows::Units, Params::Stamp),
    (UPSERT_PERSONS, IntakeRows::Persons, Params::Stamp),
    (UPSERT_ACCOUNTS, IntakeRows::Accounts, Params::Stamp),
    (UPSERT_COURSES, IntakeRows::Courses, Params::Stamp),
    (
        STAMP_COURSES_WITH_NEW_HOURS,
        IntakeRows::Courses,
        Params::Stamp,
    ),
    (DELETE_REWRITTEN_HOURS, IntakeRows::Courses, Params::Rewrite),
    (INSERT_REWRITTEN_HOURS, IntakeRows::Courses, Params::Rewrite),
    (UPSERT_COMPLETIONS, IntakeRows::Completions, Params::Stamp),
];

/// What an intake statement takes beyond its rows. PostgreSQL refuses a
/// parameter a statement does not use.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Params {
    /// The sequence and the time: it stamps the rows it changes, which
    /// count as changed.
    Stamp,
    /// The sequence only: it rewrites the hours of courses already
    /// stamped (and counted).
    Rewrite,
}

const UPSERT_COURSES: &str = "
INSERT INTO courses (course_code, name, learning_mode, category_code, digital_tenths, classroom_tenths,
                     seq, changed_at)
SELECT j->>0, j->>1, (j->>2)::bigint, j->>3, (j->>4)::bigint, (j->>5)::bigint, $2, $3
FROM jsonb_array_elements($1::jsonb) AS j
ON CONFLICT (course_code) DO UPDATE SET
    name = excluded.name, learning_mode = excluded.learning_mode, category_code = excluded.category_code,
    digital_tenths = excluded.digital_tenths, classroom_tenths = excluded.classroom_tenths,
    seq = excluded.seq, changed_at = excluded.changed_at
WHERE (courses.name, courses.learning_mode, courses.category_code, courses.digital_tenths,
       courses.classroom_tenths)
      IS DISTINCT FROM (excluded.name, excluded.learning_mode, excluded.category_code, excluded.digital_tenths,
       excluded.classroom_tenths)";

/// Stamps a course not stamped yet in this transaction whose certified
/// hours (element 6, an object of registry to tenths) differ from its
/// `course_hours` rows; jsonb compares objects whatever their key order.
const STAMP_COURSES_WITH_NEW_HOURS: &str = "
UPDATE courses k SET seq = $2, changed_at = $3
FROM jsonb_array_elements($1::jsonb) AS j
WHERE k.course_code = j->>0 AND k.seq <> $2
  AND (SELECT COALESCE(jsonb_object_agg(h.registry, h.tenths), '{}'::jsonb)
       FROM course_hours h WHERE h.course_code = k.course_code) IS DISTINCT FROM j->6";

const DELETE_REWRITTEN_HOURS: &str = "
DELETE FROM course_hours h USING jsonb_array_elements($1::jsonb) AS j, courses k
WHERE k.course_code = j->>0 AND k.seq = $2 AND h.course_code = k.course_code";

const INSERT_REWRITTEN_HOURS: &str = "
INSERT INTO course_hours (course_code, registry, tenths)
SELECT k.course_code, e.key, e.value::bigint
FROM jsonb_array_elements($1::jsonb) AS j
JOIN courses k ON k.course_code = j->>0
CROSS JOIN LATERAL jsonb_each_text(j->6) AS e
WHERE k.seq = $2";

const UPSERT_COMPLETIONS: &str = "
INSERT INTO completions (completion_id, account_id, course_code, completed_at, completed_on, status, seq, changed_at)
SELECT j->>0, j->>1, j->>2, (j->>3)::bigint, j->>4, j->>5, $2, $3 FROM jsonb_array_elements($1::jsonb) AS j
ON CONFLICT (completion_id) DO UPDATE SET
    account_id = excluded.account_id, course_code = excluded.course_code, completed_at = excluded.completed_at,
    completed_on = excluded.completed_on, status = excluded.status, seq = excluded.seq, changed_at = excluded.changed_at
WHERE (completions.account_id, completions.course_code, completions.completed_at, completions.status)
      IS DISTINCT FROM (excluded.account_id, excluded.course_code, excluded.completed_at, excluded.status)";

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
SELECT d.completion_id, d.registry, d.state, d.reason, d.payload, d.revision, d.eligible_since, d.next_attempt_at,
       d.hours_tenths, d.credited_tenths, d.lease_until, d.idempotency_key, d.rescan
FROM completions c JOIN deliveries d ON d.completion_id = c.completion_id
WHERE c.id = ANY($1)
ORDER BY d.id
FOR UPDATE OF d";

const UPSERT_DELIVERIES: &str = "
INSERT INTO deliveries (completion_id, registry, national_id, course_code, state, reason, hours_tenths,
                        revision, idempotency_key, payload, eligible_since, due_at, next_attempt_at, attempts, updated_at, rescan)
SELECT r.completion_id, r.registry, r.national_id, r.course_code, r.state, r.reason, r.hours_tenths,
       r.revision, r.idempotency_key, r.payload, r.eligible_since, r.due_at, r.next_attempt_at,
       CASE WHEN r.reset_attempts THEN 0 ELSE -1 END, $2, r.rescan::int
FROM jsonb_to_recordset($1::jsonb) AS r(
    completion_id text, registry text, national_id text, course_code text, state text, reason text,
    hours_tenths bigint, revision bigint, idempotency_key text, payload text, eligible_since bigint,
    due_at bigint, next_attempt_at bigint, reset_attempts boolean, rescan boolean)
ON CONFLICT (completion_id, registry) DO UPDATE SET
    national_id = excluded.national_id, course_code = excluded.course_code, state = excluded.state,
    reason = excluded.reason, hours_tenths = excluded.hours_tenths, revision = excluded.revision,
    idempotency_key = excluded.idempotency_key, payload = excluded.payload,
    eligible_since = excluded.eligible_since, due_at = excluded.due_at, next_attempt_at = excluded.next_attempt_at,
    attempts = CASE WHEN excluded.attempts < 0 THEN deliveries.attempts ELSE 0 END,
    last_error = CASE WHEN excluded.attempts < 0 THEN deliveries.last_error ELSE NULL END,
    updated_at = excluded.updated_at, rescan = excluded.rescan";
