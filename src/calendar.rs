//! The government office calendar (政府行政機關辦公日曆表) as data: which
//! dates are working days, per loaded year, and an explicit Monday–Friday
//! fallback for dates no loaded year covers (DOMAIN.md, "The office calendar
//! as data").
//!
//! Pure apart from [`OfficeCalendar::load_dir`]: nothing here logs. An answer
//! that came from the fallback says so ([`WorkingDay::fallback_used`]); the
//! caller must log it and count it, loudly.
//!
//! The official CSV format and its loader are in [`csv`]; [`parse_csv`] is
//! re-exported here.

mod csv;
mod persist;

pub use csv::{LineError, SourceEncoding, parse_csv};
pub use persist::{ImportSummary, PersistError, import, load, seed_if_empty};

use chrono::{Datelike, NaiveDate, Weekday};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One date of a loaded year, as the official file states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Day {
    pub date: NaiveDate,
    /// `是否放假` = `2`.
    pub off: bool,
    /// `備註`: the holiday's name, `補行上班` on a make-up working day, or empty.
    pub remark: String,
}

impl Day {
    pub fn is_weekend(&self) -> bool {
        matches!(self.date.weekday(), Weekday::Sat | Weekday::Sun)
    }

    /// A Saturday or Sunday that is a working day (補班).
    pub fn is_make_up_working_day(&self) -> bool {
        !self.off && self.is_weekend()
    }

    /// A Monday to Friday that is a day off (a holiday or a 補假).
    pub fn is_weekday_holiday(&self) -> bool {
        self.off && !self.is_weekend()
    }
}

/// One complete, validated year: every date of the year exactly once.
/// Built only by [`parse_csv`].
#[derive(Clone, PartialEq, Eq)]
pub struct CalendarYear {
    year: i32,
    /// Indexed by `date.ordinal0()`.
    days: Vec<Day>,
    encoding: SourceEncoding,
}

impl CalendarYear {
    /// `days` must hold every date of `year` in order (the parser checks).
    fn new(year: i32, days: Vec<Day>, encoding: SourceEncoding) -> Self {
        debug_assert!(
            days.iter()
                .enumerate()
                .all(|(i, d)| { d.date.year() == year && d.date.ordinal0() as usize == i })
        );
        Self {
            year,
            days,
            encoding,
        }
    }

    pub fn year(&self) -> i32 {
        self.year
    }

    /// The year as canonical UTF-8 CSV of the official format (how the
    /// database keeps it); [`parse_csv`] reads it back to the same days.
    pub fn to_csv(&self) -> String {
        const WEEKDAYS: [&str; 7] = ["一", "二", "三", "四", "五", "六", "日"];
        let mut out = String::from("西元日期,星期,是否放假,備註\n");
        for d in &self.days {
            let remark = if d.remark.contains([',', '"']) {
                format!("\"{}\"", d.remark.replace('"', "\"\""))
            } else {
                d.remark.clone()
            };
            let weekday = WEEKDAYS[d.date.weekday().num_days_from_monday() as usize];
            out.push_str(&format!(
                "{},{weekday},{},{remark}\n",
                d.date.format("%Y%m%d"),
                if d.off { 2 } else { 0 }
            ));
        }
        out
    }

    /// The encoding the file was detected to be in.
    pub fn encoding(&self) -> SourceEncoding {
        self.encoding
    }

    /// The day, when `date` is in this year.
    pub fn day(&self, date: NaiveDate) -> Option<&Day> {
        if date.year() != self.year {
            return None;
        }
        self.days.get(date.ordinal0() as usize)
    }

    /// Every date of the year, in order.
    pub fn days(&self) -> &[Day] {
        &self.days
    }

    pub fn days_off(&self) -> usize {
        self.days.iter().filter(|d| d.off).count()
    }

    pub fn working_days(&self) -> usize {
        self.days.len() - self.days_off()
    }

