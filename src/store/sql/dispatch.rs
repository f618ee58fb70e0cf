//! Dispatch: leasing due records, recording the answers, putting records back in the queue.

use super::{Backend, Run, SqlStore};
use crate::domain::RegistryKind;
use crate::store::bench_reference::CLAIMED;
use crate::store::dialect::{Dialect, Sql};
use crate::store::rowmap::claimed;
use crate::store::{Attempt, Claimed, DispatchStore, Outcome, Result};
use crate::transition::Event;
use async_trait::async_trait;

/// Leases due rows by writing only the lease columns, which no index
/// holds: on PostgreSQL the claim is then a HOT update (no new entry in any
/// index, given room on the page: migration 0011) and on SQLite it rewrites
/// no index. Other claimers skip leased rows by their `lease_until`.
static CLAIM: Sql = Sql::built(|d: Dialect| claim_sql(d, "deliveries"));

/// The claim, on `table` (`deliveries`, or the bench's copy of it).
pub(super) fn claim_sql(d: Dialect, table: &str) -> String {
    format!(
        "UPDATE {table} SET lease_taken_from = lease_owner, lease_owner = $1, lease_until = $2
         WHERE id IN (
            SELECT id FROM {table}
            WHERE registry = $3 AND state IN ('pending', 'retrying', 'correcting', 'withdrawing')
              AND next_attempt_at <= $4
              AND (lease_until IS NULL OR lease_until < $4)
            ORDER BY next_attempt_at, id LIMIT $5
            {})
         RETURNING {CLAIMED}",
        d.for_update_skip_locked()
    )
}

impl<B: Backend> SqlStore<B> {
    /// Leases up to `limit` due rows of `registry` with `statement` (a
    /// [`claim_sql`]), returned in id order.
    pub(super) async fn claim_with(
        &self,
        statement: &'static Sql,
        registry: RegistryKind,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Claimed>> {
        let mut alone = self.db.alone().await?;
        let rows = alone
            .fetch_all(
                Self::sql(statement),
                args![
                    owner,
                    lease_until_ms,
                    registry.as_str(),
                    now_ms,
                    limit as i64
                ],
            )
            .await?;
        alone.finish().await?;
        let mut claimed = rows.iter().map(claimed).collect::<Result<Vec<Claimed>>>()?;
        claimed.sort_by_key(|c| c.id);
        Ok(claimed)
    }
}

#[async_trait]
impl<B: Backend> DispatchStore for SqlStore<B> {
    async fn claim(
        &self,
        registry: RegistryKind,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Claimed>> {
        self.claim_with(&CLAIM, registry, owner, now_ms, lease_until_ms, limit)
            .await
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
        let mut tx = self.db.begin().await?;
        let written = Self::transition_rows(&mut tx, &events, now_ms).await?.rows as u64;
        // What was asked and answered is history even when the lease was lost.
        Self::insert_history(&mut tx, attempts).await?;
        tx.finish().await?;
        Ok(written)
    }

    async fn take_over(
        &self,
        owner: &str,
        delivery_ids: &[i64],
        now_ms: i64,
    ) -> Result<Vec<(i64, i64)>> {
        let events: Vec<(i64, Event)> = delivery_ids
            .iter()
            .map(|&id| (id, Event::LeaseExpired { taken_by: owner }))
            .collect();
        let mut tx = self.db.begin().await?;
        let decided = Self::transition_rows(&mut tx, &events, now_ms).await?;
        tx.finish().await?;
        Ok(decided.attempts)
    }

    async fn requeue(&self, delivery_ids: &[i64], now_ms: i64) -> Result<u64> {
        let mut changed = 0;
        for chunk in delivery_ids.chunks(10_000) {
            let events: Vec<(i64, Event)> = chunk.iter().map(|&id| (id, Event::Requeue)).collect();
            let mut tx = self.db.begin().await?;
            changed += Self::transition_rows(&mut tx, &events, now_ms).await?.rows as u64;
            tx.finish().await?;
        }
        Ok(changed)
    }
}
