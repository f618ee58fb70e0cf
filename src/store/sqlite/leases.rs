//! Coordination between daemons: named leases and the per-registry request gate, on SQLite.

use super::*;

#[async_trait]
impl LeaseStore for SqliteStore {
    async fn try_lease(&self, name: &str, owner: &str, now_ms: i64, ttl_ms: i64) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        let got = sqlx::query(
            "INSERT INTO leases (name, owner, until_ms) VALUES (?1, ?2, ?3 + ?4)
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until_ms = excluded.until_ms
             WHERE leases.owner = excluded.owner OR leases.until_ms < ?3
             RETURNING owner",
        )
        .bind(name)
        .bind(owner)
        .bind(now_ms)
        .bind(ttl_ms)
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
        tx.commit().await?;
        Ok(got)
    }

    async fn release_lease(&self, name: &str, owner: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM leases WHERE name = ?1 AND owner = ?2")
            .bind(name)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn take_slot(
        &self,
        registry: RegistryKind,
        now_ms: i64,
        interval_ms: i64,
    ) -> Result<i64> {
        let mut tx = self.write_tx().await?;
        let slot: i64 = sqlx::query_scalar(
            "INSERT INTO registry_gates (registry, next_at, hold_until) VALUES (?1, ?2 + ?3, 0)
             ON CONFLICT (registry) DO UPDATE
                SET next_at = MAX(registry_gates.next_at, ?2, registry_gates.hold_until) + ?3
             RETURNING next_at - ?3",
        )
        .bind(registry.as_str())
        .bind(now_ms)
        .bind(interval_ms)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(slot)
    }

    async fn hold_registry(&self, registry: RegistryKind, until_ms: i64) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO registry_gates (registry, next_at, hold_until) VALUES (?1, ?2, ?2)
             ON CONFLICT (registry) DO UPDATE SET hold_until = MAX(registry_gates.hold_until, ?2)",
        )
        .bind(registry.as_str())
        .bind(until_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn registry_hold(&self, registry: RegistryKind) -> Result<i64> {
        let hold: Option<i64> =
            sqlx::query_scalar("SELECT hold_until FROM registry_gates WHERE registry = ?1")
                .bind(registry.as_str())
                .fetch_optional(&self.pool)
                .await?;
        Ok(hold.unwrap_or(0))
    }
}
