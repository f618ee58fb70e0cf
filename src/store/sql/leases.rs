//! Coordination between daemons: named leases and the per-registry request gate.

use super::{Backend, Run, SqlStore};
use crate::domain::RegistryKind;
use crate::store::dialect::{Dialect, Sql};
use crate::store::rowmap::ReadRow as _;
use crate::store::{LeaseStore, Result};
use async_trait::async_trait;

static TRY_LEASE: Sql = Sql::text(
    "INSERT INTO leases (name, owner, until_ms) VALUES ($1, $2, $3 + $4)
     ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until_ms = excluded.until_ms
     WHERE leases.owner = excluded.owner OR leases.until_ms < $3
     RETURNING owner",
);

static RELEASE_LEASE: Sql = Sql::text("DELETE FROM leases WHERE name = $1 AND owner = $2");

// A gate row commits without waiting for the WAL flush where the engine
// waits for it: a flushed commit is seen by other sessions only after the
// flush (milliseconds, tens on a busy disk), and this statement is the last
// look at the hold before a request goes out, while it keeps the row
// locked against the hold another daemon wants to write. Gates are soft
// state: a crash of the database that loses one costs a burst of one slot
// or a 429 answered again.
static TAKE_SLOT: Sql = Sql::built(|d: Dialect| {
    format!(
        "WITH async_commit AS (SELECT {})
         INSERT INTO registry_gates (registry, next_at, hold_until)
         SELECT $1, $2 + $3, 0 FROM async_commit WHERE true
         ON CONFLICT (registry) DO UPDATE
            SET next_at = {}(registry_gates.next_at, $2, registry_gates.hold_until) + $3
         RETURNING next_at - $3",
        d.commit_unflushed(),
        d.greatest()
    )
});

/// Without waiting for the WAL flush, as in `TAKE_SLOT`: every other
/// daemon must see the hold as soon as possible.
static HOLD_REGISTRY: Sql = Sql::built(|d: Dialect| {
    format!(
        "WITH async_commit AS (SELECT {})
         INSERT INTO registry_gates (registry, next_at, hold_until)
         SELECT $1, $2, $2 FROM async_commit WHERE true
         ON CONFLICT (registry) DO UPDATE SET hold_until = {}(registry_gates.hold_until, $2)",
        d.commit_unflushed(),
        d.greatest()
    )
});

static REGISTRY_HOLD: Sql = Sql::text("SELECT hold_until FROM registry_gates WHERE registry = $1");

#[async_trait]
impl<B: Backend> LeaseStore for SqlStore<B> {
    async fn try_lease(&self, name: &str, owner: &str, now_ms: i64, ttl_ms: i64) -> Result<bool> {
        let row = self
            .write_returning(&TRY_LEASE, args![name, owner, now_ms, ttl_ms])
            .await?;
        Ok(row.is_some())
    }

    async fn release_lease(&self, name: &str, owner: &str) -> Result<()> {
        self.write(&RELEASE_LEASE, args![name, owner]).await?;
        Ok(())
    }

    async fn take_slot(
        &self,
        registry: RegistryKind,
        now_ms: i64,
        interval_ms: i64,
    ) -> Result<i64> {
        let row = self
            .write_returning(&TAKE_SLOT, args![registry.as_str(), now_ms, interval_ms])
            .await?;
        row.ok_or_else(|| crate::store::StoreError::Fatal("a slot was not taken".into()))?
            .int(0)
    }

    async fn hold_registry(&self, registry: RegistryKind, until_ms: i64) -> Result<()> {
        self.write(&HOLD_REGISTRY, args![registry.as_str(), until_ms])
            .await?;
        Ok(())
    }

    async fn registry_hold(&self, registry: RegistryKind) -> Result<i64> {
        let row = self
            .db
            .pool()
            .fetch_optional(Self::sql(&REGISTRY_HOLD), args![registry.as_str()])
            .await?;
        row.map_or(Ok(0), |r| r.int(0))
    }
}
