//! Time is an input: everything that needs "now" gets a [`Clock`], so tests
//! can hold time still or move it, and SQL binds `now` as a parameter
//! instead of reading the database server's clock.

use chrono::{DateTime, TimeZone, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;

    fn now_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }
}

pub type SharedClock = Arc<dyn Clock>;

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to, for tests.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(start.timestamp_millis())))
    }

    pub fn advance(&self, by: std::time::Duration) {
        self.0.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }

    pub fn set(&self, to: DateTime<Utc>) {
        self.0.store(to.timestamp_millis(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.0.load(Ordering::SeqCst))
            .unwrap()
    }
}

/// Milliseconds since the epoch back to a UTC instant (the database keeps
/// every instant as such an integer, the same on SQLite and PostgreSQL).
pub fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// Midnight starting a date in Asia/Taipei, as milliseconds (where a
/// `--since` or `completed_from` date begins).
pub fn taipei_midnight_ms(d: chrono::NaiveDate) -> i64 {
    let midnight = d.and_hms_opt(0, 0, 0).expect("valid time");
    midnight
        .and_local_timezone(chrono_tz::Asia::Taipei)
        .earliest()
        .map_or(0, |t| t.timestamp_millis())
}

/// An instant as RFC 3339 in Asia/Taipei, the zone learners and staff read.
pub fn taipei_rfc3339(ms: i64) -> String {
    from_ms(ms)
        .with_timezone(&chrono_tz::Asia::Taipei)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}
