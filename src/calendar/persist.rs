//! The office calendar in the database, so that every daemon on one
//! database counts working days from the same years, and a year loaded by
//! `hoursync calendar import` reaches all of them at their next scan.

use super::{CalendarError, CalendarYear, OfficeCalendar, parse_csv};
use crate::store::{Store, StoreError};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error(transparent)]
    Calendar(#[from] CalendarError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The calendar as stored. A stored year that no longer parses is skipped
/// with a warning (its dates then fall back to Monday–Friday, loudly).
pub async fn load(store: &dyn Store) -> Result<OfficeCalendar, StoreError> {
    let mut calendar = OfficeCalendar::new();
    for (year, csv) in store.calendar_years().await? {
        match parse_csv(csv.as_bytes()) {
            Ok(y) => {
                calendar.insert_year(y);
            }
            Err(e) => tracing::warn!(year, error = %e, "stored calendar year does not parse; skipped"),
        }
    }
    Ok(calendar)
}

/// Stores one year (replacing a stored one) and returns what it replaced.
pub async fn save(store: &dyn Store, year: &CalendarYear, now_ms: i64) -> Result<Option<CalendarYear>, PersistError> {
    let old = load(store).await?.year(year.year()).cloned();
    store.put_calendar_year(year.year(), &year.to_csv(), now_ms).await?;
    Ok(old)
}

/// On a database with no calendar at all, loads the shipped files of `dir`
/// (e.g. `config/calendar`). Returns how many years were stored.
pub async fn seed_if_empty(store: &dyn Store, dir: &Path, now_ms: i64) -> Result<usize, PersistError> {
    if !store.calendar_years().await?.is_empty() || !dir.is_dir() {
        return Ok(0);
    }
    let shipped = OfficeCalendar::load_dir(dir)?;
    let mut n = 0;
    for year in shipped.years() {
        store.put_calendar_year(year.year(), &year.to_csv(), now_ms).await?;
        n += 1;
    }
    Ok(n)
}
