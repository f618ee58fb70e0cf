//! Where the drain's database time goes, without `pg_stat_statements`:
//! `pg_stat_activity` of the bench database sampled every 100 ms (which
//! statement each connection is running, or whether it sits in an open
//! transaction waiting for its client, and what it waits on).

use sqlx::{Connection, Row};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const EVERY: Duration = Duration::from_millis(100);

pub(super) struct DbSampler {
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<DbSamples>>,
}

#[derive(Default)]
pub(super) struct DbSamples {
    pub samples: u64,
    /// (statement, what it waits on) → connections seen in that state, summed over samples.
    pub busy: BTreeMap<(String, String), u64>,
}

impl DbSamples {
    /// Average number of connections busy (running a statement or inside
    /// a transaction) per sample.
    pub fn mean_busy(&self) -> f64 {
        self.busy.values().sum::<u64>() as f64 / self.samples.max(1) as f64
    }

    /// The report: mean connections per (statement, wait), most first, and
    /// what that makes per batch over `secs` and `batches`.
    pub fn render(&self, secs: f64, batches: u64) -> String {
        let n = self.samples.max(1) as f64;
        let mut rows: Vec<_> = self.busy.iter().collect();
        rows.sort_by(|a, b| b.1.cmp(a.1));
        let mut out = format!(
            "  PostgreSQL activity ({} samples of pg_stat_activity, every {} ms): {:.2} connections busy on average\n\
             \x20   mean  ms/batch  statement                                    waiting on\n",
            self.samples,
            EVERY.as_millis(),
            self.mean_busy()
        );
        for ((stmt, wait), count) in rows.into_iter().take(16) {
            let mean = *count as f64 / n;
            let per_batch_ms = mean * secs * 1e3 / batches.max(1) as f64;
            out.push_str(&format!(
                "    {mean:>5.2} {per_batch_ms:>9.1}  {stmt:<44} {wait}\n"
            ));
        }
        out
    }
}

impl DbSampler {
    /// Starts sampling the connections to `database` through `server_url`.
    pub async fn start(server_url: &str, database: &str) -> anyhow::Result<Self> {
        let mut conn = sqlx::PgConnection::connect(server_url).await?;
        let stop = CancellationToken::new();
        let token = stop.clone();
        let database = database.to_string();
        let task = tokio::spawn(async move {
            let mut s = DbSamples::default();
            loop {
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tokio::time::sleep(EVERY) => {}
                }
                let rows = sqlx::query(
                    "SELECT COALESCE(state, ''), COALESCE(wait_event_type || '/' || wait_event, ''), query
                     FROM pg_stat_activity
                     WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
                )
                .bind(&database)
                .fetch_all(&mut conn)
                .await?;
                s.samples += 1;
                for r in rows {
                    let state: String = r.get(0);
                    let wait: String = r.get(1);
                    let query: String = r.get(2);
                    let label = match state.as_str() {
                        "active" => statement_label(&query),
                        "idle in transaction" => {
                            format!("(in transaction, after {})", statement_label(&query))
                        }
                        _ => continue,
                    };
                    let wait = if wait.is_empty() {
                        "on CPU".to_string()
                    } else {
                        wait
                    };
                    *s.busy.entry((label, wait)).or_default() += 1;
                }
            }
            conn.close().await.ok();
            Ok(s)
        });
        Ok(Self { stop, task })
    }

    pub async fn finish(self) -> anyhow::Result<DbSamples> {
        self.stop.cancel();
        self.task.await?
    }
}

/// A short name for a statement of src/store/postgres.rs.
pub(super) fn statement_label(query: &str) -> String {
    let q: String = query.split_whitespace().collect::<Vec<_>>().join(" ");
    const KNOWN: [(&str, &str); 16] = [
        ("UPDATE deliveries SET lease_owner", "claim"),
        (
            "UPDATE deliveries d SET state = 'delivered'",
            "record_outcomes: delivered",
        ),
        (
            "UPDATE deliveries d SET state = 'rejected'",
            "record_outcomes: rejected",
        ),
        (
            "UPDATE deliveries d SET state = r.state",
            "record_outcomes: retrying/failed",
        ),
        (
            "UPDATE deliveries d SET next_attempt_at",
            "record_outcomes: released",
        ),
        ("SELECT hold_until FROM registry_gates", "registry_hold"),
        ("INSERT INTO registry_gates", "take_slot / hold_registry"),
        (
            "SELECT registry, state, reason, COUNT(*)",
            "delivery_counts",
        ),
        (
            "SELECT registry, CASE WHEN state",
            "sla_counts (gauge sweep)",
        ),
        (
            "SELECT registry, MIN(eligible_since)",
            "oldest_undelivered (gauge sweep)",
        ),
        ("INSERT INTO leases", "try_lease"),
        ("DELETE FROM leases", "release_lease"),
        ("SELECT year, csv", "calendar_years"),
        ("SELECT COALESCE((SELECT seq FROM cursors", "scan_window"),
        ("COMMIT", "COMMIT"),
        ("BEGIN", "BEGIN"),
    ];
    for (prefix, label) in KNOWN {
        if q.starts_with(prefix) {
            return label.to_string();
        }
    }
    q.chars().take(44).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_named_whatever_their_layout() {
        assert_eq!(
            statement_label(
                "UPDATE deliveries SET lease_owner = $1, lease_until = $2\n   WHERE id IN ("
            ),
            "claim"
        );
        assert_eq!(
            statement_label(
                "\nUPDATE deliveries d SET state = 'delivered', receipt_id = r.receipt"
            ),
            "record_outcomes: delivered"
        );
        assert_eq!(statement_label("SELECT 1"), "SELECT 1");
    }
}