    /// Saturdays and Sundays that are working days (補行上班 / 調整上班).
    pub fn make_up_working_days(&self) -> impl Iterator<Item = &Day> {
        self.days.iter().filter(|d| d.is_make_up_working_day())
    }

    /// Mondays to Fridays that are days off.
    pub fn weekday_holidays(&self) -> impl Iterator<Item = &Day> {
        self.days.iter().filter(|d| d.is_weekday_holiday())
    }

    pub fn last_day(&self) -> NaiveDate {
        last_day_of(self.year)
    }

    /// The days that differ from `older` (same year expected), as
    /// `(older, newer)` pairs: what a revised file changes. Empty when the
    /// years differ.
    pub fn changes_from<'a>(&'a self, older: &'a CalendarYear) -> Vec<(&'a Day, &'a Day)> {
        if older.year != self.year {
            return Vec::new();
        }
        older
            .days
            .iter()
            .zip(&self.days)
            .filter(|(o, n)| o != n)
            .collect()
    }
}

/// A summary: the days themselves are a screenful.
impl std::fmt::Debug for CalendarYear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CalendarYear")
            .field("year", &self.year)
            .field("encoding", &self.encoding)
            .field("days_off", &self.days_off())
            .field("working_days", &self.working_days())
            .finish_non_exhaustive()
    }
}

/// The answer for one date, with where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkingDay {
    pub working: bool,
    /// No loaded year covers the date: `working` is the Monday–Friday guess.
    /// Callers must say so loudly (log and metric).
    pub fallback_used: bool,
}

/// The loaded years; any other date falls back to Monday–Friday.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OfficeCalendar {
    years: BTreeMap<i32, CalendarYear>,
}

impl OfficeCalendar {
    /// No year loaded: every answer is the fallback.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a year, or replaces the loaded one of the same year (a revised
    /// file); returns the replaced year, e.g. to show
    /// [`CalendarYear::changes_from`].
    pub fn insert_year(&mut self, year: CalendarYear) -> Option<CalendarYear> {
        self.years.insert(year.year, year)
    }

    /// The loaded years, earliest first.
    pub fn years(&self) -> impl Iterator<Item = &CalendarYear> {
        self.years.values()
    }

    pub fn year(&self, year: i32) -> Option<&CalendarYear> {
        self.years.get(&year)
    }

    pub fn is_working_day(&self, date: NaiveDate) -> WorkingDay {
        match self.years.get(&date.year()).and_then(|y| y.day(date)) {
            Some(day) => WorkingDay {
                working: !day.off,
                fallback_used: false,
            },
            None => WorkingDay {
                working: !matches!(date.weekday(), Weekday::Sat | Weekday::Sun),
                fallback_used: true,
            },
        }
    }

    /// The last day of the latest year such that every year from the
    /// earliest loaded one up to it is loaded; `None` when nothing is loaded.
    /// Dates after it (and before the earliest loaded year) use the fallback.
    pub fn covered_until(&self) -> Option<NaiveDate> {
        let mut years = self.years.keys().copied();
        let mut last = years.next()?;
        for y in years {
            if y != last + 1 {
                break;
            }
            last = y;
        }
        Some(last_day_of(last))
    }

    /// Loads every `*.csv` file of `dir` (not recursing; other files, such as
    /// a README, are ignored). Two files of the same year are an error
    /// rather than a silent choice by file name: to revise a year, replace
    /// its file. An empty directory gives an empty calendar.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<Self, CalendarError> {
        let dir = dir.as_ref();
        let io = |source| CalendarError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let is_csv = path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
            if is_csv && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        let mut calendar = Self::new();
        let mut from: BTreeMap<i32, PathBuf> = BTreeMap::new();
        for path in files {
            let year = load_file(&path)?;
            if let Some(first) = from.get(&year.year) {
                return Err(CalendarError::DuplicateYear {
                    year: year.year,
                    first: first.clone(),
                    second: path,
                });
            }
            from.insert(year.year, path);
            calendar.insert_year(year);
        }
        Ok(calendar)
    }
}

