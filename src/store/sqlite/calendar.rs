//! The office calendar, stored per year, on SQLite.

use super::*;

#[async_trait]
impl CalendarStore for SqliteStore {
    async fn calendar_years(&self) -> Result<Vec<(i32, String)>> {
        let rows = sqlx::query("SELECT year, csv FROM calendar_years ORDER BY year")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<i64, _>(0)? as i32, r.try_get(1)?)))
            .collect()
    }

    async fn put_calendar_year(&self, year: i32, csv: &str, now_ms: i64) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO calendar_years (year, csv, loaded_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (year) DO UPDATE SET csv = excluded.csv, loaded_at = excluded.loaded_at",
        )
        .bind(i64::from(year))
        .bind(csv)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
