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
            Err(e) => {
                tracing::warn!(year, error = %e, "stored calendar year does not parse; skipped")
            }
        }
    }
    Ok(calendar)
}

/// On a database with no calendar at all, loads the shipped files of `dir`
/// (e.g. `config/calendar`). Returns how many years were stored.
pub async fn seed_if_empty(
    store: &dyn Store,
    dir: &Path,
    now_ms: i64,
) -> Result<usize, PersistError> {
    if !store.calendar_years().await?.is_empty() || !dir.is_dir() {
        return Ok(0);
    }
    let shipped = OfficeCalendar::load_dir(dir)?;
    let mut n = 0;
    for year in shipped.years() {
        store
            .put_calendar_year(year.year(), &year.to_csv(), now_ms)
            .await?;
        n += 1;
    }
    Ok(n)
}

/// What `hoursync calendar import` did, for its output.
#[derive(Debug)]
pub struct ImportSummary {
    pub year: CalendarYear,
    pub replaced: Option<CalendarYear>,
    pub covered_until: Option<chrono::NaiveDate>,
    pub stored: bool,
}

impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let y = &self.year;
        writeln!(
            f,
            "{}: {:?}, {} days, {} days off, {} working days",
            y.year(),
            y.encoding(),
            y.days().len(),
            y.days_off(),
            y.working_days()
        )?;
        let make_up: Vec<String> = y
            .make_up_working_days()
            .map(|d| format!("{} ({})", d.date, d.remark))
            .collect();
        if !make_up.is_empty() {
            writeln!(f, "make-up working days: {}", make_up.join(", "))?;
        }
        let holidays: Vec<String> = y
            .weekday_holidays()
            .map(|d| format!("{} {}", d.date, d.remark))
            .collect();
        writeln!(
            f,
            "weekday holidays ({}): {}",
            holidays.len(),
            holidays.join(", ")
        )?;
        if let Some(old) = &self.replaced {
            let changes = y.changes_from(old);
            writeln!(
                f,
                "replaces the stored {}: {} day(s) changed",
                old.year(),
                changes.len()
            )?;
            for (new, was) in changes {
                let word = |off: bool| if off { "off" } else { "working" };
                writeln!(
                    f,
                    "  {} {} -> {}  {}",
                    new.date,
                    word(was.off),
                    word(new.off),
                    new.remark
                )?;
            }
        }
        writeln!(
            f,
            "{}",
            if self.stored {
                "stored"
            } else {
                "dry run: nothing stored"
            }
        )?;
        match self.covered_until {
            Some(d) => write!(f, "calendar covered until {d}"),
            None => write!(f, "calendar covers no contiguous range"),
        }
    }
}

/// Parses a year's file and, unless `dry_run`, stores it (replacing the
/// stored year). Every daemon uses it from its next scan on.
pub async fn import(
    store: &dyn Store,
    path: &Path,
    dry_run: bool,
    now_ms: i64,
) -> Result<ImportSummary, PersistError> {
    let year = super::load_file(path)?;
    let mut calendar = load(store).await?;
    let replaced = calendar.year(year.year()).cloned();
    if !dry_run {
        store
            .put_calendar_year(year.year(), &year.to_csv(), now_ms)
            .await?;
    }
    calendar.insert_year(year.clone());
    Ok(ImportSummary {
        year,
        replaced,
        covered_until: calendar.covered_until(),
        stored: !dry_run,
    })
}