/// Reads and parses one official CSV file; errors name the file.
pub fn load_file(path: impl AsRef<Path>) -> Result<CalendarYear, CalendarError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| CalendarError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_csv(&bytes).map_err(|e| CalendarError::File {
        path: path.to_path_buf(),
        source: Box::new(e),
    })
}

fn last_day_of(year: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, 12, 31).expect("December 31 exists in every year chrono holds")
}

#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    #[error("{0}")]
    Encoding(String),
    #[error(
        "line {line}: header must be `西元日期,星期,是否放假,備註`, found `{found}` (decoded as {encoding})"
    )]
    Header {
        line: usize,
        found: String,
        encoding: SourceEncoding,
    },
    #[error("line {line}: {error}")]
    Line { line: usize, error: LineError },
    #[error("no dates after the header")]
    Empty,
    #[error(
        "{year}: {count} date(s) missing, the first {first} (expected between {})",
        neighbours(*after, *before)
    )]
    MissingDays {
        year: i32,
        first: NaiveDate,
        count: usize,
        /// The line of the date just before the first missing one.
        after: Option<usize>,
        /// The line of the date just after the first missing one.
        before: Option<usize>,
    },
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        source: Box<CalendarError>,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "two files for {year}: {} and {}; keep one",
        first.display(),
        second.display()
    )]
    DuplicateYear {
        year: i32,
        first: PathBuf,
        second: PathBuf,
    },
}

fn neighbours(after: Option<usize>, before: Option<usize>) -> String {
    match (after, before) {
        (Some(a), Some(b)) => format!("line {a} and line {b}"),
        (Some(a), None) => format!("line {a} and the end of the file"),
        (None, Some(b)) => format!("the header and line {b}"),
        (None, None) => "the header and the end of the file".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn weekends_only(year: i32) -> CalendarYear {
        let days = date(year, 1, 1)
            .iter_days()
            .take_while(|d| d.year() == year)
            .map(|d| Day {
                date: d,
                off: matches!(d.weekday(), Weekday::Sat | Weekday::Sun),
                remark: String::new(),
            })
            .collect();
        CalendarYear::new(year, days, SourceEncoding::Utf8)
    }

    #[test]
    fn covered_until_stops_at_the_first_gap() {
        let mut cal = OfficeCalendar::new();
        assert_eq!(cal.covered_until(), None);
        cal.insert_year(weekends_only(2025));
        assert_eq!(cal.covered_until(), Some(date(2025, 12, 31)));
        cal.insert_year(weekends_only(2027));
        assert_eq!(cal.covered_until(), Some(date(2025, 12, 31)));
        cal.insert_year(weekends_only(2026));
        assert_eq!(cal.covered_until(), Some(date(2027, 12, 31)));
        assert_eq!(
            cal.years().map(CalendarYear::year).collect::<Vec<_>>(),
            [2025, 2026, 2027]
        );
    }

    #[test]
    fn fallback_is_monday_to_friday_and_flagged() {
        let mut cal = OfficeCalendar::new();
        cal.insert_year(weekends_only(2026));
        let loaded = cal.is_working_day(date(2026, 1, 1));
        assert_eq!(
            loaded,
            WorkingDay {
                working: true,
                fallback_used: false
            }
        );
        for (d, working) in [
            (date(2027, 1, 1), true),  // Friday
            (date(2027, 1, 2), false), // Saturday
            (date(2025, 12, 31), true),
        ] {
            assert_eq!(
                cal.is_working_day(d),
                WorkingDay {
                    working,
                    fallback_used: true
                },
                "{d}"
            );
        }
    }

    #[test]
    fn a_year_of_366_days() {
        let y = weekends_only(2028);
        assert_eq!(y.days().len(), 366);
        assert_eq!(
            y.day(date(2028, 2, 29)).map(|d| d.date),
            Some(date(2028, 2, 29))
        );
        assert_eq!(y.day(date(2027, 2, 1)), None);
        assert_eq!(y.last_day(), date(2028, 12, 31));
    }
}
