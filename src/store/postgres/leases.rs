//! Coordination between daemons: named leases and the per-registry request gate, on PostgreSQL.

use super::*;

#[async_trait]
impl LeaseStore for PostgresStore {
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
}
