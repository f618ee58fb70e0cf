//! The office calendar, stored per year.

use super::{Backend, Run, SqlStore};
use crate::store::dialect::Sql;
use crate::store::rowmap::ReadRow as _;
use crate::store::{CalendarStore, Result};
use async_trait::async_trait;

static YEARS: Sql = Sql::text("SELECT CAST(year AS BIGINT), csv FROM calendar_years ORDER BY year");

static PUT_YEAR: Sql = Sql::text(
    "INSERT INTO calendar_years (year, csv, loaded_at) VALUES ($1, $2, $3)
     ON CONFLICT (year) DO UPDATE SET csv = excluded.csv, loaded_at = excluded.loaded_at",
);

#[async_trait]
impl<B: Backend> CalendarStore for SqlStore<B> {
    async fn calendar_years(&self) -> Result<Vec<(i32, String)>> {
        let rows = self.db.pool().fetch_all(Self::sql(&YEARS), &[]).await?;
        rows.iter()
            .map(|r| Ok((r.int(0)? as i32, r.text(1)?)))
            .collect()
    }

    async fn put_calendar_year(&self, year: i32, csv: &str, now_ms: i64) -> Result<()> {
        self.write(&PUT_YEAR, args![i64::from(year), csv, now_ms])
            .await?;
        Ok(())
    }
}
